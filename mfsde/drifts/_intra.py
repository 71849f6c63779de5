"""Single-particle drifts f_intra(x, t): each particle moved by its own state only."""

from __future__ import annotations

import torch
from torch import nn

from mfsde._checks import check_population, check_positive_int
from mfsde.registry import Registry

#: single-particle drift name → class; register with ``@INTRA_DRIFTS.register("name")``
INTRA_DRIFTS = Registry("intra drift")


def _time_column(x: torch.Tensor, t: torch.Tensor | float | None) -> torch.Tensor:
    if t is None:
        raise ValueError("this drift was built with time_input=True and needs t")
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    return torch.broadcast_to(t, x.shape[:-1]).unsqueeze(-1)


def mlp(in_dim: int, out_dim: int, width: int, depth: int, slope: float = 0.01) -> nn.Sequential:
    """``in → width → … → width → out`` with LeakyReLU(slope) between layers, bias everywhere."""
    layers: list[nn.Module] = []
    d = in_dim
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.LeakyReLU(slope)]
        d = width
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)


class ParticleInputs(nn.Module):
    """Shared base of functions of each particle's own state (and optionally the time): ``dim``,
    ``time_input`` and :meth:`inputs`, the ``(..., N, d [+1])`` input of a population."""

    def __init__(self, dim: int, time_input: bool = False):
        super().__init__()
        check_positive_int(dim, "dim")
        self.dim, self.time_input = dim, bool(time_input)

    def inputs(self, x: torch.Tensor, t) -> torch.Tensor:
        check_population(x, "x", self.dim, finite=False)
        return torch.cat([x, _time_column(x, t)], dim=-1) if self.time_input else x


class IntraDrift(ParticleInputs):
    """Base class: ``forward(x, t=None)`` maps ``(..., N, d)`` to ``(..., N, d)`` row by row."""


@INTRA_DRIFTS.register("mlp")
class MLPDrift(IntraDrift):
    """scIMF's f_intra: MLP d (+1 with time) → width → width → d, LeakyReLU 0.01."""

    def __init__(self, dim: int, width: int = 256, depth: int = 2, time_input: bool = False):
        super().__init__(dim, time_input)
        self.net = mlp(dim + self.time_input, dim, width, depth)

    def forward(self, x: torch.Tensor, t=None) -> torch.Tensor:
        return self.net(self.inputs(x, t))


@INTRA_DRIFTS.register("zero")
class ZeroDrift(IntraDrift):
    """f_intra ≡ 0 (pure interaction models)."""

    def forward(self, x: torch.Tensor, t=None) -> torch.Tensor:
        check_population(x, "x", self.dim, finite=False)
        return torch.zeros_like(x)


@INTRA_DRIFTS.register("linear")
class LinearDrift(IntraDrift):
    """f_intra(x) = x Aᵀ + b: a cheap drift (benchmarks, OU-type models)."""

    def __init__(self, dim: int, time_input: bool = False, bias: bool = True):
        super().__init__(dim, time_input)
        self.linear = nn.Linear(dim + self.time_input, dim, bias=bias)

    def forward(self, x: torch.Tensor, t=None) -> torch.Tensor:
        return self.linear(self.inputs(x, t))


@INTRA_DRIFTS.register("potential")
class PotentialDrift(IntraDrift):
    """f_intra(x) = −∇Φ_θ(x) with Φ_θ a scalar MLP (PRESCIENT / PI-SDE gradient flows).

    The gradient is taken with ``create_graph=True`` so training backpropagates through it.
    """

    def __init__(self, dim: int, width: int = 256, depth: int = 2, time_input: bool = False):
        super().__init__(dim, time_input)
        self.potential = mlp(dim + self.time_input, 1, width, depth)

    def energy(self, x: torch.Tensor, t=None) -> torch.Tensor:
        """Φ_θ at every particle, ``(..., N)``."""
        return self.potential(self.inputs(x, t)).squeeze(-1)

    def forward(self, x: torch.Tensor, t=None) -> torch.Tensor:
        with torch.enable_grad():
            xg = x if x.requires_grad else x.detach().requires_grad_(True)
            phi = self.energy(xg, t).sum()
            (grad,) = torch.autograd.grad(phi, xg, create_graph=torch.is_grad_enabled() or x.requires_grad)
        return -grad
