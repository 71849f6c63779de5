"""mfsde: modular components for mean-field (McKean–Vlasov) neural SDEs.

>>> import mfsde
>>> snaps = mfsde.data.load("../shared/data/emt/emt.csv")              # Snapshots
>>> result = mfsde.fit(mfsde.preset("scimf", dim=snaps.dim), snaps, "loo:1", out_dir="runs/emt")
>>> mfsde.evaluate(result.model, snaps, "loo:1")["w1"]
>>> model, config = mfsde.load("runs/emt")                             # a run directory
>>> sol = model(x0, ts=[0., 1., 2.], seed=0)       # x0: (N, d) or (..., N, d), model units
"""
from .config import Component, Config, EvalConfig, LossConfig, ModelConfig, TrainConfig, preset, PRESETS
from .drifts import INTRA_DRIFTS, MeanFieldDrift, build_intra
from .interactions import INTERACTIONS, Interaction, build_interaction
from .losses import LOSSES, build_loss, w1, w2
from .model import MeanFieldSDE, build_model
from .registry import Registry
from .solvers import NOISES, SOLVERS, Diffusion, Solution, sdeint, torchsde_sdeint
from . import data, datasets
from .data import Populations, PopulationTask, Snapshots, Task
from .comparison import compare
from .evaluation import evaluate
from .runs import load_run as load
from .training import fit
from . import pl, pp, tl  # scanpy-style AnnData API (anndata needed only when called)

try:  # one source of truth: the installed package's metadata (pyproject.toml)
    from importlib.metadata import PackageNotFoundError, version as _version

    __version__ = _version("mfsde")
except PackageNotFoundError:  # pragma: no cover - imported from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "Component", "Config", "EvalConfig", "LossConfig", "ModelConfig", "TrainConfig", "preset", "PRESETS",
    "INTRA_DRIFTS", "MeanFieldDrift", "build_intra", "INTERACTIONS", "Interaction", "build_interaction",
    "LOSSES", "build_loss", "w1", "w2", "MeanFieldSDE", "build_model", "Registry", "SOLVERS", "NOISES", "Diffusion",
    "Solution", "sdeint", "torchsde_sdeint", "__version__", "data", "Snapshots", "Populations", "PopulationTask",
    "Task", "fit", "evaluate", "compare", "load", "pp", "tl", "pl",
]
