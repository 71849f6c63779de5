"""Symmetric radial-basis-function kernel interaction."""

from __future__ import annotations

import math

import torch
from torch import nn

from mfsde._checks import check_positive_int
from mfsde.interactions._base import INTERACTIONS, check_log_w, source_weights
from mfsde.interactions._pairwise import PairwiseInteraction


@INTERACTIONS.register("rbf")
class RBFInteraction(PairwiseInteraction):
    """Pairwise forces along displacements, weighted by Gaussian kernels of learnable width.

        f_inter(x)_i = 1/(N−1) Σ_{j≠i} Σ_m exp(−‖x_j − x_i‖² / (2 h_m²)) · A_m (x_j − x_i)

    with M kernels of learnable bandwidths h_m (stored as log h_m) and learnable d×d
    matrices A_m (``scalar_force=True``: one scalar a_m per kernel, A_m = a_m I, which makes
    the pairwise force Newtonian: f_{i←j} = −f_{j←i}). Positive a_m attract, negative repel;
    several widths let it express short-range repulsion with long-range attraction (Morse-like).
    The weights k(x_i, x_j) are symmetric, the sum skips j = i, and the whole is equivariant
    under permutations and translations.

    Args:
        dim: particle dimension d.
        n_kernels: number M of bandwidths.
        bandwidth: initial middle bandwidth; the M initial widths are log-spaced over
            [bandwidth/2, 2·bandwidth] (one kernel: exactly ``bandwidth``).
        scalar_force: use scalar amplitudes a_m instead of d×d matrices A_m.
        chunk_size: receiver rows per block (None: automatic, O(N·chunk) memory).

    :meth:`pair_weights` returns the kernel values exp(−‖x_i−x_j‖²/2h_m²) (diagonal zeroed)
    as ``(..., M, N, N)``, one "head" per bandwidth. A :class:`PairwiseInteraction` with
    φ(x_i, dx) = Σ_m k_m(dx) A_m dx (:meth:`phi`), evaluated by a faster matrix form, also with
    particle log-weights ``log_w`` ``(..., N)`` (weighted mean over j ≠ i).
    """

    symmetric = True
    has_weights = True
    weighted = True

    def __init__(
        self,
        dim: int,
        n_kernels: int = 3,
        bandwidth: float = 1.0,
        scalar_force: bool = False,
        chunk_size: int | None = None,
    ):
        super().__init__(dim, chunk_size=chunk_size)
        check_positive_int(n_kernels, "n_kernels")
        if not bandwidth > 0:
            raise ValueError(f"bandwidth must be > 0, got {bandwidth!r}")
        self.n_kernels, self.scalar_force = n_kernels, bool(scalar_force)
        spread = torch.linspace(-math.log(2), math.log(2), n_kernels) if n_kernels > 1 else torch.zeros(1)
        self.log_bandwidth = nn.Parameter(math.log(bandwidth) + spread)
        if self.scalar_force:
            self.amplitude = nn.Parameter(torch.zeros(n_kernels))
        else:
            self.amplitude = nn.Parameter(0.01 * torch.randn(n_kernels, dim, dim) / math.sqrt(dim))

    def phi(self, x_i: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
        """Σ_m exp(−‖dx‖² / 2h_m²) A_m dx, ``(..., C, N, d)``."""
        inv = torch.exp(-2 * self.log_bandwidth) / 2  # (M,)
        k = torch.exp(-dx.pow(2).sum(-1).unsqueeze(-1) * inv)  # (..., C, N, M)
        if self.scalar_force:
            return torch.einsum("...cnm,m,...cnd->...cnd", k, self.amplitude, dx)
        return torch.einsum("...cnm,med,...cnd->...cne", k, self.amplitude, dx)

    def pair_bytes(self, x: torch.Tensor) -> int:
        return self.n_kernels * x.element_size() * 4

    def _kernels(self, xi: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``(..., M, C, N)`` kernel values between receivers ``xi`` (..., C, d) and all ``x``."""
        # ‖a−b‖² = ‖a‖² + ‖b‖² − 2a·b (gradient-safe at r = 0, unlike cdist's sqrt)
        d2 = xi.pow(2).sum(-1, keepdim=True) + x.pow(2).sum(-1).unsqueeze(-2) - 2 * xi @ x.transpose(-1, -2)
        d2 = d2.clamp_min(0).unsqueeze(-3)  # (..., 1, C, N)
        inv = torch.exp(-2 * self.log_bandwidth).view(-1, 1, 1) / 2
        return torch.exp(-d2 * inv)

    def pair_weights(
        self, x: torch.Tensor, t: torch.Tensor | None = None, log_w: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Kernel values ``(..., M, N, N)`` (diagonal zeroed); with log-weights ``log_w``
        ``(..., N)`` source j's column is scaled by w_j / mean_{k≠i} w_k (1 for equal weights)."""
        x = self.check(x)
        n = x.shape[-2]
        w = self._kernels(x, x)
        if log_w is not None:
            return w * (source_weights(check_log_w(log_w, x), slice(0, n)) * (n - 1)).unsqueeze(-3)
        return w * (1 - torch.eye(n, dtype=x.dtype, device=x.device))

    def _block(self, x: torch.Tensor, start: int, stop: int, log_w: torch.Tensor | None = None) -> torch.Tensor:
        """Σ_{j} Σ_m k_m(x_i, x_j) A_m (x_j − x_i) for receivers ``start:stop``: ``(..., C, d)``
        (with log-weights ``log_w`` ``(..., N)``: the weighted mean over j ≠ i)."""
        xi = x[..., start:stop, :]
        k = self._kernels(xi, x)  # (..., M, C, N); the j = i term has r = 0 and adds nothing
        if log_w is not None:
            k = k * source_weights(log_w, slice(start, stop)).unsqueeze(-3)
        # Σ_j k_ij (x_j − x_i) = K x − (Σ_j k_ij) x_i, per kernel m: (..., M, C, d)
        disp = k @ x.unsqueeze(-3) - k.sum(-1, keepdim=True) * xi.unsqueeze(-3)
        if self.scalar_force:
            return torch.einsum("...mcd,m->...cd", disp, self.amplitude)
        return torch.einsum("...mcd,med->...ce", disp, self.amplitude)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, n_kernels={self.n_kernels}, scalar_force={self.scalar_force}"
