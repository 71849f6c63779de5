"""Plots (matplotlib, imported lazily; ``pip install mfsde[plot]``).

scanpy-style, from the AnnData keys :mod:`mfsde.tl` writes (draw on ``ax`` or a new figure, save to
``save``, show unless ``show=False``, which returns the axes):

- :func:`velocity` — velocities on a 2-D embedding (``basis="pca"`` exact; UMAP/t-SNE projected
  as scVelo's ``velocity_embedding`` does, see :func:`velocity_embedding`);
- :func:`interactions` — the cell-type interaction matrix or graph;
- :func:`predicted` — predicted against observed cells;
- :func:`growth` — the growth rate ``obs["growth_rate"]`` of a model with a mass channel.

From a run or a model, each writing one PNG and returning its :class:`~pathlib.Path`:

- :func:`plot_cell_weights` — heat map of the cell-wise interaction matrix (rows = receivers,
  columns = sources) with the label blocks marked;
- :func:`plot_label_weights` — the label-wise (cell-type) matrix, annotated;
- :func:`plot_label_graph` — the same as a directed graph (b → a: source type b influences
  receiver type a, width ∝ weight);
- :func:`plot_velocities` — drift arrows at observed cells on a 2-D PCA embedding, beside the
  simulated against observed populations;
- :func:`plot_loss` — training-loss curves from a fit's history;
- :func:`plot_recovery` — learned against true drift on a known particle system.
"""

from mfsde.pl._anndata import growth, interactions, predicted, velocity, velocity_embedding
from mfsde.pl._dynamics import plot_loss, plot_velocities
from mfsde.pl._recovery import plot_recovery
from mfsde.pl._weights import plot_cell_weights, plot_label_graph, plot_label_weights

__all__ = [
    "velocity",
    "interactions",
    "predicted",
    "growth",
    "velocity_embedding",
    "plot_cell_weights",
    "plot_label_weights",
    "plot_label_graph",
    "plot_velocities",
    "plot_loss",
    "plot_recovery",
]
