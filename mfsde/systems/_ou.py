"""Mean-field Ornstein–Uhlenbeck system with closed-form Gaussian marginals."""

from __future__ import annotations

import torch

from mfsde._checks import check_positive_int
from mfsde.drifts import MeanFieldDrift
from mfsde.drifts._intra import IntraDrift
from mfsde.interactions._base import Interaction
from mfsde.interactions._none import NoInteraction
from mfsde.systems._base import SYSTEMS, ParticleSystem, as_tensor, diagonal_sigma, square_matrix


class LinearRestoring(IntraDrift):
    """f_intra(x) = −A x (row-wise ``−x Aᵀ``)."""

    def __init__(self, A: torch.Tensor):
        super().__init__(A.shape[0])
        self.register_buffer("A", A.clone())

    def forward(self, x: torch.Tensor, t=None) -> torch.Tensor:
        x = self.inputs(x, None)
        return -x @ self.A.to(x.dtype).T


class MeanReversion(Interaction):
    """f_inter(x_i, ρ^N) = −K (x_i − x̄) = −(K/N) Σ_j (x_i − x_j): attraction to the population mean."""

    symmetric = True
    has_weights = True

    def __init__(self, K: torch.Tensor):
        super().__init__(K.shape[0])
        self.register_buffer("K", K.clone())

    def forward(self, x: torch.Tensor, t=None) -> torch.Tensor:
        x = self.check(x)
        return -(x - x.mean(-2, keepdim=True)) @ self.K.to(x.dtype).T

    def pair_weights(self, x: torch.Tensor, t=None) -> torch.Tensor:
        x = self.check(x)
        n = x.shape[-2]
        w = x.new_full((n, n), 1.0 / n).fill_diagonal_(0.0)
        return w.expand(*x.shape[:-2], 1, n, n)


@SYSTEMS.register("ou")
class MeanFieldOU(ParticleSystem):
    """Linear McKean–Vlasov (mean-field Ornstein–Uhlenbeck) system

        dX = −A X dt − K (X − E X) dt + Σ dW,   X_0 ~ N(m0, C0),

    simulated as N particles with E X replaced by the population mean. Its marginals are
    Gaussian N(m(t), C(t)) with (the K term cancels in the mean)

        m' = −A m,   C' = −(A+K) C − C (A+K)ᵀ + Σ Σᵀ,

    available in closed form from :meth:`exact_moments` (for the N-particle system they hold up
    to O(1/N): the population mean carries a 1/N share of the noise). This is the classic
    Gaussian test case of mean-field limits: Dawson (1983) *J. Stat. Phys.* 31:29 ("Critical
    dynamics and fluctuations for a mean-field model of cooperative behavior"), Kasonga (1990)
    *SIAM J. Appl. Math.* 50:865 (maximum-likelihood estimation for the linear interacting
    system), Sharrock, Kantas, Parpas & Pavliotis (2023) *Stoch. Proc. Appl.* (online parameter
    estimation for McKean–Vlasov SDEs, with this linear model as a test case).

    Args:
        dim: d (default 2).
        A: restoring matrix; a number (→ A·I), a ``(d,)`` diagonal or a ``(d, d)`` matrix. Default
            (d = 2): ``[[0.5, -1], [1, 0.5]]`` — contraction at rate 0.5 plus a rotation, so the mean
            spirals to 0; other d: 0.5·I.
        K: interaction (mean-reversion) matrix, same forms as A; default 1.0·I. K = 0 gives the
            non-interacting control (``drift.inter`` is then an exact :class:`NoInteraction`).
        sigma: diagonal Σ (number or ``(d,)``; mfsde's solvers take diagonal noise). Default 0.5.
        m0: initial mean; default ``(2, 0, …, 0)``.
        C0: initial covariance (number, ``(d,)`` or ``(d, d)`` PSD); default 0.1·I.
    """

    name = "ou"
    default_times = (0.0, 0.5, 1.0, 2.0, 4.0)

    def __init__(self, dim: int = 2, A=None, K=1.0, sigma=0.5, m0=None, C0=0.1):
        check_positive_int(dim, "dim")
        if A is None:
            A = [[0.5, -1.0], [1.0, 0.5]] if dim == 2 else 0.5
        self.A = square_matrix(A, dim, "A")
        self.K = square_matrix(K, dim, "K")
        self.m0 = torch.zeros(dim, dtype=torch.float64) if m0 is None else as_tensor(m0).reshape(-1)
        if m0 is None:
            self.m0[0] = 2.0
        if self.m0.shape != (dim,):
            raise ValueError(f"m0 must have {dim} entries, got {tuple(self.m0.shape)}")
        self.C0 = square_matrix(C0, dim, "C0")
        if not torch.allclose(self.C0, self.C0.T, atol=1e-10):
            raise ValueError("C0 must be symmetric")
        evals, evecs = torch.linalg.eigh(self.C0)
        if (evals < -1e-10).any():
            raise ValueError(f"C0 must be positive semi-definite, eigenvalues {evals.tolist()}")
        self._C0_sqrt = evecs * evals.clamp(min=0).sqrt()  # C0 = S Sᵀ
        sig = diagonal_sigma(sigma, dim)
        inter = NoInteraction(dim) if bool((self.K == 0).all()) else MeanReversion(self.K.float())
        drift = MeanFieldDrift(LinearRestoring(self.A.float()), inter)
        super().__init__(dim, drift, sig)
        if isinstance(inter, NoInteraction):
            self.name = "ou_control"

    @property
    def Q(self) -> torch.Tensor:
        """Σ Σᵀ (float64, diagonal)."""
        s = torch.as_tensor(self.sigma, dtype=torch.float64)
        return torch.diag(s.pow(2).expand(self.dim))

    def _sample_state(self, n, generator, batch, dtype):
        z = torch.randn(*batch, n, self.dim, generator=generator, dtype=torch.float64)
        return (self.m0 + z @ self._C0_sqrt.T).to(dtype)

    def exact_moments(self, ts) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean ``(T, d)`` and covariance ``(T, d, d)`` (float64) of the McKean–Vlasov law at ``ts``.

        m(t) = e^{−A t} m0 and C(t) = e^{−B t} C0 e^{−Bᵀ t} + ∫_0^t e^{−B s} Σ Σᵀ e^{−Bᵀ s} ds with
        B = A + K; the integral from Van Loan's block exponential
        exp([[−B, ΣΣᵀ], [0, Bᵀ]] t) = [[e^{−Bt}, G], [0, e^{Bᵀt}]], ∫ = G e^{−Bᵀ t}.
        """
        t = torch.as_tensor(ts, dtype=torch.float64).reshape(-1) - self.t0
        if (t < 0).any():
            raise ValueError(f"times must be >= t0 = {self.t0}")
        d = self.dim
        B = self.A + self.K
        mean = torch.einsum("tij,j->ti", torch.linalg.matrix_exp(-self.A * t[:, None, None]), self.m0)
        M = torch.zeros(2 * d, 2 * d, dtype=torch.float64)
        M[:d, :d], M[:d, d:], M[d:, d:] = -B, self.Q, B.T
        F = torch.linalg.matrix_exp(M * t[:, None, None])
        E, G = F[:, :d, :d], F[:, :d, d:]
        cov = E @ self.C0 @ E.transpose(-1, -2) + G @ E.transpose(-1, -2)
        return mean, 0.5 * (cov + cov.transpose(-1, -2))

    def without_interaction(self) -> MeanFieldOU:
        """The control: K = 0 (a plain OU process with the same A, Σ and initial law)."""
        return MeanFieldOU(self.dim, self.A, 0.0, self.sigma, self.m0, self.C0)


@SYSTEMS.register("ou_control")
def ou_control(dim: int = 2, A=None, sigma=0.5, m0=None, C0=0.1) -> MeanFieldOU:
    """Non-interacting control of ``"ou"``: the same system with K = 0 (independent OU particles)."""
    return MeanFieldOU(dim=dim, A=A, K=0.0, sigma=sigma, m0=m0, C0=C0)
