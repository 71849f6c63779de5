"""Figures for interpretation and training (matplotlib, imported lazily, Agg backend).

Every function writes one PNG and returns its :class:`~pathlib.Path`:

- :func:`plot_cell_attention` — heat map of the cell-wise interaction matrix (rows = receivers,
  columns = sources) with the label blocks marked;
- :func:`plot_label_attention` — heat map of the label-wise (cell-type) matrix, annotated;
- :func:`plot_label_graph` — the same as a directed graph: an arrow b → a for "source type b
  influences receiver type a", width ∝ weight (matplotlib only; networkx not needed);
- :func:`plot_velocities` — drift arrows at observed cells on a 2-D PCA embedding, next to
  the simulated (predicted) vs observed populations;
- :func:`plot_loss` — training-loss curves from a fit's history.

Install the extra with ``pip install mfsde[plot]``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["plot_cell_attention", "plot_label_attention", "plot_label_graph", "plot_velocities", "plot_loss"]


def _plt():
    try:
        import matplotlib
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("mfsde's figures need matplotlib: pip install mfsde[plot]") from e
    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo"):
        try:
            matplotlib.use("Agg", force=True)
        except Exception:  # pragma: no cover
            pass
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    _plt().close(fig)
    return path


def _label_colors(names: Sequence[str]) -> dict[str, Any]:
    plt = _plt()
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {n: cmap(i % cmap.N) for i, n in enumerate(names)}


def _blocks(labels: np.ndarray) -> list[tuple[str, int, int]]:
    """Contiguous runs ``(label, start, stop)`` of an ordered label array."""
    out, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            out.append((str(labels[start]), start, i))
            start = i
    return out


# -- attention ----------------------------------------------------------------------------------
def plot_cell_attention(amap, path, *, head: int | None = None, title: str | None = None, quantile: float = 0.99) -> Path:
    """Heat map of an :class:`~mfsde.explain.AttentionMap` (mean over heads, or ``head``).

    Rows are receivers (targets) i, columns sources j. The colour scale is clipped at the
    ``quantile`` of the off-diagonal weights so that a few large entries do not wash out the
    rest. Label blocks are outlined and named on both axes, with a colour strip.
    """
    plt = _plt()
    from matplotlib.patches import Rectangle

    w = amap.weights if head is None else amap.heads[head]
    n = w.shape[0]
    off = w[~np.eye(n, dtype=bool)] if n > 1 else w.ravel()
    vmax = float(np.quantile(off, quantile)) if off.size else 1.0
    vmax = vmax if vmax > 0 else float(w.max() or 1.0)
    fig, ax = plt.subplots(figsize=(6.8, 5.8))
    im = ax.imshow(w, cmap="magma", vmin=0, vmax=vmax, interpolation="nearest", aspect="equal")
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cb.set_label(f"weight (colour clipped at the {quantile:.0%} quantile)")
    if amap.labels is not None:
        blocks = _blocks(np.asarray(amap.labels))
        colors = _label_colors(sorted({b[0] for b in blocks}))
        strip = max(1.0, n * 0.025)
        for name, a, b in blocks:
            ax.add_patch(Rectangle((a - 0.5, a - 0.5), b - a, b - a, fill=False, ec="white", lw=0.8))
            for spec in ((-0.5 - strip, a - 0.5, strip, b - a), (a - 0.5, -0.5 - strip, b - a, strip)):
                ax.add_patch(Rectangle(spec[:2], spec[2], spec[3], color=colors[name], clip_on=False, lw=0))
            if 0 < a:
                ax.axhline(a - 0.5, color="white", lw=0.4, alpha=0.7)
                ax.axvline(a - 0.5, color="white", lw=0.4, alpha=0.7)
        centres = [(a + b - 1) / 2 for _, a, b in blocks]
        names = [nm for nm, _, _ in blocks]
        ax.set_xticks(centres, names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(centres, names, fontsize=8)
        ax.tick_params(axis="both", length=0, pad=2 + strip * 72 / n * 0.06)
        ax.set_xlim(-0.5 - strip, n - 0.5)
        ax.set_ylim(n - 0.5, -0.5 - strip)
        ax.set_xlabel("source cell j (by type)")
        ax.set_ylabel("receiver cell i (by type)")
    else:
        ax.set_xlabel("source cell j (ordered along PC1)")
        ax.set_ylabel("receiver cell i (ordered along PC1)")
    what = "mean over heads" if head is None else f"head {head}"
    ax.set_title(title or f"{amap.kernel} weights at t = {amap.time:g} ({n} cells, {what})\n"
                          f"asymmetry index {amap.asymmetry:.3f}", fontsize=10)
    return _save(fig, path)


def plot_label_attention(lab, path, *, title: str | None = None) -> Path:
    """Annotated heat map of a :class:`~mfsde.explain.LabelAttention` (rows = receiver type)."""
    plt = _plt()
    m = np.asarray(lab.matrix, dtype=float)
    n = len(lab.names)
    size = 2.8 + 0.55 * n
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    im = ax.imshow(np.ma.masked_invalid(m), cmap="viridis", interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="mean cell-wise weight")
    ticks = [f"{nm} ({c})" for nm, c in zip(lab.names, lab.counts)]
    ax.set_xticks(range(n), ticks, rotation=45, ha="right")
    ax.set_yticks(range(n), ticks)
    finite = m[np.isfinite(m)]
    mid = (finite.min() + finite.max()) / 2 if finite.size else 0
    if n <= 15:
        for i in range(n):
            for j in range(n):
                if np.isfinite(m[i, j]):
                    ax.text(j, i, f"{m[i, j]:.3g}", ha="center", va="center", fontsize=8,
                            color="black" if m[i, j] > mid else "white")
    ax.set_xlabel("source type (influences)")
    ax.set_ylabel("receiver type (is influenced)")
    ax.set_title(f"{title or 'cell-type interaction'}\nasymmetry index {lab.asymmetry:.3f}", fontsize=10)
    return _save(fig, path)


def plot_label_graph(lab, path, *, title: str | None = None, min_fraction: float = 0.0) -> Path:
    """Directed cell-type graph: nodes = labels (size ∝ cell count), an arrow from source
    type b to receiver type a with width and opacity ∝ ``matrix[a, b]``; a ring around a node
    shows the within-type weight. Arrows below ``min_fraction`` × the largest weight are
    left out. Opposite arrows are drawn as separate arcs so non-reciprocal pairs stand out."""
    plt = _plt()
    from matplotlib.patches import Circle, FancyArrowPatch

    m = np.nan_to_num(np.asarray(lab.matrix, dtype=float))
    n = len(lab.names)
    colors = _label_colors(lab.names)
    ang = np.pi / 2 - 2 * np.pi * np.arange(n) / max(n, 1)
    pos = np.stack([np.cos(ang), np.sin(ang)], 1) if n > 1 else np.zeros((1, 2))
    counts = np.asarray(lab.counts, dtype=float)
    radius = 0.09 + 0.09 * np.sqrt(counts / max(counts.max(), 1))
    wmax = m.max() if m.size and m.max() > 0 else 1.0
    fig, ax = plt.subplots(figsize=(6.2, 6.2))
    for a in range(n):  # receiver
        for b in range(n):  # source
            frac = m[a, b] / wmax
            if a == b or frac <= min_fraction or frac <= 0:
                continue
            arrow = FancyArrowPatch(
                pos[b], pos[a], connectionstyle="arc3,rad=0.18", arrowstyle="-|>",
                mutation_scale=10 + 14 * frac, lw=0.6 + 6 * frac, color=colors[lab.names[b]],
                alpha=0.25 + 0.7 * frac, shrinkA=radius[b] * 72 * 2.2, shrinkB=radius[a] * 72 * 2.2, zorder=1,
            )
            ax.add_patch(arrow)
    for i, name in enumerate(lab.names):
        self_w = m[i, i] / wmax
        ax.add_patch(Circle(pos[i], radius[i] + 0.02 + 0.05 * self_w, color=colors[name], alpha=0.25, zorder=2, lw=0))
        ax.add_patch(Circle(pos[i], radius[i], color=colors[name], zorder=3, ec="black", lw=0.8))
        off = pos[i] * (1 + radius[i] + 0.22)
        ax.text(*off, f"{name}\n(n={int(counts[i])}, self {m[i, i]:.3g})", ha="center", va="center", fontsize=9, zorder=4)
    ax.set_xlim(-1.75, 1.75)
    ax.set_ylim(-1.75, 1.75)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"{title or 'directed cell-type interaction'}\narrow b → a: source b influences receiver a "
                 f"(width ∝ weight); asymmetry {lab.asymmetry:.3f}", fontsize=10)
    return _save(fig, path)


# -- velocities ---------------------------------------------------------------------------------
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
    """Left: observed cells (coloured by time, or by label when given) with drift arrows f(x, ρ)
    at up to ``max_arrows`` cells per time point; right (with ``predicted``): simulated
    particles vs observed cells at each time point (held-out times marked "held out").

    Everything is projected by ``embedding`` (from :func:`mfsde.explain.pca_embedding`;
    default: fitted here on the observed cells). Arrows are the linear projection of the
    drift, so their length is the drift's speed within the embedding plane.
    """
    plt = _plt()
    from .explain import pca_embedding

    rng = np.random.default_rng(seed)
    emb = embedding or pca_embedding(np.concatenate(list(xs)), seed=seed)
    mean, comps = np.asarray(emb["mean"]), np.asarray(emb["components"])
    proj = lambda z: (np.asarray(z, dtype=float) - mean) @ comps.T  # noqa: E731
    vproj = lambda v: np.asarray(v, dtype=float) @ comps.T  # noqa: E731
    identity = bool(np.asarray(emb.get("identity", False)))
    if identity and feature_names is not None and len(feature_names) >= 2:
        axis_names = [str(feature_names[0]), str(feature_names[1])]
    elif identity:
        axis_names = ["x1", "x2"]
    else:
        ev = np.asarray(emb.get("explained", [np.nan, np.nan]))
        axis_names = [f"PC{i + 1}" + ("" if np.isnan(ev[i]) else f" ({ev[i]:.0%})") for i in range(2)]
    heldout = set(int(k) for k in (heldout or []))
    cmap = plt.get_cmap("viridis")
    tcol = [cmap(i / max(len(times) - 1, 1)) for i in range(len(times))]
    have_labels = labels is not None and all(lab is not None for lab in labels)
    lab_colors = _label_colors(sorted({str(v) for lab in labels for v in np.asarray(lab)})) if have_labels else {}

    ncol = 2 if predicted is not None else 1
    fig, axes = plt.subplots(1, ncol, figsize=(6.2 * ncol, 5.4), squeeze=False, sharex=True, sharey=True)
    ax = axes[0, 0]
    all_v = np.concatenate([vproj(v) for v in vs])
    all_x = np.concatenate([proj(x) for x in xs])
    span = np.ptp(all_x, axis=0).max() or 1.0
    speed = np.quantile(np.linalg.norm(all_v, axis=1), 0.95) or 1.0
    scale = speed / (0.06 * span)  # a 95th-percentile arrow is 6 % of the plot's width
    for k, (x, v) in enumerate(zip(xs, vs)):
        e, ve = proj(x), vproj(v)
        pick = rng.choice(len(e), min(max_points, len(e)), replace=False)
        if have_labels:
            lab = np.asarray(labels[k]).astype(str)
            ax.scatter(e[pick, 0], e[pick, 1], s=4, c=[lab_colors[s] for s in lab[pick]], alpha=0.35, lw=0)
        else:
            ax.scatter(e[pick, 0], e[pick, 1], s=4, color=tcol[k], alpha=0.35, lw=0, label=f"t = {times[k]:g}")
        arrows = pick[: min(max_arrows, len(pick))]
        ax.quiver(e[arrows, 0], e[arrows, 1], ve[arrows, 0], ve[arrows, 1], angles="xy", scale_units="xy",
                  scale=scale, width=0.0035, color=tcol[k], alpha=0.9, headwidth=3.5, headlength=4)
    if have_labels:
        for name, c in lab_colors.items():
            ax.scatter([], [], s=20, color=c, label=name)
        for k in range(len(times)):
            ax.plot([], [], color=tcol[k], label=f"arrows t = {times[k]:g}")
    ax.legend(fontsize=7, markerscale=2.5, loc="best", framealpha=0.8)
    ax.set_title("drift f(x, ρ) at observed cells", fontsize=10)
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])

    if predicted is not None:
        ax = axes[0, 1]
        for k, (x, p) in enumerate(zip(xs, predicted)):
            e, pe = proj(x), proj(p)
            pick = rng.choice(len(e), min(max_points, len(e)), replace=False)
            ppick = rng.choice(len(pe), min(max_points, len(pe)), replace=False)
            tag = " (held out)" if k in heldout else ""
            ax.scatter(e[pick, 0], e[pick, 1], s=5, color=tcol[k], alpha=0.25, lw=0,
                       label=f"observed t = {times[k]:g}{tag}")
            ax.scatter(pe[ppick, 0], pe[ppick, 1], s=9, marker="x", color=tcol[k], alpha=0.7, lw=0.7,
                       label=f"predicted t = {times[k]:g}{tag}")
        ax.legend(fontsize=7, markerscale=1.8, loc="best", framealpha=0.8, ncol=1 if len(times) <= 5 else 2)
        ax.set_title("predicted (×, simulated from t₀) vs observed (•)", fontsize=10)
        ax.set_xlabel(axis_names[0])
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


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
_SKIP_KEYS = {"time", "elapsed", "seconds", "wall", "lr", "learning_rate", "seed", "grad_norm"}


def plot_loss(history, path, *, title: str | None = None, log_scale: bool | None = None, smooth: bool = True) -> Path:
    """Training curves from a fit's history: one line per numeric loss column against the
    iteration column (``iteration``/``step``/… or the row index). The total ``loss`` is drawn
    bold; other components thin; the learning rate, if logged, on a second axis. A log scale
    is used when the values are positive and span more than a factor of 20. With ``smooth``
    and more than 120 records, curves are moving averages over 1/60 of the run (the raw
    total loss is drawn faintly behind)."""
    plt = _plt()
    cols = _history_columns(history)
    step_key = next((k for k in _STEP_KEYS if k in cols), None)
    n = len(next(iter(cols.values())))
    step = cols[step_key] if step_key else np.arange(n)
    series = {k: v for k, v in cols.items() if k != step_key and k not in _SKIP_KEYS and len(v) == len(step)}
    if not series:
        raise ValueError(f"the history has no loss columns (columns: {sorted(cols)})")
    fig, ax = plt.subplots(figsize=(6.8, 4.2))
    main = next((k for k in ("loss", "total", "train_loss") if k in series), None)
    # per-time fit terms (``fit@k``) are drawn thin and dashed; long noisy curves are smoothed
    window = max(1, len(step) // 60) if smooth else 1
    for k, v in series.items():
        per_time = "@" in k
        style = dict(lw=2.0 if k == main else (0.8 if per_time else 1.2), ls="--" if per_time else "-",
                     alpha=1.0 if k == main else 0.8)
        if window > 1:
            if k == main:
                ax.plot(step, v, lw=0.6, alpha=0.25, color="C0")
            v = _moving_average(v, window)
        line, = ax.plot(step, v, label=k, **style)
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
    ax.legend(fontsize=8)
    ax.set_title(title or ("training loss" + (f" (moving average over {window} iterations)" if window > 1 else "")),
                 fontsize=10)
    return _save(fig, path)
