"""Ground-truth interacting particle systems (McKean–Vlasov) that produce snapshot datasets.

Every system is simulated with mfsde's own :func:`mfsde.sdeint` from a known drift
(``system.drift``: a :class:`~mfsde.drifts.MeanFieldDrift` whose ``.intra`` / ``.inter`` parts
can be evaluated at any population), so learned drifts and interactions can be compared with
the truth.

```pycon
>>> from mfsde.systems import get_system, snapshots, SYSTEMS
>>> SYSTEMS.names()
['cucker_smale', 'kuramoto', 'morse', 'morse_control', 'opinion', 'ou', 'ou_control', 'two_species',
 'two_species_control']
>>> ds = snapshots(get_system("kuramoto", K=2.0), times=[0, 1, 2, 4], n_per_time=500, seed=0)
```

After fitting, :mod:`mfsde.evaluation` scores a model against the truth: held-out W1/W2,
the relative drift error and a gauge-fixed interaction error (:func:`recovery_report`).
"""

from mfsde.systems._base import SYSTEMS, NonInteracting, ParticleSystem, get_system
from mfsde.systems._branching import Branching, branching_morse, branching_ou, branching_snapshots
from mfsde.systems._dataset import demo_dataset, simulate_snapshots, snapshots
from mfsde.systems._flocking import CuckerSmale, VelocityAlignment, velocity_variance
from mfsde.systems._kuramoto import NoisyKuramoto, order_parameter, stationary_order_parameter
from mfsde.systems._morse import HarmonicConfinement, MorseAggregation, MorseInteraction, morse_control
from mfsde.systems._opinion import BoundedConfidence, OpinionDynamics, bump
from mfsde.systems._ou import MeanFieldOU, MeanReversion, ou_control
from mfsde.systems._populations import POPULATION_FAMILIES, population_snapshots, population_systems, species_labels
from mfsde.systems._two_species import NonReciprocalPursuit, TwoSpecies, two_species_control

__all__ = [
    "Branching",
    "branching_ou",
    "branching_morse",
    "branching_snapshots",
    "SYSTEMS",
    "get_system",
    "ParticleSystem",
    "NonInteracting",
    "snapshots",
    "simulate_snapshots",
    "demo_dataset",
    "MeanFieldOU",
    "MeanReversion",
    "ou_control",
    "NoisyKuramoto",
    "order_parameter",
    "stationary_order_parameter",
    "CuckerSmale",
    "VelocityAlignment",
    "velocity_variance",
    "OpinionDynamics",
    "BoundedConfidence",
    "bump",
    "MorseAggregation",
    "MorseInteraction",
    "HarmonicConfinement",
    "morse_control",
    "TwoSpecies",
    "NonReciprocalPursuit",
    "two_species_control",
    "POPULATION_FAMILIES",
    "population_systems",
    "population_snapshots",
    "species_labels",
]
