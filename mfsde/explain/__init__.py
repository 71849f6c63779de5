"""Interpretation of a fitted mean-field SDE: who influences whom, and where cells move.

scIMF reads three things off a trained model (see ``docs/scimf.md``, "Interpretation outputs"):

- the **cell-wise interaction matrix** at each observed time point: ``W[i, j]`` = weight of
  source cell j in the interaction drift of receiver cell i (rows = receivers/targets, columns
  = sources), taken from ``model.drift.inter.pair_weights`` at the observed cells, averaged over
  heads, with cells ordered by label (:func:`interaction_weights`);
- the **label-wise (cell-type) matrix**: the mean of the cell-wise scores over all (target
  label, source label) pairs of distinct cells, and an asymmetry index that says how
  non-reciprocal the influence is (:func:`label_weights`, :func:`asymmetry_index`);
- **influence**, for any kernel: ‖∂f_inter(x_i)/∂x_j‖_F, how much receiver i's interaction
  drift changes when source j moves, and its label aggregate (:func:`influence_matrix`,
  :func:`label_influence`). Softmax weights sum to 1 per receiver, so they cannot say that a
  receiver feels nothing; the influence can;
- **velocities**: the drift f(x, ρ) = f_intra(x) + f_inter(x, ρ) at the observed cells, with ρ
  the empirical law of the cells observed at that time (:func:`velocities`).

:func:`explain` computes all of them, writes the arrays (``.npz``), a ``summary.json`` and PNG
figures (through :mod:`mfsde.pl`).

What the weights mean depends on the kernel: for ``attention`` they are the softmax
probabilities (each row sums to 1 over j ≠ i); for ``rbf`` the kernel values
Σ_m exp(−‖x_i − x_j‖²/2h_m²) (one "head" per bandwidth, symmetric); for ``pairwise_mlp`` the
magnitude ‖φ(x_i, x_j)‖/(N−1) of each pair's contribution. The ``none`` kernel (the Itô-SDE
ablation) has no interaction at all: :func:`interaction_weights` raises :class:`NoInteractionWeights`,
and :func:`explain` reports it and writes only the velocity outputs.

The weights of a mean-field kernel depend on the whole population (a softmax normalises over
all N − 1 sources). With ``n_cells`` set, a random subset of the observed cells stands in for
the population — an unbiased sample of ρ_t, but a row of attention then spreads over fewer
sources, so absolute values scale roughly with 1/n_cells; compare label-wise patterns, not raw
magnitudes, across different ``n_cells``.

```pycon
>>> maps = interaction_weights(model, snapshots, n_cells=300)
>>> m = maps[0]; m.weights.shape, m.labels[:3]
```
((300, 300), array(['A', 'A', 'A'], dtype='<U1'))
```pycon
>>> lab = label_weights(m.weights, m.labels); lab.matrix, lab.asymmetry
>>> summary = explain(model, snapshots, "runs/x/explain")
```
"""

from __future__ import annotations

from mfsde.explain._embedding import pca_embedding
from mfsde.explain._influence import influence_matrix, label_influence
from mfsde.explain._report import explain
from mfsde.explain._weights import (
    LabelWeights,
    NoInteractionWeights,
    WeightMap,
    asymmetry_index,
    cluster_labels,
    has_interaction_weights,
    interaction_weights,
    label_weights,
    velocities,
    with_labels,
)

__all__ = [
    "WeightMap",
    "LabelWeights",
    "NoInteractionWeights",
    "interaction_weights",
    "label_weights",
    "asymmetry_index",
    "velocities",
    "pca_embedding",
    "explain",
    "has_interaction_weights",
    "cluster_labels",
    "with_labels",
    "influence_matrix",
    "label_influence",
]
