"""Evaluation on held-out time points and held-out populations (scIMF's protocol).

:func:`evaluate` simulates ``n_particles`` cells from the first snapshot (eval mode, no
gradients) to every held-out time and measures exact W1 and W2 (POT, uniform weights) against
*all* observed cells there (:func:`simulate` gives the cells). Comparisons of presets over seeds
(``compare``, ``summarise``, tables) are in :mod:`mfsde.evaluation`.

>>> ev = evaluate(model, snaps, "interpolate:2", n_particles=2000, seed=0)
>>> ev["w1"], ev["per_time"][0]["w1"]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mfsde.data._inputs import check_inputs, draw_initial, resolve_task
from mfsde.data._populations import Populations, population_items
from mfsde.losses import w1, w2


def add_means(out: dict, per_time: list[dict], metrics) -> dict:
    """``out`` with the mean over ``per_time`` of every metric, and of ``tmv`` where the records
    carry one (data with masses)."""
    for m in metrics:
        out[m] = float(np.mean([r[m] for r in per_time]))
    if any("tmv" in r for r in per_time):
        out["tmv"] = float(np.mean([r["tmv"] for r in per_time]))
    return out


def metric_key(metric: str, rec: dict) -> str:
    """The column name of a ``per_time`` record: ``w1@k``, or ``w1@population:k`` with populations."""
    pop = rec.get("population")
    return f"{metric}@{rec['index']}" if pop is None else f"{metric}@{pop}:{rec['index']}"


def _model_device_dtype(model) -> tuple[torch.device, torch.dtype]:
    p = next(iter(model.parameters()), None)
    if p is None:
        return torch.device("cpu"), torch.get_default_dtype()
    return p.device, p.dtype


def simulate(
    model, snapshots, indices: Sequence[int], *, n_particles: int | None = 2000, seed: int = 0, start: int = 0
) -> dict[int, torch.Tensor]:
    """Simulate cells drawn from snapshot ``start`` (default the first) through every snapshot
    time from ``times[start]`` up to ``max(indices)``, in eval mode without gradients, in data
    units (the model's :class:`~mfsde.model.DataScale` maps in and out).

    ``n_particles`` cells are drawn without replacement when there are enough (``None``: all
    cells of snapshot ``start``). The draw and the Brownian increments come from one
    ``torch.Generator`` seeded with ``seed``. Returns ``{k: (n, d) tensor}`` for k in ``indices``
    (all ≥ ``start``). A model with a growth model carries particle weights: the cells are
    the unweighted particles (:func:`evaluate` weighs them).
    """
    return _simulate(model, snapshots, indices, n_particles=n_particles, seed=seed, start=start)[0]


def _simulate(model, snapshots, indices, *, n_particles, seed, start):
    """:func:`simulate`'s cells and, for a model with a growth model, the particles' log-weights
    ``{k: (n,)}`` (``None`` otherwise)."""
    if n_particles is not None and (
        isinstance(n_particles, bool) or not isinstance(n_particles, int) or n_particles < 1
    ):
        raise ValueError(f"n_particles must be a positive int or None (all cells), got {n_particles!r}")
    indices = sorted({int(k) for k in indices})
    if not indices:
        raise ValueError("no time indices to simulate")
    n_times = len(snapshots.data)
    if indices[0] < 0 or indices[-1] >= n_times:
        raise ValueError(f"time indices {indices} out of range for {n_times} snapshots")
    if not 0 <= start <= indices[0]:
        raise ValueError(f"start index {start} must be in 0..{indices[0]} (the first index simulated)")
    device, dtype = _model_device_dtype(model)
    x0_cells = torch.as_tensor(np.asarray(snapshots.data[start]), dtype=dtype, device=device)
    if getattr(model, "dim", x0_cells.shape[-1]) != x0_cells.shape[-1]:
        raise ValueError(f"the model has dim {model.dim} but the data have dim {x0_cells.shape[-1]}")
    times = np.asarray(snapshots.times, dtype=np.float64)[start : indices[-1] + 1]
    gen = torch.Generator(device=device).manual_seed(int(seed))
    was_training = model.training
    model.eval()
    weighted = getattr(model, "growth", None) is not None
    lws = None
    try:
        with torch.no_grad():
            x0 = draw_initial(x0_cells, x0_cells.shape[0] if n_particles is None else n_particles, gen)
            if indices[-1] == start:
                xs = x0.unsqueeze(0)
                lws = x0.new_zeros(1, x0.shape[0]) if weighted else None
            elif weighted:
                scale = model.scale
                sol = model(scale.encode(x0), scale.encode_times(times).to(device), generator=gen)
                xs, lws = scale.decode(sol.xs), sol.log_w
            else:
                xs = model.sample(x0, times, generator=gen)
    finally:
        model.train(was_training)
    cells = {k: xs[k - start] for k in indices}
    return cells, (None if lws is None else {k: lws[k - start] for k in indices})


START = ("t0", "previous")


def evaluate(
    model,
    snapshots,
    task,
    *,
    n_particles: int | None = 2000,
    seed: int = 0,
    times: Sequence[int] | None = None,
    metrics: Sequence[str] = ("w1", "w2"),
    start: str = "t0",
    mass="normalised",
) -> dict:
    """Exact W1/W2 (data units) between simulated and observed cells at the held-out times of ``task``.

    Args:
        model: a trained :class:`~mfsde.MeanFieldSDE`.
        snapshots: the data (all observed cells of a time point are the reference).
        task: a Task (its ``heldout`` indices) or a task name.
        n_particles: simulated cells (``None``: all cells of the start snapshot).
        seed: seed of the draw of the initial cells and of the noise.
        times: evaluate at these snapshot indices instead of ``task.heldout`` (e.g. the training
            times, to measure the fit).
        metrics: subset of ``("w1", "w2")``.
        start: the protocol. ``"t0"`` (scIMF's): one simulation from the first snapshot through
            every evaluated time. ``"previous"`` (the flow-matching literature's): each time k is
            simulated from the cells of the nearest earlier *training* time point (t₀ always
            trains, so it exists); with ``n_particles=None`` from all of them.
        mass: what the data's sizes mean (``data.mass``: ``"normalised"``, ``"counts"`` or sizes
            per time point). For a model with a growth model W1/W2 compare the weighted
            (normalised) laws and every record has ``mass`` (the predicted mass relative to the
            first time point). With masses every record also has ``mass`` (a model without a
            growth model keeps its start's), ``mass_observed`` and ``tmv`` (|m̂ − m| / m,
            :func:`~mfsde.evaluation.total_mass_variation`), and the output a mean ``tmv``.

    Returns:
        ``{"task", "start", "n_particles", "seed", "per_time": [{"index", "time", "n_observed",
        "start_index", "w1", "w2"}, …], "w1": mean over times, "w2": mean over times}``.
    """
    if start not in START:
        raise ValueError(f"start must be one of {', '.join(START)} (the evaluation protocol), got {start!r}")
    if isinstance(snapshots, Populations):
        return _evaluate_populations(
            model,
            snapshots,
            task,
            n_particles=n_particles,
            seed=seed,
            times=times,
            metrics=metrics,
            start=start,
            mass=mass,
        )
    task = resolve_task(task, snapshots)
    check_inputs(snapshots, task, getattr(model, "dim", None), need_train=False)
    idx = sorted(int(k) for k in (task.heldout if times is None else times))
    if not idx:
        raise ValueError(f"task {getattr(task, 'name', task)!r} has no held-out time to evaluate; pass times=[...]")
    bad = [m for m in metrics if m not in ("w1", "w2")]
    if bad:
        raise ValueError(f"unknown metric(s) {bad}; available: w1, w2")
    if start == "t0":
        groups = {0: idx}
    else:
        from mfsde.evaluation._baselines import neighbours

        groups = {}
        for k in idx:
            groups.setdefault(neighbours(task.train, k)[0] if k > 0 else 0, []).append(k)
    weighted = getattr(model, "growth", None) is not None
    from mfsde.data._inputs import relative_masses

    observed = relative_masses(snapshots, mass)
    sims, weights, starts = {}, {}, {}
    for a, ks in groups.items():
        cells, lws = _simulate(model, snapshots, ks, n_particles=n_particles, seed=seed, start=a)
        sims.update(cells)
        weights.update(lws or {})
        starts.update({k: a for k in ks})
    fns = {"w1": w1, "w2": w2}
    per_time = []
    for k in idx:
        x = sims[k].double().cpu().numpy()
        y = np.asarray(snapshots.data[k], dtype=np.float64)
        rec = {
            "index": k,
            "time": float(np.asarray(snapshots.times)[k]),
            "n_observed": int(y.shape[0]),
            "n_predicted": int(x.shape[0]),
            "start_index": starts[k],
        }
        a = torch.softmax(weights[k].double(), -1).cpu().numpy() if weighted else None
        for m in metrics:
            rec[m] = fns[m](x, y, a=a)
        if weighted or observed is not None:
            # the mass relative to the first time point: the start's observed mass × the growth since
            # (a model without a growth model keeps the mass it starts with)
            grown = float(weights[k].double().exp().mean()) if weighted else 1.0
            rec["mass"] = grown * (1.0 if observed is None else observed[starts[k]])
            if observed is not None:
                rec["mass_observed"] = observed[k]
                rec["tmv"] = abs(rec["mass"] - observed[k]) / observed[k]
        per_time.append(rec)
    out = {
        "task": getattr(task, "name", None),
        "start": start,
        "n_particles": n_particles,
        "seed": seed,
        "per_time": per_time,
    }
    add_means(out, per_time, metrics)
    return out


def _evaluate_populations(model, pops: Populations, task, *, times, metrics, **kwargs) -> dict:
    """:func:`evaluate` over populations: one ``per_time`` row per (population, time) with
    ``population`` and ``heldout_population``; the means over all rows and ``per_population``."""
    ptask, items = population_items(pops, task, times)
    if not items:
        raise ValueError(
            f"task {ptask.name!r} holds out no population and no time point; pass times=[...] or heldout_populations"
        )
    per_time = []
    for name, t, idx, held in items:
        ev = evaluate(model, pops[name], t, times=idx, metrics=metrics, **kwargs)
        per_time += [{"population": name, "heldout_population": held, **r} for r in ev["per_time"]]
    out = {
        "task": ptask.name,
        "start": kwargs["start"],
        "n_particles": kwargs["n_particles"],
        "seed": kwargs["seed"],
        "per_time": per_time,
    }
    add_means(out, per_time, metrics)
    out["per_population"] = {
        name: {m: float(np.mean([r[m] for r in per_time if r["population"] == name])) for m in metrics}
        for name, *_ in items
    }
    return out
