"""AnnData: ``.h5ad`` files (:func:`load_h5ad`) and in-memory objects (:func:`from_anndata`)
(``pip install mfsde[sc]``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mfsde.data._load_common import (
    MissingColumnError,
    PathLike,
    _check_file,
    _require_module,
    _short,
    _split_by_population,
    _times_from_column,
    _to_number,
    _wrap,
)
from mfsde.data._snapshots import SnapshotError, Snapshots


def load_h5ad(
    path: PathLike,
    time_col: str,
    label_col: str | None = None,
    layer: str | None = None,
    obsm: str | None = None,
    time_values=None,
    genes: Sequence[str] | None = None,
    name: str | None = None,
    population_col: str | None = None,
):
    """Load an AnnData ``.h5ad`` file (with ``population_col``, an ``obs`` column naming each
    cell's population: :class:`~mfsde.data.Populations`); see :func:`from_anndata`."""
    ad = _require_module("anndata", "load_h5ad")
    p = _check_file(path)
    try:
        adata = ad.read_h5ad(p)
    except Exception as e:  # h5py / anndata errors on corrupt files
        raise SnapshotError(f"{str(p)!r}: cannot read as AnnData ({type(e).__name__}: {e})") from None
    return from_anndata(
        adata,
        time_col,
        label_col,
        layer=layer,
        obsm=obsm,
        time_values=time_values,
        genes=genes,
        name=p.stem if name is None else name,
        population_col=population_col,
        where=repr(str(p)),
    )


def _obs_column(adata, key: str | None, what: str, where: str):
    if key is not None and key not in adata.obs.columns:
        raise MissingColumnError(
            f"{where}: {what} {key!r} not in obs; obs columns are {_short([str(c) for c in adata.obs.columns])}"
        )


def anndata_times(adata, time_col: str, time_values=None, where: str = "AnnData") -> tuple[np.ndarray, np.ndarray]:
    """``(times (T,), index (n_obs,))`` from the ``obs`` column ``time_col``: numbers, strings
    with one number ("day2"), or an ordered categorical whose category order is the time order."""
    _obs_column(adata, time_col, "time column", where)
    col = adata.obs[time_col]
    if hasattr(col, "cat") and getattr(col.cat, "ordered", False) and time_values is None:
        cats = list(col.cat.categories)
        if any(_to_number(c) is None for c in cats):
            time_values = {c: float(i) for i, c in enumerate(cats)}
    raw = col.to_numpy() if not hasattr(col, "cat") else col.astype(object).to_numpy()
    return _times_from_column(raw, time_values, where, time_col)


def _matrix(adata, layer, obsm, genes, where):
    """The cells × features matrix to read and its feature names."""
    if layer is not None and obsm is not None:
        raise ValueError("pass at most one of layer= and obsm=")
    if genes is not None and obsm is not None:
        raise ValueError("genes= selects var_names and cannot be combined with obsm=")
    if obsm is not None:
        if obsm not in adata.obsm:
            raise MissingColumnError(f"{where}: obsm key {obsm!r} not found; obsm keys are {list(adata.obsm.keys())}")
        X = adata.obsm[obsm]
        names = [str(c) for c in X.columns] if hasattr(X, "columns") else None
        return (X.to_numpy() if hasattr(X, "to_numpy") else X), names
    if layer is not None:
        if layer not in adata.layers:
            raise MissingColumnError(f"{where}: layer {layer!r} not found; layers are {list(adata.layers.keys())}")
        X = adata.layers[layer]
    else:
        X = adata.X
        if X is None:
            raise SnapshotError(f"{where}: X is empty; pass layer= or obsm=")
    names = [str(v) for v in adata.var_names]
    if genes is not None:
        pos = {g: i for i, g in enumerate(names)}
        missing = [g for g in genes if g not in pos]
        if missing:
            raise MissingColumnError(f"{where}: {len(missing)} gene(s) not in var_names, e.g. {missing[:5]}")
        X, names = X[:, [pos[g] for g in genes]], [str(g) for g in genes]
    return X, names


def from_anndata(
    adata,
    time_col: str,
    label_col: str | None = None,
    *,
    layer: str | None = None,
    obsm: str | None = None,
    time_values=None,
    genes: Sequence[str] | None = None,
    name: str | None = None,
    population_col: str | None = None,
    where: str = "AnnData",
    return_rows: bool = False,
):
    """:class:`Snapshots` (or, with ``population_col``, :class:`~mfsde.data.Populations`) from an
    in-memory ``AnnData``.

    Args:
        time_col: ``obs`` column with each cell's time (numbers, strings such as "day2", or a
            categorical; see :func:`load_csv` for ``time_values``).
        label_col: optional ``obs`` column with labels (e.g. cell type).
        layer: use ``adata.layers[layer]`` instead of ``X`` (e.g. raw counts).
        obsm: use ``adata.obsm[obsm]`` instead (an existing embedding, e.g. ``"X_pca"``).
        genes: keep only these ``var_names`` (in this order) before densifying.
        return_rows: also return the ``obs`` positions of every snapshot's cells: a list of
            ``(n_k,)`` arrays per time point (a dict population → such a list with populations),
            so results per cell can be written back to ``adata`` in its own order.

    Within a time point, cells keep their ``obs`` order. Sparse matrices are densified one time
    point at a time (as float32).
    """
    _obs_column(adata, label_col, "label column", where)
    _obs_column(adata, population_col, "population column", where)
    X, feature_names = _matrix(adata, layer, obsm, genes, where)
    times, index = anndata_times(adata, time_col, time_values, where)
    name = "anndata" if name is None else name

    def block(rows):
        b = X[rows]
        return np.asarray(b.toarray() if hasattr(b, "toarray") else b, dtype=np.float32)

    labs = None if label_col is None else adata.obs[label_col].astype(str).to_numpy()
    if population_col is not None:
        pop = adata.obs[population_col].astype(str).to_numpy()
        out = _split_by_population(pop, index, times, where, block, labs, feature_names, name)
        if not return_rows:
            return out
        rows = {}
        for p in out.names:
            rows_p = np.flatnonzero(pop == p)
            rows[p] = [rows_p[index[rows_p] == k] for k in np.unique(index[rows_p])]
        return out, rows
    rows = [np.flatnonzero(index == k) for k in range(len(times))]
    snaps = _wrap(
        where,
        Snapshots,
        times,
        [block(r) for r in rows],
        None if labs is None else [labs[r] for r in rows],
        feature_names,
        name,
    )
    return (snaps, rows) if return_rows else snaps
