"""Run directories: config, metadata, checkpoints and reloading a trained model.

A run directory written by :func:`mfsde.fit` holds

- ``config.json``: the full :class:`~mfsde.Config` (:meth:`RunDir.read_config`),
- ``meta.json``: seed, package versions, Python, platform, start time (:func:`write_meta`),
- ``history.jsonl``: one JSON object per training iteration (loss parts, lr, grad norm),
- ``checkpoint.pt``: model, optimiser, scheduler, config, iteration, history and every RNG
  state (torch global, the training generator, numpy, python), enough to resume bit-identically.

- ``data.json``: what data the run was fitted on (``mfsde fit`` / ``compare``; evaluate,
  explain and resume read it),
- ``eval.json`` / ``eval-<start>.json``: held-out evaluations,
- ``.lock`` while a process writes the run (fit, resume, compare, evaluate into it): one writer
  per run directory; a second one is refused naming the holder (:mod:`mfsde.training`).

:class:`RunDir` owns these names: code that reads or writes a run goes through it.

>>> run = RunDir("runs/scimf-seed0")
>>> model, config = run.load()
>>> run.read_history()[-1]["loss"]
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import random
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mfsde._io import atomic_write, write_text_atomic
from mfsde.config._schema import Config

CONFIG_FILE = "config.json"
META_FILE = "meta.json"
HISTORY_FILE = "history.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"
DATA_SPEC_FILE = "data.json"  # what data a run was fitted on (written by `mfsde fit` / `compare`)

# distribution name → import name, for the versions recorded in meta.json
_PACKAGES = {
    "torch": "torch",
    "torchsde": "torchsde",
    "geomloss": "geomloss",
    "POT": "ot",
    "numpy": "numpy",
    "einops": "einops",
    "mfsde": "mfsde",
}


def package_versions() -> dict[str, str | None]:
    """Versions of torch, torchsde, geomloss, POT, numpy and mfsde (``None`` if not installed)."""
    out: dict[str, str | None] = {}
    for dist, mod in _PACKAGES.items():
        version = None
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            m = sys.modules.get(mod)
            if m is None:
                try:
                    m = __import__(mod)
                except ImportError:
                    m = None
            version = getattr(m, "__version__", None) if m is not None else None
        out[dist] = version
    return out


def default_threads() -> int:
    """torch threads for ``mfsde`` commands: half the cores this process may run on (its CPU
    affinity, not the machine's count), at least 1 and at most 8. On a shared 2-core machine
    torch's own default (all cores) ran 3–60× slower per iteration than 1 thread
    (benchmarks/threads.py); ``--threads`` overrides it."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, cores // 2))


def environment() -> dict[str, Any]:
    """Python version, platform, torch thread count and whether CUDA is available."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }


class _RunFile:
    """A read-only attribute of :class:`RunDir`: the path of one of its files."""

    def __init__(self, name: str):
        self.name = name

    def __get__(self, run, owner=None) -> Path:
        return self if run is None else run.path / self.name


class RunDir:
    """A run directory and every file in it (module docstring). Nothing is created until written.

    >>> run = RunDir("runs/a")
    >>> run.write_config(config); run.write_meta(config, {"task": ...})
    >>> run.checkpoint, run.has_checkpoint, run.read_data_spec()
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    # -- file names ------------------------------------------------------------------------------
    config = _RunFile(CONFIG_FILE)
    meta = _RunFile(META_FILE)
    history = _RunFile(HISTORY_FILE)
    checkpoint = _RunFile(CHECKPOINT_FILE)
    data_spec = _RunFile(DATA_SPEC_FILE)

    def eval_file(self, start: str | None = None) -> Path:
        """``eval.json`` (``start=None``) or ``eval-<start>.json``."""
        return self.path / ("eval.json" if start is None else f"eval-{start}.json")

    @property
    def has_checkpoint(self) -> bool:
        return self.checkpoint.is_file()

    @property
    def has_config(self) -> bool:
        return self.config.is_file()

    def require_checkpoint(self) -> RunDir:
        """Raise ``FileNotFoundError`` unless this is a run directory with a checkpoint."""
        if not self.path.is_dir():
            raise FileNotFoundError(f"run directory {str(self.path)!r} does not exist")
        if not self.has_checkpoint:
            raise FileNotFoundError(
                f"{str(self.path)!r} is not a run directory (no {CHECKPOINT_FILE}; write one with `mfsde fit`)"
            )
        return self

    # -- writing -----------------------------------------------------------------------------------
    def _mkdir(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)

    def write_config(self, config: Config) -> Path:
        self._mkdir()
        return config.save(self.config)

    def write_meta(self, config: Config, extra: dict | None = None) -> Path:
        """``meta.json``: seed, preset, package versions, python, platform, start time (UTC, ISO
        8601), command line and whatever ``extra`` holds (data set, task, scale transform)."""
        self._mkdir()
        return write_text_atomic(self.meta, json.dumps(_jsonable(_meta(config, extra)), indent=2))

    def record_resume(self, entry: dict) -> None:
        """Append ``entry`` to ``meta.json``'s ``resumes`` list."""
        meta = self.read_meta()
        meta.setdefault("resumes", []).append(entry)
        write_text_atomic(self.meta, json.dumps(_jsonable(meta), indent=2))

    def write_data_spec(self, spec: dict) -> Path:
        self._mkdir()
        return write_text_atomic(self.data_spec, json.dumps(_jsonable(spec), indent=2))

    def write_eval(self, ev: dict, start: str | None = None) -> Path:
        self._mkdir()
        return write_text_atomic(self.eval_file(start), json.dumps(_jsonable(ev), indent=2))

    def open_history(self, records: list[dict] = ()):
        """``history.jsonl`` opened for writing, holding ``records`` (the iterations behind the
        model: a resumed run rewrites what its checkpoint knows); the caller appends and closes."""
        self._mkdir()
        fh = open(self.history, "w")
        for rec in records:
            fh.write(json.dumps(rec) + "\n")
        fh.flush()
        return fh

    def save_checkpoint(self, **state: Any) -> Path:
        self._mkdir()
        return save_checkpoint(self.checkpoint, **state)

    # -- reading -----------------------------------------------------------------------------------
    @staticmethod
    def _json(path: Path, text: str | None = None, line: int | None = None):
        """``text`` (default: the file) parsed as JSON; a ``ValueError`` naming the file and line if not."""
        try:
            return json.loads(path.read_text() if text is None else text)
        except json.JSONDecodeError as exc:
            where = f"line {line if line is not None else exc.lineno}"
            raise ValueError(
                f"{str(path)!r} is not valid JSON at {where} ({exc.msg}); was it written by two "
                f"processes at once, or cut short?"
            ) from None

    def read_meta(self) -> dict:
        return self._json(self.meta) if self.meta.is_file() else {}

    def read_data_spec(self) -> dict:
        return self._json(self.data_spec) if self.data_spec.is_file() else {}

    def read_config(self) -> Config:
        """``config.json`` (or the checkpoint's copy when it is missing). It is a complete dump, read
        as it stands (``Config.from_dict``, as the checkpoint's copy is): a field added to mfsde
        after the run takes its dataclass default, never a value its preset has gained since."""
        if not self.has_config:
            return Config.from_dict(self.load_checkpoint()["config"])
        return Config.from_dict(self._json(self.config))

    def read_history(self) -> list[dict]:
        if not self.history.is_file():
            raise FileNotFoundError(f"no {HISTORY_FILE} in {str(self.path)!r}")
        return [
            self._json(self.history, line, k)
            for k, line in enumerate(self.history.read_text().splitlines(), 1)
            if line.strip()
        ]

    def load_checkpoint(self) -> dict[str, Any]:
        return load_checkpoint(self.checkpoint)

    def load(self, device: str | torch.device | None = None):
        """The trained model and its config, ``(model, config)`` (model in eval mode)."""
        from mfsde.model._sde import build_model

        if not self.path.is_dir():
            raise FileNotFoundError(f"run directory {str(self.path)!r} does not exist")
        ckpt = self.load_checkpoint()
        config = self.read_config() if self.has_config else Config.from_dict(ckpt["config"])
        model = build_model(config)
        model.load_state_dict(ckpt.get("model_averaged", ckpt["model"]))  # train.ema: the averaged weights
        if device is not None:
            model.to(device)
        model.eval()
        return model, config


def write_config(out_dir: str | Path, config: Config) -> Path:
    """Write ``config.json`` into ``out_dir`` (:meth:`RunDir.write_config`)."""
    return RunDir(out_dir).write_config(config)


def write_meta(out_dir: str | Path, config: Config, extra: dict | None = None) -> Path:
    """Write ``meta.json`` into ``out_dir`` (:meth:`RunDir.write_meta`)."""
    return RunDir(out_dir).write_meta(config, extra)


def _meta(config: Config, extra: dict | None) -> dict:
    meta = {
        "seed": config.train.seed,
        "preset": config.preset,
        "start_time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "packages": package_versions(),
        **environment(),
        "argv": list(sys.argv),
        "pid": os.getpid(),
    }
    meta.update(extra or {})
    return meta


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return obj


# -- RNG states -------------------------------------------------------------------------------
# Stored as tensors and plain lists, so that checkpoints load with torch.load(weights_only=True).
def _numpy_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "kind": str(kind),
        "keys": torch.as_tensor(keys.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached),
    }


def _set_numpy_state(state) -> None:
    if isinstance(state, dict):
        state = (
            state["kind"],
            state["keys"].numpy().astype(np.uint32),
            state["pos"],
            state["has_gauss"],
            state["cached_gaussian"],
        )
    np.random.set_state(state)


def _python_state() -> dict[str, Any]:
    version, internal, gauss = random.getstate()
    return {"version": int(version), "state": [int(v) for v in internal], "gauss": gauss}


def _set_python_state(state) -> None:
    if isinstance(state, dict):
        state = (state["version"], tuple(state["state"]), state["gauss"])
    random.setstate(state)


def rng_states(generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every RNG state a training run draws from: torch (CPU and CUDA), ``generator``, numpy,
    python — as tensors and plain lists (loadable with ``weights_only=True``)."""
    states: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": _numpy_state(), "python": _python_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["torch_cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        states["generator"] = generator.get_state()
    return states


def set_rng_states(states: dict[str, Any], generator: torch.Generator | None = None) -> None:
    """Restore what :func:`rng_states` returned (``generator`` gets ``states["generator"]``)."""
    torch.set_rng_state(states["torch"])
    _set_numpy_state(states["numpy"])
    _set_python_state(states["python"])
    if "torch_cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["torch_cuda"])
    if generator is not None:
        if "generator" not in states:
            raise KeyError("the checkpoint holds no generator state")
        generator.set_state(states["generator"])


# -- checkpoints ------------------------------------------------------------------------------
class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded: missing, truncated, not an mfsde checkpoint, or
    holding Python objects that loading would have to execute."""


def save_checkpoint(path: str | Path, **state: Any) -> Path:
    """``torch.save`` ``state`` durably (:func:`atomic_write`): the previous checkpoint stays until
    the new one is complete.

    Raises:
        OSError: the file could not be written (disk full, a write limit, no permission), naming
            ``path``, also where torch's zip writer wraps it in a ``RuntimeError``.
    """
    return atomic_write(path, lambda fh: torch.save(state, fh), what="the checkpoint")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`mfsde.fit`; ``path`` is the file or its run
    directory. Loads with ``weights_only=True``: a file carrying pickled Python objects is
    refused without running them.

    Raises:
        FileNotFoundError: no checkpoint there.
        CheckpointError: the file is truncated, empty, random bytes or unsafe (one line, naming
            the file and what to do).
    """
    import pickle

    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "GLOBAL" in str(err) or "Unsupported global" in str(err):  # a pickled Python object, not garbage
            raise CheckpointError(
                f"checkpoint {str(path)!r} holds Python objects that loading would execute; refused "
                f"(mfsde checkpoints hold only tensors and plain data: was it written by another "
                f"program or an older mfsde?)"
            ) from None
        raise CheckpointError(
            f"checkpoint {str(path)!r} is not a readable torch file; it is truncated or corrupt: "
            f"resume from a copy or refit"
        ) from None
    except Exception as err:
        raise CheckpointError(
            f"checkpoint {str(path)!r} cannot be read ({type(err).__name__}: {_first_line(err)}); "
            f"it is truncated, empty or not a checkpoint: resume from a copy or refit"
        ) from None
    if not isinstance(ckpt, dict) or not {"model", "config", "iteration"} <= set(ckpt):
        raise CheckpointError(
            f"{str(path)!r} is a torch file but not an mfsde checkpoint (no model/config/iteration entries)"
        )
    return ckpt


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:200]


def read_history(out_dir: str | Path) -> list[dict]:
    """The per-iteration records of ``history.jsonl`` in ``out_dir`` (:meth:`RunDir.read_history`)."""
    return RunDir(out_dir).read_history()


def load_run(out_dir: str | Path, device: str | torch.device | None = None):
    """Rebuild the trained model of a run directory: ``(model, config)`` (:meth:`RunDir.load`)."""
    return RunDir(out_dir).load(device)
