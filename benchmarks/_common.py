"""Shared helpers for the benchmark scripts: timing, environment info, JSON results, tables.

Not part of the ``mfsde`` package; the scripts import it as a sibling module
(``python benchmarks/solver_speed.py`` puts ``benchmarks/`` on ``sys.path``).
"""

from __future__ import annotations

import datetime as _dt
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parent.parent


# -- timing -------------------------------------------------------------------------------------
def summarize(times: Sequence[float], cpu_times: Sequence[float] | None = None) -> dict:
    """Median (the number to quote), min, mean, inter-quartile range and all samples (seconds);
    with ``cpu_times`` also the median process CPU time (all threads) per sample."""
    ts = sorted(times)
    q = statistics.quantiles(ts, n=4) if len(ts) >= 2 else [ts[0], ts[0], ts[0]]
    return {
        "median_s": statistics.median(ts),
        "min_s": ts[0],
        "mean_s": statistics.fmean(ts),
        "iqr_s": q[2] - q[0],
        "n": len(ts),
        "samples_s": list(times),
        **({"cpu_median_s": statistics.median(cpu_times)} if cpu_times else {}),
    }


def _timed_call(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()  # like timeit: no collector pauses inside a sample
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        return time.perf_counter() - t0, time.process_time() - c0
    finally:
        if enabled:
            gc.enable()


def time_fn(fn: Callable[[], object], *, warmup: int = 2, repeats: int = 10) -> dict:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` timed samples; :func:`summarize`."""
    for _ in range(warmup):
        fn()
    wall, cpu = zip(*(_timed_call(fn) for _ in range(repeats)))
    return summarize(wall, cpu)


def time_interleaved(fns: dict[str, Callable[[], object]], *, warmup: int = 2, repeats: int = 10) -> dict[str, dict]:
    """Time several variants round-robin (A B C, B C A, C A B, …) so that load changes on a
    shared machine hit every variant alike; per-variant :func:`summarize`."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            samples[name].append(_timed_call(fns[name]))
    return {name: summarize(*zip(*s)) for name, s in samples.items()}


# -- environment --------------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str | None:
    """The short commit of the code that runs, ``+dirty`` where a tracked file differs from it. The
    results folder is left out: a fresh run removes or rewrites its own committed row log and
    tables, which changes no code (and ``--write-reference`` refuses rows from dirty code)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5
        )
        if out.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)benchmarks/results"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def env_info() -> dict:
    """Package versions (:func:`mfsde.training.package_versions`), torch threads, CPU model/count,
    load average, git commit, timestamp."""
    import torch

    from mfsde.training import package_versions

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = None
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    return {
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),  # the same record as a run's meta.json
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
        "torch_config_parallel": torch.__config__.parallel_info().splitlines()[:6],
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "loadavg_1_5_15": load,
        "git_commit": _git_commit(),
        "argv": sys.argv,
    }


# -- sharding, resuming, the row log ----------------------------------------------------------
def shard(text: str) -> tuple[int, int]:
    """``--shard K/N`` as ``(K, N)`` with 1 ≤ K ≤ N (an argparse ``type``: a one-line error otherwise)."""
    import argparse

    k, _, n = text.partition("/")
    try:
        k, n = int(k), int(n or 1)
    except ValueError:
        k = n = 0
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"expected K/N with 1 <= K <= N, got {text!r}")
    return k, n


def add_set_option(
    ap, help: str = "config overrides for every run (parsed as by `mfsde fit --set`; recorded in each row)"
):
    """``--set KEY=VALUE …``: config overrides, into ``args.overrides`` (parse with :func:`overrides`)."""
    ap.add_argument("--set", dest="overrides", nargs="+", default=[], metavar="KEY=VALUE", help=help)


def overrides(ap, values: Sequence[str]) -> dict:
    """``--set``'s values as a dict, parsed as ``mfsde fit --set`` parses them; a bad one exits
    with argparse's one-line error (status 2)."""
    from mfsde.cli import CLIError, parse_overrides

    try:
        return parse_overrides(values)
    except CLIError as exc:
        ap.error(str(exc))


def share(items: Sequence, part: tuple[int, int]) -> list:
    """The ``--shard K/N`` share of ``items``: every N-th one, starting at the K-th."""
    k, n = part
    return list(items)[k - 1 :: n]


def rows_log(name: str) -> Path:
    """``results/<name>.rows.jsonl``: the run's rows, one JSON object a line, appended as runs finish
    (shard K of N > 1 writes ``<name>.shard-K-of-N.rows.jsonl`` instead, :func:`shard_log`; reading
    the log reads them all, :func:`read_rows`)."""
    return RESULTS_DIR / f"{name}.rows.jsonl"


def shard_log(log: Path, shard: tuple[int, int] = (1, 1)) -> Path:
    """The file shard ``(K, N)`` of a run appends its rows to: ``log`` itself for a single process,
    ``<name>.shard-K-of-N.rows.jsonl`` beside it otherwise, so that every file has one writer and a
    shard that starts late cannot delete the rows of one that started early."""
    k, n = shard
    return log if n == 1 else log.with_name(log.name.replace(".rows.jsonl", f".shard-{k}-of-{n}.rows.jsonl"))


def _shard_logs(log: Path) -> list[Path]:
    return sorted(log.parent.glob(log.name.replace(".rows.jsonl", ".shard-*-of-*.rows.jsonl")))


def read_rows(path: Path) -> list[dict]:
    """The rows of a ``*.rows.jsonl`` log (one JSON object per line) and of its shards' logs
    (:func:`shard_log`); ``[]`` if there are none."""
    rows = []
    for p in [path, *_shard_logs(path)]:
        if p.is_file():
            rows += [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
    return rows


def load_rows(name: str) -> tuple[list[dict], Path]:
    """The rows of the result ``name`` and the file they came from: its row log, or, where the log
    is not kept (a named result committed as JSON and table only), the ``rows`` its JSON holds,
    which a render writes from the whole log. ``([], log path)`` if there are none."""
    log = rows_log(name)
    rows = read_rows(log)
    if rows:
        return rows, log
    path = RESULTS_DIR / f"{name}.json"
    if path.is_file():
        stored = json.loads(path.read_text()).get("rows")
        if isinstance(stored, list) and stored:
            return stored, path
    return [], log


def start_log(log: Path, *, resume: bool, shard: tuple[int, int] = (1, 1)) -> tuple[list[dict], Path]:
    """Open a run's row log for shard ``(K, N)``: ``(rows, out)``, ``out`` the file this shard appends
    to (:func:`shard_log`) and ``rows``, with ``resume``, the rows so far of every shard (the runs to
    skip); otherwise ``[]``, after deleting the rows of an earlier run that this one replaces: its
    own shard's file and the files no shard of an N-way run writes (the single log, shards of
    another N). Each shard deletes only what no other shard of this run appends to, so shards may
    start in any order."""
    log.parent.mkdir(parents=True, exist_ok=True)
    own = shard_log(log, shard)
    if resume:
        return read_rows(log), own
    n = shard[1]
    stale = [log, *(p for p in _shard_logs(log) if not p.name.endswith(f"-of-{n}.rows.jsonl"))]
    for p in {own, *stale}:
        p.unlink(missing_ok=True)
    return [], own


def run_fields(commit: str | None, threads: int | None = None) -> dict:
    """What a row records about where it ran: the 1-minute load average now, the torch threads
    (when the script sets them) and the git commit of the code (``env_info()["git_commit"]``, taken
    once when the process starts: the code it imported)."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {"loadavg_1": load, **({"threads": threads} if threads is not None else {}), "git_commit": commit}


def append_rows(log: Path, rows: Sequence[dict], **fields) -> None:
    """Append ``rows`` (each with ``fields`` added, e.g. :func:`run_fields`) to the row log at once,
    so that an interrupted run keeps every finished one."""
    with open(log, "a") as fh:
        for r in rows:
            fh.write(json.dumps({**r, **fields}) + "\n")


# -- mean ± spread over seeds -------------------------------------------------------------------
def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1) of ``values``; the std is NaN for one value."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    return float(v.mean()), (float(v.std(ddof=1)) if v.size > 1 else float("nan"))


def pm(mean: float, std: float | None, digits: int = 3) -> str:
    """``"mean ± std"`` with ``digits`` decimals; ``"mean"`` alone where the std is undefined."""
    return f"{mean:.{digits}f}" + ("" if std is None or math.isnan(std) else f" ± {std:.{digits}f}")


def mean_pm(values: Sequence[float | None], digits: int = 3, *, drop_undefined: bool = False) -> str:
    """Mean ± sample std of ``values`` over seeds (:func:`pm`), ``"–"`` without a value. An undefined
    value (``None``, NaN) makes the cell ``"–"``, or with ``drop_undefined`` is left out with the
    other non-finite ones (e.g. an interaction error on a control)."""
    vals = [math.nan if v is None else float(v) for v in values]
    if drop_undefined:
        vals = [v for v in vals if math.isfinite(v)]
    if not vals or any(math.isnan(v) for v in vals):
        return "–"
    return pm(*mean_std(vals), digits)


# -- output -------------------------------------------------------------------------------------
#: train settings a preset may set beyond scIMF's recipe: every model row records them, and
#: ``--resume`` refuses rows trained otherwise than today's preset (pairwise_mlp before its random
#: groups, rbf before its own step size)
PRESET_TRAIN_KEYS = ("random_batch", "inter_lr")


def train_settings(train) -> dict:
    """``PRESET_TRAIN_KEYS`` of a ``TrainConfig`` (what a row records)."""
    return {k: getattr(train, k) for k in PRESET_TRAIN_KEYS}


def logged_train_settings(row: dict) -> dict:
    """``PRESET_TRAIN_KEYS`` as a logged row has them (rows from before they were logged: from the
    row's overrides, else None)."""
    own = row.get("overrides") or {}
    return {k: row.get(k, own.get(f"train.{k}")) for k in PRESET_TRAIN_KEYS}


def write_json(name: str, payload: dict) -> Path:
    """Write ``benchmarks/results/<name>.json`` atomically (via a ``.tmp`` file) and return the path.

    Every results file has the same envelope: ``benchmark`` (the name), ``environment``
    (:func:`env_info`, taken from the payload's ``environment``/``env`` when it has one, e.g. a
    run re-rendered from stored rows) and ``git_commit`` first, then the script's own keys."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = dict(payload)
    env = payload.pop("environment", None) or payload.pop("env", None) or env_info()
    doc = {
        "benchmark": payload.pop("benchmark", name),
        "environment": env,
        "git_commit": env.get("git_commit"),
        **payload,
    }
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(path)
    return path


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-markdown table; numbers right-aligned, everything else left-aligned."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(str(h)) for i, h in enumerate(headers)]
    numeric = [
        all(isinstance(row[i], (int, float)) or row[i] is None for row in rows) if rows else False
        for i in range(len(headers))
    ]

    def line(values):
        return "| " + " | ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)) + " |"

    sep = (
        "|" + "|".join(("-" * (w + 1) + ":") if num else (":" + "-" * (w + 1)) for w, num in zip(widths, numeric)) + "|"
    )
    return "\n".join([line([str(h) for h in headers]), sep, *(line(r) for r in cells)])


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


def ms(seconds: float) -> float:
    return seconds * 1e3
