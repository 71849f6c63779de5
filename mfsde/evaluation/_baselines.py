"""Baselines that every accuracy table shows beside a model, on the same cells and metric.

A model's held-out W1 means little alone. :func:`baseline_evaluations` scores, for every held-out
time index k of a task, with the same number of predicted cells and the same exact W1/W2 as
:func:`mfsde.evaluate`:

* ``previous`` — copy the cells of the nearest earlier *training* time point a(k) (it always
  exists: t₀ trains);
* ``mccann`` — McCann's displacement interpolation on the exact optimal-transport plan (POT
  ``ot.emd``, squared Euclidean cost, uniform weights) between a(k) and the nearest later
  training time b(k): a source cell x of a(k) is paired with a partner y drawn from its row of the
  plan and moved to (1 − s) x + s y, s = (t_k − t_a) / (t_b − t_a). Where no later training time
  exists (extrapolation) McCann cannot be formed: the row falls back to ``previous`` and says so
  in ``note``;
* ``mccann_metric`` (on request: not in :data:`BASELINES`) — the same pairs moved along their
  geodesics in the data-density metric of the two neighbouring training snapshots instead of the
  straight line (:func:`mccann_metric`): the interpolant that flow matching with
  ``train.fm_interpolant "metric"`` regresses on, scored with no model. It tells how much of a
  metric-bridge model's held-out error is the interpolant's and how much the fit's;
* ``continuation`` (on request) — the last training gap's displacement carried on: the cells of
  a(k) are paired by the exact plan with cells of the training time a′ before it and moved on
  along the same straight line, y + s (y − x), s = (t_k − t_a) / (t_a − t_a′)
  (:func:`continuation`). Past the last training time, where McCann has no later time, it is the
  simplest prediction that has dynamics (cells keep their last velocity); copying is the one
  that has none. It needs two training times before k;
* ``floor`` — the sampling floor: ``n`` observed cells of time k against the *other* observed
  cells of time k (at most half of them, so both sides are real samples). No method can be
  expected to go much below it.

With :class:`~mfsde.data.Populations` the rows are per (population, time). A training
population's held-out times are scored as above. A *held-out population* has no training time
after its first snapshot, so its baselines are references built from its own observed snapshots
that the model never sees: ``previous`` copies its observed time k − 1 and ``mccann``
interpolates between its observed times k − 1 and k + 1 (``previous`` at its last time).

>>> rows = baseline_evaluations(snaps, "loo:1", n_particles=1000, seed=0)
>>> {r["preset"]: r["w1"] for r in rows}
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mfsde.config._schema import TrainConfig
from mfsde.evaluation._evaluate import add_means
from mfsde.losses._wasserstein import ot_plan, w1, w2
from mfsde.training._geodesic import METRIC_CELLS

#: the baselines every table shows
BASELINES = ("previous", "mccann", "floor")
#: baselines computed on request only (``names=``): slower, and with settings of their own
OPTIONAL_BASELINES = ("mccann_metric", "continuation")
_METRICS = {"w1": w1, "w2": w2}


def neighbours(train: Sequence[int], index: int) -> tuple[int, int | None]:
    """``(a, b)``: the nearest training indices before and after ``index`` (``b`` is ``None`` when
    no training time follows)."""
    train = sorted(int(i) for i in train)
    before = [i for i in train if i < index]
    if not before:
        raise ValueError(f"time index {index} has no earlier training time point (train = {train})")
    after = [i for i in train if i > index]
    return before[-1], (after[0] if after else None)


def _draw(m: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` row indices out of ``m``: without replacement when ``n ≤ m``, else with."""
    return rng.permutation(m)[:n] if n <= m else rng.integers(0, m, n)


def _cells(snapshots, k: int) -> np.ndarray:
    return np.asarray(snapshots.data[k], dtype=np.float64)


def previous(snapshots, index: int, train: Sequence[int], n: int | None = None, seed: int = 0) -> np.ndarray:
    """``n`` cells (``None``: all) of the nearest earlier training time point, ``(n, d)``."""
    a, _ = neighbours(train, index)
    x = _cells(snapshots, a)
    return x if n is None else x[_draw(len(x), n, np.random.default_rng(seed))]


def _mccann_pairs(snapshots, index, train, n, seed, max_plan_cells, what="mccann"):
    """``(x, y, s)``: McCann's source cells ``(n, d)``, their partners drawn from the exact plan,
    and the fraction s of the gap at ``index`` (see :func:`mccann`)."""
    a, b = neighbours(train, index)
    if b is None:
        raise ValueError(
            f"{what}: time index {index} has no later training time point to interpolate to "
            f"(train = {sorted(int(i) for i in train)}); use 'previous'"
        )
    n = len(snapshots.data[a]) if n is None else n
    x, y = _ot_pairs(_cells(snapshots, a), _cells(snapshots, b), n, np.random.default_rng(seed), max_plan_cells)
    times = np.asarray(snapshots.times, dtype=np.float64)
    s = (times[index] - times[a]) / (times[b] - times[a])
    return x, y, float(s)


def _ot_pairs(x0, x1, n, rng, max_plan_cells, from_second=False):
    """``(u, v)``, each ``(n, d)``: ``n`` cells of one side (of ``x0``; of ``x1`` with ``from_second``)
    and a partner of each on the other side, drawn from its row of the exact plan between at most
    ``max_plan_cells`` cells of each side (drawn at random with ``rng``). ``u`` is the first side's."""
    x0 = x0[_draw(len(x0), min(len(x0), max_plan_cells), rng)]
    x1 = x1[_draw(len(x1), min(len(x1), max_plan_cells), rng)]
    plan = ot_plan(x0, x1)
    start, other, plan = (x1, x0, plan.T) if from_second else (x0, x1, plan)
    src = _draw(len(start), n, rng)
    rows = plan[src]
    rows = rows / rows.sum(1, keepdims=True)
    # one partner per source, drawn from its row of the (sparse) plan
    partner = (rows.cumsum(1) > rng.random((len(src), 1))).argmax(1)
    return (other[partner], start[src]) if from_second else (start[src], other[partner])


def mccann(
    snapshots, index: int, train: Sequence[int], n: int | None = None, seed: int = 0, max_plan_cells: int = 4000
) -> np.ndarray:
    """McCann interpolation at ``index`` between its neighbouring training times, ``(n, d)``
    (``n=None``: as many cells as the earlier time point has).

    The exact plan is computed between at most ``max_plan_cells`` cells of each side (drawn at
    random; exact OT is O(n³)); predicted cells start from source cells drawn like the model's
    initial cells (without replacement when there are enough).

    Raises:
        ValueError: ``index`` has no later training time point (extrapolation).
    """
    x, y, s = _mccann_pairs(snapshots, index, train, n, seed, max_plan_cells)
    return (1.0 - s) * x + s * y


def mccann_metric(
    snapshots,
    index: int,
    train: Sequence[int],
    n: int | None = None,
    seed: int = 0,
    max_plan_cells: int = 4000,
    *,
    centers: int = TrainConfig.fm_metric_centers,
    kappa: float = TrainConfig.fm_metric_kappa,
    eps: float = TrainConfig.fm_metric_eps,
    metric_cells: int = METRIC_CELLS,
    chunk: int = TrainConfig.fm_batch,
) -> np.ndarray:
    """McCann's pairs (:func:`mccann`, the same draws for the same ``seed``) moved along their geodesics
    instead of the straight line, ``(n, d)``: each source cell x and its partner y go to μ(s) on the
    path of least energy ∫ μ̇ᵀ G(μ) μ̇ in the data-density metric G = I / (h + ε) of the two
    neighbouring training snapshots (:class:`~mfsde.training._geodesic.RBFMetric` from at most
    ``metric_cells`` cells of each, as training builds it; ``centers``, ``kappa``, ``eps`` default
    to ``train.fm_metric_*``'s defaults; geodesics solved ``chunk`` pairs at a time, as flow
    matching's batches of ``train.fm_batch``). Built in the data's units: under a global
    standardisation (the presets') the metric and its geodesics are those training builds in model
    units, up to rounding.

    Raises:
        ValueError: ``index`` has no later training time point (extrapolation); a setting out
            of range (one line naming it).
    """
    import torch

    from mfsde.training import _geodesic

    for name, value in (("centers", centers), ("metric_cells", metric_cells), ("chunk", chunk)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"mccann_metric: {name} must be a positive int, got {value!r}")
    for name, value in (("kappa", kappa), ("eps", eps)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"mccann_metric: {name} must be a positive number, got {value!r}")

    x, y, s = _mccann_pairs(snapshots, index, train, n, seed, max_plan_cells, what="mccann_metric")
    a, b = neighbours(train, index)
    # the metric's cells and k-means start: streams of their own, so McCann's pairs stay mccann's
    gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, 5, a, b]).generate_state(1)[0]))
    rng = np.random.default_rng([seed, 5, a, b])
    cells = [_cells(snapshots, k) for k in (a, b)]
    cells = np.concatenate([c[_draw(len(c), min(len(c), metric_cells), rng)] for c in cells])
    if centers > len(cells):
        raise ValueError(
            f"mccann_metric: centers must be at most the {len(cells)} cells the metric is built from, got {centers}"
        )
    metric = _geodesic.RBFMetric(torch.as_tensor(cells), centers, kappa, eps, gen)
    xt, yt, out = torch.as_tensor(x), torch.as_tensor(y), []
    for i in range(0, len(xt), chunk):
        coef = _geodesic.geodesic(xt[i : i + chunk], yt[i : i + chunk], metric)
        out.append(
            _geodesic.path(xt[i : i + chunk], yt[i : i + chunk], coef, torch.tensor([s], dtype=xt.dtype))[0][:, 0]
        )
    return torch.cat(out).numpy() if out else np.empty((0, x.shape[1]))


def continuation(
    snapshots, index: int, train: Sequence[int], n: int | None = None, seed: int = 0, max_plan_cells: int = 4000
) -> np.ndarray:
    """The last training gap's displacement carried on to ``index``, ``(n, d)`` (``n=None``: as many
    cells as the nearest earlier training time a has): cells y of a, each paired with a cell x of the
    training time a′ before a drawn from y's column of the exact plan between them (at most
    ``max_plan_cells`` cells of each side, as :func:`mccann`), go to y + s (y − x),
    s = (t_index − t_a) / (t_a − t_a′): McCann's straight line beyond its end point.

    Raises:
        ValueError: fewer than two training times before ``index``.
    """
    before = sorted(int(i) for i in train if int(i) < index)
    if len(before) < 2:
        raise ValueError(
            f"continuation: time index {index} needs two earlier training time points (train = "
            f"{sorted(int(i) for i in train)}); use 'previous'"
        )
    a0, a = before[-2:]
    n = len(snapshots.data[a]) if n is None else n
    rng = np.random.default_rng([seed, 6, a0, a])
    x, y = _ot_pairs(_cells(snapshots, a0), _cells(snapshots, a), n, rng, max_plan_cells, from_second=True)
    times = np.asarray(snapshots.times, dtype=np.float64)
    s = (times[index] - times[a]) / (times[a] - times[a0])
    return y + s * (y - x)


def floor_split(snapshots, index: int, n: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(sample, rest)``: ``min(n, n_k // 2)`` observed cells of time ``index`` and the others."""
    y = _cells(snapshots, index)
    if len(y) < 2:
        raise ValueError(f"floor: time index {index} has {len(y)} cell(s); need at least 2 to split")
    m = len(y) // 2 if n is None else max(1, min(n, len(y) // 2))
    perm = np.random.default_rng(seed).permutation(len(y))
    return y[perm[:m]], y[perm[m:]]


def baseline_evaluations(
    snapshots,
    task,
    *,
    n_particles: int | None = 2000,
    seed: int = 0,
    times: Sequence[int] | None = None,
    metrics: Sequence[str] = ("w1", "w2"),
    names: Sequence[str] = BASELINES,
    mass="normalised",
) -> list[dict]:
    """Every baseline in ``names`` (:data:`BASELINES` and :data:`OPTIONAL_BASELINES`) at the
    held-out times of ``task`` (or ``times``), in the format
    of :func:`mfsde.evaluate` plus ``"preset"`` (the baseline's name): ``per_time``
    rows ``{"index", "time", "n_observed", "n_predicted", "w1", "w2"[, "note"]}`` and the means.

    With masses (``mass`` ``"counts"`` or sizes per time point, as ``data.mass``) the baselines
    predict a mass too and their rows carry ``mass``, ``mass_observed`` and ``tmv``: previous
    keeps the earlier training time's mass, McCann interpolates the neighbours' masses linearly
    in time, continuation carries on the last gap's growth factor (the floor has none).

    ``n_particles`` predicted cells (``None``: as many as the earlier training time point has,
    the count of the ``start="previous"`` protocol); the floor uses at most half the observed
    cells of the time point."""
    from mfsde.data._inputs import check_inputs, resolve_task
    from mfsde.data._populations import Populations

    if isinstance(snapshots, Populations):
        return _population_baselines(
            snapshots, task, n_particles=n_particles, seed=seed, times=times, metrics=metrics, names=names, mass=mass
        )
    from mfsde.data._inputs import relative_masses

    observed = relative_masses(snapshots, mass)
    task = resolve_task(task, snapshots)
    check_inputs(snapshots, task, need_train=False)
    unknown = [b for b in names if b not in BASELINES + OPTIONAL_BASELINES]
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; available: {', '.join(BASELINES + OPTIONAL_BASELINES)}")
    bad = [m for m in metrics if m not in _METRICS]
    if bad:
        raise ValueError(f"unknown metric(s) {bad}; available: {', '.join(_METRICS)}")
    idx = sorted(int(k) for k in (task.heldout if times is None else times))
    if not idx:
        raise ValueError(f"task {getattr(task, 'name', task)!r} has no held-out time to evaluate; pass times=[...]")
    tvals = np.asarray(snapshots.times, dtype=np.float64)
    out = []
    for name in names:
        per_time = []
        for k in idx:
            rec = {"index": k, "time": float(tvals[k])}
            if name == "floor":
                x, y = floor_split(snapshots, k, n_particles, seed)
            else:
                y = _cells(snapshots, k)
                if name.startswith("mccann") and neighbours(task.train, k)[1] is None:
                    rec["note"] = "no later training time: McCann falls back to previous"
                    x = previous(snapshots, k, task.train, n_particles, seed)
                elif name == "mccann":
                    x = mccann(snapshots, k, task.train, n_particles, seed)
                elif name == "mccann_metric":
                    x = mccann_metric(snapshots, k, task.train, n_particles, seed)
                elif name == "continuation":
                    x = continuation(snapshots, k, task.train, n_particles, seed)
                else:
                    x = previous(snapshots, k, task.train, n_particles, seed)
            rec["n_observed"], rec["n_predicted"] = int(len(y)), int(len(x))
            for m in metrics:
                rec[m] = _METRICS[m](x, y)
            if observed is not None and name != "floor":
                a, b = neighbours(task.train, k)
                if name.startswith("mccann") and b is not None:
                    s = (tvals[k] - tvals[a]) / (tvals[b] - tvals[a])
                    rec["mass"] = float((1 - s) * observed[a] + s * observed[b])
                elif name == "continuation":  # the last gap's growth factor carried on (never negative)
                    a0 = max(int(i) for i in task.train if int(i) < a)
                    s = (tvals[k] - tvals[a]) / (tvals[a] - tvals[a0])
                    rec["mass"] = float(observed[a] * (observed[a] / observed[a0]) ** s)
                else:
                    rec["mass"] = float(observed[a])
                rec["mass_observed"] = observed[k]
                rec["tmv"] = abs(rec["mass"] - observed[k]) / observed[k]
            per_time.append(rec)
        ev = {
            "preset": name,
            "task": getattr(task, "name", None),
            "n_particles": n_particles,
            "seed": seed,
            "per_time": per_time,
        }
        add_means(ev, per_time, metrics)
        out.append(ev)
    return out


def _population_baselines(pops, task, *, times, metrics, names, **kwargs) -> list[dict]:
    """:func:`baseline_evaluations` per (population, time), merged per baseline (module doc)."""
    from mfsde.data._populations import PredictTask, population_items

    ptask, items = population_items(pops, task, times)
    if not items:
        raise ValueError(f"task {ptask.name!r} holds out no population and no time point to evaluate")
    rows: dict[str, list[dict]] = {n: [] for n in names}
    for name, t, idx, held in items:
        snaps = pops[name]
        if held:  # references from the population's own observed neighbours (never trained on)
            parts = [(PredictTask(t.name, [i for i in range(snaps.n_times) if i != k], [k]), [k]) for k in idx]
        else:
            parts = [(t, idx)]
        for sub, ks in parts:
            for ev in baseline_evaluations(snaps, sub, times=ks, metrics=metrics, names=names, **kwargs):
                rows[ev["preset"]] += [{"population": name, "heldout_population": held, **r} for r in ev["per_time"]]
    out = []
    for n in names:
        ev = {
            "preset": n,
            "task": ptask.name,
            "n_particles": kwargs["n_particles"],
            "seed": kwargs["seed"],
            "per_time": rows[n],
        }
        add_means(ev, rows[n], metrics)
        out.append(ev)
    return out
