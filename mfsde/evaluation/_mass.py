"""Metrics of unbalanced (growing and dying) populations: the total mass and the growth rate.

- :func:`total_mass_variation` (TMV): the relative error of a predicted total mass,
  |m̂_t − m_t| / m_t at every evaluation time, as CytoBridge (UMFSB) reports it beside W1.
- :func:`growth_error`: the relative L² error of an estimated growth rate ĝ(x) against the
  true g(x) on the populations the data came from (the support that matters),
  Σ (ĝ − g)² / Σ g², 0 perfect and exactly 1 for ĝ ≡ 0. Both rates may be torch or numpy
  callables of particles ``(N, d)`` returning ``(N,)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from mfsde.evaluation._recovery import call_on_particles


def total_mass_variation(predicted: Sequence[float], observed: Sequence[float]) -> dict:
    """TMV per time and its mean: ``{"tmv": mean, "per_time": [|m̂ − m| / m]}``; ``predicted``
    and ``observed`` are total masses (e.g. relative population sizes) at the same times."""
    p, o = (np.asarray(v, dtype=np.float64).reshape(-1) for v in (predicted, observed))
    if p.shape != o.shape or p.size == 0:
        raise ValueError(f"predicted and observed masses must have the same non-zero length, got {p.size} and {o.size}")
    if not (np.isfinite(p).all() and np.isfinite(o).all()) or (o <= 0).any() or (p < 0).any():
        raise ValueError("masses must be finite, observed > 0 and predicted >= 0")
    per = np.abs(p - o) / o
    return {"tmv": float(per.mean()), "per_time": [float(v) for v in per]}


def _rate(fn: Callable, x: torch.Tensor, what: str) -> torch.Tensor:
    out = call_on_particles(fn, x)
    if out.shape != x.shape[:-1]:
        raise ValueError(
            f"{what} returned shape {tuple(out.shape)} for particles of shape {tuple(x.shape)}; expected (N,)"
        )
    if not torch.isfinite(out).all():
        raise ValueError(f"{what} returned non-finite values")
    return out


def growth_error(estimate: Callable, truth: Callable, populations: Sequence) -> dict:
    """Relative L² error of the growth rate ``estimate`` against ``truth`` on ``populations``
    (``(N_k, d)`` arrays or tensors, e.g. the snapshots of a branching system):

    ``{"growth": Σ(ĝ − g)² / Σ g² (NaN if g ≡ 0), "growth_mse": mean (ĝ − g)², "growth_norm":
    mean g², "per_time": [same, per population]}``."""
    if not callable(estimate) or not callable(truth):
        raise TypeError("estimate and truth must be callables x (N, d) -> growth rates (N,)")
    if isinstance(populations, (np.ndarray, torch.Tensor)) or not populations:
        raise TypeError("populations must be a non-empty list of (N, d) arrays")
    num = den = 0.0
    n_all = 0
    per = []
    for k, p in enumerate(populations):
        x = torch.as_tensor(np.asarray(p.detach().cpu() if isinstance(p, torch.Tensor) else p, dtype=np.float64))
        if x.dim() != 2 or x.shape[0] < 1:
            raise ValueError(f"populations[{k}] must be an (N, d) array, got shape {tuple(x.shape)}")
        g, gh = _rate(truth, x, "truth"), _rate(estimate, x, "estimate")
        e, s = float((gh - g).pow(2).sum()), float(g.pow(2).sum())
        per.append(
            {"growth": e / s if s > 0 else math.nan, "growth_mse": e / x.shape[0], "growth_norm": s / x.shape[0]}
        )
        num, den, n_all = num + e, den + s, n_all + x.shape[0]
    return {
        "growth": num / den if den > 0 else math.nan,
        "growth_mse": num / n_all,
        "growth_norm": den / n_all,
        "per_time": per,
    }
