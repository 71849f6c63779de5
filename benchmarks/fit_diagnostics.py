"""Why training stalled, one factor at a time: from scIMF's recipe to the presets' defaults.

Trains the ``ito`` model (MLP drift, no interaction: the fastest, and the model whose stall was
first measured) on EMT ``loo:1`` (or ``--dataset``) for a fixed budget of training-step seconds
per variant, each variant changing one setting of the previous default, and records along
training: held-out and training-time exact W1 (data units, 1000 cells from t₀), the fit and
energy terms, the gradient norm before and after clipping and the learning rate. Baselines
(previous time point, McCann, floor) on the same cells are printed beside.

    python benchmarks/fit_diagnostics.py                    # ~10 min on one core per seed
    python benchmarks/fit_diagnostics.py --seeds 0 1 --shard 1/2 & \\
        python benchmarks/fit_diagnostics.py --seeds 0 1 --shard 2/2; python benchmarks/fit_diagnostics.py --render
    # CITE 50-D, the attention model, one task per results file (the table is keyed by variant):
    python benchmarks/fit_diagnostics.py --dataset cite --task loo:2 --preset scimf --budget 480 \\
        --variants "default (λ = 0.01)" "paper recipe (raw units, λ=1)" "σ 0.03" --final-eval \\
        --name fit_diagnostics_cite_day4

``--final-eval`` also scores the final model at the held-out times with the protocols of
benchmarks/accuracy.py: 2000 cells from t₀, all cells of t₀, and from the previous training day
(all its cells), beside the baselines at 2000 cells (~1 min more per variant on CITE).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common
import numpy as np
import torch
from accuracy import load

import mfsde
from mfsde import (
    evaluate,
    fit,
)
from mfsde.evaluation import baseline_evaluations

PAPER = {"model.standardize": "none", "model.time_scale": "none", "loss.energy_weight": 1.0}
#: label → overrides of the ito preset (the preset itself is the default: "default")
VARIANTS = {
    "paper recipe (raw units, λ=1)": PAPER,
    "+ standardise (global), λ=1": {**PAPER, "model.standardize": "global"},
    "+ time unit = mean gap, λ=1": {"loss.energy_weight": 1.0},
    "λ = 0.1": {"loss.energy_weight": 0.1},
    "λ = 0.03": {"loss.energy_weight": 0.03},
    "default (λ = 0.01)": {},
    "λ = 0": {"loss.energy_weight": 0.0},
    "per-dim standardise": {"model.standardize": "per_dim"},
    "no gradient clipping": {"train.clip_grad_norm": None},
    "lr 3e-3": {"train.lr": 3e-3},
    "blur 0.05": {"loss.fit.blur": 0.05},
    "blur 0.3": {"loss.fit.blur": 0.3},
    "n_targets all": {"train.n_targets": None},
    "256 particles": {"train.n_particles": 256},
    "dt 0.05": {"model.dt": 0.05},
    # diffusion σ (model units; with model.standardize="global" that is σ × scale in data units)
    "σ 0.03": {"model.sigma": 0.03},
    "σ 0.01": {"model.sigma": 0.01},
    # Polyak averaging of the weights (the trace's intermediate points score the raw weights;
    # the last point and --final-eval the averaged model that fit returns)
    "EMA 0.95": {"train.ema": 0.95},
    "EMA 0.99": {"train.ema": 0.99},
    # the interaction kernel's own Adam step size (attention presets only; ito has no kernel)
    "kernel lr 1e-2": {"train.inter_lr": 1e-2},
    "kernel lr 3e-3": {"train.inter_lr": 3e-3},
}
#: ``--final-eval`` protocols: column title → evaluate() keywords (held-out times only)
FINAL = {
    "2000 cells from t0": {"n_particles": 2000, "start": "t0"},
    "all cells from t0": {"n_particles": None, "start": "t0"},
    "previous day (all cells)": {"n_particles": None, "start": "previous"},
}
POINTS = 6


def run(snaps, task: str, label: str, seed: int, budget: float, preset: str, final_eval: bool = False) -> dict:
    cfg = mfsde.preset(preset, dim=snaps.dim).override(
        **{**VARIANTS[label], "train.seed": seed, "train.time_budget": budget, "train.iterations": 10**6}
    )
    train_idx = [i for i in mfsde.data.get_task(task, snaps.n_times).train if i > 0]
    marks, trace, spent = [budget * (j + 1) / POINTS for j in range(POINTS - 1)], [], [0.0]
    window: list[dict] = []

    def snapshot(rec, model):
        ev = evaluate(model, snaps, task, n_particles=1000, seed=0, times=None, metrics=("w1",))
        tr = evaluate(model, snaps, task, n_particles=1000, seed=0, times=train_idx, metrics=("w1",))
        model.train()
        trace.append(
            {
                "train_seconds": spent[0],
                "iteration": rec["iteration"],
                "heldout_w1": ev["w1"],
                "train_w1": tr["w1"],
                "fit": float(np.mean([w["fit"] for w in window])),
                "energy": float(np.mean([w["energy"] for w in window])),
                "grad_norm": float(np.mean([w["grad_norm"] for w in window])),
                "grad_norm_clipped": float(np.mean([w["grad_norm_clipped"] for w in window])),
                "lr": rec["lr"],
            }
        )
        window.clear()

    def cb(rec, model):
        spent[0] += rec["seconds"]
        window.append(rec)
        if marks and spent[0] >= marks[0]:
            while marks and spent[0] >= marks[0]:
                marks.pop(0)
            snapshot(rec, model)
        return False

    res = fit(cfg, snaps, task, progress=False, callback=cb)
    if window:
        snapshot(res.history[-1], res.model)
    out = {
        "label": label,
        "seed": seed,
        "iterations": res.iteration,
        "trace": trace,
        "heldout_w1": trace[-1]["heldout_w1"],
        "train_w1": trace[-1]["train_w1"],
    }
    if final_eval:
        out["final"] = {}
        for title, kw in FINAL.items():
            t = time.perf_counter()
            ev = evaluate(res.model, snaps, task, seed=0, metrics=("w1",), **kw)
            out["final"][title] = {
                "w1": ev["w1"],
                "per_time": {str(r["time"]): r["w1"] for r in ev["per_time"]},
                "seconds": time.perf_counter() - t,
            }
    return out


def render(name: str, settings: dict | None = None) -> int:
    rows, log = _common.load_rows(name)
    if not rows:
        print(f"no rows in {log}")
        return 2
    base = [r for r in rows if r.get("kind") == "baseline"]
    runs = [r for r in rows if r.get("kind") != "baseline"]
    lines = [
        f"held-out / training-time W1 (data units, 1000 cells from t0) after {runs[0]['budget']:g} s of "
        f"training steps, {runs[0]['dataset']} {runs[0]['task']}, model `{runs[0]['preset']}`; mean ± std over "
        f"seeds; trend = held-out W1 over the last half of the budget",
        "",
        "| variant | held-out W1 | training-time W1 | trend | iterations | grad norm (before → after clip) | seeds |",
        "|---|---|---|---|---|---|---|",
    ]
    finals = [r for r in runs if r.get("final")]
    for label in VARIANTS:
        rs = [r for r in runs if r["label"] == label]
        if not rs:
            continue
        half = [r["trace"][len(r["trace"]) // 2]["heldout_w1"] for r in rs]
        trend = np.mean([r["heldout_w1"] for r in rs]) - np.mean(half)
        g = rs[0]["trace"][-1]
        lines.append(
            f"| {label} | {_common.mean_pm([r['heldout_w1'] for r in rs])} | "
            f"{_common.mean_pm([r['train_w1'] for r in rs])} | "
            f"{trend:+.3f} | {_common.mean_pm([r['iterations'] for r in rs], 0)} | "
            f"{g['grad_norm']:.3g} → {g['grad_norm_clipped']:.3g} | {len(rs)} |"
        )
    for b in ("previous", "mccann", "floor"):
        vals = [r["w1"] for r in base if r["preset"] == b and r.get("n_particles", 1000) == 1000]
        if vals:
            lines.append(f"| *{b}* | {np.mean(vals):.3f} | | | | | {len(vals)} |")
    if finals:  # --final-eval: the final model under benchmarks/accuracy.py's protocols
        lines += [
            "",
            "held-out W1 of the final model (data units) under benchmarks/accuracy.py's protocols; "
            "baselines at 2000 cells; trace = held-out W1 (1000 cells from t0) at each sixth of the budget",
            "",
            "| variant | " + " | ".join(FINAL) + " | trace |",
            "|---|" + "---|" * (len(FINAL) + 1),
        ]
        for label in VARIANTS:
            rs = [r for r in finals if r["label"] == label]
            if rs:
                cells = [f"{np.mean([r['final'][t]['w1'] for r in rs]):.3f}" for t in FINAL]
                trace = " → ".join(f"{p['heldout_w1']:.2f}" for p in rs[0]["trace"])
                lines.append(f"| {label} | " + " | ".join(cells) + f" | {trace} |")
        for b in ("previous", "mccann", "floor"):
            vals = [r["w1"] for r in base if r["preset"] == b and r.get("n_particles") == 2000]
            if vals:
                lines.append(f"| *{b}* | {np.mean(vals):.3f} |" + " |" * len(FINAL))
    md = "\n".join(lines) + "\n"
    (_common.RESULTS_DIR / f"{name}.md").write_text(md)
    _common.write_json(name, {"settings": settings or {}, "environment": _common.env_info(), "rows": rows})
    print(md)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="emt", choices=["emt", "bargaje", "cite"])
    ap.add_argument("--task", default="loo:1")
    ap.add_argument("--preset", default="ito")
    ap.add_argument("--budget", type=float, default=45.0, help="seconds of training steps per variant")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--shard", type=_common.shard, default=(1, 1))
    ap.add_argument("--name", default="fit_diagnostics")
    ap.add_argument("--render", action="store_true")
    ap.add_argument(
        "--final-eval",
        action="store_true",
        help="also score the final model with benchmarks/accuracy.py's protocols (FINAL)",
    )
    ap.add_argument(
        "--append",
        action="store_true",
        help="add to the rows already in results/<name>.rows.jsonl (e.g. more seeds) instead of starting over",
    )
    args = ap.parse_args(argv)
    if args.render:
        return render(args.name)
    torch.set_num_threads(1)
    k, n = args.shard
    snaps = load(args.dataset)
    if snaps is None:
        print(f"skip: {args.dataset} not found under ../shared/data")
        return 0
    log = _common.rows_log(args.name)
    _, log = _common.start_log(log, resume=args.append, shard=(k, n))  # --append keeps the rows there
    if k == 1:
        for seed in args.seeds:
            _common.append_rows(
                log,
                [
                    {"kind": "baseline", "preset": ev["preset"], "seed": seed, "w1": ev["w1"]}
                    for ev in baseline_evaluations(snaps, args.task, n_particles=1000, seed=seed, metrics=("w1",))
                ],
            )
            if args.final_eval:
                _common.append_rows(
                    log,
                    [
                        {"kind": "baseline", "preset": ev["preset"], "seed": seed, "w1": ev["w1"], "n_particles": 2000}
                        for ev in baseline_evaluations(snaps, args.task, n_particles=2000, seed=seed, metrics=("w1",))
                    ],
                )
    jobs = [(v, s) for v in args.variants for s in args.seeds]
    commit = _common.env_info()["git_commit"]  # the code this process runs (imported at start)
    for label, seed in _common.share(jobs, args.shard):
        t0 = time.perf_counter()
        r = run(snaps, args.task, label, seed, args.budget, args.preset, args.final_eval)
        r.update(
            dataset=args.dataset,
            task=args.task,
            preset=args.preset,
            budget=args.budget,
            wall_seconds=time.perf_counter() - t0,
        )
        _common.append_rows(log, [r], **_common.run_fields(commit))
        print(
            f"{label:>32} seed {seed}: held-out {r['heldout_w1']:.4f}  train {r['train_w1']:.4f}  "
            f"({r['iterations']} it, {time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    return render(args.name, vars(args)) if n == 1 else 0


if __name__ == "__main__":
    raise SystemExit(main())
