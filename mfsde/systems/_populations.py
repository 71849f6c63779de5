"""Data sets of many populations of a ground-truth system, differing only in their initial state.

The regime where a mean-field model must beat a plain Itô SDE: the same dynamics, started from
different initial populations (different places, spreads, coherence or mixing fractions), so
that how a population moves depends on the population itself. :func:`population_systems` builds
one :class:`~mfsde.systems.ParticleSystem` per population (same drift and noise, its own initial
law), with ``control=True`` the non-interacting control of each; :func:`population_snapshots`
simulates them into :class:`~mfsde.data.Populations`.

=================  ===========================================================  ===========
family             what varies between populations                              dim
=================  ===========================================================  ===========
``ou``             initial mean m0 on a circle of radius 2 (mean-field OU)       2
``morse``          initial centre on a circle of radius 3, radius 1.5–3.5        2
``kuramoto``       initial coherence (θ spread 0.3–2.4) and mean phase           2
``two_species``    share of species A, 0.2–0.8 (non-reciprocal pursuit)          3
``two_species_     share of A as above, and where the clusters sit: the A–B      3
layout``           axis turns round the circle, their distance is 2, 2.75 or 3.5;
                   the B's circle the origin (``b_rotation`` 0.5) and A chases
=================  ===========================================================  ===========

Why ``two_species_layout``: in ``two_species`` every population starts B's cluster in the same
place with the same spread, and the B's hardly move, so B's law differs between populations and
times only by its mass. A drift f(x_i) = share_B · h(x_i) then fits every population with any h
that gives the right total pull, however it depends on *where* the B's are: the per-pair shape
of the interaction is not identified by those data, only its aggregate. Placing the clusters
differently in every population, and letting the B's move, is what makes the dependence on the
B's positions observable (and gives the change of the drift between two times of one
population, which the interaction error measures, something to measure).

>>> systems = population_systems("two_species", n_populations=6)
>>> pops = population_snapshots(systems, n_per_time=300, seed=0)
>>> task = PopulationTask("all", heldout_populations=pops.names[1::3])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from mfsde.registry import Registry
from mfsde.systems._base import ParticleSystem
from mfsde.systems._dataset import simulate_snapshots
from mfsde.systems._kuramoto import NoisyKuramoto
from mfsde.systems._morse import MorseAggregation
from mfsde.systems._ou import MeanFieldOU
from mfsde.systems._two_species import TwoSpecies

#: population family name → ``(p, i, options) → (population name, system)`` for population i of p;
#: add your own with ``@POPULATION_FAMILIES.register("mine")``
POPULATION_FAMILIES = Registry("population family")


@POPULATION_FAMILIES.register("ou")
def _ou(p: int, i: int, options: dict) -> tuple[str, ParticleSystem]:
    u = i / p  # position of population i in [0, 1)
    ang = 2 * math.pi * u
    m0 = [2.0 * math.cos(ang), 2.0 * math.sin(ang)]
    return f"m0_angle={360 * u:.0f}", MeanFieldOU(m0=m0, **options)


@POPULATION_FAMILIES.register("morse")
def _morse(p: int, i: int, options: dict) -> tuple[str, ParticleSystem]:
    u, v = i / p, i / max(1, p - 1)
    ang = 2 * math.pi * u
    c = (3.0 * math.cos(ang), 3.0 * math.sin(ang))
    r = 1.5 + 2.0 * v
    return f"center_angle={360 * u:.0f}_r={r:.2g}", MorseAggregation(init_center=c, init_radius=r, **options)


@POPULATION_FAMILIES.register("kuramoto")
def _kuramoto(p: int, i: int, options: dict) -> tuple[str, ParticleSystem]:
    u, v = i / p, i / max(1, p - 1)
    std = 0.3 + 2.1 * v
    return f"theta_std={std:.2g}", NoisyKuramoto(theta_mean=2 * math.pi * u, theta_std=std, **options)


@POPULATION_FAMILIES.register("two_species")
def _two_species(p: int, i: int, options: dict) -> tuple[str, ParticleSystem]:
    f = 0.2 + 0.6 * i / max(1, p - 1)
    return f"fraction_A={f:.2f}", TwoSpecies(fraction=f, **options)


@POPULATION_FAMILIES.register("two_species_layout")
def _two_species_layout(p: int, i: int, options: dict) -> tuple[str, ParticleSystem]:
    u, v = i / p, i / max(1, p - 1)
    ang = 2 * math.pi * u
    f, d = 0.2 + 0.6 * v, (2.0, 2.75, 3.5)[i % 3]
    axis = (0.5 * d * math.cos(ang), 0.5 * d * math.sin(ang))  # A at −axis, B at +axis
    placed = sorted({"center_a", "center_b", "fraction"} & set(options))
    if placed:
        raise ValueError(f"two_species_layout sets {', '.join(placed)} itself per population; do not pass them")
    options.setdefault("b_rotation", 0.5)
    return (
        f"fraction_A={f:.2f}_angle={360 * u:.0f}_distance={d:g}",
        TwoSpecies(fraction=f, center_a=(-axis[0], -axis[1]), center_b=axis, **options),
    )


def population_systems(
    family: str, n_populations: int = 6, *, control: bool = False, **options
) -> dict[str, ParticleSystem]:
    """``{population name: system}``: ``n_populations`` systems of ``family`` (:data:`POPULATION_FAMILIES`) with
    the same dynamics (``options`` go to every one, e.g. ``K=2.0``) and different initial laws;
    ``control=True`` gives each one's non-interacting control (same initial laws and noise)."""
    if isinstance(n_populations, bool) or not isinstance(n_populations, int) or n_populations < 2:
        raise ValueError(f"n_populations must be an int >= 2, got {n_populations!r}")
    make = POPULATION_FAMILIES.get(family)  # KeyError listing the families
    out = {}
    for i in range(n_populations):
        name, system = make(n_populations, i, dict(options))
        out[name] = system.without_interaction() if control else system
    return out


def species_labels(x: np.ndarray) -> np.ndarray:
    """``"A"`` / ``"B"`` from the sign of the last coordinate (the two-species systems)."""
    return np.where(np.asarray(x)[:, -1] > 0, "A", "B")


def population_snapshots(
    systems: Mapping[str, ParticleSystem],
    times: Sequence[float] | None = None,
    n_per_time: int = 300,
    seed: int = 0,
    dt: float = 0.01,
    *,
    name: str = "",
    labels=None,
):
    """Simulate every system of ``systems`` (``{name: system}``) into :class:`~mfsde.data.Populations`:
    per population and time ``n_per_time`` fresh particles from its own initial law (as
    :func:`~mfsde.systems.snapshots`), all deterministic under ``seed`` (population i uses
    ``seed + 1000 i``). ``times`` default: the first system's ``default_times``. ``labels``: a
    function ``(n, d) array → (n,) labels`` (two-species systems get :func:`species_labels`)."""
    from mfsde.data import Populations, Snapshots

    if not systems:
        raise ValueError("systems: need at least one population")
    first = next(iter(systems.values()))
    times = first.default_times if times is None else times
    base = getattr(first, "base", first)
    if labels is None and isinstance(base, TwoSpecies):
        labels = species_labels
    out = []
    for i, (pop, system) in enumerate(systems.items()):
        gen = torch.Generator().manual_seed(int(seed) + 1000 * i)
        with torch.no_grad():
            data = [
                x.cpu().numpy().astype(np.float32) for x in simulate_snapshots(system, times, n_per_time, gen, dt=dt)
            ]
        labs = None if labels is None else [labels(a) for a in data]
        out.append((pop, Snapshots(np.asarray(times, np.float64), data, labs, list(system.feature_names), name=pop)))
    return Populations(out, name=name or (f"{base.name}_populations" + ("_control" if base is not first else "")))
