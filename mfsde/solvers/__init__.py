"""Particle solvers: :func:`sdeint` (mfsde's own, registry ``SOLVERS``) and a torchsde adapter."""

from mfsde.solvers._diffusion import Diffusion, FrozenDiffusion, as_diffusion
from mfsde.solvers._grid import step_counts
from mfsde.solvers._noise_models import NOISES, AffineNoise, build_noise
from mfsde.solvers._sdeint import Solution, random_batch_drift, sdeint
from mfsde.solvers._steppers import SOLVERS, EulerMaruyama, StochasticHeun
from mfsde.solvers._torchsde_adapter import TorchsdeSDE, brownian_interval, torchsde_sdeint

__all__ = [
    "Solution",
    "random_batch_drift",
    "SOLVERS",
    "EulerMaruyama",
    "StochasticHeun",
    "Diffusion",
    "as_diffusion",
    "FrozenDiffusion",
    "NOISES",
    "AffineNoise",
    "build_noise",
    "step_counts",
    "TorchsdeSDE",
    "torchsde_sdeint",
    "brownian_interval",
]
