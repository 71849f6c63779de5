"""The zero interaction: the Itô-SDE ablation."""

from __future__ import annotations

import torch

from mfsde.interactions._base import INTERACTIONS, Interaction, check_log_w, check_rows


@INTERACTIONS.register("none")
class NoInteraction(Interaction):
    """f_inter ≡ 0 (exact zeros), so the mean-field SDE reduces to a plain Itô SDE; particle
    log-weights ``log_w`` ``(..., N)`` are checked and change nothing."""

    symmetric = True
    has_weights = True
    weighted = True

    def forward(
        self, x: torch.Tensor, t: torch.Tensor | None = None, log_w: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Zeros ``(..., N, d)``."""
        x = self.check(x)
        if log_w is not None:
            check_log_w(log_w, x)
        return torch.zeros_like(x)

    def forward_rows(
        self, x: torch.Tensor, rows: slice, t: torch.Tensor | None = None, log_w: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Zeros ``(..., len(rows), d)``."""
        x = self.check(x)
        if log_w is not None:
            check_log_w(log_w, x)
        return torch.zeros_like(x[..., check_rows(rows, x.shape[-2]), :])

    def pair_weights(
        self, x: torch.Tensor, t: torch.Tensor | None = None, log_w: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Zeros ``(..., 1, N, N)``."""
        x = self.check(x)
        if log_w is not None:
            check_log_w(log_w, x)
        n = x.shape[-2]
        return x.new_zeros(*x.shape[:-2], 1, n, n)
