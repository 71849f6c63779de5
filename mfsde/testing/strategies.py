"""Hypothesis strategies for property tests of your own components (needs ``hypothesis``).

```pycon
>>> from hypothesis import given
>>> from mfsde.testing.strategies import kernels, populations
>>> @given(x=populations(), k=kernels(dim=3))            # doctest: +SKIP
... def test_mine(x, k): ...
```

The project's own tests draw from these (``tests/unit/interactions/test_interactions.py``).
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

__all__ = ["populations", "point_clouds", "row_blocks", "kernels"]


@st.composite
def populations(draw, min_n: int = 2, max_n: int = 6, max_d: int = 4, lead=((), (2,), (2, 2)), dim: int | None = None):
    """A float64 population tensor ``(..., N, d)`` with ``min_n ≤ N ≤ max_n``, ``1 ≤ d ≤ max_d``
    (or ``d = dim``) and a leading batch shape drawn from ``lead``; values in [−3, 3] from a
    grid-free float range, so coincident particles and zero coordinates do occur."""
    n = draw(st.integers(min_n, max_n))
    d = dim if dim is not None else draw(st.integers(1, max_d))
    shape = (*draw(st.sampled_from(lead)), n, d)
    arr = draw(arrays(np.float64, shape, elements=st.floats(-3, 3, allow_nan=False, width=64)))
    return torch.from_numpy(arr.copy())


@st.composite
def point_clouds(draw, min_n: int = 1, max_n: int = 8, max_d: int = 3):
    """A float64 numpy array ``(n, d)`` of points in [−5, 5] (e.g. for losses and OT)."""
    n, d = draw(st.integers(min_n, max_n)), draw(st.integers(1, max_d))
    return draw(arrays(np.float64, (n, d), elements=st.floats(-5, 5, allow_nan=False, width=64)))


@st.composite
def row_blocks(draw, n: int):
    """A non-empty ``slice`` of rows of a population of ``n`` (``Interaction.forward_rows``)."""
    start = draw(st.integers(0, n - 1))
    return slice(start, draw(st.integers(start + 1, n)))


@st.composite
def kernels(draw, dim: int, names=None, scale: float = 0.3):
    """A registered interaction kernel for particles of dimension ``dim`` (a name from ``names``,
    default every one in ``mfsde.interactions.INTERACTIONS``) with random N(0, scale²) parameters,
    float64, in eval mode (dropout off). Attention gets as many heads as divide ``dim`` (1 or 2)."""
    from mfsde.interactions import INTERACTIONS

    name = draw(st.sampled_from(sorted(names or INTERACTIONS.names())))
    options = {"heads": 2 if dim % 2 == 0 else 1} if name == "attention" else {}
    kernel = INTERACTIONS.build(name, dim=dim, **options).double().eval()
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    with torch.no_grad():
        for p in kernel.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return kernel
