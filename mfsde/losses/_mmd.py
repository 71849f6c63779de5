"""Kernel MMD² and the energy distance between particle clouds."""

from __future__ import annotations

import torch
from torch import nn

from mfsde._checks import check_population
from mfsde.losses._registry import LOSSES
from mfsde.losses._sinkhorn import subsample


def _sqdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.pow(2).sum(-1, keepdim=True) + b.pow(2).sum(-1).unsqueeze(-2) - 2 * a @ b.transpose(-1, -2)).clamp_min(0)


@LOSSES.register("mmd")
class MMDLoss(nn.Module):
    """Biased (V-statistic) MMD² with a kernel on ``(..., N, d)`` vs ``(..., M, d)`` clouds.

    ``kernel="energy"``: k(a, b) = −‖a − b‖, giving the energy distance
    2E‖X−Y‖ − E‖X−X'‖ − E‖Y−Y'‖ (no bandwidth to tune). ``kernel="gaussian"``: a sum of
    Gaussian kernels with the given ``bandwidths``.
    """

    def __init__(
        self, kernel: str = "energy", bandwidths: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0), n_targets: int | None = None
    ):
        super().__init__()
        if kernel not in ("energy", "gaussian"):
            raise ValueError(f"kernel must be 'energy' or 'gaussian', got {kernel!r}")
        self.kernel, self.bandwidths, self.n_targets = kernel, tuple(bandwidths), n_targets

    def _k(self, a, b):
        d2 = _sqdist(a, b)
        if self.kernel == "energy":
            return -(d2 + 1e-12).sqrt()
        return sum(torch.exp(-d2 / (2 * h * h)) for h in self.bandwidths)

    def forward(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        check_population(x, "x")
        check_population(y, "y", x.shape[-1])
        y = subsample(y, self.n_targets, generator)
        return self._k(x, x).mean((-1, -2)) + self._k(y, y).mean((-1, -2)) - 2 * self._k(x, y).mean((-1, -2))


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Energy distance 2E‖X−Y‖ − E‖X−X'‖ − E‖Y−Y'‖ (≥ 0, zero iff the laws agree)."""
    return MMDLoss("energy")(x, y)
