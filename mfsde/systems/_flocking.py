"""Stochastic Cucker–Smale flocking in the plane: state (position, velocity) ∈ R⁴."""

from __future__ import annotations

import torch

from mfsde.drifts import MeanFieldDrift
from mfsde.drifts._intra import IntraDrift
from mfsde.interactions._base import Interaction
from mfsde.systems._base import SYSTEMS, ParticleSystem, as_tensor, positive


def velocity_variance(x: torch.Tensor) -> torch.Tensor:
    """Velocity spread (1/N) Σ_i |v_i − v̄|² of ``(..., N, 4)`` Cucker–Smale populations, shape ``x.shape[:-2]``."""
    v = x[..., 2:]
    return (v - v.mean(-2, keepdim=True)).pow(2).sum(-1).mean(-1)


class Transport(IntraDrift):
    """f_intra(x, v) = (v, 0): positions move with the velocity; no self-propulsion or friction."""

    def __init__(self):
        super().__init__(4)

    def forward(self, x, t=None):
        x = self.inputs(x, None)
        return torch.cat([x[..., 2:], torch.zeros_like(x[..., 2:])], dim=-1)


class VelocityAlignment(Interaction):
    """f_inter = (0, (1/N) Σ_j ψ(|x_j − x_i|)(v_j − v_i)), ψ(r) = K / (1 + r²)^β."""

    symmetric = True
    has_weights = True

    def __init__(self, K: float, beta: float):
        super().__init__(4)
        self.K, self.beta = float(K), float(beta)

    def psi(self, r2: torch.Tensor) -> torch.Tensor:
        """Communication weight as a function of the squared distance r²."""
        return self.K * (1 + r2).pow(-self.beta)

    def _weights(self, x):
        pos = x[..., :2]
        r2 = (pos.unsqueeze(-2) - pos.unsqueeze(-3)).pow(2).sum(-1)  # (..., N, N)
        return self.psi(r2)

    def forward(self, x, t=None):
        x = self.check(x)
        n = x.shape[-2]
        w = self._weights(x) / n
        v = x[..., 2:]
        dv = w @ v - w.sum(-1, keepdim=True) * v  # the j = i term cancels exactly
        return torch.cat([torch.zeros_like(v), dv], dim=-1)

    def pair_weights(self, x, t=None):
        x = self.check(x)
        n = x.shape[-2]
        w = self._weights(x) / n
        w = w * (1 - torch.eye(n, dtype=x.dtype, device=x.device))
        return w.unsqueeze(-3)

    def extra_repr(self):
        return f"K={self.K}, beta={self.beta}"


@SYSTEMS.register("cucker_smale")
class CuckerSmale(ParticleSystem):
    """Stochastic Cucker–Smale flocking in 2-D, state (x, v) ∈ R⁴ (``dim = 4``):

        dx_i = v_i dt,
        dv_i = (1/N) Σ_j ψ(|x_j − x_i|)(v_j − v_i) dt + σ dW_i,   ψ(r) = K / (1 + r²)^β.

    Without noise the velocity spread (1/N)Σ|v_i − v̄|² is non-increasing and, for β ≤ 1/2,
    decays to 0 for every initial condition (unconditional flocking): Cucker & Smale (2007)
    *IEEE Trans. Autom. Control* 52:852 (β < 1/2); Ha & Liu (2009) *Commun. Math. Sci.* 7:297
    (β ≤ 1/2, particle and kinetic level); Carrillo, Fornasier, Rosado & Toscani (2010) *SIAM J.
    Math. Anal.* 42:218. Additive velocity noise as in Bolley, Cañizo & Carrillo (2011) *Math.
    Models Methods Appl. Sci.* 21:2179. Noise acts on velocities only: ``sigma`` is the
    ``(4,)`` vector (0, 0, σ, σ).

    Args:
        K: communication strength (default 1.0, as in Cucker & Smale).
        beta: decay exponent of ψ (default 0.25, inside the unconditional-flocking range).
        sigma: velocity noise σ (default 0.1).
        pos_std: initial positions ~ N(0, pos_std² I) (default 1.0).
        vel_mean, vel_std: initial velocities ~ N(vel_mean, vel_std² I) (default (0, 0), 1.0).
    """

    name = "cucker_smale"
    default_times = (0.0, 0.5, 1.0, 2.0, 4.0)

    def __init__(
        self,
        K: float = 1.0,
        beta: float = 0.25,
        sigma: float = 0.1,
        pos_std: float = 1.0,
        vel_mean=(0.0, 0.0),
        vel_std: float = 1.0,
    ):
        self.K = positive(K, "K", allow_zero=True)
        self.beta = positive(beta, "beta", allow_zero=True)
        s = positive(sigma, "sigma", allow_zero=True)
        self.pos_std = positive(pos_std, "pos_std", allow_zero=True)
        self.vel_std = positive(vel_std, "vel_std", allow_zero=True)
        self.vel_mean = as_tensor(vel_mean).reshape(-1)
        if self.vel_mean.shape != (2,):
            raise ValueError(f"vel_mean must have 2 entries, got {self.vel_mean.tolist()}")
        drift = MeanFieldDrift(Transport(), VelocityAlignment(self.K, self.beta))
        sig = torch.tensor([0.0, 0.0, s, s], dtype=torch.get_default_dtype())
        super().__init__(4, drift, sig, ["x", "y", "vx", "vy"])

    def _sample_state(self, n, generator, batch, dtype):
        z = torch.randn(*batch, n, 4, generator=generator, dtype=torch.float64)
        pos = self.pos_std * z[..., :2]
        vel = self.vel_mean + self.vel_std * z[..., 2:]
        return torch.cat([pos, vel], dim=-1).to(dtype)

    @staticmethod
    def velocity_variance(x: torch.Tensor) -> torch.Tensor:
        return velocity_variance(x)
