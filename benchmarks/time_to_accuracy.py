"""Held-out W1 against CPU seconds of training, per training method (``train.method``).

``scimf`` is trained with ``flow_matching`` and ``flow_matching+simulation`` (and, named in
``--methods``, ``flow_matching:metric``: flow matching with ``train.fm_interpolant "metric"``, and
``flow_matching+simulation:global``: the CITE recipe, metric bridges between cells paired by the whole
snapshots' OT plan, then simulation from every snapshot) on CITE 50-D (day 3
and day 4 held out) and EMT (``loo:1``, ``loo:2``) for ``--budget-cite`` / ``--budget-emt`` CPU
seconds (1 thread), and scored (held-out W1, 2000 cells simulated from t0) after every eighth of
the budget (:func:`accuracy.run_model`'s curve). The ``simulation`` line is read from the accuracy
benchmark's rows (``results/<--simulation-from>.rows.jsonl``, same presets, same tasks, the
budget it ran at), so the figure compares the methods at equal compute without rerunning it;
``--methods simulation`` reruns it here instead. Baselines (previous, McCann, floor) come from the
same rows: they are the same cells and metric.

Rows go to ``results/<name>.rows.jsonl`` as they finish (``--resume``, ``--shard K/N``); the
figure ``<name>.png`` and table ``<name>.md``/``.json`` are
written from the rows (``--render``).

    python benchmarks/time_to_accuracy.py --shard 1/2 & python benchmarks/time_to_accuracy.py --shard 2/2; \\
        python benchmarks/time_to_accuracy.py --render
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common
import accuracy
import numpy as np
import torch

METHODS = ["flow_matching", "flow_matching+simulation"]
#: further lines by name: a training method with settings of its own (the row's ``method`` is the name)
VARIANTS = {
    "flow_matching:metric": {"train.method": "flow_matching", "train.fm_interpolant": "metric"},
    # the CITE recipe of docs/training_methods.md: metric bridges between globally OT-paired cells, then simulation
    "flow_matching+simulation:global": {
        "train.method": "flow_matching+simulation",
        "train.fm_iterations": 300,
        "train.starts": "every",
        "train.clip_grad_norm": None,
        "train.ema": 0.99,
        "train.fm_interpolant": "metric",
        "train.fm_coupling": "global",
    },
}
TASKS = [
    ("cite", "loo:1", ("t0", "previous")),
    ("cite", "loo:2", ("t0", "previous")),
    ("emt", "loo:1", ("t0",)),
    ("emt", "loo:2", ("t0",)),
]


def _rows(args) -> list[dict]:
    """This benchmark's rows plus the simulation and baseline rows of ``--simulation-from``."""
    own = _common.read_rows(_common.rows_log(args.name))  # the log itself: the JSON holds the merged rows
    sim = _common.load_rows(args.simulation_from)[0]
    tasks = {(d, t) for d, t, _ in TASKS}
    keep = [
        r
        for r in sim
        if (r["dataset"], r["task"]) in tasks
        and (
            r["kind"] == "baseline"
            or (r["preset"] == args.preset and r.get("method", "simulation") == "simulation" and not r.get("overrides"))
        )
    ]
    if any(r.get("method") == "simulation" for r in own):  # rerun here: do not mix two simulation runs
        keep = [r for r in keep if r["kind"] == "baseline"]
    return own + [{**r, "method": r.get("method", "simulation")} for r in keep]


def render(args) -> int:
    rows = _rows(args)
    models = [r for r in rows if r["kind"] == "model"]
    if not models:
        print(f"no rows in {args.name}.rows.jsonl")
        return 2
    keys = [(d, t) for d, t, _ in TASKS if any(r["dataset"] == d and r["task"] == t for r in models)]
    methods = [m for m in ["simulation", *METHODS, *VARIANTS] if any(r["method"] == m for r in models)]

    def digits(d):
        return 2 if d == "cite" else 3

    lines = [
        "Held-out W1 (mean ± std over seeds) of `scimf` by training method, equal CPU seconds of training "
        "(1 thread); the W1 after a quarter, half and all of the budget (t0: cells simulated from the first "
        "day; previous: from the previous observed day, the flow-matching literature's protocol).",
        "",
    ]
    head = [
        "data, task, start",
        "method",
        "budget (s)",
        "iterations",
        "W1 @ ¼",
        "W1 @ ½",
        "W1 @ end",
        "previous",
        "McCann",
        "floor",
    ]
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    summary = []
    for d, t in keys:
        for start in ("t0", "previous"):
            base: dict[str, list[float]] = {}
            for r in rows:
                if r["kind"] == "baseline" and r["dataset"] == d and r["task"] == t and r["start"] == start:
                    base.setdefault(r["preset"], []).append(r["w1"])
            for m in methods:
                g = [
                    r
                    for r in models
                    if r["dataset"] == d and r["task"] == t and r["start"] == start and r["method"] == m
                ]
                if not g:
                    continue
                q = ["–", "–"]
                if start == "t0" and all(r.get("curve") for r in g):
                    n = min(len(r["curve"]) for r in g)
                    for j, frac in enumerate((0.25, 0.5)):
                        k = max(0, min(n - 1, int(round(frac * accuracy.CURVE_POINTS)) - 1))
                        q[j] = _common.mean_pm([r["curve"][k]["w1"] for r in g], digits(d))
                b = [
                    f"{np.mean(base[name]):.{digits(d)}f}" if name in base else "–"
                    for name in ("previous", "mccann", "floor")
                ]
                lines.append(
                    f"| {d} {t}, {start} | {m} | {g[0]['budget']:g} | "
                    f"{_common.mean_pm([r['iterations'] for r in g], 0)}"
                    f" | {q[0]} | {q[1]} | {_common.mean_pm([r['w1'] for r in g], digits(d))} | " + " | ".join(b) + " |"
                )
                summary.append(
                    {
                        "dataset": d,
                        "task": t,
                        "start": start,
                        "method": m,
                        "budget": g[0]["budget"],
                        "w1": _common.mean_std([r["w1"] for r in g]),
                        "seeds": [r["seed"] for r in g],
                        "iterations": _common.mean_std([r["iterations"] for r in g]),
                    }
                )
    md = "\n".join(lines) + "\n"
    (_common.RESULTS_DIR / f"{args.name}.md").write_text(md)
    fig = figure(rows, keys, methods, _common.RESULTS_DIR / f"{args.name}.png")
    _common.write_json(
        args.name,
        {
            "summary": summary,
            "settings": {k: v for k, v in vars(args).items()},
            "rows": [r for r in rows if r["kind"] == "model"],
        },
    )
    print(md)
    print(f"wrote {args.name}.md, {args.name}.json" + (f", {fig.name}" if fig else ""))
    return 0


def figure(rows, keys, methods, path: Path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no figure")
        return None
    fig, axes = plt.subplots(1, len(keys), figsize=(4.0 * len(keys), 3.4), squeeze=False)
    for ax, (d, t) in zip(axes[0], keys):
        for m in methods:
            curves = [
                r["curve"]
                for r in rows
                if r["kind"] == "model"
                and r["dataset"] == d
                and r["task"] == t
                and r["start"] == "t0"
                and r["method"] == m
                and r.get("curve")
            ]
            if not curves:
                continue
            accuracy.curve_line(ax, curves, m)
        accuracy.baseline_lines(ax, [r for r in rows if r["dataset"] == d and r["task"] == t and r["start"] == "t0"])
    return accuracy.save_panels(
        plt, fig, axes, [f"{d} {t}" for d, t in keys], "CPU seconds of training (1 thread)", path
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=["simulation", *METHODS, *VARIANTS])
    ap.add_argument("--preset", default="scimf")
    ap.add_argument("--datasets", nargs="+", default=["cite", "emt"], choices=["cite", "emt"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--budget-cite", type=float, default=240.0)
    ap.add_argument("--budget-emt", type=float, default=60.0)
    ap.add_argument("--simulation-from", default="accuracy", help="rows log of the simulation line and baselines")
    _common.add_set_option(ap)
    ap.add_argument(
        "--fm-share",
        type=float,
        default=None,
        help="train.fm_share for the flow_matching+simulation runs only (share of the budget on flow matching)",
    )
    ap.add_argument(
        "--fm-restart-lr",
        action="store_true",
        help="train.fm_restart_lr for the flow_matching+simulation runs only (restart the step size at the switch)",
    )
    ap.add_argument("--shard", type=_common.shard, default=(1, 1))
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--render", action="store_true")
    ap.add_argument("--name", default="time_to_accuracy")
    args = ap.parse_args(argv)
    if args.render:
        return render(args)
    overrides = _common.overrides(ap, args.overrides)
    k, n = args.shard
    torch.set_num_threads(1)
    log = _common.rows_log(args.name)
    snaps = {d: accuracy.load(d) for d in args.datasets}
    jobs = [
        (d, t, starts, m, seed)
        for seed in args.seeds
        for m in args.methods
        for d, t, starts in TASKS
        if d in args.datasets and snaps[d] is not None
    ]
    old, log = _common.start_log(log, resume=args.resume, shard=(k, n))
    done = {(r["dataset"], r["task"], r["method"], r["seed"]) for r in old}
    jobs = [j for j in _common.share(jobs, args.shard) if (j[0], j[1], j[3], j[4]) not in done]
    commit = _common.env_info()["git_commit"]  # the code this process runs (imported at start)
    print(f"{len(jobs)} runs in shard {k}/{n}; rows → {log}", flush=True)
    for d, t, starts, m, seed in jobs:
        t0 = time.perf_counter()
        budget = args.budget_cite if d == "cite" else args.budget_emt
        rows = accuracy.run_model(
            snaps[d],
            d,
            t,
            starts,
            args.preset,
            seed,
            argparse.Namespace(
                budget=budget,
                overrides={
                    **overrides,
                    **VARIANTS.get(m, {"train.method": m}),
                    "train.time_clock": "cpu",
                    **({"train.fm_share": args.fm_share} if args.fm_share and m == "flow_matching+simulation" else {}),
                    **({"train.fm_restart_lr": True} if args.fm_restart_lr and m == "flow_matching+simulation" else {}),
                },
            ),
        )
        for r in rows:
            r["method"] = m  # a variant's rows carry its name, not only its train.method
        _common.append_rows(log, rows, **_common.run_fields(commit, threads=1))
        print(
            f"{d} {t} {m} seed {seed}: "
            + ", ".join(f"{r['start']} W1 {r['w1']:.4g}" for r in rows)
            + f" ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    return render(args) if n == 1 else 0


if __name__ == "__main__":
    raise SystemExit(main())
