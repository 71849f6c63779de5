"""``mfsde.tl.fit``: train a model on an AnnData's embedding and record it in ``uns``."""

from __future__ import annotations

import json
import warnings

import numpy as np

from mfsde.config._presets import preset as _preset
from mfsde.config._schema import Config
from mfsde.tl._anndata import check_adata, fit_record, jsonable, obsm_key, require_obs, snapshots, task_of, uns_record
from mfsde.training._runs import RunDir


def fit(
    adata,
    time_key: str,
    basis: str = "X_pca",
    preset: str | Config = "scimf",
    task=None,
    *,
    population_key: str | None = None,
    heldout_populations=(),
    out_dir=None,
    seed: int | None = None,
    progress: bool = True,
    device=None,
    **overrides,
):
    """Fit a mean-field SDE to the cells of ``adata`` in ``obsm[basis]``, one snapshot per
    ``obs[time_key]`` value; returns the trained :class:`~mfsde.MeanFieldSDE`.

    Args:
        time_key: ``obs`` column of cell times (numbers, "day2"-style strings, or an ordered
            categorical).
        basis: the ``obsm`` embedding to model (``"X_pca"`` or ``"pca"``), e.g. from
            :func:`mfsde.pp.preprocess`.
        preset: a preset name (``mfsde.config.PRESETS``) or a :class:`~mfsde.Config`.
        task: time points to hold out (``"loo:2"``, a :class:`~mfsde.data.Task`); ``None``: train
            on every time point.
        population_key: ``obs`` column naming each cell's population (replicate, donor,
            condition): populations are simulated as independent particle systems;
            ``heldout_populations`` are kept out of training.
        out_dir: also write a run directory there (resumable; ``mfsde evaluate/explain`` read it).
        seed: training seed (default: the config's).
        **overrides: config overrides with ``__`` for dots, e.g. ``train__iterations=200``,
            ``model__inter__heads=1`` (or ``**{"train.iterations": 200}``).

    Records in ``adata.uns["mfsde"]["fit"]``: ``time_key``, ``basis``, ``times``, ``task``,
    ``population_key``, ``preset``, ``config`` and ``scale`` (JSON strings), ``run_dir``;
    :func:`velocity`, :func:`interactions` and :func:`predict` read their defaults from it.
    """
    from mfsde.data import PopulationTask
    from mfsde.training._fit import fit as _fit

    check_adata(adata)
    require_obs(adata, time_key, "time_key")
    basis = obsm_key(basis)
    data = snapshots(adata, time_key, basis, population_key=population_key)
    if population_key:
        time_task = "all" if task is None else task
        run_task = PopulationTask(time_task, heldout_populations=list(heldout_populations))
        task_info = {
            "time_task": str(getattr(time_task, "name", time_task)),
            "heldout_populations": [str(p) for p in heldout_populations],
        }
    else:
        if heldout_populations:
            raise ValueError("heldout_populations needs population_key")
        run_task = task_of(task, data.n_times)
        task_info = {"name": run_task.name, "train": run_task.train, "heldout": run_task.heldout}
    if not population_key:
        _warn_if_preprocessing_saw(adata, [float(data.times[k]) for k in run_task.heldout])
    config = _preset(preset, data.dim) if isinstance(preset, str) else preset
    if not isinstance(config, Config):
        raise TypeError(f"preset must be a preset name or a Config, got {type(preset).__name__}")
    dotted = {k.replace("__", "."): v for k, v in overrides.items()}
    if seed is not None:
        dotted["train.seed"] = seed
    if dotted:
        config = config.override(**dotted)
    result = _fit(config, data, run_task, out_dir=out_dir, progress=progress, device=device)
    times = data.times if not population_key else np.unique(np.concatenate([data[p].times for p in data]))
    uns_record(adata)["fit"] = {
        "time_key": time_key,
        "basis": basis,
        "times": np.asarray(times, dtype=np.float64),
        "task": jsonable(task_info),
        "population_key": population_key or "",
        "preset": config.preset or "",
        "config": jsonable(config.to_dict()),
        "scale": jsonable(result.model.scale.to_dict()),
        "run_dir": "" if result.out_dir is None else str(result.out_dir),
        "iterations": int(result.iteration),
        "train_seconds": float(result.train_seconds),
    }
    return result.model


def _warn_if_preprocessing_saw(adata, heldout_times) -> None:
    """Held-out cells must not shape the preprocessing (gene selection, scaling, PCA axes)."""
    raw = adata.uns.get("mfsde", {}).get("preprocess")
    if not raw or not heldout_times:
        return
    seen = sorted(set(heldout_times) - set(json.loads(raw).get("heldout_times", [])))
    if seen:
        warnings.warn(
            f"mfsde.pp.preprocess was fitted on held-out time(s) {seen}: their cells shaped the genes, "
            "scaling and PCA axes; preprocess with the same task= to keep them out",
            UserWarning,
            stacklevel=3,
        )


def load_model(adata):
    """The model of the run directory that :func:`fit` recorded (``fit(..., out_dir=...)``)."""
    run_dir = fit_record(adata).get("run_dir")
    if not run_dir:
        raise ValueError("adata.uns['mfsde']['fit'] records no run directory; fit with out_dir=... to keep the model")
    return RunDir(run_dir).load()[0]
