"""The mean-field neural SDE as one ``nn.Module``."""
from __future__ import annotations

import torch
from torch import nn

from .config import Config, ModelConfig
from .drifts import MeanFieldDrift, build_intra
from .interactions import build_interaction
from .solvers import Diffusion, Solution, sdeint


class MeanFieldSDE(nn.Module):
    """dx = f(x, ρ_t) dt + σ dW with f = f_intra + f_inter, simulated as a particle system.

    >>> model = MeanFieldSDE(drift, sigma=0.1, dt=0.1)
    >>> sol = model(x0, ts, seed=0)            # Solution; sol.xs: (T, ..., N, d)
    """

    def __init__(self, drift: MeanFieldDrift, sigma=0.1, dt: float = 0.1, method: str = "euler_maruyama"):
        super().__init__()
        self.drift = drift
        self.diffusion = sigma if isinstance(sigma, Diffusion) else Diffusion(sigma)
        self.dt, self.method = float(dt), method
        self.dim = drift.dim

    def forward(self, x0: torch.Tensor, ts, **kwargs) -> Solution:
        """Simulate from ``x0`` ``(..., N, d)`` through output times ``ts``; kwargs go to
        :func:`mfsde.solvers.sdeint` (``generator``, ``seed``, ``energy``, ``random_batch`` …)."""
        kwargs.setdefault("dt", self.dt)
        kwargs.setdefault("method", self.method)
        return sdeint(self.drift, x0, ts, sigma=self.diffusion, **kwargs)

    def velocity(self, x: torch.Tensor, t=None) -> torch.Tensor:
        """The drift f(x, ρ) at a population ``(..., N, d)`` (ρ = the population's empirical law)."""
        return self.drift(x, t)


def build_model(config: Config | ModelConfig) -> MeanFieldSDE:
    """Build a :class:`MeanFieldSDE` from a config by registry names."""
    m = config.model if isinstance(config, Config) else config
    intra = build_intra(m.intra.name, dim=m.dim, **m.intra.options)
    inter = build_interaction(m.inter.name, dim=m.dim, **m.inter.options)
    sigma = torch.as_tensor(m.sigma) if isinstance(m.sigma, list) else m.sigma
    return MeanFieldSDE(MeanFieldDrift(intra, inter), sigma=sigma, dt=m.dt, method=m.solver)
