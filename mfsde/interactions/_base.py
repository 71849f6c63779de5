"""Base class of interaction kernels: ``(..., N, d) → (..., N, d)``."""

from __future__ import annotations

import inspect
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

    Weighted particles: ``forward(x, t, log_w=log_w)`` with ``log_w`` ``(..., N)`` (the leading
    dims of ``x``) lets particle j count w_j = exp(log_w_j) times in the empirical measure of its
    population: every mean over sources becomes a w-weighted mean (normalised over the sources
    each receiver sees, so only differences of ``log_w`` matter), and a source of weight k is
    the same as k copies of it. ``log_w_j = −inf`` removes j as a source; a receiver left with
    no source gets exact zeros (as N = 1). ``log_w=None`` is the unweighted kernel.

    Each kernel declares its properties as class attributes; ``tests/`` check them:

    - ``equivariant``: permuting the particles permutes the output the same way.
    - ``symmetric``: the pairwise weights satisfy w(i, j) = w(j, i) (for attention: the
      scores before the softmax).
    - ``self_excluding``: particle i's own state enters f_inter(x)_i only as the receiver,
      never as a source (no self-attention, j ≠ i in every sum).
    - ``has_weights``: :meth:`pair_weights` returns an interpretable ``(..., H, N, N)``
      matrix (rows = receivers i, columns = sources j).
    - ``weighted``: :meth:`forward` and :meth:`forward_rows` accept particle log-weights
      ``log_w`` ``(..., N)`` (above). False by default, and for a subclass that overrides
      ``forward``, ``forward_rows`` or ``_block`` without a ``log_w`` parameter unless it
      declares ``weighted`` itself; every in-tree kernel is weighted.
    """

    equivariant: bool = True
    symmetric: bool = False
    self_excluding: bool = True
    has_weights: bool = False
    weighted: bool = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "weighted" not in cls.__dict__ and cls.weighted:
            own = [cls.__dict__[m] for m in ("forward", "forward_rows", "_block") if m in cls.__dict__]
            if not all(_takes_log_w(f) for f in own):
                cls.weighted = False

    def __init__(self, dim: int):
        super().__init__()
        check_positive_int(dim, "dim")
        self.dim = dim

    def check(self, x: torch.Tensor) -> torch.Tensor:
        return check_population(x, "x", self.dim)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor | None = None, log_w: torch.Tensor | None = None
    ) -> torch.Tensor:
        """f_inter at every particle: ``(..., N, d)`` → ``(..., N, d)``, with optional particle
        log-weights ``log_w`` ``(..., N)`` (``forward_rows`` checks ``x`` and ``log_w`` once; a
        second check here would scan the whole population again on every drift call)."""
        if log_w is None:
            return self.forward_rows(x, slice(None), t)
        require_weighted(self)
        return self.forward_rows(x, slice(None), t, log_w=log_w)

    def forward_rows(
        self, x: torch.Tensor, rows: slice, t: torch.Tensor | None = None, log_w: torch.Tensor | None = None
    ) -> torch.Tensor:
        """f_inter at the receivers ``rows`` only, the whole population ``x`` ``(..., N, d)``
        (with log-weights ``log_w`` ``(..., N)`` if given) acting as sources:
        ``(..., len(rows), d)``, equal to ``forward(x, log_w=log_w)[..., rows, :]``.

        The cost is O(len(rows) · N): benchmarks time a few rows at large N and extrapolate.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement forward_rows")

    def _mean_over_sources(
        self,
        x: torch.Tensor,
        rows: slice,
        pair_bytes: int,
        block: Callable,
        *args,
        log_w: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Shared driver of the kernels f_i = 1/(N−1) Σ_{j≠i} (…) for a checked ``x`` ``(..., N, d)``
        and checked ``rows``: zeros when N = 1, ``block(x, *args, start, stop)`` over blocks of
        receiver rows sized to the memory budget (``pair_bytes`` of temporaries per receiver–source
        pair and population; ``self.chunk_size`` overrides), then the mean over the N − 1 sources.

        With checked log-weights ``log_w`` ``(..., N)`` the blocks are called as
        ``block(x, *args, start, stop, log_w=log_w)`` and return the weighted mean
        Σ_{j≠i} w_j (…) / Σ_{j≠i} w_j themselves (weights from :func:`source_weights`)."""
        n = x.shape[-2]
        if n == 1:
            return torch.zeros_like(x[..., rows, :])
        if log_w is None:
            chunk = self.chunk_size or auto_chunk(rows.stop - rows.start, n * pair_bytes * n_populations(x))
            return run_chunks(block, rows, chunk, x, *args) / (n - 1)
        pair_bytes = pair_bytes + 2 * x.element_size()  # the block's weights
        chunk = self.chunk_size or auto_chunk(rows.stop - rows.start, n * pair_bytes * n_populations(x))
        return run_chunks(block, rows, chunk, x, *args, log_w=log_w)

    def pair_weights(
        self, x: torch.Tensor, t: torch.Tensor | None = None, log_w: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Pairwise influence weights ``(..., H, N, N)``: entry (i, j) is the influence of j on i
        (with ``log_w`` ``(..., N)``: of j with its weight)."""
        raise NotImplementedError(f"{type(self).__name__} has no pairwise weights")

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


def _takes_log_w(fn) -> bool:
    """Whether the function ``fn`` accepts a ``log_w`` keyword (by name or through ``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "log_w" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def require_weighted(kernel: Interaction) -> None:
    """Raise ``ValueError`` unless ``kernel`` declares ``weighted`` (accepts particle log-weights)."""
    if not getattr(kernel, "weighted", False):
        raise ValueError(
            f"{type(kernel).__name__} does not accept particle weights (log_w): it declares weighted = False"
        )


def check_log_w(log_w: object, x: torch.Tensor) -> torch.Tensor:
    """Particle log-weights ``log_w`` for a checked population ``x`` ``(..., N, d)``: a floating
    tensor of shape ``x.shape[:-1]`` = ``(..., N)`` with no NaN and no +inf (−inf, a weight of
    zero, is allowed), returned in ``x``'s dtype. ``TypeError``/``ValueError`` naming ``log_w``."""
    if not isinstance(log_w, torch.Tensor) or not log_w.is_floating_point():
        got = log_w.dtype if isinstance(log_w, torch.Tensor) else type(log_w).__name__
        raise TypeError(f"log_w must be a floating-point tensor of shape (..., N) = {tuple(x.shape[:-1])}, got {got}")
    if log_w.shape != x.shape[:-1]:
        raise ValueError(f"log_w must have shape (..., N) = {tuple(x.shape[:-1])}, got {tuple(log_w.shape)}")
    if torch.isnan(log_w).any() or torch.isposinf(log_w).any():
        raise ValueError(f"log_w of shape (..., N) = {tuple(x.shape[:-1])} must be finite or -inf, got NaN or +inf")
    return log_w.to(x.dtype)


def source_weights(log_w: torch.Tensor, rows: slice) -> torch.Tensor:
    """Normalised source weights ``(..., C, N)`` of the receivers ``rows`` (C of them) from checked
    log-weights ``log_w`` ``(..., N)``: w_j / Σ_{k≠i} w_k for j ≠ i, 0 on the diagonal.

    Stable: each receiver's weights are shifted by the largest log-weight it sees, so its largest
    weight is exactly 1 before normalising (no overflow, no 0/0 from underflow). A receiver whose
    sources all have weight zero (−inf) gets a row of zeros."""
    n = log_w.shape[-1]
    s = log_w.unsqueeze(-2) + diagonal_bias(rows, n, log_w.dtype, log_w.device)  # (..., C, N)
    top = s.detach().amax(-1, keepdim=True)
    e = torch.exp(s - torch.where(torch.isfinite(top), top, torch.zeros_like(top)))
    total = e.sum(-1, keepdim=True)
    return e / torch.where(total > 0, total, torch.ones_like(total))


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


def run_chunks(fn: Callable[..., torch.Tensor], rows: slice, chunk: int, *args, **kwargs) -> torch.Tensor:
    """``fn(*args, start, stop, **kwargs)`` over the blocks of ``chunk`` rows covering ``rows``,
    concatenated on dim −2.

    With autograd recording and more than one block, every block is checkpointed: the O(chunk·N)
    temporaries of a block are recomputed during backward instead of kept, so the graph holds
    O(N) per block, never N×N over all blocks.
    """
    blocks = [slice(rows.start + r.start, rows.start + r.stop) for r in query_chunks(rows.stop - rows.start, chunk)]
    needs_grad = torch.is_grad_enabled() and (
        any(isinstance(a, torch.Tensor) and a.requires_grad for a in (*args, *kwargs.values())) or _has_trainable(fn)
    )
    recompute = len(blocks) > 1 and needs_grad
    outs = [
        checkpoint(fn, *args, b.start, b.stop, use_reentrant=False, **kwargs)
        if recompute
        else fn(*args, b.start, b.stop, **kwargs)
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
