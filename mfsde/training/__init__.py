"""Training: :func:`mfsde.fit` and what it is built of — the trainer, the random streams, the
run directory (config, history, checkpoints, one writer at a time), parameter averaging,
flow matching and the distributed (torchrun) helpers.

```pycon
>>> result = mfsde.fit(mfsde.preset("ito", dim=2), snaps, "loo:1", out_dir="runs/ito")
>>> mfsde.training.read_history("runs/ito")[-1]["loss"]
>>> model, config = mfsde.load_run("runs/ito")
```
"""

from mfsde.training import _distributed as distributed
from mfsde.training._averaging import ParameterAverage
from mfsde.training._fit import (
    DeferredSignals,
    FitResult,
    TrainingInterrupted,
    check_inputs,
    draw_initial,
    fit,
    resolve_task,
)
from mfsde.training._flow_matching import (
    COUPLINGS,
    TRAINING_METHODS,
    FlowMatchingBatch,
    GlobalPlan,
    bridge,
    couple,
    flow_matching_batch,
    flow_matching_loss,
)
from mfsde.training._rng import RandomStreams, replica_seed, seed_everything
from mfsde.training._runlock import RunLock, RunLocked
from mfsde.training._runs import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    DATA_SPEC_FILE,
    HISTORY_FILE,
    META_FILE,
    CheckpointError,
    RunDir,
    default_threads,
    environment,
    load_checkpoint,
    load_run,
    package_versions,
    read_history,
    rng_states,
    save_checkpoint,
    set_rng_states,
    write_config,
    write_meta,
)
from mfsde.training._trainer import RESUMABLE_CHANGES, FitLoss, Trainer, default_simulate

__all__ = [
    # fitting (``fit`` and ``load_run`` are exported as mfsde.fit and mfsde.load_run)
    "FitResult",
    "TrainingInterrupted",
    "DeferredSignals",
    "check_inputs",
    "resolve_task",
    "draw_initial",
    "Trainer",
    "FitLoss",
    "default_simulate",
    "RESUMABLE_CHANGES",
    # random streams
    "RandomStreams",
    "replica_seed",
    "seed_everything",
    # the run directory
    "RunDir",
    "RunLock",
    "RunLocked",
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "read_history",
    "write_config",
    "write_meta",
    "rng_states",
    "set_rng_states",
    "package_versions",
    "environment",
    "default_threads",
    "CONFIG_FILE",
    "META_FILE",
    "HISTORY_FILE",
    "CHECKPOINT_FILE",
    "DATA_SPEC_FILE",
    # parameter averaging, flow matching, torchrun
    "ParameterAverage",
    "TRAINING_METHODS",
    "COUPLINGS",
    "couple",
    "GlobalPlan",
    "bridge",
    "FlowMatchingBatch",
    "flow_matching_batch",
    "flow_matching_loss",
    "distributed",
]
