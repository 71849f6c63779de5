"""Contract checks for component authors: does my interaction kernel behave like mfsde's?

```pycon
>>> from mfsde.testing import check_interaction
>>> check_interaction(MyKernel(dim=3))          # raises AssertionError naming the broken property
```
['shape', 'batch', 'single_particle', 'rows', 'chunks', 'equivariant', 'weights', 'weighted', 'reference', 'gradients']

mfsde's own tests run it over every registered kernel.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch

__all__ = ["check_interaction"]


def _close(a: torch.Tensor, b: torch.Tensor, what: str, name: str, atol: float, rtol: float) -> None:
    if a.shape != b.shape:
        raise AssertionError(f"check_interaction({name}): {what}: shape {tuple(a.shape)} != {tuple(b.shape)}")
    err = (a - b).abs()
    bad = err > atol + rtol * b.abs()
    if bad.any():
        raise AssertionError(
            f"check_interaction({name}): {what} failed: max abs difference {float(err.max()):.3g} "
            f"(atol {atol:g}, rtol {rtol:g})"
        )


def check_interaction(
    kernel,
    reference: Callable[[torch.Tensor], torch.Tensor] | None = None,
    *,
    n: int = 7,
    batch: int = 2,
    seed: int = 0,
    atol: float = 1e-10,
    rtol: float = 1e-8,
) -> list[str]:
    """Check ``kernel`` (an :class:`~mfsde.interactions.Interaction`) against the contract.

    Runs in float64 on a copy in eval mode (the kernel itself is not changed), on random
    populations ``(batch, n, d)``:

    * ``shape``: ``(..., N, d) → (..., N, d)``, finite;
    * ``batch``: populations of a leading batch do not interact (each equals its own call);
    * ``single_particle``: N = 1 gives exact zeros (nobody to interact with);
    * ``rows``: ``forward_rows(x, rows)`` equals ``forward(x)[..., rows, :]``;
    * ``chunks``: with a ``chunk_size`` attribute, block sizes 1, 2, 3 agree with one block;
    * ``equivariant`` (if declared): permuting the particles permutes the output;
    * ``weights`` (if ``has_weights``): ``pair_weights`` is ``(..., H, N, N)``, finite, zero on
      the diagonal when ``self_excluding``, symmetric when ``symmetric`` is declared (for
      kernels with ``scores``, e.g. attention, the scores before the softmax are checked);
    * ``weighted`` (if declared): with random log-weights ``log_w`` ``(batch, n)``, a source j
      whose weight is multiplied by 3 acts on every other receiver as three copies of j do;
    * ``reference``: equals ``reference(x)`` for one population ``(N, d)`` — by default
      ``kernel.reference`` when the kernel has one (every :class:`PairwiseInteraction`);
    * ``gradients``: finite gradients for inputs and parameters, also with coincident particles.

    Returns the names of the checks that ran; raises ``AssertionError`` naming the first that fails.
    """
    name = type(kernel).__name__
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"check_interaction: n must be an int >= 2 (particles to interact), got {n!r}")
    k = copy.deepcopy(kernel).double().eval()
    d = int(k.dim)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n, d, generator=g, dtype=torch.float64)
    ran = []

    out = k(x)
    if out.shape != x.shape or not torch.isfinite(out).all():
        raise AssertionError(
            f"check_interaction({name}): output of shape {tuple(out.shape)} (finite: "
            f"{bool(torch.isfinite(out).all())}) for input {tuple(x.shape)}"
        )
    ran.append("shape")
    for b in range(batch):
        _close(k(x[b]), out[b], "batch (populations in a batch must not interact)", name, atol, rtol)
    ran.append("batch")
    one = k(x[:, :1])
    if not torch.equal(one, torch.zeros_like(one)):
        raise AssertionError(f"check_interaction({name}): single_particle: N = 1 must give exact zeros")
    ran.append("single_particle")
    part = slice(min(2, n - 1), min(5, n))  # a block of rows inside the population, for every n >= 2
    try:
        rows = k.forward_rows(x, part)
    except NotImplementedError:
        rows = None
    if rows is not None:
        _close(rows, out[..., part, :], "rows (forward_rows vs forward slice)", name, atol, rtol)
        ran.append("rows")
    if hasattr(k, "chunk_size"):
        old = k.chunk_size
        try:
            for c in (1, 2, 3):
                k.chunk_size = c
                _close(k(x), out, f"chunks (chunk_size={c} vs one block)", name, atol, rtol)
        finally:
            k.chunk_size = old
        ran.append("chunks")
    if getattr(k, "equivariant", False):
        perm = torch.randperm(n, generator=g)
        _close(k(x[:, perm]), out[:, perm], "equivariant (permuting particles)", name, atol, rtol)
        ran.append("equivariant")
    if getattr(k, "has_weights", False):
        w = k.pair_weights(x)
        if (
            w.dim() != x.dim() + 1
            or w.shape[:-3] != x.shape[:-2]
            or w.shape[-2:] != (n, n)
            or not torch.isfinite(w).all()
        ):
            raise AssertionError(
                f"check_interaction({name}): weights: pair_weights gave shape {tuple(w.shape)}; "
                f"expected {(batch, 'H', n, n)}, finite"
            )
        if getattr(k, "self_excluding", False) and torch.diagonal(w, dim1=-2, dim2=-1).abs().max() > 0:
            raise AssertionError(
                f"check_interaction({name}): weights: self_excluding kernel with non-zero "
                "diagonal weights (w(i, i) must be 0)"
            )
        if getattr(k, "symmetric", False):
            s = k.scores(x) if hasattr(k, "scores") else w
            _close(s, s.transpose(-1, -2), "weights (declared symmetric)", name, atol, rtol)
        ran.append("weights")
    if getattr(k, "weighted", False):
        j, copies = n // 2, 3
        log_w = torch.randn(batch, n, generator=g, dtype=torch.float64)
        heavy = log_w.clone()
        heavy[:, j] += math.log(copies)
        x_dup = torch.cat([x, x[:, j : j + 1].expand(batch, copies - 1, d)], dim=1)
        log_w_dup = torch.cat([log_w, log_w[:, j : j + 1].expand(batch, copies - 1)], dim=1)
        others = [i for i in range(n) if i != j]
        _close(
            k(x, log_w=heavy)[:, others],
            k(x_dup, log_w=log_w_dup)[:, others],
            f"weighted (source {j} of weight ×{copies} vs {copies} copies of it)",
            name,
            atol,
            rtol,
        )
        ran.append("weighted")
    ref = reference if reference is not None else getattr(k, "reference", None)
    if ref is not None:
        _close(k(x[0]), ref(x[0]).to(torch.float64), "reference", name, atol, rtol)
        ran.append("reference")
    xg = x.clone()
    xg[:, 1] = xg[:, 0]  # coincident particles
    xg.requires_grad_(True)
    k.zero_grad(set_to_none=True)
    y = k(xg)
    if not y.requires_grad:  # a constant kernel (e.g. "none"): nothing to differentiate
        return ran
    y.pow(2).sum().backward()
    bad = [p for p, v in k.named_parameters() if v.grad is not None and not torch.isfinite(v.grad).all()]
    if xg.grad is None:
        xg.grad = torch.zeros_like(xg)
    if not torch.isfinite(xg.grad).all() or bad:
        raise AssertionError(
            f"check_interaction({name}): gradients: non-finite gradients "
            f"(inputs finite: {bool(torch.isfinite(xg.grad).all())}, parameters {bad})"
        )
    ran.append("gradients")
    return ran
