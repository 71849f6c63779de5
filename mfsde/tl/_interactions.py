"""``mfsde.tl.interactions``: cell-type × cell-type interaction per time point, in ``uns``."""

from __future__ import annotations

import numpy as np

from mfsde.explain._influence import influence_matrix
from mfsde.explain._weights import interaction_weights, label_weights
from mfsde.tl._anndata import check_adata, fit_record, require_obs, resolve, snapshots, uns_record


def interactions(
    adata,
    model,
    groupby: str = "cell_type",
    *,
    time_key: str | None = None,
    basis: str | None = None,
    population: str | None = None,
    n_cells: int | None = 1000,
    n_permutations: int = 100,
    cellwise: bool = False,
    measure: str = "weights",
    seed: int = 0,
) -> dict:
    """Aggregate the model's interaction weights among the observed cells of each time point by
    the ``obs[groupby]`` categories.

    ``measure="weights"`` aggregates the kernel's pair weights (attention probabilities, kernel
    values); ``measure="influence"`` the sensitivity ‖∂f_inter(x_i)/∂x_j‖ of each receiver's drift
    to each source (:func:`~mfsde.explain.influence_matrix`, data units): softmax weights sum to 1
    per receiver and cannot say that a cell type feels nothing, the influence can.

    For every time point: ``matrix[a, b]`` = mean weight of source type b on receiver type a
    (rows = receivers), its standard error ``sem``, ``net = matrix − matrixᵀ`` (b drives a more
    than a drives b where positive), the :func:`~mfsde.explain.asymmetry_index` of ``matrix``,
    and a sampling-noise reference for it: the index recomputed with the labels shuffled among
    the same cells ``n_permutations`` times (mean, 95th percentile and the permutation p-value).
    An asymmetry above the null's 95th percentile is one the cell types explain; below it, the
    one-sidedness is what any random grouping of these cells would show. For a kernel that
    declares itself symmetric (``rbf``) the matrices are symmetric and the null entries are NaN.
    Cells whose ``groupby`` value is missing (NaN) are left out of the label matrices (they still
    act on the others through the drift).

    ``n_cells`` caps the cells per time point (a random subset; the matrix is N × N; ``None``:
    all). With ``cellwise=True`` the cell-wise N × N weights are kept as well. With populations
    (``population_key`` at fit) ``population`` picks one (default: the first).

    Writes and returns ``adata.uns["mfsde"]["interactions"]``: ``groupby``, ``names`` ``(L,)``,
    ``times`` ``(T,)``, ``matrix``/``net``/``sem`` ``(T, L, L)``, ``counts`` ``(T, L)``,
    ``asymmetry``, ``asymmetry_null_mean``, ``asymmetry_null_q95``, ``asymmetry_p_value`` and
    ``n_cells`` (labelled cells used) ``(T,)``, ``kernel``, ``measure``; with ``cellwise`` also
    ``cellwise[str(k)] = {"obs_names", "weights"}`` per time index k.
    """
    check_adata(adata)
    require_obs(adata, groupby, "groupby")
    cats = np.unique(adata.obs[groupby].dropna().astype(str).to_numpy())
    if len(cats) < 2:
        raise ValueError(f"groupby {groupby!r} has a single category {cats.tolist()}; need at least 2 to compare")
    if measure not in ("weights", "influence"):
        raise ValueError(f"measure must be 'weights' or 'influence', got {measure!r}")
    if n_permutations < 0:
        raise ValueError(f"n_permutations must be >= 0, got {n_permutations}")
    time_key, key = resolve(adata, model, time_key, basis)
    population_key = fit_record(adata).get("population_key") or None
    data, rows = snapshots(adata, time_key, key, label_key=groupby, population_key=population_key, return_rows=True)
    if population_key:
        population = data.names[0] if population is None else data.check_names([population])[0]
        data, rows = data[population], rows[population]
    elif population is not None:
        raise ValueError("population= needs a fit with population_key")
    maps = interaction_weights(model, data, n_cells=n_cells, seed=seed)
    rng = np.random.default_rng(seed)
    names = [str(c) for c in cats]  # cells without a label (NaN) take no part in the label matrices
    symmetric = measure == "weights" and bool(
        getattr(getattr(getattr(model, "drift", model), "inter", None), "symmetric", False)
    )
    out = {
        k: []
        for k in (
            "matrix",
            "net",
            "sem",
            "counts",
            "asymmetry",
            "asymmetry_null_mean",
            "asymmetry_null_q95",
            "asymmetry_p_value",
            "n_cells",
        )
    }
    cell = {}
    for m in maps:
        if measure == "influence":
            x = np.asarray(data.data[m.time_index], dtype=np.float32)[m.cells]
            m.weights = influence_matrix(model, x, m.time)
        lab = label_weights(m.weights, m.labels, names=names)
        # a symmetric kernel's label matrix is symmetric: its asymmetry (~1e-16) has no null to compare
        null = np.array(
            []
            if symmetric
            else [
                label_weights(m.weights, rng.permutation(m.labels), names=names).asymmetry
                for _ in range(n_permutations)
            ]
        )
        out["matrix"].append(lab.matrix)
        out["net"].append(lab.net)
        out["sem"].append(lab.sem)
        out["counts"].append(lab.counts)
        out["asymmetry"].append(lab.asymmetry)
        out["asymmetry_null_mean"].append(null.mean() if null.size else np.nan)
        out["asymmetry_null_q95"].append(np.quantile(null, 0.95) if null.size else np.nan)
        out["asymmetry_p_value"].append((1 + (null >= lab.asymmetry).sum()) / (1 + null.size) if null.size else np.nan)
        out["n_cells"].append(int(lab.counts.sum()))
        if cellwise:
            obs_pos = rows[m.time_index][m.cells]
            cell[str(m.time_index)] = {
                "obs_names": np.asarray(adata.obs_names[obs_pos]).astype(str),
                "weights": m.weights.astype(np.float32),
            }
    rec = {k: np.asarray(v, dtype=np.int64 if k in ("counts", "n_cells") else np.float64) for k, v in out.items()}
    rec.update(
        groupby=groupby,
        names=np.asarray(names, dtype=str),
        times=np.asarray(data.times, dtype=np.float64),
        kernel=maps[0].kernel,
        measure=measure,
        n_permutations=int(n_permutations),
        population=population or "",
    )
    if cellwise:
        rec["cellwise"] = cell
    uns_record(adata)["interactions"] = rec
    return rec
