"""Figure of a recovery check: learned vs true drift and population-dependent part (:mod:`mfsde.evaluation`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mfsde.pl import _common


def plot_recovery(
    model,
    system,
    times: Sequence[float],
    path,
    *,
    components: Sequence[int] | None = None,
    n_particles: int = 400,
    seed: int = 0,
    title: str | None = None,
    time_origin: float | None = None,
) -> Path:
    """Scatter plots of learned vs true drift, one column per coordinate in ``components``
    (default: all, at most 4): top row the total drift f at probe particles, bottom row the
    gauge-fixed population-dependent part Δf (:func:`recovery_samples`); the diagonal is a
    perfect recovery. Panel titles give the relative errors. Writes a PNG and returns its path."""
    from mfsde.evaluation._recovery import _ratio, recovery_samples

    s = recovery_samples(model, system, times, n_particles=n_particles, seed=seed, time_origin=time_origin)
    comps = list(range(min(system.dim, 4))) if components is None else [int(c) for c in components]
    if not comps or any(not 0 <= c < system.dim for c in comps):
        raise ValueError(f"components must be indices in 0..{system.dim - 1}, got {components!r}")
    plt = _common._plt()
    fig, axes = plt.subplots(2, len(comps), figsize=(2.9 * len(comps) + 0.6, 6.0), squeeze=False)
    rows = [("f_true", "f_model", "total drift f"), ("delta_true", "delta_model", "population-dependent Δf")]
    for r, (kt, km, what) in enumerate(rows):
        for c, j in enumerate(comps):
            ax, tv, mv = axes[r, c], s[kt][:, j].numpy(), s[km][:, j].numpy()
            lim = float(np.quantile(np.abs(np.concatenate([tv, mv])), 0.995)) * 1.05 or 1.0
            ax.plot([-lim, lim], [-lim, lim], color="0.5", lw=1, zorder=0)
            ax.scatter(tv, mv, s=4, alpha=0.35, lw=0, color="tab:blue" if r == 0 else "tab:red")
            err = _ratio(float(((mv - tv) ** 2).sum()), float((tv**2).sum()))
            ax.set_title(f"{what}: {system.feature_names[j]}\nrel. error {err:.3f}", fontsize=8)
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.tick_params(labelsize=6)
            ax.set_xlabel("true", fontsize=7)
            ax.set_ylabel("learned", fontsize=7)
    fig.suptitle(title or f"{system.name}: learned vs true drift at fresh probe particles", fontsize=10)
    fig.tight_layout()
    return _common._save(fig, path)
