"""One-step maps of the particle solvers, chosen by name (registry ``SOLVERS``).

A stepper advances the whole population ``x`` ``(..., N, d)`` by one step of size ``h`` from
time ``t`` given the Brownian increment ``dW`` (shaped like ``x``, or ``(..., N, m)`` for general
d × m noise) and returns the new state and the drift evaluated at ``(x, t)`` (used for the path
energy). The noise term is :func:`noise_term` (``g ⊙ dW`` or ``g dW``).

A stepper with a ``weighted_step`` also integrates a mass channel: log-weights ``log_w``
``(..., N)`` with d log w = g(x, ρ, t) dt, the drift called as ``drift(x, t, log_w=log_w)`` and
the growth rate as ``growth(x, t, log_w)``; it returns ``(x, log_w, f, g)`` at the step's start.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mfsde.registry import Registry
from mfsde.solvers._diffusion import Diffusion

DriftFn = Callable[[torch.Tensor, float], torch.Tensor]

SOLVERS = Registry("solver")


def noise_term(diffusion, x, t, dW) -> torch.Tensor:
    """g(x, t) ⊙ dW (diagonal noise) or g(x, t) dW (general d × m noise), shaped like ``x``.
    ``diffusion``: a :class:`Diffusion`, the :class:`FrozenDiffusion` that
    :func:`~mfsde.sdeint` passes for constant noise, or a tensor (constant diagonal)."""
    if isinstance(diffusion, torch.Tensor):
        return diffusion * dW
    return diffusion.increment(diffusion(x, t), dW)


@SOLVERS.register("euler_maruyama")
class EulerMaruyama:
    """x ← x + f(x, t) h + g(x, t) ⊙ dW (or g dW for general noise). Itô; strong order 1/2 (1 for
    additive noise), weak order 1."""

    drift_evals_per_step = 1
    sde_type = "ito"

    def check(self, diffusion: Diffusion) -> None:
        pass

    def step(self, drift: DriftFn, diffusion: Diffusion, x, t: float, h: float, dW):
        f = drift(x, t)
        # x + h f in one fused op; the noise added in place (add's backward does not need its output)
        return torch.add(x, f, alpha=h).add_(noise_term(diffusion, x, t, dW)), f

    def weighted_step(self, drift, growth, diffusion: Diffusion, x, log_w, t: float, h: float, dW):
        """x ← x + f h + g dW and log w ← log w + r h, f and r at the step's start."""
        f, r = drift(x, t, log_w=log_w), growth(x, t, log_w)
        x_new = torch.add(x, f, alpha=h).add_(noise_term(diffusion, x, t, dW))
        return x_new, log_w + h * r, f, r


@SOLVERS.register("heun")
class StochasticHeun:
    """Predictor–corrector (stochastic Heun) for additive noise: x̃ = x + f h + σ dW,
    x ← x + (f(x, t) + f(x̃, t + h)) h / 2 + σ dW. Weak order 2 for additive noise; two drift
    evaluations per step. State-dependent noise is refused (it would converge to Stratonovich)."""

    drift_evals_per_step = 2
    sde_type = "ito"

    def check(self, diffusion: Diffusion) -> None:
        if not diffusion.additive:
            raise ValueError("method 'heun' supports additive (constant) noise only; use 'euler_maruyama'")

    def step(self, drift: DriftFn, diffusion: Diffusion, x, t: float, h: float, dW):
        f = drift(x, t)
        noise = noise_term(diffusion, x, t, dW)
        pred = x + f * h + noise
        return x + (f + drift(pred, t + h)) * (h / 2) + noise, f

    def weighted_step(self, drift, growth, diffusion: Diffusion, x, log_w, t: float, h: float, dW):
        """Heun on the pair (x, log w): the predictor moves both, the corrector averages both rates."""
        f, r = drift(x, t, log_w=log_w), growth(x, t, log_w)
        noise = noise_term(diffusion, x, t, dW)
        pred, lw_pred = x + f * h + noise, log_w + r * h
        f2, r2 = drift(pred, t + h, log_w=lw_pred), growth(pred, t + h, lw_pred)
        return x + (f + f2) * (h / 2) + noise, log_w + (r + r2) * (h / 2), f, r
