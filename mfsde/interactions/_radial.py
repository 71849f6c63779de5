"""Radial pairwise forces with a learned force profile: the classical first-order particle model."""

from __future__ import annotations

import torch
from torch import nn

from mfsde._checks import check_positive_int
from mfsde.interactions._base import INTERACTIONS, zero_output_layer
from mfsde.interactions._pairwise import PairwiseInteraction

#: forms of the force profile ψ(r)
BASES = ("mlp", "linear")


@INTERACTIONS.register("radial")
class RadialInteraction(PairwiseInteraction):
    """Central pairwise forces whose magnitude is a learned function of the distance:

        f_inter(x)_i = 1/(N−1) Σ_{j≠i} ψ(‖x_j − x_i‖) (x_j − x_i) / ‖x_j − x_i‖,

    ψ: [0, ∞) → ℝ a learned function of the distance (ψ > 0 attracts, ψ < 0 repels). This is the
    interaction family of first-order agent models (aggregation with Morse, Lennard-Jones or
    power-law potentials, opinion dynamics with distance-dependent influence, mean-field OU:
    ψ(r) = θ r), whose profile is learned non-parametrically from data in Lu, Maggioni, Tang &
    Zhong (2019) *PNAS* 116:14424. Unlike ``rbf`` (Gaussian weights times the displacement,
    which vanish at r → 0), ψ can stay finite at short range, where repulsion lives.

    The force is Newtonian (f_{i←j} = −f_{j←i}), equivariant under permutations, translations
    and rotations, and skips j = i. ``‖·‖`` is ``sqrt(‖dx‖² + eps²)`` so that coinciding
    particles have a zero, differentiable force.

    Two forms of ψ (``basis``):

    * ``"mlp"`` (default): an MLP of r. Smooth, but evaluated on every pair, so it costs
      ~ width² multiply-adds per pair and dominates a training step.
    * ``"linear"``: piecewise linear in u = r / (1 + r) with ``n_basis`` equally spaced nodes on
      [0, 1) (the learned values are ψ at the nodes; as r → ∞, ψ tends to the last one). u
      covers every distance and packs the nodes where forces change fastest (short range:
      r ≈ 0.03 apart near 0, ≈ 0.5 at r = 3 with 32 nodes, in model units, i.e. relative to the
      data's fitted scale, not absolute). The drift is linear in the node values, the estimator
      class of Lu, Maggioni, Tang & Zhong; a pair costs a handful of operations. The node values
      are forces in model units, so they need a larger Adam step than a network's weights
      (``train.inter_lr``; the ``radial`` preset uses 0.1).

    Args:
        dim: particle dimension d.
        basis: ``"mlp"`` or ``"linear"`` (above).
        width, depth: the profile MLP (1 → width → … → 1, SiLU; ``basis="mlp"`` only; default
            32 and 2).
        n_basis: number of nodes of the piecewise-linear profile (≥ 2; ``basis="linear"`` only;
            default 32). An option of the other basis is refused, not ignored.
        zero_init: start ψ ≡ 0 (the model starts as the Itô model; default True).
        eps: distance regulariser (model units).
        chunk_size: receiver rows per block (None: automatic).

    :meth:`pair_weights` is |ψ(r_ij)| / (N − 1) (the :class:`PairwiseInteraction` default),
    symmetric; :meth:`profile` evaluates ψ at given distances. With particle log-weights
    ``log_w`` ``(..., N)`` the mean over j ≠ i is weighted by w_j (the
    :class:`PairwiseInteraction` default).
    """

    symmetric = True
    weighted = True

    def __init__(
        self,
        dim: int,
        width: int | None = None,
        depth: int | None = None,
        zero_init: bool = True,
        eps: float = 1e-6,
        chunk_size: int | None = None,
        basis: str = "mlp",
        n_basis: int | None = None,
    ):
        super().__init__(dim, chunk_size=chunk_size)
        if basis not in BASES:
            raise ValueError(f"basis must be one of {list(BASES)}, got {basis!r}")
        other = {"width": width, "depth": depth} if basis == "linear" else {"n_basis": n_basis}
        for key, value in other.items():
            if value is not None:
                raise ValueError(f"{key} applies to radial's other basis, not basis={basis!r}")
        width = 32 if width is None else width
        depth = 2 if depth is None else depth
        n_basis = 32 if n_basis is None else n_basis
        check_positive_int(width, "width")
        check_positive_int(depth, "depth")
        check_positive_int(n_basis, "n_basis")
        if basis == "linear" and n_basis < 2:
            raise ValueError(f"n_basis must be >= 2 for basis='linear', got {n_basis}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        self.width, self.depth, self.eps, self.basis, self.n_basis = width, depth, float(eps), basis, n_basis
        self.zero_init = bool(zero_init)
        if basis == "mlp":
            layers: list[nn.Module] = [nn.Linear(1, width), nn.SiLU()]
            for _ in range(depth - 1):
                layers += [nn.Linear(width, width), nn.SiLU()]
            layers.append(nn.Linear(width, 1))
            self.psi = nn.Sequential(*layers)
            if self.zero_init:
                zero_output_layer(self.psi[-1])
        else:
            # ψ at the nodes; without zero_init a small random profile (like an MLP's initial output)
            init = torch.zeros(n_basis) if self.zero_init else 0.1 * torch.randn(n_basis)
            self.nodes = nn.Parameter(init)

    def profile(self, r: torch.Tensor) -> torch.Tensor:
        """ψ(r) for distances ``r`` ``(...)`` (model units) → ``(...)``."""
        if self.basis == "mlp":
            return self.psi(r.unsqueeze(-1)).squeeze(-1)
        s = r / (1 + r) * (self.n_basis - 1)  # position on the node grid, in [0, n_basis − 1)
        k = s.detach().floor().clamp(0, self.n_basis - 2).long()
        frac = s - k.to(s.dtype)
        w = self.nodes.to(r.dtype)
        return w[k] * (1 - frac) + w[k + 1] * frac

    def phi(self, x_i: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
        """ψ(r) dx / r with r = sqrt(‖dx‖² + eps²), ``(..., C, N, d)``."""
        r = (dx.pow(2).sum(-1) + self.eps**2).sqrt()
        return (self.profile(r) / r).unsqueeze(-1) * dx

    def pair_bytes(self, x: torch.Tensor) -> int:
        per_pair = 3 * self.width * self.depth if self.basis == "mlp" else 12  # the profile's temporaries
        return (per_pair + 4 * self.dim) * x.element_size()  # + dx, the message, the mask, the sum

    def extra_repr(self) -> str:
        shape = f"width={self.width}, depth={self.depth}" if self.basis == "mlp" else f"n_basis={self.n_basis}"
        return f"dim={self.dim}, basis={self.basis!r}, {shape}"
