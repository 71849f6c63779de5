"""Preprocessing on AnnData, scanpy-style (``import mfsde; mfsde.pp.preprocess(adata, "day")``).

:func:`preprocess` runs scIMF's preprocessing (:class:`mfsde.data.Preprocessor`: library-size
normalisation, log1p, highly variable genes, scaling, PCA) on an ``AnnData`` with every fitted
quantity fitted on the *training* time points only, and writes the result where scanpy users
look for it:

=============================  ==================================================================
``obsm[key_added]``            ``(n_obs, n_comps)`` float32 PCA coordinates of every cell (default
                               ``"X_pca"``), held-out times projected with the training fit
``varm["PCs"]``                ``(n_vars, n_comps)`` loadings; zero rows for genes not selected
``var["highly_variable"]``     bool, the genes used (all ``True`` when no selection was made)
``uns["pca"]``                 ``{"variance_ratio", "params"}`` like ``scanpy.pp.pca``
``uns["mfsde"]["preprocess"]`` the full record (JSON string): steps, genes, training times
=============================  ==================================================================

Needs ``anndata`` and scikit-learn (``pip install mfsde[sc]``).
"""

from __future__ import annotations

import json

import numpy as np

from mfsde.data import Preprocessor, Snapshots
from mfsde.data._load_common import MissingColumnError
from mfsde.tl._anndata import check_adata, task_of, times_of, uns_record

__all__ = ["preprocess"]


def preprocess(
    adata,
    time_key: str,
    *,
    task=None,
    kind: str = "counts",
    layer: str | None = None,
    n_top_genes: int | None = 2000,
    target_sum: float | None = 1e4,
    log1p: bool = True,
    scale: bool = True,
    max_value: float | None = None,
    n_comps: int = 50,
    key_added: str = "X_pca",
    random_state: int | None = 0,
    copy: bool = False,
):
    """Fit scIMF's preprocessing on the training time points of ``task`` and project every cell.

    Args:
        adata: the ``AnnData`` (cells × genes in ``X`` or ``layers[layer]``).
        time_key: ``obs`` column with each cell's time.
        task: held-out time points whose cells must not influence any fitted quantity (a task
            name such as ``"loo:2"`` or a :class:`~mfsde.data.Task`); ``None``: fit on all times.
        kind: ``"counts"`` (normalise, log1p, HVG, scale, PCA) or ``"embedded"`` (data that are
            already an embedding: scaling and PCA only; ``n_top_genes``, ``target_sum`` and
            ``log1p`` are ignored).
        n_comps: PCA components (capped by genes and training cells).
        key_added: the ``obsm`` key of the coordinates.
        copy: work on and return a copy; otherwise ``adata`` is modified and ``None`` returned.
    """
    check_adata(adata)
    adata = adata.copy() if copy else adata
    times, index = times_of(adata, time_key)
    task = task_of(task, len(times))
    X = adata.X if layer is None else _layer(adata, layer)
    if X is None:
        raise ValueError("adata.X is empty; pass layer= with the counts")
    if kind == "counts" and layer is None and "log1p" in adata.uns:
        raise ValueError(
            "adata.X is already log-normalised (uns['log1p'] is set) and kind='counts' would "
            "normalise it again; pass layer= with the raw counts, or kind='embedded'"
        )
    names = [str(v) for v in adata.var_names]
    blocks = [_dense(X[np.flatnonzero(index == k)]) for k in task.train]
    train = Snapshots(np.asarray(times)[list(task.train)], blocks, feature_names=names, name="train")
    counts = kind == "counts"
    if counts:  # normalising, log1p and HVG selection are for counts: refuse anything else, never guess
        where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
        for b in blocks:
            if (b < 0).any():
                raise ValueError(
                    f"kind='counts' needs raw counts but {where} has negative values (min {b.min():.3g}); "
                    f"pass layer= with the counts, or kind='embedded' for an embedding"
                )
            frac = b[b != np.round(b)]
            if frac.size:
                raise ValueError(
                    f"kind='counts' needs raw counts but {where} has non-integer values (e.g. {frac[0]:.3g}); "
                    f"pass layer= with the counts, or kind='embedded' for continuous data"
                )
    pre = Preprocessor(
        kind,
        n_components=n_comps,
        scale=scale,
        max_value=max_value,
        random_state=random_state,
        **(dict(n_top_genes=n_top_genes, target_sum=target_sum, log1p=log1p) if counts else {}),
    )
    pre.fit(train)
    out = np.empty((adata.n_obs, pre.record["output_dim"]), dtype=np.float32)
    step = 20000
    for a in range(0, adata.n_obs, step):  # dense blocks of bounded size
        out[a : a + step] = pre.transform_array(_dense(X[a : a + step]), f"cells {a}..{min(a + step, adata.n_obs) - 1}")
    adata.obsm[key_added] = out
    genes = slice(None) if pre.genes_ is None else pre.genes_
    selected = np.zeros(len(names), dtype=bool)
    selected[genes] = True
    adata.var["highly_variable"] = selected
    if pre.components_ is not None:
        loadings = np.zeros((len(names), pre.components_.shape[0]), dtype=np.float32)
        loadings[genes] = pre.components_.T
        adata.varm["PCs"] = loadings
        adata.uns["pca"] = {
            "variance_ratio": np.asarray(pre.explained_variance_ratio_),
            "params": {
                "zero_center": True,
                "use_highly_variable": pre.genes_ is not None,
                "mfsde_fitted_on_times": np.asarray(times)[list(task.train)],
            },
        }
    # the Preprocessor saw the training snapshots only: its indices are into that subset
    record = dict(
        pre.record,
        time_key=time_key,
        key_added=key_added,
        train_indices=list(task.train),
        heldout_indices=list(task.heldout),
        train_times=[float(times[k]) for k in task.train],
        heldout_times=[float(times[k]) for k in task.heldout],
    )
    uns_record(adata)["preprocess"] = json.dumps(record)
    return adata if copy else None


def _layer(adata, layer: str):
    if layer not in adata.layers:
        raise MissingColumnError(f"layer {layer!r} not in adata.layers; layers are {list(adata.layers.keys())}")
    return adata.layers[layer]


def _dense(block) -> np.ndarray:
    return np.asarray(block.toarray() if hasattr(block, "toarray") else block, dtype=np.float32)
