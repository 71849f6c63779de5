"""``mfsde.tl.velocity``: the learned drift at every observed cell, in ``obsm``."""

from __future__ import annotations

import numpy as np
import torch

from mfsde.explain._weights import velocities
from mfsde.tl._anndata import check_adata, fit_record, resolve, snapshots, uns_record, velocity_key


def growth_rates(model, cells, t: float) -> np.ndarray:
    """g(x, ρ_t) at ``cells`` ``(n, d)`` (data units), ρ_t the cells themselves, per data time unit."""
    p = next(iter(model.parameters()))
    x = torch.as_tensor(np.asarray(cells), dtype=p.dtype, device=p.device)
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model.data_growth_rate(x, t).cpu().numpy()
    finally:
        model.train(was)


def velocity(
    adata,
    model,
    *,
    time_key: str | None = None,
    basis: str | None = None,
    population_key: str | None = None,
    key_added: str | None = None,
) -> None:
    """The drift f(x, ρ_t) at every observed cell, with ρ_t the cells of its own time point
    (and population), in the units of ``obsm[basis]`` per unit of ``obs[time_key]``.

    Writes ``obsm["velocity_pca"]`` (for ``basis="X_pca"``; ``key_added`` overrides the name),
    the same shape as the basis, and its parts ``obsm["velocity_pca_intra"]`` (the cell's own
    dynamics) and ``obsm["velocity_pca_inter"]`` (the mean-field interaction; exact zeros for an
    Itô model). ``time_key``, ``basis`` and ``population_key`` default to what
    :func:`mfsde.tl.fit` recorded. Hand-off: ``cellrank.kernels.VelocityKernel(adata,
    attr="obsm", xkey="X_pca", vkey="velocity_pca")``.

    A model with a growth model (``model.growth``, ``--mass counts``) also writes
    ``obs["growth_rate"]``: g(x, ρ_t) at every cell, division minus death per unit of
    ``obs[time_key]`` (positive: the cell's neighbourhood grows), the input CellRank's and
    Waddington-OT's growth-aware kernels take as a proliferation score (``mfsde.pl.growth``
    draws it).
    """
    check_adata(adata)
    time_key, key = resolve(adata, model, time_key, basis)
    population_key = population_key or fit_record(adata).get("population_key") or None
    data, rows = snapshots(adata, time_key, key, population_key=population_key, return_rows=True)
    parts = {name: np.zeros(adata.obsm[key].shape, dtype=np.float32) for name in ("total", "intra", "inter")}
    grows = getattr(model, "growth", None) is not None
    growth = np.zeros(adata.n_obs, dtype=np.float32)
    groups = [(data[p], rows[p]) for p in data] if population_key else [(data, rows)]
    for snaps, rows_by_time in groups:
        for k, r in enumerate(rows_by_time):
            v = velocities(model, snaps.data[k], float(snaps.times[k]))
            for name in parts:
                parts[name][r] = v[name]
            if grows:
                growth[r] = growth_rates(model, snaps.data[k], float(snaps.times[k]))
    out = key_added or velocity_key(key)
    adata.obsm[out] = parts["total"]
    adata.obsm[f"{out}_intra"] = parts["intra"]
    adata.obsm[f"{out}_inter"] = parts["inter"]
    if grows:
        adata.obs["growth_rate"] = growth
    uns_record(adata)["velocity"] = {
        "growth_key": "growth_rate" if grows else None,
        "key": out,
        "basis": key,
        "time_key": time_key,
        "rho": "the cells of each cell's own time point" + (" and population" if population_key else ""),
    }
