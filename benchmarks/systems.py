"""Particle systems with known physics: every preset × system × seed, held-out W1/W2 and
drift / interaction recovery (mfsde.evaluation); plus the interacting-GRN CSV files.

Simulated systems (``mfsde.systems.SYSTEMS``: each family and, where registered, its
non-interacting control): 300 fresh cells at each of 6 times 0, 0.8, …, 4.0; one training run
per (preset, system, seed) holds out index 2 (t = 1.6, interpolation) and index 5 (t = 4.0,
extrapolation) and is evaluated at both. Reported: exact W1/W2 at the held-out times (1000
simulated vs 300 observed cells), the relative drift error E‖f̂ − f‖² / E‖f‖² on fresh true
populations at all 6 times and the gauge-fixed interaction error E‖Δf̂ − Δf‖² / E‖Δf‖² (Δf: change
of a probe's drift between populations of consecutive times; NaN on controls, where
``inter_scaled`` = E‖Δf̂ − Δf‖² / E‖f‖² shows a spurious interaction instead). A ``truth`` row
(the true system simulated from the observed t₀ cells) gives the sampling floor of W1/W2. The
seed drives both the data set and the training.

Interacting GRN (``../shared/data/interacting_grn``: ``simulation_attract``, ``simulation_LJ``,
``simulation_no_interact``; 5 time indices, 2-D): hold out index 2, W1/W2 only (the generating
drift is not available). Cell numbers grow over time there (400 → ~800), so a mass-conserving
model sees normalised distributions.

    python benchmarks/systems.py --quick          # smoke run + timing probe
    python benchmarks/systems.py                  # full run (~45 min on 2 idle cores; estimate printed at start)

Writes ``benchmarks/results/systems.json`` and ``systems.md`` (``--quick``: ``systems_quick.*``).
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

from mfsde.evaluation import BASELINES

PRESETS = ["scimf", "ito", "symmetric_qk", "rbf", "pairwise_mlp"]
#: data-only baselines on the same held-out cells: copy of the previous training time, McCann
#: interpolation on the exact OT plan between the neighbouring ones, the sampling floor
REFERENCES = BASELINES
# families in reading order, each followed by its registered non-interacting control
SYSTEM_ORDER = ["ou", "ou_control", "morse", "morse_control", "cucker_smale", "kuramoto", "opinion"]
TIMES = (0.0, 0.8, 1.6, 2.4, 3.2, 4.0)
TASK = "heldout:2,5"
GRN_DIR = _common.REPO_ROOT.parent / "shared" / "data" / "interacting_grn"
GRN_FILES = {
    "grn_attract": "simulation_attract.csv",
    "grn_LJ": "simulation_LJ.csv",
    "grn_no_interact": "simulation_no_interact.csv",
}
GRN_TASK = "heldout:2"
# fallback seconds per training iteration and solver step (128 particles, 1 thread, idle core);
# the run measures its own at start (`calibrate`) unless --no-calibrate
SEC_PER_STEP = {"scimf": 0.0085, "ito": 0.0056, "symmetric_qk": 0.0085, "rbf": 0.0070, "pairwise_mlp": 0.0280}
# evaluation seconds per run (500 simulated particles) and per task (data, true populations, truth row)
SEC_EVAL = {"scimf": 2.0, "ito": 1.0, "symmetric_qk": 2.0, "rbf": 1.5, "pairwise_mlp": 8.0}
SEC_TASK = {"system": 20.0, "grn": 1.0}
TRUTH_DT = 0.02  # solver step of the true simulations used for evaluation (data: 0.01)


# -- one task: a (data set, seed) pair, every preset --------------------------------------------------
def _overrides(args) -> dict:
    return {
        "train.iterations": args.iterations,
        "train.n_particles": args.particles,
        "train.n_targets": None,
        "train.lr_step": max(1, args.iterations // 10),
        "train.log_every": max(1, args.iterations),
    }


def _dataset(kind: str, name: str, seed: int, args):
    from mfsde.data import load_csv
    from mfsde.systems import get_system, snapshots

    if kind == "grn":
        return None, load_csv(GRN_DIR / GRN_FILES[name], time_col="samples", name=name), GRN_TASK
    system = get_system(name)
    return system, snapshots(system, TIMES, n_per_time=args.cells, seed=seed), TASK


def _row(name, kind, preset, seed, ev_or_rep, seconds, train_seconds) -> dict:
    row = {
        "system": name,
        "kind": kind,
        "preset": preset,
        "seed": seed,
        "train_seconds": train_seconds,
        "seconds": seconds,
    }
    for r in ev_or_rep["per_time"]:
        row[f"w1@{r['index']}"], row[f"w2@{r['index']}"] = r["w1"], r["w2"]
    row["w1"], row["w2"] = ev_or_rep["w1"], ev_or_rep["w2"]
    for k in ("drift", "inter", "inter_scaled", "inter_raw"):
        if k in ev_or_rep:
            row[k] = ev_or_rep[k]
    return row


def run_task(kind: str, name: str, seed: int, args, presets: list[str], references: list[str]) -> list[dict]:
    """Fit each of ``presets`` on one data set with one seed; evaluate; one row per preset, and one per
    reference in ``references`` (baselines of :data:`REFERENCES` on the same held-out cells,
    ``"truth"`` where the system is known)."""
    import torch

    from mfsde import evaluate, fit
    from mfsde.config import preset
    from mfsde.evaluation import SystemModel, baseline_evaluations, recovery_report

    torch.set_num_threads(args.threads)
    system, snaps, task = _dataset(kind, name, seed, args)
    cache, rows = {}, []
    rec = dict(
        n_particles=args.recovery_particles, eval_particles=args.eval_particles, seed=seed, dt=TRUTH_DT, cache=cache
    )
    names = [r for r in references if r in REFERENCES]
    if names:
        t0 = time.perf_counter()
        for ev in baseline_evaluations(snaps, task, n_particles=args.eval_particles, seed=seed, names=names):
            rows.append(_row(name, kind, ev["preset"], seed, ev, time.perf_counter() - t0, 0.0))
    if system is not None and "truth" in references:
        t0 = time.perf_counter()
        true_model = SystemModel(system, dt=TRUTH_DT)
        rows.append(
            _row(
                name,
                kind,
                "truth",
                seed,
                recovery_report(true_model, system, snaps, task, **rec),
                time.perf_counter() - t0,
                0.0,
            )
        )
    for p in presets:
        t0 = time.perf_counter()
        try:
            cfg = preset(p, dim=snaps.dim).override(**_overrides(args), **{"train.seed": seed})
            res = fit(cfg, snaps, task, progress=False)
            if system is not None:
                out = recovery_report(res.model, system, snaps, task, **rec)
            else:
                out = evaluate(res.model, snaps, task, n_particles=args.eval_particles, seed=seed)
        except Exception as err:
            rows.append(
                {
                    "system": name,
                    "kind": kind,
                    "preset": p,
                    "seed": seed,
                    "error": f"{type(err).__name__}: {err}",
                    "seconds": time.perf_counter() - t0,
                }
            )
            print(f"  {name:>16} {p:>13} seed {seed}: FAILED {type(err).__name__}: {err}", flush=True)
            continue
        rows.append(
            _row(name, kind, p, seed, out, time.perf_counter() - t0, res.elapsed)
            | {"iterations": cfg.train.iterations, **_common.train_settings(cfg.train)}
        )
        print(
            f"  {name:>16} {p:>13} seed {seed}: W1 {out['w1']:.3f}  drift {out.get('drift', float('nan')):.3f}  "
            f"inter {out.get('inter', float('nan')):.3f}  ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    return rows


def resume_stale(rows: list[dict], args) -> list[str]:
    """Logged runs trained otherwise than today's preset (``_common.PRESET_TRAIN_KEYS``) or
    ``--iterations`` (not checked in rows from before it was logged), e.g. ``rbf`` before its own
    step size."""
    from mfsde.config import preset

    out = set()
    for r in rows:
        if r["preset"] in PRESETS and "error" not in r:
            t = preset(r["preset"], dim=2).override(**_overrides(args)).train
            if (
                _common.logged_train_settings(r) != _common.train_settings(t)
                or r.get("iterations", t.iterations) != t.iterations
            ):
                out.add(f"{r['preset']} on {r['system']}")
    return sorted(out)


# -- planning --------------------------------------------------------------------------------------------
def _train_steps(kind: str) -> int:
    """Solver steps per training iteration (dt = 0.1 up to the last training time)."""
    return 40 if kind == "grn" else round(TIMES[4] / 0.1)


def calibrate(presets, args, repeats: int = 3) -> dict[str, float]:
    """Seconds per training iteration and solver step of each preset, measured now (median of
    ``repeats`` iterations after one warm-up) on the Morse data with this run's settings."""
    import statistics

    import torch

    from mfsde.config import preset
    from mfsde.training import Trainer

    torch.set_num_threads(args.threads)
    _, snaps, task = _dataset("system", "morse", 0, args)
    out = {}
    for p in presets:
        trainer = Trainer(preset(p, dim=snaps.dim).override(**_overrides(args)), snaps, task)
        trainer.step()
        secs = [trainer.step()["seconds"] for _ in range(repeats)]
        out[p] = statistics.median(secs) / _train_steps("system")
    return out


def estimate_seconds(todo: dict, args, per_step: dict[str, float]) -> float:
    """Wall-clock estimate of ``todo`` (task → (presets, truth); training from ``per_step``, evaluation
    from :data:`SEC_EVAL`), with the tasks spread over ``--jobs`` workers."""
    total = 0.0
    for (kind, _name, _seed), (presets, _refs) in todo.items():
        total += SEC_TASK[kind]
        for p in presets:
            total += args.iterations * _train_steps(kind) * per_step[p] + SEC_EVAL[p] * args.eval_particles / 500
    return total / max(1, min(args.jobs, len(todo)))


def plan(args) -> list[tuple[str, str, int]]:
    from mfsde.systems import SYSTEMS

    unknown = [s for s in args.systems if s not in SYSTEMS.names() and s not in GRN_FILES]
    if unknown:
        raise SystemExit(f"unknown system(s) {unknown}; available: {SYSTEMS.names() + list(GRN_FILES)}")
    tasks = [("system", s, seed) for s in args.systems if s not in GRN_FILES for seed in args.seeds]
    grn = [s for s in args.systems if s in GRN_FILES]
    if grn and not GRN_DIR.is_dir():
        print(f"skip the interacting-GRN data: {GRN_DIR} not found")
    elif grn:
        tasks += [("grn", s, seed) for s in grn for seed in args.seeds]
    return tasks


# -- tables ----------------------------------------------------------------------------------------------
METRICS = ["w1@2", "w1@5", "w2@2", "w2@5", "drift", "inter", "inter_scaled"]


def summary_rows(rows: list[dict]) -> list[dict]:
    """Mean ± std over seeds per (system, preset), systems in reading order, truth first, baselines last."""
    order = {s: i for i, s in enumerate(SYSTEM_ORDER + list(GRN_FILES))}
    porder = {p: i for i, p in enumerate(["truth"] + PRESETS + list(REFERENCES))}
    keys = sorted({(r["system"], r["preset"]) for r in rows}, key=lambda k: (order.get(k[0], 99), porder.get(k[1], 99)))
    out = []
    for s, p in keys:
        rs = [r for r in rows if r["system"] == s and r["preset"] == p]
        out.append(
            {
                "system": s,
                "preset": p,
                "n_seeds": len(rs),
                **{m: _common.mean_pm([r.get(m) for r in rs], drop_undefined=True) for m in METRICS},
                **{f"{m}_values": [r.get(m) for r in rs] for m in METRICS},
            }
        )
    return out


def markdown(summary: list[dict]) -> str:
    head = [
        "system",
        "preset",
        "seeds",
        "W1 interp (i2)",
        "W1 extrap (i5)",
        "W2 interp",
        "W2 extrap",
        "drift err",
        "inter err",
        "inter_scaled",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    last = None
    for r in summary:
        name = r["system"] if r["system"] != last else ""
        last = r["system"]
        lines.append("| " + " | ".join([name, r["preset"], str(r["n_seeds"])] + [r[m] for m in METRICS]) + " |")
    return "\n".join(lines) + "\n"


# -- main --------------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    from mfsde.systems import SYSTEMS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=PRESETS)
    ap.add_argument(
        "--systems",
        nargs="+",
        default=SYSTEM_ORDER + list(GRN_FILES),
        help=f"any of {SYSTEMS.names() + list(GRN_FILES)}",
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--iterations", type=int, default=80, help="training iterations per run")
    ap.add_argument("--particles", type=int, default=128, help="simulated particles per training iteration")
    ap.add_argument("--cells", type=int, default=300, help="observed cells per time point (simulated systems)")
    ap.add_argument("--eval-particles", type=int, default=500, help="simulated particles for held-out W1/W2")
    ap.add_argument("--recovery-particles", type=int, default=300, help="population size for the drift metrics")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (one (data set, seed) task each)")
    ap.add_argument(
        "--no-calibrate",
        action="store_true",
        help="estimate from the stored per-step costs instead of timing 3 iterations of each preset first",
    )
    ap.add_argument(
        "--resume",
        action="store_true",
        help="keep the runs already in results/systems.rows.jsonl and run only the others",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run + timing probe: 5 iterations, seed 0, presets scimf ito, systems morse "
        "morse_control grn_attract, small evaluation",
    )
    args = ap.parse_args(argv)
    bad = [p for p in args.presets if p not in PRESETS]
    if bad:
        raise SystemExit(f"unknown preset(s) {bad}; available: {PRESETS}")
    if args.quick:
        args.iterations, args.seeds, args.presets = 5, [0], ["scimf", "ito"]
        args.systems, args.eval_particles, args.recovery_particles = ["morse", "morse_control", "grn_attract"], 300, 100
    name = "systems_quick" if args.quick else "systems"
    # every finished task's rows go to <name>.rows.jsonl at once, so a crash loses nothing;
    # --resume runs only the (system, seed, preset) runs not there yet
    log_path = _common.rows_log(name)

    def refs(t):
        return [*REFERENCES, *(["truth"] if t[0] == "system" else [])]

    todo = {t: (list(args.presets), refs(t)) for t in plan(args)}  # task -> (presets to fit, references to score)
    rows, log_path = _common.start_log(log_path, resume=args.resume)
    if args.resume and rows:
        stale = resume_stale(rows, args)
        if stale:
            raise SystemExit(
                f"--resume: {log_path.name} holds runs whose iterations, train.random_batch or train.inter_lr differ "
                f"from today's preset ({'; '.join(stale)}); delete those rows or run without --resume"
            )
        done = {(r["kind"], r["system"], r["seed"], r["preset"]) for r in rows if "error" not in r}
        rows = [r for r in rows if "error" not in r]  # a failed run is run again
        todo = {t: tuple([p for p in names if (*t, p) not in done] for names in v) for t, v in todo.items()}
        todo = {t: v for t, v in todo.items() if v[0] or v[1]}
        print(f"resume: {len(rows)} row(s) already in {log_path.name}, {len(todo)} task(s) with runs to do", flush=True)
    tasks = list(todo)
    per_step = SEC_PER_STEP if args.no_calibrate else calibrate(args.presets, args)
    est = estimate_seconds(todo, args, per_step)
    print(
        "seconds per training iteration (at "
        + f"{_train_steps('system')} steps): "
        + ", ".join(f"{p} {v * _train_steps('system'):.2f}" for p, v in per_step.items()),
        flush=True,
    )
    print(
        f"{sum(len(ps) for ps, _ in todo.values())} model runs (+ missing baselines) in {len(tasks)} tasks, "
        f"{args.iterations} iterations, "
        f"{args.particles} particles, {args.jobs} worker(s) × {args.threads} thread(s): estimated {est / 60:.1f} min",
        flush=True,
    )
    t0 = time.perf_counter()

    def keep(rs):
        rows.extend(rs)
        _common.append_rows(log_path, rs)

    if args.jobs > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(run_task, *t, args, *todo[t]) for t in tasks]
            for fut in as_completed(futures):
                keep(fut.result())
    else:
        for t in tasks:
            keep(run_task(*t, args, *todo[t]))
    elapsed = time.perf_counter() - t0
    failed = [r for r in rows if "error" in r]
    rows = [r for r in rows if "error" not in r]
    summary = summary_rows(rows)
    table = markdown(summary)
    note = (
        "Held-out: index 2 = t 1.6 (interpolation), index 5 = t 4.0 (extrapolation) for the simulated "
        "systems; the GRN files hold out index 2 only (cell numbers grow over time there; the model sees "
        "normalised distributions). drift err / inter err: relative errors (0 perfect, 1 = zero model); "
        "inter err is NaN on non-interacting controls, where inter_scaled measures a spurious interaction. "
        "`truth` = the true system simulated from the observed t0 cells. Baselines on the same held-out "
        "cells (mfsde.evaluation): `previous` = copy of the nearest earlier training time, `mccann` = "
        "displacement interpolation on the exact OT plan between the neighbouring training times (at the "
        "last time, extrapolation, there is no later one: it is the previous time), `floor` = observed "
        "cells against other observed cells of the same time.\n"
    )
    print(table)
    print(note)
    print(f"total {elapsed / 60:.1f} min (estimated {est / 60:.1f} min)")
    per_run = [r["seconds"] for r in rows if r["preset"] in PRESETS]
    print(f"per run (fit + evaluation): median {np.median(per_run):.1f} s, max {np.max(per_run):.1f} s")
    for r in failed:
        print(f"FAILED: {r['system']} {r['preset']} seed {r['seed']}: {r['error']}")
    settings = vars(args) | {
        "presets_in_log": sorted({r["preset"] for r in rows}),
        "times": TIMES,
        "task": TASK,
        "grn_task": GRN_TASK,
        "overrides": _overrides(args),
        "truth_dt": TRUTH_DT,
        "sec_per_step": per_step,
    }
    _common.write_json(
        name,
        {
            "settings": settings,
            "env": _common.env_info(),
            "rows": rows,
            "failed": failed,
            "summary": summary,
            "elapsed_s": elapsed,
            "estimate_s": est,
        },
    )
    (_common.RESULTS_DIR / f"{name}.md").write_text(table + "\n" + note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
