"""Interaction kernels f_inter: ``(..., N, d) → (..., N, d)``, chosen by name.

```pycon
>>> from mfsde.interactions import INTERACTIONS, build_interaction
>>> kernel = build_interaction("attention", dim=50, heads=2)
>>> INTERACTIONS.names()
```
['attention', 'none', 'pairwise_mlp', 'radial', 'rbf']

A new pairwise kernel (a mean over the N − 1 others): subclass :class:`PairwiseInteraction` and
write ``phi(x_i, dx)`` (particle weights ``log_w`` come with it); any other kernel subclasses
:class:`Interaction` and writes ``forward_rows(x, rows, t=None, log_w=None)``, declaring
``weighted = True`` once it counts particle weights (see docs/extending.md for the contract). Register it with
``@INTERACTIONS.register("name")`` in its own module (an in-tree kernel is a new ``_name.py``
here: this package imports every module in it) and check it with
:func:`mfsde.testing.check_interaction`.
"""

import importlib
import pkgutil

from mfsde.interactions._attention import AttentionInteraction
from mfsde.interactions._base import INTERACTIONS, Interaction, check_rows, off_diagonal_mask, zero_output_layer
from mfsde.interactions._none import NoInteraction
from mfsde.interactions._pairwise import PairwiseInteraction
from mfsde.interactions._pairwise_mlp import PairwiseMLPInteraction
from mfsde.interactions._radial import RadialInteraction
from mfsde.interactions._rbf import RBFInteraction

for _module in pkgutil.iter_modules(__path__):  # every kernel module registers itself on import
    importlib.import_module(f"{__name__}.{_module.name}")


def build_interaction(name: str, /, dim: int, **options) -> Interaction:
    """Build the interaction registered as ``name`` for particles of dimension ``dim``."""
    return INTERACTIONS.build(name, dim=dim, **options)


__all__ = [
    "INTERACTIONS",
    "build_interaction",
    "Interaction",
    "PairwiseInteraction",
    "check_rows",
    "off_diagonal_mask",
    "zero_output_layer",
    "AttentionInteraction",
    "RBFInteraction",
    "PairwiseMLPInteraction",
    "RadialInteraction",
    "NoInteraction",
]
