"""The template for pairwise kernels: write φ(x_i, x_j − x_i), get everything else.

    f_inter(x)_i = 1/(N−1) Σ_{j≠i} φ(x_i, x_j − x_i)

A kernel author subclasses :class:`PairwiseInteraction` and writes only :meth:`phi`; the base
does the self-exclusion (j ≠ i), the mean over the N − 1 sources, N = 1 (exact zeros), receiver
rows (:meth:`forward_rows`), chunking of the receivers to a memory budget with recomputation in
backward (no N × N tensor is kept), leading batch dimensions of independent populations,
weighted particles (``log_w`` ``(..., N)``: the weighted mean
Σ_{j≠i} w_j φ(x_i, x_j − x_i) / Σ_{j≠i} w_j), and :meth:`pair_weights` =
‖φ(x_i, x_j − x_i)‖ / (N − 1), the size of j's contribution to i's drift.
Register it by name and it works in configs (and with ``mfsde --plugin MODULE`` on the CLI):

>>> from mfsde.interactions import INTERACTIONS, PairwiseInteraction
>>> @INTERACTIONS.register("alignment")
... class Alignment(PairwiseInteraction):
...     def __init__(self, dim, strength=1.0, chunk_size=None):
...         super().__init__(dim, chunk_size=chunk_size)
...         self.strength = torch.nn.Parameter(torch.tensor(float(strength)))
...     def phi(self, x_i, dx):
...         return self.strength * torch.exp(-dx.pow(2).sum(-1, keepdim=True)) * dx
>>> mfsde.preset("scimf", dim=4).override(**{"model.inter.name": "alignment"})

:func:`mfsde.testing.check_interaction` checks a kernel against the contract (and against
:meth:`PairwiseInteraction.reference`, a plain loop over φ).
"""

from __future__ import annotations

import torch

from mfsde._checks import check_positive_int
from mfsde.interactions._base import (
    Interaction,
    check_log_w,
    check_rows,
    off_diagonal_mask,
    require_weighted,
    source_weights,
)


class PairwiseInteraction(Interaction):
    """Base of kernels ``f_i = 1/(N−1) Σ_{j≠i} φ(x_i, x_j − x_i)`` (module docstring).

    Args:
        dim: particle dimension d.
        chunk_size: receiver rows per block (``None``: sized automatically to ~256 MiB of
            temporaries, from :meth:`pair_bytes`).

    Subclasses implement :meth:`phi`; they may override :meth:`pair_bytes` (temporaries per
    receiver–source pair, for the automatic block size) and, for speed, :meth:`_block` (the sum
    over sources for a block of receivers) as long as it equals the φ form, with and without
    ``log_w`` (an override without a ``log_w`` parameter makes the kernel not ``weighted``).

    With particle log-weights ``log_w`` ``(..., N)``:
    f_i = Σ_{j≠i} w_j φ(x_i, x_j − x_i) / Σ_{j≠i} w_j (see :func:`~mfsde.interactions._base.source_weights`).
    """

    has_weights = True
    self_excluding = True
    weighted = True

    def __init__(self, dim: int, chunk_size: int | None = None):
        super().__init__(dim)
        self.chunk_size = check_positive_int(chunk_size, "chunk_size", allow_none=True)

    def phi(self, x_i: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
        """The force on receiver i from source j: ``x_i`` ``(..., C, 1, d)`` (receivers) and
        ``dx = x_j − x_i`` ``(..., C, N, d)`` → ``(..., C, N, d)`` (broadcast over sources)."""
        raise NotImplementedError(f"{type(self).__name__} must implement phi(x_i, dx)")

    def pair_bytes(self, x: torch.Tensor) -> int:
        """Bytes of temporaries per receiver–source pair and population (default: 8 d-vectors)."""
        return 8 * self.dim * x.element_size()

    def _messages(self, x: torch.Tensor, rows: slice) -> torch.Tensor:
        xi = x[..., rows, :].unsqueeze(-2)  # (..., C, 1, d)
        return self.phi(xi, x.unsqueeze(-3) - xi)  # (..., C, N, d)

    def _block(self, x: torch.Tensor, start: int, stop: int, log_w: torch.Tensor | None = None) -> torch.Tensor:
        """Σ_{j≠i} φ(x_i, x_j − x_i) for receivers ``start:stop``: ``(..., C, d)`` (with log-weights
        ``log_w`` ``(..., N)``: the weighted mean Σ_{j≠i} w_j φ(x_i, x_j − x_i) / Σ_{j≠i} w_j)."""
        rows = slice(start, stop)
        msg = self._messages(x, rows)
        if log_w is not None:
            return (msg * source_weights(log_w, rows).unsqueeze(-1)).sum(-2)
        keep = off_diagonal_mask(rows, x.shape[-2], x.device).unsqueeze(-1).to(msg.dtype)
        return (msg * keep).sum(-2)

    def forward_rows(
        self, x: torch.Tensor, rows: slice, t: torch.Tensor | None = None, log_w: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = self.check(x)
        rows = check_rows(rows, x.shape[-2])
        if log_w is None:
            return self._mean_over_sources(x, rows, self.pair_bytes(x), self._block)
        require_weighted(self)
        log_w = check_log_w(log_w, x)
        return self._mean_over_sources(x, rows, self.pair_bytes(x), self._block, log_w=log_w)

    def pair_weights(
        self, x: torch.Tensor, t: torch.Tensor | None = None, log_w: torch.Tensor | None = None
    ) -> torch.Tensor:
        """‖φ(x_i, x_j − x_i)‖ / (N − 1) as ``(..., 1, N, N)`` (zero diagonal); with log-weights
        ``log_w`` ``(..., N)``: ‖φ(x_i, x_j − x_i)‖ · w_j / Σ_{k≠i} w_k."""
        x = self.check(x)
        n = x.shape[-2]
        if log_w is not None:
            log_w = check_log_w(log_w, x)
        if n == 1:
            return x.new_zeros(*x.shape[:-2], 1, 1, 1)
        if log_w is not None:
            return (self._messages(x, slice(0, n)).norm(dim=-1) * source_weights(log_w, slice(0, n))).unsqueeze(-3)
        m = self._messages(x, slice(0, n)).norm(dim=-1) / (n - 1)
        return (m * off_diagonal_mask(slice(0, n), n, x.device)).unsqueeze(-3)

    @torch.no_grad()
    def reference(self, x: torch.Tensor, log_w: torch.Tensor | None = None) -> torch.Tensor:
        """f_inter by a plain loop over receivers and sources (slow; for tests): ``(..., N, d)``;
        with log-weights ``log_w`` ``(..., N)`` the plain weighted mean, w_j = exp(log_w_j − max_k log_w_k)."""
        x = self.check(x)
        n = x.shape[-2]
        out = torch.zeros_like(x)
        w = None
        if log_w is not None:
            top = check_log_w(log_w, x).amax(-1, keepdim=True)
            w = torch.exp(log_w.to(x.dtype) - torch.where(torch.isfinite(top), top, torch.zeros_like(top)))
            total = torch.zeros_like(w)
        for i in range(n):
            for j in range(n):
                if j != i:
                    xi = x[..., i : i + 1, :].unsqueeze(-2)
                    phi = self.phi(xi, (x[..., j, :] - x[..., i, :])[..., None, None, :])[..., 0, 0, :]
                    if w is None:
                        out[..., i, :] += phi
                    else:
                        out[..., i, :] += w[..., j, None] * phi
                        total[..., i] += w[..., j]
        if w is None:
            return out / max(n - 1, 1)
        return out / torch.where(total > 0, total, torch.ones_like(total)).unsqueeze(-1)
