"""Held-out accuracy of every preset against the baselines, at one training-time budget per run.

Data (../shared/data; a data set that is absent is skipped with a message):

* EMT (10-D, 4 time points): tasks ``loo:1`` and ``loo:2``;
* Bargaje (4-D, 8 time points): ``interpolate:2,4,6``;
* CITE 50-D (days 2, 3, 4, 7): day 3 held out (``loo:1``, trained on days 2, 4, 7) and day 4
  held out (``loo:2``, trained on 2, 3, 7), each under both protocols: ``t0`` (scIMF's:
  simulate 2000 cells from day 2) and ``previous`` (the flow-matching literature's: simulate all
  cells of the previous training day).

Every run trains one preset with one seed for ``--budget`` seconds of training steps (the
evaluation along the way is not counted), so presets are compared at equal compute; the
time-to-accuracy curve (held-out W1 after 1/8, 2/8, … of the budget) is recorded too. Beside the
models, on the same cells and metric (exact W1, POT): copying the previous training time point,
McCann interpolation between the neighbouring training time points, the sampling floor
(:mod:`mfsde.baselines`), and published figures where they exist (CITE).

Every finished run is appended to ``results/<name>.rows.jsonl`` at once; ``--resume`` skips the
runs already there, and ``--shard K/N`` runs every N-th model run and every N-th baseline run
(start two shards on two cores). ``--set KEY=VALUE …`` overrides the presets' configs. The
table, JSON and figure are written from the rows (``--render`` alone rewrites them).

    python benchmarks/accuracy.py --shard 1/2 & python benchmarks/accuracy.py --shard 2/2; \\
        python benchmarks/accuracy.py --render
    python benchmarks/accuracy.py --quick      # a smoke run: EMT loo:1, 2 presets, 10 s
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import mfsde  # noqa: E402
from mfsde.baselines import baseline_evaluations  # noqa: E402
from mfsde.cli.inputs import CLIError, parse_overrides  # noqa: E402
from mfsde.evaluation import evaluate  # noqa: E402
from mfsde.training import fit  # noqa: E402

DATA = _common.REPO_ROOT.parent / "shared" / "data"
PRESETS = ["scimf", "ito", "symmetric_qk", "rbf", "pairwise_mlp", "scimf_paper"]
#: (dataset, task, protocols)
TASKS = [("emt", "loo:1", ("t0",)), ("emt", "loo:2", ("t0",)), ("bargaje", "interpolate:2,4,6", ("t0",)),
         ("cite", "loo:1", ("t0", "previous")), ("cite", "loo:2", ("t0", "previous"))]
#: published held-out W1 on CITE 50-D (previous-day protocol), mean of the day-3 and day-4 folds
PUBLISHED = {
    ("cite", "previous"): [("OT-MFM (Kapusniak et al. 2024)", 36.39, 1.89),
                           ("[SF]²M-Geo (Tong et al. 2024)", 38.52, 0.29),
                           ("OT-CFM (Tong et al. 2024)", 38.76, 0.40)],
}
#: the issue's targets for scimf on CITE, scIMF protocol (OTP-FM's per-day figures, easier protocol)
CITE_T0_TARGETS = {"loo:1": 38.07, "loo:2": 35.46}
CURVE_POINTS = 8


def load(name: str):
    from mfsde.data import load_csv, load_npy, load_npy_stack

    if name == "emt":
        path = DATA / "emt" / "emt.csv"
        return load_csv(path, time_col="samples", name="emt") if path.is_file() else None
    if name == "bargaje":
        path = DATA / "bargaje" / "Bifurcation.npy"
        # an object array (a pickle) published with the data set: trusted, so allow_pickle
        return load_npy_stack(path, name="bargaje", allow_pickle=True) if path.is_file() else None
    files = [DATA / "cite" / f"full_cite_pcas_50_day_{d}.npy" for d in (2, 3, 4, 7)]
    return load_npy(files, times=[2, 3, 4, 7], name="cite50") if all(f.is_file() for f in files) else None


def n_eval(start: str):
    """Simulated cells: 2000 from t0 (scIMF's protocol); all cells of the start day for the
    flow-matching protocol (as published)."""
    return 2000 if start == "t0" else None


def run_model(snaps, dataset: str, task: str, starts, preset: str, seed: int, args) -> list[dict]:
    overrides = args.overrides
    cfg = mfsde.preset(preset, dim=snaps.dim).override(**{
        **overrides, "train.seed": seed, "train.time_budget": args.budget, "train.iterations": 10**6})
    marks = [args.budget * (j + 1) / CURVE_POINTS for j in range(CURVE_POINTS - 1)]
    curve, spent = [], [0.0]
    wall = time.perf_counter()

    def cb(rec, model):  # time-to-accuracy: held-out W1 after each 1/8 of the budget
        spent[0] += rec["seconds"]  # training steps only: this evaluation is not counted
        if marks and spent[0] >= marks[0]:
            while marks and spent[0] >= marks[0]:
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
        rows.append({"dataset": dataset, "task": task, "start": start, "preset": preset, "kind": "model", "seed": seed,
                     "w1": ev["w1"], "w2": ev["w2"], "per_time": ev["per_time"], "iterations": res.iteration,
                     "train_seconds": res.train_seconds, "wall_seconds": time.perf_counter() - wall,
                     "final_fit": res.history[-1]["fit"], "final_energy": res.history[-1]["energy"],
                     "curve": curve if start == "t0" else None, "budget": args.budget, "overrides": overrides,
                     **_common.train_settings(cfg.train)})
    return rows


def run_baselines(snaps, dataset: str, task: str, starts, seed: int) -> list[dict]:
    rows = []
    for start in starts:
        for ev in baseline_evaluations(snaps, task, n_particles=n_eval(start), seed=seed):
            rows.append({"dataset": dataset, "task": task, "start": start, "preset": ev["preset"], "kind": "baseline",
                         "seed": seed, "w1": ev["w1"], "w2": ev["w2"], "per_time": ev["per_time"]})
    return rows


def plan(args) -> list[tuple]:
    """Seed-major, so that an interrupted benchmark has whole seeds (and ``--resume`` finishes it)."""
    jobs = []
    for seed in args.seeds:
        for dataset, task, starts in TASKS:
            if dataset not in args.datasets:
                continue
            jobs.append((dataset, task, starts, "baselines", seed))
            for preset in (args.cite_presets if dataset == "cite" else args.presets):
                jobs.append((dataset, task, starts, preset, seed))
    return jobs


# -- output ----------------------------------------------------------------------------------------
def _ms(vals) -> tuple[float, float]:
    vals = np.asarray(vals, dtype=float)
    return float(vals.mean()), (float(vals.std(ddof=1)) if len(vals) > 1 else float("nan"))


def _cell(vals, digits: int) -> str:
    if not len(vals):
        return "–"
    m, s = _ms(vals)
    return f"{m:.{digits}f}" + ("" if math.isnan(s) else f" ± {s:.{digits}f}")


def summary(rows: list[dict]) -> list[dict]:
    """One row per (dataset, task, protocol, method): per held-out time and mean W1/W2, mean ± std
    over seeds."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["task"], r["start"], r["preset"]), []).append(r)
    out = []
    for (dataset, task, start, preset), rs in groups.items():
        s = {"dataset": dataset, "task": task, "start": start, "preset": preset, "kind": rs[0]["kind"],
             "seeds": [r["seed"] for r in rs]}
        for m in ("w1", "w2"):
            s[m] = _ms([r[m] for r in rs])
            for j, pt in enumerate(rs[0]["per_time"]):
                s[f"{m}@{pt['index']}"] = _ms([r["per_time"][j][m] for r in rs])
        if rs[0]["kind"] == "model":
            s["iterations"] = _ms([r["iterations"] for r in rs])
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
        sets = sorted({", ".join(f"{k}={v}" for k, v in sorted(r["overrides"].items()))
                       for r in rs if r.get("overrides")})
        if sets:
            lines += [f"Config overrides (--set): {'; '.join(sets)}.", ""]
        head = ["method"] + [f"W1 @ {k}" for k in idx] + (["W1 mean"] if len(idx) > 1 else []) + ["W2 mean", "iterations", "seeds"]
        lines += ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
        groups: dict[str, list[dict]] = {}
        for r in rs:
            groups.setdefault(r["preset"], []).append(r)
        order = sorted(groups, key=lambda p: (groups[p][0]["kind"] != "baseline", p))
        for p in order:
            g = groups[p]
            cells = [p if g[0]["kind"] == "model" else f"*{p}*"]
            cells += [_cell([r["per_time"][j]["w1"] for r in g], d) for j in range(len(idx))]
            if len(idx) > 1:
                cells.append(_cell([r["w1"] for r in g], d))
            cells.append(_cell([r["w2"] for r in g], d))
            cells.append(_cell([r["iterations"] for r in g], 0) if g[0]["kind"] == "model" else "–")
            cells.append(str(len(g)))
            lines.append("| " + " | ".join(cells) + " |")
        for label, v, sd in PUBLISHED.get((dataset, start), []):
            lines.append(f"| {label}, published (mean of days 3, 4) | {v:.2f} ± {sd:.2f} |" + " |" * (len(head) - 2))
        if dataset == "cite" and start == "t0" and task in CITE_T0_TARGETS:
            lines.append(f"| target for scimf (OTP-FM, per day, easier protocol) | {CITE_T0_TARGETS[task]:.2f} |"
                         + " |" * (len(head) - 2))
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
    head = ["data, task, start", "previous", "McCann", "floor", "scimf", "ito", "best preset",
            "scimf < McCann at every time", "best < McCann at every time", "scimf < previous at every time", "seeds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for k in keys:
        rs = [r for r in rows if (r["dataset"], r["task"], r["start"]) == k]
        d = digits_for(k[0])

        def per_time(preset):
            g = [r for r in rs if r["preset"] == preset]
            return np.mean([[pt["w1"] for pt in r["per_time"]] for r in g], 0) if g else None

        def mean(preset):
            v = per_time(preset)
            return "–" if v is None else f"{v.mean():.{d}f}"

        models = sorted({r["preset"] for r in rs if r["kind"] == "model"})
        best = min(models, key=lambda p: per_time(p).mean()) if models else None
        def beats(p, baseline="mccann"):
            v, b = per_time(p), per_time(baseline)
            return "–" if v is None or b is None else ("yes" if (v < b).all() else
                                                      f"no (at {sum(v >= b)} of {len(v)})")
        seeds = len({r["seed"] for r in rs if r["kind"] == "model"})
        lines.append(f"| {k[0]} {k[1]}, {k[2]} | {mean('previous')} | {mean('mccann')} | {mean('floor')} | "
                     f"{mean('scimf')} | {mean('ito')} | {best} {mean(best) if best else ''} | {beats('scimf')} | "
                     f"{beats(best) if best else '–'} | {beats('scimf', 'previous')} | {seeds} |")
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
            out[p] = _ms(vals)
    return out


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
            n = min(len(c) for c in curves)
            xs = np.mean([[pt["train_seconds"] for pt in c[:n]] for c in curves], 0)
            ys = np.array([[pt["w1"] for pt in c[:n]] for c in curves])
            line, = ax.plot(xs, ys.mean(0), marker="o", ms=3, label=p, color=colours.get(p))
            colours[p] = line.get_color()
            if len(curves) > 1:
                ax.fill_between(xs, ys.min(0), ys.max(0), alpha=0.15, color=line.get_color())
        for b, style in (("previous", ":"), ("mccann", "--"), ("floor", "-.")):
            vals = [r["w1"] for r in rs if r["preset"] == b]
            if vals:
                ax.axhline(float(np.mean(vals)), ls=style, color="k", lw=1, label=b)
        ax.set_title(f"{dataset} {task}")
        ax.set_xlabel("seconds of training (1 thread)")
        ax.set_ylabel("held-out W1 (from t0)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def render(name: str, settings: dict | None = None) -> int:
    log = _common.RESULTS_DIR / f"{name}.rows.jsonl"
    if not log.is_file():
        print(f"no rows in {log}")
        return 2
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    digits_for = lambda ds: 2 if ds == "cite" else 3  # noqa: E731
    md = "### Overview (held-out W1, mean over held-out times and seeds)\n\n" + overview(rows, digits_for) + "\n"
    md += markdown(rows, digits_for)
    cpm = cite_previous_mean(rows)
    if cpm:
        md += "\n### CITE 50-D, previous-day protocol, mean of the day-3 and day-4 folds (W1)\n\n| method | W1 |\n|---|---|\n"
        for p, (m, s) in sorted(cpm.items(), key=lambda kv: kv[1][0]):
            md += f"| {p} | {m:.2f}" + ("" if math.isnan(s) else f" ± {s:.2f}") + " |\n"
        for label, v, sd in PUBLISHED[("cite", "previous")]:
            md += f"| {label}, published | {v:.2f} ± {sd:.2f} |\n"
    (_common.RESULTS_DIR / f"{name}.md").write_text(md)
    fig = figure(rows, _common.RESULTS_DIR / f"{name}.png")
    _common.write_json(name, {"settings": settings or {}, "environment": _common.env_info(),
                              "summary": summary(rows), "cite_previous_mean": cpm, "rows": rows})
    print(md)
    print(f"wrote {name}.md, {name}.json" + (f", {fig.name}" if fig else ""))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds of training steps per run (default: 60 on EMT/Bargaje, 240 on CITE)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--presets", nargs="+", default=PRESETS, help="presets on EMT and Bargaje")
    ap.add_argument("--cite-presets", nargs="+", default=["scimf", "ito", "scimf_paper"],
                    help="presets on CITE (each run costs --budget plus ~1.5 min of evaluation)")
    ap.add_argument("--datasets", nargs="+", default=["emt", "bargaje", "cite"], choices=["emt", "bargaje", "cite"])
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    ap.add_argument("--shard", default="1/1", help="K/N: run every N-th model run and every N-th baseline run, starting at the K-th")
    ap.add_argument("--resume", action="store_true", help="skip runs already in results/<name>.rows.jsonl")
    ap.add_argument("--name", default="accuracy")
    ap.add_argument("--render", action="store_true", help="only rewrite <name>.md/.json/.png from the rows")
    ap.add_argument("--quick", action="store_true", help="smoke run: EMT loo:1, scimf and ito, 10 s, 1 seed")
    ap.add_argument("--set", dest="overrides", nargs="+", default=[], metavar="KEY=VALUE",
                    help="config overrides for every preset run, e.g. model.inter.qk_bias=true (parsed as by "
                         "`mfsde fit --set`; recorded in each row)")
    args = ap.parse_args(argv)
    try:
        overrides = parse_overrides(args.overrides)
    except CLIError as exc:
        ap.error(str(exc))
    if args.render:
        return render(args.name)
    if args.quick:
        args.datasets, args.presets, args.seeds, args.budget = ["emt"], ["scimf", "ito"], [0], 10.0
        args.cite_presets = args.presets
        args.name = args.name if args.name != "accuracy" else "accuracy_quick"
    k, _, n = args.shard.partition("/")
    k, n = int(k), int(n or 1)
    if not 1 <= k <= n:
        ap.error(f"--shard must be K/N with 1 <= K <= N, got {args.shard!r}")
    torch.set_num_threads(args.threads)
    log = _common.RESULTS_DIR / f"{args.name}.rows.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
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
    old = _common.read_rows(log) if args.resume else []
    other = sorted({json.dumps(r.get("overrides") or {}, sort_keys=True) for r in old if r["kind"] == "model"}
                   - {json.dumps(overrides, sort_keys=True)})
    if other:  # resuming must not mix runs of different configs under one name
        ap.error(f"--resume: {log.name} holds runs with other --set overrides ({'; '.join(other)}); "
                 f"this run has {json.dumps(overrides, sort_keys=True)}")
    stale = sorted({f"{r['preset']} on {r['dataset']}" for r in old if r["kind"] == "model" and snaps.get(r["dataset"]) is not None
                    and _common.logged_train_settings(r) != _common.train_settings(
                        mfsde.preset(r["preset"], dim=snaps[r["dataset"]].dim).override(**overrides).train)})
    if stale:  # rows trained otherwise than today's preset (pairwise_mlp before its random groups, rbf before inter_lr 0.01)
        ap.error(f"--resume: {log.name} holds runs whose train.random_batch or train.inter_lr differs from today's preset "
                 f"({'; '.join(stale)}); rerun them or start a new --name")
    if not args.resume and k == 1:
        log.unlink(missing_ok=True)
    done = {(r["dataset"], r["task"], r["preset"] if r["kind"] == "model" else "baselines", r["seed"]) for r in old}
    # models and baselines are dealt to the shards separately, so every shard gets its share of runs
    models, bases = [j for j in planned if j[3] != "baselines"], [j for j in planned if j[3] == "baselines"]
    mine = models[k - 1::n] + bases[k - 1::n]
    jobs = [j for j in planned if j in mine and (j[0], j[1], j[3], j[4]) not in done]
    print(f"{len(jobs)} runs in shard {k}/{n}; rows → {log}", flush=True)
    t_all = time.perf_counter()
    commit = _common.env_info()["git_commit"]  # the code this process runs (imported at start)
    for dataset, task, starts, what, seed in jobs:
        budget = args.budget if args.budget is not None else (240.0 if dataset == "cite" else 60.0)
        t0 = time.perf_counter()
        if what == "baselines":
            rows = run_baselines(snaps[dataset], dataset, task, starts, seed)
        else:
            rows = run_model(snaps[dataset], dataset, task, starts, what, seed,
                             argparse.Namespace(budget=budget, overrides=overrides))
        env = {"loadavg_1": _common.env_info()["loadavg_1_5_15"][0], "threads": args.threads, "git_commit": commit}
        with open(log, "a") as fh:
            for r in rows:
                fh.write(json.dumps({**r, **env}) + "\n")
        print(f"{dataset} {task} {what} seed {seed}: " + ", ".join(f"{r['start']} W1 {r['w1']:.4g}" for r in rows)
              + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"shard {k}/{n} done in {(time.perf_counter() - t_all) / 60:.1f} min", flush=True)
    if n == 1:
        return render(args.name, vars(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
