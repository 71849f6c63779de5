"""What the commands read: overrides and configs, data specs and their loading, tasks, run
directories, and the evaluation tables they print."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mfsde.training._runs import RunDir


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


# -- helpers ------------------------------------------------------------------------------------------
def parse_value(text: str) -> Any:
    """A ``--set`` value: a TOML literal (``3``, ``1e-3``, ``true``, ``"x"``, ``[1, 2]``,
    ``{name = "rbf"}``), else JSON (``null`` → None, ``{"a": 1}``), else the raw string."""
    from mfsde.config._schema import toml_loads

    try:
        return toml_loads(f"v = {text}")["v"]
    except ValueError:  # tomllib/tomli.TOMLDecodeError
        pass
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CLIError(f"--set expects KEY=VALUE (e.g. train.lr=1e-3), got {item!r}")
        out[key] = parse_value(value.strip())
    return out


def _shortcut_overrides(args) -> dict[str, Any]:
    out = parse_overrides(getattr(args, "overrides", []) or [])
    for flag, key in (
        ("iterations", "train.iterations"),
        ("n_particles", "train.n_particles"),
        ("replicas", "train.replicas"),
        ("seed", "train.seed"),
        ("time_budget", "train.time_budget"),
        ("mass", "data.mass"),
    ):
        v = getattr(args, flag, None)
        if v is not None:
            if key in out and out[key] != v:  # nothing silently wins
                raise CLIError(f"--{flag.replace('_', '-')} {v} and --set {key}={out[key]} disagree; give one of them")
            out[key] = v
    return out


#: the growth model ``--mass counts`` turns on when the config names none
DEFAULT_GROWTH = "mlp"


def build_config(args, dim: int):
    """The config of ``fit``: ``--config`` or ``--preset`` (default scimf) for data of dimension
    ``dim`` (a config file without ``model.dim`` gets the data's), then ``--set`` and shortcuts."""
    from mfsde.config import Config, preset

    if getattr(args, "config", None):
        path = Path(args.config)
        if not path.is_file():
            raise CLIError(f"config file {str(path)!r} does not exist")
        cfg = Config.load(path, dim=dim)
    else:
        cfg = preset(getattr(args, "preset", None) or "scimf", dim=dim)
    overrides = _shortcut_overrides(args)
    if (
        overrides.get("data.mass", "normalised") != "normalised"
        and cfg.model.growth.name == "none"
        and "model.growth.name" not in overrides
        and "model.growth" not in overrides
    ):
        overrides["model.growth.name"] = DEFAULT_GROWTH  # masses need a mass channel (--mass's help says so)
    return cfg.override(**overrides) if overrides else cfg


def _check_paths(paths: Sequence[str]) -> None:
    for p in paths:
        if "*" not in p and "{" not in p and not Path(p).exists():
            raise CLIError(f"data file {p!r} does not exist")


def data_spec(args) -> dict:
    """The data options of the command line as a JSON-able dict (absolute paths)."""
    return {
        "paths": [p if ("*" in p or "{" in p) else str(Path(p).resolve()) for p in args.data],
        "time_col": args.time_col,
        "label_col": args.label_col,
        "times": args.times,
        "features": getattr(args, "features", None),
        "drop_cols": getattr(args, "drop_cols", None),
        "allow_pickle": bool(getattr(args, "allow_pickle", False)),
        "population_col": getattr(args, "population_col", None),
        "heldout_populations": getattr(args, "heldout_populations", None),
    }


def load_data(spec: dict):
    """Load snapshots from a :func:`data_spec` dict through :func:`mfsde.data.load`: ``times``
    becomes ``times=`` for .npy inputs and ``time_values=`` (the time of the k-th distinct raw
    time value) for .csv/.h5ad."""
    from mfsde import data as mdata

    paths = list(spec["paths"])
    _check_paths(paths)
    tabular = len(paths) == 1 and Path(paths[0]).suffix.lower() in (".csv", ".h5ad")
    kw: dict[str, Any] = {}
    if spec.get("allow_pickle") and not (len(paths) == 1 and Path(paths[0]).suffix.lower() == ".npy"):
        raise CLIError("--allow-pickle applies to a single stacked .npy file only")
    if tabular:
        for key in ("time_col", "label_col", "population_col"):
            if spec.get(key) is not None:
                kw[key] = spec[key]
        if spec.get("times") is not None:
            kw["time_values"] = list(spec["times"])
        if Path(paths[0]).suffix.lower() == ".h5ad" and "time_col" not in kw:
            raise CLIError("an .h5ad input needs --time-col (the obs column with each cell's time)")
        if spec.get("features"):
            kw["genes" if Path(paths[0]).suffix.lower() == ".h5ad" else "feature_cols"] = list(spec["features"])
        if spec.get("drop_cols"):
            if Path(paths[0]).suffix.lower() != ".csv":
                raise CLIError("--drop-cols applies to .csv data only (use --features for .h5ad)")
            kw["drop_cols"] = list(spec["drop_cols"])
    else:
        for key in ("time_col", "label_col", "features", "drop_cols", "population_col"):
            if spec.get(key):
                raise CLIError(f"--{key.replace('_', '-')} applies to .csv/.h5ad data only")
        if spec.get("times") is not None:
            kw["times"] = list(spec["times"])
        if spec.get("allow_pickle"):
            kw["allow_pickle"] = True
    return mdata.load(paths if len(paths) > 1 else paths[0], **kw)


def _default_task(n_times: int) -> str:
    if n_times < 3:
        raise CLIError(f"the data have {n_times} time points; a held-out task needs at least 3 (pass --task)")
    return f"interpolate:{n_times // 2}"


def get_task(name: str, n_times: int):
    from mfsde.data._tasks import get_task as _get

    return _get(name, n_times)


def make_task(snaps, name: str | None, heldout_populations: Sequence[str] | None = None):
    """The task of the command line: a :class:`~mfsde.data.Task` for one population; for
    :class:`~mfsde.data.Populations` a :class:`~mfsde.data.PopulationTask` (time task default
    ``"all"`` when populations are held out, else the middle time point of the shortest)."""
    from mfsde.data import Populations, PopulationTask

    if not isinstance(snaps, Populations):
        if heldout_populations:
            raise CLIError("--heldout-populations needs data with populations (--population-col COL)")
        return get_task(name or _default_task(snaps.n_times), snaps.n_times)
    held = list(heldout_populations or [])
    if name is None:
        name = "all" if held else _default_task(min(s.n_times for s in snaps.values()))
    task = PopulationTask(name, held)
    task.resolve(snaps)  # unknown populations / tasks that do not fit a population: one-line errors
    return task


def _describe_task(snaps, task) -> str:
    if hasattr(task, "train"):
        return (
            f"{snaps.n_times} time points, dim {snaps.dim}); task {task.name}: train {list(task.train)}, "
            f"held out {list(task.heldout)}"
        )
    held = list(task.heldout_populations)
    return (
        f"{len(snaps)} populations, dim {snaps.dim}); task {task.name}: train populations "
        f"{task.training_names(snaps)}, held-out populations {held or 'none'}"
    )


def _has_heldout(task) -> bool:
    return bool(list(task.heldout)) if hasattr(task, "heldout") else True


def _run_dir(path: str) -> Path:
    try:
        return RunDir(path).require_checkpoint().path
    except FileNotFoundError as e:
        raise CLIError(str(e)) from None


def _run_data_and_task(args, run: Path):
    """Data and task for evaluate/explain: the command line's, else those recorded in the run."""
    saved = RunDir(run).read_data_spec()
    if args.data:
        spec = data_spec(args)
    elif saved.get("paths"):
        spec = saved
        for k in ("time_col", "label_col", "times", "features", "drop_cols", "population_col"):  # explicit flags win
            if getattr(args, k, None) is not None:
                spec[k] = getattr(args, k)
        if getattr(args, "allow_pickle", False):
            spec["allow_pickle"] = True
    else:
        raise CLIError(f"the run {str(run)!r} records no data; pass --data")
    snaps = load_data(spec)
    task = None
    if not hasattr(snaps, "n_times"):  # populations
        t = RunDir(run).read_meta().get("task") or {}
        held = (
            getattr(args, "heldout_populations", None)
            or t.get("heldout_populations")
            or saved.get("heldout_populations")
        )
        time_task = args.task or (t.get("time_task") if isinstance(t.get("time_task"), str) else None)
        return snaps, make_task(snaps, time_task, held)
    if args.task:
        task = get_task(args.task, snaps.n_times)
    else:
        t = RunDir(run).read_meta().get("task") or {}
        if t.get("name"):
            try:
                task = get_task(t["name"], snaps.n_times)
            except (KeyError, ValueError):
                task = None
        if task is None and "heldout" in t:
            from mfsde.data._tasks import Task

            task = Task(t.get("name") or "custom", list(t.get("train", [])), list(t.get("heldout", [])))
        if task is None:
            task = get_task(saved.get("task") or _default_task(snaps.n_times), snaps.n_times)
    return snaps, task


def _print_eval(ev: dict, title: str = "", baselines: Sequence[dict] = ()) -> None:
    """A Markdown table: the model's W1/W2 per held-out time (and mean), and a row per baseline;
    with masses (``data.mass``) also the predicted mass and its TMV."""
    if title:
        print(title)
    masses = "tmv" in ev
    extra = " mass (observed) | TMV |" if masses else ""
    print("| method | time index | time | observed cells | W1 | W2 |" + extra)
    print("|---|---|---|---|---|---|" + ("---|---|" if masses else ""))
    for name, e in [("model", ev)] + [(b["preset"], b) for b in baselines]:
        for r in e["per_time"]:
            note = " (falls back to previous)" if r.get("note") else ""
            where = r["index"] if r.get("population") is None else f"{r['population']}:{r['index']}"
            cells = ""
            if masses:
                cells = f" {r['mass']:.3f} ({r['mass_observed']:.3f}) | {r['tmv']:.3f} |" if "tmv" in r else " – | – |"
            print(
                f"| {name}{note} | {where} | {r['time']:g} | {r['n_observed']} | "
                f"{r.get('w1', float('nan')):.4f} | {r.get('w2', float('nan')):.4f} |" + cells
            )
        if name == "model" or len(e["per_time"]) > 1:
            cells = (f" | {e['tmv']:.3f} |" if "tmv" in e else " | – |") if masses else ""
            print(f"| {name} | mean | | | {e.get('w1', float('nan')):.4f} | {e.get('w2', float('nan')):.4f} |" + cells)


def _baselines_for(args, snaps, task, ev: dict, mass="normalised") -> list[dict]:
    """The baseline evaluations matching ``ev`` (same cell count, seed and times, masses as
    ``data.mass``), unless ``--no-baselines``."""
    from mfsde.evaluation._baselines import baseline_evaluations

    if getattr(args, "no_baselines", False):
        return []
    return baseline_evaluations(
        snaps, task, n_particles=ev["n_particles"], seed=ev["seed"], times=getattr(args, "at", None), mass=mass
    )
