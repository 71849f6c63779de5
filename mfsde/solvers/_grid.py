"""Integer step grids that land exactly on every requested output time."""

from __future__ import annotations

import math

import torch


def check_times(ts: object, name: str = "ts") -> torch.Tensor:
    """``ts`` as a 1-D strictly increasing finite float tensor with at least one entry."""
    ts = torch.as_tensor(ts)
    if not ts.is_floating_point():
        ts = ts.to(torch.get_default_dtype())
    if ts.dim() != 1 or ts.numel() < 1:
        raise ValueError(f"{name} must be a 1-D tensor of output times, got shape {tuple(ts.shape)}")
    if not torch.isfinite(ts).all():
        raise ValueError(f"{name} contains NaN/Inf")
    if ts.numel() > 1 and not (ts[1:] > ts[:-1]).all():
        raise ValueError(f"{name} must be strictly increasing, got {ts.tolist()}")
    return ts


def step_counts(ts: torch.Tensor, dt: float) -> list[tuple[int, float]]:
    """For each interval [t_k, t_{k+1}]: ``(n_k, h_k)`` with n_k = ⌈Δ/dt⌉ steps of size Δ/n_k.

    Steps never exceed ``dt`` and the last one ends exactly on t_{k+1}; a Δ that is a
    multiple of dt (up to round-off) gives exactly Δ/dt steps of size dt.
    """
    if not (isinstance(dt, (int, float)) and dt > 0 and math.isfinite(dt)):
        raise ValueError(f"dt must be a positive finite number, got {dt!r}")
    # round-off allowance: times stored in float32 (e.g. a list converted with the default
    # dtype) are off by up to an ulp of |t|, which must not add a step
    eps = torch.finfo(ts.dtype).eps if ts.is_floating_point() else 0.0
    out = []
    for a, b in zip(ts[:-1].tolist(), ts[1:].tolist()):
        delta = b - a
        tol = 1e-9 + 4 * eps * max(abs(a), abs(b)) / dt
        n = max(1, math.ceil(delta / dt - tol))
        out.append((n, delta / n))
    return out
