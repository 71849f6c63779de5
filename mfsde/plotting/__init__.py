"""Figures for interpretation and training (matplotlib, imported lazily, Agg backend).

Every function writes one PNG and returns its :class:`~pathlib.Path`:

- :func:`plot_cell_weights` — heat map of the cell-wise interaction matrix (rows = receivers,
  columns = sources) with the label blocks marked;
- :func:`plot_label_weights` — heat map of the label-wise (cell-type) matrix, annotated;
- :func:`plot_label_graph` — the same as a directed graph: an arrow b → a for "source type b
  influences receiver type a", width ∝ weight (matplotlib only; networkx not needed);
- :func:`plot_velocities` — drift arrows at observed cells on a 2-D PCA embedding, next to
  the simulated (predicted) vs observed populations;
- :func:`plot_loss` — training-loss curves from a fit's history.

Install the extra with ``pip install mfsde[plot]``.
"""
from __future__ import annotations

from .dynamics import plot_loss, plot_velocities
from .weights import plot_cell_weights, plot_label_weights, plot_label_graph

_RENAMED = {"plot_cell_attention": "plot_cell_weights", "plot_label_attention": "plot_label_weights"}


def __getattr__(name: str):
    if name in _RENAMED:
        import warnings

        warnings.warn(f"mfsde.plotting.{name} is now {_RENAMED[name]}", DeprecationWarning, stacklevel=2)
        return globals()[_RENAMED[name]]
    raise AttributeError(f"module 'mfsde.plotting' has no attribute {name!r}")


__all__ = ["plot_cell_weights", "plot_label_weights", "plot_label_graph", "plot_velocities", "plot_loss"]
