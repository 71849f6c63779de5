"""The zero interaction: the Itô-SDE ablation."""

from __future__ import annotations

import torch

from mfsde.interactions._base import INTERACTIONS, Interaction, check_rows


@INTERACTIONS.register("none")
class NoInteraction(Interaction):
    """f_inter ≡ 0 (exact zeros), so the mean-field SDE reduces to a plain Itô SDE."""

    symmetric = True
    has_weights = True

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        return torch.zeros_like(self.check(x))

    def forward_rows(self, x: torch.Tensor, rows: slice, t: torch.Tensor | None = None) -> torch.Tensor:
        """Zeros ``(..., len(rows), d)``."""
        x = self.check(x)
        return torch.zeros_like(x[..., check_rows(rows, x.shape[-2]), :])

    def pair_weights(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        x = self.check(x)
        n = x.shape[-2]
        return x.new_zeros(*x.shape[:-2], 1, n, n)
