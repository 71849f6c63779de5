"""Command-line interface: ``mfsde fit | evaluate | compare | explain | demo``.

Also reachable as ``python -m mfsde``. Every subcommand has ``--help`` with examples. Errors in
the inputs (a missing file, an unknown preset, task or config key, a bad value) print one
line ``mfsde: error: …`` to stderr and exit with status 2; ``--debug`` shows the traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any, Sequence

from ._io import write_text_atomic

DATA_SPEC_FILE = "data.json"  # written by `mfsde fit` into the run directory

_MAIN_DESCRIPTION = """\
mfsde: mean-field (McKean–Vlasov) neural SDEs for time-series snapshot data.

Fit a model (scIMF by default: an MLP single-cell drift plus transformer attention between
cells) to cells observed at a few time points, evaluate it on held-out time points by exact
W1/W2, compare presets over seeds, and draw what it learned (cell-wise and cell-type
interaction matrices, velocities)."""

_MAIN_EPILOG = """\
examples:
  mfsde demo                                        # 2-3 minute tour on a simulated system
  mfsde fit --data cells.csv --task interpolate:2 --preset scimf --out runs/a
  mfsde evaluate --run runs/a
  mfsde explain --run runs/a
  mfsde compare --data cells.csv --task interpolate:2 --presets scimf ito --seeds 0 1 2 --out runs/cmp

presets: {presets}
tasks (time points are indexed from 0; index 0 is always trained): interpolate:2,3 (hold out
  those), extrapolate:M (hold out the last M), loo:K (leave K out), heldout:2,5, all (no
  held-out time), and scIMF's zb_easy|medium|hard, mef_easy|medium|hard, panc_loo_2..7.
Run `mfsde SUBCOMMAND --help` for the options of each subcommand."""


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog):
        super().__init__(prog, max_help_position=30, width=min(100, _term_width()))


def _fill(text: str) -> str:
    return textwrap.fill(" ".join(text.split()), width=min(92, _term_width() - 2))


def _term_width() -> int:
    import shutil

    return shutil.get_terminal_size((100, 24)).columns


# -- argument groups ------------------------------------------------------------------------------
def _add_data_args(p: argparse.ArgumentParser, required: bool) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", nargs="+", metavar="PATH", required=required, default=None,
                   help="snapshot data: one .csv (a time column + feature columns), one .h5ad, or "
                        "several .npy files (one (n_k, d) array per time point, in time order)"
                        + ("" if required else "; default: the data the run was fitted on"))
    g.add_argument("--time-col", default=None, metavar="COL",
                   help="CSV/h5ad column holding the time point of each cell (default: 'samples' for CSV)")
    g.add_argument("--features", nargs="+", default=None, metavar="COL",
                   help="CSV/h5ad: the feature columns (default: all but the time and label columns)")
    g.add_argument("--drop-cols", nargs="+", default=None, metavar="COL",
                   help="CSV: columns to leave out of the features (e.g. a barcode)")
    g.add_argument("--allow-pickle", action="store_true",
                   help="read a .npy stack stored as an object array (a pickle: only for files you trust)")
    g.add_argument("--label-col", default=None, metavar="COL",
                   help="column holding a cell-type label per cell (used by `explain`)")
    g.add_argument("--population-col", default=None, metavar="COL",
                   help="CSV/h5ad column naming each cell's population (condition, replicate, donor): "
                        "every population is simulated from its own first time point, particles "
                        "interacting only within their population")
    g.add_argument("--heldout-populations", nargs="+", default=None, metavar="NAME",
                   help="populations never trained on: each is predicted from its own first time point "
                        "and scored at all its later times (needs --population-col)")
    g.add_argument("--times", nargs="+", type=float, default=None, metavar="T",
                   help="time values of the time points (default: from the data, or 0, 1, 2, ...)")
    g.add_argument("--task", default=None, metavar="NAME",
                   help="which time points are held out, e.g. interpolate:2, extrapolate:1, loo:3"
                        + (" (default: interpolate at the middle time point)" if required else
                           "; default: the run's task (a new fit: interpolate at the middle time point)"))


def _add_config_args(p: argparse.ArgumentParser, presets: bool = False) -> None:
    from .config import PRESETS

    g = p.add_argument_group("model and training configuration")
    if not presets:
        src = g.add_mutually_exclusive_group()
        src.add_argument("--preset", default=None, metavar="NAME",
                         help=f"named configuration: {', '.join(PRESETS)} (default: scimf)")
        src.add_argument("--config", default=None, metavar="FILE",
                         help="a .toml or .json config file (mfsde.Config format)")
    g.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config entry by dotted key; VALUE is a TOML/JSON literal, e.g. "
                        "--set train.lr=3e-4 --set model.inter.heads=1 --set 'loss.fit={name=\"mmd\"}' "
                        "(repeatable)")
    g.add_argument("--iterations", type=int, default=None, metavar="N", help="shortcut for --set train.iterations=N")
    g.add_argument("--n-particles", type=int, default=None, metavar="N",
                   help="shortcut for --set train.n_particles=N (simulated cells per training iteration)")
    g.add_argument("--populations", type=int, default=None, metavar="P",
                   help="shortcut for --set train.populations=P (independent populations per iteration, "
                        "over all ranks under torchrun; must be divisible by the number of processes)")
    g.add_argument("--time-budget", type=_positive_seconds, default=None, metavar="SECONDS",
                   help="stop each run after this many seconds of training steps or at --iterations, "
                        "whichever comes first (shortcut for --set train.time_budget=SECONDS); compare "
                        "methods at equal compute")
    if not presets:
        g.add_argument("--seed", type=int, default=None, metavar="S", help="shortcut for --set train.seed=S")


def _positive_seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return v


def _add_threads(p: argparse.ArgumentParser) -> None:
    """``--threads`` after the subcommand too (``mfsde fit --threads 1``); SUPPRESS keeps a value
    given before the subcommand."""
    p.add_argument("--threads", type=_positive_int, default=argparse.SUPPRESS, metavar="N",
                   help="torch threads (default: half the cores this process may use, at least 1)")


def _positive_int(text: str, expected: str = "a positive integer") -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return v


def _cell_count(text: str) -> int | None:
    return None if text == "all" else _positive_int(text, "a positive number of cells or 'all'")


def _add_eval_args(p: argparse.ArgumentParser, many: bool = False) -> None:
    """``--start`` (protocol) and ``--no-baselines`` for evaluate / compare."""
    from .evaluation import START

    p.add_argument("--start", nargs="+" if many else None, choices=START, default=["t0"] if many else "t0",
                   help="evaluation protocol: t0 = simulate from the first time point (scIMF's); previous = "
                        "simulate each held-out time from the nearest earlier training time point (the "
                        "flow-matching literature's)" + (" (several: a table row each)" if many else "")
                        + " (default: t0)")
    p.add_argument("--no-baselines", action="store_true",
                   help="skip the baseline rows (copy of the previous training time point, McCann "
                        "interpolation, sampling floor) that are otherwise printed beside the model")


def build_parser() -> argparse.ArgumentParser:
    from .config import PRESETS

    parser = argparse.ArgumentParser(
        prog="mfsde", description=_MAIN_DESCRIPTION, formatter_class=_Formatter,
        epilog=_MAIN_EPILOG.format(presets=", ".join(PRESETS)),
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"mfsde {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks instead of one-line errors")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import MODULE (a dotted name or a .py file) first, so the components it registers "
                             "(e.g. @INTERACTIONS.register('name')) work by name; repeatable. Entry points of "
                             "the group 'mfsde.plugins' are always loaded")
    parser.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                        help="torch threads (default: half the cores this process may use, at least 1; "
                             "torch's own default of all cores is many times slower on a busy machine)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    # fit
    p = sub.add_parser(
        "fit", help="train a model and write a run directory", formatter_class=_Formatter,
        description=_fill("Train a mean-field SDE on the training time points of a task and write a run "
                    "directory (config.json, meta.json, history.jsonl, checkpoint.pt, data.json)."),
        epilog=textwrap.dedent("""\
            examples:
              mfsde fit --data ../shared/data/emt/emt.csv --task interpolate:2 --out runs/emt-scimf
              mfsde fit --data day0.npy day1.npy day2.npy --times 0 1 3 --task extrapolate:1 \\
                        --preset ito --iterations 500 --seed 1 --out runs/ito
              mfsde fit --data cells.h5ad --time-col day --label-col cell_type --config my.toml \\
                        --set model.inter.heads=1 --set train.lr=3e-4 --out runs/custom
              mfsde fit --resume runs/emt-scimf --iterations 5000   # continue a run
              torchrun --standalone --nproc_per_node=4 -m mfsde fit --data cells.csv \\
                        --populations 4 --out runs/ddp   # data-parallel: one population per process

            under torchrun (WORLD_SIZE > 1) fit joins the process group (NCCL on GPUs, else gloo);
            rank 0 prints, writes the run directory and evaluates; see docs/distributed.md.
            """))
    _add_data_args(p, required=False)
    _add_config_args(p)
    p.add_argument("--out", default=None, metavar="DIR", help="run directory (default: runs/<preset>-seed<seed>)")
    p.add_argument("--resume", default=None, metavar="DIR",
                   help="continue the run in DIR (its config, data and task; only --iterations may change)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-eval", action="store_true", help="skip the held-out evaluation at the end")
    _add_threads(p)
    p.set_defaults(func=cmd_fit)

    # evaluate
    p = sub.add_parser(
        "evaluate", help="W1/W2 of a fitted run at the held-out time points", formatter_class=_Formatter,
        description=_fill("Simulate cells from the first time point with a fitted run and measure exact W1 "
                    "and W2 (POT) against all observed cells at each held-out time point (scIMF's "
                    "protocol). Prints a table and writes eval.json."),
        epilog=textwrap.dedent("""\
            examples:
              mfsde evaluate --run runs/emt-scimf
              mfsde evaluate --run runs/emt-scimf --task extrapolate:1 --n-particles 500
              mfsde evaluate --run runs/a --at 1 2 3   # specific time indices, e.g. training ones
            """))
    p.add_argument("--run", required=True, metavar="DIR", help="run directory written by `mfsde fit`")
    _add_data_args(p, required=False)
    p.add_argument("--at", nargs="+", type=int, default=None, metavar="K",
                   help="evaluate at these time indices instead of the task's held-out ones")
    p.add_argument("--n-particles", type=_cell_count, default=0, metavar="N",
                   help="simulated cells, or 'all' (every cell of the start time point) (default: the config's "
                        "eval.n_particles)")
    p.add_argument("--seed", type=int, default=None, metavar="S", help="simulation seed (default: the config's eval.seed)")
    _add_eval_args(p)
    p.add_argument("--out", default=None, metavar="FILE", help="where to write the JSON result (default: RUN/eval.json)")
    _add_threads(p)
    p.set_defaults(func=cmd_evaluate)

    # compare
    p = sub.add_parser(
        "compare", help="train presets over seeds and tabulate held-out W1/W2", formatter_class=_Formatter,
        description=_fill("Train every preset with every seed on a task, evaluate each on the held-out "
                    "time points and print mean ± std over seeds as a Markdown table. Writes "
                    "results.csv (one row per run), summary.csv, summary.md and every run directory."),
        epilog=textwrap.dedent("""\
            examples:
              mfsde compare --data ../shared/data/emt/emt.csv --task interpolate:2 \\
                            --presets scimf ito symmetric_qk --seeds 0 1 2 --iterations 500 --out runs/cmp
              mfsde compare --data cells.csv --task loo:3 --presets scimf rbf --seeds 0 --set model.dt=0.05
            """))
    _add_data_args(p, required=True)
    p.add_argument("--presets", nargs="+", required=True, metavar="NAME", help=f"presets to compare: {', '.join(PRESETS)}")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], metavar="S", help="training seeds (default: 0)")
    _add_config_args(p, presets=True)
    _add_eval_args(p, many=True)
    p.add_argument("--out", default=None, metavar="DIR", help="output directory (default: runs/compare-<task>)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_threads(p)
    p.set_defaults(func=cmd_compare)

    # explain
    p = sub.add_parser(
        "explain", help="interaction matrices, velocities and figures of a fitted run", formatter_class=_Formatter,
        description=_fill("Interpretation outputs of a fitted run (scIMF's 'interpretation'): per time "
                    "point the cell-wise interaction matrix of the observed cells (rows = receivers, "
                    "columns = sources, ordered by label), the cell-type-wise matrix with its "
                    "asymmetry index and a directed cell-type graph (with --label-col), the drift "
                    "f(x, ρ) at the observed cells drawn on a 2-D PCA embedding next to simulated "
                    "vs observed cells, and the training-loss curve. Writes .npz arrays, "
                    "summary.json and PNG figures."),
        epilog=textwrap.dedent("""\
            examples:
              mfsde explain --run runs/emt-scimf
              mfsde explain --run runs/a --data cells.csv --label-col cell_type --time-index 0 3 --n-cells 600
            """))
    p.add_argument("--run", required=True, metavar="DIR", help="run directory written by `mfsde fit`")
    _add_data_args(p, required=False)
    p.add_argument("--time-index", nargs="+", type=int, default=None, metavar="K",
                   help="time points (indices) for the interaction matrices (default: all)")
    p.add_argument("--n-cells", type=_positive_int, default=400, metavar="N",
                   help="cells per interaction matrix (random subset; the matrix is N×N; default: %(default)s)")
    p.add_argument("--n-particles", type=int, default=1000, metavar="N", help="simulated cells for the predicted-vs-observed panel (default: %(default)s)")
    p.add_argument("--clusters", type=_positive_int, default=None, metavar="K",
                   help="for data without labels: use K k-means clusters of the observed cells as "
                        "pseudo cell types (gives the cell-type matrix and graph)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of cell subsets and simulation (default: %(default)s)")
    p.add_argument("--no-figures", action="store_true", help="write arrays and summary.json only")
    p.add_argument("--population", default=None, metavar="NAME",
                   help="with populations: the population to explain (default: the first training one); "
                        "output goes to RUN/explain/NAME")
    p.add_argument("--out", default=None, metavar="DIR", help="output directory (default: RUN/explain)")
    _add_threads(p)
    p.set_defaults(func=cmd_explain)

    # demo
    p = sub.add_parser(
        "demo", help="a 2-3 minute tour: scIMF vs Itô SDE on a simulated interacting system",
        formatter_class=_Formatter,
        description=_fill("Simulate a small 2-D interacting particle system (mfsde.systems.demo_dataset), "
                    "hold out its middle time point, fit the `scimf` preset (attention interaction) "
                    "and the `ito` preset (no interaction) briefly, and print the held-out W1/W2 of "
                    "both. With --out, the runs and the interpretation figures of the scimf fit are "
                    "written there."),
        epilog=textwrap.dedent("""\
            examples:
              mfsde demo
              mfsde demo --iterations 400 --seed 1 --out runs/demo
            """))
    from .demo import DEFAULT_ITERATIONS

    p.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS, metavar="N", help="training iterations per model (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of data, training and evaluation (default: %(default)s)")
    p.add_argument("--out", default=None, metavar="DIR", help="also write runs, results and figures here")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_threads(p)
    p.set_defaults(func=cmd_demo)
    return parser


# -- helpers ------------------------------------------------------------------------------------------
def parse_value(text: str) -> Any:
    """A ``--set`` value: a TOML literal (``3``, ``1e-3``, ``true``, ``"x"``, ``[1, 2]``,
    ``{name = "rbf"}``), else JSON (``null`` → None, ``{"a": 1}``), else the raw string."""
    from .config import toml_loads

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
    for flag, key in (("iterations", "train.iterations"), ("n_particles", "train.n_particles"),
                      ("populations", "train.populations"), ("seed", "train.seed"),
                      ("time_budget", "train.time_budget")):
        v = getattr(args, flag, None)
        if v is not None:
            out[key] = v
    return out


def build_config(args, dim: int):
    """The config of ``fit``: ``--config`` or ``--preset`` (default scimf) for data of dimension
    ``dim`` (a config file without ``model.dim`` gets the data's), then ``--set`` and shortcuts."""
    from .config import Config, preset

    if getattr(args, "config", None):
        path = Path(args.config)
        if not path.is_file():
            raise CLIError(f"config file {str(path)!r} does not exist")
        cfg = Config.load(path)
        raw = _read_raw_config(path)
        if "dim" not in (raw.get("model") or {}):
            cfg = cfg.override(**{"model.dim": dim})
    else:
        cfg = preset(getattr(args, "preset", None) or "scimf", dim=dim)
    overrides = _shortcut_overrides(args)
    return cfg.override(**overrides) if overrides else cfg


def _read_raw_config(path: Path) -> dict:
    if path.suffix == ".toml":
        from .config import toml_loads

        return toml_loads(path.read_text())
    return json.loads(path.read_text())


def _check_paths(paths: Sequence[str]) -> None:
    for p in paths:
        if "*" not in p and "{" not in p and not Path(p).exists():
            raise CLIError(f"data file {p!r} does not exist")


def data_spec(args) -> dict:
    """The data options of the command line as a JSON-able dict (absolute paths)."""
    return {
        "paths": [p if ("*" in p or "{" in p) else str(Path(p).resolve()) for p in args.data],
        "time_col": args.time_col, "label_col": args.label_col, "times": args.times,
        "features": getattr(args, "features", None), "drop_cols": getattr(args, "drop_cols", None),
        "allow_pickle": bool(getattr(args, "allow_pickle", False)),
        "population_col": getattr(args, "population_col", None),
        "heldout_populations": getattr(args, "heldout_populations", None),
    }


def load_data(spec: dict):
    """Load snapshots from a :func:`data_spec` dict through :func:`mfsde.data.load`: ``times``
    becomes ``times=`` for .npy inputs and ``time_values=`` (the time of the k-th distinct raw
    time value) for .csv/.h5ad."""
    from . import data as mdata

    paths = list(spec["paths"])
    _check_paths(paths)
    tabular = len(paths) == 1 and Path(paths[0]).suffix.lower() in (".csv", ".h5ad")
    kw: dict[str, Any] = {}
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
        if spec.get("allow_pickle") and len(paths) == 1 and Path(paths[0]).suffix.lower() == ".npy":
            kw["allow_pickle"] = True
    return mdata.load(paths if len(paths) > 1 else paths[0], **kw)


def _default_task(n_times: int) -> str:
    if n_times < 3:
        raise CLIError(f"the data have {n_times} time points; a held-out task needs at least 3 (pass --task)")
    return f"interpolate:{n_times // 2}"


def get_task(name: str, n_times: int):
    from .data.tasks import get_task as _get

    return _get(name, n_times)


def make_task(snaps, name: str | None, heldout_populations: Sequence[str] | None = None):
    """The task of the command line: a :class:`~mfsde.data.Task` for one population; for
    :class:`~mfsde.data.Populations` a :class:`~mfsde.data.PopulationTask` (time task default
    ``"all"`` when populations are held out, else the middle time point of the shortest)."""
    from .data import Populations, PopulationTask

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
        return (f"{snaps.n_times} time points, dim {snaps.dim}); task {task.name}: train {list(task.train)}, "
                f"held out {list(task.heldout)}")
    held = list(task.heldout_populations)
    return (f"{len(snaps)} populations, dim {snaps.dim}); task {task.name}: train populations "
            f"{task.training_names(snaps)}, held-out populations {held or 'none'}")


def _has_heldout(task) -> bool:
    return bool(list(task.heldout)) if hasattr(task, "heldout") else True


def _run_dir(path: str) -> Path:
    d = Path(path)
    if not d.is_dir():
        raise CLIError(f"run directory {path!r} does not exist")
    if not (d / "checkpoint.pt").is_file():
        raise CLIError(f"{path!r} is not a run directory (no checkpoint.pt; write one with `mfsde fit`)")
    return d


def _run_data_and_task(args, run: Path):
    """Data and task for evaluate/explain: the command line's, else those recorded in the run."""
    spec_file = run / DATA_SPEC_FILE
    saved = json.loads(spec_file.read_text()) if spec_file.is_file() else {}
    if args.data:
        spec = data_spec(args)
    elif saved.get("paths"):
        spec = saved
        for k in ("time_col", "label_col", "times"):  # explicit flags still win
            if getattr(args, k, None) is not None:
                spec[k] = getattr(args, k)
    else:
        raise CLIError(f"the run {str(run)!r} records no data; pass --data")
    snaps = load_data(spec)
    task = None
    if not hasattr(snaps, "n_times"):  # populations
        meta_file = run / "meta.json"
        t = (json.loads(meta_file.read_text()) if meta_file.is_file() else {}).get("task") or {}
        held = getattr(args, "heldout_populations", None) or t.get("heldout_populations") \
            or saved.get("heldout_populations")
        time_task = args.task or (t.get("time_task") if isinstance(t.get("time_task"), str) else None)
        return snaps, make_task(snaps, time_task, held)
    if args.task:
        task = get_task(args.task, snaps.n_times)
    else:
        meta_file = run / "meta.json"
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
        t = meta.get("task") or {}
        if t.get("name"):
            try:
                task = get_task(t["name"], snaps.n_times)
            except (KeyError, ValueError):
                task = None
        if task is None and "heldout" in t:
            from .data.tasks import Task

            task = Task(t.get("name") or "custom", list(t.get("train", [])), list(t.get("heldout", [])))
        if task is None:
            task = get_task(saved.get("task") or _default_task(snaps.n_times), snaps.n_times)
    return snaps, task


def _print_eval(ev: dict, title: str = "", baselines: Sequence[dict] = ()) -> None:
    """A Markdown table: the model's W1/W2 per held-out time (and mean), and a row per baseline."""
    if title:
        print(title)
    print("| method | time index | time | observed cells | W1 | W2 |")
    print("|---|---|---|---|---|---|")
    for name, e in [("model", ev)] + [(b["preset"], b) for b in baselines]:
        for r in e["per_time"]:
            note = " (falls back to previous)" if r.get("note") else ""
            where = r["index"] if r.get("population") is None else f"{r['population']}:{r['index']}"
            print(f"| {name}{note} | {where} | {r['time']:g} | {r['n_observed']} | "
                  f"{r.get('w1', float('nan')):.4f} | {r.get('w2', float('nan')):.4f} |")
        if name == "model" or len(e["per_time"]) > 1:
            print(f"| {name} | mean | | | {e.get('w1', float('nan')):.4f} | {e.get('w2', float('nan')):.4f} |")


def _baselines_for(args, snaps, task, ev: dict) -> list[dict]:
    """The baseline evaluations matching ``ev`` (same cell count, seed and times), unless
    ``--no-baselines``."""
    from .baselines import baseline_evaluations

    if getattr(args, "no_baselines", False):
        return []
    return baseline_evaluations(snaps, task, n_particles=ev["n_particles"], seed=ev["seed"],
                                times=getattr(args, "at", None))


# -- commands -----------------------------------------------------------------------------------------
def cmd_fit(args) -> int:
    """``mfsde fit``; under torchrun (``WORLD_SIZE`` > 1) it joins the process group first (and
    leaves it at the end; a group initialised by the caller is used and kept) and only rank 0
    prints, writes ``data.json``/``eval.json`` and evaluates."""
    from . import distributed

    started = not distributed.is_distributed() and distributed.init_from_env()  # a group of its own
    try:
        return _fit(args, main=distributed.is_main())
    finally:
        if started:
            distributed.cleanup()


def _fit(args, main: bool = True) -> int:
    from .config import Config
    from .evaluation import evaluate
    from .training import fit

    say = print if main else (lambda *a, **k: None)
    if args.resume:
        run = Path(args.resume)
        if not (run / "config.json").is_file():
            raise CLIError(f"{args.resume!r} is not a run directory (no config.json; start one with `mfsde fit --out DIR`)")
        for flag in ("preset", "config"):
            if getattr(args, flag, None):
                raise CLIError(f"--{flag} cannot change the run being resumed ({str(run)!r} keeps its own config); "
                               f"drop --{flag}, or start a new run with --out")
        snaps, task = _run_data_and_task(args, run)
        cfg = Config.load(run / "config.json")
        overrides = _shortcut_overrides(args)
        if overrides:
            cfg = cfg.override(**overrides)
        out = Path(args.out) if args.out else run
        if out.resolve() != run.resolve() and (run / DATA_SPEC_FILE).is_file() and main:
            write_text_atomic(out / DATA_SPEC_FILE, (run / DATA_SPEC_FILE).read_text())
        has_ckpt = (run / "checkpoint.pt").is_file()
        if not has_ckpt:
            say(f"{run} has no checkpoint yet (stopped before the first one): starting it from iteration 0")
        res = fit(cfg, snaps, task, out_dir=out, resume=run if has_ckpt else None, progress=not args.quiet and main)
    else:
        if not args.data:
            raise CLIError("fit needs --data PATH [PATH ...] (or --resume DIR)")
        spec = data_spec(args)
        snaps = load_data(spec)
        task = make_task(snaps, args.task, args.heldout_populations)
        cfg = build_config(args, snaps.dim)
        out = Path(args.out) if args.out else Path("runs") / f"{cfg.preset or 'custom'}-seed{cfg.train.seed}"
        spec["task"] = task.name
        if main:  # everything a resume needs exists before the first iteration
            write_text_atomic(out / DATA_SPEC_FILE, json.dumps(spec, indent=2))
        say(f"fitting {cfg.preset or 'custom config'} on {getattr(snaps, 'name', None) or spec['paths'][0]} "
            f"({_describe_task(snaps, task)}; {cfg.train.iterations} iterations → {out}")
        res = fit(cfg, snaps, task, out_dir=out, progress=not args.quiet and main)
    if not main:
        return 0
    last = res.history[-1] if res.history else {}
    if res.iteration == res.start_iteration and res.iteration > 0:
        print(f"nothing to do: {out} has already completed {res.iteration} iterations "
              f"(ask for more with --iterations N)")
    print(f"done in {res.elapsed:.1f} s: final loss {last.get('loss', float('nan')):.4g} "
          f"(fit {last.get('fit', float('nan')):.4g}, energy {last.get('energy', float('nan')):.4g}); run directory {out}")
    if res.stopped == "time_budget":
        print(f"stopped by the time budget ({cfg.train.time_budget:g} s of training steps) after "
              f"{res.iteration} of {cfg.train.iterations} iterations")
    if not args.no_eval and _has_heldout(task):
        ev = evaluate(res.model, snaps, task, n_particles=cfg.eval.n_particles, seed=cfg.eval.seed)
        base = _baselines_for(argparse.Namespace(no_baselines=False), snaps, task, ev)
        ev["baselines"] = base
        (Path(out) / "eval.json").write_text(json.dumps(ev, indent=2))
        _print_eval(ev, f"held-out evaluation ({ev['n_particles']} simulated cells from t0) with baselines:", base)
    return 0


def cmd_evaluate(args) -> int:
    from .evaluation import evaluate
    from .runs import load_run

    run = _run_dir(args.run)
    model, cfg = load_run(run)
    snaps, task = _run_data_and_task(args, run)
    n = cfg.eval.n_particles if args.n_particles == 0 else args.n_particles
    seed = cfg.eval.seed if args.seed is None else args.seed
    ev = evaluate(model, snaps, task, n_particles=n, seed=seed, times=args.at, start=args.start)
    base = _baselines_for(args, snaps, task, ev)
    ev["baselines"] = base
    out = Path(args.out) if args.out else run / "eval.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(ev, indent=2))
    where = f"time indices {args.at}" if args.at else f"held-out times of task {ev.get('task')}"
    cells = "all cells of the start time point" if n is None else f"{n} simulated cells"
    _print_eval(ev, f"{run}: {where}, {cells} (start: {args.start}), seed {seed}", base)
    print(f"wrote {out}")
    return 0


def cmd_compare(args) -> int:
    from .config import preset
    from .evaluation import compare, summarise, to_csv, to_markdown

    spec = data_spec(args)
    snaps = load_data(spec)
    task = make_task(snaps, args.task, args.heldout_populations)
    overrides = _shortcut_overrides(args)
    if "train.seed" in overrides:
        raise CLIError("set seeds with --seeds, not --set train.seed")
    for name in args.presets:  # fail fast, before any training
        preset(name, dim=snaps.dim).override(**overrides)
    safe = "".join(c for c in task.name.replace("|", "-") if c.isalnum() or c in "-_,.=")
    out = Path(args.out) if args.out else Path("runs") / f"compare-{safe}"
    out.mkdir(parents=True, exist_ok=True)
    print(f"comparing {', '.join(args.presets)} × seeds {args.seeds} on {getattr(snaps, 'name', '') or 'the data'} "
          f"({_describe_task(snaps, task)} → {out}")
    for name in args.presets:  # each run directory can be resumed / evaluated from its first moment
        for seed in args.seeds:
            write_text_atomic(out / f"{name}-seed{seed}" / DATA_SPEC_FILE, json.dumps({**spec, "task": task.name}, indent=2))
    rows = compare(args.presets, snaps, task, args.seeds, overrides=overrides, out_dir=out, progress=not args.quiet,
                   starts=args.start, baselines=not args.no_baselines)
    summary = summarise(rows)
    md = to_markdown(summary)
    to_csv(rows, out / "results.csv")
    to_csv(summary, out / "summary.csv")
    budget = overrides.get("train.time_budget")
    header = (f"held-out W1/W2 (mean ± std over seeds {args.seeds}), task {task.name}"
              + (f", time budget {budget:g} s per run" if budget else "") + "\n\n")
    (out / "summary.md").write_text(header + md)
    print()
    print(header + md)
    print(f"wrote {out / 'results.csv'}, {out / 'summary.csv'}, {out / 'summary.md'}")
    return 0


def cmd_explain(args) -> int:
    from .explain import explain
    from .runs import load_run, read_history

    run = _run_dir(args.run)
    model, cfg = load_run(run)
    snaps, task = _run_data_and_task(args, run)
    try:
        history = read_history(run)
    except FileNotFoundError:
        history = None
    out = Path(args.out) if args.out else run / "explain"
    if not hasattr(snaps, "n_times"):  # populations: explain one of them
        name = args.population or task.training_names(snaps)[0]
        if name not in snaps:
            raise CLIError(f"--population {name!r} is not a population of the data; populations are {snaps.names}")
        snaps, task = snaps[name], task.resolve(snaps)[name]
        out = out / name if not args.out else out
        print(f"explaining population {name!r}")
    elif args.population:
        raise CLIError("--population needs data with populations (--population-col COL)")
    summary = explain(model, snaps, out, time_indices=args.time_index, n_cells=args.n_cells,
                      n_particles=args.n_particles, seed=args.seed, history=history,
                      heldout=list(task.heldout), figures=not args.no_figures, clusters=args.clusters)
    print_explain_summary(summary, out)
    return 0


def print_explain_summary(summary: dict, out: Path) -> None:
    print(f"interaction kernel: {summary['kernel']}")
    for note in summary.get("notes", []):
        print(f"note: {note}")
    for a in summary.get("attention") or []:
        line = f"t = {a['time']:g} (index {a['time_index']}): {a['n_cells']} cells, cell-wise asymmetry {a['asymmetry']:.3f}"
        if "label_asymmetry" in a:
            line += f", cell-type asymmetry {a['label_asymmetry']:.3f}"
        print(line)
    if summary.get("attention") and "label_names" in summary["attention"][0]:
        a = summary["attention"][-1]
        names = a["label_names"]
        print(f"cell-type matrix at t = {a['time']:g} (rows = receiver type, columns = source type):")
        w = max(8, max(len(n) for n in names) + 1)
        print(" " * w + "".join(f"{n:>{w}}" for n in names))
        for n, row in zip(names, a["label_matrix"]):
            print(f"{n:<{w}}" + "".join(f"{'–' if v is None else format(v, '.3g'):>{w}}" for v in row))
    print(f"wrote {len(summary['files'])} files to {out}")


def cmd_demo(args) -> int:
    from .demo import run_demo

    run_demo(iterations=args.iterations, seed=args.seed, out=args.out, progress=not args.quiet,
             threads=args.threads or 1)
    return 0


# -- entry point --------------------------------------------------------------------------------------
_USER_ERRORS = (CLIError, FileNotFoundError, NotADirectoryError, KeyError, ValueError, TypeError, ImportError,
                FloatingPointError)


def _message(e: BaseException) -> str:
    if isinstance(e, KeyError) and e.args and isinstance(e.args[0], str):
        msg = e.args[0]
    else:
        msg = str(e) or type(e).__name__
    msg = " ".join(msg.split())  # one line
    if isinstance(e, FileNotFoundError) and getattr(e, "filename", None) and e.filename not in msg:
        msg = f"{msg}: {e.filename}"
    return msg


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status
    (0 ok, 2 bad input). Used by the ``mfsde`` script and ``python -m mfsde``."""
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse itself exits 2 on bad usage
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    from .plugins import load_plugins

    try:
        load_plugins(args.plugin)
    except ImportError as e:
        print(f"mfsde {args.command}: error: --plugin: {e}", file=sys.stderr)
        return 2
    if args.command != "demo":  # the demo sets its own (1 unless --threads)
        import torch

        from .runs import default_threads

        torch.set_num_threads(args.threads or default_threads())
    try:
        return int(args.func(args) or 0)
    except _USER_ERRORS as e:
        if args.debug:
            raise
        print(f"mfsde {args.command}: error: {_message(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # TrainingInterrupted says where the checkpoint is
        print(f"mfsde {args.command}: interrupted" + (f": {e}" if str(e) else ""), file=sys.stderr)
        return int(getattr(e, "exit_code", 130))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
