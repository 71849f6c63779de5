"""Figures of interaction weights: cell-wise heat maps, cell-type matrices and directed graphs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mfsde.pl import _common

# -- attention ----------------------------------------------------------------------------------
_KERNEL_NAMES = {
    "AttentionInteraction": "attention",
    "RBFInteraction": "RBF-kernel",
    "PairwiseMLPInteraction": "pairwise-MLP",
    "NoInteraction": "no-interaction",
}


def _kernel_name(kernel) -> str:
    return _KERNEL_NAMES.get(str(kernel), str(kernel))


def _uniform(lab_or_n, kernel) -> float | None:
    """The weight every pair gets when attention is uniform, 1/(N − 1), or None for kernels
    whose weights are not normalised over sources."""
    n = int(np.sum(lab_or_n)) if np.ndim(lab_or_n) else int(lab_or_n)
    return 1.0 / max(n - 1, 1) if "Attention" in str(kernel) else None


def plot_cell_weights(amap, path, *, head: int | None = None, title: str | None = None, quantile: float = 0.99) -> Path:
    """Heat map of an :class:`~mfsde.explain.WeightMap` (mean over heads, or ``head``).

    Rows are receivers (targets) i, columns sources j. The colour scale spans the
    ``1 − quantile`` to ``quantile`` quantiles of the off-diagonal weights so that a few extreme
    entries do not wash out the rest; the (self-excluded) diagonal is grey. Label blocks are
    outlined and named on both axes, with a colour strip.
    """
    plt = _common._plt()
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
    im = ax.imshow(
        np.ma.masked_array(w, diag), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest", aspect="equal"
    )
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    uniform = (
        f"; uniform = 1/(N−1) = {1 / max(n - 1, 1):.3g}" if "Attention" in str(getattr(amap, "kernel", "")) else ""
    )
    cb.set_label(f"weight (colour range: {1 - quantile:.0%}–{quantile:.0%} quantiles{uniform})", fontsize=8)
    if amap.labels is not None:
        blocks = _common._blocks(np.asarray(amap.labels))
        colors = _common._label_colors(sorted({b[0] for b in blocks}))
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
    ax.set_title(
        title
        or f"{_kernel_name(amap.kernel)} weights at t = {amap.time:g} ({n} cells, {what})\n"
        f"asymmetry index {amap.asymmetry:.3f}",
        fontsize=10,
    )
    return _common._save(fig, path)


def plot_label_weights(
    lab, path=None, *, title: str | None = None, kernel=None, ax=None, quantity: str = "mean cell-wise weight"
):
    """Annotated heat map of a :class:`~mfsde.explain.LabelWeights` (rows = receiver type);
    saved at ``path`` (returns it), or the open figure when ``path`` is ``None`` (on ``ax`` if given).
    ``quantity`` names what the cells hold (the colour bar's label), e.g. the influence of
    :func:`~mfsde.explain.label_influence`.
    For attention the colours diverge around the uniform level 1/(N − 1) (white: no preference),
    so "more than uniform" and "less than uniform" read at a glance."""
    _common._plt()  # matplotlib with a headless backend
    from matplotlib.colors import TwoSlopeNorm

    m = np.asarray(lab.matrix, dtype=float)
    n = len(lab.names)
    size = 2.8 + 0.55 * n
    fig, ax = _common._axes(ax, (size + 1.2, size))
    finite = m[np.isfinite(m)]
    ref = _uniform(lab.counts, kernel)
    label = quantity
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
                    shade = (
                        norm(m[i, j]) if norm is not None else (m[i, j] - finite.min()) / max(np.ptp(finite), 1e-300)
                    )
                    dark = shade < 0.2 or shade > 0.8 if norm is not None else shade < 0.5
                    ax.text(
                        j, i, f"{m[i, j]:.3g}", ha="center", va="center", fontsize=8, color="white" if dark else "black"
                    )
    ax.set_xlabel("source type (influences)")
    ax.set_ylabel("receiver type (is influenced)")
    ax.set_title(f"{title or 'cell-type interaction'}\nasymmetry index {lab.asymmetry:.3f}", fontsize=10)
    return _common._finish(fig, path)


def plot_label_graph(lab, path=None, *, title: str | None = None, min_fraction: float = 0.0, kernel=None, ax=None):
    """Directed cell-type graph: nodes = labels with cells (size ∝ cell count), an arrow from
    source type b to receiver type a whose width is *proportional to* ``matrix[a, b]`` on an
    absolute scale: the reference width (3 pt) is the uniform level 1/(N − 1) for attention, the
    mean off-diagonal weight otherwise, so near-uniform weights draw near-equal arrows. When the
    two directions of a pair differ by less than 2 standard errors (``lab.sem``) both arrows are
    dashed: reciprocal within sampling noise. A halo around a node shows the within-type weight.
    Arrows below ``min_fraction`` × the largest weight are left out; types without cells are
    listed in the title instead of drawn. Saved at ``path`` (returns it), or the open figure when
    ``path`` is ``None`` (on ``ax`` if given)."""
    _common._plt()  # matplotlib with a headless backend
    from matplotlib.patches import Circle, FancyArrowPatch

    counts_all = np.asarray(lab.counts, dtype=float)
    keep = np.flatnonzero(counts_all > 0)
    empty = [lab.names[i] for i in range(len(lab.names)) if counts_all[i] <= 0]
    names = [lab.names[i] for i in keep]
    m = np.nan_to_num(np.asarray(lab.matrix, dtype=float)[np.ix_(keep, keep)])
    sem = (
        np.nan_to_num(np.asarray(lab.sem, dtype=float)[np.ix_(keep, keep)], nan=np.inf)
        if getattr(lab, "sem", None) is not None
        else None
    )
    counts = counts_all[keep]
    n = len(names)
    colors = _common._label_colors(names)
    ang = np.pi / 2 - 2 * np.pi * np.arange(n) / max(n, 1)
    pos = np.stack([np.cos(ang), np.sin(ang)], 1) if n > 1 else np.zeros((1, 2))
    radius = 0.09 + 0.09 * np.sqrt(counts / max(counts.max(initial=0.0), 1))
    off = m[~np.eye(n, dtype=bool)] if n > 1 else m.ravel()
    hi = float(max(m.max(initial=0.0), 0.0))
    ref = _uniform(counts_all, kernel) or (float(off[off > 0].mean()) if (off > 0).any() else 1.0)
    fig, ax = _common._axes(ax, (6.6, 6.4))
    n_within = 0
    for a in range(n):  # receiver
        for b in range(n):  # source
            if a == b or m[a, b] <= 0 or m[a, b] / (hi or 1.0) <= min_fraction:
                continue
            rel = m[a, b] / ref
            within = sem is not None and abs(m[a, b] - m[b, a]) <= 2 * np.hypot(sem[a, b], sem[b, a])
            n_within += within
            arrow = FancyArrowPatch(
                pos[b],
                pos[a],
                connectionstyle="arc3,rad=0.18",
                arrowstyle="-|>",
                mutation_scale=float(np.clip(8 + 4 * rel, 8, 24)),
                lw=float(np.clip(3.0 * rel, 0.3, 9.0)),
                color=colors[names[b]],
                alpha=0.75,
                ls="--" if within else "-",
                shrinkA=radius[b] * 72 * 2.2,
                shrinkB=radius[a] * 72 * 2.2,
                zorder=1,
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
            ax.text(
                x,
                y + (gap if y >= 0 else -gap),
                text,
                ha="center",
                va="bottom" if y >= 0 else "top",
                fontsize=9,
                zorder=4,
            )
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
    ax.set_title(
        f"{title or 'directed cell-type interaction'}\narrow b → a: source type b influences receiver "
        f"type a; asymmetry index {lab.asymmetry:.3f}\n" + "; ".join(notes),
        fontsize=8,
    )
    return _common._finish(fig, path)


# -- velocities ---------------------------------------------------------------------------------
