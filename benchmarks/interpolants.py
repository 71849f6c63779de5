"""How far can bridge-matching go? The flow-matching interpolants scored as predictions, with no model.

Flow matching regresses the drift on bridges between OT-coupled cells of consecutive training
snapshots (``train.method "flow_matching"``), and a model that fitted that regression exactly would
reproduce its interpolant's law at a held-out time (with the bridges' noise added). This script
scores that interpolant itself at every held-out time of the accuracy benchmark's tasks
(``benchmarks/accuracy.py``: EMT ``loo:1``, ``loo:2``; Bargaje ``interpolate:2,4,6``; CITE 50-D
``loo:1``, ``loo:2`` under both protocols), on the same cells and metric as the models
(:func:`mfsde.evaluation.baseline_evaluations`, exact W1):

* ``mccann`` — the straight interpolant (``train.fm_interpolant "linear"``) on the exact plan;
* ``mccann_metric`` — the same pairs along their geodesics in the data-density metric of the
  gap's two snapshots (``train.fm_interpolant "metric"``, its default settings);
* with ``previous`` and ``floor`` beside them.

With ``--models NAME …`` the model rows of committed accuracy results
(``benchmarks/results/NAME.json``) are put beside them, line by line, on the same held-out
times, so that a flow-matching model's error splits into its interpolant's and what the fit adds. The
baselines' seeds draw their cells as in the accuracy benchmark (seed k here = seed k there).

    python benchmarks/interpolants.py --models fm_linear_120s fm_metric_120s fm_metric_900s \\
        fm_linear_60s fm_metric_60s

Writes ``benchmarks/results/<name>.{json,md}`` (default name ``interpolants``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common
import accuracy
import torch

from mfsde.data import get_task
from mfsde.evaluation import baseline_evaluations, mccann_metric
from mfsde.losses import w1

NAMES = ("previous", "mccann", "mccann_metric", "floor")
LABELS = {"previous": "previous", "mccann": "McCann", "mccann_metric": "McCann, metric", "floor": "floor"}


def baseline_rows(datasets, seeds) -> list[dict]:
    rows = []
    for dataset, task, starts in accuracy.TASKS:
        if dataset not in datasets:
            continue
        snaps = accuracy.load(dataset)
        if snaps is None:
            print(f"{dataset}: data not found under {accuracy.DATA}; skipped", flush=True)
            continue
        for start in starts:
            for seed in seeds:
                t = time.process_time()
                evs = baseline_evaluations(
                    snaps, task, n_particles=accuracy.n_eval(start), seed=seed, metrics=("w1",), names=NAMES
                )
                for ev in evs:
                    for rec in ev["per_time"]:
                        rows.append(
                            {
                                "dataset": dataset,
                                "task": task,
                                "start": start,
                                "method": ev["preset"],
                                "seed": seed,
                                "index": rec["index"],
                                "w1": rec["w1"],
                            }
                        )
                print(
                    f"{dataset} {task} {start} seed {seed}: "
                    + ", ".join(f"{ev['preset']} {ev['w1']:.3f}" for ev in evs)
                    + f" ({time.process_time() - t:.0f} CPU s)",
                    flush=True,
                )
    return rows


def grid_rows(datasets, seeds, grid) -> list[dict]:
    """``mccann_metric`` with other (κ, ε) than the defaults, method ``"metric κ=…, ε=…"``: where the
    metric interpolant could go if its settings were right for the data set."""
    rows = []
    for dataset, task, starts in accuracy.TASKS:
        snaps = accuracy.load(dataset) if dataset in datasets else None
        if snaps is None:
            continue
        t = get_task(task, snaps.n_times)
        for start in starts:
            for seed in seeds:
                for kappa, eps in grid:
                    for k in t.heldout:
                        x = mccann_metric(snaps, k, t.train, accuracy.n_eval(start), seed, kappa=kappa, eps=eps)
                        rows.append(
                            {
                                "dataset": dataset,
                                "task": task,
                                "start": start,
                                "method": f"metric κ={kappa:g}, ε={eps:g}",
                                "seed": seed,
                                "index": k,
                                "w1": w1(x, snaps.data[k]),
                            }
                        )
                        print(
                            f"{dataset} {task} {start} seed {seed} {rows[-1]['method']}: {rows[-1]['w1']:.3f}",
                            flush=True,
                        )
    return rows


def model_rows(names) -> list[dict]:
    """The model rows of committed accuracy results, one per held-out time, labelled by the results' name."""
    rows = []
    for name in names:
        doc = json.loads((_common.RESULTS_DIR / f"{name}.json").read_text())
        for r in doc["rows"]:
            if r.get("kind") != "model":
                continue
            for rec in r["per_time"]:
                rows.append(
                    {
                        "dataset": r["dataset"],
                        "task": r["task"],
                        "start": r["start"],
                        "method": f"{r['preset']} ({name})",
                        "seed": r["seed"],
                        "index": rec["index"],
                        "w1": rec["w1"],
                    }
                )
    return rows


def table(rows: list[dict], methods: list[str]) -> str:
    lines = sorted({(r["dataset"], r["task"], r["start"], r["index"]) for r in rows if r["method"] in NAMES})
    out = []
    for line in lines:
        cells = [f"{line[0]} {line[1]}, time {line[3]}, {line[2]}"]
        for m in methods:
            vals = [
                r["w1"] for r in rows if (r["dataset"], r["task"], r["start"], r["index"]) == line and r["method"] == m
            ]
            digits = 2 if line[0] == "cite" else 3
            cells.append(_common.mean_pm(vals, digits) + (f" ({len(vals)})" if vals and "(" in m else ""))
        out.append(cells)
    headers = ["data, task, held-out time, start"] + [LABELS.get(m, m) for m in methods]
    return _common.markdown_table(headers, out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["emt", "bargaje", "cite"], choices=["emt", "bargaje", "cite"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--models", nargs="*", default=[], help="named accuracy results whose model rows go beside")
    ap.add_argument(
        "--grid",
        nargs="*",
        default=[],
        metavar="KAPPA:EPS",
        help="also score the metric interpolant with these (κ, ε) (a sweep on held-out times: an optimistic ceiling)",
    )
    ap.add_argument("--name", default="interpolants")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t = time.process_time()
    grid = [tuple(float(v) for v in g.split(":")) for g in args.grid]
    rows = baseline_rows(args.datasets, args.seeds) + grid_rows(args.datasets, args.seeds, grid)
    cpu = time.process_time() - t
    models = model_rows(args.models)
    methods = list(NAMES) + list(dict.fromkeys(r["method"] for r in rows if r["method"] not in NAMES))
    methods += sorted({r["method"] for r in models})
    md = (
        "Held-out W1 (data units, mean ± std over seeds; a model column gives its seeds in brackets) of the "
        "flow-matching interpolants scored with no model, beside the models trained on them. `McCann` is the "
        'straight interpolant (`train.fm_interpolant "linear"`), `McCann, metric` the same pairs along '
        'geodesics of the data-density metric (`"metric"`, default settings). A flow-matching model '
        "that fitted its regression exactly would reproduce its interpolant's law (with the bridges' noise "
        "added): the gap between the columns is what the fit adds or loses.\n\n"
        f"{table(rows + models, methods)}\n\n"
        f"Baselines: seeds {' '.join(map(str, args.seeds))}, {cpu:.0f} CPU s, {args.threads} thread(s), "
        f"load {os.getloadavg()[0]:.1f} at the end. Model rows from: {', '.join(args.models) or 'none'}.\n"
    )
    (_common.RESULTS_DIR / f"{args.name}.md").write_text(md)
    _common.write_json(
        args.name, {"settings": vars(args), "cpu_seconds": cpu, "rows": rows, "model_rows_from": args.models}
    )
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
