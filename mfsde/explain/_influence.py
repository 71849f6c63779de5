"""Who drives whom, for any kernel: the sensitivity of each cell's interaction drift to each other
cell's state.

The weights of :func:`~mfsde.explain.interaction_weights` are what a kernel *puts* on a pair
(softmax probabilities, kernel values); they do not say how much a receiver's drift *changes*
when a source moves. A softmax row must sum to 1, so a receiver that feels nothing still spreads
its weights over the population. The influence matrix asks the model itself:

    influence[i, j] = ‖∂ f_inter(x_i, ρ) / ∂ x_j‖_F,    ρ = the empirical law of x,

in data units (1 / data time unit), from automatic differentiation of the model's interaction
drift (its :class:`~mfsde.model.DataScale` applied on the way in and out). It is defined for
every kernel, including ``none`` (exact zeros) and the true drift of a simulated system
(:class:`~mfsde.evaluation.SystemModel`), so learned and true influence compare on one scale. Its
label aggregate (:func:`label_influence`) is a :class:`~mfsde.explain.LabelWeights`: rows =
receivers, ``net[a, b] > 0`` = b drives a more than a drives b.

>>> inf = influence_matrix(model, x, t=snapshots.times[-1])          # (N, N)
>>> lab = label_influence(model, x, labels, t=snapshots.times[-1])    # LabelWeights
>>> lab.matrix, lab.net
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mfsde._jacobian import auto_chunk, pair_jacobian_rows
from mfsde.explain._weights import LabelWeights, _as_tensor, _model_time, label_weights


def _inter_data_units(model, t):
    """``x (N, d)`` data units → f_inter ``(N, d)`` in data units per data time unit."""
    drift = getattr(model, "drift", model)
    scale = getattr(model, "scale", None)
    tt = _model_time(t, model)

    def f(x: torch.Tensor) -> torch.Tensor:
        z = x if scale is None else scale.encode(x)
        v = drift.parts(z, tt)["inter"] if hasattr(drift, "parts") else drift(z, tt)
        return v if scale is None else scale.decode_velocity(v)

    return f


def influence_matrix(model, x, t=None, *, chunk: int | None = None) -> np.ndarray:
    """``(N, N)`` ``influence[i, j] = ‖∂ f_inter(x_i) / ∂ x_j‖_F`` at the population ``x``
    ``(N, d)`` (array or tensor, data units), in data units per data time unit; rows =
    receivers. The diagonal holds a cell's sensitivity to its own state through the population
    term. ``t`` is the data time. The cost is N·d backward passes, batched ``chunk`` at a time
    (default: sized to ~0.5 GiB of temporaries by ``auto_chunk`` (mfsde/interactions/_base.py)): pass a
    subsample of cells for large N (it stands in for ρ)."""
    xt = _as_tensor(x, model)
    if xt.dim() != 2:
        raise ValueError(f"x must be (N, d) cells, got shape {tuple(xt.shape)}")
    if not torch.isfinite(xt).all():
        raise ValueError("x contains NaN or inf")
    n, d = xt.shape
    was_training = model.training
    model.eval()
    try:
        sq = torch.zeros(n, n, dtype=torch.float64)
        chunk = auto_chunk(model, n, xt.dtype) if chunk is None else chunk
        for receivers, g in pair_jacobian_rows(_inter_data_units(model, t), xt, chunk):
            sq.index_add_(0, receivers, g.double().pow(2).sum(-1))  # Σ_k Σ_l (∂f_ik/∂x_jl)²
        return sq.sqrt().numpy()
    finally:
        model.train(was_training)


def label_influence(
    model, x, labels, t=None, *, names: Sequence[str] | None = None, chunk: int | None = None
) -> LabelWeights:
    """:func:`influence_matrix` aggregated by cell label (rows = receiving labels), self-pairs
    excluded: ``matrix[a, b]`` = mean over receivers i labelled a and sources j ≠ i labelled b of
    ‖∂ f_inter(x_i) / ∂ x_j‖_F. ``net = matrix − matrix.T``, ``asymmetry`` and ``sem`` as in
    :func:`~mfsde.explain.label_weights`."""
    labels = np.asarray(labels)
    if labels.shape != (np.shape(x)[0],):
        raise ValueError(f"labels must have one entry per cell ({np.shape(x)[0]}), got shape {labels.shape}")
    return label_weights(influence_matrix(model, x, t, chunk=chunk), labels, names=names)
