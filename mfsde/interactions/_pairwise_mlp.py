"""Pairwise MLP φ_θ(x_i, x_j) averaged over j ≠ i: the general McKean–Vlasov form."""

from __future__ import annotations

import torch
from torch import nn

from mfsde._checks import check_positive_int
from mfsde.interactions._base import (
    INTERACTIONS,
    check_log_w,
    check_rows,
    off_diagonal_mask,
    require_weighted,
    source_weights,
    zero_output_layer,
)
from mfsde.interactions._pairwise import PairwiseInteraction


@INTERACTIONS.register("pairwise_mlp")
class PairwiseMLPInteraction(PairwiseInteraction):
    """f_inter(x)_i = 1/(N−1) Σ_{j≠i} φ_θ(x_i, x_j − x_i), φ_θ an MLP on the pair.

    The first layer acts on the concatenation [x_i, x_j − x_i]; it is computed as
    ``P x_i + Q x_j + b`` from per-particle projections, so a block of C receivers costs
    O(C·N·width) memory, never more (rows are processed ``chunk_size`` at a time).

    Args:
        dim: particle dimension d.
        width: hidden width of φ.
        depth: number of hidden layers (≥ 1).
        relative: feed only x_j − x_i (translation-invariant φ) instead of [x_i, x_j − x_i].
        chunk_size: receiver rows per block (None: automatic, ~256 MiB of temporaries).
        zero_init: start φ's output layer at zero, so f_inter ≡ 0 at initialisation (the model
            starts as the Itô model).

    :meth:`pair_weights` returns ‖φ(x_i, x_j)‖ / (N−1) as ``(..., 1, N, N)`` (diagonal zero):
    the magnitude of j's contribution to i's drift (the :class:`PairwiseInteraction` default).
    With particle log-weights ``log_w`` ``(..., N)`` the mean over j ≠ i is weighted by w_j.
    """

    weighted = True

    def __init__(
        self,
        dim: int,
        width: int = 64,
        depth: int = 2,
        relative: bool = False,
        chunk_size: int | None = None,
        zero_init: bool = False,
    ):
        super().__init__(dim, chunk_size=chunk_size)
        check_positive_int(width, "width")
        check_positive_int(depth, "depth")
        self.width, self.depth, self.relative = width, depth, bool(relative)
        self.first_self = None if relative else nn.Linear(dim, width, bias=False)
        self.first_rel = nn.Linear(dim, width)
        layers: list[nn.Module] = [nn.LeakyReLU(0.01)]
        for _ in range(depth - 1):
            layers += [nn.Linear(width, width), nn.LeakyReLU(0.01)]
        layers.append(nn.Linear(width, dim))
        self.rest = nn.Sequential(*layers)
        self.zero_init = bool(zero_init)
        if self.zero_init:
            zero_output_layer(self.rest[-1])

    def phi(self, x_i: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
        """φ([x_i, dx]) (``relative``: φ(dx)), ``(..., C, N, d)``."""
        h = self.first_rel(dx)
        if self.first_self is not None:
            h = h + self.first_self(x_i)
        return self.rest(h)

    def pair_bytes(self, x: torch.Tensor) -> int:
        return (2 * self.width + self.dim) * x.element_size() * 3

    def _messages(self, x: torch.Tensor, rows: slice, pr: torch.Tensor | None = None) -> torch.Tensor:
        """φ(x_i, x_j − x_i) for receivers ``rows``: ``(..., C, N, d)``, from per-particle
        projections (``pr`` = ``first_rel(x)`` ``(..., N, w)`` if already computed)."""
        # W [x_i, x_j − x_i] + b = (W_s − W_r) x_i + W_r x_j + b
        if pr is None:
            pr = self.first_rel(x)  # (..., N, w), includes bias
        wr = self.first_rel.weight
        pi = -(x[..., rows, :] @ wr.T)
        if self.first_self is not None:
            pi = pi + self.first_self(x[..., rows, :])
        h = pi.unsqueeze(-2) + pr.unsqueeze(-3)  # (..., C, N, w)
        return self.rest(h)

    def _block(
        self, x: torch.Tensor, pr: torch.Tensor, start: int, stop: int, log_w: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Σ_{j≠i} φ(x_i, x_j − x_i) for receivers ``start:stop``: ``(..., C, d)`` (with log-weights
        ``log_w`` ``(..., N)``: the weighted mean Σ_{j≠i} w_j φ(x_i, x_j − x_i) / Σ_{j≠i} w_j)."""
        rows = slice(start, stop)
        msg = self._messages(x, rows, pr)  # (..., C, N, d)
        if log_w is not None:
            return (msg * source_weights(log_w, rows).unsqueeze(-1)).sum(-2)
        keep = off_diagonal_mask(rows, x.shape[-2], x.device).unsqueeze(-1).to(msg.dtype)
        return (msg * keep).sum(-2)

    def forward_rows(
        self, x: torch.Tensor, rows: slice, t: torch.Tensor | None = None, log_w: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Drift of the receivers ``rows`` ``(..., C, d)`` from all sources ``x`` ``(..., N, d)``
        (log-weights ``log_w`` ``(..., N)`` if given), in blocks of ``chunk_size`` rows
        (O(N·chunk·width) memory; recomputed in backward)."""
        x = self.check(x)
        rows = check_rows(rows, x.shape[-2])
        if log_w is None:
            return self._mean_over_sources(x, rows, self.pair_bytes(x), self._block, self.first_rel(x))
        require_weighted(self)
        log_w = check_log_w(log_w, x)
        return self._mean_over_sources(x, rows, self.pair_bytes(x), self._block, self.first_rel(x), log_w=log_w)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, width={self.width}, depth={self.depth}, relative={self.relative}"
