"""The mean-field drift f(x, ρ) = f_intra(x) + f_inter(x, ρ)."""

from __future__ import annotations

import torch
from torch import nn

from mfsde.interactions._base import Interaction
from mfsde.interactions._none import NoInteraction


class MeanFieldDrift(nn.Module):
    """Sum of a single-particle drift and an interaction drift over the empirical measure.

    ``forward(x, t=None)``: ``x`` ``(..., N, d)`` → ``(..., N, d)``. ``f(t, x)`` is the same call
    with torchsde's argument order. With ``inter`` a :class:`~mfsde.interactions.NoInteraction`
    the interaction is skipped entirely (exact Itô SDE, no wasted work).
    """

    def __init__(self, intra: nn.Module, inter: Interaction):
        super().__init__()
        if getattr(intra, "dim", None) != getattr(inter, "dim", None):
            raise ValueError(
                f"intra.dim={getattr(intra, 'dim', None)} and inter.dim={getattr(inter, 'dim', None)} differ"
            )
        self.intra, self.inter = intra, inter
        self.dim = inter.dim
        self._skip_inter = isinstance(inter, NoInteraction)

    def forward(self, x: torch.Tensor, t=None) -> torch.Tensor:
        out = self.intra(x, t)
        if self._skip_inter:
            return out
        return out + self.inter(x, t)

    def f(self, t, x: torch.Tensor) -> torch.Tensor:
        return self(x, t)

    def parts(self, x: torch.Tensor, t=None) -> dict[str, torch.Tensor]:
        """``{"intra": …, "inter": …, "total": …}`` each ``(..., N, d)`` (for analysis)."""
        a, b = self.intra(x, t), self.inter(x, t)
        return {"intra": a, "inter": b, "total": a + b}
