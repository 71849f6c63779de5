"""Two species with a non-reciprocal interaction: species A chases species B, B ignores A."""

from __future__ import annotations

import math
import numbers

import torch

from mfsde.drifts import MeanFieldDrift
from mfsde.drifts._intra import IntraDrift
from mfsde.interactions._base import Interaction
from mfsde.systems._base import SYSTEMS, NonInteracting, ParticleSystem, positive


class SpeciesConfinement(IntraDrift):
    """f_intra(x) = −λ p + ω 1[B] J p for the position p = x[..., :2] (J: rotation by +90°, so the
    B's circle the origin anticlockwise at angular velocity ω), 0 on the species coordinate (the
    last one, constant in time)."""

    def __init__(self, dim: int, strength: float, b_rotation: float = 0.0):
        if dim != 3:
            raise ValueError(f"SpeciesConfinement is for (x, y, species) particles, dim 3; got dim={dim}")
        super().__init__(dim)
        self.strength, self.b_rotation = float(strength), float(b_rotation)

    def forward(self, x, t=None):
        x = self.inputs(x, None)
        p = x[..., :-1]
        out = -self.strength * p
        if self.b_rotation:
            turn = torch.stack([-p[..., 1], p[..., 0]], dim=-1)
            out = out + self.b_rotation * (x[..., -1:] <= 0).to(x.dtype) * turn
        return torch.cat([out, torch.zeros_like(x[..., -1:])], dim=-1)


class NonReciprocalPursuit(Interaction):
    """f_inter(x_i) = (1/N) Σ_{j≠i} c(s_i, s_j) (p_j − p_i) exp(−|p_j − p_i|² / 2ℓ²), positions p,
    species s = +1 (A) or −1 (B) on the last coordinate: c(A, B) = ``a_from_b`` (A is pulled
    towards B), c(B, A) = ``b_from_a`` (default 0: B feels nothing from A), c = 0 within a
    species. The species coordinate gets no drift."""

    self_excluding = True

    def __init__(self, dim: int, a_from_b: float, b_from_a: float, length: float):
        super().__init__(dim)
        self.a_from_b, self.b_from_a, self.length = float(a_from_b), float(b_from_a), float(length)

    def coupling(self, s: torch.Tensor) -> torch.Tensor:
        """``c(s_i, s_j)`` ``(..., N, N)`` from species coordinates ``(..., N)``."""
        a, b = (s > 0).to(s.dtype), (s <= 0).to(s.dtype)
        return self.a_from_b * a.unsqueeze(-1) * b.unsqueeze(-2) + self.b_from_a * b.unsqueeze(-1) * a.unsqueeze(-2)

    def forward(self, x, t=None):
        x = self.check(x)
        n = x.shape[-2]
        p = x[..., :-1]
        z = p.unsqueeze(-3) - p.unsqueeze(-2)  # z_ij = p_j − p_i, (..., N, N, d−1)
        k = torch.exp(-z.pow(2).sum(-1) / (2 * self.length**2)) * self.coupling(x[..., -1])  # c_ii = 0
        force = (k @ p - k.sum(-1, keepdim=True) * p) / n
        return torch.cat([force, torch.zeros_like(x[..., -1:])], dim=-1)

    def extra_repr(self):
        return f"dim={self.dim}, a_from_b={self.a_from_b}, b_from_a={self.b_from_a}, length={self.length}"


@SYSTEMS.register("two_species")
class TwoSpecies(ParticleSystem):
    """Two species in the plane with a non-reciprocal (pursuit) interaction:

        dp_i = −λ p_i dt [+ ω J p_i dt for B's] + (1/N) Σ_j c(s_i, s_j) (p_j − p_i) e^{−|p_j − p_i|²/2ℓ²} dt + σ dW_i,

    observed as ``(x, y, species)`` with species = +1 (A) or −1 (B), constant. A is attracted by
    B (c(A, B) = ``a_from_b``); B is not affected by A (c(B, A) = ``b_from_a`` = 0 by default):
    B drives A and not the reverse. How far and how fast the A's move depends on how many B's
    there are, so populations with different mixing fractions move differently — a model
    without interaction cannot know how. Non-reciprocal (predator–prey, chaser–evader)
    interactions of this kind: Fruchart, Hanai, Littlewood & Vitelli (2021) *Nature* 592:363;
    Saha, Agudo-Canalejo & Golestanian (2020) *Phys. Rev. X* 10:041009.

    Args:
        fraction: share of species A in a population (default 0.5).
        a_from_b, b_from_a: couplings (default 4.0 and 0.0).
        length: interaction range ℓ (default 1.5).
        confinement: λ (default 0.1).
        b_rotation: ω, the B's own motion: they circle the origin at this angular velocity
            (default 0: they are only confined). A chases a moving target then.
        sigma: positional noise (default 0.1; the species coordinate has none).
        center_a, center_b: centres of the initial Gaussian clusters of A and B (default
            (−1.5, 0) and (1.5, 0)); spread: ``init_std`` (default 0.5).
    """

    name = "two_species"
    default_times = (0.0, 0.5, 1.0, 2.0, 3.0)

    def __init__(
        self,
        fraction: float = 0.5,
        a_from_b: float = 4.0,
        b_from_a: float = 0.0,
        length: float = 1.5,
        confinement: float = 0.1,
        sigma: float = 0.1,
        center_a=(-1.5, 0.0),
        center_b=(1.5, 0.0),
        init_std: float = 0.5,
        b_rotation: float = 0.0,
    ):
        self.fraction = float(fraction)
        if not 0.0 < self.fraction < 1.0:
            raise ValueError(f"fraction must be in (0, 1) (both species present), got {fraction!r}")
        self.centers = torch.tensor([list(center_a), list(center_b)], dtype=torch.float64)
        if self.centers.shape != (2, 2):
            raise ValueError("center_a and center_b must be 2-D points")
        self.init_std = positive(init_std, "init_std", allow_zero=True)
        inter = NonReciprocalPursuit(3, float(a_from_b), float(b_from_a), positive(length, "length"))
        if not isinstance(b_rotation, numbers.Real) or isinstance(b_rotation, bool) or not math.isfinite(b_rotation):
            raise ValueError(f"b_rotation must be a finite number (angular velocity), got {b_rotation!r}")
        intra = SpeciesConfinement(3, positive(confinement, "confinement", allow_zero=True), float(b_rotation))
        drift = MeanFieldDrift(intra, inter)
        sig = positive(sigma, "sigma", allow_zero=True)
        super().__init__(3, drift, torch.tensor([sig, sig, 0.0]), ["x", "y", "species"])

    def _sample_state(self, n, generator, batch, dtype):
        n_a = min(n - 1, max(1, round(self.fraction * n))) if n > 1 else 1
        species = torch.cat([torch.ones(n_a), -torch.ones(n - n_a)]).to(torch.float64)
        # exactly n_a A's, in random order (particles must be exchangeable: any prefix is a sample)
        species = species[torch.randperm(n, generator=generator)]
        centers = torch.where((species > 0)[:, None], self.centers[0], self.centers[1])
        p = centers + self.init_std * torch.randn(*batch, n, 2, generator=generator, dtype=torch.float64)
        s = species.expand(*batch, n).unsqueeze(-1)
        return torch.cat([p, s], dim=-1).to(dtype)


@SYSTEMS.register("two_species_control")
def two_species_control(**options) -> NonInteracting:
    """Non-interacting control of ``"two_species"``: confinement alone, same initial law."""
    return NonInteracting(TwoSpecies(**options))
