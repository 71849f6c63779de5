"""Held-out accuracy of every preset against the baselines, at one training-time budget per run.

Data (../shared/data; a data set that is absent is skipped with a message):

* EMT (10-D, 4 time points): tasks ``loo:1`` and ``loo:2``;
* Bargaje (4-D, 8 time points): ``interpolate:2,4,6``;
* CITE 50-D (days 2, 3, 4, 7): day 3 held out (``loo:1``, trained on days 2, 4, 7) and day 4
  held out (``loo:2``, trained on 2, 3, 7), each under both protocols: ``t0`` (scIMF's:
  simulate 2000 cells from day 2) and ``previous`` (the flow-matching literature's: simulate all
  cells of the previous training day);
* on request (``--tasks``), extrapolation: ``emt:extrapolate:1`` and ``bargaje:extrapolate:1``
  (the last time held out; McCann has no later time there and shows "–"), under both protocols:
  ``t0`` (the whole trajectory from the first time) and ``previous`` (the last training time's
  cells one gap forward: the same start as copying them).

``--tasks DATA:TASK …`` picks tasks by label (default ``emt:loo:1 emt:loo:2
bargaje:interpolate:2,4,6 cite:loo:1 cite:loo:2``).

Every run trains one preset with one seed for ``--budget`` seconds of training steps (the
evaluation along the way is not counted), so presets are compared at equal compute; the
time-to-accuracy curve (held-out W1 after 1/8, 2/8, … of the budget) is recorded too. Beside the
models, on the same cells and metric (exact W1, POT): copying the previous training time point,
McCann interpolation between the neighbouring training time points, the sampling floor
(:mod:`mfsde.evaluation`), and published figures where they exist (CITE).

Every finished run is appended to ``results/<name>.rows.jsonl`` at once; ``--resume`` skips the
runs already there, and ``--shard K/N`` runs every N-th model run and every N-th baseline run
(start two shards on two cores). ``--set KEY=VALUE …`` overrides the presets' configs. The
table, JSON and figure are written from the rows (``--render`` alone rewrites them).

No-regression gate. ``--write-reference`` turns ``results/<name>.rows.jsonl`` into the reference
figures ``reference/accuracy.json`` (``--reference PATH`` elsewhere): per (data set, task, start,
method), held-out W1/W2 per held-out time and their mean, as mean, sample std, n and the seeds;
for models the budget, ``--set`` overrides, training method and clock; the commits the rows name,
the mfsde version and the date. Written at a release and committed. Every run (at its end),
``--render`` and ``--compare`` (no training; prints only this section) then add to <name>.md and
<name>.json (key ``gate``) a table "Against the reference": one line per method, data set, task,
start and held-out time (and the mean over held-out times where there are several), with the
reference's and this run's W1 mean ± std (n seeds), the difference (this run − reference), the
tolerance and a verdict:

    tol = 2·√(s_ref²/n_ref + s_new²/n_new), s the sample std over seeds; a side with one seed
          borrows the other side's std (both single: s = 1 % of the reference mean);
          tol is at least 0.25 % of the reference mean;
    better if new < ref − tol, worse if new > ref + tol, else within (lower W1 is better).

A model whose budget, overrides, training method or clock differ from the reference's is "not
comparable (budget 120 vs 240)" (this run's value first); a method only one side has is "new" or
"missing"; tasks this run did not run are named once under the table. A summary line counts the
verdicts per data set. ``--compare`` exits 0 whatever the verdicts (it reports) unless
``--fail-on-worse`` (then 1 if a line is worse); ``--reference none`` turns the comparison off.

A budget in seconds buys fewer iterations on a slower or busier machine (then "not comparable:
iterations …"). ``--match-iterations`` trains every model run for the reference's iteration count
of its data set, task, preset and seed instead, with no time limit: unchanged code reproduces
the reference's figures whatever the machine, and the seconds per iteration of both sides are
shown under the table, for information. ``--write-reference`` refuses rows from uncommitted code
(``+dirty``; ``--allow-dirty`` writes them as ``"reproducible": false``); ``--update`` replaces
only the reference entries that the rows hold. ``--candidate`` gates a proposed default before it
is made one: the rows' ``--set`` overrides are compared with the reference's plain presets.

    python benchmarks/accuracy.py --shard 1/2 & python benchmarks/accuracy.py --shard 2/2; \\
        python benchmarks/accuracy.py --render
    python benchmarks/accuracy.py --quick      # a smoke run: EMT, 2 presets, 10 s
    python benchmarks/accuracy.py --write-reference         # at a release: commit reference/accuracy.json
    python benchmarks/accuracy.py --compare [--name NAME] [--fail-on-worse]
    python benchmarks/accuracy.py --presets scimf --cite-presets scimf --match-iterations --name gate
    python benchmarks/accuracy.py --write-reference --update --name gate   # replace those entries
    python benchmarks/accuracy.py --tasks emt:extrapolate:1 bargaje:extrapolate:1 --name accuracy_extrapolate
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import operator
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common
import numpy as np
import torch

import mfsde
from mfsde import (
    evaluate,
    fit,
)
from mfsde.evaluation import BASELINES, baseline_evaluations

DATA = _common.REPO_ROOT.parent / "shared" / "data"
PRESETS = ["scimf", "ito", "symmetric_qk", "rbf", "pairwise_mlp", "scimf_paper"]
#: (dataset, task, protocols) the benchmark runs by default
TASKS = [
    ("emt", "loo:1", ("t0",)),
    ("emt", "loo:2", ("t0",)),
    ("bargaje", "interpolate:2,4,6", ("t0",)),
    ("cite", "loo:1", ("t0", "previous")),
    ("cite", "loo:2", ("t0", "previous")),
]
#: further tasks it can run when ``--tasks`` names them (extrapolation: the last time held out)
EXTRA_TASKS = [("emt", "extrapolate:1", ("t0", "previous")), ("bargaje", "extrapolate:1", ("t0", "previous"))]
#: published held-out W1 on CITE 50-D (previous-day protocol), mean of the day-3 and day-4 folds
PUBLISHED = {
    ("cite", "previous"): [
        ("OT-MFM (Kapusniak et al. 2024)", 36.39, 1.89),
        ("[SF]²M-Geo (Tong et al. 2024)", 38.52, 0.29),
        ("OT-CFM (Tong et al. 2024)", 38.76, 0.40),
    ],
}
#: the project's targets for scimf on CITE, scIMF protocol (OTP-FM's per-day figures, easier protocol)
CITE_T0_TARGETS = {"loo:1": 38.07, "loo:2": 35.46}
CURVE_POINTS = 8


def load(name: str):
    """A data set of :mod:`mfsde.datasets` from ``../shared/data`` (never downloaded here); ``None``
    when its files are not there."""
    from mfsde import datasets

    get = {"emt": datasets.emt, "bargaje": datasets.bargaje, "cite": datasets.cite}[name]
    try:
        return get(data_dir=DATA, download=False)
    except datasets.DatasetNotFound:
        return None


def n_eval(start: str):
    """Simulated cells: 2000 from t0 (scIMF's protocol); all cells of the start day for the
    flow-matching protocol (as published)."""
    return 2000 if start == "t0" else None


def run_model(snaps, dataset: str, task: str, starts, preset: str, seed: int, args) -> list[dict]:
    """One preset, one seed: trained for ``args.budget`` seconds of training steps, or, when
    ``args.iterations`` is set (``--match-iterations``), for exactly that many iterations with no
    time limit; evaluated under every protocol in ``starts``."""
    overrides = args.overrides
    iterations = getattr(args, "iterations", None)
    limits = (
        {"train.time_budget": None, "train.iterations": iterations}
        if iterations is not None
        else {"train.time_budget": args.budget, "train.iterations": 10**6}
    )
    cfg = mfsde.preset(preset, dim=snaps.dim).override(**{**overrides, "train.seed": seed, **limits})
    total = iterations if iterations is not None else args.budget
    marks = [total * (j + 1) / CURVE_POINTS for j in range(CURVE_POINTS - 1)]
    curve, spent = [], [0.0]
    wall = time.perf_counter()

    def cb(rec, model):  # time-to-accuracy: held-out W1 after each 1/8 of the budget (or of the iterations)
        # training steps only, on the budget's clock: this evaluation is not counted
        spent[0] += rec["cpu_seconds"] if cfg.train.time_clock == "cpu" else rec["seconds"]
        done = rec["iteration"] if iterations is not None else spent[0]
        if marks and done >= marks[0]:
            while marks and done >= marks[0]:
                marks.pop(0)
            ev = evaluate(model, snaps, task, n_particles=2000, seed=0, metrics=("w1",))
            model.train()
            curve.append({"train_seconds": spent[0], "iteration": rec["iteration"], "w1": ev["w1"]})
        return False

    res = fit(cfg, snaps, task, progress=False, callback=cb)
    rows = []
    for start in starts:
        ev = evaluate(res.model, snaps, task, n_particles=n_eval(start), seed=0, start=start)
        if start == "t0":
            curve.append({"train_seconds": res.train_seconds, "iteration": res.iteration, "w1": ev["w1"]})
        rows.append(
            {
                "dataset": dataset,
                "task": task,
                "start": start,
                "preset": preset,
                "kind": "model",
                "seed": seed,
                "w1": ev["w1"],
                "w2": ev["w2"],
                "per_time": ev["per_time"],
                "iterations": res.iteration,
                "train_seconds": res.train_seconds,
                "wall_seconds": time.perf_counter() - wall,
                "final_fit": res.history[-1].get("fit"),
                "final_energy": res.history[-1].get("energy"),
                "final_fm": res.history[-1].get("fm"),
                "train_cpu_seconds": res.train_cpu_seconds,
                "curve": curve if start == "t0" else None,
                "budget": None if iterations is not None else args.budget,
                # "iterations": trained for the reference's iteration count of this seed (--match-iterations)
                "compute": "budget" if iterations is None else "iterations",
                "overrides": overrides,
                # what the no-regression gate compares besides budget and overrides (older configs: their values)
                "method": cfg.train.method,
                "time_clock": cfg.train.time_clock,
                **_common.train_settings(cfg.train),
            }
        )
    return rows


def run_baselines(snaps, dataset: str, task: str, starts, seed: int) -> list[dict]:
    """The baselines of one task and seed under every protocol in ``starts``; extrapolation tasks
    add ``continuation`` (the last training gap's displacement carried on), the baseline with
    dynamics where McCann has no later time."""
    names = BASELINES + (("continuation",) if task.startswith("extrapolate") else ())
    rows = []
    for start in starts:
        for ev in baseline_evaluations(snaps, task, n_particles=n_eval(start), seed=seed, names=names):
            rows.append(
                {
                    "dataset": dataset,
                    "task": task,
                    "start": start,
                    "preset": ev["preset"],
                    "kind": "baseline",
                    "seed": seed,
                    "w1": ev["w1"],
                    "w2": ev["w2"],
                    "per_time": ev["per_time"],
                }
            )
    return rows


def task_label(task: tuple) -> str:
    """``dataset:task``, e.g. ``cite:loo:2`` (how ``--tasks`` names a task)."""
    return f"{task[0]}:{task[1]}"


def parse_task(label: str) -> tuple:
    """The (dataset, task, protocols) of :data:`TASKS` + :data:`EXTRA_TASKS` that ``label`` names
    (``--tasks``' type)."""
    for t in TASKS + EXTRA_TASKS:
        if task_label(t) == label.strip():
            return t
    raise argparse.ArgumentTypeError(
        f"unknown task {label!r}; known: {', '.join(map(task_label, TASKS + EXTRA_TASKS))}"
    )


def plan(args) -> list[tuple]:
    """Seed-major, so that an interrupted benchmark has whole seeds (and ``--resume`` finishes it)."""
    jobs = []
    for seed in args.seeds:
        for dataset, task, starts in args.tasks:
            if dataset not in args.datasets:
                continue
            if not getattr(args, "no_baselines", False):
                jobs.append((dataset, task, starts, "baselines", seed))
            for preset in args.cite_presets if dataset == "cite" else args.presets:
                jobs.append((dataset, task, starts, preset, seed))
    return jobs


# -- output ----------------------------------------------------------------------------------------
def _w(row: dict, metric: str, j: int | None = None) -> float:
    """``metric`` of a row at its ``j``-th held-out time (``None``: the mean over them); NaN where it
    is undefined: McCann past the last training time, where :func:`mfsde.evaluation.baseline_evaluations`
    copies ``previous`` and says so in the time's ``note``."""
    pts = row["per_time"] if j is None else [row["per_time"][j]]
    if any(pt.get("note") for pt in pts):
        return float("nan")
    return row[metric] if j is None else pts[0][metric]


def _groups(rows: list[dict]) -> dict[tuple, list[dict]]:
    """Rows per (dataset, task, protocol, method), one per seed in seed order (a seed logged twice
    counts once: its last row)."""
    by: dict[tuple, dict[int, dict]] = {}
    for r in rows:
        by.setdefault((r["dataset"], r["task"], r["start"], r["preset"]), {})[r["seed"]] = r
    return {k: [v[s] for s in sorted(v)] for k, v in by.items()}


def summary(rows: list[dict]) -> list[dict]:
    """One row per (dataset, task, protocol, method): per held-out time and mean W1/W2, mean ± std
    over seeds."""
    out = []
    for (dataset, task, start, preset), rs in _groups(rows).items():
        s = {
            "dataset": dataset,
            "task": task,
            "start": start,
            "preset": preset,
            "kind": rs[0]["kind"],
            "seeds": [r["seed"] for r in rs],
        }
        for m in ("w1", "w2"):
            s[m] = _common.mean_std([r[m] for r in rs])
            for j, pt in enumerate(rs[0]["per_time"]):
                s[f"{m}@{pt['index']}"] = _common.mean_std([r["per_time"][j][m] for r in rs])
        if rs[0]["kind"] == "model":
            s["iterations"] = _common.mean_std([r["iterations"] for r in rs])
        out.append(s)
    return out


def markdown(rows: list[dict], digits_for) -> str:
    lines = []
    by_task: dict[tuple, list[dict]] = {}
    for r in rows:
        by_task.setdefault((r["dataset"], r["task"], r["start"]), []).append(r)
    for (dataset, task, start), rs in by_task.items():
        d = digits_for(dataset)
        idx = [pt["index"] for pt in rs[0]["per_time"]]
        budget = next((r["budget"] for r in rs if r.get("budget")), None)
        lines.append(f"### {dataset} {task}, start {start}" + (f", {budget:g} s per run" if budget else ""))
        lines.append("")
        sets = sorted(
            {", ".join(f"{k}={v}" for k, v in sorted(r["overrides"].items())) for r in rs if r.get("overrides")}
        )
        if sets:
            lines += [f"Config overrides (--set): {'; '.join(sets)}.", ""]
        head = (
            ["method"]
            + [f"W1 @ {k}" for k in idx]
            + (["W1 mean"] if len(idx) > 1 else [])
            + ["W2 mean", "iterations", "seeds"]
        )
        lines += ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
        groups: dict[str, list[dict]] = {}
        for r in rs:
            groups.setdefault(r["preset"], []).append(r)
        order = sorted(groups, key=lambda p: (groups[p][0]["kind"] != "baseline", p))
        for p in order:
            g = groups[p]
            cells = [p if g[0]["kind"] == "model" else f"*{p}*"]
            cells += [_common.mean_pm([_w(r, "w1", j) for r in g], d) for j in range(len(idx))]
            if len(idx) > 1:
                cells.append(_common.mean_pm([_w(r, "w1") for r in g], d))
            cells.append(_common.mean_pm([_w(r, "w2") for r in g], d))
            cells.append(_common.mean_pm([r["iterations"] for r in g], 0) if g[0]["kind"] == "model" else "–")
            cells.append(str(len(g)))
            lines.append("| " + " | ".join(cells) + " |")
        for label, v, sd in PUBLISHED.get((dataset, start), []):
            lines.append(f"| {label}, published (mean of days 3, 4) | {v:.2f} ± {sd:.2f} |" + " |" * (len(head) - 2))
        if dataset == "cite" and start == "t0" and task in CITE_T0_TARGETS:
            lines.append(
                f"| target for scimf (OTP-FM, per day, easier protocol) | {CITE_T0_TARGETS[task]:.2f} |"
                + " |" * (len(head) - 2)
            )
        if any(pt.get("note") for r in rs for pt in r["per_time"]):
            lines += ["", "–: McCann is undefined past the last training time (no later time to interpolate to)."]
        lines.append("")
    return "\n".join(lines)


def overview(rows: list[dict], digits_for) -> str:
    """One line per (data, task, protocol): mean held-out W1 of the baselines, scimf, ito and the
    best preset (mean over seeds), and whether scimf / the best preset beat McCann at every
    held-out time and the previous time point everywhere."""
    keys = []
    for r in rows:
        k = (r["dataset"], r["task"], r["start"])
        if k not in keys:
            keys.append(k)
    head = [
        "data, task, start",
        "previous",
        "McCann",
        "floor",
        "scimf",
        "ito",
        "best preset",
        "scimf < McCann at every time",
        "best < McCann at every time",
        "scimf < previous at every time",
        "seeds",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for k in keys:
        rs = [r for r in rows if (r["dataset"], r["task"], r["start"]) == k]
        d = digits_for(k[0])

        def per_time(preset, rs=rs):  # NaN where undefined (McCann past the last training time)
            g = [r for r in rs if r["preset"] == preset]
            return np.mean([[_w(r, "w1", j) for j in range(len(r["per_time"]))] for r in g], 0) if g else None

        def mean(preset, d=d):
            v = per_time(preset)
            return "–" if v is None or np.isnan(v).any() else f"{v.mean():.{d}f}"

        models = sorted({r["preset"] for r in rs if r["kind"] == "model"})
        best = min(models, key=lambda p: per_time(p).mean()) if models else None

        def beats(p, baseline="mccann"):  # at the held-out times where the baseline is defined
            v, b = per_time(p), per_time(baseline)
            if v is None or b is None or np.isnan(b).all():
                return "–"
            ok = ~np.isnan(b)
            at = "" if ok.all() else f" (of the {ok.sum()} times it is defined at)"
            return ("yes" if (v[ok] < b[ok]).all() else f"no (at {sum(v[ok] >= b[ok])} of {ok.sum()})") + at

        seeds = len({r["seed"] for r in rs if r["kind"] == "model"})
        lines.append(
            f"| {k[0]} {k[1]}, {k[2]} | {mean('previous')} | {mean('mccann')} | {mean('floor')} | "
            f"{mean('scimf')} | {mean('ito')} | {best} {mean(best) if best else ''} | {beats('scimf')} | "
            f"{beats(best) if best else '–'} | {beats('scimf', 'previous')} | {seeds} |"
        )
    return "\n".join(lines) + "\n"


def cite_previous_mean(rows: list[dict]) -> dict[str, tuple[float, float]]:
    """Per method: mean over seeds of (day-3 W1 + day-4 W1) / 2 under the previous-day protocol
    (the published figures' definition)."""
    out = {}
    by: dict[str, dict[int, dict[str, float]]] = {}
    for r in rows:
        if r["dataset"] == "cite" and r["start"] == "previous":
            by.setdefault(r["preset"], {}).setdefault(r["seed"], {})[r["task"]] = r["w1"]
    for p, seeds in by.items():
        vals = [(v["loo:1"] + v["loo:2"]) / 2 for v in seeds.values() if "loo:1" in v and "loo:2" in v]
        if vals:
            out[p] = _common.mean_std(vals)
    return out


def curve_line(ax, curves: list[list[dict]], label: str, colour=None):
    """The mean over seeds of time-to-accuracy ``curves`` (``train_seconds``, ``w1`` points, cut to
    the shortest), with the seeds' range shaded; returns the line's colour."""
    n = min(len(c) for c in curves)
    xs = np.mean([[pt["train_seconds"] for pt in c[:n]] for c in curves], 0)
    ys = np.array([[pt["w1"] for pt in c[:n]] for c in curves])
    (line,) = ax.plot(xs, ys.mean(0), marker="o", ms=3, label=label, color=colour)
    if len(curves) > 1:
        ax.fill_between(xs, ys.min(0), ys.max(0), alpha=0.15, color=line.get_color())
    return line.get_color()


def baseline_lines(ax, rows: list[dict]) -> None:
    """Horizontal lines at the mean W1 of the previous / McCann / floor rows among ``rows`` (one task
    and protocol)."""
    for b, style in (("previous", ":"), ("mccann", "--"), ("floor", "-.")):
        vals = [r["w1"] for r in rows if r["kind"] == "baseline" and r["preset"] == b]
        if vals:
            ax.axhline(float(np.mean(vals)), ls=style, color="k", lw=1, label=b)


def figure(rows: list[dict], path: Path) -> Path | None:
    """Held-out W1 (t0 protocol) against seconds of training, per task; baselines as lines."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no figure")
        return None
    tasks = []
    for r in rows:
        key = (r["dataset"], r["task"])
        if r["start"] == "t0" and key not in tasks:
            tasks.append(key)
    if not tasks:
        return None
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False)
    colours = {}
    for ax, (dataset, task) in zip(axes[0], tasks):
        rs = [r for r in rows if r["dataset"] == dataset and r["task"] == task and r["start"] == "t0"]
        for p in sorted({r["preset"] for r in rs if r["kind"] == "model"}):
            curves = [r["curve"] for r in rs if r["preset"] == p and r.get("curve")]
            if not curves:
                continue
            colours[p] = curve_line(ax, curves, p, colours.get(p))
        baseline_lines(ax, rs)
    return save_panels(plt, fig, axes, [f"{d} {t}" for d, t in tasks], "seconds of training (1 thread)", path)


def save_panels(plt, fig, axes, titles: list[str], xlabel: str, path: Path) -> Path:
    """Title and label a row of held-out-W1 panels, put the legend on the first, save and close."""
    for ax, title in zip(axes[0], titles):
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("held-out W1 (from t0)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# -- no-regression gate ----------------------------------------------------------------------------
#: the reference figures ``--write-reference`` writes and every run is compared with (``--reference``)
REFERENCE = Path(__file__).resolve().parent / "reference" / "accuracy.json"
#: a model whose mean iterations differ from the reference's by more than this factor is not comparable
ITERATION_RATIO = 1.25
#: the tolerance is at least this fraction of the reference mean
TOL_FLOOR = 0.0025
#: the std both sides are given when each has one seed, as a fraction of the reference mean
SINGLE_SEED_STD = 0.01
RULE = (
    "tol = 2·√(s_ref²/n_ref + s_new²/n_new), s the sample std over seeds (a side with one seed borrows "
    "the other side's; both single: s = 1 % of the reference mean), at least 0.25 % of the reference mean; "
    "better: new < ref − tol, worse: new > ref + tol, else within (lower W1 is better)"
)


def _clock(row: dict) -> str:
    """The clock a row's budget counted; rows logged before ``train.time_clock`` counted wall seconds."""
    return row.get("time_clock", "wall")


#: what a model's figures depend on beyond preset, data and seed: rows that differ in one of these
#: from the reference are not comparable
SETTINGS = {
    # what fixed the amount of training: "budget" (seconds) or "iterations" (--match-iterations)
    "compute": lambda r: r.get("compute", "budget"),
    "budget": lambda r: r.get("budget"),
    "overrides": lambda r: r.get("overrides") or {},
    "training_method": lambda r: r.get("method", "simulation"),
    "clock": _clock,
}


def _stats(vals) -> dict:
    """One figure over seeds: ``values`` (seed order; ``None`` where undefined), ``mean``, sample
    ``std`` (``None`` with one seed), ``n``; ``mean`` is ``None`` if a value is undefined."""
    vals = [None if v is None or math.isnan(v) else float(v) for v in vals]
    m, s = _common.mean_std([math.nan if v is None else v for v in vals])
    return {"mean": None if math.isnan(m) else m, "std": None if math.isnan(s) else s, "n": len(vals), "values": vals}


def _settings(rs: list[dict]) -> dict:
    """:data:`SETTINGS` of a group's rows: the value they share, or the list of their values."""
    out = {}
    for key, get in SETTINGS.items():
        vals = []
        for r in rs:
            if get(r) not in vals:
                vals.append(get(r))
        out[key] = vals[0] if len(vals) == 1 else vals
    return out


def entries(rows: list[dict]) -> list[dict]:
    """Per (dataset, task, protocol ``start``, method): held-out W1 and W2 at every held-out time
    and their mean over held-out times (:func:`_stats` over seeds), the seeds, the git commits the
    rows name and, for models, :data:`SETTINGS`. The reference's entries, and this run's side of
    :func:`gate`."""
    out = []
    for (dataset, task, start, method), rs in _groups(rows).items():
        e = {
            "dataset": dataset,
            "task": task,
            "start": start,
            "method": method,
            "kind": rs[0]["kind"],
            "seeds": [r["seed"] for r in rs],
            "git_commits": sorted({r["git_commit"] for r in rs if r.get("git_commit")}),
        }
        if e["kind"] == "model":
            e.update(_settings(rs))
            e["iterations"] = float(np.mean([r["iterations"] for r in rs]))
            e["iterations_per_seed"] = [int(r["iterations"]) for r in rs]  # what --match-iterations trains
            # seconds of training steps per iteration on the rows' clock(s), and CPU seconds where logged
            for key, field in (
                ("seconds_per_iteration", "train_seconds"),
                ("cpu_seconds_per_iteration", "train_cpu_seconds"),
            ):
                secs = [r.get(field) for r in rs]
                e[key] = (
                    float(np.mean([t / max(r["iterations"], 1) for t, r in zip(secs, rs)]))
                    if None not in secs
                    else None
                )
        e["per_time"] = [
            {
                "index": pt["index"],
                "time": pt.get("time"),
                **{m: _stats([_w(r, m, j) for r in rs]) for m in ("w1", "w2")},
            }
            for j, pt in enumerate(rs[0]["per_time"])
        ]
        e["mean"] = {m: _stats([_w(r, m) for r in rs]) for m in ("w1", "w2")}
        out.append(e)
    return out


def _dirty(commits) -> list[str]:
    """The commits of ``commits`` that no checkout reproduces: uncommitted trees (``+dirty``) or unknown."""
    return sorted({c or "unknown" for c in commits if not c or c.endswith("+dirty")})


def _reproducible(entry: dict) -> bool:
    """Whether a checkout reproduces a reference entry: its rows name commits, none of them dirty."""
    return bool(entry["git_commits"]) and not _dirty(entry["git_commits"])


def write_reference(name: str, path: Path, *, update: bool = False, allow_dirty: bool = False) -> int:
    """Write the reference figures (:func:`entries`) of ``results/<name>.rows.jsonl`` (or of the rows
    in ``<name>.json``: :func:`_common.load_rows`) to ``path``, with the commits the rows name, the
    mfsde version, the date and the rows log's name. Each entry says whether it is ``reproducible``
    (every row it comes from names a commit without uncommitted changes); rows from an uncommitted
    tree are refused unless ``allow_dirty``. ``update``: replace only the entries these rows hold
    (the others, and their provenance, stay) and record the update in ``updates``."""
    rows, log = _common.load_rows(name)
    if not rows:
        print(f"no rows in {log}")
        return 2
    dirty = _dirty(r.get("git_commit") for r in rows)
    if dirty and not allow_dirty:
        print(
            f"error: rows of {log.name} come from code no commit holds ({', '.join(dirty)}): a reference must be "
            "reproducible; rerun them from a clean checkout (or --allow-dirty)"
        )
        return 2
    es = entries(rows)
    n_rows = len(es)  # the entries these rows make
    for e in es:
        e["reproducible"] = _reproducible(e)
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    commit = _common.env_info()["git_commit"]
    if update:
        try:
            old = load_reference(path)
        except ValueError as exc:
            print(f"error: {exc}")
            return 2
        if old is None:
            print(f"error: no reference at {path} to update (--write-reference without --update writes one)")
            return 2
        key = operator.itemgetter("dataset", "task", "start", "method")
        fresh = {key(e): e for e in es}
        kept = [fresh.pop(key(e), e) for e in old["entries"]]
        es = kept + list(fresh.values())
        for e in es:  # entries of references written before this was recorded
            e.setdefault("reproducible", _reproducible(e))
        replaced = n_rows - len(fresh)
        doc = {k: v for k, v in old.items() if k != "entries"}
        doc["git_commits"] = sorted({c for e in es for c in e["git_commits"]})
        doc["updates"] = [
            *old.get("updates", []),
            {"written": now, "at_commit": commit, "rows_log": log.name, "replaced": replaced, "added": len(fresh)},
        ]
        doc["entries"] = es
    else:
        doc = {
            "benchmark": "accuracy",
            "rows_log": log.name,
            "git_commits": sorted({r["git_commit"] for r in rows if r.get("git_commit")}),
            "written_at_commit": commit,
            "mfsde_version": mfsde.__version__,
            "written": now,
            "metric": "w1",
            "rule": RULE,
            "entries": es,
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    head = json.dumps({k: v for k, v in doc.items() if k != "entries"}, indent=1, ensure_ascii=False)
    body = ",\n".join("  " + json.dumps(e, ensure_ascii=False) for e in es)  # one entry a line: readable diffs
    path.write_text(head[:-2] + ',\n "entries": [\n' + body + "\n ]\n}\n")
    commits = ", ".join(sorted({r["git_commit"] for r in rows if r.get("git_commit")})) or "unknown"
    print(
        f"{'updated' if update else 'wrote'} {path}: {n_rows} (dataset, task, start, method) entries "
        f"from {log.name} (commits {commits}; mfsde {mfsde.__version__})"
    )
    return 0


def load_reference(path: Path) -> dict | None:
    """The reference at ``path``; ``None`` if there is none. Raises ``ValueError`` (one line) if it
    is not one."""
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
        raise ValueError(f"{path} is not a reference written by --write-reference (no 'entries')")
    return doc


def tolerance(ref: dict, new: dict) -> float:
    """The gate's tolerance between two :func:`_stats` (:data:`RULE`)."""
    s_ref, s_new = ref["std"], new["std"]
    if s_ref is None and s_new is None:  # one seed each
        s_ref = s_new = SINGLE_SEED_STD * abs(ref["mean"])
    elif s_ref is None:
        s_ref = s_new
    elif s_new is None:
        s_new = s_ref
    return max(2 * math.sqrt(s_ref**2 / ref["n"] + s_new**2 / new["n"]), TOL_FLOOR * abs(ref["mean"]))


def verdict(ref: dict, new: dict) -> tuple[str, float]:
    """``(better | within | worse, tol)`` of this run's W1 ``new`` against the reference's ``ref``
    (:func:`_stats` over seeds; :data:`RULE`)."""
    tol = tolerance(ref, new)
    if new["mean"] < ref["mean"] - tol:
        return "better", tol
    return ("worse" if new["mean"] > ref["mean"] + tol else "within"), tol


def _fmt_setting(v) -> str:
    """A setting as the reason for "not comparable" shows it (overrides as ``k=v, …``)."""
    if isinstance(v, dict):
        return ", ".join(f"{k}={x}" for k, x in sorted(v.items())) or "none"
    return f"{v:g}" if isinstance(v, float) else str(v)


def mismatch(ref: dict, new: dict, candidate: bool = False) -> str | None:
    """Why a model entry of this run is not comparable with the reference's (``"budget 120 vs 240"``:
    this run's value first), or ``None``. A run trained for the reference's iterations
    (``--match-iterations``) is comparable whatever its clock and budget when every seed it shares
    with the reference ran the reference's iteration count. With ``candidate`` (``--candidate``)
    this run's ``--set`` overrides are the change under test, compared with a reference entry that
    has none."""
    matched = new.get("compute") == "iterations"
    keys = [k for k in SETTINGS if not (matched and k in ("compute", "budget", "clock"))]
    if candidate and not ref.get("overrides"):
        keys.remove("overrides")

    def ref_value(k):  # references written before "compute" was recorded trained for a budget
        return ref.get(k, "budget" if k == "compute" else None)

    diffs = [
        f"{k.replace('_', ' ')} {_fmt_setting(new.get(k))} vs {_fmt_setting(ref_value(k))}"
        for k in keys
        if new.get(k) != ref_value(k)
    ]
    if matched:
        want = dict(zip(ref["seeds"], ref.get("iterations_per_seed") or []))
        off = [(s, n) for s, n in zip(new["seeds"], new.get("iterations_per_seed") or []) if want.get(s) != n]
        if off:
            diffs.append("iterations per seed " + ", ".join(f"seed {s}: {n} vs {want.get(s, 'none')}" for s, n in off))
        return "; ".join(diffs) or None
    a, b = ref.get("iterations"), new.get("iterations")
    if not diffs and a and b and not 1 / ITERATION_RATIO <= b / a <= ITERATION_RATIO:
        # equal seconds, other work: another machine, or CPU seconds inflated by load (see docs/training_methods.md)
        diffs.append(f"iterations {b:.0f} vs {a:.0f}: the budget bought other work (machine or load differ)")
    return "; ".join(diffs) or None


def gate(rows: list[dict], reference: dict, candidate: bool = False) -> dict:
    """Compare this run's rows with the reference, line by line: per (method, dataset, task,
    protocol) and held-out time, and the mean over held-out times where there are several, held-out
    W1 as mean ± std over seeds with a verdict (:func:`verdict`); ``not comparable`` where a model's
    :data:`SETTINGS` differ from the reference's (with the reason) or a value is undefined, ``new``
    / ``missing`` for a method only this run / only the reference has (a task, i.e. dataset, task
    and protocol, that this run has no row of at all is named once in ``not_in_run`` instead).
    ``summary``: verdict counts per data set. ``candidate``: this run's ``--set`` overrides are a
    proposed default, compared with the reference's plain presets (:func:`mismatch`); the
    overrides are recorded under ``candidate``."""
    ref = {(e["dataset"], e["task"], e["start"], e["method"]): e for e in reference["entries"]}
    new = {(e["dataset"], e["task"], e["start"], e["method"]): e for e in entries(rows)}
    ran = {k[:3] for k in new}
    tasks = list(dict.fromkeys(k[:3] for k in [*ref, *new]))
    keys = sorted(
        {*new, *(k for k in ref if k[:3] in ran)},
        key=lambda k: (tasks.index(k[:3]), (new.get(k) or ref[k])["kind"] != "baseline", k[3]),
    )
    lines = []
    for k in keys:
        r, n = ref.get(k), new.get(k)
        base = {"method": k[3], "kind": (n or r)["kind"], "dataset": k[0], "task": k[1], "start": k[2]}
        if r is None or n is None:
            lines.append(
                {
                    **base,
                    "time": "mean",
                    "reference": r and r["mean"]["w1"],
                    "new": n and n["mean"]["w1"],
                    "difference": None,
                    "tol": None,
                    "verdict": "new" if r is None else "missing",
                    "reason": None,
                }
            )
            continue
        why = mismatch(r, n, candidate) if n["kind"] == "model" else None
        rt, nt = ({pt["index"]: pt for pt in e["per_time"]} for e in (r, n))
        points = [(i, rt.get(i), nt.get(i)) for i in dict.fromkeys([*rt, *nt])]
        points = [
            (
                f"{i}" + (f" (t = {(a or b)['time']:g})" if (a or b).get("time") is not None else ""),
                a and a["w1"],
                b and b["w1"],
            )
            for i, a, b in points
        ]
        if len(points) > 1:
            points.append(("mean", r["mean"]["w1"], n["mean"]["w1"]))
        for label, a, b in points:
            line = {**base, "time": label, "reference": a, "new": b, "difference": None, "tol": None, "reason": None}
            if a is None or b is None:
                line["verdict"] = "new" if a is None else "missing"
            elif why or a["mean"] is None or b["mean"] is None:
                line["verdict"] = "not comparable"
                line["reason"] = why or "undefined: McCann past the last training time"
            else:
                line["verdict"], line["tol"] = verdict(a, b)
            if a and b and a["mean"] is not None and b["mean"] is not None:
                line["difference"] = b["mean"] - a["mean"]
            lines.append(line)
    speed = {}  # one line per fit (the protocols of a task share it): seconds per iteration, both sides
    for k in keys:
        r, n = ref.get(k), new.get(k)
        fit = (k[0], k[1], k[3])
        if r is None or n is None or n["kind"] != "model" or fit in speed:
            continue
        speed[fit] = {
            "method": k[3],
            "dataset": k[0],
            "task": k[1],
            **{
                side: {
                    "clock": e.get("clock"),
                    "seconds_per_iteration": e.get("seconds_per_iteration"),
                    "cpu_seconds_per_iteration": e.get("cpu_seconds_per_iteration"),
                    "iterations": e.get("iterations"),
                }
                for side, e in (("reference", r), ("new", n))
            },
        }
    counts: dict[str, dict[str, int]] = {}
    for line in lines:
        c = counts.setdefault(line["dataset"], {"better": 0, "within": 0, "worse": 0})
        c[line["verdict"]] = c.get(line["verdict"], 0) + 1
    return {
        "reference": {
            k: reference.get(k) for k in ("rows_log", "git_commits", "written_at_commit", "mfsde_version", "written")
        },
        "metric": "w1",
        "rule": RULE,
        "lines": lines,
        "summary": counts,
        "not_in_run": [f"{t[0]} {t[1]}, {t[2]}" for t in tasks if t not in ran],
        "speed": list(speed.values()),
        "candidate": sorted(
            {json.dumps(e.get("overrides") or {}, sort_keys=True) for e in new.values() if e["kind"] == "model"}
        )
        if candidate
        else None,
    }


def gate_markdown(g: dict, digits_for) -> str:
    """The gate as a markdown section: header (reference, rule), table, summary line."""
    ref = g["reference"]
    out = [
        f"### Against the reference (commit {', '.join(ref['git_commits'] or ['unknown'])}; "
        f"mfsde {ref['mfsde_version']}, written {ref['written']} from {ref['rows_log']})",
        "",
        f"Held-out W1, mean ± sample std over seeds (n); difference = this run − reference. {g['rule']}. "
        "Models whose budget, --set overrides, training method or clock differ from the reference's are "
        "not comparable (this run's value first).",
        "",
    ]
    if g.get("candidate"):
        out[-1:] = [
            "",
            f"Candidate default under test (--candidate): {'; '.join(g['candidate'])}, compared with the "
            "reference's presets as they were.",
            "",
        ]
    head = ["method", "data, task, start", "held-out time", "reference", "this run", "difference", "tol", "verdict"]
    out += ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for ln in g["lines"]:
        d = digits_for(ln["dataset"])

        def side(s, d=d):
            return "–" if s is None else f"{_common.mean_pm(s['values'], d)} ({s['n']})"

        diff = ln["difference"]
        rel = "" if diff is None or not ln["reference"]["mean"] else f" ({100 * diff / ln['reference']['mean']:+.1f} %)"
        cells = [
            ln["method"] if ln["kind"] == "model" else f"*{ln['method']}*",
            f"{ln['dataset']} {ln['task']}, {ln['start']}",
            ln["time"],
            side(ln["reference"]),
            side(ln["new"]),
            "–" if diff is None else f"{diff:+.{d + 1}f}{rel}",
            "–" if ln["tol"] is None else f"{ln['tol']:.{d + 1}f}",
            ln["verdict"] + (f" ({ln['reason']})" if ln["reason"] else ""),
        ]
        out.append("| " + " | ".join(cells) + " |")
    order = ("better", "within", "worse", "not comparable", "new", "missing")
    per = "; ".join(
        f"{ds}: " + ", ".join(f"{c.get(k, 0)} {k}" for k in order if c.get(k) or k in order[:3])
        for ds, c in g["summary"].items()
    )
    out += [
        "",
        f"**Summary** (lines): {per or 'nothing to compare'}."
        + (f" Not in this run: {'; '.join(g['not_in_run'])}." if g["not_in_run"] else ""),
        "",
    ]
    if g.get("speed"):
        out += [
            "Training speed, for information (no verdict: it depends on the machine and its load): seconds of "
            "training steps per iteration on each side's clock, and CPU seconds per iteration where logged.",
            "",
            "| method | data, task | reference s/it | this run s/it | reference CPU s/it | this run CPU s/it "
            "| iterations (reference, this run) |",
            "|---|---|---|---|---|---|---|",
        ]

        def f(v, clock=None):
            return "–" if v is None else f"{v:.3f}" + (f" ({clock})" if clock else "")

        for x in g["speed"]:
            a, b = x["reference"], x["new"]
            out.append(
                f"| {x['method']} | {x['dataset']} {x['task']} | {f(a['seconds_per_iteration'], a['clock'])} | "
                f"{f(b['seconds_per_iteration'], b['clock'])} | {f(a['cpu_seconds_per_iteration'])} | "
                f"{f(b['cpu_seconds_per_iteration'])} | {a['iterations'] or 0:.0f}, {b['iterations'] or 0:.0f} |"
            )
        out.append("")
    return "\n".join(out)


def render(
    name: str,
    settings: dict | None = None,
    reference: Path | None = None,
    *,
    only_gate: bool = False,
    fail_on_worse: bool = False,
    candidate: bool = False,
) -> int:
    """Write ``<name>.md/.json/.png`` from the rows and print the table; with a ``reference`` path,
    compare the rows with it (:func:`gate`: the section "Against the reference" of the table, key
    ``gate`` of the JSON). ``only_gate`` (``--compare``): print only that section, and fail (2) if
    there is no reference. Returns 0; 1 with ``fail_on_worse`` if a line is worse; 2 on no rows or
    no usable reference."""
    rows, log = _common.load_rows(name)
    if not rows:
        print(f"no rows in {log}")
        return 2

    def digits_for(ds):
        return 2 if ds == "cite" else 3

    try:
        ref = load_reference(reference) if reference is not None else None
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    if reference is not None and ref is None:
        print(f"no reference at {reference}: not compared (python benchmarks/accuracy.py --write-reference writes one)")
        if only_gate:
            return 2
    g = gate(rows, ref, candidate) if ref is not None else None
    md = "### Overview (held-out W1, mean over held-out times and seeds)\n\n" + overview(rows, digits_for) + "\n"
    md += markdown(rows, digits_for)
    cpm = cite_previous_mean(rows)
    if cpm:
        md += "\n### CITE 50-D, previous-day protocol, mean of the day-3 and day-4 folds (W1)\n\n"
        md += "| method | W1 |\n|---|---|\n"
        for p, (m, s) in sorted(cpm.items(), key=lambda kv: kv[1][0]):
            md += f"| {p} | {_common.pm(m, s, 2)} |\n"
        for label, v, sd in PUBLISHED[("cite", "previous")]:
            md += f"| {label}, published | {v:.2f} ± {sd:.2f} |\n"
    gmd = gate_markdown(g, digits_for) if g else ""
    md += ("\n" + gmd) if gmd else ""
    (_common.RESULTS_DIR / f"{name}.md").write_text(md)
    fig = figure(rows, _common.RESULTS_DIR / f"{name}.png")
    _common.write_json(
        name,
        {
            "settings": settings or {},
            "environment": _common.env_info(),
            "summary": summary(rows),
            "cite_previous_mean": cpm,
            "gate": g,
            "rows": rows,
        },
    )
    print(gmd if only_gate else md)
    print(f"wrote {name}.md, {name}.json" + (f", {fig.name}" if fig else ""))
    worse = g is not None and any(ln["verdict"] == "worse" for ln in g["lines"])
    return 1 if fail_on_worse and worse else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds of training steps per run (default: 60 on EMT/Bargaje, 240 on CITE)",
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--presets", nargs="+", default=PRESETS, help="presets on EMT and Bargaje")
    ap.add_argument(
        "--cite-presets",
        nargs="+",
        default=["scimf", "ito", "scimf_paper"],
        help="presets on CITE (each run costs --budget plus ~1.5 min of evaluation)",
    )
    ap.add_argument("--datasets", nargs="+", default=["emt", "bargaje", "cite"], choices=["emt", "bargaje", "cite"])
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    ap.add_argument(
        "--shard",
        type=_common.shard,
        default=(1, 1),
        help="K/N: run every N-th model run and every N-th baseline run, starting at the K-th",
    )
    ap.add_argument("--resume", action="store_true", help="skip runs already in results/<name>.rows.jsonl")
    ap.add_argument(
        "--tasks",
        nargs="+",
        type=parse_task,
        default=list(TASKS),
        metavar="DATA:TASK",
        help="tasks to run, e.g. emt:loo:1 bargaje:extrapolate:1 cite:loo:2 (default: "
        f"{' '.join(map(task_label, TASKS))}; also {' '.join(map(task_label, EXTRA_TASKS))})",
    )
    ap.add_argument("--name", default="accuracy")
    ap.add_argument("--render", action="store_true", help="only rewrite <name>.md/.json/.png from the rows")
    ap.add_argument(
        "--compare",
        action="store_true",
        help="only compare the rows with the reference: print the table, write it into "
        "<name>.md/.json (rewritten as by --render)",
    )
    ap.add_argument(
        "--no-baselines",
        action="store_true",
        help="run the presets only (the baselines do not depend on them: render with another rows log's "
        "baselines, e.g. by concatenating the logs)",
    )
    ap.add_argument(
        "--candidate",
        action="store_true",
        help="the --set overrides of the rows are a proposed default: the gate compares them with the "
        "reference's presets instead of calling them not comparable",
    )
    ap.add_argument(
        "--write-reference",
        action="store_true",
        help="write the reference figures from results/<name>.rows.jsonl to --reference",
    )
    ap.add_argument(
        "--update",
        action="store_true",
        help="with --write-reference: replace only the reference's entries that the rows hold, keep the others",
    )
    ap.add_argument(
        "--allow-dirty",
        action="store_true",
        help="with --write-reference: accept rows from uncommitted code (the entries say reproducible: false)",
    )
    ap.add_argument(
        "--reference",
        default=None,
        metavar="PATH",
        help="reference figures to compare with (default: benchmarks/reference/accuracy.json; 'none': no comparison)",
    )
    ap.add_argument("--fail-on-worse", action="store_true", help="exit 1 if a line of the comparison is worse")
    ap.add_argument(
        "--match-iterations",
        action="store_true",
        help="train every model run for the reference's iteration count of its data set, task, preset and "
        "seed, with no time limit (instead of --budget): the comparison then does not depend on the "
        "machine's speed; the seconds per iteration are reported beside it",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: EMT (loo:1, loo:2), scimf and ito, 10 s, 1 seed (written as accuracy_quick)",
    )
    _common.add_set_option(
        ap,
        "config overrides for every preset run, e.g. model.inter.qk_bias=true (parsed as by "
        "`mfsde fit --set`; recorded in each row)",
    )
    args = ap.parse_args(argv)
    overrides = _common.overrides(ap, args.overrides)
    reference = Path(args.reference) if args.reference else REFERENCE  # read at call time (tests patch REFERENCE)
    if args.reference is not None and args.reference.strip().lower() == "none":
        reference = None
    if (args.compare or args.write_reference) and reference is None:
        ap.error(f"--{'compare' if args.compare else 'write-reference'} needs a reference path, not --reference none")
    if (args.update or args.allow_dirty) and not args.write_reference:
        ap.error("--update and --allow-dirty go with --write-reference")
    if args.write_reference:
        rc = write_reference(args.name, reference, update=args.update, allow_dirty=args.allow_dirty)
        if rc or not args.compare:
            return rc
    if args.render or args.compare:
        return render(
            args.name,
            reference=reference,
            only_gate=args.compare and not args.render,
            fail_on_worse=args.fail_on_worse,
            candidate=args.candidate,
        )
    if args.match_iterations and (args.budget is not None or args.quick or reference is None):
        ap.error(
            "--match-iterations trains for the reference's iterations: it takes neither --budget nor --quick, "
            "and needs a reference (not --reference none)"
        )
    if args.quick:
        args.datasets, args.presets, args.seeds, args.budget = ["emt"], ["scimf", "ito"], [0], 10.0
        args.cite_presets = args.presets
        args.name = args.name if args.name != "accuracy" else "accuracy_quick"
    k, n = args.shard
    torch.set_num_threads(args.threads)
    log = _common.rows_log(args.name)
    snaps = {d: load(d) for d in args.datasets}
    for d, s in snaps.items():
        if s is None:
            print(f"skip {d}: data not found under {DATA}")
    planned = [j for j in plan(args) if snaps[j[0]] is not None]
    for d, p in sorted({(j[0], j[3]) for j in planned if j[3] != "baselines"}):  # fail now, not after hours
        try:
            mfsde.preset(p, dim=snaps[d].dim).override(**overrides)
        except (KeyError, ValueError, TypeError) as exc:
            ap.error(f"--set: preset {p!r} on {d}: {exc}")
    counts = {}  # --match-iterations: (dataset, task, preset, seed) -> the reference's iterations
    if args.match_iterations:
        try:
            ref_doc = load_reference(reference)
        except ValueError as exc:
            ap.error(f"--match-iterations: {exc}")
        if ref_doc is None:
            ap.error(f"--match-iterations: no reference at {reference}")
        for e in ref_doc["entries"]:
            if e["kind"] == "model":
                for s, it in zip(e["seeds"], e.get("iterations_per_seed") or []):
                    counts[(e["dataset"], e["task"], e["method"], s)] = it
        lacking = [
            f"{p} on {d} {t} seed {s}" for d, t, _, p, s in planned if p != "baselines" and (d, t, p, s) not in counts
        ]
        if lacking:
            ap.error(
                f"--match-iterations: the reference {reference} has no iteration count for "
                f"{'; '.join(lacking[:3])}{' …' if len(lacking) > 3 else ''} (references written before "
                "iterations were recorded per seed: rewrite it with --write-reference)"
            )
    old, out = _common.start_log(log, resume=args.resume, shard=(k, n))  # out: this shard's own file
    other = sorted(
        {json.dumps(r.get("overrides") or {}, sort_keys=True) for r in old if r["kind"] == "model"}
        - {json.dumps(overrides, sort_keys=True)}
    )
    mode = "iterations" if args.match_iterations else "budget"
    modes = sorted({r.get("compute", "budget") for r in old if r["kind"] == "model"} - {mode})
    if modes:  # nor runs trained for a budget with runs trained for the reference's iterations
        ap.error(
            f"--resume: {log.name} holds runs trained by {modes[0]}; this run trains by {mode} (--match-iterations)"
        )
    if other:  # resuming must not mix runs of different configs under one name
        ap.error(
            f"--resume: {log.name} holds runs with other --set overrides ({'; '.join(other)}); "
            f"this run has {json.dumps(overrides, sort_keys=True)}"
        )
    stale = sorted(
        {
            f"{r['preset']} on {r['dataset']}"
            for r in old
            if r["kind"] == "model"
            and snaps.get(r["dataset"]) is not None
            and _common.logged_train_settings(r)
            != _common.train_settings(
                mfsde.preset(r["preset"], dim=snaps[r["dataset"]].dim).override(**overrides).train
            )
        }
    )
    if (
        stale
    ):  # rows trained otherwise than today's preset (pairwise_mlp before its random groups, rbf before inter_lr 0.01)
        ap.error(
            f"--resume: {log.name} holds runs whose train.random_batch or train.inter_lr differs from today's preset "
            f"({'; '.join(stale)}); rerun them or start a new --name"
        )
    done = {(r["dataset"], r["task"], r["preset"] if r["kind"] == "model" else "baselines", r["seed"]) for r in old}
    # models and baselines are dealt to the shards separately, so every shard gets its share of runs
    models, bases = [j for j in planned if j[3] != "baselines"], [j for j in planned if j[3] == "baselines"]
    mine = _common.share(models, args.shard) + _common.share(bases, args.shard)
    jobs = [j for j in planned if j in mine and (j[0], j[1], j[3], j[4]) not in done]
    print(f"{len(jobs)} runs in shard {k}/{n}; rows → {out}", flush=True)
    t_all = time.perf_counter()
    commit = _common.env_info()["git_commit"]  # the code this process runs (imported at start)
    for dataset, task, starts, what, seed in jobs:
        budget = args.budget if args.budget is not None else (240.0 if dataset == "cite" else 60.0)
        t0 = time.perf_counter()
        if what == "baselines":
            rows = run_baselines(snaps[dataset], dataset, task, starts, seed)
        else:
            rows = run_model(
                snaps[dataset],
                dataset,
                task,
                starts,
                what,
                seed,
                argparse.Namespace(
                    budget=budget, overrides=overrides, iterations=counts.get((dataset, task, what, seed))
                ),
            )
        _common.append_rows(out, rows, **_common.run_fields(commit, args.threads))
        print(
            f"{dataset} {task} {what} seed {seed}: "
            + ", ".join(f"{r['start']} W1 {r['w1']:.4g}" for r in rows)
            + f" ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    print(f"shard {k}/{n} done in {(time.perf_counter() - t_all) / 60:.1f} min", flush=True)
    if n == 1:
        return render(args.name, vars(args), reference, fail_on_worse=args.fail_on_worse, candidate=args.candidate)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
