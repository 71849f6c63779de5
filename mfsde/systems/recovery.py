"""Moved to :mod:`mfsde.evaluation.recovery` (recovery metrics live with evaluation); this name
keeps working. The public functions are also in :mod:`mfsde.systems`."""
from ..evaluation.recovery import (  # noqa: F401 - re-exported
    SystemModel, drift_error, interaction_error, recovery_report, recovery_samples, true_populations,
)

__all__ = ["SystemModel", "true_populations", "drift_error", "interaction_error", "recovery_report",
           "recovery_samples"]
