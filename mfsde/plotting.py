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
_KERNEL_NAMES = {"AttentionInteraction": "attention", "RBFInteraction": "RBF-kernel",
                 "PairwiseMLPInteraction": "pairwise-MLP", "NoInteraction": "no-interaction"}


def _kernel_name(kernel) -> str:
    return _KERNEL_NAMES.get(str(kernel), str(kernel))


def _uniform(lab_or_n, kernel) -> float | None:
    """The weight every pair gets when attention is uniform, 1/(N − 1), or None for kernels
    whose weights are not normalised over sources."""
    n = int(np.sum(lab_or_n)) if np.ndim(lab_or_n) else int(lab_or_n)
    return 1.0 / max(n - 1, 1) if "Attention" in str(kernel) else None


def plot_cell_attention(amap, path, *, head: int | None = None, title: str | None = None, quantile: float = 0.99) -> Path:
    """Heat map of an :class:`~mfsde.explain.AttentionMap` (mean over heads, or ``head``).

    Rows are receivers (targets) i, columns sources j. The colour scale spans the
    ``1 − quantile`` to ``quantile`` quantiles of the off-diagonal weights so that a few extreme
    entries do not wash out the rest; the (self-excluded) diagonal is grey. Label blocks are
    outlined and named on both axes, with a colour strip.
    """
    plt = _plt()
    from matplotlib.patches import Rectangle

    w = amap.weights if head is None else amap.heads[head]
    n = w.shape[0]
    diag = np.eye(n, dtype=bool)
    off = w[~diag] if n > 1 else w.ravel()
    vmin = float(np.quantile(off, 1 - quantile)) if off.size else 0.0
    vmax = float(np.quantile(off, quantile)) if off.size else 1.0
    if not vmax > vmin:
        vmin, vmax = min(vmin, 0.0), max(vmax, vmin + 1e-12)
    cmap = plt.get_cmap("magma").with_extremes(bad="0.75")
    fig, ax = plt.subplots(figsize=(6.8, 5.8))
    im = ax.imshow(np.ma.masked_array(w, diag), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest", aspect="equal")
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    uniform = f"; uniform = 1/(N−1) = {1 / max(n - 1, 1):.3g}" if "Attention" in str(getattr(amap, "kernel", "")) else ""
    cb.set_label(f"weight (colour range: {1 - quantile:.0%}–{quantile:.0%} quantiles{uniform})", fontsize=8)
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
        # blocks thinner than ~2.5 % of the axis get no tick label (they would overlap); the
        # colour strip still marks them
        big = [(nm, a, b) for nm, a, b in blocks if b - a >= max(1.0, 0.025 * n)]
        centres = [(a + b - 1) / 2 for _, a, b in big]
        names = [nm for nm, _, _ in big]
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
    ax.set_title(title or f"{_kernel_name(amap.kernel)} weights at t = {amap.time:g} ({n} cells, {what})\n"
                          f"asymmetry index {amap.asymmetry:.3f}", fontsize=10)
    return _save(fig, path)


def plot_label_attention(lab, path, *, title: str | None = None, kernel=None) -> Path:
    """Annotated heat map of a :class:`~mfsde.explain.LabelAttention` (rows = receiver type).
    For attention the colours diverge around the uniform level 1/(N − 1) (white: no preference),
    so "more than uniform" and "less than uniform" read at a glance."""
    plt = _plt()
    from matplotlib.colors import TwoSlopeNorm

    m = np.asarray(lab.matrix, dtype=float)
    n = len(lab.names)
    size = 2.8 + 0.55 * n
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    finite = m[np.isfinite(m)]
    ref = _uniform(lab.counts, kernel)
    label = "mean cell-wise weight"
    if ref is not None and finite.size and finite.min() < ref < finite.max():
        norm, cmap = TwoSlopeNorm(vcenter=ref, vmin=finite.min(), vmax=finite.max()), "RdBu_r"
        label += f" (white = uniform 1/(N−1) = {ref:.3g})"
    else:
        norm, cmap = None, "viridis"
        if ref is not None:
            label += f" (uniform 1/(N−1) = {ref:.3g})"
    im = ax.imshow(np.ma.masked_invalid(m), cmap=cmap, norm=norm, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=label)
    ticks = [f"{nm} ({c})" for nm, c in zip(lab.names, lab.counts)]
    ax.set_xticks(range(n), ticks, rotation=45, ha="right")
    ax.set_yticks(range(n), ticks)
    if n <= 15:
        for i in range(n):
            for j in range(n):
                if np.isfinite(m[i, j]):
                    shade = (norm(m[i, j]) if norm is not None else
                             (m[i, j] - finite.min()) / max(np.ptp(finite), 1e-300))
                    dark = shade < 0.2 or shade > 0.8 if norm is not None else shade < 0.5
                    ax.text(j, i, f"{m[i, j]:.3g}", ha="center", va="center", fontsize=8,
                            color="white" if dark else "black")
    ax.set_xlabel("source type (influences)")
    ax.set_ylabel("receiver type (is influenced)")
    ax.set_title(f"{title or 'cell-type interaction'}\nasymmetry index {lab.asymmetry:.3f}", fontsize=10)
    return _save(fig, path)


def plot_label_graph(lab, path, *, title: str | None = None, min_fraction: float = 0.0, kernel=None) -> Path:
    """Directed cell-type graph: nodes = labels with cells (size ∝ cell count), an arrow from
    source type b to receiver type a whose width is *proportional to* ``matrix[a, b]`` on an
    absolute scale: the reference width (3 pt) is the uniform level 1/(N − 1) for attention, the
    mean off-diagonal weight otherwise, so near-uniform weights draw near-equal arrows. When the
    two directions of a pair differ by less than 2 standard errors (``lab.sem``) both arrows are
    dashed: reciprocal within sampling noise. A halo around a node shows the within-type weight.
    Arrows below ``min_fraction`` × the largest weight are left out; types without cells are
    listed in the title instead of drawn."""
    plt = _plt()
    from matplotlib.patches import Circle, FancyArrowPatch

    counts_all = np.asarray(lab.counts, dtype=float)
    keep = np.flatnonzero(counts_all > 0)
    empty = [lab.names[i] for i in range(len(lab.names)) if counts_all[i] <= 0]
    names = [lab.names[i] for i in keep]
    m = np.nan_to_num(np.asarray(lab.matrix, dtype=float)[np.ix_(keep, keep)])
    sem = (np.nan_to_num(np.asarray(lab.sem, dtype=float)[np.ix_(keep, keep)], nan=np.inf)
           if getattr(lab, "sem", None) is not None else None)
    counts = counts_all[keep]
    n = len(names)
    colors = _label_colors(names)
    ang = np.pi / 2 - 2 * np.pi * np.arange(n) / max(n, 1)
    pos = np.stack([np.cos(ang), np.sin(ang)], 1) if n > 1 else np.zeros((1, 2))
    radius = 0.09 + 0.09 * np.sqrt(counts / max(counts.max(initial=0.0), 1))
    off = m[~np.eye(n, dtype=bool)] if n > 1 else m.ravel()
    hi = float(max(m.max(initial=0.0), 0.0))
    ref = _uniform(counts_all, kernel) or (float(off[off > 0].mean()) if (off > 0).any() else 1.0)
    fig, ax = plt.subplots(figsize=(6.6, 6.4))
    n_within = 0
    for a in range(n):  # receiver
        for b in range(n):  # source
            if a == b or m[a, b] <= 0 or m[a, b] / (hi or 1.0) <= min_fraction:
                continue
            rel = m[a, b] / ref
            within = sem is not None and abs(m[a, b] - m[b, a]) <= 2 * np.hypot(sem[a, b], sem[b, a])
            n_within += within
            arrow = FancyArrowPatch(
                pos[b], pos[a], connectionstyle="arc3,rad=0.18", arrowstyle="-|>",
                mutation_scale=float(np.clip(8 + 4 * rel, 8, 24)), lw=float(np.clip(3.0 * rel, 0.3, 9.0)),
                color=colors[names[b]], alpha=0.75, ls="--" if within else "-",
                shrinkA=radius[b] * 72 * 2.2, shrinkB=radius[a] * 72 * 2.2, zorder=1,
            )
            ax.add_patch(arrow)
    for i, name in enumerate(names):
        self_rel = float(np.clip(m[i, i] / ref, 0.0, 3.0))
        ax.add_patch(Circle(pos[i], radius[i] + 0.02 + 0.03 * self_rel, color=colors[name], alpha=0.25, zorder=2, lw=0))
        ax.add_patch(Circle(pos[i], radius[i], color=colors[name], zorder=3, ec="black", lw=0.8))
        text = f"{name}\n(n={int(counts[i])}, self {m[i, i]:.3g})"
        x, y = pos[i]
        gap = radius[i] + 0.1
        if x > 0.3:
            ax.text(x + gap, y, text, ha="left", va="center", fontsize=9, zorder=4)
        elif x < -0.3:
            ax.text(x - gap, y, text, ha="right", va="center", fontsize=9, zorder=4)
        else:
            ax.text(x, y + (gap if y >= 0 else -gap), text, ha="center", va="bottom" if y >= 0 else "top",
                    fontsize=9, zorder=4)
    ax.set_xlim(-2.1, 2.1)
    ax.set_ylim(-1.7, 1.7)
    ax.set_aspect("equal")
    ax.axis("off")
    ref_name = "uniform 1/(N−1)" if _uniform(counts_all, kernel) is not None else "mean weight"
    notes = [f"width ∝ weight; 3 pt = {ref_name} = {ref:.3g}"]
    if n_within:
        notes.append("dashed: the two directions differ by < 2 s.e. (reciprocal within noise)")
    if empty:
        notes.append(f"no cells here: {', '.join(empty)}")
    ax.set_title(f"{title or 'directed cell-type interaction'}\narrow b → a: source type b influences receiver "
                 f"type a; asymmetry index {lab.asymmetry:.3f}\n" + "; ".join(notes), fontsize=8)
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
    """Left: observed cells (coloured by label when given, else by time) with drift arrows
    f(x, ρ) at up to ``max_arrows`` cells per time point (arrows coloured by time). Right (with
    ``predicted``): one small panel per time point, observed cells (grey) vs particles simulated
    from t₀ (coloured); held-out time points are titled in red.

    Everything is projected by ``embedding`` (from :func:`mfsde.explain.pca_embedding`;
    default: fitted here on the observed cells). Arrows are the linear projection of the
    drift, so their length is the drift's speed within the embedding plane (scaled so that a
    95th-percentile arrow spans 6 % of the plot).
    """
    plt = _plt()
    from .embedding import pca_embedding

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
        axis_names = [f"PC{i + 1}" + ("" if np.isnan(ev[i]) else f" ({ev[i]:.0%} var.)") for i in range(2)]
    heldout = set(int(k) for k in (heldout or []))
    T = len(times)
    cmap = plt.get_cmap("viridis")
    tcol = [cmap(0.9 * i / max(T - 1, 1)) for i in range(T)]
    have_labels = labels is not None and all(lab is not None for lab in labels)
    lab_colors = _label_colors(sorted({str(v) for lab in labels for v in np.asarray(lab)})) if have_labels else {}

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
        ax.quiver(e[arrows, 0], e[arrows, 1], ve[arrows, 0], ve[arrows, 1], angles="xy", scale_units="xy",
                  scale=scale, width=0.003, color=tcol[k], alpha=0.85, headwidth=3.5, headlength=4)
    handles = []
    if have_labels:
        handles += [ax.scatter([], [], s=25, color=c, label=name) for name, c in lab_colors.items()]
    handles += [ax.plot([], [], color=tcol[k], lw=2, label=f"t = {times[k]:g}" + (" (held out)" if k in heldout else ""))[0]
                for k in range(T)]
    ax.legend(handles=handles, fontsize=7, loc="best", framealpha=0.85, title="cells / arrows by time" if have_labels
              else "arrows by time", title_fontsize=7)
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
            a.set_title(f"t = {times[k]:g}" + (" (held out)" if held else ""), fontsize=8,
                        color="tab:red" if held else "black")
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
_SKIP_KEYS = {"time", "elapsed", "seconds", "wall", "lr", "learning_rate", "seed", "grad_norm", "grad_norm_clipped",
              "eval_seconds"}


def _curve_label(key: str) -> str:
    """Legend text of a history column: ``fit@2`` → "fit at time index 2 (Sinkhorn)"."""
    if key.startswith("fit@"):
        return f"fit at time index {key[4:]} (distribution loss)"
    return {"loss": "loss = fit + λ·energy", "fit": "fit (mean over training times)",
            "energy": "energy (path action)"}.get(key, key)


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
    # exact W1 (``w1@k``, data units, logged every train.eval_every) is not a loss: left out here
    series = {k: v for k, v in cols.items() if k != step_key and k not in _SKIP_KEYS and not k.startswith("w1@")
              and len(v) == len(step)}
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
        line, = ax.plot(step, v, label=_curve_label(k), **style)
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
    ax.legend(handles, names, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=min(4, len(names)),
              frameon=False)
    ax.set_title(title or ("training loss" + (f" (moving average over {window} iterations)" if window > 1 else "")),
                 fontsize=10)
    return _save(fig, path)
