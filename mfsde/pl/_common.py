"""Shared figure helpers: lazy matplotlib (Agg), saving, label colours."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _plt():
    try:
        import matplotlib
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("mfsde's figures need matplotlib: pip install mfsde[plot]") from e
    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo"):
        try:
            matplotlib.use("Agg", force=True)
        except Exception:  # pragma: no cover
            pass
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    _plt().close(fig)
    return path


def _finish(fig, path):
    """Save and close ``fig`` at ``path`` (returns the path), or return the open figure when
    ``path`` is ``None`` (for callers that show, compose or save it themselves)."""
    return fig if path is None else _save(fig, path)


def _axes(ax, figsize):
    """``(fig, ax)``: a new figure of ``figsize``, or the figure of a given ``ax``."""
    if ax is not None:
        return ax.figure, ax
    return _plt().subplots(figsize=figsize)


def _label_colors(names: Sequence[str]) -> dict[str, Any]:
    plt = _plt()
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {n: cmap(i % cmap.N) for i, n in enumerate(names)}


def _blocks(labels: np.ndarray) -> list[tuple[str, int, int]]:
    """Contiguous runs ``(label, start, stop)`` of an ordered label array."""
    out, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            out.append((str(labels[start]), start, i))
            start = i
    return out
