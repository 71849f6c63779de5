"""Interaction recovered across populations: the gauge-fixed error between two populations of
the same dynamics at shared times (:func:`cross_population_error`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mfsde.evaluation._recovery import (
    _check_count,
    _check_times,
    _drift_of,
    _model_drift,
    _ratio,
    _sq,
    _true_drift,
    true_populations,
)
from mfsde.systems._base import ParticleSystem


def cross_population_error(
    model,
    system_a: ParticleSystem,
    system_b: ParticleSystem,
    times: Sequence[float],
    *,
    n_particles: int = 300,
    n_probes: int | None = None,
    seed: int = 0,
    dt: float = 0.01,
    time_origin: float | None = None,
) -> dict:
    """Gauge-fixed interaction error between two populations *at the same time*.

    ``system_a`` and ``system_b`` share the dynamics and differ in their initial law (two members
    of :func:`~mfsde.systems.population_systems`). At every time t of ``times``, background populations A and B
    are drawn from the two systems at t, with the same probes P (``n_probes`` from each), and

        Δf(x) = f(x, ρ_{A∪P}, t) − f(x, ρ_{B∪P}, t)      at the probes x ∈ P.

    Unlike :func:`~mfsde.evaluation.interaction_error`, whose pairs are two *times* of
    one population, both terms share t: whatever the model does with the time input cancels
    along with any function of a particle's own state, and what is left is the response of the
    drift to a different population, the quantity that only several populations identify.

    Returns ``{"inter": E‖Δf̂−Δf‖² / E‖Δf‖², "inter_norm": E‖Δf‖², "cosine": the pooled cosine
    between Δf̂ and Δf (direction alone), "n_probes"}``.

    Caveat: when the two populations occupy different regions (Morse swarms started in different
    places), a probe of A sits far outside B, and Δf there asks the kernel about distances that
    no training population contains, where it is not identified (a learned radial profile
    extrapolates freely). :func:`~mfsde.evaluation.pair_jacobian_error` compares the
    interaction on the populations' own cells instead.
    """
    if type(system_a) is not type(system_b):
        raise TypeError(f"systems of different kinds: {type(system_a).__name__} and {type(system_b).__name__}")
    drift = _drift_of(model, system_a)
    ts = _check_times(times, system_a)
    n = _check_count(n_particles, "n_particles")
    m = max(1, n // 4) if n_probes is None else _check_count(n_probes, "n_probes")
    t_zero = system_a.t0 if time_origin is None else float(time_origin)
    pa = true_populations(system_a, ts, n + m, seed, dt)
    pb = true_populations(system_b, ts, n + m, seed + 1, dt)
    true, learned = [], []
    for k, t in enumerate(ts):
        probes = torch.cat([pa[k][n:], pb[k][n:]])
        ends = []
        for system, pop in ((system_a, pa[k][:n]), (system_b, pb[k][:n])):
            x = torch.cat([pop, probes])
            ends.append((_true_drift(system, x, t)[n:], _model_drift(drift, x, t - t_zero, None)[n:]))
        true.append(ends[0][0] - ends[1][0])
        learned.append(ends[0][1] - ends[1][1])
    d, g = torch.cat(true), torch.cat(learned)
    norm = _sq(d)
    cos = float((d * g).sum() / (d.norm() * g.norm()).clamp_min(1e-300))
    return {
        "inter": _ratio(_sq(g - d), norm if norm > 1e-20 * max(_sq(g), 1e-300) else 0.0),
        "inter_norm": norm / len(d),
        "cosine": cos,
        "n_probes": len(d),
    }
