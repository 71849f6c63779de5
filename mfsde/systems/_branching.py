"""Particle systems whose particles also divide and die, at rates that depend on position.

A :class:`Branching` system is a :class:`~mfsde.systems.ParticleSystem` (its drift, noise and
initial law) plus a birth rate b(x) ≥ 0 and a death rate d(x) ≥ 0. Over a step of length h each
particle moves by Euler–Maruyama, then dies with probability d(x) h or divides with probability
b(x) h (the daughter starts where its mother is; the noise of the next step separates them). The
population's law then follows the unbalanced McKean–Vlasov equation

    ∂_t μ = −∇·(μ f(x, μ/|μ|)) + ½ σ² Δμ + g(x) μ,     g(x) = b(x) − d(x),

for the unnormalised measure μ (its mass |μ| is the expected count over the initial count), and
the interaction sees the current particles, whatever their number. g is the growth rate a model
with a mass channel has to recover: :func:`mfsde.evaluation.growth_error` scores an estimate of
it on the populations the system produced.

```pycon
>>> from mfsde.systems import branching_ou, branching_snapshots
>>> system = branching_ou()
>>> data, mass = branching_snapshots(system, times=[0, 0.5, 1, 1.5], n0=400, seed=0)
>>> data.n_cells, mass                      # counts grow; mass = count / initial count
```

References: the branching diffusions behind unbalanced optimal transport and growth in
single-cell dynamics, e.g. Schiebinger et al. (2019) *Cell* 176:928 (Waddington-OT, growth from
proliferation and apoptosis signatures) and Chizat, Peyré, Schmitzer & Vialard (2018) *Found.
Comput. Math.* 18:1 (Wasserstein–Fisher–Rao).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from mfsde._checks import check_positive_int
from mfsde.systems._base import ParticleSystem
from mfsde.systems._morse import MorseAggregation
from mfsde.systems._ou import MeanFieldOU

Rate = Callable[[torch.Tensor], torch.Tensor]


class Branching:
    """``base`` (a ParticleSystem integrated in its observed coordinates) with position-dependent
    birth and death: ``birth(x)``, ``death(x)`` map particles ``(N, d)`` to rates ``(N,)`` ≥ 0 per
    unit time. ``growth_rate(x) = birth(x) − death(x)``."""

    def __init__(self, base: ParticleSystem, birth: Rate, death: Rate, name: str | None = None):
        if not isinstance(base, ParticleSystem):
            raise TypeError(f"base must be an mfsde.systems.ParticleSystem, got {type(base).__name__}")
        if type(base)._to_state is not ParticleSystem._to_state:
            raise ValueError(f"base {base.name!r} is integrated in other coordinates; branching needs observed ones")
        if not (callable(birth) and callable(death)):
            raise TypeError("birth and death must be callables x (N, d) -> rates (N,)")
        self.base, self.birth, self.death = base, birth, death
        self.dim, self.t0, self.sigma = base.dim, base.t0, base.sigma
        self.drift = base.drift
        self.name = name or f"branching_{base.name}"
        self.default_times = base.default_times
        self.feature_names = list(base.feature_names)

    def rates(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Birth and death rates ``(N,)`` at particles ``x`` ``(N, d)``, checked."""
        b, d = self.birth(x), self.death(x)
        for what, r in (("birth", b), ("death", d)):
            if r.shape != x.shape[:-1]:
                raise ValueError(
                    f"{self.name}: the {what} rate has shape {tuple(r.shape)} for particles {tuple(x.shape)}"
                )
            if not torch.isfinite(r).all() or (r < 0).any():
                raise ValueError(f"{self.name}: the {what} rate must be finite and >= 0")
        return b, d

    def growth_rate(self, x: torch.Tensor, t=None) -> torch.Tensor:
        """g(x) = b(x) − d(x) at particles ``x`` ``(N, d)``: ``(N,)``, per unit time."""
        b, d = self.rates(x)
        return b - d

    def simulate(
        self,
        x0: torch.Tensor,
        times: Sequence[float],
        *,
        dt: float = 0.01,
        generator: torch.Generator | None = None,
        max_particles: int = 200_000,
    ) -> list[torch.Tensor]:
        """One realisation from ``x0`` ``(N, d)`` at ``times[0]`` through ``times``: the particles
        alive at each time, ``[(N_k, d)]``. Every step lands on the output times. Refuses a step
        with (b + d) h > 1 (lower ``dt``) and a population that outgrows ``max_particles``."""
        x = x0
        if x.dim() != 2 or x.shape[-1] != self.dim:
            raise ValueError(f"x0 must have shape (N, {self.dim}), got {tuple(x.shape)}")
        ts = [float(t) for t in np.asarray(times, dtype=np.float64).reshape(-1)]
        if any(b <= a for a, b in zip(ts, ts[1:])):
            raise ValueError(f"times must be strictly increasing, got {ts}")
        sigma = torch.as_tensor(self.sigma, dtype=x.dtype)
        out = [x.clone()]
        for a, b in zip(ts, ts[1:]):
            n_steps = max(1, math.ceil((b - a) / dt - 1e-9))
            h = (b - a) / n_steps
            for k in range(n_steps):
                t = a + k * h
                if x.shape[0] > 0:
                    with torch.no_grad():
                        f = self.drift(x, torch.tensor(t, dtype=x.dtype))
                    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
                    x = x + f * h + sigma * math.sqrt(h) * noise
                    birth, death = self.rates(x)
                    if float(((birth + death) * h).max()) > 1:
                        raise ValueError(
                            f"{self.name}: (birth + death) · dt = {float(((birth + death) * h).max()):.3g} > 1; "
                            "lower dt"
                        )
                    u = torch.rand(x.shape[0], generator=generator, dtype=x.dtype)
                    dies = u < death * h
                    divides = (~dies) & (u < (death + birth) * h)
                    x = torch.cat([x[~dies], x[divides]])
                if x.shape[0] > max_particles:
                    raise ValueError(
                        f"{self.name}: {x.shape[0]} particles at t = {t + h:.3g} exceed max_particles = {max_particles}"
                    )
            out.append(x.clone())
        return out

    def __repr__(self) -> str:
        return f"Branching(name={self.name!r}, base={self.base!r})"


def _logistic(z: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(z)


def branching_ou(dim: int = 2, birth: float = 1.2, death: float = 0.4, steepness: float = 2.0, **options) -> Branching:
    """The mean-field OU system (:class:`~mfsde.systems.MeanFieldOU`, ``options`` go to it) whose
    particles divide on the right and die on the left of the line x₁ = 1:

        b(x) = birth · σ(steepness (x₁ − 1)),   d(x) = death · σ(−steepness (x₁ − 1)),

    σ the logistic function; from the default initial law (centred at x₁ = 2) the population grows
    while the OU drift carries it towards the dying side."""
    check_positive_int(dim, "dim")
    base = MeanFieldOU(dim=dim, **options)

    def b(x):
        return birth * _logistic(steepness * (x[..., 0] - 1.0))

    def d(x):
        return death * _logistic(-steepness * (x[..., 0] - 1.0))

    return Branching(base, b, d, name="branching_ou")


def branching_morse(birth: float = 1.5, death: float = 0.4, radius: float = 1.5, **options) -> Branching:
    """The Morse swarm (:class:`~mfsde.systems.MorseAggregation`, 2-D; ``options`` go to it) whose
    particles divide in its crowded core and die at its rim:

        b(x) = birth · exp(−‖x‖² / radius²),   d(x) = death · (1 − exp(−‖x‖² / radius²)),

    so growth is positive inside a disk of about ``radius`` and negative outside."""
    base = MorseAggregation(**options)

    def core(x):
        return torch.exp(-x.pow(2).sum(-1) / radius**2)

    def b(x):
        return birth * core(x)

    def d(x):
        return death * (1.0 - core(x))

    return Branching(base, b, d, name="branching_morse")


def branching_snapshots(
    system: Branching, times: Sequence[float] | None = None, n0: int = 400, seed: int = 0, dt: float = 0.01
):
    """Unpaired snapshots of a branching system, with their masses: ``(Snapshots, masses)``.

    Every time point is its own realisation from a fresh initial draw of ``n0`` particles (cells
    are destroyed by observing them), so the counts at time k are a sample of the branching
    process at that time; ``masses[k]`` = count_k / n0, the observed relative population size
    (``masses[0] = 1``). Deterministic under ``seed``."""
    from mfsde.data import Snapshots

    if not isinstance(system, Branching):
        raise TypeError(f"system must be a Branching system, got {type(system).__name__}")
    check_positive_int(n0, "n0")
    times = list(system.default_times if times is None else times)
    data = []
    for k, t in enumerate(times):
        gen = torch.Generator().manual_seed(int(seed) + 7919 * k)
        x0 = system.base.sample_initial(n0, gen, dtype=torch.float64)
        path = [system.t0, float(t)] if float(t) > system.t0 else [system.t0]
        xs = system.simulate(x0, path, dt=dt, generator=gen)[-1] if len(path) > 1 else x0
        if xs.shape[0] < 1:
            raise ValueError(f"{system.name}: every particle died by t = {t}; raise n0 or lower the death rate")
        data.append(xs.to(torch.float32).numpy())
    masses = [x.shape[0] / n0 for x in data]
    snaps = Snapshots(np.asarray(times, dtype=np.float64), data, None, list(system.feature_names), name=system.name)
    return snaps, masses
