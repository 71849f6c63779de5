"""Rows of a particle drift's Jacobian, batched (shared by :mod:`mfsde.explain` and
:mod:`mfsde.evaluation`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

#: memory for the temporaries of one batched backward pass (see :func:`auto_chunk`)
CHUNK_BYTES = 1 << 29


def auto_chunk(model, n: int, dtype: torch.dtype = torch.float32) -> int:
    """Jacobian rows per batched backward pass such that their temporaries stay near
    :data:`CHUNK_BYTES`: each row re-runs the backward of the interaction over all N² pairs, which
    holds ``pair_bytes`` per pair for a :class:`~mfsde.interactions.PairwiseInteraction` (an MLP
    over pairs: hundreds of bytes) and about 64 bytes per pair otherwise (fused attention)."""
    inter = getattr(getattr(model, "drift", model), "inter", model)
    per_pair = 64
    if hasattr(inter, "pair_bytes"):
        per_pair = max(per_pair, int(inter.pair_bytes(torch.empty(0, dtype=dtype))))
    return int(max(1, min(512, CHUNK_BYTES // (3 * per_pair * n * n))))


def pair_jacobian_rows(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, chunk: int = 512
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Rows of the Jacobian of ``fn: (N, d) → (N, d)`` at ``x``, ``chunk`` outputs at a time
    (:func:`auto_chunk` sizes it to a memory budget).

    Yields ``(receivers (c,), grads (c, N, d))``: ``grads[r] = ∂ fn(x)[i_r, k_r] / ∂x`` for the
    flat outputs ``(i_r, k_r)`` of the chunk (``receivers`` holds the i_r). A ``fn`` that does not
    depend on ``x`` yields zeros. ``x`` is not modified."""
    if not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive int, got {chunk!r}")
    n, d = x.shape
    xg = x.detach().clone().requires_grad_(True)
    out = fn(xg)
    if out.shape != (n, d):
        raise ValueError(f"the drift returned shape {tuple(out.shape)}, expected {(n, d)}")
    for a in range(0, n * d, chunk):
        b = min(a + chunk, n * d)
        receivers = torch.arange(a, b) // d
        if not out.requires_grad:
            yield receivers, x.new_zeros(b - a, n, d)
            continue
        rows = torch.zeros(b - a, n * d, dtype=out.dtype, device=out.device)
        rows[torch.arange(b - a), torch.arange(a, b)] = 1.0
        (g,) = torch.autograd.grad(
            out, xg, rows.view(b - a, n, d), retain_graph=True, is_grads_batched=True, allow_unused=True
        )
        yield receivers, (x.new_zeros(b - a, n, d) if g is None else g.detach())
