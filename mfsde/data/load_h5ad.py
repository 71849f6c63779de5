"""AnnData ``.h5ad`` files (``pip install mfsde[sc]``)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ._load_common import (MissingColumnError, PathLike, _check_file, _require_module, _short, _split_by_population,
                           _times_from_column, _to_number, _wrap)
from .snapshots import Snapshots, SnapshotError

__all__ = ["load_h5ad"]


# -- AnnData -------------------------------------------------------------------------------------
def load_h5ad(path: PathLike, time_col: str, label_col: str | None = None, layer: str | None = None,
              obsm: str | None = None, time_values=None, genes: Sequence[str] | None = None,
              name: str | None = None, population_col: str | None = None):
    """Load an AnnData ``.h5ad`` file (with ``population_col``, an ``obs`` column naming each
    cell's population: :class:`~mfsde.data.Populations`).

    Args:
        time_col: ``obs`` column with each cell's time (numbers, strings such as "day2", or a
            categorical; see :func:`load_csv` for ``time_values``).
        label_col: optional ``obs`` column with labels (e.g. cell type).
        layer: use ``adata.layers[layer]`` instead of ``X`` (e.g. raw counts).
        obsm: use ``adata.obsm[obsm]`` instead (an existing embedding, e.g. ``"X_pca"``).
        genes: keep only these ``var_names`` (in this order) before densifying.

    Sparse matrices are densified one time point at a time (as float32).
    """
    ad = _require_module("anndata", "load_h5ad")
    p = _check_file(path)
    where = repr(str(p))
    if layer is not None and obsm is not None:
        raise ValueError("pass at most one of layer= and obsm=")
    if genes is not None and obsm is not None:
        raise ValueError("genes= selects var_names and cannot be combined with obsm=")
    try:
        adata = ad.read_h5ad(p)
    except Exception as e:  # h5py / anndata errors on corrupt files
        raise SnapshotError(f"{where}: cannot read as AnnData ({type(e).__name__}: {e})") from None
    obs_cols = [str(c) for c in adata.obs.columns]
    if time_col not in adata.obs.columns:
        raise MissingColumnError(f"{where}: time column {time_col!r} not in obs; obs columns are {_short(obs_cols)}")
    if label_col is not None and label_col not in adata.obs.columns:
        raise MissingColumnError(f"{where}: label column {label_col!r} not in obs; obs columns are "
                                 f"{_short(obs_cols)}")
    if population_col is not None and population_col not in adata.obs.columns:
        raise MissingColumnError(f"{where}: population column {population_col!r} not in obs; obs columns are "
                                 f"{_short(obs_cols)}")
    feature_names: list[str] | None
    if obsm is not None:
        if obsm not in adata.obsm:
            raise MissingColumnError(f"{where}: obsm key {obsm!r} not found; obsm keys are {list(adata.obsm.keys())}")
        X = adata.obsm[obsm]
        feature_names = [str(c) for c in X.columns] if hasattr(X, "columns") else None
        X = X.to_numpy() if hasattr(X, "to_numpy") else X
    else:
        if layer is not None:
            if layer not in adata.layers:
                raise MissingColumnError(f"{where}: layer {layer!r} not found; layers are {list(adata.layers.keys())}")
            X = adata.layers[layer]
        else:
            X = adata.X
            if X is None:
                raise SnapshotError(f"{where}: X is empty; pass layer= or obsm=")
        feature_names = [str(v) for v in adata.var_names]
        if genes is not None:
            pos = {g: i for i, g in enumerate(feature_names)}
            missing = [g for g in genes if g not in pos]
            if missing:
                raise MissingColumnError(f"{where}: {len(missing)} gene(s) not in var_names, e.g. {missing[:5]}")
            cols = [pos[g] for g in genes]
            X = X[:, cols]
            feature_names = [str(g) for g in genes]
    col = adata.obs[time_col]
    if hasattr(col, "cat") and getattr(col.cat, "ordered", False) and time_values is None:
        # an ordered categorical: its category order is the time order when labels are not numbers
        cats = list(col.cat.categories)
        if any(_to_number(c) is None for c in cats):
            time_values = {c: float(i) for i, c in enumerate(cats)}
    raw = col.to_numpy() if not hasattr(col, "cat") else col.astype(object).to_numpy()
    times, index = _times_from_column(raw, time_values, where, time_col)
    if population_col is not None:
        def block(rows):
            b = X[rows]
            return np.asarray(b.toarray() if hasattr(b, "toarray") else b, dtype=np.float32)
        labs = None if label_col is None else adata.obs[label_col].astype(str).to_numpy()
        return _split_by_population(adata.obs[population_col].astype(str).to_numpy(), index, times, where, block,
                                    labs, feature_names, p.stem if name is None else name)
    order = np.argsort(index, kind="stable")
    bounds = np.searchsorted(index[order], np.arange(len(times) + 1))
    data = []
    for k in range(len(times)):
        rows = order[bounds[k]:bounds[k + 1]]
        block = X[rows]
        if hasattr(block, "toarray"):
            block = block.toarray()
        data.append(np.asarray(block, dtype=np.float32))
    labels = None
    if label_col is not None:
        lab = adata.obs[label_col].astype(str).to_numpy()
        labels = [lab[order[bounds[k]:bounds[k + 1]]] for k in range(len(times))]
    return _wrap(where, Snapshots, times, data, labels, feature_names, p.stem if name is None else name)
