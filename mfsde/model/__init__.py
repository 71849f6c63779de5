"""The model: :class:`mfsde.MeanFieldSDE` (dX = f_θ(X, ρ_t) dt + σ dW, built from a config by
:func:`build_model`) and the data scale that maps the data's units to the model's.
"""

from mfsde.model._scaling import DataScale, DataUnitsDrift, training_spread
from mfsde.model._sde import MeanFieldSDE, build_model, sigma_to_model_units

__all__ = ["build_model", "DataScale", "DataUnitsDrift", "sigma_to_model_units", "training_spread"]
