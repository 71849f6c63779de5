"""Radial pairwise forces with a learned force profile: the classical first-order particle model."""
from __future__ import annotations

import torch
from torch import nn

from .base import zero_output_layer
from .pairwise import PairwiseInteraction
from .._checks import check_positive_int


class RadialInteraction(PairwiseInteraction):
    """Central pairwise forces whose magnitude is a learned function of the distance:

        f_inter(x)_i = 1/(N−1) Σ_{j≠i} ψ(‖x_j − x_i‖) (x_j − x_i) / ‖x_j − x_i‖,

    ψ: [0, ∞) → ℝ an MLP of the distance (ψ > 0 attracts, ψ < 0 repels). This is the
    interaction family of first-order agent models (aggregation with Morse, Lennard-Jones or
    power-law potentials, opinion dynamics with distance-dependent influence, mean-field OU:
    ψ(r) = θ r), whose profile is learned non-parametrically from data in Lu, Maggioni, Tang &
    Zhong (2019) *PNAS* 116:14424. Unlike ``rbf`` (Gaussian weights times the displacement,
    which vanish at r → 0), ψ can stay finite at short range, where repulsion lives.

    The force is Newtonian (f_{i←j} = −f_{j←i}), equivariant under permutations, translations
    and rotations, and skips j = i. ``‖·‖`` is ``sqrt(‖dx‖² + eps²)`` so that coinciding
    particles have a zero, differentiable force.

    Args:
        dim: particle dimension d.
        width, depth: the profile MLP (1 → width → … → 1, SiLU).
        zero_init: start ψ ≡ 0 (the model starts as the Itô model; default True).
        eps: distance regulariser (model units).
        chunk_size: receiver rows per block (None: automatic).

    :meth:`pair_weights` is |ψ(r_ij)| / (N − 1) (the :class:`PairwiseInteraction` default),
    symmetric; :meth:`profile` evaluates ψ at given distances.
    """

    symmetric = True

    def __init__(self, dim: int, width: int = 32, depth: int = 2, zero_init: bool = True, eps: float = 1e-6,
                 chunk_size: int | None = None):
        super().__init__(dim, chunk_size=chunk_size)
        check_positive_int(width, "width")
        check_positive_int(depth, "depth")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        self.width, self.depth, self.eps = width, depth, float(eps)
        layers: list[nn.Module] = [nn.Linear(1, width), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(width, width), nn.SiLU()]
        layers.append(nn.Linear(width, 1))
        self.psi = nn.Sequential(*layers)
        self.zero_init = bool(zero_init)
        if self.zero_init:
            zero_output_layer(self.psi[-1])

    def profile(self, r: torch.Tensor) -> torch.Tensor:
        """ψ(r) for distances ``r`` ``(...)`` (model units) → ``(...)``."""
        return self.psi(r.unsqueeze(-1)).squeeze(-1)

    def phi(self, x_i: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
        """ψ(r) dx / r with r = sqrt(‖dx‖² + eps²), ``(..., C, N, d)``."""
        r = (dx.pow(2).sum(-1, keepdim=True) + self.eps ** 2).sqrt()
        return self.psi(r) * dx / r

    def pair_bytes(self, x: torch.Tensor) -> int:
        return (3 * self.width * self.depth + 4 * self.dim) * x.element_size()

    def extra_repr(self) -> str:
        return f"dim={self.dim}, width={self.width}, depth={self.depth}"
