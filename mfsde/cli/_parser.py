"""The ``mfsde`` argument parser: subcommands, option groups and the checks of their values."""

from __future__ import annotations

import argparse
import textwrap

from mfsde.cli._commands import cmd_compare, cmd_demo, cmd_evaluate, cmd_explain, cmd_fit

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
    g.add_argument(
        "--data",
        nargs="+",
        metavar="PATH",
        required=required,
        default=None,
        help="snapshot data: one .csv (a time column + feature columns), one .h5ad, or "
        "several .npy files (one (n_k, d) array per time point, in time order)"
        + ("" if required else "; default: the data the run was fitted on"),
    )
    g.add_argument(
        "--time-col",
        default=None,
        metavar="COL",
        help="CSV/h5ad column holding the time point of each cell (default: 'samples' for CSV)",
    )
    g.add_argument(
        "--features",
        nargs="+",
        default=None,
        metavar="COL",
        help="CSV/h5ad: the feature columns (default: all but the time and label columns)",
    )
    g.add_argument(
        "--drop-cols",
        nargs="+",
        default=None,
        metavar="COL",
        help="CSV: columns to leave out of the features (e.g. a barcode)",
    )
    g.add_argument(
        "--allow-pickle",
        action="store_true",
        help="read a .npy stack stored as an object array (a pickle: only for files you trust)",
    )
    g.add_argument(
        "--label-col", default=None, metavar="COL", help="column holding a cell-type label per cell (used by `explain`)"
    )
    g.add_argument(
        "--population-col",
        default=None,
        metavar="COL",
        help="CSV/h5ad column naming each cell's population (condition, replicate, donor): "
        "every population is simulated from its own first time point, particles "
        "interacting only within their population",
    )
    g.add_argument(
        "--heldout-populations",
        nargs="+",
        default=None,
        metavar="NAME",
        help="populations never trained on: each is predicted from its own first time point "
        "and scored at all its later times (needs --population-col)",
    )
    g.add_argument(
        "--times",
        nargs="+",
        type=float,
        default=None,
        metavar="T",
        help="time values of the time points (default: from the data, or 0, 1, 2, ...)",
    )
    g.add_argument(
        "--task",
        default=None,
        metavar="NAME",
        help="which time points are held out, e.g. interpolate:2, extrapolate:1, loo:3"
        + (
            " (default: interpolate at the middle time point)"
            if required
            else "; default: the run's task (a new fit: interpolate at the middle time point)"
        ),
    )


def _add_config_args(p: argparse.ArgumentParser, presets: bool = False) -> None:
    from mfsde.config._presets import PRESETS

    g = p.add_argument_group("model and training configuration")
    if not presets:
        src = g.add_mutually_exclusive_group()
        src.add_argument(
            "--preset", default=None, metavar="NAME", help=f"named configuration: {', '.join(PRESETS)} (default: scimf)"
        )
        src.add_argument(
            "--config", default=None, metavar="FILE", help="a .toml or .json config file (mfsde.Config format)"
        )
    g.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config entry by dotted key; VALUE is a TOML/JSON literal, e.g. "
        "--set train.lr=3e-4 --set model.inter.heads=1 --set 'loss.fit={name=\"mmd\"}' "
        "(repeatable)",
    )
    g.add_argument("--iterations", type=int, default=None, metavar="N", help="shortcut for --set train.iterations=N")
    g.add_argument(
        "--n-particles",
        type=int,
        default=None,
        metavar="N",
        help="shortcut for --set train.n_particles=N (simulated cells per training iteration)",
    )
    g.add_argument(
        "--replicas",
        type=int,
        default=None,
        metavar="P",
        help="shortcut for --set train.replicas=P (independent simulated replicas per iteration, "
        "over all ranks under torchrun; must be divisible by the number of processes)",
    )
    g.add_argument(
        "--time-budget",
        type=_positive_seconds,
        default=None,
        metavar="SECONDS",
        help="stop each run after this many seconds of training steps (elapsed; --set "
        "train.time_clock=cpu counts this process's CPU seconds) or at --iterations, "
        "whichever comes first (shortcut for --set train.time_budget=SECONDS); compare "
        "methods at equal compute",
    )
    g.add_argument(
        "--mass",
        choices=["normalised", "counts"],
        default=None,
        help="what the snapshots' cell counts mean (shortcut for --set data.mass=…): 'counts' fits the "
        "population's size too, with a mass channel (a growth model, model.growth, 'mlp' unless the config "
        "names one); the evaluation then reports the total mass variation (TMV)",
    )
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
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=argparse.SUPPRESS,
        metavar="N",
        help="torch threads (default: half the cores this process may use, at least 1)",
    )


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
    from mfsde.evaluation._evaluate import START

    p.add_argument(
        "--start",
        nargs="+" if many else None,
        choices=START,
        default=["t0"] if many else "t0",
        help="evaluation protocol: t0 = simulate from the first time point (scIMF's); previous = "
        "simulate each held-out time from the nearest earlier training time point (the "
        "flow-matching literature's)" + (" (several: a table row each)" if many else "") + " (default: t0)",
    )
    p.add_argument(
        "--no-baselines",
        action="store_true",
        help="skip the baseline rows (copy of the previous training time point, McCann "
        "interpolation, sampling floor) that are otherwise printed beside the model",
    )


def _command(sub, name: str, func, help: str, description: str, examples: str) -> argparse.ArgumentParser:
    """A subcommand: its help, wrapped description, dedented ``examples`` epilog, ``--threads``
    and the function that runs it."""
    p = sub.add_parser(
        name,
        help=help,
        formatter_class=_Formatter,
        description=_fill(description),
        epilog="examples:\n" + textwrap.indent(textwrap.dedent(examples), "  "),
    )
    _add_threads(p)
    p.set_defaults(func=func)
    return p


def build_parser() -> argparse.ArgumentParser:
    from mfsde.config._presets import PRESETS

    parser = argparse.ArgumentParser(
        prog="mfsde",
        description=_MAIN_DESCRIPTION,
        formatter_class=_Formatter,
        epilog=_MAIN_EPILOG.format(presets=", ".join(PRESETS)),
    )
    from mfsde import __version__

    parser.add_argument("--version", action="version", version=f"mfsde {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks instead of one-line errors")
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE (a dotted name or a .py file) first, so the components it registers "
        "(e.g. @INTERACTIONS.register('name')) work by name; repeatable. Entry points of "
        "the group 'mfsde' are always loaded",
    )
    parser.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        metavar="N",
        help="torch threads (default: half the cores this process may use, at least 1; "
        "torch's own default of all cores is many times slower on a busy machine)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    # fit
    p = _command(
        sub,
        "fit",
        cmd_fit,
        help="train a model and write a run directory",
        description="Train a mean-field SDE on the training time points of a task and write a run "
        "directory (config.json, meta.json, history.jsonl, checkpoint.pt, data.json). Under "
        "torchrun (WORLD_SIZE > 1) fit joins the process group (NCCL on GPUs, else gloo); rank 0 "
        "prints, writes the run directory and evaluates; see docs/distributed.md.",
        examples="""\
              mfsde fit --data ../shared/data/emt/emt.csv --task interpolate:2 --out runs/emt-scimf
              mfsde fit --data day0.npy day1.npy day2.npy --times 0 1 3 --task extrapolate:1 \\
                        --preset ito --iterations 500 --seed 1 --out runs/ito
              mfsde fit --data cells.h5ad --time-col day --label-col cell_type --config my.toml \\
                        --set model.inter.heads=1 --set train.lr=3e-4 --out runs/custom
              mfsde fit --resume runs/emt-scimf --iterations 5000   # continue a run
              torchrun --standalone --nproc_per_node=4 -m mfsde fit --data cells.csv \\
                        --replicas 4 --out runs/ddp   # data-parallel: one population per process
            """,
    )
    _add_data_args(p, required=False)
    _add_config_args(p)
    p.add_argument("--out", default=None, metavar="DIR", help="run directory (default: runs/<preset>-seed<seed>)")
    p.add_argument(
        "--resume",
        default=None,
        metavar="DIR",
        help="continue the run in DIR (its config, data and task; only --iterations may change)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-eval", action="store_true", help="skip the held-out evaluation at the end")

    # evaluate
    p = _command(
        sub,
        "evaluate",
        cmd_evaluate,
        help="W1/W2 of a fitted run at the held-out time points",
        description="Simulate cells from the first time point with a fitted run and measure exact W1 "
        "and W2 (POT) against all observed cells at each held-out time point (scIMF's "
        "protocol). Prints a table and writes eval.json.",
        examples="""\
              mfsde evaluate --run runs/emt-scimf
              mfsde evaluate --run runs/emt-scimf --task extrapolate:1 --n-particles 500
              mfsde evaluate --run runs/a --at 1 2 3   # specific time indices, e.g. training ones
            """,
    )
    p.add_argument("--run", required=True, metavar="DIR", help="run directory written by `mfsde fit`")
    _add_data_args(p, required=False)
    p.add_argument(
        "--at",
        nargs="+",
        type=int,
        default=None,
        metavar="K",
        help="evaluate at these time indices instead of the task's held-out ones",
    )
    p.add_argument(
        "--n-particles",
        type=_cell_count,
        default=0,
        metavar="N",
        help="simulated cells, or 'all' (every cell of the start time point) (default: the config's eval.n_particles)",
    )
    p.add_argument(
        "--seed", type=int, default=None, metavar="S", help="simulation seed (default: the config's eval.seed)"
    )
    _add_eval_args(p)
    p.add_argument(
        "--out", default=None, metavar="FILE", help="where to write the JSON result (default: RUN/eval.json)"
    )

    # compare
    p = _command(
        sub,
        "compare",
        cmd_compare,
        help="train presets over seeds and tabulate held-out W1/W2",
        description="Train every preset with every seed on a task, evaluate each on the held-out "
        "time points and print mean ± std over seeds as a Markdown table. Writes "
        "results.csv (one row per run), summary.csv, summary.md and every run directory.",
        examples="""\
              mfsde compare --data ../shared/data/emt/emt.csv --task interpolate:2 \\
                            --presets scimf ito symmetric_qk --seeds 0 1 2 --iterations 500 --out runs/cmp
              mfsde compare --data cells.csv --task loo:3 --presets scimf rbf --seeds 0 --set model.dt=0.05
            """,
    )
    _add_data_args(p, required=True)
    p.add_argument(
        "--presets", nargs="+", required=True, metavar="NAME", help=f"presets to compare: {', '.join(PRESETS)}"
    )
    p.add_argument("--seeds", nargs="+", type=int, default=[0], metavar="S", help="training seeds (default: 0)")
    _add_config_args(p, presets=True)
    _add_eval_args(p, many=True)
    p.add_argument("--out", default=None, metavar="DIR", help="output directory (default: runs/compare-<task>)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    # explain
    p = _command(
        sub,
        "explain",
        cmd_explain,
        help="interaction matrices, velocities and figures of a fitted run",
        description="Interpretation outputs of a fitted run (scIMF's 'interpretation'): per time "
        "point the cell-wise interaction matrix of the observed cells (rows = receivers, "
        "columns = sources, ordered by label), the cell-type-wise matrix with its "
        "asymmetry index and a directed cell-type graph (with --label-col), the drift "
        "f(x, ρ) at the observed cells drawn on a 2-D PCA embedding next to simulated "
        "vs observed cells, and the training-loss curve. Writes .npz arrays, "
        "summary.json and PNG figures.",
        examples="""\
              mfsde explain --run runs/emt-scimf
              mfsde explain --run runs/a --data cells.csv --label-col cell_type --time-index 0 3 --n-cells 600
            """,
    )
    p.add_argument("--run", required=True, metavar="DIR", help="run directory written by `mfsde fit`")
    _add_data_args(p, required=False)
    p.add_argument(
        "--time-index",
        nargs="+",
        type=int,
        default=None,
        metavar="K",
        help="time points (indices) for the interaction matrices (default: all)",
    )
    p.add_argument(
        "--n-cells",
        type=_positive_int,
        default=400,
        metavar="N",
        help="cells per interaction matrix (random subset; the matrix is N×N; default: %(default)s)",
    )
    p.add_argument(
        "--n-particles",
        type=int,
        default=1000,
        metavar="N",
        help="simulated cells for the predicted-vs-observed panel (default: %(default)s)",
    )
    p.add_argument(
        "--clusters",
        type=_positive_int,
        default=None,
        metavar="K",
        help="for data without labels: use K k-means clusters of the observed cells as "
        "pseudo cell types (gives the cell-type matrix and graph)",
    )
    p.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed of cell subsets and simulation (default: %(default)s)"
    )
    p.add_argument("--no-figures", action="store_true", help="write arrays and summary.json only")
    p.add_argument(
        "--population",
        default=None,
        metavar="NAME",
        help="with populations: the population to explain (default: the first training one); "
        "output goes to RUN/explain/NAME",
    )
    p.add_argument("--out", default=None, metavar="DIR", help="output directory (default: RUN/explain)")

    # demo
    p = _command(
        sub,
        "demo",
        cmd_demo,
        help="a 2-3 minute tour: scIMF vs Itô SDE on a simulated interacting system",
        description=(
            "Simulate a small 2-D interacting particle system (mfsde.systems.demo_dataset), "
            "hold out its middle time point, fit the `scimf` preset (attention interaction) "
            "and the `ito` preset (no interaction) briefly, and print the held-out W1/W2 of "
            "both. With --out, the runs and the interpretation figures of the scimf fit are "
            "written there."
        ),
        examples="""\
              mfsde demo
              mfsde demo --iterations 400 --seed 1 --out runs/demo
            """,
    )
    from mfsde.cli._demo import DEFAULT_ITERATIONS

    p.add_argument(
        "--iterations",
        type=int,
        default=DEFAULT_ITERATIONS,
        metavar="N",
        help="training iterations per model (default: %(default)s)",
    )
    p.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed of data, training and evaluation (default: %(default)s)"
    )
    p.add_argument("--out", default=None, metavar="DIR", help="also write runs, results and figures here")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser
