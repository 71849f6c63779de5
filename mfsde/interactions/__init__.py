"""Interaction kernels f_inter: ``(..., N, d) → (..., N, d)``, chosen by name.

>>> from mfsde.interactions import INTERACTIONS, build_interaction
>>> kernel = build_interaction("attention", dim=50, heads=2)
>>> INTERACTIONS.names()
['attention', 'none', 'pairwise_mlp', 'radial', 'rbf']

A new pairwise kernel: subclass :class:`PairwiseInteraction`, write ``phi(x_i, dx)``, and
register it with ``@INTERACTIONS.register("name")`` in your own module (see
:mod:`mfsde.interactions.pairwise`); check it with :func:`mfsde.testing.check_interaction`.
"""
from ..registry import Registry
from .attention import AttentionInteraction
from .base import Interaction
from .none import NoInteraction
from .pairwise import PairwiseInteraction
from .pairwise_mlp import PairwiseMLPInteraction
from .radial import RadialInteraction
from .rbf import RBFInteraction

INTERACTIONS = Registry("interaction", {
    "attention": AttentionInteraction, "rbf": RBFInteraction,
    "pairwise_mlp": PairwiseMLPInteraction, "radial": RadialInteraction, "none": NoInteraction,
})


def build_interaction(name: str, /, dim: int, **options) -> Interaction:
    """Build the interaction registered as ``name`` for particles of dimension ``dim``."""
    return INTERACTIONS.build(name, dim=dim, **options)


__all__ = [
    "INTERACTIONS", "build_interaction", "Interaction", "PairwiseInteraction", "AttentionInteraction",
    "RBFInteraction", "PairwiseMLPInteraction", "RadialInteraction", "NoInteraction",
]
