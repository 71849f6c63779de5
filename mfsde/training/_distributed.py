"""Data-parallel training helpers around ``torch.distributed`` (see docs/distributed.md).

Under ``torchrun`` every process gets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``
and ``MASTER_PORT`` in its environment; :func:`init_from_env` turns them into a process group
(NCCL when CUDA is available, else gloo). Everything else here works with or without a
process group: without one there is a single rank 0 of a world of size 1, collectives are
no-ops and :func:`mfsde.fit` trains exactly as it always did.

>>> from mfsde import distributed
>>> distributed.init_from_env()          # False outside torchrun (or with WORLD_SIZE=1)
>>> result = fit(config, snapshots, task)  # each rank simulates its own replicas
>>> distributed.cleanup()
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import torch
import torch.distributed as dist

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def _env_int(name: str, default: int | None = None) -> int | None:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {raw!r}") from None


def launched_by_torchrun() -> bool:
    """Whether the environment describes a job of more than one process (``WORLD_SIZE`` > 1)."""
    return (_env_int("WORLD_SIZE", 1) or 1) > 1


BACKEND_ENV = "MFSDE_DIST_BACKEND"


def default_backend() -> str:
    """``$MFSDE_DIST_BACKEND`` when set (e.g. ``gloo`` to train on CPUs on a GPU machine), else
    ``"nccl"`` when CUDA is available, else ``"gloo"``."""
    chosen = os.environ.get(BACKEND_ENV, "").strip()
    if chosen:
        return chosen
    return "nccl" if torch.cuda.is_available() else "gloo"


def init_from_env(backend: str | None = None, timeout: float | None = None) -> bool:
    """Initialise the default process group from torchrun's environment variables.

    Args:
        backend: ``"gloo"``, ``"nccl"`` … (default :func:`default_backend`: ``$MFSDE_DIST_BACKEND``,
            else NCCL with CUDA, else gloo). With NCCL the CUDA device of this process is set
            to ``cuda:LOCAL_RANK`` first; that GPU must exist.
        timeout: seconds a collective may wait for the other ranks (default: torch's).

    Returns:
        ``True`` when a process group is initialised (now or before), ``False`` when the
        environment describes a single process (no ``WORLD_SIZE``, or ``WORLD_SIZE=1``): then
        nothing is done and training runs in this one process.
    """
    if is_distributed():
        return True
    if not launched_by_torchrun():
        return False
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed support")
    missing = [v for v in ENV_VARS if v not in os.environ and v != "LOCAL_RANK"]
    if missing:
        raise RuntimeError(
            f"WORLD_SIZE > 1 but {missing} are not set; launch with torchrun (it sets {', '.join(ENV_VARS)})"
        )
    backend = backend or default_backend()
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise RuntimeError("backend 'nccl' needs CUDA; use backend='gloo' on CPUs")
        if local_rank() >= torch.cuda.device_count():
            raise RuntimeError(
                f"backend 'nccl': LOCAL_RANK={local_rank()} but only {torch.cuda.device_count()} GPU(s) are "
                f"visible; start at most one process per GPU (--nproc_per_node) or set "
                f"{BACKEND_ENV}=gloo to train on CPUs"
            )
        torch.cuda.set_device(local_rank())
    kwargs: dict[str, Any] = {"backend": backend, "init_method": "env://"}
    if timeout is not None:
        kwargs["timeout"] = datetime.timedelta(seconds=float(timeout))
    dist.init_process_group(**kwargs)
    return True


def is_distributed() -> bool:
    """Whether a default process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes in the job (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    """This process's index on its machine (torchrun's ``LOCAL_RANK``; 0 when unset)."""
    return _env_int("LOCAL_RANK", 0) or 0


def is_main() -> bool:
    """Whether this process is rank 0 (the one that writes files and shows progress)."""
    return rank() == 0


def default_device() -> torch.device:
    """``cuda:<current device>`` under an NCCL process group, else the CPU."""
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    if is_distributed():
        dist.barrier()


def cleanup() -> None:
    """Destroy the default process group if there is one."""
    if is_distributed():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of ``tensor`` over all ranks (a new tensor; ``tensor`` itself without
    a process group)."""
    if not is_distributed():
        return tensor
    out = tensor.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def all_gather_objects(obj: Any) -> list:
    """``[obj of rank 0, obj of rank 1, …]`` on every rank (``[obj]`` without a process group)."""
    if not is_distributed():
        return [obj]
    out: list = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (``obj`` itself without a process group)."""
    if not is_distributed():
        return obj
    box = [obj if rank() == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def any_rank(flag: bool) -> bool:
    """Whether ``flag`` is true on at least one rank (so that every rank takes the same branch)."""
    if not is_distributed():
        return bool(flag)
    device = default_device()
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def local_replicas(replicas: int, rank: int = 0, world_size: int = 1) -> list[int]:
    """The replica indices rank ``rank`` simulates: ``rank, rank + W, rank + 2W, …``.

    Raises:
        ValueError: ``replicas`` is not a positive multiple of ``world_size``.
    """
    if not isinstance(replicas, int) or replicas < 1:
        raise ValueError(f"train.replicas must be a positive int, got {replicas!r}")
    if replicas % world_size:
        raise ValueError(
            f"train.replicas = {replicas} is not divisible by the world size {world_size}: every "
            f"rank simulates the same number of replicas; set train.replicas to a multiple of "
            f"{world_size} (e.g. --replicas {world_size * max(1, replicas // world_size)})"
        )
    return list(range(rank, replicas, world_size))
