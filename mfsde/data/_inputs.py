"""Input checks shared by training, evaluation and the baselines, and the training series.

A *series* is one population as the trainer sees it: its cells in model units, its model-time
axis up to its last training time and the indices it is fitted at. A :class:`Snapshots` gives one
series; :class:`~mfsde.data.Populations` with a :class:`~mfsde.data.PopulationTask` give one per
training population. Series with the same time axis are simulated together, as a leading batch
of independent particle systems (``(P, N, d)``): particles interact only within their population.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mfsde.data._populations import PopulationError, Populations, as_population_task
from mfsde.data._tasks import get_task


def resolve_task(task, snapshots):
    """``task`` as a Task object (a string like ``"interpolate:2"`` goes through
    :func:`mfsde.data.get_task`)."""
    if isinstance(task, str):
        return get_task(task, snapshots.n_times)
    return task


def check_inputs(snapshots, task, dim: int | None = None, *, need_train: bool = True) -> None:
    """Raise clear errors when ``task`` does not fit ``snapshots`` or ``dim`` differs from the data."""
    times = np.asarray(snapshots.times, dtype=np.float64)
    n_times = len(snapshots.data)
    if times.ndim != 1 or len(times) != n_times:
        raise ValueError(f"snapshots have {n_times} data arrays but times of shape {times.shape}")
    if n_times < 2:
        raise ValueError(f"need at least 2 snapshots, got {n_times}")
    if not np.isfinite(times).all() or not (np.diff(times) > 0).all():
        raise ValueError(f"snapshot times must be finite and strictly increasing, got {times.tolist()}")
    data_dim = snapshots.dim
    for k, a in enumerate(snapshots.data):
        if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] != data_dim:
            raise ValueError(f"snapshot {k} must have shape (n_k ≥ 1, {data_dim}), got {tuple(a.shape)}")
    if dim is not None and dim != data_dim:
        raise ValueError(
            f"the model has dim {dim} (config.model.dim) but the data have dim {data_dim}; build the "
            f"config with preset(name, dim={data_dim}) or override model.dim"
        )
    name = getattr(task, "name", repr(task))
    for what in ("train", "heldout"):
        idx = list(getattr(task, what))
        bad = [i for i in idx if not isinstance(i, (int, np.integer)) or not 0 <= i < n_times]
        if bad:
            raise ValueError(
                f"task {name!r} has {what} time index(es) {bad} out of range for {n_times} snapshots "
                f"(valid: 0..{n_times - 1})"
            )
    train, heldout = set(task.train), set(task.heldout)
    if 0 not in train:
        raise ValueError(f"task {name!r}: time index 0 (the initial snapshot) must be a training time")
    if need_train and len(train) < 2:
        raise ValueError(f"task {name!r} has no training time after t_0 to fit (train = {sorted(train)})")
    if train & heldout:
        raise ValueError(f"task {name!r}: time index(es) {sorted(train & heldout)} are both train and held out")


def check_training_data(snapshots, task, where: str = "") -> None:
    """Refuse or warn about degenerate training snapshots, naming the time point: fewer than 2 cells
    at a training time (``ValueError``: no distribution to fit), every cell of a training time
    identical, or two training times holding the same cells (``UserWarning``: almost surely a
    mistake in the data)."""
    import warnings

    train = sorted(int(i) for i in task.train)
    seen: dict[bytes, int] = {}
    for k in train:
        a = np.asarray(snapshots.data[k])
        if a.shape[0] < 2:
            raise ValueError(
                f"{where}time point {k} (t = {snapshots.times[k]:g}) has {a.shape[0]} cell: training "
                f"needs at least 2 cells per training time point"
            )
        if np.all(a == a[:1]):
            warnings.warn(
                f"{where}time point {k} (t = {snapshots.times[k]:g}): all {a.shape[0]} cells are identical "
                f"(zero variance)",
                UserWarning,
                stacklevel=3,
            )
        key = np.ascontiguousarray(np.sort(a, axis=0)).tobytes()
        if key in seen:
            warnings.warn(
                f"{where}time points {seen[key]} and {k} hold the same cells (a duplicated snapshot?)",
                UserWarning,
                stacklevel=3,
            )
        seen.setdefault(key, k)


def draw_initial(x0_cells: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` rows of ``x0_cells`` ``(M, d)``: without replacement when M ≥ n, else with replacement."""
    m = x0_cells.shape[0]
    dev = generator.device
    if m >= n:
        idx = torch.randperm(m, generator=generator, device=dev)[:n]
    else:
        idx = torch.randint(0, m, (n,), generator=generator, device=dev)
    return x0_cells[idx.to(x0_cells.device)]


def training_members(snapshots, task, dim: int | None = None):
    """``(task, [(population name or None, Snapshots, Task)])``: the training populations with their
    time tasks, checked (``dim`` against the data). For one :class:`Snapshots` the list has one
    member named ``None`` and ``task`` is resolved to a :class:`~mfsde.data.Task`; for
    :class:`~mfsde.data.Populations` ``task`` becomes a :class:`~mfsde.data.PopulationTask`."""
    if isinstance(snapshots, Populations):
        ptask = as_population_task(task)
        tasks = ptask.resolve(snapshots)
        members = []
        for name in ptask.training_names(snapshots):
            try:
                check_inputs(snapshots[name], tasks[name], dim)
                check_training_data(snapshots[name], tasks[name], where=f"population {name!r}: ")
            except ValueError as e:
                raise PopulationError(f"population {name!r}: {e}") from None
            members.append((name, snapshots[name], tasks[name]))
        return ptask, members
    task = resolve_task(task, snapshots)
    check_inputs(snapshots, task, dim)
    check_training_data(snapshots, task)
    return task, [(None, snapshots, task)]


@dataclass
class Series:
    """One training population in model units.

    Attributes:
        name: the population's name (``None`` for a single :class:`Snapshots`).
        data: ``T`` tensors ``(n_k, d)``, every time point (held-out ones are never read).
        ts: ``(L,)`` model times from its first snapshot to its last training time.
        fit_idx: the training indices ≥ 1 (the loss is taken there).
        mass: the observed mass at every time point relative to the first (``data.mass``), or
            ``None`` for normalised data.
    """

    name: str | None
    data: list[torch.Tensor]
    ts: torch.Tensor
    fit_idx: list[int]
    mass: list[float] | None = None


def relative_masses(snapshots, mass, name: str | None = None) -> list[float] | None:
    """The mass at every time point of ``snapshots`` relative to the first, as ``data.mass`` says:
    ``"normalised"`` → ``None``; ``"counts"`` → n_k / n_0; a list of sizes (one per time point)
    → size_k / size_0."""
    if mass == "normalised":
        return None
    if mass == "counts":
        counts = [int(x.shape[0]) for x in snapshots.data]
        return [c / counts[0] for c in counts]
    if isinstance(mass, str) or not isinstance(mass, (list, tuple)):
        raise ValueError(f"mass must be 'normalised', 'counts' or a list of sizes per time point, got {mass!r}")
    where = "" if name is None else f" (population {name!r})"
    if name is not None:
        raise ValueError(
            "data.mass as a list of sizes applies to one Snapshots; for populations use data.mass 'counts'"
        )
    if len(mass) != len(snapshots.times):
        raise ValueError(f"data.mass has {len(mass)} sizes but the data have {len(snapshots.times)} time points{where}")
    return [float(v) / float(mass[0]) for v in mass]


def build_series(members, scale, device, dtype, mass="normalised") -> list[Series]:
    """The :class:`Series` of ``training_members`` output through a fitted ``scale`` (with the
    relative masses ``data.mass`` gives)."""
    out = []
    for name, snaps, task in members:
        train = sorted(int(i) for i in task.train)
        data = [scale.encode(x) for x in snaps.tensors(dtype, device)]
        ts = scale.encode_times(np.asarray(snaps.times)[: train[-1] + 1]).to(device, dtype)
        out.append(Series(name, data, ts, [i for i in train if i >= 1], relative_masses(snaps, mass, name)))
    return out


def group_series(series: list[Series]) -> list[list[int]]:
    """Indices of ``series`` grouped by identical time axes (first-appearance order): each group is
    simulated as one batch of independent populations."""
    groups: dict[tuple, list[int]] = {}
    for i, s in enumerate(series):
        groups.setdefault(tuple(s.ts.tolist()), []).append(i)
    return list(groups.values())
