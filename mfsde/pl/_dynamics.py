"""Figures of dynamics: drift arrows and predicted vs observed cells, training-loss curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from mfsde.pl import _common


def plot_velocities(
    xs: Sequence[np.ndarray],
    vs: Sequence[np.ndarray],
    times: Sequence[float],
    path,
    *,
    predicted: Sequence[np.ndarray] | None = None,
    embedding: Mapping[str, np.ndarray] | None = None,
    labels: Sequence[np.ndarray | None] | None = None,
    heldout: Sequence[int] | None = None,
    max_arrows: int = 300,
    max_points: int = 1500,
    seed: int = 0,
    feature_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Left: observed cells (coloured by label when given, else by time) with drift arrows
    f(x, ρ) at up to ``max_arrows`` cells per time point (arrows coloured by time). Right (with
    ``predicted``): one small panel per time point, observed cells (grey) vs particles simulated
    from t₀ (coloured); held-out time points are titled in red.

    Everything is projected by ``embedding`` (from :func:`mfsde.explain.pca_embedding`;
    default: fitted here on the observed cells). Arrows are the linear projection of the
    drift, so their length is the drift's speed within the embedding plane (scaled so that a
    95th-percentile arrow spans 6 % of the plot).
    """
    plt = _common._plt()
    from mfsde.explain._embedding import pca_embedding

    rng = np.random.default_rng(seed)
    emb = embedding or pca_embedding(np.concatenate(list(xs)), seed=seed)
    mean, comps = np.asarray(emb["mean"]), np.asarray(emb["components"])

    def proj(z):
        return (np.asarray(z, dtype=float) - mean) @ comps.T

    def vproj(v):
        return np.asarray(v, dtype=float) @ comps.T

    identity = bool(np.asarray(emb.get("identity", False)))
    if identity and feature_names is not None and len(feature_names) >= 2:
        axis_names = [str(feature_names[0]), str(feature_names[1])]
    elif identity:
        axis_names = ["x1", "x2"]
    else:
        ev = np.asarray(emb.get("explained", [np.nan, np.nan]))
        axis_names = [f"PC{i + 1}" + ("" if np.isnan(ev[i]) else f" ({ev[i]:.0%} var.)") for i in range(2)]
    heldout = set(int(k) for k in (heldout or []))
    T = len(times)
    cmap = plt.get_cmap("viridis")
    tcol = [cmap(0.9 * i / max(T - 1, 1)) for i in range(T)]
    have_labels = labels is not None and all(lab is not None for lab in labels)
    lab_colors = (
        _common._label_colors(sorted({str(v) for lab in labels for v in np.asarray(lab)})) if have_labels else {}
    )

    ex = [proj(x) for x in xs]
    all_x = np.concatenate(ex + ([proj(p) for p in predicted] if predicted is not None else []))
    lo, hi = np.quantile(all_x, 0.002, axis=0), np.quantile(all_x, 0.998, axis=0)
    pad = 0.05 * (hi - lo + 1e-12)
    xlim, ylim = (lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1])

    if predicted is not None:
        ncols = int(np.ceil(np.sqrt(T)))
        nrows = int(np.ceil(T / ncols))
        fig = plt.figure(figsize=(6.0 + 2.6 * ncols, max(5.6, 2.5 * nrows + 0.6)))
        left, right = fig.subfigures(1, 2, width_ratios=[6.0, 2.6 * ncols], wspace=0.02)
        ax = left.subplots()
    else:
        fig, ax = plt.subplots(figsize=(6.4, 5.6))
    all_v = np.concatenate([vproj(v) for v in vs])
    span = max(xlim[1] - xlim[0], ylim[1] - ylim[0]) or 1.0
    speed = np.quantile(np.linalg.norm(all_v, axis=1), 0.95) or 1.0
    scale = speed / (0.06 * span)
    for k, (e, v) in enumerate(zip(ex, vs)):
        ve = vproj(v)
        pick = rng.choice(len(e), min(max_points, len(e)), replace=False)
        if have_labels:
            lab = np.asarray(labels[k]).astype(str)
            ax.scatter(e[pick, 0], e[pick, 1], s=6, c=[lab_colors[s] for s in lab[pick]], alpha=0.5, lw=0)
        else:
            ax.scatter(e[pick, 0], e[pick, 1], s=5, color=tcol[k], alpha=0.3, lw=0)
        arrows = pick[: min(max_arrows, len(pick))]
        ax.quiver(
            e[arrows, 0],
            e[arrows, 1],
            ve[arrows, 0],
            ve[arrows, 1],
            angles="xy",
            scale_units="xy",
            scale=scale,
            width=0.003,
            color=tcol[k],
            alpha=0.85,
            headwidth=3.5,
            headlength=4,
        )
    handles = []
    if have_labels:
        handles += [ax.scatter([], [], s=25, color=c, label=name) for name, c in lab_colors.items()]
    handles += [
        ax.plot([], [], color=tcol[k], lw=2, label=f"t = {times[k]:g}" + (" (held out)" if k in heldout else ""))[0]
        for k in range(T)
    ]
    ax.legend(
        handles=handles,
        fontsize=7,
        loc="best",
        framealpha=0.85,
        title="cells / arrows by time" if have_labels else "arrows by time",
        title_fontsize=7,
    )
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_title("drift f(x, ρ) at the observed cells", fontsize=10)
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])

    if predicted is not None:
        axes = np.atleast_1d(right.subplots(nrows, ncols, sharex=True, sharey=True)).ravel()
        for k in range(T):
            a = axes[k]
            e, pe = ex[k], proj(predicted[k])
            pick = rng.choice(len(e), min(max_points, len(e)), replace=False)
            ppick = rng.choice(len(pe), min(max_points, len(pe)), replace=False)
            a.scatter(e[pick, 0], e[pick, 1], s=4, color="0.55", alpha=0.45, lw=0)
            a.scatter(pe[ppick, 0], pe[ppick, 1], s=4, color=tcol[k], alpha=0.6, lw=0)
            held = k in heldout
            a.set_title(
                f"t = {times[k]:g}" + (" (held out)" if held else ""), fontsize=8, color="tab:red" if held else "black"
            )
            a.tick_params(labelsize=6)
            a.set_xlim(*xlim)
            a.set_ylim(*ylim)
        for a in axes[T:]:
            a.axis("off")
        right.suptitle("observed (grey) vs simulated from t₀ (colour)", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    if predicted is None:
        fig.tight_layout()
    return _common._save(fig, path)


# -- training -----------------------------------------------------------------------------------
def _history_columns(history) -> dict[str, np.ndarray]:
    """Accept a list of per-log dicts, a dict of lists, or an object with ``.history``/``rows``."""
    for attr in ("history", "rows"):
        if hasattr(history, attr) and not isinstance(history, (list, dict)):
            history = getattr(history, attr)
    if isinstance(history, Mapping):
        cols = {k: np.asarray(v) for k, v in history.items() if np.ndim(v) == 1 and len(v)}
    else:
        rows = [r for r in (history or []) if isinstance(r, Mapping)]
        if not rows:
            raise ValueError("the history is empty or not a list of dicts")
        keys = []
        for r in rows:
            keys += [k for k in r if k not in keys]
        cols = {}
        for k in keys:
            vals = [r.get(k) for r in rows]
            if all(v is None or isinstance(v, (int, float, np.number)) for v in vals):
                cols[k] = np.array([np.nan if v is None else float(v) for v in vals])
    if not cols:
        raise ValueError("the history holds no numeric columns")
    return cols


def _moving_average(v: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average that keeps the length (shorter windows at the start); NaN-safe."""
    v = np.asarray(v, dtype=float)
    ok = np.isfinite(v)
    c = np.concatenate([[0.0], np.cumsum(np.where(ok, v, 0.0))])
    n = np.concatenate([[0], np.cumsum(ok)])
    idx = np.arange(1, len(v) + 1)
    lo = np.maximum(0, idx - window)
    cnt = n[idx] - n[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, (c[idx] - c[lo]) / np.maximum(cnt, 1), np.nan)


_STEP_KEYS = ("iteration", "iter", "step", "it", "epoch")
_SKIP_KEYS = {
    "time",
    "elapsed",
    "seconds",
    "cpu_seconds",
    "wall",
    "lr",
    "learning_rate",
    "seed",
    "grad_norm",
    "grad_norm_clipped",
    "eval_seconds",
}


def _curve_label(key: str) -> str:
    """Legend text of a history column: ``fit@2`` → "fit at time index 2 (Sinkhorn)"."""
    if key.startswith("fit@"):
        return f"fit at time index {key[4:]} (distribution loss)"
    return {
        "loss": "loss (simulation: fit + λ·energy; flow matching: fm)",
        "fit": "fit (mean over training times)",
        "energy": "energy (path action)",
        "fm": "fm (flow-matching regression)",
    }.get(key, key)


def plot_loss(history, path, *, title: str | None = None, log_scale: bool | None = None, smooth: bool = True) -> Path:
    """Training curves from a fit's history: one line per numeric loss column against the
    iteration column (``iteration``/``step``/… or the row index). The total ``loss`` is drawn
    bold; other components thin; the learning rate, if logged, on a second axis. A log scale
    is used when the values are positive and span more than a factor of 20. With ``smooth``
    and more than 120 records, curves are moving averages over 1/60 of the run (the raw
    total loss is drawn faintly behind)."""
    plt = _common._plt()
    cols = _history_columns(history)
    step_key = next((k for k in _STEP_KEYS if k in cols), None)
    n = len(next(iter(cols.values())))
    step = cols[step_key] if step_key else np.arange(n)
    # exact W1 (``w1@k``, data units, logged every train.eval_every) is not a loss: left out here
    series = {
        k: v
        for k, v in cols.items()
        if k != step_key and k not in _SKIP_KEYS and not k.startswith("w1@") and len(v) == len(step)
    }
    if not series:
        raise ValueError(f"the history has no loss columns (columns: {sorted(cols)})")
    fig, ax = plt.subplots(figsize=(6.8, 4.2))
    main = next((k for k in ("loss", "total", "train_loss") if k in series), None)
    # per-time fit terms (``fit@k``) are drawn thin and dashed; long noisy curves are smoothed
    window = max(1, len(step) // 60) if smooth else 1
    for k, v in series.items():
        per_time = "@" in k
        style = dict(
            lw=2.0 if k == main else (0.8 if per_time else 1.2),
            ls="--" if per_time else "-",
            alpha=1.0 if k == main else 0.8,
        )
        if window > 1:
            if k == main:
                ax.plot(step, v, lw=0.6, alpha=0.25, color="C0")
            v = _moving_average(v, window)
        (line,) = ax.plot(step, v, label=_curve_label(k), **style)
        if k == main:
            line.set_color("C0")
    vals = np.concatenate([v[np.isfinite(v)] for v in series.values()])
    if log_scale is None:
        log_scale = bool(vals.size) and vals.min() > 0 and vals.max() / vals.min() > 20
    if log_scale:
        ax.set_yscale("log")
    lr_key = next((k for k in ("lr", "learning_rate") if k in cols and len(cols[k]) == len(step)), None)
    if lr_key:
        ax2 = ax.twinx()
        ax2.plot(step, cols[lr_key], color="grey", ls="--", lw=1, label="learning rate")
        ax2.set_ylabel("learning rate", color="grey")
        ax2.tick_params(axis="y", colors="grey")
    ax.set_xlabel(step_key or "logged step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    handles, names = ax.get_legend_handles_labels()
    if lr_key:
        handles.append(ax2.get_lines()[0])
        names.append("learning rate (right axis)")
    ax.legend(
        handles,
        names,
        fontsize=8,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        ncol=min(4, len(names)),
        frameon=False,
    )
    ax.set_title(
        title or ("training loss" + (f" (moving average over {window} iterations)" if window > 1 else "")), fontsize=10
    )
    return _common._save(fig, path)
