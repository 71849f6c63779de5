"""Many initial populations: does interaction pay off on populations the model has never seen?

For each family of `mfsde.systems.POPULATION_FAMILIES` (and its non-interacting control) 8
populations share the dynamics and differ in their initial state; 6 train (every time point) and
2 are held out (index 1 and 5). Every preset is trained for the same budget of training-step
seconds per run (one torch thread), seeds 0, 1, 2 (the seed drives the data set and the
training), and scored on the held-out populations, each predicted from its own first snapshot:

* held-out W1 (exact, 300 simulated vs 300 observed cells per time, mean over populations and
  times ≥ 1), beside the **truth** floor (the true system simulated from the same t₀ cells), and
  the references ``previous`` / ``mccann`` (from the held-out population's own observed
  neighbouring snapshots, which the model never sees) and ``floor`` (observed vs observed);
* relative drift error and gauge-fixed interaction error (:mod:`mfsde.evaluation`) on each
  held-out population's own system, averaged (controls: ``inter_scaled``, a spurious interaction);
* on ``two_species`` (A is pulled by B, B feels nothing from A): the direction of influence, from
  the cell-type aggregated interaction weights of the kernel (rows = receivers) and from a
  kernel-agnostic perturbation — how much the drift of one species changes when the other
  species' cells are displaced — for the model and for the truth.

    python benchmarks/populations.py --shard 1/2 & python benchmarks/populations.py --shard 2/2; \\
        python benchmarks/populations.py --render
    python benchmarks/populations.py --quick        # a few seconds per run, smoke test of the pipeline

Writes ``benchmarks/results/populations.{rows.jsonl,json,md,png}`` (the figure: true vs learned
interaction on OU) and, when a radial kernel ran on Morse, ``populations_profile.png`` (its learned
force profile ψ(r) against the truth's W'(r), in data units).

This file is the command line; the work is in ``_populations_systems.py`` (the population families
and the per-system measurements), ``_populations_run.py`` (training runs, baselines, the job loop,
``--signal``) and ``_populations_report.py`` (tables, JSON, figures, ``--readme``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common
import torch
from _populations_report import combine, render, write_readme
from _populations_run import resume_conflict, run_jobs, signal
from _populations_systems import FAMILIES, PRESETS

from mfsde.cli import CLIError, parse_overrides

NAME = "populations"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=75.0, help="seconds of training steps per run (default 75)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument(
        "--families",
        nargs="+",
        default=None,
        choices=list(FAMILIES) + ["kuramoto", "two_species_layout"],
        help=f"default: {' '.join(FAMILIES)}; with --render: keep only these families' rows",
    )
    ap.add_argument("--presets", nargs="+", default=list(PRESETS))
    ap.add_argument(
        "--shard", type=_common.shard, default=(1, 1), help="K/N: run every N-th job starting at K (parallel processes)"
    )
    ap.add_argument("--resume", action="store_true", help="keep the rows already logged and skip their jobs")
    ap.add_argument("--render", action="store_true", help="only rebuild the table, JSON and figure from the log")
    ap.add_argument("--quick", action="store_true", help="3 s per run, one seed, two families: a smoke test")
    ap.add_argument("--name", default=None, help="results file stem (default populations[_quick])")
    ap.add_argument(
        "--sigma",
        default="preset",
        choices=["preset", "truth", "learn", "learn_affine"],
        help="noise of the models: the preset's σ (model units), the system's true noise (data units; "
        "Kuramoto: rank one along the circle), a learned σ, or learned affine noise B + A x "
        "(default preset)",
    )
    ap.add_argument(
        "--sigma-lr",
        type=float,
        default=None,
        help="with --sigma learn: the step size of log σ (train.sigma_lr; default: train.lr)",
    )
    ap.add_argument(
        "--inter-lr",
        type=float,
        default=None,
        help="step size of every interaction kernel (train.inter_lr; default: each preset's own)",
    )
    ap.add_argument(
        "--inter-set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides for every preset with an interaction kernel, e.g. model.inter.width=16 "
        "(values parsed as by `mfsde fit --set`)",
    )
    ap.add_argument("--only-controls", action="store_true", help="run the non-interacting controls only")
    ap.add_argument(
        "--no-extra", action="store_true", help="skip the extra presets of some families (symmetric_qk on two_species)"
    )
    ap.add_argument("--no-controls", action="store_true", help="skip the non-interacting controls")
    ap.add_argument(
        "--from",
        dest="sources",
        nargs="+",
        default=[],
        metavar="NAME[:PRESET][=LABEL]",
        help="with --render: one table from the rows of these named runs (their baselines once per "
        "seed); :PRESET keeps one preset's rows of a run, =LABEL renames a run's presets, "
        "e.g. populations_known_sigma:ito populations_pairwise_mlp_ema='pairwise_mlp, EMA'",
    )
    ap.add_argument(
        "--signal",
        action="store_true",
        help="only measure E‖Δf‖²/E‖f‖² of the true systems (how much the data say about the "
        "interaction): results/populations_signal.{md,json}",
    )
    ap.add_argument(
        "--readme",
        action="store_true",
        help="with --render: also put the table between <!-- POPULATIONS --> markers in docs/populations.md",
    )
    args = ap.parse_args(argv)
    try:
        inter_set = parse_overrides(args.inter_set)  # the same KEY=VALUE parsing as `mfsde fit --set`
    except CLIError as exc:
        ap.error(f"--inter-set: {exc}")
    name = args.name or NAME
    if args.quick:
        name = args.name or "populations_quick"
        args.budget, args.seeds, args.families = 3.0, [0], ["ou", "two_species"]
    render_only = args.families  # --render keeps these families' rows (all when not given)
    args.families = args.families or list(FAMILIES)
    torch.set_num_threads(1)
    log = _common.rows_log(name)
    log.parent.mkdir(parents=True, exist_ok=True)
    if args.signal:
        print(signal(args.families, args.seeds))
        return 0
    if args.sources and not args.render:
        ap.error("--from only works with --render")
    if args.render:
        try:
            rows = combine(args.sources) if args.sources else _common.load_rows(name)[0]
        except FileNotFoundError as exc:
            ap.error(f"--from: {exc}")
        if render_only:
            rows = [r for r in rows if r["family"] in render_only]
        if args.only_controls:
            rows = [r for r in rows if r["control"]]
        md = render(rows, vars(args), name)
        print(md)
        if args.readme:
            write_readme(md, name)
        return 0
    k, n = args.shard
    old, out = _common.start_log(log, resume=args.resume, shard=(k, n))  # without --resume: nothing counts
    problem = resume_conflict(old, args, inter_set, log.name)
    if problem:
        ap.error(problem)
    run_jobs(args, inter_set, old, out)
    if n == 1:
        print(render(_common.read_rows(log), vars(args), name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
