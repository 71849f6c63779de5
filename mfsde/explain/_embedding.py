"""A linear 2-D embedding for figures (shared by :mod:`mfsde.explain` and :mod:`mfsde.pl`)."""

from __future__ import annotations

import numpy as np


def pca_embedding(x: np.ndarray, n_components: int = 2, max_fit: int = 20000, seed: int = 0) -> dict[str, np.ndarray]:
    """A linear 2-D embedding fitted by SVD on ``x`` ``(n, d)``: returns ``{"mean", "components"
    (k, d), "explained" (k,) variance ratios}``; embed with ``(y - mean) @ components.T``. When
    ``d <= n_components`` the identity is used (raw coordinates keep their meaning)."""
    x = np.asarray(x, dtype=float)
    d = x.shape[1]
    if d <= n_components:
        comps = np.eye(d)
        pad = np.zeros((n_components - d, d))
        return {
            "mean": np.zeros(d),
            "components": np.vstack([comps, pad]),
            "explained": np.full(n_components, np.nan),
            "identity": np.array(True),
        }
    if len(x) > max_fit:
        x = x[np.random.default_rng(seed).choice(len(x), max_fit, replace=False)]
    mean = x.mean(0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    var = s**2
    return {
        "mean": mean,
        "components": vt[:n_components],
        "explained": var[:n_components] / var.sum(),
        "identity": np.array(False),
    }
