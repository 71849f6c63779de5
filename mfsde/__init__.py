"""mfsde: modular components for mean-field (McKean–Vlasov) neural SDEs.

>>> import mfsde
>>> cfg = mfsde.preset("scimf", dim=50)
>>> model = mfsde.build_model(cfg)
>>> sol = model(x0, ts=[0., 1., 2.], seed=0)       # x0: (N, d) or (..., N, d)
"""
from .config import Component, Config, EvalConfig, LossConfig, ModelConfig, TrainConfig, preset, PRESETS
from .drifts import INTRA_DRIFTS, MeanFieldDrift, build_intra
from .interactions import INTERACTIONS, Interaction, build_interaction
from .losses import LOSSES, build_loss, w1, w2
from .model import MeanFieldSDE, build_model
from .registry import Registry
from .solvers import SOLVERS, Diffusion, Solution, sdeint, torchsde_sdeint

__version__ = "0.1.0"

__all__ = [
    "Component", "Config", "EvalConfig", "LossConfig", "ModelConfig", "TrainConfig", "preset", "PRESETS",
    "INTRA_DRIFTS", "MeanFieldDrift", "build_intra", "INTERACTIONS", "Interaction", "build_interaction",
    "LOSSES", "build_loss", "w1", "w2", "MeanFieldSDE", "build_model", "Registry", "SOLVERS", "Diffusion",
    "Solution", "sdeint", "torchsde_sdeint", "__version__",
]
