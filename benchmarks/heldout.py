"""Held-out time points on real snapshot data: every preset × seeds, exact W1/W2.

EMT (../shared/data/emt, 4 time points, 10-D): hold out each middle time point in turn
(tasks ``loo:1``, ``loo:2``). Bargaje (../shared/data/bargaje, 8 time points, 4-D): hold out
the interior time points 2, 4, 6 (task ``interpolate:2,4,6``) — the spec's "easy" shape.
Times are time-point indices (as scIMF's public code). Presets ``scimf``, ``ito``,
``symmetric_qk``, ``rbf``, ``pairwise_mlp``; seeds 0, 1, 2. The training budget is reduced
from the paper's 3000 iterations so the whole table fits in about 30 minutes on 2 cores
(``--iterations``; ``--quick`` for a smoke run).

    python benchmarks/heldout.py                 # writes benchmarks/results/heldout.{json,md}
    python benchmarks/heldout.py --quick
    python benchmarks/heldout.py --datasets emt --presets scimf --variants scimf_zero_init \
        --name heldout_zero_init                 # variants that are not presets (VARIANTS)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

import mfsde  # noqa: E402
from mfsde.data import load_csv, load_npy_stack  # noqa: E402
from mfsde.evaluation import compare, summarise, to_markdown  # noqa: E402

DATA = _common.REPO_ROOT.parent / "shared" / "data"
PRESETS = ["scimf", "ito", "symmetric_qk", "rbf", "pairwise_mlp"]
#: label → (preset, overrides): configurations that are not presets
VARIANTS = {"scimf_zero_init": ("scimf", {"model.inter.zero_init": True})}


def datasets(names=("emt", "bargaje")):
    """``[(name, snapshots, tasks)]`` for the requested data sets found under ../shared/data."""
    found = {
        "emt": (DATA / "emt" / "emt.csv", lambda f: load_csv(f, time_col="samples", name="emt"), ["loo:1", "loo:2"]),
        "bargaje": (DATA / "bargaje" / "Bifurcation.npy", lambda f: load_npy_stack(f, name="bargaje"),
                    ["interpolate:2,4,6"]),
    }
    out = []
    for name in names:
        path, load, tasks = found[name]
        if path.is_file():
            out.append((name, load(path), tasks))
        else:
            print(f"skip {name}: {path} not found")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=100, help="training iterations per run")
    ap.add_argument("--particles", type=int, default=256, help="simulated particles per iteration")
    ap.add_argument("--eval-particles", type=int, default=2000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--presets", nargs="+", default=PRESETS)
    ap.add_argument("--variants", nargs="*", default=[], choices=sorted(VARIANTS),
                    help="extra configurations that are not presets (run after the presets)")
    ap.add_argument("--datasets", nargs="+", default=["emt", "bargaje"], choices=["emt", "bargaje"])
    ap.add_argument("--quick", action="store_true", help="3 iterations, 1 seed, 2 presets")
    ap.add_argument("--name", default="heldout", help="results file stem in benchmarks/results/")
    ap.add_argument("--out", default=None, help="run directories (default benchmarks/results/<name>/)")
    ap.add_argument("--digits", type=int, default=4, help="decimals in the markdown table")
    ap.add_argument("--render", action="store_true",
                    help="only rewrite benchmarks/results/<name>.md from the rows in <name>.json")
    args = ap.parse_args(argv)
    if args.render:
        import json

        table = to_markdown(summarise(json.loads((_common.RESULTS_DIR / f"{args.name}.json").read_text())["rows"]),
                            digits=args.digits)
        (_common.RESULTS_DIR / f"{args.name}.md").write_text(table + "\n")
        print(table)
        return 0
    if args.quick:
        args.iterations, args.seeds, args.presets, args.eval_particles = 3, [0], ["scimf", "ito"], 300
    overrides = {
        "train.iterations": args.iterations,
        "train.n_particles": args.particles,
        "train.lr_step": max(1, args.iterations // 10),
        "eval.n_particles": args.eval_particles,
    }
    sets = datasets(args.datasets)
    out_root = Path(args.out) if args.out else _common.RESULTS_DIR / args.name
    if not sets:
        print("no data found under", DATA)
        return 0
    t0 = time.perf_counter()
    rows = []
    for name, snaps, tasks in sets:
        for task in tasks:
            print(f"== {name} {task}: {snaps}")
            configs = {p: mfsde.preset(p, dim=snaps.dim) for p in args.presets}
            configs |= {v: mfsde.preset(VARIANTS[v][0], dim=snaps.dim).override(**VARIANTS[v][1])
                        for v in args.variants}
            rows += compare(configs, snaps, task, args.seeds, overrides=overrides,
                            out_dir=out_root / f"{name}-{task.replace(':', '_').replace(',', '-')}",
                            progress=False)
            for r in rows[-len(configs) * len(args.seeds):]:
                print(f"   {r['preset']:>13} seed {r['seed']}: W1 {r['w1']:.4f}  W2 {r['w2']:.4f}  ({r['train_seconds']:.0f} s)")
    for r in rows:
        r["dataset"] = next(n for n, s, ts in sets if r["task"] in ts)
        r["task"] = f"{r['dataset']} {r['task']}"
    summary = summarise(rows)
    table = to_markdown(summary, digits=args.digits)
    elapsed = time.perf_counter() - t0
    print(table)
    print(f"total {elapsed / 60:.1f} min")
    _common.write_json(args.name, {"settings": vars(args) | {"overrides": overrides}, "rows": rows,
                                    "summary": summary, "elapsed_s": elapsed})
    (_common.RESULTS_DIR / f"{args.name}.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
