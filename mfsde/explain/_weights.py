"""Interaction weights and velocities of a fitted model at observed cells (see :mod:`mfsde.explain`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


class NoInteractionWeights(ValueError):
    """The model's interaction kernel has no pairwise weights (e.g. ``none``: f_inter ≡ 0)."""


@dataclass
class LabelWeights:
    """Label-wise aggregate of a cell-wise interaction matrix.

    Attributes:
        names: the labels, in matrix order (sorted unless given).
        matrix: ``(L, L)``; ``matrix[a, b]`` = mean of ``W[i, j]`` over receivers i with label a
            and sources j ≠ i with label b (NaN when no such pair exists).
        counts: ``(L,)`` number of cells per label.
        asymmetry: :func:`asymmetry_index` of ``matrix`` (0 = reciprocal, larger = one-sided).
        net: ``matrix − matrix.T``: positive ``net[a, b]`` means b influences a more than a
            influences b.
        sem: ``(L, L)`` standard error of each block mean (std of the block's cell-pair weights
            / √pairs): the sampling noise against which ``net`` is read.
    """

    names: list[str]
    matrix: np.ndarray
    counts: np.ndarray
    asymmetry: float
    net: np.ndarray
    sem: np.ndarray | None = None


@dataclass
class WeightMap:
    """The interaction weights among the observed cells of one time point.

    Attributes:
        time_index, time: which snapshot.
        weights: ``(N, N)`` mean over heads; ``weights[i, j]`` = influence of source j on
            receiver i, rows/columns in the order of ``cells``.
        heads: ``(H, N, N)`` the same per head (per bandwidth for ``rbf``).
        cells: ``(N,)`` indices of the rows/columns into ``snapshots.data[time_index]``.
        labels: ``(N,)`` label of each row/column (ordered, so labels form contiguous blocks),
            or ``None`` when the data carry no labels (then cells are ordered along the first
            principal component of the time point).
        asymmetry: :func:`asymmetry_index` of ``weights``.
        label: :class:`LabelWeights` of ``weights`` by ``labels`` (``None`` without labels).
        kernel: name of the interaction class.
    """

    time_index: int
    time: float
    weights: np.ndarray
    heads: np.ndarray
    cells: np.ndarray
    labels: np.ndarray | None
    asymmetry: float
    label: LabelWeights | None = None
    kernel: str = ""

    def to_npz_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "time_index": self.time_index,
            "time": self.time,
            "weights": self.weights,
            "heads": self.heads,
            "cells": self.cells,
            "asymmetry": self.asymmetry,
        }
        if self.labels is not None:
            out["labels"] = np.asarray(self.labels).astype(str)
        if self.label is not None:
            out.update(
                label_names=np.asarray(self.label.names, dtype=str),
                label_matrix=self.label.matrix,
                label_counts=self.label.counts,
                label_asymmetry=self.label.asymmetry,
                label_net=self.label.net,
            )
        return out


# -- helpers ----------------------------------------------------------------------------------
def _inter(model):
    drift = getattr(model, "drift", model)
    inter = getattr(drift, "inter", None)
    if inter is None:
        raise TypeError(f"expected a MeanFieldSDE or MeanFieldDrift with .drift.inter, got {type(model).__name__}")
    return inter


def has_interaction_weights(model) -> tuple[bool, str]:
    """``(True, "")`` if the model's interaction has interpretable pairwise weights, else
    ``(False, reason)``."""
    from mfsde.interactions._none import NoInteraction

    inter = _inter(model)
    name = type(inter).__name__
    if isinstance(inter, NoInteraction):
        return (
            False,
            f"the model has no interaction (kernel {name}: f_inter ≡ 0, a plain Itô SDE); "
            "there are no pairwise weights to show",
        )
    if not getattr(inter, "has_weights", False):
        return False, f"interaction kernel {name} does not expose pairwise weights (has_weights = False)"
    return True, ""


def _param(model) -> torch.nn.Parameter | None:
    return next(iter(model.parameters()), None)


def _as_tensor(x, model) -> torch.Tensor:
    p = _param(model)
    dtype = p.dtype if p is not None else torch.float32
    device = p.device if p is not None else "cpu"
    return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).to(device=device, dtype=dtype)


def _model_units(x, model) -> torch.Tensor:
    """Cells in data units → the model's units (its :class:`~mfsde.model.DataScale`, if any)."""
    xt = _as_tensor(x, model)
    scale = getattr(model, "scale", None)
    return xt if scale is None else scale.encode(xt)


def _model_time(t, model):
    """A data time → the model's time axis (``None`` stays ``None``)."""
    if t is None:
        return None
    scale = getattr(model, "scale", None)
    return torch.as_tensor(float(t)) if scale is None else scale.encode_times(float(t))


def _pick(n: int, n_cells: int | None, rng: np.random.Generator) -> np.ndarray:
    if n_cells is None or n_cells >= n:
        return np.arange(n)
    if n_cells < 2:
        raise ValueError(f"n_cells must be >= 2, got {n_cells}")
    return np.sort(rng.choice(n, size=n_cells, replace=False))


def _order(x: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    """Order by label (stable, labels sorted), else along the first principal component."""
    if labels is not None:
        return np.argsort(np.asarray(labels).astype(str), kind="stable")
    if len(x) < 2:
        return np.arange(len(x))
    xc = x - x.mean(0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    return np.argsort(xc @ vt[0], kind="stable")


def _snapshot_labels(snapshots, k: int):
    labels = getattr(snapshots, "labels", None)
    if labels is None:
        return None
    lab = labels[k]
    return None if lab is None else np.asarray(lab).astype(str)


def _time_indices(snapshots, time_indices) -> list[int]:
    if not hasattr(snapshots, "data"):  # mfsde.data.Populations
        raise TypeError(
            f"explain one population at a time: pass snapshots[name] (one of {list(snapshots)}), "
            "not the whole Populations"
        )
    n_t = len(snapshots.data)
    if time_indices is None:
        return list(range(n_t))
    out = []
    for k in [time_indices] if isinstance(time_indices, int) else time_indices:
        k = int(k)
        if not -n_t <= k < n_t:
            raise ValueError(f"time index {k} out of range for {n_t} time points (valid: 0..{n_t - 1})")
        out.append(k % n_t)
    return out


def _times(snapshots) -> np.ndarray:
    return np.asarray(snapshots.times, dtype=float)


def cluster_labels(snapshots, k: int, *, seed: int = 0, max_fit: int = 20000, n_iter: int = 100) -> list[np.ndarray]:
    """Pseudo cell types for unlabelled data: k-means (k-means++ start, Lloyd iterations) fitted
    on the observed cells of all time points pooled, so a cluster means the same region of
    state space at every time. Clusters are named ``c1 … ck`` in order of their centre's
    coordinate on the first principal component. Returns one label array per time point."""
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"the number of clusters must be a positive int, got {k!r}")
    rng = np.random.default_rng(seed)
    pooled = np.concatenate([np.asarray(a, dtype=np.float64) for a in snapshots.data])
    fit_x = pooled if len(pooled) <= max_fit else pooled[rng.choice(len(pooled), max_fit, replace=False)]
    k = min(k, len(fit_x))
    centres = fit_x[[rng.integers(len(fit_x))]]
    for _ in range(1, k):  # k-means++
        d2 = ((fit_x[:, None, :] - centres[None]) ** 2).sum(-1).min(1)
        p = d2 / d2.sum() if d2.sum() > 0 else None
        centres = np.vstack([centres, fit_x[rng.choice(len(fit_x), p=p)]])
    for _ in range(n_iter):
        assign = ((fit_x[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
        new = np.stack([fit_x[assign == j].mean(0) if (assign == j).any() else centres[j] for j in range(k)])
        if np.allclose(new, centres):
            break
        centres = new
    mean = pooled.mean(0)
    _, _, vt = np.linalg.svd(pooled - mean, full_matrices=False)
    rank = np.argsort(np.argsort((centres - mean) @ vt[0]))
    names = np.array([f"c{r + 1}" for r in rank])
    return [
        names[((np.asarray(a, dtype=np.float64)[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)]
        for a in snapshots.data
    ]


class _Labelled:
    """A view of snapshots with other per-cell labels (``times``, ``data``, ``labels`` …)."""

    def __init__(self, snapshots, labels):
        self.times, self.data, self.labels = snapshots.times, snapshots.data, labels
        self.feature_names = getattr(snapshots, "feature_names", None)
        self.name = getattr(snapshots, "name", "")
        self.n_times = len(snapshots.data)
        self.dim = np.asarray(snapshots.data[0]).shape[1]


def with_labels(snapshots, labels):
    """``snapshots`` with per-cell ``labels`` (one array per time point), e.g. from
    :func:`cluster_labels`; the original object is not modified."""
    import dataclasses

    if dataclasses.is_dataclass(snapshots):
        return dataclasses.replace(snapshots, labels=list(labels))
    return _Labelled(snapshots, list(labels))


# -- the three outputs ------------------------------------------------------------------------
def asymmetry_index(a: np.ndarray) -> float:
    """How non-reciprocal a square matrix is: ``‖A − Aᵀ‖_F / (2 ‖A‖_F)``.

    This is the share of A's Frobenius norm carried by its antisymmetric part
    ``K = (A − Aᵀ)/2`` (``‖A‖² = ‖S‖² + ‖K‖²`` with ``S = (A + Aᵀ)/2``). It is 0 exactly for a
    symmetric matrix (reciprocal influence), 1 for an antisymmetric one, and for a non-negative
    matrix (attention, kernels) at most 1/√2 ≈ 0.707, reached when every pair interacts in one
    direction only. It is invariant to scaling A and to a common permutation of rows and
    columns. NaN entries (label pairs without cells) are ignored; an all-zero matrix gives 0.
    """
    a = np.asarray(a, dtype=float)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"asymmetry_index needs a square matrix, got shape {a.shape}")
    a = np.where(np.isnan(a) | np.isnan(a.T), 0.0, a)
    norm = np.linalg.norm(a)
    return 0.0 if norm == 0 else float(np.linalg.norm(a - a.T) / (2 * norm))


def label_weights(weights, labels, *, names: Sequence[str] | None = None, exclude_self: bool = True) -> LabelWeights:
    """Aggregate a cell-wise matrix ``weights`` ``(N, N)`` (rows = receivers) by cell label.

    ``matrix[a, b]`` is the mean of ``weights[i, j]`` over all receivers i labelled a and
    sources j labelled b, skipping i = j when ``exclude_self`` (the kernels give no weight to
    a cell's own state, so including the zero diagonal would bias the diagonal blocks by
    1/n_a). A ``(H, N, N)`` input is averaged over heads first. ``names`` fixes the label
    order (default: sorted unique labels); labels with no cells give NaN rows/columns.
    """
    w = np.asarray(weights, dtype=float)
    if w.ndim == 3:
        w = w.mean(0)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise ValueError(f"weights must be (N, N) or (H, N, N), got shape {np.shape(weights)}")
    labels = np.asarray(labels).astype(str)
    if labels.shape != (w.shape[0],):
        raise ValueError(f"labels must have shape ({w.shape[0]},), got {labels.shape}")
    names = list(np.unique(labels)) if names is None else [str(n) for n in names]
    onehot = np.stack([labels == n for n in names], axis=1).astype(float)  # (N, L)
    counts = onehot.sum(0)
    sums, sq = onehot.T @ w @ onehot, onehot.T @ (w * w) @ onehot
    pairs = np.outer(counts, counts)
    if exclude_self:
        sums = sums - np.diag(onehot.T @ np.diag(w))  # drop the i = j terms
        sq = sq - np.diag(onehot.T @ np.diag(w) ** 2)
        pairs = pairs - np.diag(counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        safe = np.where(pairs > 0, pairs, 1)
        matrix = np.where(pairs > 0, sums / safe, np.nan)
        var = np.maximum(np.where(pairs > 0, sq / safe, np.nan) - matrix**2, 0.0)
        sem = np.where(pairs > 1, np.sqrt(var / safe), np.nan)
    net = matrix - matrix.T
    return LabelWeights(names, matrix, counts.astype(int), asymmetry_index(matrix), net, sem)


@torch.no_grad()
def interaction_weights(
    model,
    snapshots,
    *,
    time_indices: int | Sequence[int] | None = None,
    n_cells: int | None = None,
    seed: int = 0,
) -> list[WeightMap]:
    """The model's interaction weights among the observed cells of each time point.

    Args:
        model: a :class:`~mfsde.MeanFieldSDE` (or its drift).
        snapshots: a :class:`mfsde.data.Snapshots` (anything with ``times``, ``data`` and
            optionally ``labels``).
        time_indices: which time points (default: all).
        n_cells: use a random subset of at most this many cells per time point (the N×N matrix
            costs O(H·N²) memory); ``None`` = all observed cells.
        seed: seed of that subset.

    Returns:
        one :class:`WeightMap` per time point, cells ordered by label (contiguous blocks).

    Raises:
        NoInteractionWeights: the interaction is ``none`` or exposes no weights.
    """
    ok, reason = has_interaction_weights(model)
    if not ok:
        raise NoInteractionWeights(reason)
    inter = _inter(model)
    was_training = model.training
    model.eval()
    rng = np.random.default_rng(seed)
    times = _times(snapshots)
    out = []
    try:
        for k in _time_indices(snapshots, time_indices):
            x_all = np.asarray(snapshots.data[k], dtype=np.float32)
            lab_all = _snapshot_labels(snapshots, k)
            idx = _pick(len(x_all), n_cells, rng)
            x, lab = x_all[idx], (None if lab_all is None else lab_all[idx])
            order = _order(x, lab)
            idx, x = idx[order], x[order]
            lab = None if lab is None else lab[order]
            heads = inter.pair_weights(_model_units(x, model), _model_time(times[k], model))
            heads = heads.detach().cpu().double().numpy()
            heads = heads.reshape(-1, len(idx), len(idx))
            w = heads.mean(0)
            m = WeightMap(
                time_index=k,
                time=float(times[k]),
                weights=w,
                heads=heads,
                cells=idx,
                labels=lab,
                asymmetry=asymmetry_index(w),
                kernel=type(inter).__name__,
            )
            if lab is not None:
                m.label = label_weights(w, lab, names=_all_label_names(snapshots))
            out.append(m)
    finally:
        model.train(was_training)
    return out


def _all_label_names(snapshots) -> list[str] | None:
    """Sorted union of labels over all time points (so label matrices align across times)."""
    labels = getattr(snapshots, "labels", None)
    if labels is None:
        return None
    names: set[str] = set()
    for lab in labels:
        if lab is not None:
            names.update(np.asarray(lab).astype(str).tolist())
    return sorted(names) or None


@torch.no_grad()
def velocities(model, x, t=None) -> dict[str, np.ndarray]:
    """The drift at a population ``x`` ``(N, d)`` (array or tensor, data units), with ρ = its
    empirical law, in data units per data time unit (the model's
    :class:`~mfsde.model.DataScale` maps in and out).

    Returns ``{"total": f, "intra": f_intra, "inter": f_inter}``, each ``(N, d)`` numpy float32.
    ``t`` is the data time (e.g. ``snapshots.times[k]``), passed to drifts that take time as an
    input.
    """
    drift = getattr(model, "drift", model)
    scale = getattr(model, "scale", None)
    was_training = model.training
    model.eval()
    try:
        xt = _model_units(x, model)
        tt = _model_time(t, model)
        if hasattr(drift, "parts"):
            parts = drift.parts(xt, tt)
        else:
            parts = {"total": drift(xt, tt)}
        if scale is not None:
            parts = {k: scale.decode_velocity(v) for k, v in parts.items()}
        return {k: v.detach().cpu().float().numpy() for k, v in parts.items()}
    finally:
        model.train(was_training)
