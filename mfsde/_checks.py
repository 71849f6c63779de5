"""Input validation shared by all components: shapes ``(..., N, d)`` and finiteness."""

from __future__ import annotations

import torch


def check_population(x: object, name: str = "x", dim: int | None = None, finite: bool = True) -> torch.Tensor:
    """Check that ``x`` is a floating tensor of shape ``(..., N, d)`` (N ≥ 1, d ≥ 1).

    Raises ``TypeError``/``ValueError`` naming ``name`` and what was expected.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (..., N, d), got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(f"{name} must have shape (..., N, d) with particles on dim -2, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.shape[-2] < 1 or x.shape[-1] < 1:
        raise ValueError(f"{name} needs at least one particle and one dimension, got shape {tuple(x.shape)}")
    if dim is not None and x.shape[-1] != dim:
        raise ValueError(f"{name} has d = {x.shape[-1]} on its last dim, but the component was built for d = {dim}")
    if finite and not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).sum().item()
        raise ValueError(f"{name} contains {bad} NaN/Inf value(s)")
    return x


def check_positive_int(value, name: str, allow_none: bool = False):
    """``value`` as an int ≥ 1 (or ``None`` when ``allow_none``); ``ValueError`` naming ``name`` otherwise
    (booleans are refused)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int{' or None' if allow_none else ''}, got {value!r}")
    return int(value)
