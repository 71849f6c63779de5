"""Training a mean-field SDE on snapshot data: scIMF's recipe (see ../shared/docs/scimf.md).

One iteration (all settings from the :class:`~mfsde.Config`):

1. draw ``train.n_particles`` cells from the first snapshot (without replacement, or with
   replacement when there are fewer cells) using a seeded ``torch.Generator``;
2. simulate them with the model through every snapshot time up to the last *training* time
   (in the model's units: cells and times through ``model.scale``, a
   :class:`~mfsde.model.DataScale` fitted on the training times), accumulating the path energy;
3. loss = ``loss.fit_weight`` × mean over the training times l ≥ 1 of the distribution loss
   (``loss.fit`` by registry name, comparing with ``train.n_targets`` observed cells drawn
   afresh each iteration by the same generator; ``None`` = all cells) +
   ``loss.energy_weight`` × path energy / last training time. Held-out times are never used;
4. Adam(``train.lr``) step after gradient-norm clipping (``train.clip_grad_norm``), then
   ``StepLR(train.lr_step, train.lr_gamma)``.

With ``train.replicas = P > 1`` steps 1–3 are done for P independent replicas, each with
its own random streams (derived from ``(train.seed, p)``), and the loss, fit and energy terms
are their means. Under ``torch.distributed`` (e.g. ``torchrun``, see docs/distributed.md and
:mod:`mfsde.training`) rank r simulates replicas r, r + W, r + 2W, … of a world of W
processes, the model is wrapped in ``DistributedDataParallel`` (which averages the gradients,
so the update is that of one process simulating all P replicas), every rank logs the same
all-reduced numbers, and only rank 0 writes the run directory.

Runs are reproducible on CPU under ``train.seed`` (torch's global RNG, which drives weight
initialisation and dropout, is seeded too) and can be resumed bit-identically from
``checkpoint.pt`` (:func:`fit` with ``resume=``).

>>> from mfsde import preset
>>> from mfsde.training import fit
>>> result = fit(preset("scimf", dim=snaps.dim), snaps, "interpolate:2", out_dir="runs/a")
"""

import json
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mfsde.config._schema import Config
from mfsde.data._inputs import check_inputs, draw_initial, resolve_task
from mfsde.model._sde import MeanFieldSDE
from mfsde.training import _distributed as distributed
from mfsde.training import _runs as runs
from mfsde.training._runlock import RunLock
from mfsde.training._trainer import (
    RESUMABLE_CHANGES,
    FitLoss,
    RandomStreams,
    Trainer,
    _task_dict,
    default_simulate,
    replica_seed,
    seed_everything,
)

__all__ = [
    "fit",
    "FitResult",
    "Trainer",
    "FitLoss",
    "TrainingInterrupted",
    "DeferredSignals",
    "check_inputs",
    "resolve_task",
    "draw_initial",
    "replica_seed",
    "seed_everything",
    "default_simulate",
    "RandomStreams",
    "RESUMABLE_CHANGES",
]


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        model: the trained model (in eval mode).
        history: one dict per iteration: ``iteration`` (1-based), ``loss``, ``fit``, ``energy``,
            ``fit@k`` (distribution loss at snapshot index k, model units), ``lr``, ``grad_norm``
            (before clipping), ``grad_norm_clipped`` (after), ``seconds`` and ``cpu_seconds`` (wall
            and process CPU time of the iteration); with ``train.eval_every`` also ``w1@k`` (exact W1
            in data units at every training and held-out time k ≥ 1) and ``eval_seconds`` every that many iterations.
        config: the config trained with.
        out_dir: the run directory, or ``None``.
        elapsed: wall-clock seconds of this call (not counting earlier runs that were resumed).
        iteration: iterations completed (``config.train.iterations`` unless a callback or the
            time budget stopped early).
        train_seconds: seconds spent in training steps over the whole run (resumed parts
            included) on the clock ``train.time_budget`` counts (``train.time_clock``: CPU seconds
            of this process by default).
        train_cpu_seconds, train_wall_seconds: the same on each clock.
        stopped: ``"iterations"``, ``"time_budget"`` or ``"callback"``.
        start_iteration: the iteration this call started from (> 0 when resumed).
    """

    model: MeanFieldSDE
    history: list[dict]
    config: Config
    out_dir: Path | None
    elapsed: float
    iteration: int = 0
    train_seconds: float = 0.0
    stopped: str = "iterations"
    train_cpu_seconds: float = 0.0
    train_wall_seconds: float = 0.0
    start_iteration: int = 0


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by SIGINT or SIGTERM after checkpointing; ``exit_code`` is 128 + signal
    (130 for Ctrl-C, 143 for a scheduler's SIGTERM)."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum, self.exit_code = signum, 128 + int(signum)


class DeferredSignals:
    """Within ``with``: SIGINT and SIGTERM only set :attr:`signum` (the training loop then
    finishes its iteration and writes a checkpoint); a second signal acts at once as usual.
    Does nothing off the main thread or when ``enabled`` is false."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, enabled: bool = True):
        self.enabled, self.signum, self._old = enabled, None, {}

    def __enter__(self) -> "DeferredSignals":
        if self.enabled and threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.signum = signum
        self._restore()

    def _restore(self) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)
        self._old = {}

    def __exit__(self, *exc) -> None:
        self._restore()

    def raise_if_caught(self, message: str) -> None:
        if self.signum is not None:
            name = signal.Signals(self.signum).name
            raise TrainingInterrupted(f"{name} received: {message}", self.signum)


def fit(
    config: Config,
    snapshots,
    task,
    *,
    out_dir: str | Path | None = None,
    resume: str | Path | None = None,
    progress: bool = True,
    callback: Callable[[dict, MeanFieldSDE], Any] | None = None,
    device: str | torch.device | None = None,
) -> FitResult:
    """Train ``build_model(config)`` on the training times of ``task`` (see the module docstring).

    Under an initialised ``torch.distributed`` process group (see :mod:`mfsde.training`)
    every rank calls ``fit`` with the same arguments: each simulates its share of
    ``train.replicas``, only rank 0 writes ``out_dir`` and shows the progress bar, and every
    rank returns the same history and parameters.

    Args:
        config: model, loss and training settings; ``config.model.dim`` must equal ``snapshots.dim``.
        snapshots: a :class:`mfsde.data.Snapshots` (``times``, ``data``, ``dim``, ``tensors()``).
        task: a :class:`mfsde.data.Task` (``train``/``heldout`` time indices) or its name.
        out_dir: run directory; gets ``config.json``, ``meta.json``, ``history.jsonl`` and
            ``checkpoint.pt`` (at the start, every ``train.checkpoint_every`` iterations or
            ``train.checkpoint_seconds`` seconds, at the end, and on SIGINT/SIGTERM: the loop
            finishes its iteration, checkpoints and raises :class:`TrainingInterrupted`). Every
            write is atomic and fsynced, so a ``kill -9`` at any moment leaves a resumable run.
            The directory is locked while the run writes it (``.lock``, :mod:`mfsde.training`): a
            second writer gets ``RunLocked`` naming the holder's pid and host.
            ``None``: nothing is written (with ``resume``: the checkpoint's directory).
        resume: a ``checkpoint.pt`` (or its run directory) to continue from; the result is
            bit-identical to an uninterrupted run. Only ``train.iterations``,
            ``train.checkpoint_*``, ``train.time_budget``, ``train.eval_every`` and
            ``train.log_every`` may differ from the checkpoint's
            config. Under DDP only rank 0 reads the checkpoint and sends it to the others (the
            ``mfsde fit --resume`` command also reads the run's config and data on every rank,
            so there every machine needs the run directory).
        progress: show a tqdm bar with running losses.
        callback: ``callback(record, model)`` after every iteration (on every rank); returning
            ``True`` (on any rank) stops training (a final checkpoint is still written).
        device: torch device for model and data (default: the CPU, or this rank's GPU under an
            NCCL process group).

    Returns:
        :class:`FitResult`.
    """
    trainer = Trainer(config, snapshots, task, device=device)
    if resume is not None and out_dir is None:
        resume_path = Path(resume)
        out_dir = resume_path if resume_path.is_dir() else resume_path.parent
    out_dir = Path(out_dir) if out_dir is not None else None
    # one writer per run directory, from before the checkpoint is read to the last write (rank 0 writes)
    lock = _on_main(lambda: RunLock(out_dir).acquire()) if out_dir is not None else None
    try:
        return _train(trainer, snapshots, out_dir, resume, progress, callback)
    finally:
        if lock is not None:
            lock.release()


def _train(trainer: Trainer, snapshots, out_dir: Path | None, resume, progress: bool, callback) -> FitResult:
    """:func:`fit` from a built trainer, with the run directory locked."""
    from tqdm.auto import tqdm

    config = trainer.config
    tc, main = config.train, distributed.is_main()
    if resume is not None:
        trainer.load_state_dict(_load_checkpoint_on_main(resume), source=str(resume))
        if trainer.iteration > tc.iterations:
            raise ValueError(
                f"cannot resume {str(resume)!r}: it has done {trainer.iteration} iterations, more than "
                f"train.iterations = {tc.iterations}; ask for more iterations (--iterations N)"
            )
    start = trainer.iteration
    hist_file = _on_main(_open_run_dir, out_dir, trainer, snapshots, resume, start) if out_dir is not None else None

    def log(rec: dict) -> None:
        hist_file.write(json.dumps(rec) + "\n")
        hist_file.flush()

    last_save = [time.perf_counter()]

    def save() -> None:
        if out_dir is not None:
            state = trainer.state_dict()  # collective under DDP: every rank takes part
            _on_main(lambda: runs.RunDir(out_dir).save_checkpoint(**state))
            last_save[0] = time.perf_counter()

    def checkpoint_due(it: int) -> bool:
        by_count = bool(tc.checkpoint_every) and it % tc.checkpoint_every == 0
        if tc.checkpoint_seconds is None:
            return by_count
        by_time = time.perf_counter() - last_save[0] >= tc.checkpoint_seconds
        if trainer.world_size > 1:  # the same decision on every rank (saving is collective)
            by_time = distributed.any_rank(by_time)
        return by_count or by_time

    t_start = time.perf_counter()
    bar = tqdm(
        total=tc.iterations,
        initial=min(start, tc.iterations),
        disable=not (progress and main),
        desc=f"fit {config.preset or 'model'} seed {tc.seed}",
        dynamic_ncols=True,
    )
    stopped = "iterations"
    # SIGINT/SIGTERM: finish the iteration, checkpoint, then raise TrainingInterrupted
    signals = DeferredSignals(enabled=out_dir is not None and trainer.world_size == 1)
    try:
        with signals:
            if start == 0:
                save()  # from the first moment the run directory can be resumed
            while trainer.iteration < tc.iterations:
                if tc.time_budget is not None and trainer.train_seconds >= tc.time_budget:
                    stopped = "time_budget"  # e.g. resumed after the budget was spent
                    break
                rec = trainer.step()
                it = trainer.iteration
                stop = bool(callback(rec, trainer.model)) if callback is not None else False
                over = tc.time_budget is not None and trainer.train_seconds >= tc.time_budget
                if trainer.world_size > 1:
                    stop, over = distributed.any_rank(stop), distributed.any_rank(over)
                if tc.eval_every and (it % tc.eval_every == 0 or it == tc.iterations or stop or over):
                    _on_main(lambda rec=rec: rec.update(trainer.fit_report()))
                if out_dir is not None:
                    _on_main(log, rec)
                bar.update(1)
                if progress and main and (it % max(1, tc.log_every) == 0 or it == tc.iterations):
                    bar.set_postfix({k: f"{rec[k]:.4g}" for k in ("loss", "fit", "energy", "fm") if k in rec})
                if stop or over:
                    stopped = "callback" if stop else "time_budget"
                    break
                if signals.signum is not None:
                    break
                if it < tc.iterations and checkpoint_due(it):
                    save()
            save()
        signals.raise_if_caught(
            f"checkpoint saved at iteration {trainer.iteration}"
            + (f" in {out_dir}; continue with `mfsde fit --resume {out_dir}`" if out_dir else "")
        )
    finally:
        bar.close()
        if hist_file is not None:
            hist_file.close()
    trainer.use_averaged()  # train.ema: the averaged weights are the result
    trainer.model.eval()
    return FitResult(
        model=trainer.model,
        history=trainer.history,
        config=config,
        out_dir=out_dir,
        elapsed=time.perf_counter() - t_start,
        iteration=trainer.iteration,
        train_seconds=trainer.train_seconds,
        stopped=stopped,
        start_iteration=start,
        train_cpu_seconds=trainer.train_cpu_seconds,
        train_wall_seconds=trainer.train_wall_seconds,
    )


def _on_main(fn: Callable, *args):
    """``fn(*args)`` on rank 0 only (its result there, ``None`` elsewhere). Under DDP rank 0's
    failure is shared, so every rank raises together instead of the others waiting in the next
    collective until the process-group timeout."""
    if not distributed.is_distributed():
        return fn(*args)
    result, failure = None, None
    if distributed.is_main():
        try:
            result = fn(*args)
        except Exception as err:
            failure = err
    message = distributed.broadcast_object(None if failure is None else f"{type(failure).__name__}: {failure}")
    if failure is not None:
        raise failure
    if message is not None:
        raise RuntimeError(f"rank 0 failed while writing the run directory: {message}")
    return result


def _load_checkpoint_on_main(resume: str | Path) -> dict:
    """The checkpoint at ``resume``; under DDP read by rank 0 and broadcast (so only rank 0 needs
    the file), with rank 0's error raised on every rank."""
    if not distributed.is_distributed():
        return runs.load_checkpoint(resume)
    payload = None
    if distributed.is_main():
        try:
            payload = (runs.load_checkpoint(resume), None)
        except Exception as err:
            payload = (None, err)
    ckpt, err = distributed.broadcast_object(payload)
    if err is not None:
        raise err
    return ckpt


def _cell_counts(snapshots):
    """Cells per time point (``{population: [...]}`` for populations)."""
    if hasattr(snapshots, "data"):
        return [int(a.shape[0]) for a in snapshots.data]
    return {name: s.counts for name, s in snapshots.items()}


def _open_run_dir(out_dir: Path, trainer: Trainer, snapshots, resume, start: int):
    """Write ``config.json`` and ``meta.json`` (or record the resume in it) and open
    ``history.jsonl`` holding the iterations behind the model; returns the open log."""
    config, task, run = trainer.config, trainer.task, runs.RunDir(out_dir)
    run.write_config(config)
    if resume is not None and run.meta.is_file():
        run.record_resume(
            {
                "from_iteration": start,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "checkpoint": str(resume),
                "world_size": trainer.world_size,
            }
        )
    else:
        run.write_meta(
            config,
            {
                "task": _task_dict(task),
                "data": getattr(snapshots, "name", None),
                "scale": trainer.model.scale.to_dict(),
                "n_cells": _cell_counts(snapshots),
                "device": str(trainer.device),
                "world_size": trainer.world_size,
            },
        )
    # the log holds exactly the iterations behind the model: rewrite what the checkpoint knows
    return run.open_history(trainer.history)
