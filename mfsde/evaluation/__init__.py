"""Evaluation: held-out scores of a model (:func:`mfsde.evaluate`), the baselines every table shows
beside it (copying the previous observed time point, McCann interpolation, the sampling floor;
on request McCann along data-density geodesics and the last gap's displacement carried on),
comparisons of presets (:func:`mfsde.compare`), and recovery metrics against a known system.
"""

from mfsde.evaluation._baselines import (
    BASELINES,
    OPTIONAL_BASELINES,
    baseline_evaluations,
    continuation,
    floor_split,
    mccann,
    mccann_metric,
    neighbours,
    previous,
)
from mfsde.evaluation._comparison import compare, summarise, to_csv, to_markdown
from mfsde.evaluation._cross_population import cross_population_error
from mfsde.evaluation._evaluate import START, evaluate, metric_key, simulate
from mfsde.evaluation._mass import growth_error, total_mass_variation
from mfsde.evaluation._pair_jacobian import pair_jacobian_error, pair_jacobian_rows
from mfsde.evaluation._recovery import (
    SystemModel,
    drift_error,
    interaction_error,
    recovery_report,
    recovery_samples,
    true_populations,
)

__all__ = [
    # ``evaluate`` and ``compare`` are exported as mfsde.evaluate and mfsde.compare
    "simulate",
    "metric_key",
    "START",
    "BASELINES",
    "OPTIONAL_BASELINES",
    "baseline_evaluations",
    "previous",
    "mccann",
    "mccann_metric",
    "continuation",
    "floor_split",
    "neighbours",
    "summarise",
    "to_markdown",
    "to_csv",
    "SystemModel",
    "true_populations",
    "drift_error",
    "interaction_error",
    "recovery_report",
    "recovery_samples",
    "cross_population_error",
    "total_mass_variation",
    "growth_error",
    "pair_jacobian_rows",
    "pair_jacobian_error",
]
