"""The mean-field drift f(x, ρ) = f_intra(x) + f_inter(x, ρ)."""

from __future__ import annotations

import torch
from torch import nn

from mfsde.interactions._base import Interaction, check_log_w, require_weighted
from mfsde.interactions._none import NoInteraction


class MeanFieldDrift(nn.Module):
    """Sum of a single-particle drift and an interaction drift over the empirical measure.

    ``forward(x, t=None, log_w=None)``: ``x`` ``(..., N, d)`` → ``(..., N, d)``. ``f(t, x)`` is the
    same call with torchsde's argument order. With ``inter`` a
    :class:`~mfsde.interactions.NoInteraction` the interaction is skipped entirely (exact Itô
    SDE, no wasted work).

    Particle log-weights ``log_w`` ``(..., N)`` go to the interaction only (f_intra is
    per-particle); they need a kernel that declares ``weighted`` (``ValueError`` otherwise).
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

    def forward(self, x: torch.Tensor, t=None, log_w: torch.Tensor | None = None) -> torch.Tensor:
        if log_w is not None:
            require_weighted(self.inter)
        out = self.intra(x, t)
        if self._skip_inter:
            if log_w is not None:
                check_log_w(log_w, x)
            return out
        return out + self._inter(x, t, log_w)

    def f(self, t, x: torch.Tensor) -> torch.Tensor:
        return self(x, t)

    def parts(self, x: torch.Tensor, t=None, log_w: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``{"intra": …, "inter": …, "total": …}`` each ``(..., N, d)`` (for analysis), with
        particle log-weights ``log_w`` ``(..., N)`` for the interaction if given."""
        if log_w is not None:
            require_weighted(self.inter)
        a, b = self.intra(x, t), self._inter(x, t, log_w)
        return {"intra": a, "inter": b, "total": a + b}

    def _inter(self, x: torch.Tensor, t, log_w: torch.Tensor | None) -> torch.Tensor:
        """The interaction drift; without weights called as ``inter(x, t)`` (any kernel works)."""
        if log_w is None:
            return self.inter(x, t)
        return self.inter(x, t, log_w=log_w)
