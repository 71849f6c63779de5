"""``mfsde.tl.predict``: simulated cells as an AnnData that concatenates with the observed one."""

from __future__ import annotations

import numpy as np
import torch

from mfsde.data._inputs import draw_initial
from mfsde.tl._anndata import check_adata, fit_record, resolve, snapshots, time_labels


def predict(
    adata,
    model,
    times=None,
    n_cells: int = 1000,
    *,
    time_key: str | None = None,
    basis: str | None = None,
    population: str | None = None,
    seed: int = 0,
):
    """Simulate ``n_cells`` cells drawn from the first observed time point through ``times``.

    Args:
        times: times (in ``obs[time_key]`` units, all later than the first time point) to
            return; default: every observed time after the first.
        n_cells: simulated cells (drawn without replacement from the first time point when it
            has that many).
        population: with populations (``population_key`` at fit), the population whose first
            snapshot starts the simulation (default: the first).

    Returns:
        an ``AnnData`` with ``n_cells × len(times)`` rows: ``obsm[basis]`` the simulated
        coordinates, ``obs[time_key]`` the time in the column's own labels and type (a time never
        observed gets its number, as text for a text or categorical column), ``obs["mfsde_time"]``
        the time as a number, ``obs["simulated"] = True`` (and
        ``obs[population_key]``), adata's ``var_names`` with an *empty* sparse ``X`` (simulated
        cells carry no expression values; it is there so that ``anndata.concat([adata, pred],
        join="outer")`` puts them beside the observed cells, whose ``simulated`` is then NaN).
    """
    import anndata as ad
    import pandas as pd

    check_adata(adata)
    time_key, key = resolve(adata, model, time_key, basis)
    population_key = fit_record(adata).get("population_key") or None
    data = snapshots(adata, time_key, key, population_key=population_key)
    if population_key:
        population = data.names[0] if population is None else data.check_names([population])[0]
        data = data[population]
    t0 = float(data.times[0])
    times = data.times[1:] if times is None else np.atleast_1d(np.asarray(times, dtype=np.float64))
    if times.size == 0 or not np.isfinite(times).all() or (times <= t0).any():
        raise ValueError(f"times must be finite and later than the first time point {t0:g}, got {times.tolist()}")
    if isinstance(n_cells, bool) or not isinstance(n_cells, (int, np.integer)) or n_cells < 1:
        raise ValueError(f"n_cells must be a positive int, got {n_cells!r}")
    order = np.argsort(times)
    grid = np.concatenate([[t0], np.unique(times)])
    param = next(model.parameters())
    gen = torch.Generator(device=param.device).manual_seed(int(seed))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x0 = draw_initial(torch.as_tensor(data.data[0], dtype=param.dtype, device=param.device), int(n_cells), gen)
            xs = model.sample(x0, grid, generator=gen).cpu().numpy().astype(np.float32)
    finally:
        model.train(was_training)
    pick = [int(np.searchsorted(grid, t)) for t in times[order]]
    coords = np.concatenate([xs[i] for i in pick])
    t_sorted = np.repeat(times[order], n_cells)
    labels = np.asarray(time_labels(adata, time_key, t_sorted), dtype=object)
    col = adata.obs[time_key]
    if hasattr(col, "cat"):  # keep the categorical, with any new times as extra categories
        cats = list(col.cat.categories) + [v for v in dict.fromkeys(labels) if v not in list(col.cat.categories)]
        labels = pd.Categorical(labels, categories=cats, ordered=bool(col.cat.ordered))
    elif col.dtype.kind in "biuf":
        labels = labels.astype(np.float64)
    else:
        labels = labels.astype(str)
    obs = pd.DataFrame({time_key: labels, "mfsde_time": t_sorted, "simulated": True})
    if population_key:
        obs[population_key] = population
    obs.index = [f"sim-{i}" for i in range(len(obs))]
    from scipy import sparse

    # no expression values: an all-empty sparse X over adata's genes, so that anndata.concat works
    X = None if adata.X is None else sparse.csr_matrix((len(obs), adata.n_vars), dtype=np.float32)
    return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=adata.var_names.copy()), obsm={key: coords})
