"""Figures for interpretation and training (matplotlib, imported lazily, Agg backend).

Every function writes one PNG and returns its :class:`~pathlib.Path`:

- :func:`plot_cell_attention` — heat map of the cell-wise interaction matrix (rows = receivers,
  columns = sources) with the label blocks marked;
- :func:`plot_label_attention` — heat map of the label-wise (cell-type) matrix, annotated;
- :func:`plot_label_graph` — the same as a directed graph: an arrow b → a for "source type b
  influences receiver type a", width ∝ weight (matplotlib only; networkx not needed);
- :func:`plot_velocities` — drift arrows at observed cells on a 2-D PCA embedding, next to
  the simulated (predicted) vs observed populations;
- :func:`plot_loss` — training-loss curves from a fit's history.

Install the extra with ``pip install mfsde[plot]``.
"""
from __future__ import annotations

from .dynamics import plot_loss, plot_velocities
from .weights import plot_cell_attention, plot_label_attention, plot_label_graph

__all__ = ["plot_cell_attention", "plot_label_attention", "plot_label_graph", "plot_velocities", "plot_loss"]
