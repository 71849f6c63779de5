"""Noisy Kuramoto oscillators (identical frequencies), observed as points (cos θ, sin θ) on the circle."""

from __future__ import annotations

import math

import torch

from mfsde.drifts import MeanFieldDrift
from mfsde.drifts._intra import IntraDrift
from mfsde.interactions._base import Interaction
from mfsde.solvers import Diffusion
from mfsde.systems._base import SYSTEMS, ParticleSystem, positive


def order_parameter(x: torch.Tensor) -> torch.Tensor:
    """Kuramoto order parameter r = |(1/N) Σ_j e^{iθ_j}| per population, shape ``x.shape[:-2]``.

    ``x`` is ``(..., N, 2)`` embedded points (cos θ, sin θ) or ``(..., N, 1)`` angles θ.
    r ≈ 0 (≈ √(π/4N) for N uniform angles) when incoherent, r → 1 when synchronised.
    """
    if x.shape[-1] == 1:
        x = torch.cat([torch.cos(x), torch.sin(x)], dim=-1)
    if x.shape[-1] != 2:
        raise ValueError(f"expected (..., N, 2) embedded points or (..., N, 1) angles, got shape {tuple(x.shape)}")
    return x.mean(-2).norm(dim=-1)


def stationary_order_parameter(K: float, D: float) -> float:
    """Order parameter of the stable stationary state of the mean-field limit (N → ∞).

    Stationary densities are von Mises, ∝ exp((K r / D) cos θ), with the self-consistency
    r = I₁(K r / D) / I₀(K r / D); r = 0 is the only solution for K ≤ K_c = 2D (incoherence),
    and for K > K_c the positive root is the stable synchronised state.
    """
    K, D = float(K), float(D)
    if K <= 2 * D:
        return 0.0

    def g(r: float) -> float:
        z = torch.tensor(K * r / D, dtype=torch.float64)
        return float(torch.special.i1e(z) / torch.special.i0e(z)) - r

    lo, hi = 1e-12, 1.0  # g(lo) > 0 (slope K/2D > 1 at 0), g(1) < 0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if g(mid) > 0 else (lo, mid)
    return 0.5 * (lo + hi)


def _rotate(y: torch.Tensor) -> torch.Tensor:
    """J y = (−y₂, y₁): the unit tangent (−sin θ, cos θ) at y = (cos θ, sin θ)."""
    return torch.stack([-y[..., 1], y[..., 0]], dim=-1)


# -- angle coordinates (d = 1): what sdeint integrates ------------------------------------------
class AngleRotation(IntraDrift):
    """f_intra(θ) = ω (common natural frequency)."""

    def __init__(self, omega: float):
        super().__init__(1)
        self.omega = float(omega)

    def forward(self, x, t=None):
        return torch.full_like(self.inputs(x, None), self.omega)


class _Coupling(Interaction):
    """Kuramoto coupling of strength ``K`` on states of dimension ``state_dim``."""

    symmetric = True
    state_dim = 1

    def __init__(self, K: float):
        super().__init__(self.state_dim)
        self.K = float(K)


class AngleCoupling(_Coupling):
    """f_inter(θ_i) = (K/N) Σ_j sin(θ_j − θ_i) = K (S̄ cos θ_i − C̄ sin θ_i), O(N) via C̄, S̄ = mean cos, sin."""

    def forward(self, x, t=None):
        x = self.check(x)
        c, s = torch.cos(x), torch.sin(x)
        return self.K * (s.mean(-2, keepdim=True) * c - c.mean(-2, keepdim=True) * s)


# -- embedded coordinates (d = 2): the observed state and the true drift -----------------------
class EmbeddedRotation(IntraDrift):
    """f_intra(y) = ω J y − D y: rotation plus the Itô correction of the embedding (y = (cos θ, sin θ))."""

    def __init__(self, omega: float, D: float):
        super().__init__(2)
        self.omega, self.D = float(omega), float(D)

    def forward(self, x, t=None):
        y = self.inputs(x, None)
        return self.omega * _rotate(y) - self.D * y


class EmbeddedCoupling(_Coupling):
    """f_inter(y_i) = K (S̄ c_i − C̄ s_i) J y_i with (C̄, S̄) the population mean of y = (c, s):
    the Kuramoto coupling (K/N) Σ_j sin(θ_j − θ_i) pushed along the circle's tangent J y_i."""

    state_dim = 2

    def forward(self, x, t=None):
        y = self.check(x)
        m = y.mean(-2, keepdim=True)
        speed = m[..., 1:] * y[..., :1] - m[..., :1] * y[..., 1:]  # (1/N) Σ_j sin(θ_j − θ_i)
        return self.K * speed * _rotate(y)


@SYSTEMS.register("kuramoto")
class NoisyKuramoto(ParticleSystem):
    """Noisy Kuramoto model of identical oscillators,

        dθ_i = ω dt + (K/N) Σ_j sin(θ_j − θ_i) dt + √(2D) dW_i,

    observed on the circle as y_i = (cos θ_i, sin θ_i) ∈ R² (``dim = 2``).

    Synchronisation (mean-field limit): the incoherent (uniform) state is stable for
    K < K_c = 2D and unstable above, where the order parameter r = |⟨e^{iθ}⟩| settles at the
    positive root of r = I₁(Kr/D)/I₀(Kr/D) (:func:`stationary_order_parameter`); with finite N
    the incoherent state has r = O(1/√N). References: Kuramoto (1984) *Chemical Oscillations,
    Waves, and Turbulence*; Sakaguchi (1988) *Prog. Theor. Phys.* 79:39; Strogatz & Mirollo
    (1991) *J. Stat. Phys.* 63:613; Bertini, Giacomin & Pakdaman (2010) *J. Stat. Phys.* 138:270
    (identical noisy rotators, K_c = 1 for D = 1/2 — the default here).

    Coordinates. On the circle the noise of y is rank one (one scalar dW_i moves both
    coordinates), so the system is *integrated in angles* (d = 1, additive noise √(2D);
    ``state_drift``, ``sigma``: exact in law) and *observed* in the embedding.
    ``drift`` is the exact Itô drift of the embedded process: by Itô's formula
    d cos θ = −sin θ dθ − ½ cos θ (2D) dt and d sin θ = cos θ dθ − ½ sin θ (2D) dt, i.e.

        dy_i = [ω J y_i − D y_i] dt + K (S̄ c_i − C̄ s_i) J y_i dt + √(2D) J y_i dW_i,

    with J y = (−y₂, y₁) and (C̄, S̄) the population mean of y. ``drift.intra`` is the first
    bracket (the −D y term is the Itô correction), ``drift.inter`` the coupling;
    :meth:`embedded_noise` gives the coefficient √(2D) J y of the single scalar dW_i, and
    :meth:`diffusion` the same as general (d × 1) noise for :func:`~mfsde.sdeint`.

    Args:
        K: coupling strength (default 2.0 = 2 K_c: synchronising).
        D: angular diffusion coefficient (default 0.5, so K_c = 1).
        omega: common natural frequency (default 0; a common ω only rotates the frame).
        theta_mean, theta_std: initial angles θ_0 ~ theta_mean + theta_std·N(0, 1) (wrapped
            normal, initial r = exp(−theta_std²/2)); ``theta_std=None`` draws uniform angles.
            Default 0, 1.0 (r_0 ≈ 0.61).
    """

    name = "kuramoto"
    default_times = (0.0, 1.0, 2.0, 4.0, 8.0)

    def __init__(
        self, K: float = 2.0, D: float = 0.5, omega: float = 0.0, theta_mean: float = 0.0, theta_std: float | None = 1.0
    ):
        self.K = positive(K, "K", allow_zero=True)
        self.D = positive(D, "D", allow_zero=True)
        self.omega = float(omega)
        self.theta_mean = float(theta_mean)
        self.theta_std = None if theta_std is None else positive(theta_std, "theta_std", allow_zero=True)
        drift = MeanFieldDrift(EmbeddedRotation(self.omega, self.D), EmbeddedCoupling(self.K))
        super().__init__(2, drift, math.sqrt(2 * self.D), ["cos_theta", "sin_theta"])
        self.angle_drift = MeanFieldDrift(AngleRotation(self.omega), AngleCoupling(self.K))

    @property
    def K_c(self) -> float:
        """Critical coupling 2D of the incoherent state."""
        return 2 * self.D

    @property
    def state_drift(self) -> MeanFieldDrift:
        return self.angle_drift

    def _to_state(self, x):
        if x.shape[-1] != 2:
            raise ValueError(f"Kuramoto populations are (..., N, 2) points (cos θ, sin θ), got shape {tuple(x.shape)}")
        return torch.atan2(x[..., 1:], x[..., :1])

    def _from_state(self, s):
        return torch.cat([torch.cos(s), torch.sin(s)], dim=-1)

    def _sample_state(self, n, generator, batch, dtype):
        if self.theta_std is None:
            theta = (2 * torch.rand(*batch, n, 1, generator=generator, dtype=torch.float64) - 1) * math.pi
        else:
            theta = self.theta_mean + self.theta_std * torch.randn(
                *batch, n, 1, generator=generator, dtype=torch.float64
            )
        return theta.to(dtype)

    def embedded_noise(self, y: torch.Tensor) -> torch.Tensor:
        """√(2D) J y: the coefficient of the scalar Brownian increment dW_i in the embedded SDE."""
        return math.sqrt(2 * self.D) * _rotate(y)

    def diffusion(self) -> Diffusion:
        """The embedded process's noise √(2D) J y dW_i: general noise of rank one (``noise_dim=1``);
        ``sdeint(self.drift, y0, ts, sigma=self.diffusion())`` integrates the observed SDE directly."""
        return Diffusion(lambda y, t=None: self.embedded_noise(y).unsqueeze(-1), noise_dim=1)

    def noise_config(self) -> dict:
        """Affine noise g(y) = A y with A = √(2D) J and one Brownian motion per particle, in data
        units: the model's noise is then the truth's (:mod:`mfsde.solvers`)."""
        c = math.sqrt(2 * self.D)
        return {
            "model.noise": {"name": "affine", "rank": 1, "bias": [[0.0], [0.0]], "slope": [[[0.0, -c]], [[c, 0.0]]]},
            "model.sigma_units": "data",
        }

    @staticmethod
    def order_parameter(x: torch.Tensor) -> torch.Tensor:
        return order_parameter(x)

    def stationary_order_parameter(self) -> float:
        return stationary_order_parameter(self.K, self.D)
