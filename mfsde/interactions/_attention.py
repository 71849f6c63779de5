"""Transformer self-attention across particles (scIMF's f_inter)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from mfsde._checks import check_positive_int
from mfsde.interactions._base import (
    INTERACTIONS,
    Interaction,
    auto_chunk,
    check_log_w,
    check_rows,
    diagonal_bias,
    run_chunks,
    zero_output_layer,
)

STYLES = ("code", "paper")


def _attend_rows(q, k, v, start: int, stop: int, p: float):
    """Attention of query rows ``start:stop`` over all keys except each row's own index."""
    mask = diagonal_bias(slice(start, stop), k.shape[-2], q.dtype, q.device)
    return F.scaled_dot_product_attention(q[..., start:stop, :], k, v, attn_mask=mask, dropout_p=p)


def _weighted_bias(log_w: torch.Tensor, rows: slice) -> torch.Tensor:
    """Additive mask ``(B, 1, C, N)`` for query rows ``rows`` and log-weights ``log_w`` ``(B, N)``:
    the diagonal bias plus log w_j, so softmax(s + log w)_j = w_j e^{s_j} / Σ_k w_k e^{s_k}. A row
    whose sources all have weight zero (−inf everywhere) gets a zero row instead (finite, uniform
    attention; its output is discarded by the caller)."""
    bias = diagonal_bias(rows, log_w.shape[-1], log_w.dtype, log_w.device) + log_w[:, None, None, :]
    dead = torch.isneginf(bias).all(-1, keepdim=True)
    return bias.masked_fill(dead, 0.0)


def _attend_rows_weighted(q, k, v, log_w, start: int, stop: int, p: float):
    """Attention of query rows ``start:stop`` over all keys except each row's own index, key j
    weighted by exp(log_w_j) (``log_w`` ``(B, N)``)."""
    mask = _weighted_bias(log_w, slice(start, stop))
    return F.scaled_dot_product_attention(q[..., start:stop, :], k, v, attn_mask=mask, dropout_p=p)


@INTERACTIONS.register("attention")
class AttentionInteraction(Interaction):
    """One transformer-encoder block in which every particle is a token.

    ``scores = Q Kᵀ / √d_k`` with ``Q = X W_Q``, ``K = X W_K``, ``V = X W_V``; the diagonal is
    masked before the softmax, so particle i never attends to itself (score (i, j) is the
    influence of j on i). Heads are concatenated, optionally projected by ``W_O``, then passed
    through a feed-forward network ``d → ffn_mult·d → d`` (LeakyReLU 0.01).

    Args:
        dim: particle dimension d (= d_model).
        heads: number of heads; ``dim`` must be divisible by it (d_k = dim / heads).
        dropout: dropout on the attention probabilities (training mode only).
        tie_qk: use one matrix for W_Q and W_K, which makes the scores symmetric.
        style: ``"code"`` (scIMF's public code: LayerNorm on queries/keys, a separate one on
            values, LayerNorm before the FFN, no W_O) or ``"paper"`` (no LayerNorm, W_O).
        layer_norm, out_proj: override the style's choice of LayerNorms / W_O.
        residual: standard residual connections ``h = x + attn; out = h + FFN(h)`` (off in both
            styles; with it on, x_i reaches its own output, so ``self_excluding`` is False).
        chunk_size: query rows per fused attention call; ``None`` picks one that keeps the
            temporaries of a chunk under ~256 MiB, so memory is O(N·chunk), never N×N.
        zero_init: start the FFN's output layer at zero, so f_inter ≡ 0 at initialisation (the
            model starts as the Itô model; off by default, as in scIMF's code, whose randomly
            initialised block adds an O(1) drift at the start). Not with ``residual``.
        qk_bias: give W_Q and W_K a bias (scIMF's have none). Without one, and without a LayerNorm
            (whose shift β acts as such a bias: (W_Q β)ᵀ W_K x̂_j), the score is bilinear,
            x_iᵀ M x_j: on centred data of two mirrored groups (u_B ≈ −u_A), A preferring B's over
            A's forces B to prefer A's over B's, so a one-way influence (A follows B, B ignores A)
            cannot be expressed. The bias adds a term of the source alone, b_Qᵀ W_K x_j, under
            which every receiver can prefer the same group.
        receiver: feed the receiver's own state to the FFN, ``FFN([h_i, x_i])`` (input 2d), so
            f_inter(x_i, ρ) can depend on x_i beyond its attention weights, as in the general
            McKean–Vlasov form (e.g. Kuramoto's pull sin(ψ − θ_i)); scIMF's block has no such
            path (off). x_i enters as the receiver only, so the kernel stays self-excluding.

    Particle log-weights ``log_w`` ``(..., N)`` are added to the scores before the softmax
    (softmax(s + log w)_j = w_j e^{s_j} / Σ_k w_k e^{s_k}: key j counts w_j times, exactly as
    w_j copies of it would); the receiver's own weight enters nowhere (not through the residual
    or receiver path either). A receiver whose sources all have weight zero gets exact zeros.

    Shapes: ``x`` ``(..., N, d)`` → ``(..., N, d)``; :meth:`pair_weights` ``(..., H, N, N)``.
    """

    has_weights = True
    weighted = True

    def __init__(
        self,
        dim: int,
        heads: int = 2,
        dropout: float = 0.1,
        tie_qk: bool = False,
        style: str = "code",
        layer_norm: bool | None = None,
        out_proj: bool | None = None,
        residual: bool = False,
        ffn_mult: int = 4,
        chunk_size: int | None = None,
        zero_init: bool = False,
        qk_bias: bool = False,
        receiver: bool = False,
    ):
        super().__init__(dim)
        if zero_init and residual:
            raise ValueError("zero_init=True cannot make f_inter zero with residual=True (x reaches the output)")
        if receiver and residual:
            raise ValueError("receiver=True and residual=True both feed x_i to the FFN; choose one")
        check_positive_int(ffn_mult, "ffn_mult")
        if not isinstance(heads, int) or heads < 1 or dim % heads:
            raise ValueError(f"heads must be a positive int dividing dim={dim}, got {heads!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, got {style!r}")
        check_positive_int(chunk_size, "chunk_size", allow_none=True)
        self.heads, self.head_dim = heads, dim // heads
        self.dropout, self.tie_qk, self.style = float(dropout), bool(tie_qk), style
        self.symmetric = self.tie_qk
        self.layer_norm = (style == "code") if layer_norm is None else bool(layer_norm)
        self.use_out_proj = (style == "paper") if out_proj is None else bool(out_proj)
        self.residual, self.chunk_size = bool(residual), chunk_size
        self.self_excluding = not self.residual  # a residual feeds x_i back into its own output

        self.qk_bias = bool(qk_bias)
        self.w_q = nn.Linear(dim, dim, bias=self.qk_bias)
        self.w_k = self.w_q if tie_qk else nn.Linear(dim, dim, bias=self.qk_bias)
        self.w_v = nn.Linear(dim, dim, bias=False)
        self.w_o = nn.Linear(dim, dim) if self.use_out_proj else nn.Identity()
        self.norm_qk = nn.LayerNorm(dim) if self.layer_norm else nn.Identity()
        self.norm_v = nn.LayerNorm(dim) if self.layer_norm else nn.Identity()
        self.norm_ffn = nn.LayerNorm(dim) if self.layer_norm else nn.Identity()
        self.receiver = bool(receiver)
        self.ffn = nn.Sequential(
            nn.Linear(2 * dim if self.receiver else dim, ffn_mult * dim),
            nn.LeakyReLU(0.01),
            nn.Linear(ffn_mult * dim, dim),
        )
        self.zero_init = bool(zero_init)
        if self.zero_init:
            zero_output_layer(self.ffn[-1])

    # -- pieces ---------------------------------------------------------------------------
    def _qkv(self, x: torch.Tensor):
        xqk = self.norm_qk(x)

        def split(z):
            return rearrange(z, "... n (h e) -> ... h n e", h=self.heads)

        q = split(self.w_q(xqk))
        k = q if self.tie_qk else split(self.w_k(xqk))
        v = split(self.w_v(self.norm_v(x)))
        return q, k, v

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-softmax scores ``Q Kᵀ / √d_k`` of shape ``(..., H, N, N)`` (diagonal not masked)."""
        q, k, _ = self._qkv(self.check(x))
        return q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)

    def pair_weights(
        self, x: torch.Tensor, t: torch.Tensor | None = None, log_w: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Attention probabilities ``(..., H, N, N)`` (rows i sum to 1 over j ≠ i; zero diagonal);
        with log-weights ``log_w`` ``(..., N)`` the weighted ones, softmax(s + log w) (a row
        whose sources all have weight zero is zero)."""
        if log_w is not None:
            log_w = check_log_w(log_w, self.check(x))
        s = self.scores(x)
        n = s.shape[-1]
        if n == 1:
            return torch.zeros_like(s)
        eye = torch.eye(n, dtype=torch.bool, device=s.device)
        if log_w is None:
            return torch.softmax(s.masked_fill(eye, float("-inf")), dim=-1)
        bias = log_w.unsqueeze(-2).masked_fill(eye, float("-inf")).unsqueeze(-3)  # (..., 1, N, N)
        dead = torch.isneginf(bias).all(-1, keepdim=True)
        return torch.softmax((s + bias).masked_fill(dead, 0.0), dim=-1).masked_fill(dead, 0.0)

    def _post(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h = self.w_o(h)
        if self.residual:  # pre-LN encoder block: x + attn, then + FFN
            h = h + x
            return h + self.ffn(self.norm_ffn(h))
        if self.receiver:
            return self.ffn(torch.cat([self.norm_ffn(h), x], dim=-1))
        return self.ffn(self.norm_ffn(h))

    def forward_rows(
        self, x: torch.Tensor, rows: slice, t: torch.Tensor | None = None, log_w: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Drift of the receivers ``rows`` ``(..., C, d)``; keys and values from all of ``x`` ``(..., N, d)``
        (keys weighted by the log-weights ``log_w`` ``(..., N)`` if given).

        Queries are processed in blocks of ``chunk_size`` rows by the fused attention, so memory
        is O(N·chunk); with autograd each block is recomputed in backward (never N×N kept).
        """
        x = self.check(x)
        n = x.shape[-2]
        rows = check_rows(rows, n)
        if log_w is not None:
            log_w = check_log_w(log_w, x)
        lead = x.shape[:-2]
        if n == 1:
            return torch.zeros_like(x[..., rows, :])
        xf = x.reshape(-1, n, self.dim)
        q, k, v = self._qkv(xf)  # (B, H, N, e)
        p = self.dropout if self.training else 0.0
        per_row = n * self.heads * q.element_size() * 4 * xf.shape[0]
        chunk = self.chunk_size or auto_chunk(rows.stop - rows.start, per_row)
        if log_w is None:
            h = run_chunks(lambda q_, k_, v_, a, b: _attend_rows(q_, k_, v_, a, b, p), rows, chunk, q, k, v)
        else:
            lw = log_w.reshape(-1, n).to(q.dtype)
            h = run_chunks(
                lambda q_, k_, v_, w_, a, b: _attend_rows_weighted(q_, k_, v_, w_, a, b, p), rows, chunk, q, k, v, lw
            )
        h = rearrange(h, "b h c e -> b c (h e)")
        out = self._post(h, xf[:, rows, :])
        if log_w is not None:  # a receiver with no source of positive weight is alone: exact zeros
            finite = torch.isfinite(lw)
            alone = (finite.sum(-1, keepdim=True) - finite[:, rows].long()) == 0  # (B, C)
            out = out.masked_fill(alone.unsqueeze(-1), 0.0)
        return out.reshape(*lead, rows.stop - rows.start, self.dim)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, heads={self.heads}, dropout={self.dropout}, tie_qk={self.tie_qk}, "
            f"style={self.style!r}, layer_norm={self.layer_norm}, out_proj={self.use_out_proj}, "
            f"qk_bias={self.qk_bias}, "
            f"receiver={self.receiver}"
        )
