"""Particle solvers: :func:`sdeint` (mfsde's own, registry ``SOLVERS``) and a torchsde adapter."""
from .diffusion import Diffusion, FrozenDiffusion, as_diffusion
from .noise_models import NOISES, AffineNoise, build_noise
from .grid import step_counts
from .sdeint import Solution, random_batch_drift, sdeint
from .steppers import SOLVERS, EulerMaruyama, StochasticHeun
from .torchsde_adapter import TorchsdeSDE, brownian_interval, torchsde_sdeint

__all__ = [
    "sdeint", "Solution", "random_batch_drift", "SOLVERS", "EulerMaruyama", "StochasticHeun", "Diffusion",
    "as_diffusion", "FrozenDiffusion", "NOISES", "AffineNoise", "build_noise", "step_counts", "TorchsdeSDE", "torchsde_sdeint", "brownian_interval",
]
