"""Exact optimal transport distances (POT), for evaluation."""

from __future__ import annotations

import warnings

import numpy as np
import torch


def _as_numpy(z, name: str) -> np.ndarray:
    if isinstance(z, torch.Tensor):
        z = z.detach().cpu().double().numpy()
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] < 1:
        raise ValueError(f"{name} must be a 2-D array (n, d) with n ≥ 1, got shape {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError(f"{name} contains NaN/Inf")
    return z


def _cost(x: np.ndarray, y: np.ndarray, metric: str) -> np.ndarray:
    """Pairwise ground cost from the coordinate differences (scipy ``cdist``): identical points
    cost exactly 0. POT's ``ot.dist`` expands ‖x‖² + ‖y‖² − 2x·y, whose rounding leaves ~1e-15
    there and ~6e-8 after the square root of the Euclidean metric."""
    from scipy.spatial.distance import cdist

    return cdist(x, y, metric=metric)


def _as_weights(w, n: int, name: str):
    """Weights of ``n`` points normalised to sum 1 (float64), or ``[]`` (uniform) for ``None``."""
    if w is None:
        return []
    if isinstance(w, torch.Tensor):
        w = w.detach().cpu().double().numpy()
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    if w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"{name} must be {n} finite weights >= 0 with a positive sum, got shape {w.shape}")
    return w / w.sum()


def wasserstein(x, y, p: int = 2, num_iter_max: int = 10_000_000, a=None, b=None) -> float:
    """Exact W_p between the empirical measures of ``x`` (n, d) and ``y`` (m, d), uniform unless
    weights ``a`` (n,) and ``b`` (m,) are given (normalised here: the laws are compared).

    W1 = emd2 with the Euclidean cost; W2 = sqrt(emd2 with the squared Euclidean cost).
    Raises ``RuntimeError`` when POT's network simplex stops at ``num_iter_max`` (POT itself only
    warns and returns a wrong value).
    """
    import ot

    if p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, got {p!r}")
    x, y = _as_numpy(x, "x"), _as_numpy(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x has d = {x.shape[1]} but y has d = {y.shape[1]}")
    a, b = _as_weights(a, x.shape[0], "a"), _as_weights(b, y.shape[0], "b")
    cost = _cost(x, y, "sqeuclidean" if p == 2 else "euclidean")
    value = float(_checked(ot.emd2, cost, num_iter_max, a, b))
    return float(np.sqrt(max(value, 0.0))) if p == 2 else value


def w1(x, y, **kw) -> float:
    """Exact W1 (Euclidean ground cost); weights ``a``, ``b`` as in :func:`wasserstein`."""
    return wasserstein(x, y, p=1, **kw)


def w2(x, y, **kw) -> float:
    """Exact W2 = sqrt(min E‖x − y‖²); weights ``a``, ``b`` as in :func:`wasserstein`."""
    return wasserstein(x, y, p=2, **kw)


def _checked(solver, cost: np.ndarray, num_iter_max: int, a=(), b=()):
    """``solver(a, b, cost)`` (POT ``emd``/``emd2``; empty weights: uniform) raising ``RuntimeError``
    when the network simplex stops at ``num_iter_max`` (POT itself only warns and returns a wrong
    value)."""
    a = [] if len(a) == 0 else a
    b = [] if len(b) == 0 else b
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        try:
            return solver(a, b, cost, numItermax=num_iter_max)
        except UserWarning as w:
            raise RuntimeError(f"POT {solver.__name__} did not converge ({w}); raise num_iter_max") from None


def ot_plan(x, y, num_iter_max: int = 10_000_000) -> np.ndarray:
    """The exact optimal-transport plan ``(n, m)`` between the uniform empirical measures of ``x``
    and ``y`` for the squared Euclidean cost (POT ``emd``), raising when it does not converge."""
    import ot

    x, y = _as_numpy(x, "x"), _as_numpy(y, "y")
    return _checked(ot.emd, _cost(x, y, "sqeuclidean"), num_iter_max)
