"""Interaction recovered as pairwise sensitivities: ∂f(x_i, ρ)/∂x_j for j ≠ i.

A population-independent term g(x, t) can move between f_intra and f_inter without changing the
model (the gauge of :mod:`mfsde.evaluation`). The derivative of a cell's drift with
respect to *another* cell's state kills any such term exactly: for the empirical measure
ρ = (1/N) Σ_j δ_{x_j}, ∂f(x_i, ρ)/∂x_j (j ≠ i) is the functional derivative of the drift with
respect to the population, i.e. the interaction and nothing else. Compared on configurations
of the true system (the cells the data show, not probes far outside them, where a kernel is
not identified), it is a gauge-free, on-support interaction error (:func:`pair_jacobian_error`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mfsde._jacobian import auto_chunk, pair_jacobian_rows
from mfsde.evaluation._recovery import _check_count, _check_times, _drift_of, true_populations
from mfsde.systems._base import ParticleSystem


def pair_jacobian_error(
    model,
    system: ParticleSystem,
    times: Sequence[float],
    *,
    n_particles: int = 200,
    seed: int = 0,
    dt: float = 0.01,
    time_origin: float | None = None,
    chunk: int | None = None,
) -> dict:
    """Error of the learned pairwise sensitivities on fresh populations of the true system.

    At every time t of ``times`` a population of ``n_particles`` is simulated from the system's
    initial law (:func:`~mfsde.evaluation.true_populations`), and with J_ij = ∂f(x_i, ρ,
    t)/∂x_j (data units, j ≠ i; the self-blocks j = i are left out: they carry the gauge)

        inter = Σ ‖Ĵ_ij − J_ij‖²_F / Σ ‖J_ij‖²_F,     cosine = ⟨Ĵ, J⟩ / (‖Ĵ‖ ‖J‖),

    pooled over times and pairs. 0 is the truth; a model without interaction (Ĵ ≡ 0) scores
    exactly 1; NaN when the system has no interaction (J ≡ 0; the spurious ``model_norm`` is
    still reported). Returns ``{"inter", "cosine", "true_norm", "model_norm", "n_particles"}``
    (norms: mean ‖J_ij‖²_F per pair)."""
    drift = _drift_of(model, system)
    ts = _check_times(times, system)
    n = _check_count(n_particles, "n_particles", least=2)
    t_zero = system.t0 if time_origin is None else float(time_origin)
    p = next(iter(drift.parameters()), None) if isinstance(drift, torch.nn.Module) else None
    dtype = p.dtype if p is not None else torch.get_default_dtype()
    was_training = getattr(drift, "training", False)
    if isinstance(drift, torch.nn.Module):
        drift.eval()
    c = min(auto_chunk(model, n), auto_chunk(system, n)) if chunk is None else chunk
    num = den = cross = mod = 0.0
    try:
        for x, t in zip(true_populations(system, ts, n, seed, dt), ts):
            x = x.double()
            tm = torch.tensor(t - t_zero, dtype=dtype)
            learned = pair_jacobian_rows(lambda z, tm=tm: drift(z.to(dtype), tm).double(), x, c)
            true = pair_jacobian_rows(lambda z, t=t: system.drift(z, torch.tensor(t, dtype=z.dtype)), x, c)
            for (rec, gm), (_, gt) in zip(learned, true):
                keep = torch.ones_like(gt)
                keep[torch.arange(len(rec)), rec] = 0.0  # drop the self-blocks j = i
                gm, gt = gm.double() * keep, gt.double() * keep
                num += float((gm - gt).pow(2).sum())
                den += float(gt.pow(2).sum())
                cross += float((gm * gt).sum())
                mod += float(gm.pow(2).sum())
    finally:
        if isinstance(drift, torch.nn.Module):
            drift.train(was_training)
    pairs = len(ts) * n * (n - 1)
    return {
        "inter": num / den if den > 0 else float("nan"),
        "cosine": cross / (den * mod) ** 0.5 if den > 0 and mod > 0 else 0.0,
        "true_norm": den / pairs,
        "model_norm": mod / pairs,
        "n_particles": n,
    }
