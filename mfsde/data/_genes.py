"""Gene-level steps of the preprocessing: library-size normalisation and highly variable genes
(scanpy's ``normalize_total`` and Seurat-flavour ``highly_variable_genes``), in numpy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_CHUNK = 4096


def normalize_total(x: np.ndarray, target_sum: float = 1e4) -> np.ndarray:
    """Scale each row (cell) to sum ``target_sum``; all-zero rows stay zero. Returns float32."""
    x = np.asarray(x, dtype=np.float32)
    totals = x.sum(axis=1, dtype=np.float64)
    factor = np.divide(target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
    return (x * factor[:, None].astype(np.float32)).astype(np.float32, copy=False)


def _mean_var(blocks: Sequence[np.ndarray], fn=None) -> tuple[np.ndarray, np.ndarray, int]:
    """Column mean and unbiased variance (ddof=1) over row blocks, accumulated in float64."""
    n, s, s2 = 0, None, None
    for b in blocks:
        for i in range(0, b.shape[0], _CHUNK):
            c = np.asarray(b[i : i + _CHUNK], dtype=np.float64)
            if fn is not None:
                c = fn(c)
            s = c.sum(0) if s is None else s + c.sum(0)
            s2 = (c * c).sum(0) if s2 is None else s2 + (c * c).sum(0)
            n += c.shape[0]
    if n < 2:
        raise ValueError(f"need at least 2 cells to estimate variances, got {n}")
    mean = s / n
    var = np.maximum(s2 / n - mean * mean, 0.0) * (n / (n - 1))
    return mean, var, n


def _cut_bins(x: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bin index of each value, as ``pandas.cut(x, n_bins)`` (right-closed intervals)."""
    mn, mx = float(np.min(x)), float(np.max(x))
    if mn == mx:
        mn -= 0.001 * abs(mn) if mn != 0 else 0.001
        mx += 0.001 * abs(mx) if mx != 0 else 0.001
        edges = np.linspace(mn, mx, n_bins + 1)
    else:
        edges = np.linspace(mn, mx, n_bins + 1)
        edges[0] -= (mx - mn) * 0.001
    return np.clip(np.searchsorted(edges, x, side="left") - 1, 0, n_bins - 1)


def highly_variable_genes(
    log_blocks: np.ndarray | Sequence[np.ndarray], n_top_genes: int = 2000, n_bins: int = 20
) -> tuple[np.ndarray, dict]:
    """Seurat-flavour dispersion-based highly variable genes of log1p-normalised data.

    Reproduces ``scanpy.pp.highly_variable_genes(adata, n_top_genes=n, flavor="seurat")``:
    mean and variance (ddof=1) of ``expm1(x)`` per gene, dispersion = var / mean, log-dispersion
    z-scored within 20 equal-width bins of log1p(mean) (a bin with a single gene gives it
    normalised dispersion 1), top ``n`` genes by normalised dispersion. Genes whose
    normalised dispersion is NaN (constant genes) are never selected; ties are broken by
    gene order, so exactly ``min(n, #non-NaN)`` genes are returned (scanpy may return more
    on exact ties).

    Args:
        log_blocks: one ``(n_cells, n_genes)`` array, or several (e.g. one per training time).

    Returns:
        ``(indices, stats)``: sorted indices of the selected genes and a dict of per-gene
        ``means``, ``dispersions``, ``dispersions_norm`` (numpy arrays).
    """
    blocks = [log_blocks] if isinstance(log_blocks, np.ndarray) else list(log_blocks)
    mean, var, _ = _mean_var(blocks, np.expm1)
    mean[mean == 0] = 1e-12
    with np.errstate(divide="ignore", invalid="ignore"):
        disp = var / mean
        disp[disp == 0] = np.nan
        disp = np.log(disp)
    mean = np.log1p(mean)
    bins = _cut_bins(mean, n_bins)
    avg = np.full(n_bins, np.nan)
    dev = np.full(n_bins, np.nan)
    for b in np.unique(bins):
        v = disp[(bins == b) & ~np.isnan(disp)]
        if len(v):
            avg[b] = v.mean()
        if len(v) >= 2:
            dev[b] = v.std(ddof=1)
        else:  # a bin with a single gene (or none with a finite dispersion): z-score := 1
            dev[b], avg[b] = avg[b], 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        norm = (disp - avg[bins]) / dev[bins]
    score = np.where(np.isnan(norm), -np.inf, norm)
    n_ok = int((~np.isnan(norm)).sum())
    n = min(int(n_top_genes), n_ok)
    order = np.argsort(-score, kind="stable")[:n]
    return np.sort(order), {"means": mean, "dispersions": disp, "dispersions_norm": norm}
