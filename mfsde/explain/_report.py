"""``explain``: every interpretation output of a fitted model written to a directory (arrays,
``summary.json`` and figures through :mod:`mfsde.pl`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mfsde.explain._embedding import pca_embedding
from mfsde.explain._influence import label_influence
from mfsde.explain._weights import (
    WeightMap,
    _inter,
    _time_indices,
    _times,
    cluster_labels,
    has_interaction_weights,
    interaction_weights,
    velocities,
    with_labels,
)


def _simulate(model, snapshots, n_particles: int, seed: int) -> np.ndarray:
    """Particles simulated from the observed cells at t_0 through all snapshot times, ``(T, N, d)``
    (the same draw and noise as :func:`mfsde.evaluation.simulate` with this seed)."""
    from mfsde.evaluation._evaluate import simulate

    sims = simulate(model, snapshots, range(len(snapshots.data)), n_particles=n_particles, seed=seed)
    return np.stack([sims[k].detach().cpu().float().numpy() for k in sorted(sims)])


# -- everything at once -----------------------------------------------------------------------
def explain(
    model,
    snapshots,
    out_dir,
    *,
    time_indices: int | Sequence[int] | None = None,
    n_cells: int | None = 400,
    n_particles: int = 1000,
    seed: int = 0,
    history=None,
    heldout: Sequence[int] | None = None,
    figures: bool = True,
    max_arrows: int = 300,
    clusters: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Compute and write all interpretation outputs of ``model`` on ``snapshots`` to ``out_dir``.

    Writes (``k`` = time index):

    - ``weights_t{k}.npz`` — :meth:`WeightMap.to_npz_dict`: ``weights`` (N, N), ``heads``
      (H, N, N), ``cells``, ``labels``, ``asymmetry`` and, with labels, ``label_names``,
      ``label_matrix``, ``label_counts``, ``label_asymmetry``, ``label_net``;
    - ``velocities.npz`` — per time point ``x_t{k}``, ``v_t{k}`` (total drift), ``v_intra_t{k}``,
      ``v_inter_t{k}`` at all observed cells, ``pred_t{k}`` (particles simulated from t_0),
      ``times``, and the PCA used for the figures (``pca_mean``, ``pca_components``);
    - ``summary.json`` — kernel, asymmetry indices per time point, label-wise matrices (weights,
      and with labels the influence ‖∂f_inter(x_i)/∂x_j‖ of :func:`label_influence`), drift
      magnitudes (mean ‖f_intra‖, ‖f_inter‖ per time) and notes;
    - figures (``figures=True``, needs matplotlib): ``weights_cells_t{k}.png``,
      ``weights_labels_t{k}.png``, ``weights_graph_t{k}.png``, ``influence_labels_t{k}.png``, ``velocities.png`` and
      ``loss.png`` (when ``history`` is given).

    ``n_cells`` caps the cells per attention matrix (see the module notes); velocities use all
    observed cells, arrows are drawn for at most ``max_arrows`` per time point. With
    ``clusters=K`` and unlabelled data, :func:`cluster_labels` supplies K pseudo cell types
    (k-means regions) so that the label-wise outputs exist too. ``heldout``
    (time indices) only marks those time points in the figures. A model without interaction
    weights is reported in ``summary["notes"]``, not raised.

    Returns the summary dict (also ``summary["files"]``: every file written).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    say = print if progress else (lambda *a, **k: None)
    ks = _time_indices(snapshots, time_indices)
    times = _times(snapshots)
    files: list[str] = []
    notes: list[str] = []
    inter = _inter(model)
    summary: dict[str, Any] = {
        "kernel": type(inter).__name__,
        "time_indices": ks,
        "times": [float(times[k]) for k in ks],
    }
    if clusters is not None and (isinstance(clusters, bool) or not isinstance(clusters, int) or clusters < 1):
        raise ValueError(f"clusters must be a positive number of clusters (or None), got {clusters!r}")
    if clusters and getattr(snapshots, "labels", None) is None:
        snapshots = with_labels(snapshots, cluster_labels(snapshots, clusters, seed=seed))
        notes.append(
            f"the data carry no cell labels: labels c1..c{clusters} are k-means clusters of the pooled "
            "observed cells (ordered along PC1), not cell types"
        )
        summary["labels"] = f"kmeans:{clusters}"
    elif clusters:
        notes.append(f"clusters={clusters} not used: the data carry their own cell labels")

    # attention
    maps: list[WeightMap] = []
    ok, reason = has_interaction_weights(model)
    if ok:
        say(f"interaction weights at {len(ks)} time point(s) ...")
        maps = interaction_weights(model, snapshots, time_indices=ks, n_cells=n_cells, seed=seed)
        for m in maps:
            p = out / f"weights_t{m.time_index}.npz"
            np.savez_compressed(p, **m.to_npz_dict())
            files.append(p.name)
        summary["weights"] = [
            {
                "time_index": m.time_index,
                "time": m.time,
                "n_cells": int(len(m.cells)),
                "heads": int(m.heads.shape[0]),
                "asymmetry": m.asymmetry,
                **(
                    {
                        "label_names": m.label.names,
                        "label_counts": m.label.counts.tolist(),
                        "label_matrix": _nan_to_none(m.label.matrix),
                        "label_asymmetry": m.label.asymmetry,
                    }
                    if m.label is not None
                    else {}
                ),
            }
            for m in maps
        ]
        influence = [m for m in maps if m.label is not None]
        if influence:
            say(f"influence ‖∂f_i/∂x_j‖ at {len(influence)} time point(s) ...")
        summary["influence"] = []
        for m in influence:  # who drives whom, from the drift itself (weights cannot say "feels nothing")
            x = np.asarray(snapshots.data[m.time_index], dtype=np.float32)[m.cells]
            lab = label_influence(model, x, m.labels, m.time, names=m.label.names)
            summary["influence"].append(
                {
                    "time_index": m.time_index,
                    "time": m.time,
                    "label_names": lab.names,
                    "label_matrix": _nan_to_none(lab.matrix),
                    "label_net": _nan_to_none(lab.net),
                    "label_asymmetry": lab.asymmetry,
                }
            )
            if figures:
                from mfsde import pl as plotting

                files.append(
                    plotting.plot_label_weights(
                        lab,
                        out / f"influence_labels_t{m.time_index}.png",
                        quantity="mean ‖∂f_inter(x_i)/∂x_j‖",
                        title=f"cell-type influence, t = {m.time:g}",
                    ).name
                )
        if maps and maps[0].labels is None:
            notes.append(
                "the data carry no cell labels: cells are ordered along PC1 and no label-wise matrix is computed"
            )
    else:
        notes.append(reason)
        summary["weights"] = None

    # velocities + simulation
    say("velocities at observed cells ...")
    vel: dict[str, np.ndarray] = {"times": times}
    mags = []
    for k in range(len(snapshots.data)):
        x = np.asarray(snapshots.data[k], dtype=np.float32)
        v = velocities(model, x, times[k])
        vel[f"x_t{k}"] = x
        vel[f"v_t{k}"] = v["total"]
        for part in ("intra", "inter"):
            if part in v:
                vel[f"v_{part}_t{k}"] = v[part]
        mags.append(
            {
                "time_index": k,
                "time": float(times[k]),
                **{
                    f"mean_norm_{p}": float(np.linalg.norm(v[p], axis=1).mean())
                    for p in ("total", "intra", "inter")
                    if p in v
                },
            }
        )
    summary["drift_norms"] = mags
    pred = None
    if n_particles:
        say(f"simulating {n_particles} particles from t_0 ...")
        pred = _simulate(model, snapshots, n_particles, seed)
        for k in range(pred.shape[0]):
            vel[f"pred_t{k}"] = pred[k]
    emb = pca_embedding(np.concatenate([np.asarray(d) for d in snapshots.data]), seed=seed)
    vel.update(pca_mean=emb["mean"], pca_components=emb["components"], pca_explained=emb["explained"])
    p = out / "velocities.npz"
    np.savez_compressed(p, **vel)
    files.append(p.name)

    # figures
    if figures:
        from mfsde import pl as plotting

        say("figures ...")
        labels_all = getattr(snapshots, "labels", None)
        for m in maps:
            files.append(plotting.plot_cell_weights(m, out / f"weights_cells_t{m.time_index}.png").name)
            if m.label is not None:
                files.append(
                    plotting.plot_label_weights(
                        m.label,
                        out / f"weights_labels_t{m.time_index}.png",
                        kernel=m.kernel,
                        title=f"cell-type interaction, t = {m.time:g}",
                    ).name
                )
                files.append(
                    plotting.plot_label_graph(
                        m.label,
                        out / f"weights_graph_t{m.time_index}.png",
                        kernel=m.kernel,
                        title=f"directed cell-type interaction, t = {m.time:g}",
                    ).name
                )
        files.append(
            plotting.plot_velocities(
                [vel[f"x_t{k}"] for k in range(len(times))],
                [vel[f"v_t{k}"] for k in range(len(times))],
                times,
                out / "velocities.png",
                predicted=None if pred is None else list(pred),
                embedding=emb,
                labels=labels_all,
                heldout=heldout,
                max_arrows=max_arrows,
                seed=seed,
                feature_names=getattr(snapshots, "feature_names", None),
            ).name
        )
        if history is not None:
            try:
                files.append(plotting.plot_loss(history, out / "loss.png").name)
            except ValueError as e:  # an empty or unreadable history
                notes.append(f"no loss plot: {e}")

    summary["notes"] = notes
    summary["files"] = files + ["summary.json"]
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _nan_to_none(a: np.ndarray) -> list:
    return [[None if np.isnan(v) else float(v) for v in row] for row in np.asarray(a, dtype=float)]
