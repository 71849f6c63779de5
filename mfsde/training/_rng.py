"""Random streams of a training run: one seed per (stream, replica), so that results do not
depend on how replicas are spread over processes or in which order they are simulated.

Streams: 1 = cell draws and Brownian increments, 2 = target sub-samples off the CPU, 3 = torch's
global RNG (dropout). Replica 0 uses the streams of a single-replica run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch


def _derived_seed(seed: int, stream: int) -> int:
    """A seed for an independent stream (so the training generator does not replay the
    numbers that initialised the weights)."""
    return int(np.random.SeedSequence([int(seed), stream]).generate_state(1, dtype=np.uint64)[0] >> 1)


def replica_seed(seed: int, stream: int, replica: int) -> int:
    """The seed of random ``stream`` (1: cell draws and noise, 2: target sub-samples off the
    CPU, 3: torch's global RNG, i.e. dropout) of replica ``replica``. Replica 0 uses
    the streams of a single-replica run, so ``train.replicas = 1`` trains as before."""
    if replica == 0:
        return _derived_seed(seed, stream)
    state = np.random.SeedSequence([int(seed), stream, int(replica)]).generate_state(1, dtype=np.uint64)[0]
    return int(state >> 1)


def seed_everything(seed: int) -> None:
    """Seed torch's global RNG (weights, dropout), numpy's and python's."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


@dataclass
class RandomStreams:
    """The random streams of one simulated copy (``train.replicas`` of them, split over the
    ranks; each copy simulates every training data population).

    Attributes:
        index: the replica's global index p (0 ≤ p < ``train.replicas``).
        generator: cell draws and Brownian increments (on the training device).
        target_generator: target sub-sampling (a CPU generator; ``generator`` itself on the CPU).
        torch_rng: this replica's copy of torch's global RNG state (``{"cpu": …, "cuda": …}``),
            swapped in while it is simulated, so dropout masks do not depend on which rank
            simulates it or in which order.
    """

    index: int
    generator: torch.Generator
    target_generator: torch.Generator
    torch_rng: dict
