"""Preprocessing fitted on the training time points only, then applied to every time point.

scIMF's evaluation protocol (../shared/docs/scimf.md): 2000 highly variable genes chosen on
the training times, library-size normalisation to 1e4, log1p, standard scaling, PCA to 50
dimensions fitted on the training times; all time points are projected with it. Held-out
cells never influence a fitted quantity (gene selection, scaling statistics, PCA axes), so
evaluation on held-out times does not leak.

Two kinds of input:

- ``kind="counts"`` (gene-count matrices, e.g. from :func:`~mfsde.data`):
  per-cell normalisation to ``target_sum`` → ``log1p`` → highly variable genes
  (Seurat dispersion flavour, as ``scanpy.pp.highly_variable_genes(flavor="seurat")``,
  reimplemented in numpy) → standard scaling → PCA.
- ``kind="embedded"`` (already reduced data: CITE PCA scores, EMT): optional standard
  scaling and/or PCA only; by default nothing (the identity, recorded as such).

Library-size normalisation and log1p act on each cell alone and therefore involve no fitting.
PCA uses scikit-learn (imported lazily; ``pip install mfsde[sc]``); everything else is numpy.
After :meth:`Preprocessor.fit` the transform is pure numpy and its state can be saved
(:meth:`Preprocessor.state_dict`) and restored without scikit-learn.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from mfsde.data._genes import _mean_var, highly_variable_genes, normalize_total
from mfsde.data._snapshots import SnapshotError, Snapshots

KINDS = ("counts", "embedded")
_DEFAULT: Any = object()


def _require_sklearn():
    try:
        from sklearn.decomposition import PCA
    except ImportError as e:
        raise ImportError("PCA in mfsde.data needs scikit-learn: pip install mfsde[sc]") from e
    return PCA


class Preprocessor:
    """Fit on training time points, transform all time points.

    Args:
        kind: ``"counts"`` or ``"embedded"`` (see the module docstring).
        n_top_genes: highly variable genes to keep (counts; default 2000; ``None``: all genes).
        target_sum: per-cell library size after normalisation (counts; default 1e4; ``None``: skip).
        log1p: apply ``log1p`` (counts; default True).
        scale: standard-scale each feature with the training mean / std (ddof=0; constant
            features get std 1). Default True for counts, False for embedded data.
        max_value: clip scaled values to ``[-max_value, max_value]`` (scanpy's ``max_value``).
        n_components: PCA dimension (default 50 for counts, ``None`` = no PCA for embedded).
            Reduced to ``min(n_components, #features, #training cells)`` when larger.
        n_bins: bins of the HVG dispersion normalisation.
        svd_solver, random_state: passed to ``sklearn.decomposition.PCA``.

    >>> pre = Preprocessor("counts")
    >>> pca_snaps = pre.fit_transform(counts_snaps, task.train)   # fitted on task.train only
    >>> pre.record   # JSON-serialisable account of what was done
    """

    def __init__(
        self,
        kind: str = "counts",
        *,
        n_top_genes=_DEFAULT,
        target_sum=_DEFAULT,
        log1p=_DEFAULT,
        scale=_DEFAULT,
        max_value: float | None = None,
        n_components=_DEFAULT,
        n_bins: int = 20,
        svd_solver: str = "auto",
        random_state: int | None = 0,
    ):
        if kind not in KINDS:
            raise ValueError(f"unknown preprocessing kind {kind!r}; choose one of {list(KINDS)}")
        counts = kind == "counts"
        if not counts:
            given = [
                n
                for n, v in (("n_top_genes", n_top_genes), ("target_sum", target_sum))
                if v is not _DEFAULT and v is not None
            ]
            if log1p is not _DEFAULT and log1p:
                given.append("log1p")
            if given:
                raise ValueError(f"{given} apply to kind='counts' only; embedded data get scaling and/or PCA")

        def pick(v, d_counts, d_emb):
            return (d_counts if counts else d_emb) if v is _DEFAULT else v

        self.kind = kind
        self.n_top_genes = pick(n_top_genes, 2000, None)
        self.target_sum = pick(target_sum, 1e4, None)
        self.log1p = bool(pick(log1p, True, False))
        self.scale = bool(pick(scale, True, False))
        self.n_components = pick(n_components, 50, None)
        self.max_value = max_value
        self.n_bins = int(n_bins)
        self.svd_solver = svd_solver
        self.random_state = random_state
        for nm in ("n_top_genes", "n_components"):
            v = getattr(self, nm)
            if v is not None and (not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1):
                raise ValueError(f"{nm} must be a positive integer or None, got {v!r}")
        if self.target_sum is not None and not (float(self.target_sum) > 0):
            raise ValueError(f"target_sum must be positive or None, got {self.target_sum!r}")
        if max_value is not None and not (float(max_value) > 0):
            raise ValueError(f"max_value must be positive or None, got {max_value!r}")
        self._reset()

    def _reset(self) -> None:
        self.fitted = False
        self.input_dim: int | None = None
        self.input_features: list[str] | None = None
        self.genes_: np.ndarray | None = None  # indices of the kept input features
        self.scale_mean_: np.ndarray | None = None
        self.scale_std_: np.ndarray | None = None
        self.pca_mean_: np.ndarray | None = None
        self.components_: np.ndarray | None = None  # (k, n_features_after_hvg)
        self.explained_variance_ratio_: np.ndarray | None = None
        self.record: dict = {}

    def params(self) -> dict:
        return {
            "kind": self.kind,
            "n_top_genes": self.n_top_genes,
            "target_sum": self.target_sum,
            "log1p": self.log1p,
            "scale": self.scale,
            "max_value": self.max_value,
            "n_components": self.n_components,
            "n_bins": self.n_bins,
            "svd_solver": self.svd_solver,
            "random_state": self.random_state,
        }

    def __repr__(self) -> str:
        p = ", ".join(f"{k}={v!r}" for k, v in self.params().items() if k != "kind")
        return f"Preprocessor({self.kind!r}, {p}{', fitted' if self.fitted else ''})"

    # -- the per-cell part -----------------------------------------------------------------------
    def _check_input(self, x: np.ndarray, what: str) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2:
            raise SnapshotError(f"{what}: expected (n_cells, n_features), got shape {x.shape}")
        if self.fitted and x.shape[1] != self.input_dim:
            raise SnapshotError(f"{what} has {x.shape[1]} features but the preprocessor was fitted on {self.input_dim}")
        if self.kind == "counts" and self.target_sum is not None:
            neg = int((x < 0).sum())
            if neg:
                raise SnapshotError(
                    f"{what} has {neg} negative value(s); kind='counts' expects raw counts "
                    "(use kind='embedded' for already transformed data)"
                )
        return x

    def _cellwise(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "counts" and self.target_sum is not None:
            x = normalize_total(x, float(self.target_sum))
        if self.log1p:
            x = np.log1p(x, dtype=np.float32)
        return x

    def _fitted_part(self, x: np.ndarray) -> np.ndarray:
        if self.genes_ is not None:
            x = x[:, self.genes_]
        x = np.asarray(x, dtype=np.float64)
        if self.scale_mean_ is not None:
            x = (x - self.scale_mean_) / self.scale_std_
            if self.max_value is not None:
                x = np.clip(x, -self.max_value, self.max_value)
        if self.components_ is not None:
            x = (x - self.pca_mean_) @ self.components_.T
        return x.astype(np.float32)

    # -- fit / transform -------------------------------------------------------------------------
    def fit(self, snapshots: Snapshots, train_indices=None) -> Preprocessor:
        """Fit every data-dependent step on the time points ``train_indices`` only.

        ``train_indices``: time-point indices, or a :class:`~mfsde.data.Task` (its ``train``);
        ``None`` means all time points (no held-out data). For :class:`~mfsde.data.Populations`:
        a :class:`~mfsde.data.PopulationTask` (or a time task for every population), and the fit
        pools the training times of the training populations only.
        """
        from mfsde.data._populations import Populations, as_population_task

        if isinstance(snapshots, Populations):
            ptask = as_population_task("all" if train_indices is None else train_indices)
            tasks = ptask.resolve(snapshots)
            blocks = [snapshots[n].data[i] for n in ptask.training_names(snapshots) for i in tasks[n].train]
            pooled = Snapshots(np.arange(len(blocks), dtype=np.float64), blocks, feature_names=snapshots.feature_names)
            return self.fit(pooled, None)
        if not isinstance(snapshots, Snapshots):
            raise TypeError(f"fit takes a Snapshots, got {type(snapshots).__name__}")
        if train_indices is None:
            train = list(range(snapshots.n_times))
        else:
            train = list(getattr(train_indices, "train", train_indices))
        bad = [i for i in train if not isinstance(i, (int, np.integer)) or not 0 <= int(i) < snapshots.n_times]
        if bad or not train:
            raise ValueError(
                f"train_indices {train} invalid for {snapshots.n_times} time points "
                f"(need indices in 0..{snapshots.n_times - 1})"
            )
        train = sorted({int(i) for i in train})
        self._reset()
        self.input_dim = snapshots.dim
        self.input_features = snapshots.feature_names
        blocks = [self._cellwise(self._check_input(snapshots.data[i], f"time point {i}")) for i in train]
        n_train = sum(b.shape[0] for b in blocks)
        steps: list[dict] = []
        if self.kind == "counts" and self.target_sum is not None:
            steps.append({"step": "normalize_total", "target_sum": float(self.target_sum)})
        if self.log1p:
            steps.append({"step": "log1p"})

        n_feat = snapshots.dim
        if self.kind == "counts" and self.n_top_genes is not None:
            if self.n_top_genes >= n_feat:
                self.genes_ = None
                steps.append(
                    {
                        "step": "highly_variable_genes",
                        "flavor": "seurat",
                        "n_top_genes": self.n_top_genes,
                        "n_selected": n_feat,
                        "note": f"only {n_feat} genes: all kept",
                        "genes": None,
                    }
                )
            else:
                # expects log data: log1p above, or input that is already log-normalised
                idx, _ = highly_variable_genes(blocks, self.n_top_genes, self.n_bins)
                self.genes_ = idx.astype(np.int64)
                n_feat = len(idx)
                names = None if snapshots.feature_names is None else [snapshots.feature_names[i] for i in idx]
                steps.append(
                    {
                        "step": "highly_variable_genes",
                        "flavor": "seurat",
                        "n_top_genes": self.n_top_genes,
                        "n_bins": self.n_bins,
                        "n_selected": n_feat,
                        "genes": names if names is not None else idx.tolist(),
                    }
                )
        if self.genes_ is not None:
            blocks = [b[:, self.genes_] for b in blocks]

        if self.scale:
            mean, var, _ = _mean_var(blocks)
            var_pop = var * (n_train - 1) / n_train  # ddof=0, as sklearn's StandardScaler
            std = np.sqrt(var_pop)
            n_const = int((std == 0).sum())
            std[std == 0] = 1.0
            self.scale_mean_, self.scale_std_ = mean, std
            steps.append({"step": "scale", "ddof": 0, "max_value": self.max_value, "n_constant_features": n_const})

        if self.n_components is not None:
            PCA = _require_sklearn()
            k = min(int(self.n_components), n_feat, n_train)
            x = np.concatenate(blocks, axis=0).astype(np.float64)
            if self.scale_mean_ is not None:
                x = (x - self.scale_mean_) / self.scale_std_
                if self.max_value is not None:
                    x = np.clip(x, -self.max_value, self.max_value)
            pca = PCA(n_components=k, svd_solver=self.svd_solver, random_state=self.random_state)
            pca.fit(x)
            self.pca_mean_ = pca.mean_.astype(np.float64)
            self.components_ = pca.components_.astype(np.float64)
            self.explained_variance_ratio_ = pca.explained_variance_ratio_.astype(np.float64)
            step = {
                "step": "pca",
                "n_components": k,
                "requested": int(self.n_components),
                "svd_solver": self.svd_solver,
                "random_state": self.random_state,
                "explained_variance_ratio": self.explained_variance_ratio_.tolist(),
            }
            if k < self.n_components:
                step["note"] = f"reduced from {self.n_components} to {k} (features {n_feat}, training cells {n_train})"
            steps.append(step)
            out_dim = k
        else:
            out_dim = n_feat
        if not steps:
            steps.append({"step": "identity"})
        self.fitted = True
        self.record = {
            "kind": self.kind,
            "params": self.params(),
            "train_indices": train,
            "train_times": [float(snapshots.times[i]) for i in train],
            "heldout_indices": [i for i in range(snapshots.n_times) if i not in train],
            "n_train_cells": int(n_train),
            "input_dim": int(snapshots.dim),
            "output_dim": int(out_dim),
            "data": snapshots.name,
            "steps": steps,
        }
        return self

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError("Preprocessor is not fitted: call fit(snapshots, train_indices) first")

    def output_feature_names(self) -> list[str] | None:
        self._check_fitted()
        if self.components_ is not None:
            return [f"PC{i + 1}" for i in range(self.components_.shape[0])]
        if self.input_features is None:
            return None
        if self.genes_ is None:
            return list(self.input_features)
        return [self.input_features[i] for i in self.genes_]

    def transform_array(self, x: np.ndarray, what: str = "input") -> np.ndarray:
        """Transform one ``(n_cells, input_dim)`` array; returns float32 ``(n_cells, output_dim)``."""
        self._check_fitted()
        return self._fitted_part(self._cellwise(self._check_input(x, what)))

    def transform(self, snapshots: Snapshots) -> Snapshots:
        """Apply the fitted steps to every time point (labels and times kept); to every population
        of :class:`~mfsde.data.Populations`."""
        from mfsde.data._populations import Populations

        self._check_fitted()
        if isinstance(snapshots, Populations):
            return Populations([(n, self.transform(s)) for n, s in snapshots.items()], snapshots.name)
        if not isinstance(snapshots, Snapshots):
            raise TypeError(f"transform takes a Snapshots, got {type(snapshots).__name__}")
        if snapshots.dim != self.input_dim:
            raise SnapshotError(
                f"snapshots have d = {snapshots.dim} but the preprocessor was fitted on d = {self.input_dim}"
            )
        if (
            self.input_features is not None
            and snapshots.feature_names is not None
            and list(snapshots.feature_names) != list(self.input_features)
        ):
            diff = next(i for i, (a, b) in enumerate(zip(snapshots.feature_names, self.input_features)) if a != b)
            raise SnapshotError(
                f"feature names differ from those fitted (first at column {diff}: "
                f"{snapshots.feature_names[diff]!r} vs {self.input_features[diff]!r})"
            )
        data = [self.transform_array(a, f"time point {k}") for k, a in enumerate(snapshots.data)]
        return Snapshots(snapshots.times.copy(), data, snapshots.labels, self.output_feature_names(), snapshots.name)

    def fit_transform(self, snapshots: Snapshots, train_indices=None) -> Snapshots:
        return self.fit(snapshots, train_indices).transform(snapshots)

    # -- saving ----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Params, record and fitted arrays (numpy); restore with :meth:`from_state_dict`."""
        self._check_fitted()
        arrays = {
            k: getattr(self, k)
            for k in ("genes_", "scale_mean_", "scale_std_", "pca_mean_", "components_", "explained_variance_ratio_")
        }
        return {
            "params": self.params(),
            "record": copy.deepcopy(self.record),
            "input_dim": self.input_dim,
            "input_features": self.input_features,
            "arrays": {k: (None if v is None else np.array(v)) for k, v in arrays.items()},
        }

    @classmethod
    def from_state_dict(cls, state: dict) -> Preprocessor:
        params = dict(state["params"])
        kind = params.pop("kind")
        if kind == "embedded":
            for k in ("n_top_genes", "target_sum"):
                params.pop(k, None)
            if not params.get("log1p"):
                params.pop("log1p", None)
        pre = cls(kind, **params)
        for k, v in state["arrays"].items():
            setattr(pre, k, None if v is None else np.asarray(v))
        pre.input_dim = int(state["input_dim"])
        pre.input_features = state.get("input_features")
        pre.record = copy.deepcopy(state["record"])
        pre.fitted = True
        return pre

    def to_dict(self) -> dict:
        """JSON-serialisable record of the fit (same as :attr:`record`)."""
        self._check_fitted()
        return copy.deepcopy(self.record)
