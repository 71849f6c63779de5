"""Base class of interaction kernels: ``(..., N, d) → (..., N, d)``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from mfsde._checks import check_population, check_positive_int
from mfsde.registry import Registry

#: kernel name → class; a kernel module registers itself with ``@INTERACTIONS.register("name")``
INTERACTIONS = Registry("interaction")


class Interaction(nn.Module):
    """An interaction drift f_inter(x, ρ) evaluated at every particle of a population.

    ``forward(x, t=None)`` maps a population ``x`` of shape ``(..., N, d)`` (particles on
    dim −2, any leading batch of independent populations) to the interaction drift of the
    same shape. With ``N = 1`` there is nobody to interact with and every kernel returns
    exact zeros.

    Each kernel declares its properties as class attributes; ``tests/`` check them:

    - ``equivariant``: permuting the particles permutes the output the same way.
    - ``symmetric``: the pairwise weights satisfy w(i, j) = w(j, i) (for attention: the
      scores before the softmax).
    - ``self_excluding``: particle i's own state enters f_inter(x)_i only as the receiver,
      never as a source (no self-attention, j ≠ i in every sum).
    - ``has_weights``: :meth:`pair_weights` returns an interpretable ``(..., H, N, N)``
      matrix (rows = receivers i, columns = sources j).
    """

    equivariant: bool = True
    symmetric: bool = False
    self_excluding: bool = True
    has_weights: bool = False

    def __init__(self, dim: int):
        super().__init__()
        check_positive_int(dim, "dim")
        self.dim = dim

    def check(self, x: torch.Tensor) -> torch.Tensor:
        return check_population(x, "x", self.dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        """f_inter at every particle: ``(..., N, d)`` → ``(..., N, d)`` (``forward_rows`` checks ``x``
        once; a second check here would scan the whole population again on every drift call)."""
        return self.forward_rows(x, slice(None), t)

    def forward_rows(self, x: torch.Tensor, rows: slice, t: torch.Tensor | None = None) -> torch.Tensor:
        """f_inter at the receivers ``rows`` only, the whole population ``x`` ``(..., N, d)``
        acting as sources: ``(..., len(rows), d)``, equal to ``forward(x)[..., rows, :]``.

        The cost is O(len(rows) · N): benchmarks time a few rows at large N and extrapolate.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement forward_rows")

    def _mean_over_sources(self, x: torch.Tensor, rows: slice, pair_bytes: int, block: Callable, *args) -> torch.Tensor:
        """Shared driver of the kernels f_i = 1/(N−1) Σ_{j≠i} (…) for a checked ``x`` ``(..., N, d)``
        and checked ``rows``: zeros when N = 1, ``block(x, *args, start, stop)`` over blocks of
        receiver rows sized to the memory budget (``pair_bytes`` of temporaries per receiver–source
        pair and population; ``self.chunk_size`` overrides), then the mean over the N − 1 sources."""
        n = x.shape[-2]
        if n == 1:
            return torch.zeros_like(x[..., rows, :])
        chunk = self.chunk_size or auto_chunk(rows.stop - rows.start, n * pair_bytes * n_populations(x))
        return run_chunks(block, rows, chunk, x, *args) / (n - 1)

    def pair_weights(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        """Pairwise influence weights ``(..., H, N, N)``: entry (i, j) is the influence of j on i."""
        raise NotImplementedError(f"{type(self).__name__} has no pairwise weights")

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


def zero_output_layer(layer: nn.Linear) -> None:
    """Set a kernel's last layer to zero, so that f_inter ≡ 0 at initialisation: the model starts
    as the plain Itô SDE (same f_intra) and grows interactions only where the loss asks for
    them. Gradients still reach the layer (its inputs are non-zero). Draws no random numbers, so
    every other parameter is initialised exactly as without it."""
    with torch.no_grad():
        layer.weight.zero_()
        if layer.bias is not None:
            layer.bias.zero_()


def query_chunks(n: int, chunk_size: int | None):
    """Yield ``slice`` objects covering ``range(n)`` in blocks of ``chunk_size`` (all if None)."""
    if chunk_size is None or chunk_size >= n:
        yield slice(0, n)
        return
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
    for start in range(0, n, chunk_size):
        yield slice(start, min(start + chunk_size, n))


def auto_chunk(n: int, per_row_bytes: int, budget_bytes: int = 256 * 2**20) -> int:
    """Rows per chunk so that one chunk's temporaries stay under ``budget_bytes``
    (``per_row_bytes`` must count every population of the leading batch, see :func:`n_populations`)."""
    return max(1, min(n, budget_bytes // max(per_row_bytes, 1)))


def n_populations(x: torch.Tensor) -> int:
    """Number of independent populations in ``x`` ``(..., N, d)`` (the product of the leading dims)."""
    return x[..., 0, 0].numel()


def check_rows(rows: slice, n: int) -> slice:
    """``rows`` as a contiguous ``slice(start, stop)`` with 0 ≤ start < stop ≤ n (clear errors otherwise)."""
    if not isinstance(rows, slice) or rows.step not in (None, 1):
        raise TypeError(f"rows must be a contiguous slice(start, stop), got {rows!r}")
    for name, value in (("start", rows.start), ("stop", rows.stop)):
        if value is not None and not -n <= value <= n:
            raise ValueError(f"rows {rows!r}: {name} = {value} is outside the population of N = {n}")
    start, stop, _ = rows.indices(n)
    if stop <= start:
        raise ValueError(f"rows {rows!r} selects no particle of N = {n}")
    return slice(start, stop)


def run_chunks(fn: Callable[..., torch.Tensor], rows: slice, chunk: int, *args) -> torch.Tensor:
    """``fn(*args, start, stop)`` over the blocks of ``chunk`` rows covering ``rows``, concatenated
    on dim −2.

    With autograd recording and more than one block, every block is checkpointed: the O(chunk·N)
    temporaries of a block are recomputed during backward instead of kept, so the graph holds
    O(N) per block, never N×N over all blocks.
    """
    blocks = [slice(rows.start + r.start, rows.start + r.stop) for r in query_chunks(rows.stop - rows.start, chunk)]
    needs_grad = torch.is_grad_enabled() and (
        any(isinstance(a, torch.Tensor) and a.requires_grad for a in args) or _has_trainable(fn)
    )
    recompute = len(blocks) > 1 and needs_grad
    outs = [
        checkpoint(fn, *args, b.start, b.stop, use_reentrant=False) if recompute else fn(*args, b.start, b.stop)
        for b in blocks
    ]
    return torch.cat(outs, dim=-2) if len(outs) > 1 else outs[0]


def _has_trainable(fn) -> bool:
    """Whether ``fn`` is a bound method of a module with parameters that require grad."""
    owner = getattr(fn, "__self__", None)
    return isinstance(owner, nn.Module) and any(p.requires_grad for p in owner.parameters())


def diagonal_bias(rows: slice, n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Additive attention mask ``(len(rows), n)``: 0 everywhere, −inf where the column equals the
    row's global index. SDPA takes it as is (a boolean mask is converted to this on every call)."""
    m = torch.zeros(rows.stop - rows.start, n, dtype=dtype, device=device)
    m.diagonal(offset=rows.start).fill_(float("-inf"))
    return m


def off_diagonal_mask(rows: slice, n: int, device: torch.device) -> torch.Tensor:
    """Boolean ``(len(rows), n)`` mask, False where the column equals the row's global index."""
    r = torch.arange(rows.start, rows.stop, device=device)
    return r[:, None] != torch.arange(n, device=device)[None, :]
