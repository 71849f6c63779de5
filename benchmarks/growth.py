"""Growth and death: models with a mass channel against their mass-conserving versions.

Data (``../shared/data``; a data set that is absent is skipped with a message) and tasks:

* CytoBridge's simulated gene networks (``mfsde.datasets.interacting_grn``: ``attract``, ``LJ``,
  ``no_interact``; 2-D, t = 0..4, 400 cells growing to 770–970): each inner time held out in turn
  (``loo:2``, ``loo:1``, ``loo:3``), and CytoBridge's own protocol, fitted on every time and
  scored at t = 1..4 (``all``);
* Weinreb's LARRY haematopoiesis (2-D, days 2/4/6, 1,429 → 5,788 cells): the middle day held out;
* simulated branching systems with known rates (``branching_ou``, ``branching_morse``, fitted
  on every time): the recovered growth rate against the true one
  (:func:`mfsde.evaluation.growth_error`, relative L² on the observed populations; a balanced
  model's is 1 by definition).

Methods: ``ito``, ``scimf`` and ``radial`` (central pairwise forces, the form of CytoBridge's
interaction potential) as they are (mass conserved: fitted to the normalised snapshots) and with
the mass channel (``*_growth``: ``model.growth = "mlp"``, ``data.mass = "counts"``), each
trained by simulation or warm-started by flow matching (``*_fm``, or ``*_fm<N>`` for N
flow-matching iterations instead of 500: ``train.method = "flow_matching+simulation"``, the
balanced coupling's drift as the start of the simulation phase; CytoBridge too trains in two
stages, a pre-training, then its full loss). Every run gets ``--budget`` CPU seconds of training
steps (``train.time_clock = "cpu"``) and 1 thread. Scores, from 2,000 cells simulated from the
first time: W1 of the normalised laws (weighted by the particles' weights) and TMV, the relative
error of the predicted total mass, at every scored time; for held-out times the baselines on
the same cells and metric (previous: the earlier training time's cells and mass; McCann:
displacement interpolation and linearly interpolated mass; the sampling floor). CytoBridge's
published figures (attractive network, fitted on every time, paper Table 1) are shown beside
ours, with their protocol.

Rows go to ``results/<name>.rows.jsonl`` as they finish (``--resume`` skips those there,
``--shard K/N`` deals the runs to N processes); ``--render`` writes the table and JSON;
``--signal`` measures how far the interaction moves the gene networks' snapshots (W1 between each
interacting network and the control, beside the sampling floor).

    python benchmarks/growth.py --shard 1/2 & python benchmarks/growth.py --shard 2/2; \\
        python benchmarks/growth.py --render
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common
import numpy as np
import torch

import mfsde
from mfsde.evaluation import baseline_evaluations, growth_error

DATA = _common.REPO_ROOT.parent / "shared" / "data"
#: a method is ``<preset>[_growth][_fm[N]]``: the preset, with the mass channel, warm-started by N
#: flow-matching iterations (``train.fm_iterations``; 500, the default, without N)
METHODS = [
    "ito",
    "ito_growth",
    "scimf",
    "scimf_growth",
    "ito_fm",
    "ito_growth_fm",
    "scimf_growth_fm",
    "radial_growth_fm",
    "ito_growth_fm50",
    "scimf_growth_fm50",
    "radial_growth_fm50",
]


def method_spec(method: str) -> tuple[str, bool, str, int | None]:
    """``(preset, mass channel, train.method, train.fm_iterations)`` of a method name of
    :data:`METHODS` (``fm_iterations`` ``None``: the config's)."""
    preset, growth, fm, n = re.fullmatch(r"([a-z]+)(_growth)?(_fm(\d*))?", method).groups()
    training = "flow_matching+simulation" if fm else "simulation"
    return preset, growth is not None, training, int(n) if n else None


#: (data set, task)
TASKS = [
    *((f"grn_{net}", f"loo:{k}") for k in (2, 1, 3) for net in ("attract", "LJ", "no_interact")),
    ("grn_attract", "all"),
    ("grn_LJ", "all"),
    ("grn_no_interact", "all"),
    ("weinreb", "loo:1"),
    ("branching_ou", "all"),
    ("branching_morse", "all"),
]
#: CytoBridge (UMFSB, NeurIPS 2025) Table 1, attractive gene network, fitted on every time, t = 1..4
PUBLISHED = {
    ("grn_attract", "all"): [
        ("CytoBridge (published, 5 runs)", [0.015, 0.014, 0.018, 0.038], [0.013, 0.021, 0.043, 0.058]),
        ("DeepRUOT (as published by CytoBridge)", [0.044, 0.045, 0.053, 0.057], None),
    ]
}


def load(name: str):
    """``(Snapshots, truth)``: the data set and, for a simulated branching system, the system."""
    from mfsde import datasets, systems

    if name.startswith("branching_"):
        system = getattr(systems, name)()
        snaps, _ = systems.branching_snapshots(system, n0=400, seed=0)
        return snaps, system
    try:
        if name.startswith("grn_"):
            return datasets.interacting_grn(name[4:], data_dir=DATA, download=False), None
        return datasets.weinreb(data_dir=DATA, download=False), None
    except datasets.DatasetNotFound:
        return None, None


def config(method: str, dim: int, seed: int, budget: float, overrides: dict | None = None):
    """The run's config: the method's preset and training, ``--set`` overrides last."""
    base, grows, training, fm_iterations = method_spec(method)
    over = {
        "train.method": training,
        **({"train.fm_iterations": fm_iterations} if fm_iterations is not None else {}),
        "train.seed": seed,
        "train.time_budget": budget,
        "train.time_clock": "cpu",
        "train.iterations": 100_000,
        "train.checkpoint_every": None,
        "train.checkpoint_seconds": None,
    }
    if grows:
        over.update({"model.growth.name": "mlp", "data.mass": "counts"})
    over.update(overrides or {})
    return mfsde.preset(base, dim).override(**over)


def scored_times(snaps, task: str) -> list[int]:
    return list(range(1, snaps.n_times)) if task == "all" else [int(task.split(":")[1])]


def run_model(data: str, task: str, method: str, seed: int, budget: float, overrides: dict | None = None) -> dict:
    snaps, truth = load(data)
    cfg = config(method, snaps.dim, seed, budget, overrides)
    c0 = time.process_time()
    res = mfsde.fit(cfg, snaps, task, progress=False)
    cpu = time.process_time() - c0
    times = scored_times(snaps, task)
    ev = mfsde.evaluate(res.model, snaps, task, times=times, mass="counts", n_particles=2000, seed=seed)
    row = {
        "kind": "model",
        "data": data,
        "task": task,
        "method": method,
        "seed": seed,
        "budget": budget,
        "iterations": res.iteration,
        "train_cpu_seconds": res.train_cpu_seconds,
        "cpu_seconds": cpu,
        "w1": [r["w1"] for r in ev["per_time"]],
        "tmv": [r["tmv"] for r in ev["per_time"]],
        "mass": [r["mass"] for r in ev["per_time"]],
        "mass_observed": [r["mass_observed"] for r in ev["per_time"]],
        "times": times,
        **({"overrides": dict(overrides)} if overrides else {}),
    }
    if truth is not None:
        model = res.model.eval()

        def estimate(x):
            with torch.no_grad():
                return model.data_growth_rate(torch.as_tensor(x, dtype=torch.float32))

        g = growth_error(estimate, truth.growth_rate, [np.asarray(d) for d in snaps.data])
        row["growth_error"] = g["growth"]
    return row


def run_baselines(data: str, task: str, seed: int) -> list[dict]:
    snaps, _ = load(data)
    out = []
    for b in baseline_evaluations(snaps, task, mass="counts", n_particles=2000, seed=seed):
        out.append(
            {
                "kind": "baseline",
                "data": data,
                "task": task,
                "method": b["preset"],
                "seed": seed,
                "w1": [r["w1"] for r in b["per_time"]],
                "tmv": [r.get("tmv") for r in b["per_time"]],
                "times": [r["index"] for r in b["per_time"]],
            }
        )
    return out


def render(name: str) -> int:
    rows, _ = _common.load_rows(name)
    if not rows:
        print(f"no rows for {name}")
        return 1
    parts = [f"### Growth and death: held-out and fitted W1 and TMV ({name})\n"]
    budget = sorted({r["budget"] for r in rows if r["kind"] == "model"})
    commits = sorted({str(r.get("git_commit"))[:7] for r in rows})
    parts.append(
        f"CPU seconds of training per run: {', '.join(f'{b:g}' for b in budget)}; 1 thread; "
        f"commit(s) {', '.join(commits)}; W1 and TMV mean ± sample std over seeds.\n"
    )
    sets = sorted({json.dumps(r["overrides"], sort_keys=True) for r in rows if r.get("overrides")})
    if sets:
        parts.append(f"Config overrides of the models (--set): {'; '.join(sets)}.\n")
    summary = {}
    for data, task in TASKS:
        sub = [r for r in rows if r["data"] == data and r["task"] == task]
        if not sub:
            continue
        times = sub[0]["times"]
        heads = ["method"] + [f"W1 @ {t}" for t in times] + [f"TMV @ {t}" for t in times]
        heads += ["W1 mean", "TMV mean", "growth error", "iterations", "seeds"]
        table = []
        methods = [m for m in ("previous", "mccann", "floor") if any(r["method"] == m for r in sub)]
        methods += [m for m in METHODS if any(r["method"] == m for r in sub)]
        for m in methods:
            rs = [r for r in sub if r["method"] == m]
            label = f"*{m}*" if rs[0]["kind"] == "baseline" else m
            w1 = [_common.mean_pm([r["w1"][i] for r in rs]) for i in range(len(times))]
            tmv = [_common.mean_pm([r["tmv"][i] for r in rs]) for i in range(len(times))]
            w1_mean = [float(np.mean(r["w1"])) for r in rs]
            tmv_mean = [float(np.mean(r["tmv"])) if all(v is not None for v in r["tmv"]) else None for r in rs]
            ge = [r.get("growth_error") for r in rs]
            its = [r.get("iterations") for r in rs]
            table.append(
                [label, *w1, *tmv, _common.mean_pm(w1_mean), _common.mean_pm(tmv_mean)]
                + [_common.mean_pm(ge) if any(g is not None for g in ge) else "–"]
                + [f"{int(np.mean(its))}" if its[0] is not None else "–", str(len(rs))]
            )
            summary[f"{data} {task} {m}"] = {
                "w1": _common.mean_std(w1_mean),
                "tmv": _common.mean_std(tmv_mean) if None not in tmv_mean else None,
                "growth_error": _common.mean_std(ge) if None not in ge else None,
                "seeds": [r["seed"] for r in rs],
            }
        for label, w1p, tmvp in PUBLISHED.get((data, task), []):
            table.append(
                [f"{label}", *[f"{v:.3f}" for v in w1p]] + [f"{v:.3f}" for v in tmvp]
                if tmvp
                else [f"{label}", *[f"{v:.3f}" for v in w1p], *["–"] * len(times)]
            )
            table[-1] += [f"{np.mean(w1p):.3f}", f"{np.mean(tmvp):.3f}" if tmvp else "–", "–", "–", "–"]
        what = "fitted on every time, scored at the training times" if task == "all" else f"held out: {task}"
        parts.append(f"#### {data}, {what}\n\n" + _common.markdown_table(heads, table) + "\n")
    versus, versus_summary = interaction_verdicts(rows)
    if versus:
        parts.append(versus)
        summary["interaction_vs_ito"] = versus_summary
    note = (
        "Baselines in italics (previous: the earlier training time's cells and mass; McCann: displacement "
        "interpolation and linearly interpolated mass; floor: two halves of the observed cells). A model "
        "without a mass channel keeps the mass of its start. Growth error: relative L² of the learned growth "
        "rate on the observed populations (1 for a model without growth). Published rows are other "
        "papers' figures under their protocol (CytoBridge: fitted on every time, 5 runs), not rerun here."
    )
    parts.append(note + "\n")
    text = "\n".join(parts)
    (_common.RESULTS_DIR / f"{name}.md").write_text(text)
    _common.write_json(name, {"summary": summary, "rows": rows})
    print(text)
    return 0


def interaction_verdicts(rows: list[dict]) -> tuple[str, list[dict]]:
    """Each interaction method against ``ito`` with the same mass channel and training
    (``scimf_growth`` against ``ito_growth``, …) on the gene networks: W1 (mean over the scored
    times, per seed) compared by the accuracy gate's rule (:func:`accuracy.verdict`, ``ito`` as
    the reference). ``("", [])`` where no pair ran."""
    import accuracy

    out, table = [], []
    for data, task in TASKS:
        if not data.startswith("grn_"):
            continue
        sub = [r for r in rows if r["kind"] == "model" and r["data"] == data and r["task"] == task]
        for m in METHODS:
            preset, *_ = method_spec(m)
            ref_name = "ito" + m[len(preset) :]
            new = [r for r in sub if r["method"] == m]
            ref = [r for r in sub if r["method"] == ref_name]
            if preset == "ito" or not new or not ref:
                continue
            s_new = accuracy._stats([float(np.mean(r["w1"])) for r in sorted(new, key=lambda r: r["seed"])])
            s_ref = accuracy._stats([float(np.mean(r["w1"])) for r in sorted(ref, key=lambda r: r["seed"])])
            word, tol = accuracy.verdict(s_ref, s_new)
            out.append(
                {
                    "data": data,
                    "task": task,
                    "method": m,
                    "reference": ref_name,
                    "verdict": word,
                    "tol": tol,
                    "w1": [s_new["mean"], s_new["std"]],
                    "w1_reference": [s_ref["mean"], s_ref["std"]],
                }
            )
            table.append(
                [
                    data,
                    task,
                    m,
                    ref_name,
                    _common.pm(s_ref["mean"], s_ref["std"]),
                    _common.pm(s_new["mean"], s_new["std"]),
                    f"{s_new['mean'] - s_ref['mean']:+.3f}",
                    f"{tol:.3f}",
                    word,
                ]
            )
    if not table:
        return "", []
    heads = ["data", "task", "method", "against", "W1 against", "W1 method", "difference", "tol", "verdict"]
    text = (
        "#### Interaction against none\n\nW1 (mean over the scored times, mean ± std over seeds) of each interaction "
        "model against `ito` with the same mass channel and training, by the accuracy gate's rule "
        f"({accuracy.RULE}). On the interacting networks an interaction model should be better; on the control "
        "(`grn_no_interact`) within.\n\n" + _common.markdown_table(heads, table) + "\n"
    )
    return text, out


def signal(seeds) -> int:
    """How far the interaction moves the gene networks' snapshots: W1 between each interacting
    network and the control (``grn_no_interact``, same start) at every time, beside the sampling
    floor of each (two random halves of its cells, mean ± std over ``seeds``). Where the first is
    at the second's level, no score can tell an interacting model from one without interaction.
    Writes ``results/growth_signal.{md,json}``."""
    from mfsde.losses import w1

    nets = {k: load(f"grn_{k}")[0] for k in ("attract", "LJ", "no_interact")}
    if any(v is None for v in nets.values()):
        print(f"skip --signal: the gene networks are not under {DATA}")
        return 0
    cells = {k: [np.asarray(x, dtype=np.float64) for x in v.data] for k, v in nets.items()}

    def floor(x, seed):
        p = np.random.default_rng(seed).permutation(len(x))
        return w1(x[p[: len(x) // 2]], x[p[len(x) // 2 :]])

    rows, table = [], []
    times = list(nets["no_interact"].times)
    for k, t in enumerate(times):
        row = {"time": float(t), "cells": {n: len(c[k]) for n, c in cells.items()}}
        for n in ("attract", "LJ"):
            row[f"w1_{n}_vs_control"] = float(w1(cells[n][k], cells["no_interact"][k]))
        for n in cells:
            row[f"floor_{n}"] = _common.mean_std([float(floor(cells[n][k], s)) for s in seeds])
        rows.append(row)
        table.append(
            [
                f"{t:g}",
                f"{row['w1_attract_vs_control']:.3f}",
                f"{row['w1_LJ_vs_control']:.3f}",
                *(_common.pm(*row[f"floor_{n}"]) for n in ("attract", "LJ", "no_interact")),
            ]
        )
    md = (
        "W1 between each interacting gene network and the control (no interaction, same start), and the sampling "
        f"floor of each (two random halves of its cells; mean ± std over seeds {', '.join(map(str, seeds))}).\n\n"
        + _common.markdown_table(
            ["t", "attract vs control", "LJ vs control", "floor attract", "floor LJ", "floor control"], table
        )
    )
    print(md)
    (_common.RESULTS_DIR / "growth_signal.md").write_text(md + "\n")
    _common.write_json("growth_signal", {"seeds": list(seeds), "rows": rows})
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--data", nargs="+", default=None, help="data sets (default: all of TASKS)")
    ap.add_argument(
        "--tasks",
        nargs="+",
        default=None,
        choices=sorted({t for _, t in TASKS}),
        help="tasks (default: every task of the data sets)",
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--budget", type=float, default=90.0, help="CPU seconds of training per run")
    ap.add_argument("--shard", type=_common.shard, default=(1, 1), help="K/N: every N-th run, starting at the K-th")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--render", action="store_true")
    ap.add_argument(
        "--signal",
        action="store_true",
        help="W1 between each interacting gene network and the control, beside the sampling floor: "
        "results/growth_signal.{md,json}",
    )
    ap.add_argument("--name", default="growth")
    _common.add_set_option(
        ap,
        "config overrides for every model run, e.g. train.starts=every (parsed as by `mfsde fit --set`; "
        "recorded in each row)",
    )
    args = ap.parse_args(argv)
    overrides = _common.overrides(ap, args.overrides)
    if args.render:
        return render(args.name)
    if args.signal:
        return signal(args.seeds)
    torch.set_num_threads(1)
    commit = _common.env_info().get("git_commit")
    tasks = [
        t for t in TASKS if (args.data is None or t[0] in args.data) and (args.tasks is None or t[1] in args.tasks)
    ]
    if not tasks:
        known = ", ".join(f"{d} {t}" for d, t in TASKS)
        ap.error(f"--data and --tasks select none of the tasks ({known})")
    present = []
    for data, task in tasks:
        if load(data)[0] is None:
            print(f"skip {data}: data not found under {DATA}")
        else:
            present.append((data, task))
    jobs = [("baseline", d, t, None, s) for d, t in present if t != "all" for s in args.seeds]
    jobs += [("model", d, t, m, s) for s in args.seeds for d, t in present for m in args.methods]
    jobs = _common.share(jobs, args.shard)
    log = _common.rows_log(args.name)
    done, log = _common.start_log(log, resume=args.resume, shard=args.shard)
    seen = {(r["kind"], r["data"], r["task"], r["method"] if r["kind"] == "model" else None, r["seed"]) for r in done}
    print(f"{len(jobs)} runs in shard {args.shard[0]}/{args.shard[1]}; rows → {log}")
    for kind, data, task, method, seed in jobs:
        if (kind, data, task, method, seed) in seen:
            continue
        t0 = time.perf_counter()
        rows = (
            run_baselines(data, task, seed)
            if kind == "baseline"
            else [run_model(data, task, method, seed, args.budget, overrides)]
        )
        _common.append_rows(log, rows, **_common.run_fields(commit, threads=1))
        for r in rows:
            tmv = [v for v in r["tmv"] if v is not None]
            extra = f", growth error {r['growth_error']:.3f}" if "growth_error" in r else ""
            print(
                f"{data} {task} {r['method']} seed {seed}: W1 {np.mean(r['w1']):.4f}"
                + (f", TMV {np.mean(tmv):.3f}" if tmv else "")
                + extra
                + (f", {r['iterations']} it" if "iterations" in r else "")
                + f" ({time.perf_counter() - t0:.0f} s)"
            )
    if args.shard[1] == 1:
        return render(args.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
