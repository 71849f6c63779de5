"""Plots from the AnnData keys that :mod:`mfsde.tl` writes, scanpy-style.

Every function draws on ``ax`` (or a new figure), saves to ``save`` (a path) when given, and
then shows the figure (``show=None``: show unless ``ax`` was given) and returns ``None``, or,
with ``show=False``, returns the axes (a list of axes for multi-panel figures), as scanpy does.
matplotlib's current backend is used (inline in notebooks).

>>> mfsde.pl.velocity(adata, basis="umap", color="cell_type")
>>> mfsde.pl.interactions(adata, kind="graph")
>>> mfsde.pl.predicted(adata, pred)

**Velocities on a 2-D embedding** (:func:`velocity`): on the basis the model was fitted in
(``"pca"``: ``X_pca``), the arrows are the velocity's first two coordinates (the embedding is
the first two columns, so this projection is exact). On any other embedding (``"umap"``,
``"tsne"``) the velocity is projected as scVelo's ``velocity_embedding`` does: for each cell, the
cosine between its velocity and the displacement to each of its ``n_neighbors`` nearest cells
in the model basis gives transition probabilities ``p_ij ∝ exp(cos_ij / 0.1)``; the embedded
velocity is ``Σ_j p_ij ê_ij − mean_j ê_ij`` with ``ê_ij`` the unit displacement from cell i to
j in the embedding. It shows direction, not speed; it is stored in
``obsm["velocity_pca_umap"]`` (``f"{vkey}_{basis}"``).
"""

from __future__ import annotations

import numpy as np

from mfsde.tl._anndata import (
    MissingColumnError,
    check_adata,
    fit_record,
    need_time_key,
    obsm_key,
    require_obs,
    require_obsm,
    times_of,
    uns_record,
    velocity_key,
)


def _plt():
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover
        raise ImportError("mfsde.pl needs matplotlib: pip install mfsde[plot]") from e
    return plt


def _done(fig, axes, show, save):
    plt = _plt()
    if save:
        fig.savefig(save, dpi=130, bbox_inches="tight")
    if show:
        plt.show()
        return None
    return axes


# -- velocities --------------------------------------------------------------------------------
def velocity_embedding(adata, basis: str = "umap", vkey: str | None = None, *, n_neighbors: int = 30) -> np.ndarray:
    """The velocities ``obsm[vkey]`` projected onto the 2-D embedding ``obsm[basis]`` (see the
    module notes); stored in and returned from ``obsm[f"{vkey}_{basis}"]``, ``(n_obs, 2)``."""
    check_adata(adata)
    vkey = (
        vkey
        or uns_record(adata).get("velocity", {}).get("key")
        or velocity_key(fit_record(adata).get("basis", "X_pca"))
    )
    if vkey not in adata.obsm:
        raise MissingColumnError(
            f"vkey {vkey!r} not in adata.obsm (run mfsde.tl.velocity first); obsm keys are {list(adata.obsm.keys())}"
        )
    ekey = require_obsm(adata, basis)
    model_key = uns_record(adata).get("velocity", {}).get("basis") or fit_record(adata).get("basis", "X_pca")
    v = np.asarray(adata.obsm[vkey], dtype=np.float64)
    emb = np.asarray(adata.obsm[ekey], dtype=np.float64)[:, :2]
    if ekey == model_key:
        out = v[:, :2]
    else:
        require_obsm(adata, model_key, "model basis")
        x = np.asarray(adata.obsm[model_key], dtype=np.float64)
        out = _project(x, v, emb, n_neighbors)
    adata.obsm[f"{vkey}_{ekey[2:]}"] = out.astype(np.float32)
    return out


def _project(x: np.ndarray, v: np.ndarray, emb: np.ndarray, k: int) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    k = int(min(k, len(x) - 1))
    if k < 1:
        raise ValueError("velocity projection needs at least 2 cells")
    nn = NearestNeighbors(n_neighbors=k + 1).fit(x)
    out = np.zeros((len(x), 2))
    for a in range(0, len(x), 10000):  # blocks of cells: memory O(block · k · d)
        s = slice(a, a + 10000)
        idx = nn.kneighbors(x[s], return_distance=False)[:, 1:]  # (b, k)
        dx = x[idx] - x[s, None, :]
        vn = np.linalg.norm(v[s], axis=1, keepdims=True)
        cos = np.einsum("nkd,nd->nk", dx, v[s]) / np.maximum(np.linalg.norm(dx, axis=2) * vn, 1e-12)
        p = np.exp((cos - cos.max(1, keepdims=True)) / 0.1)
        p /= p.sum(1, keepdims=True)
        de = emb[idx] - emb[s, None, :]
        de /= np.maximum(np.linalg.norm(de, axis=2, keepdims=True), 1e-12)
        out[s] = np.where(vn == 0, 0.0, np.einsum("nk,nkd->nd", p, de) - de.mean(1))
    return out


def _colors(adata, color):
    if color is None:
        return None, None
    require_obs(adata, color, "color")
    col = adata.obs[color]
    if col.dtype.kind in "biuf":
        return np.asarray(col, dtype=float), None
    values = col.astype(str).to_numpy()
    cats = sorted(set(values))
    return np.searchsorted(cats, values), cats


def velocity(
    adata,
    basis: str = "pca",
    vkey: str | None = None,
    *,
    color: str | None = None,
    mode: str = "stream",
    n_neighbors: int = 30,
    grid: int = 30,
    max_arrows: int = 1500,
    ax=None,
    show: bool | None = None,
    save: str | None = None,
    title: str | None = None,
):
    """Cells on ``obsm[basis]`` (first two columns) with their velocities: ``mode="stream"``
    (streamlines of the velocity averaged on a ``grid`` × ``grid`` lattice with a Gaussian
    window) or ``"arrows"`` (one arrow per cell, at most ``max_arrows``)."""
    if mode not in ("stream", "arrows"):
        raise ValueError(f"mode must be 'stream' or 'arrows', got {mode!r}")
    plt = _plt()
    ve = velocity_embedding(adata, basis, vkey, n_neighbors=n_neighbors)
    emb = np.asarray(adata.obsm[obsm_key(basis)], dtype=float)[:, :2]
    given = ax is not None
    fig, ax = (ax.figure, ax) if given else plt.subplots(figsize=(6.2, 5.2))
    c, cats = _colors(adata, color)
    if cats:
        cmap = plt.get_cmap("tab10" if len(cats) <= 10 else "tab20")
        ax.scatter(emb[:, 0], emb[:, 1], c=[cmap(i % cmap.N) for i in c], s=6, alpha=0.6, lw=0)
        handles = [plt.Line2D([], [], marker="o", ls="", color=cmap(i % cmap.N), label=n) for i, n in enumerate(cats)]
        ax.legend(handles=handles, title=color, fontsize=7, loc="best")
    else:
        sc = ax.scatter(emb[:, 0], emb[:, 1], c="0.75" if c is None else c, s=6, alpha=0.6, lw=0)
        if c is not None:
            fig.colorbar(sc, ax=ax, label=color)
    if mode == "arrows":
        pick = np.random.default_rng(0).permutation(len(emb))[:max_arrows]
        ax.quiver(emb[pick, 0], emb[pick, 1], ve[pick, 0], ve[pick, 1], angles="xy", color="k", alpha=0.7, width=0.002)
    else:
        gx, gy, u, w = _grid_average(emb, ve, grid)
        speed = np.hypot(u, w)
        ax.streamplot(
            gx,
            gy,
            u,
            w,
            color="k",
            linewidth=0.4 + 1.6 * speed / max(np.nanmax(speed), 1e-12),
            density=1.2,
            arrowsize=0.9,
        )
    name = obsm_key(basis)[2:]
    ax.set_xlabel(f"{name} 1")
    ax.set_ylabel(f"{name} 2")
    ax.set_title(title or f"mfsde velocity on {name}", fontsize=10)
    return _done(fig, ax, not given if show is None else show, save)


def growth(
    adata,
    basis: str = "pca",
    key: str = "growth_rate",
    *,
    ax=None,
    show: bool | None = None,
    save: str | None = None,
    title: str | None = None,
):
    """Cells on ``obsm[basis]`` (first two columns) coloured by their growth rate
    ``obs[key]`` (written by :func:`mfsde.tl.velocity` for a model with a growth model) on a
    diverging scale centred at zero: red cells divide faster than they die, blue ones die."""
    check_adata(adata)
    require_obs(adata, key, "key")
    plt = _plt()
    emb = np.asarray(adata.obsm[require_obsm(adata, obsm_key(basis), "basis")], dtype=float)[:, :2]
    g = np.asarray(adata.obs[key], dtype=float)
    lim = max(float(np.nanmax(np.abs(g))), 1e-12)
    given = ax is not None
    fig, ax = (ax.figure, ax) if given else plt.subplots(figsize=(6.2, 5.2))
    sc = ax.scatter(emb[:, 0], emb[:, 1], c=g, cmap="RdBu_r", vmin=-lim, vmax=lim, s=6, lw=0)
    fig.colorbar(sc, ax=ax, label=f"{key} (per unit time)")
    name = obsm_key(basis)[2:]
    ax.set_xlabel(f"{name} 1")
    ax.set_ylabel(f"{name} 2")
    ax.set_title(title or f"mfsde growth rate on {name}", fontsize=10)
    return _done(fig, ax, not given if show is None else show, save)


def _grid_average(emb, v, n):
    lo, hi = emb.min(0), emb.max(0)
    gx, gy = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
    h = (hi - lo) / n
    pts = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)
    tot, acc = np.zeros(len(pts)), np.zeros((len(pts), 2))
    for a in range(0, len(emb), 5000):  # blocks of cells: memory O(grid² · block)
        wgt = np.exp(-0.5 * (((pts[:, None, :] - emb[None, a : a + 5000]) / (1.5 * h)) ** 2).sum(-1))
        tot += wgt.sum(1)
        acc += wgt @ v[a : a + 5000]
    avg = acc / np.maximum(tot, 1e-12)[:, None]
    avg[tot < 1.0] = np.nan  # less than about one cell nearby: no streamline
    return gx, gy, avg[:, 0].reshape(n, n), avg[:, 1].reshape(n, n)


# -- interactions ------------------------------------------------------------------------------
def _label_weights(rec, k: int):
    from mfsde.explain import LabelWeights

    return LabelWeights(
        list(np.asarray(rec["names"]).astype(str)),
        np.asarray(rec["matrix"][k]),
        np.asarray(rec["counts"][k]),
        float(rec["asymmetry"][k]),
        np.asarray(rec["net"][k]),
        np.asarray(rec["sem"][k]),
    )


def interactions(
    adata, time=None, *, kind: str = "heatmap", ax=None, show: bool | None = None, save: str | None = None
):
    """The cell-type interaction of :func:`mfsde.tl.interactions` at ``time`` (a value of the
    time key; default the last): ``kind="heatmap"`` (rows = receivers) or ``"graph"`` (arrow
    b → a: b drives a, dashed when reciprocal within 2 s.e.). The title gives the asymmetry and
    its label-shuffled null (95th percentile)."""
    from mfsde.pl._weights import plot_label_graph, plot_label_weights

    if kind not in ("heatmap", "graph"):
        raise ValueError(f"kind must be 'heatmap' or 'graph', got {kind!r}")
    rec = uns_record(adata).get("interactions")
    if rec is None:
        raise KeyError("adata.uns['mfsde']['interactions'] not found: run mfsde.tl.interactions first")
    times = np.asarray(rec["times"], dtype=float)
    if time is not None and (isinstance(time, bool) or not isinstance(time, (int, float, np.number))):
        raise TypeError(f"time must be a number among the interaction times {times.tolist()}, got {time!r}")
    k = len(times) - 1 if time is None else int(np.argmin(np.abs(times - float(time))))
    if time is not None and not np.isclose(times[k], float(time)):
        raise ValueError(f"time {time} not among the interaction times {times.tolist()}")
    title = (
        f"t = {times[k]:g} ({rec['groupby']}); shuffled-label asymmetry q95 {float(rec['asymmetry_null_q95'][k]):.3f}"
    )
    plot = plot_label_weights if kind == "heatmap" else plot_label_graph
    fig = plot(_label_weights(rec, k), None, title=title, ax=ax)
    return _done(fig, fig.axes[0] if ax is None else ax, ax is None if show is None else show, save)


# -- observed vs predicted ---------------------------------------------------------------------
def predicted(
    adata,
    pred,
    *,
    basis: str | None = None,
    time_key: str | None = None,
    show: bool | None = None,
    save: str | None = None,
):
    """One panel per predicted time: observed cells of that time (grey) and simulated cells
    (``pred`` from :func:`mfsde.tl.predict`, colour), on the first two coordinates of the basis;
    observed cells of other times are not drawn. Returns the list of axes with ``show=False``."""
    plt = _plt()
    time_key = need_time_key(adata, time_key)
    key = require_obsm(adata, basis or fit_record(adata).get("basis", "X_pca"))
    require_obsm(pred, key, "basis (of pred)")
    require_obs(pred, "mfsde_time", "pred's time column (written by mfsde.tl.predict)")
    t_all, index = times_of(adata, time_key)
    t_obs = t_all[index]
    t_pred = np.asarray(pred.obs["mfsde_time"], dtype=float)
    times = np.unique(t_pred)
    fig, axes = plt.subplots(1, len(times), figsize=(3.6 * len(times), 3.6), squeeze=False)
    x, y = np.asarray(adata.obsm[key])[:, :2], np.asarray(pred.obsm[key])[:, :2]
    for ax, t in zip(axes[0], times):
        if np.isclose(t_obs, t).any():
            o = x[np.isclose(t_obs, t)]
            ax.scatter(o[:, 0], o[:, 1], s=4, c="0.6", lw=0, alpha=0.6, label=f"observed ({len(o)})")
        s = y[np.isclose(t_pred, t)]
        ax.scatter(s[:, 0], s[:, 1], s=4, c="tab:red", lw=0, alpha=0.5, label=f"simulated ({len(s)})")
        ax.set_title(f"{time_key} = {t:g}", fontsize=10)
        ax.legend(fontsize=7, markerscale=3)
    axes[0, 0].set_ylabel(f"{key[2:]} 2")
    for ax in axes[0]:
        ax.set_xlabel(f"{key[2:]} 1")
    fig.tight_layout()
    return _done(fig, list(axes[0]), True if show is None else show, save)
