"""First-order attraction–repulsion aggregation with a Morse potential and weak confinement."""

from __future__ import annotations

import torch

from mfsde.drifts import MeanFieldDrift
from mfsde.drifts._intra import IntraDrift
from mfsde.interactions._base import Interaction
from mfsde.systems._base import SYSTEMS, NonInteracting, ParticleSystem, positive


class HarmonicConfinement(IntraDrift):
    """f_intra(x) = −∇V(x) = −λ x with V(x) = λ |x|² / 2."""

    def __init__(self, dim: int, strength: float):
        super().__init__(dim)
        self.strength = float(strength)

    def forward(self, x, t=None):
        return -self.strength * self.inputs(x, None)

    def extra_repr(self):
        return f"dim={self.dim}, strength={self.strength}"


class MorseInteraction(Interaction):
    """f_inter(x_i) = −(1/N) Σ_j ∇W(x_i − x_j), Morse potential
    W(r) = C_r e^{−r/ℓ_r} − C_a e^{−r/ℓ_a}, so ∇W(z) = W'(|z|) z/|z| with
    W'(r) = −(C_r/ℓ_r) e^{−r/ℓ_r} + (C_a/ℓ_a) e^{−r/ℓ_a}. The j = i term is exactly 0 (z = 0).
    Pairwise forces are antisymmetric, so Σ_i f_inter(x_i) = 0."""

    symmetric = True

    def __init__(self, dim: int, C_a: float, l_a: float, C_r: float, l_r: float):
        super().__init__(dim)
        self.C_a, self.l_a, self.C_r, self.l_r = float(C_a), float(l_a), float(C_r), float(l_r)

    def dW(self, r: torch.Tensor) -> torch.Tensor:
        """W'(r)."""
        return -(self.C_r / self.l_r) * torch.exp(-r / self.l_r) + (self.C_a / self.l_a) * torch.exp(-r / self.l_a)

    def potential(self, r: torch.Tensor) -> torch.Tensor:
        """W(r)."""
        return self.C_r * torch.exp(-r / self.l_r) - self.C_a * torch.exp(-r / self.l_a)

    def forward(self, x, t=None):
        x = self.check(x)
        n = x.shape[-2]
        z = x.unsqueeze(-2) - x.unsqueeze(-3)  # z_ij = x_i − x_j, (..., N, N, d)
        r = (z.pow(2).sum(-1) + 1e-12).sqrt()
        off = 1 - torch.eye(n, dtype=x.dtype, device=x.device)
        coef = self.dW(r) / r * off  # (..., N, N); the j = i term is 0 (z_ii = 0)
        # −(1/N) Σ_j coef_ij (x_i − x_j), as matrix products
        return (coef @ x - coef.sum(-1, keepdim=True) * x) / n

    def extra_repr(self):
        return f"dim={self.dim}, C_a={self.C_a}, l_a={self.l_a}, C_r={self.C_r}, l_r={self.l_r}"


@SYSTEMS.register("morse")
class MorseAggregation(ParticleSystem):
    """Attraction–repulsion aggregation (first-order swarming) with a Morse potential:

        dx_i = −λ x_i dt − (1/N) Σ_j ∇W(x_i − x_j) dt + σ dW_i,
        W(r) = C_r e^{−r/ℓ_r} − C_a e^{−r/ℓ_a},

    short-range repulsion (C_r/ℓ_r > C_a/ℓ_a: W'(0) < 0, so the swarm cannot collapse to a
    point) and longer-range attraction; the weak harmonic confinement λ keeps escaped particles
    bounded. The population contracts into a compact swarm of finite size set by W.
    References: D'Orsogna, Chuang, Bertozzi & Chayes (2006) *Phys. Rev. Lett.* 96:104302 (Morse
    swarms; parameters C = C_r/C_a, ℓ = ℓ_r/ℓ_a); Carrillo, D'Orsogna & Panferov (2009)
    *Kinet. Relat. Models* 2:363; Bertozzi, Carrillo & Laurent (2009) *Nonlinearity* 22:683
    (first-order aggregation equation); Carrillo, Choi & Hauray (2014) *CISM Lecture Notes* (mean-field
    limits of swarming and aggregation models).

    Args:
        dim: 2 (default; any d ≥ 1 works).
        C_a, l_a: attraction strength and range (default 10.0, 2.0).
        C_r, l_r: repulsion strength and range (default 15.0, 0.5), i.e. D'Orsogna's ratios
            C = C_r/C_a = 1.5, ℓ = ℓ_r/ℓ_a = 0.25 (W'(0) < 0, minimum of W at r ≈ 1.2). The overall
            scale C_a = 10 only sets the time scale: from the default initial disk the swarm
            contracts to its stationary size (a disk of radius ≈ 1.5) by t ≈ 4.
        confinement: λ (default 0.05, weak).
        sigma: noise (default 0.1).
        init_radius: initial positions ~ Uniform(disk of this radius) in 2-D, N(0, (r/2)² I)
            otherwise (default 4.0).
        init_center: centre of the initial law (default the origin; a ``(d,)`` sequence), e.g. to
            make populations that start in different places.
    """

    name = "morse"
    default_times = (0.0, 0.5, 1.0, 2.0, 4.0)

    def __init__(
        self,
        dim: int = 2,
        C_a: float = 10.0,
        l_a: float = 2.0,
        C_r: float = 15.0,
        l_r: float = 0.5,
        confinement: float = 0.05,
        sigma: float = 0.1,
        init_radius: float = 4.0,
        init_center=None,
    ):
        self.init_center = (
            torch.zeros(dim, dtype=torch.float64)
            if init_center is None
            else torch.as_tensor(init_center, dtype=torch.float64).reshape(-1)
        )
        if self.init_center.shape != (dim,) or not torch.isfinite(self.init_center).all():
            raise ValueError(f"init_center must be {dim} finite numbers, got {init_center!r}")
        self.confinement = positive(confinement, "confinement", allow_zero=True)
        self.init_radius = positive(init_radius, "init_radius", allow_zero=True)
        inter = MorseInteraction(
            dim,
            positive(C_a, "C_a", allow_zero=True),
            positive(l_a, "l_a"),
            positive(C_r, "C_r", allow_zero=True),
            positive(l_r, "l_r"),
        )
        drift = MeanFieldDrift(HarmonicConfinement(dim, self.confinement), inter)
        names = ["x", "y"] if dim == 2 else None
        super().__init__(dim, drift, positive(sigma, "sigma", allow_zero=True), names)

    def _sample_state(self, n, generator, batch, dtype):
        if self.dim == 2:
            u = torch.rand(*batch, n, 2, generator=generator, dtype=torch.float64)
            rad = self.init_radius * u[..., 0].sqrt()
            ang = 2 * torch.pi * u[..., 1]
            x = torch.stack([rad * torch.cos(ang), rad * torch.sin(ang)], dim=-1)
        else:
            x = 0.5 * self.init_radius * torch.randn(*batch, n, self.dim, generator=generator, dtype=torch.float64)
        return (x + self.init_center).to(dtype)


@SYSTEMS.register("morse_control")
def morse_control(
    dim: int = 2, confinement: float = 0.05, sigma: float = 0.1, init_radius: float = 4.0
) -> NonInteracting:
    """Non-interacting control of ``"morse"``: the confinement alone (independent OU particles with
    rate λ), same noise and initial law."""
    return NonInteracting(MorseAggregation(dim=dim, confinement=confinement, sigma=sigma, init_radius=init_radius))
