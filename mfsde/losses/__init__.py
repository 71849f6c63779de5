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


def path_energy(solution, t_end: float | None = None, normalise: bool = True, energy: str = "drift"):
    """Least-action term from a :class:`~mfsde.solvers.Solution` computed with ``energy=True``:
    ∫_{t_0}^{t_end} mean_i ‖f‖² dt, divided by (t_end − t_0) when ``normalise`` (scIMF divides
    by the last training time). ``t_end`` defaults to the last output time. Returns ``(...)``.
    ``energy="growth"``: the growth rate's ∫ Σ_i w̄_i g_i² dt of a solution with a mass channel."""
    if energy not in ("drift", "growth"):
        raise ValueError(f"energy must be 'drift' or 'growth', got {energy!r}")
    series = solution.energy if energy == "drift" else solution.growth_energy
    if series is None:
        what = "energy" if energy == "drift" else "growth energy (sdeint(..., growth=g, energy=True))"
        raise ValueError(f"the solution carries no {what}; call sdeint(..., energy=True)")
    t_end = float(solution.ts[-1]) if t_end is None else t_end
    idx = int((solution.ts - t_end).abs().argmin())
    e = series[idx]
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
