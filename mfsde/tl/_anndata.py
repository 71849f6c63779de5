"""Shared AnnData plumbing of :mod:`mfsde.tl`, :mod:`mfsde.pp` and :mod:`mfsde.pl`: key checks
with one-line errors, the ``uns["mfsde"]`` record, and snapshots read from ``obsm``."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from mfsde.data import SnapshotError, get_task
from mfsde.data._load_common import MissingColumnError, _short
from mfsde.data._load_h5ad import anndata_times, from_anndata

UNS_KEY = "mfsde"


def check_adata(adata) -> None:
    if not all(hasattr(adata, a) for a in ("obs", "obsm", "n_obs", "uns")):
        raise TypeError(f"adata must be an AnnData, got {type(adata).__name__}")


def uns_record(adata) -> dict:
    """``adata.uns["mfsde"]``, created when absent."""
    rec = adata.uns.get(UNS_KEY)
    if rec is None:
        rec = adata.uns[UNS_KEY] = {}
    return rec


def fit_record(adata) -> dict:
    """What :func:`mfsde.tl.fit` recorded in ``uns["mfsde"]["fit"]`` ({} before a fit)."""
    return dict(adata.uns.get(UNS_KEY, {}).get("fit", {}))


def require_obs(adata, key: str, what: str) -> None:
    if not isinstance(key, str) or key not in adata.obs.columns:
        raise MissingColumnError(
            f"{what} {key!r} not in adata.obs; obs columns are {_short([str(c) for c in adata.obs.columns])}"
        )


def obsm_key(basis: str) -> str:
    """scanpy's convention: ``"pca"`` and ``"X_pca"`` both name ``obsm["X_pca"]``."""
    if not isinstance(basis, str) or not basis:
        raise TypeError(f"basis must be an obsm key such as 'X_pca' or 'pca', got {basis!r}")
    return basis if basis.startswith("X_") else f"X_{basis}"


def require_obsm(adata, basis: str, what: str = "basis") -> str:
    key = obsm_key(basis)
    if key not in adata.obsm:
        raise MissingColumnError(f"{what} {basis!r}: obsm[{key!r}] not found; obsm keys are {list(adata.obsm.keys())}")
    return key


def velocity_key(basis: str) -> str:
    """``"X_pca"`` → ``"velocity_pca"`` (scVelo's and CellRank's naming)."""
    return "velocity_" + obsm_key(basis)[2:]


def _advice(e: SnapshotError) -> SnapshotError:
    msg = str(e)
    if "time_values" in msg:  # the loaders' advice; AnnData users set the column's type instead
        msg = msg.split("; pass time_values")[0] + (
            "; make it numbers, or an ordered categorical whose category order is the time order"
        )
    return SnapshotError(msg)


def times_of(adata, time_key: str) -> tuple[np.ndarray, np.ndarray]:
    """``(times (T,), index (n_obs,))`` of ``obs[time_key]`` (see ``anndata_times`` in mfsde/data/_load_h5ad.py)."""
    require_obs(adata, time_key, "time_key")
    try:
        return anndata_times(adata, time_key, where="adata")
    except SnapshotError as e:
        raise _advice(e) from None


def time_labels(adata, time_key: str, times) -> list:
    """The ``obs[time_key]`` value of each time in ``times``: the observed label where the time was
    observed, else the number (formatted as text for a text or categorical column)."""
    t, index = times_of(adata, time_key)
    col = adata.obs[time_key]
    numeric = col.dtype.kind in "biuf"
    raw = col.to_numpy() if numeric else col.astype(object).to_numpy()
    first = {float(t[k]): raw[np.argmax(index == k)] for k in range(len(t))}
    return [first.get(float(x), float(x) if numeric else f"{float(x):g}") for x in np.asarray(times, dtype=float)]


def task_of(task, n_times: int):
    """A :class:`~mfsde.data.Task` for ``n_times`` time points; ``None`` means ``"all"``."""
    return get_task("all" if task is None else task, n_times)


def need_time_key(adata, time_key: str | None) -> str:
    """``time_key``, or the one :func:`mfsde.tl.fit` recorded; checked against ``obs``."""
    time_key = time_key or fit_record(adata).get("time_key")
    if time_key is None:
        raise ValueError("time_key is needed (adata has no mfsde fit record in uns['mfsde']['fit'])")
    require_obs(adata, time_key, "time_key")
    return time_key


def resolve(adata, model, time_key: str | None, basis: str | None) -> tuple[str, str]:
    """``(time_key, obsm key)``: the given ones or those recorded by :func:`mfsde.tl.fit`,
    checked against ``adata`` and against the model's dimension."""
    rec = fit_record(adata)
    time_key = need_time_key(adata, time_key)
    key = require_obsm(adata, basis or rec.get("basis", "X_pca"))
    dim = getattr(model, "dim", None)
    if dim is not None and adata.obsm[key].shape[1] != dim:
        raise ValueError(
            f"the model has dimension {dim} but obsm[{key!r}] has {adata.obsm[key].shape[1]} columns; "
            f"pass the basis the model was fitted on"
        )
    return time_key, key


def snapshots(
    adata,
    time_key: str,
    basis: str,
    *,
    label_key: str | None = None,
    population_key: str | None = None,
    return_rows: bool = False,
):
    """Snapshots (or Populations) of ``obsm[basis]`` by ``obs[time_key]``; see
    :func:`mfsde.data.from_anndata`."""
    if label_key is not None:
        require_obs(adata, label_key, "groupby")
    if population_key is not None:
        require_obs(adata, population_key, "population_key")
    try:
        return from_anndata(
            adata,
            time_key,
            label_key,
            obsm=require_obsm(adata, basis),
            population_col=population_key,
            name="adata",
            where="adata",
            return_rows=return_rows,
        )
    except SnapshotError as e:
        raise _advice(e) from None


def jsonable(obj: Any) -> str:
    """A JSON string (``uns`` values must survive ``write_h5ad``; nested lists of dicts do not)."""

    def default(o):
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, (np.integer, np.floating)):
            return o.item()
        return str(o)

    return json.dumps(obj, default=default)
