"""Each change of scimf's training recipe on its own: which one costs CITE and which one helps EMT.

The ``scimf`` preset moved from scIMF's units (σ = 0.1 and blur 0.1 in the data's own units, time
as given, energy weight λ = 1, a randomly initialised attention block) to a standardised recipe
(global scale, σ/blur/energy in model units, model time = mean gap of the training times,
λ = 0.01, f_inter starting at zero). This script trains ``scimf`` with the whole old recipe
(``old``), today's (``main``) and today's with one factor put back as it was:

* ``no_standardize`` — ``model.standardize=none`` (σ, blur, energy in data units);
* ``data_time`` — ``model.time_scale=none`` (time as given; dt = 0.1 of a data time unit);
* ``energy_1`` — ``loss.energy_weight=1``;
* ``random_init`` — ``model.inter.zero_init=false``;
* ``sigma_data`` — ``model.sigma_units=data`` (σ = 0.1 in data units, the rest standardised).

and the old recipe with one of its factors taken away (``old_standardized``, ``old_mean_gap``,
``old_energy_001``, ``old_zero_init``: ``--factors main old old_standardized ...``).
``sigma_003`` is today's preset with σ = 0.03 in model units (σ = 0.1 in CITE's data units is
0.013 in model units, in EMT's 0.63).

Tasks: CITE 50-D ``loo:1`` and ``loo:2`` (both protocols: from day 2 and from the previous day)
and EMT ``loo:1``/``loo:2``; every run gets the same CPU seconds of training steps
(``--budget-cite``, ``--budget-emt``; ``train.time_clock=cpu``) and records its iterations. The
baselines (previous, McCann, floor) are scored once per task on the same cells and metric.
Rows go to ``results/<name>.rows.jsonl`` as they finish (``--resume`` skips those there,
``--shard K/N`` deals the runs to N processes); ``--render`` writes the table and JSON.

    python benchmarks/recipe_factors.py --shard 1/2 & python benchmarks/recipe_factors.py --shard 2/2; \\
        python benchmarks/recipe_factors.py --render
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common
import accuracy
import torch

import mfsde
from mfsde import (
    evaluate,
    fit,
)

OLD = {
    "model.standardize": "none",
    "model.time_scale": "none",
    "loss.energy_weight": 1.0,
    "model.inter.zero_init": False,
}
FACTORS = {
    "main": {},
    "old": OLD,
    "no_standardize": {"model.standardize": "none"},
    "data_time": {"model.time_scale": "none"},
    "energy_1": {"loss.energy_weight": 1.0},
    "random_init": {"model.inter.zero_init": False},
    "sigma_data": {"model.sigma_units": "data"},
    # the old recipe with one factor taken away: which of its factors its CITE gain needs
    "old_standardized": {**OLD, "model.standardize": "global"},
    "old_mean_gap": {**OLD, "model.time_scale": "mean_gap"},
    "old_energy_001": {**OLD, "loss.energy_weight": 0.01},
    "old_zero_init": {**OLD, "model.inter.zero_init": True},
    # a smaller noise in model units (σ = 0.1 in CITE's data units is 0.013 in model units, in EMT's 0.63)
    "sigma_003": {"model.sigma": 0.03},
}
TASKS = [
    ("cite", "loo:1", ("t0", "previous")),
    ("cite", "loo:2", ("t0", "previous")),
    ("emt", "loo:1", ("t0",)),
    ("emt", "loo:2", ("t0",)),
]


def run(snaps, dataset, task, starts, factor, seed, budget) -> list[dict]:
    cfg = mfsde.preset("scimf", dim=snaps.dim).override(
        **{
            **FACTORS[factor],
            "train.seed": seed,
            "train.time_budget": budget,
            "train.iterations": 10**6,
            "train.time_clock": "cpu",
        }
    )
    res = fit(cfg, snaps, task, progress=False)
    rows = []
    for start in starts:
        ev = evaluate(res.model, snaps, task, n_particles=accuracy.n_eval(start), seed=0, start=start)
        rows.append(
            {
                "dataset": dataset,
                "task": task,
                "start": start,
                "factor": factor,
                "kind": "model",
                "seed": seed,
                "w1": ev["w1"],
                "w2": ev["w2"],
                "per_time": ev["per_time"],
                "iterations": res.iteration,
                "train_cpu_seconds": res.train_cpu_seconds,
                "train_wall_seconds": res.train_wall_seconds,
                "budget": budget,
                "overrides": FACTORS[factor],
            }
        )
    return rows


def render(name: str) -> int:
    rows, log = _common.load_rows(name)
    if not rows:
        print(f"no rows in {log.name}")
        return 2
    keys = []
    for r in rows:
        if (r["dataset"], r["task"], r["start"]) not in keys:
            keys.append((r["dataset"], r["task"], r["start"]))

    def d(ds):
        return 2 if ds == "cite" else 3

    lines = ["Held-out W1 (mean ± std over seeds), `scimf` at equal CPU seconds of training; Δ against `main`.", ""]
    factors = [f for f in FACTORS if any(r.get("factor") == f and r["kind"] == "model" for r in rows)]
    head = ["data, task, start", "previous", "McCann", "floor"] + factors
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    summary = []
    for k in keys:
        rs = [r for r in rows if (r["dataset"], r["task"], r["start"]) == k]
        base = {r["factor"]: r["w1"] for r in rs if r["kind"] == "baseline"}
        main_vals = [r["w1"] for r in rs if r.get("factor") == "main" and r["kind"] == "model"]
        main_mean = _common.mean_std(main_vals)[0] if main_vals else None
        cells = [f"{k[0]} {k[1]}, {k[2]}"] + [
            f"{base[b]:.{d(k[0])}f}" if b in base else "–" for b in ("previous", "mccann", "floor")
        ]
        for f in factors:
            g = [r for r in rs if r.get("factor") == f and r["kind"] == "model"]
            if not g:
                cells.append("–")
                continue
            cell = _common.mean_pm([r["w1"] for r in g], d(k[0]))
            its = _common.mean_std([r["iterations"] for r in g])[0]
            m = _common.mean_std([r["w1"] for r in g])[0]
            delta = "" if f == "main" or main_mean is None else f", Δ {m - main_mean:+.{d(k[0])}f}"
            cells.append(f"{cell}{delta} ({its:.0f} it)")
            summary.append(
                {
                    "dataset": k[0],
                    "task": k[1],
                    "start": k[2],
                    "factor": f,
                    "w1": _common.mean_std([r["w1"] for r in g]),
                    "iterations": its,
                    "seeds": [r["seed"] for r in g],
                }
            )
        lines.append("| " + " | ".join(cells) + " |")
    budgets = sorted({(r["dataset"], r["budget"]) for r in rows if r["kind"] == "model"})
    lines += [
        "",
        "Budgets (CPU seconds of training steps per run): "
        + ", ".join(f"{ds} {b:g} s" for ds, b in budgets)
        + ". Factors: "
        + "; ".join(f"`{f}` = {json.dumps(FACTORS[f]) if FACTORS[f] else 'today’s preset'}" for f in factors)
        + ".",
    ]
    md = "\n".join(lines) + "\n"
    (_common.RESULTS_DIR / f"{name}.md").write_text(md)
    _common.write_json(name, {"summary": summary, "rows": rows})
    print(md)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--factors", nargs="+", default=list(FACTORS), choices=list(FACTORS))
    ap.add_argument("--datasets", nargs="+", default=["cite", "emt"], choices=["cite", "emt"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--budget-cite", type=float, default=120.0, help="CPU seconds of training per CITE run")
    ap.add_argument("--budget-emt", type=float, default=60.0, help="CPU seconds of training per EMT run")
    ap.add_argument("--shard", type=_common.shard, default=(1, 1), help="K/N: every N-th run, starting at the K-th")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--render", action="store_true")
    ap.add_argument("--name", default="recipe_factors")
    args = ap.parse_args(argv)
    if args.render:
        return render(args.name)
    k, n = args.shard
    torch.set_num_threads(1)
    log = _common.rows_log(args.name)
    snaps = {d: accuracy.load(d) for d in args.datasets}
    for d in [d for d, s in snaps.items() if s is None]:
        print(f"skip {d}: data not found under {accuracy.DATA}")
    # seed-major, factor-major within a seed: an interrupted run has whole comparisons
    jobs = [(ds, task, starts, "baselines", 0) for ds, task, starts in TASKS if snaps.get(ds) is not None]
    jobs += [
        (ds, task, starts, f, seed)
        for seed in args.seeds
        for f in args.factors
        for ds, task, starts in TASKS
        if snaps.get(ds) is not None
    ]
    old, log = _common.start_log(log, resume=args.resume, shard=(k, n))
    done = {(r["dataset"], r["task"], r["factor"] if r["kind"] == "model" else "baselines", r["seed"]) for r in old}
    jobs = [j for j in _common.share(jobs, args.shard) if (j[0], j[1], j[3], j[4]) not in done]
    commit = _common.env_info()["git_commit"]  # the code this process runs (imported at start)
    print(f"{len(jobs)} runs in shard {k}/{n}; rows → {log}", flush=True)
    for ds, task, starts, what, seed in jobs:
        t0 = time.perf_counter()
        if what == "baselines":
            rows = [{**r, "factor": r["preset"]} for r in accuracy.run_baselines(snaps[ds], ds, task, starts, seed)]
        else:
            rows = run(snaps[ds], ds, task, starts, what, seed, args.budget_cite if ds == "cite" else args.budget_emt)
        _common.append_rows(log, rows, **_common.run_fields(commit, threads=1))
        print(
            f"{ds} {task} {what} seed {seed}: "
            + ", ".join(f"{r['start']} W1 {r['w1']:.4g}" for r in rows)
            + f" ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    return render(args.name) if n == 1 else 0


if __name__ == "__main__":
    raise SystemExit(main())
