"""A short tour: scIMF (attention interaction) vs a plain Itô SDE on a simulated system.

:func:`run_demo` simulates :func:`mfsde.systems.demo_dataset` (2-D Morse aggregation: particles
attract at long range and repel at short range, 5 time points, 300 cells each), holds out the
middle time point, fits the ``scimf`` and the ``ito`` presets briefly with the same seed and
prints the held-out W1/W2 of both, next to the sampling floor (the ground-truth system
simulated from the same initial cells). Settings are shrunk so that the whole demo takes about
2–3 minutes on 2 CPU cores; the numbers are illustrative, not a benchmark (use
``mfsde compare`` with more iterations and seeds for that).

>>> from mfsde.cli import run_demo
>>> rows = run_demo(iterations=300, seed=0, out="runs/demo")
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

DEFAULT_ITERATIONS = 250
# the demo's training settings (everything else is the preset's): fewer simulated cells per
# iteration, a faster learning-rate decay for the short run, all 300 observed cells as targets
DEMO_OVERRIDES = {
    "train.n_particles": 128,
    "train.n_targets": None,
    "train.lr_step": 50,
    "train.log_every": 10,
}
EVAL_PARTICLES = 1000


def _floor(snaps, task, n_particles: int, seed: int, sim_seed: int) -> dict[int, tuple[float, float]]:
    """W1/W2 of the true system simulated from the observed t_0 cells: the sampling floor."""
    import torch

    from mfsde.losses import w1, w2
    from mfsde.systems import MorseAggregation

    system = MorseAggregation()
    gen = torch.Generator().manual_seed(sim_seed)
    x0 = torch.as_tensor(snaps.data[0])
    x0 = x0[torch.randint(0, x0.shape[0], (n_particles,), generator=gen)]
    idx = sorted(task.heldout)
    ts = [float(snaps.times[0])] + [float(snaps.times[k]) for k in idx]
    with torch.no_grad():
        xs = system.simulate(x0, ts, dt=0.02, generator=gen).xs
    return {
        k: (
            w1(xs[i + 1].double().numpy(), snaps.data[k].astype(np.float64)),
            w2(xs[i + 1].double().numpy(), snaps.data[k].astype(np.float64)),
        )
        for i, k in enumerate(idx)
    }


def _record_data(snaps, task, out: Path, run_dir: Path) -> None:
    """Write the demo data as ``out/demo_data.csv`` (once) and point the run at it, so that
    ``mfsde evaluate --run`` / ``mfsde explain --run`` work on demo runs without ``--data``."""
    from mfsde.training._runs import RunDir

    csv = out / "demo_data.csv"
    if not csv.is_file():
        names = list(getattr(snaps, "feature_names", None) or [f"x{i + 1}" for i in range(snaps.dim)])
        rows = ["samples," + ",".join(names)]
        for t, x in zip(snaps.times, snaps.data):
            rows += [f"{t:g}," + ",".join(f"{v:.7g}" for v in row) for row in x]
        csv.write_text("\n".join(rows) + "\n")
    spec = {"paths": [str(csv.resolve())], "time_col": None, "label_col": None, "times": None, "task": task.name}
    RunDir(run_dir).write_data_spec(spec)


def run_demo(
    iterations: int = DEFAULT_ITERATIONS,
    seed: int = 0,
    out: str | Path | None = None,
    progress: bool = True,
    presets=("scimf", "ito"),
    threads: int | None = 1,
) -> list[dict]:
    """Fit ``presets`` on the demo data set with its middle time point held out; print and
    return one row per preset: ``preset``, ``w1``, ``w2`` (held-out, mean over held-out times),
    ``final_loss``, ``train_seconds``. With ``out``, runs go to ``out/<preset>/``, the table to
    ``out/results.md`` / ``results.json``, the data to ``out/demo_data.csv`` (so that
    ``mfsde explain --run out/scimf`` works) and the interpretation figures of the first preset
    to ``out/<preset>/explain/``.

    ``threads`` sets torch's intra-op threads for the duration of the demo (restored after):
    its tensors are tiny (128 particles in 2-D), so one thread avoids threading overhead and
    over-subscription on a busy machine; ``None`` keeps torch's setting."""
    import torch

    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        return _run_demo(iterations, seed, out, progress, presets)
    finally:
        torch.set_num_threads(old_threads)


def _run_demo(iterations, seed, out, progress, presets) -> list[dict]:
    from mfsde._checks import check_positive_int
    from mfsde.config._presets import preset
    from mfsde.data._tasks import get_task
    from mfsde.evaluation._evaluate import evaluate
    from mfsde.systems import demo_dataset
    from mfsde.training._fit import fit
    from mfsde.training._runs import RunDir

    check_positive_int(iterations, "iterations")
    t_start = time.perf_counter()
    snaps = demo_dataset(seed=seed)
    mid = snaps.n_times // 2
    task = get_task(f"interpolate:{mid}", snaps.n_times)
    out = Path(out) if out is not None else None
    print(
        f"demo data: {snaps.name or 'demo'}: {snaps.n_times} time points {list(map(float, snaps.times))}, "
        f"{[len(a) for a in snaps.data]} cells, d = {snaps.dim}; holding out t = {snaps.times[mid]:g} (index {mid})"
    )
    rows = []
    models = {}
    for name in presets:
        cfg = preset(name, dim=snaps.dim).override(
            **{**DEMO_OVERRIDES, "train.iterations": iterations, "train.seed": seed}
        )
        run_dir = out / name if out is not None else None
        res = fit(cfg, snaps, task, out_dir=run_dir, progress=progress)
        ev = evaluate(res.model, snaps, task, n_particles=EVAL_PARTICLES, seed=seed)
        models[name] = res
        rows.append(
            {
                "preset": name,
                "w1": ev["w1"],
                "w2": ev["w2"],
                "final_loss": res.history[-1]["loss"] if res.history else float("nan"),
                "train_seconds": res.elapsed,
            }
        )
        if run_dir is not None:
            RunDir(run_dir).write_eval(ev)
            _record_data(snaps, task, out, run_dir)
    try:
        floor = _floor(snaps, task, EVAL_PARTICLES, seed, sim_seed=seed + 12345)
        f1 = float(np.mean([v[0] for v in floor.values()]))
        f2 = float(np.mean([v[1] for v in floor.values()]))
    except Exception:  # the floor is a nicety; never fail the demo on it
        f1 = f2 = float("nan")

    from mfsde.evaluation._baselines import baseline_evaluations

    base = {b["preset"]: b for b in baseline_evaluations(snaps, task, n_particles=EVAL_PARTICLES, seed=seed)}
    lines = [
        f"held-out W1/W2 at t = {snaps.times[mid]:g} ({EVAL_PARTICLES} simulated vs {len(snaps.data[mid])} "
        f"observed cells; {iterations} training iterations, seed {seed}); lower is better",
        "",
        "| model | W1 | W2 | final loss | train s |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['preset']} | {r['w1']:.4f} | {r['w2']:.4f} | {r['final_loss']:.4g} | {r['train_seconds']:.0f} |"
        )
    labels = {
        "previous": "copy the previous time point",
        "mccann": "McCann interpolation of its neighbours",
        "floor": "sampling floor (two halves of the observed cells)",
    }
    for name, label in labels.items():
        if name in base:
            lines.append(f"| *{label}* | {base[name]['w1']:.4f} | {base[name]['w2']:.4f} | | |")
    if np.isfinite(f1):
        lines.append(f"| *the true system, simulated and scored the same way* | {f1:.4f} | {f2:.4f} | | |")
    lines += [
        "",
        "The true system's row is a reference, not a bound: W1 between a finite sample and the observed "
        "cells is biased upwards, so a fitted model can score below it by chance. The sampling floor "
        "compares observed cells with observed cells at equal sizes.",
    ]
    table = "\n".join(lines)
    print()
    print(table)
    if out is not None:
        (out / "results.md").write_text(table + "\n")
        (out / "results.json").write_text(
            json.dumps(
                {
                    "rows": rows,
                    "true_system": {"w1": f1, "w2": f2},
                    "baselines": {k: {"w1": v["w1"], "w2": v["w2"]} for k, v in base.items()},
                    "task": task.name,
                    "iterations": iterations,
                    "seed": seed,
                },
                indent=2,
            )
        )
        from mfsde.explain import explain

        first = presets[0]
        summary = explain(
            models[first].model,
            snaps,
            out / first / "explain",
            history=models[first].history,
            heldout=list(task.heldout),
            n_cells=300,
            n_particles=EVAL_PARTICLES,
            seed=seed,
            time_indices=[0, snaps.n_times - 1],
        )
        print(f"\nwrote runs, results.md and {len(summary['files'])} interpretation files of {first} to {out}")
    print(f"demo finished in {time.perf_counter() - t_start:.0f} s")
    return rows
