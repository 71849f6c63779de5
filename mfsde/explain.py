"""Interpretation of a fitted mean-field SDE: who influences whom, and where cells move.

scIMF reads three things off a trained model (see ``docs/scimf.md``, "Interpretation outputs"):

- the **cell-wise interaction matrix** at each observed time point: ``W[i, j]`` = weight of
  source cell j in the interaction drift of receiver cell i (rows = receivers/targets, columns
  = sources), taken from ``model.drift.inter.pair_weights`` at the observed cells, averaged over
  heads, with cells ordered by label (:func:`attention_maps`);
- the **label-wise (cell-type) matrix**: the mean of the cell-wise scores over all (target
  label, source label) pairs of distinct cells, and an asymmetry index that says how
  non-reciprocal the influence is (:func:`label_attention`, :func:`asymmetry_index`);
- **velocities**: the drift f(x, ρ) = f_intra(x) + f_inter(x, ρ) at the observed cells, with ρ
  the empirical law of the cells observed at that time (:func:`velocities`).

:func:`explain` computes all of them, writes the arrays (``.npz``), a ``summary.json`` and PNG
figures (through :mod:`mfsde.plotting`).

What the weights mean depends on the kernel: for ``attention`` they are the softmax
probabilities (each row sums to 1 over j ≠ i); for ``rbf`` the kernel values
Σ_m exp(−‖x_i − x_j‖²/2h_m²) (one "head" per bandwidth, symmetric); for ``pairwise_mlp`` the
magnitude ‖φ(x_i, x_j)‖/(N−1) of each pair's contribution. The ``none`` kernel (the Itô-SDE
ablation) has no interaction at all: :func:`attention_maps` raises :class:`NoInteractionWeights`,
and :func:`explain` reports it and writes only the velocity outputs.

The weights of a mean-field kernel depend on the whole population (a softmax normalises over
all N − 1 sources). With ``n_cells`` set, a random subset of the observed cells stands in for
the population — an unbiased sample of ρ_t, but a row of attention then spreads over fewer
sources, so absolute values scale roughly with 1/n_cells; compare label-wise patterns, not raw
magnitudes, across different ``n_cells``.

>>> maps = attention_maps(model, snapshots, n_cells=300)
>>> m = maps[0]; m.weights.shape, m.labels[:3]
((300, 300), array(['A', 'A', 'A'], dtype='<U1'))
>>> lab = label_attention(m.weights, m.labels); lab.matrix, lab.asymmetry
>>> summary = explain(model, snapshots, "runs/x/explain")
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

__all__ = [
    "AttentionMap", "LabelAttention", "NoInteractionWeights", "attention_maps", "label_attention",
    "asymmetry_index", "velocities", "pca_embedding", "explain", "has_interaction_weights", "cluster_labels",
    "with_labels",
]


class NoInteractionWeights(ValueError):
    """The model's interaction kernel has no pairwise weights (e.g. ``none``: f_inter ≡ 0)."""


@dataclass
class LabelAttention:
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
class AttentionMap:
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
        label: :class:`LabelAttention` of ``weights`` by ``labels`` (``None`` without labels).
        kernel: name of the interaction class.
    """

    time_index: int
    time: float
    weights: np.ndarray
    heads: np.ndarray
    cells: np.ndarray
    labels: np.ndarray | None
    asymmetry: float
    label: LabelAttention | None = None
    kernel: str = ""

    def to_npz_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "time_index": self.time_index, "time": self.time, "weights": self.weights,
            "heads": self.heads, "cells": self.cells, "asymmetry": self.asymmetry,
        }
        if self.labels is not None:
            out["labels"] = np.asarray(self.labels).astype(str)
        if self.label is not None:
            out.update(
                label_names=np.asarray(self.label.names, dtype=str), label_matrix=self.label.matrix,
                label_counts=self.label.counts, label_asymmetry=self.label.asymmetry, label_net=self.label.net,
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
    from .interactions.none import NoInteraction

    inter = _inter(model)
    name = type(inter).__name__
    if isinstance(inter, NoInteraction):
        return False, f"the model has no interaction (kernel {name}: f_inter ≡ 0, a plain Itô SDE); there are no pairwise weights to show"
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
    """Cells in data units → the model's units (its :class:`~mfsde.scaling.DataScale`, if any)."""
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
        raise TypeError(f"explain one population at a time: pass snapshots[name] (one of {list(snapshots)}), "
                        "not the whole Populations")
    n_t = len(snapshots.data)
    if time_indices is None:
        return list(range(n_t))
    out = []
    for k in ([time_indices] if isinstance(time_indices, int) else time_indices):
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
    return [names[((np.asarray(a, dtype=np.float64)[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)]
            for a in snapshots.data]


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


def label_attention(weights, labels, *, names: Sequence[str] | None = None, exclude_self: bool = True) -> LabelAttention:
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
        var = np.maximum(np.where(pairs > 0, sq / safe, np.nan) - matrix ** 2, 0.0)
        sem = np.where(pairs > 1, np.sqrt(var / safe), np.nan)
    net = matrix - matrix.T
    return LabelAttention(names, matrix, counts.astype(int), asymmetry_index(matrix), net, sem)


@torch.no_grad()
def attention_maps(
    model,
    snapshots,
    *,
    time_indices: int | Sequence[int] | None = None,
    n_cells: int | None = None,
    seed: int = 0,
) -> list[AttentionMap]:
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
        one :class:`AttentionMap` per time point, cells ordered by label (contiguous blocks).

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
            m = AttentionMap(
                time_index=k, time=float(times[k]), weights=w, heads=heads, cells=idx, labels=lab,
                asymmetry=asymmetry_index(w), kernel=type(inter).__name__,
            )
            if lab is not None:
                m.label = label_attention(w, lab, names=_all_label_names(snapshots))
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
@torch.no_grad()
def velocities(model, x, t=None) -> dict[str, np.ndarray]:
    """The drift at a population ``x`` ``(N, d)`` (array or tensor, data units), with ρ = its
    empirical law, in data units per data time unit (the model's
    :class:`~mfsde.scaling.DataScale` maps in and out).

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


def pca_embedding(x: np.ndarray, n_components: int = 2, max_fit: int = 20000, seed: int = 0) -> dict[str, np.ndarray]:
    """A linear 2-D embedding fitted by SVD on ``x`` ``(n, d)``: returns ``{"mean", "components"
    (k, d), "explained" (k,) variance ratios}``; embed with ``(y - mean) @ components.T``. When
    ``d <= n_components`` the identity is used (raw coordinates keep their meaning)."""
    x = np.asarray(x, dtype=float)
    d = x.shape[1]
    if d <= n_components:
        comps = np.eye(d)
        pad = np.zeros((n_components - d, d))
        return {"mean": np.zeros(d), "components": np.vstack([comps, pad]), "explained": np.full(n_components, np.nan), "identity": np.array(True)}
    if len(x) > max_fit:
        x = x[np.random.default_rng(seed).choice(len(x), max_fit, replace=False)]
    mean = x.mean(0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    var = s**2
    return {"mean": mean, "components": vt[:n_components], "explained": var[:n_components] / var.sum(), "identity": np.array(False)}


def _simulate(model, snapshots, n_particles: int, seed: int) -> np.ndarray:
    """Particles simulated from the observed cells at t_0 through all snapshot times, ``(T, N, d)``
    (the same draw and noise as :func:`mfsde.evaluation.simulate` with this seed)."""
    from .evaluation import simulate

    sims = simulate(model, snapshots, range(len(snapshots.data)), n_particles=n_particles, seed=seed)
    return np.stack([sims[k].detach().cpu().float().numpy() for k in sorted(sims)])


# -- everything at once -----------------------------------------------------------------------
def explain(
    model,
    snapshots,
    out_dir,
    *,
    time_indices: int | Sequence[int] | None = None,
    n_cells: int | None = 400,
    n_particles: int = 1000,
    seed: int = 0,
    history=None,
    heldout: Sequence[int] | None = None,
    figures: bool = True,
    max_arrows: int = 300,
    clusters: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Compute and write all interpretation outputs of ``model`` on ``snapshots`` to ``out_dir``.

    Writes (``k`` = time index):

    - ``attention_t{k}.npz`` — :meth:`AttentionMap.to_npz_dict`: ``weights`` (N, N), ``heads``
      (H, N, N), ``cells``, ``labels``, ``asymmetry`` and, with labels, ``label_names``,
      ``label_matrix``, ``label_counts``, ``label_asymmetry``, ``label_net``;
    - ``velocities.npz`` — per time point ``x_t{k}``, ``v_t{k}`` (total drift), ``v_intra_t{k}``,
      ``v_inter_t{k}`` at all observed cells, ``pred_t{k}`` (particles simulated from t_0),
      ``times``, and the PCA used for the figures (``pca_mean``, ``pca_components``);
    - ``summary.json`` — kernel, asymmetry indices per time point, label-wise matrices, drift
      magnitudes (mean ‖f_intra‖, ‖f_inter‖ per time) and notes;
    - figures (``figures=True``, needs matplotlib): ``attention_cells_t{k}.png``,
      ``attention_labels_t{k}.png``, ``attention_graph_t{k}.png``, ``velocities.png`` and
      ``loss.png`` (when ``history`` is given).

    ``n_cells`` caps the cells per attention matrix (see the module notes); velocities use all
    observed cells, arrows are drawn for at most ``max_arrows`` per time point. With
    ``clusters=K`` and unlabelled data, :func:`cluster_labels` supplies K pseudo cell types
    (k-means regions) so that the label-wise outputs exist too. ``heldout``
    (time indices) only marks those time points in the figures. A model without interaction
    weights is reported in ``summary["notes"]``, not raised.

    Returns the summary dict (also ``summary["files"]``: every file written).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    say = print if progress else (lambda *a, **k: None)
    ks = _time_indices(snapshots, time_indices)
    times = _times(snapshots)
    files: list[str] = []
    notes: list[str] = []
    inter = _inter(model)
    summary: dict[str, Any] = {"kernel": type(inter).__name__, "time_indices": ks, "times": [float(times[k]) for k in ks]}
    if clusters is not None and (isinstance(clusters, bool) or not isinstance(clusters, int) or clusters < 1):
        raise ValueError(f"clusters must be a positive number of clusters (or None), got {clusters!r}")
    if clusters and getattr(snapshots, "labels", None) is None:
        snapshots = with_labels(snapshots, cluster_labels(snapshots, clusters, seed=seed))
        notes.append(f"the data carry no cell labels: labels c1..c{clusters} are k-means clusters of the pooled "
                     "observed cells (ordered along PC1), not cell types")
        summary["labels"] = f"kmeans:{clusters}"
    elif clusters:
        notes.append(f"clusters={clusters} not used: the data carry their own cell labels")

    # attention
    maps: list[AttentionMap] = []
    ok, reason = has_interaction_weights(model)
    if ok:
        say(f"attention maps at {len(ks)} time point(s) ...")
        maps = attention_maps(model, snapshots, time_indices=ks, n_cells=n_cells, seed=seed)
        for m in maps:
            p = out / f"attention_t{m.time_index}.npz"
            np.savez_compressed(p, **m.to_npz_dict())
            files.append(p.name)
        summary["attention"] = [
            {
                "time_index": m.time_index, "time": m.time, "n_cells": int(len(m.cells)), "heads": int(m.heads.shape[0]),
                "asymmetry": m.asymmetry,
                **({"label_names": m.label.names, "label_counts": m.label.counts.tolist(),
                    "label_matrix": _nan_to_none(m.label.matrix), "label_asymmetry": m.label.asymmetry}
                   if m.label is not None else {}),
            }
            for m in maps
        ]
        if maps and maps[0].labels is None:
            notes.append("the data carry no cell labels: cells are ordered along PC1 and no label-wise matrix is computed")
    else:
        notes.append(reason)
        summary["attention"] = None

    # velocities + simulation
    say("velocities at observed cells ...")
    vel: dict[str, np.ndarray] = {"times": times}
    mags = []
    for k in range(len(snapshots.data)):
        x = np.asarray(snapshots.data[k], dtype=np.float32)
        v = velocities(model, x, times[k])
        vel[f"x_t{k}"] = x
        vel[f"v_t{k}"] = v["total"]
        for part in ("intra", "inter"):
            if part in v:
                vel[f"v_{part}_t{k}"] = v[part]
        mags.append({
            "time_index": k, "time": float(times[k]),
            **{f"mean_norm_{p}": float(np.linalg.norm(v[p], axis=1).mean()) for p in ("total", "intra", "inter") if p in v},
        })
    summary["drift_norms"] = mags
    pred = None
    if n_particles:
        say(f"simulating {n_particles} particles from t_0 ...")
        pred = _simulate(model, snapshots, n_particles, seed)
        for k in range(pred.shape[0]):
            vel[f"pred_t{k}"] = pred[k]
    emb = pca_embedding(np.concatenate([np.asarray(d) for d in snapshots.data]), seed=seed)
    vel.update(pca_mean=emb["mean"], pca_components=emb["components"], pca_explained=emb["explained"])
    p = out / "velocities.npz"
    np.savez_compressed(p, **vel)
    files.append(p.name)

    # figures
    if figures:
        from . import plotting

        say("figures ...")
        labels_all = getattr(snapshots, "labels", None)
        for m in maps:
            files.append(plotting.plot_cell_attention(m, out / f"attention_cells_t{m.time_index}.png").name)
            if m.label is not None:
                files.append(plotting.plot_label_attention(m.label, out / f"attention_labels_t{m.time_index}.png",
                                                           kernel=m.kernel,
                                                           title=f"cell-type interaction, t = {m.time:g}").name)
                files.append(plotting.plot_label_graph(m.label, out / f"attention_graph_t{m.time_index}.png",
                                                       kernel=m.kernel,
                                                       title=f"directed cell-type interaction, t = {m.time:g}").name)
        files.append(plotting.plot_velocities(
            [vel[f"x_t{k}"] for k in range(len(times))], [vel[f"v_t{k}"] for k in range(len(times))], times,
            out / "velocities.png", predicted=None if pred is None else list(pred), embedding=emb,
            labels=labels_all, heldout=heldout, max_arrows=max_arrows, seed=seed,
            feature_names=getattr(snapshots, "feature_names", None),
        ).name)
        if history is not None:
            try:
                files.append(plotting.plot_loss(history, out / "loss.png").name)
            except ValueError as e:  # an empty or unreadable history
                notes.append(f"no loss plot: {e}")

    summary["notes"] = notes
    summary["files"] = files + ["summary.json"]
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _nan_to_none(a: np.ndarray) -> list:
    return [[None if np.isnan(v) else float(v) for v in row] for row in np.asarray(a, dtype=float)]
