"""The template for pairwise kernels: write φ(x_i, x_j − x_i), get everything else.

    f_inter(x)_i = 1/(N−1) Σ_{j≠i} φ(x_i, x_j − x_i)

A kernel author subclasses :class:`PairwiseInteraction` and writes only :meth:`phi`; the base
does the self-exclusion (j ≠ i), the mean over the N − 1 sources, N = 1 (exact zeros), receiver
rows (:meth:`forward_rows`), chunking of the receivers to a memory budget with recomputation in
backward (no N × N tensor is kept), leading batch dimensions of independent populations, and
:meth:`pair_weights` = ‖φ(x_i, x_j − x_i)‖ / (N − 1), the size of j's contribution to i's drift.
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
from mfsde.interactions._base import Interaction, check_rows, off_diagonal_mask


class PairwiseInteraction(Interaction):
    """Base of kernels ``f_i = 1/(N−1) Σ_{j≠i} φ(x_i, x_j − x_i)`` (module docstring).

    Args:
        dim: particle dimension d.
        chunk_size: receiver rows per block (``None``: sized automatically to ~256 MiB of
            temporaries, from :meth:`pair_bytes`).

    Subclasses implement :meth:`phi`; they may override :meth:`pair_bytes` (temporaries per
    receiver–source pair, for the automatic block size) and, for speed, :meth:`_block` (the sum
    over sources for a block of receivers) as long as it equals the φ form.
    """

    has_weights = True
    self_excluding = True

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

    def _block(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Σ_{j≠i} φ(x_i, x_j − x_i) for receivers ``start:stop``: ``(..., C, d)``."""
        rows = slice(start, stop)
        msg = self._messages(x, rows)
        keep = off_diagonal_mask(rows, x.shape[-2], x.device).unsqueeze(-1).to(msg.dtype)
        return (msg * keep).sum(-2)

    def forward_rows(self, x: torch.Tensor, rows: slice, t: torch.Tensor | None = None) -> torch.Tensor:
        x = self.check(x)
        rows = check_rows(rows, x.shape[-2])
        return self._mean_over_sources(x, rows, self.pair_bytes(x), self._block)

    def pair_weights(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        """‖φ(x_i, x_j − x_i)‖ / (N − 1) as ``(..., 1, N, N)`` (zero diagonal)."""
        x = self.check(x)
        n = x.shape[-2]
        if n == 1:
            return x.new_zeros(*x.shape[:-2], 1, 1, 1)
        m = self._messages(x, slice(0, n)).norm(dim=-1) / (n - 1)
        return (m * off_diagonal_mask(slice(0, n), n, x.device)).unsqueeze(-3)

    @torch.no_grad()
    def reference(self, x: torch.Tensor) -> torch.Tensor:
        """f_inter by a plain loop over receivers and sources (slow; for tests): ``(..., N, d)``."""
        x = self.check(x)
        n = x.shape[-2]
        out = torch.zeros_like(x)
        for i in range(n):
            for j in range(n):
                if j != i:
                    xi = x[..., i : i + 1, :].unsqueeze(-2)
                    out[..., i, :] += self.phi(xi, (x[..., j, :] - x[..., i, :])[..., None, None, :])[..., 0, 0, :]
        return out / max(n - 1, 1)
