"""Growth rates g(x, ρ_t) of a mass channel: division minus death per unit time at every particle.

A model with a growth rate carries a log-weight per particle, d log w_i = g(x_i, ρ_t) dt
(:func:`mfsde.sdeint` with ``growth=``); a particle of weight w counts w times in the population
and in every interaction kernel. Growth models are chosen by name (``model.growth``):

* ``"none"``: no mass channel (the model conserves mass; today's model exactly);
* ``"mlp"``: g(x) an MLP of the particle's own state;
* ``"population"``: g(x_i, ρ) an MLP of the particle's state and a weighted interaction
  feature of the population around it (any weighted kernel of :mod:`mfsde.interactions`).

Every growth model starts at g ≡ 0 (its output layer at zero): the model starts as the
mass-conserving one and grows or shrinks only where the data's counts ask for it.
"""

from __future__ import annotations

import torch
from torch import nn

from mfsde.drifts._intra import ParticleInputs, mlp
from mfsde.interactions import build_interaction
from mfsde.registry import Registry

#: growth model name → class; ``"none"`` (no mass channel) is handled by :func:`build_growth`
GROWTH_MODELS = Registry("growth model")


class GrowthRate(ParticleInputs):
    """Base class: ``forward(x, t=None, log_w=None)`` maps a population ``(..., N, d)`` (and its
    log-weights ``(..., N)``) to the growth rate at every particle, ``(..., N)``, in model units
    (per unit of model time)."""


def _zero_last(net: nn.Sequential) -> nn.Sequential:
    with torch.no_grad():
        net[-1].weight.zero_()
        net[-1].bias.zero_()
    return net


@GROWTH_MODELS.register("mlp")
class MLPGrowth(GrowthRate):
    """g(x) = MLP(x): d (+1 with time) → width → … → 1, LeakyReLU 0.01, output layer at zero."""

    def __init__(self, dim: int, width: int = 64, depth: int = 2, time_input: bool = False):
        super().__init__(dim, time_input)
        self.net = _zero_last(mlp(dim + self.time_input, 1, width, depth))

    def forward(self, x: torch.Tensor, t=None, log_w: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self.inputs(x, t)).squeeze(-1)


@GROWTH_MODELS.register("population")
class PopulationGrowth(GrowthRate):
    """g(x_i, ρ) = MLP([x_i, k(x, ρ)_i]): the particle's state and a weighted interaction feature
    ``k`` (a kernel of :mod:`mfsde.interactions` by name, ``kernel={"name": …, **options}``,
    default one-head attention without dropout, without LayerNorm at d ≤ 3) of the population, so
    that the growth rate can depend on the neighbourhood (crowding, signalling). Output layer at
    zero."""

    def __init__(
        self, dim: int, width: int = 64, depth: int = 2, time_input: bool = False, kernel: dict | str | None = None
    ):
        super().__init__(dim, time_input)
        if kernel is None:  # at d ≤ 3 a LayerNorm maps every cell to one of two points (see the scimf preset)
            kernel = {"name": "attention", "heads": 1, "dropout": 0.0, "layer_norm": dim > 3}
        spec = kernel
        spec = {"name": spec} if isinstance(spec, str) else dict(spec)
        if "name" not in spec:
            raise ValueError(f"model.growth kernel must name a kernel ({{'name': 'rbf', …}}), got {kernel!r}")
        name = spec.pop("name")
        self.kernel = build_interaction(name, dim=dim, **spec)
        if not getattr(self.kernel, "weighted", False):
            raise ValueError(f"model.growth kernel {name!r} does not accept particle weights (log_w)")
        self.net = _zero_last(mlp(2 * dim + self.time_input, 1, width, depth))

    def forward(self, x: torch.Tensor, t=None, log_w: torch.Tensor | None = None) -> torch.Tensor:
        feature = self.kernel(x, t, log_w=log_w)
        return self.net(torch.cat([self.inputs(x, t), feature], dim=-1)).squeeze(-1)


def build_growth(name: str, /, dim: int, **options) -> GrowthRate | None:
    """The growth model registered as ``name`` (``None`` for ``"none"``: no mass channel)."""
    if name == "none":
        if options:
            raise ValueError(f"model.growth 'none' takes no options, got {sorted(options)}")
        return None
    return GROWTH_MODELS.build(name, dim=dim, **options)
