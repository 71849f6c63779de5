"""Losses between predicted particles and observed cells (registry ``LOSSES``) and OT metrics.

Training losses are modules ``loss(x, y) → (...)``: ``sinkhorn`` (geomloss), ``mmd``.
Evaluation metrics are plain functions on arrays: :func:`w1`, :func:`w2` (exact, POT).
The least-action term is :func:`path_energy`.
"""

from mfsde.losses._mmd import MMDLoss, energy_distance
from mfsde.losses._registry import LOSSES
from mfsde.losses._sinkhorn import SinkhornLoss, sinkhorn, subsample
from mfsde.losses._wasserstein import w1, w2, wasserstein


def build_loss(name: str, /, **options):
    """Build the distribution loss registered as ``name``."""
    return LOSSES.build(name, **options)


def path_energy(solution, t_end: float | None = None, normalise: bool = True):
    """Least-action term from a :class:`~mfsde.solvers.Solution` computed with ``energy=True``:
    ∫_{t_0}^{t_end} mean_i ‖f‖² dt, divided by (t_end − t_0) when ``normalise`` (scIMF divides
    by the last training time). ``t_end`` defaults to the last output time. Returns ``(...)``."""
    if solution.energy is None:
        raise ValueError("the solution carries no energy; call sdeint(..., energy=True)")
    t_end = float(solution.ts[-1]) if t_end is None else t_end
    idx = int((solution.ts - t_end).abs().argmin())
    e = solution.energy[idx]
    span = float(solution.ts[idx] - solution.ts[0])
    return e / span if normalise and span > 0 else e


__all__ = [
    "LOSSES",
    "build_loss",
    "SinkhornLoss",
    "sinkhorn",
    "subsample",
    "MMDLoss",
    "energy_distance",
    "w1",
    "w2",
    "wasserstein",
    "path_energy",
]
