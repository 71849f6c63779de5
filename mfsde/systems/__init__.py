"""Ground-truth interacting particle systems (McKean–Vlasov) that produce snapshot datasets.

Every system is simulated with mfsde's own :func:`~mfsde.solvers.sdeint` from a known drift
(``system.drift``: a :class:`~mfsde.drifts.MeanFieldDrift` whose ``.intra`` / ``.inter`` parts
can be evaluated at any population), so learned drifts and interactions can be compared with
the truth.

>>> from mfsde.systems import get_system, snapshots, SYSTEMS
>>> SYSTEMS.names()
['cucker_smale', 'kuramoto', 'morse', 'morse_control', 'opinion', 'ou', 'ou_control', 'two_species', 'two_species_control']
>>> ds = snapshots(get_system("kuramoto", K=2.0), times=[0, 1, 2, 4], n_per_time=500, seed=0)

After fitting, :mod:`mfsde.evaluation.recovery` scores a model against the truth: held-out W1/W2,
the relative drift error and a gauge-fixed interaction error (:func:`recovery_report`).
"""
from .base import SYSTEMS, NonInteracting, ParticleSystem, get_system
from .flocking import CuckerSmale, VelocityAlignment, velocity_variance
from .kuramoto import NoisyKuramoto, order_parameter, stationary_order_parameter
from .morse import HarmonicConfinement, MorseAggregation, MorseInteraction, morse_control
from .opinion import BoundedConfidence, OpinionDynamics, bump
from .ou import MeanFieldOU, MeanReversion, ou_control
from .two_species import NonReciprocalPursuit, TwoSpecies, two_species_control
from .dataset import demo_dataset, simulate_snapshots, snapshots
from .populations import POPULATION_FAMILIES, population_snapshots, population_systems, species_labels

# the scores against a system live in mfsde.evaluation, which imports this package's base classes:
# re-exported on first use, so that either package can be imported first
_FROM = {"cross_population_error": "..evaluation.cross_population", "pair_jacobian_error": "..evaluation.pair_jacobian",
         "plot_recovery": "..plotting.recovery", **{n: "..evaluation.recovery" for n in (
             "SystemModel", "drift_error", "interaction_error", "recovery_report", "recovery_samples",
             "true_populations")}}


def __getattr__(name: str):
    if name not in _FROM:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = globals()[name] = getattr(importlib.import_module(_FROM[name], __name__), name)
    return value


def __dir__():
    return sorted(set(globals()) | set(_FROM))


__all__ = [
    "SYSTEMS", "get_system", "ParticleSystem", "NonInteracting", "snapshots", "simulate_snapshots",
    "demo_dataset", "MeanFieldOU", "MeanReversion", "ou_control", "NoisyKuramoto", "order_parameter",
    "stationary_order_parameter", "CuckerSmale", "VelocityAlignment", "velocity_variance",
    "OpinionDynamics", "BoundedConfidence", "bump", "MorseAggregation", "MorseInteraction",
    "HarmonicConfinement", "morse_control", "SystemModel", "true_populations", "drift_error",
    "interaction_error", "recovery_samples", "recovery_report", "plot_recovery", "TwoSpecies",
    "NonReciprocalPursuit", "two_species_control", "POPULATION_FAMILIES", "population_systems",
    "population_snapshots", "species_labels", "cross_population_error",
    "pair_jacobian_error",
]
