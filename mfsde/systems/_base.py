"""Common machinery of the ground-truth particle systems: :class:`ParticleSystem`, the
:data:`SYSTEMS` registry and the :class:`NonInteracting` control wrapper.

Conventions shared by every system
----------------------------------
* **Observed coordinates.** Everything public — :meth:`ParticleSystem.sample_initial`,
  :meth:`ParticleSystem.simulate`, ``system.drift`` and the snapshots — lives in the observed
  coordinates of dimension ``system.dim``. A system may integrate in other (state) coordinates
  internally (the Kuramoto model integrates angles and observes ``(cos θ, sin θ)``); the
  hooks :meth:`~ParticleSystem._to_state` / :meth:`~ParticleSystem._from_state` convert.
* **True drift.** ``system.drift`` is a :class:`~mfsde.drifts.MeanFieldDrift`: ``drift(x, t)``,
  ``drift.intra(x)`` (single-particle part) and ``drift.inter(x)`` (interaction with the empirical
  measure of the population ``x``, shape ``(..., N, d)``) can be evaluated at any population.
* **Noise.** ``system.sigma`` is the diagonal diffusion (a number or a ``(d,)`` tensor) of the
  simulated coordinates, passed as ``sigma=`` to :func:`mfsde.sdeint`;
  :meth:`ParticleSystem.diffusion` is the noise of the observed coordinates (general d × m noise
  for the Kuramoto oscillators) and :meth:`ParticleSystem.noise_config` gives a model that noise.
* **Autonomy.** All systems are time-homogeneous; ``t`` is accepted and ignored.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mfsde._checks import check_positive_int
from mfsde.drifts import MeanFieldDrift
from mfsde.interactions._none import NoInteraction
from mfsde.registry import Registry
from mfsde.solvers import Diffusion, Solution, sdeint

SYSTEMS = Registry("particle system")


def get_system(name: str, /, **options) -> ParticleSystem:
    """Build the system registered as ``name`` (see ``SYSTEMS.names()``) with keyword ``options``."""
    return SYSTEMS.build(name, **options)


def as_tensor(value, dtype=torch.float64) -> torch.Tensor:
    return torch.as_tensor(value, dtype=dtype).clone()


def square_matrix(value, dim: int, name: str) -> torch.Tensor:
    """A number (→ value·I), a ``(d,)`` vector (→ diag) or a ``(d, d)`` matrix as float64."""
    m = as_tensor(value)
    if m.dim() == 0:
        m = m * torch.eye(dim, dtype=torch.float64)
    elif m.dim() == 1:
        if m.shape[0] != dim:
            raise ValueError(f"{name} has {m.shape[0]} entries, expected {dim}")
        m = torch.diag(m)
    if m.shape != (dim, dim):
        raise ValueError(
            f"{name} must be a number, a ({dim},) vector or a ({dim}, {dim}) matrix, got shape {tuple(m.shape)}"
        )
    if not torch.isfinite(m).all():
        raise ValueError(f"{name} contains NaN/Inf")
    return m


def diagonal_sigma(sigma, dim: int) -> float | torch.Tensor:
    """A non-negative number or ``(dim,)`` tensor, as accepted by :class:`~mfsde.solvers.Diffusion`."""
    s = as_tensor(sigma, torch.get_default_dtype())
    if s.dim() == 0:
        value = float(s)
        if not (value >= 0 and value < float("inf")):
            raise ValueError(f"sigma must be finite and non-negative, got {value}")
        return value
    if s.shape != (dim,):
        raise ValueError(f"sigma must be a number or a ({dim},) vector (diagonal noise), got shape {tuple(s.shape)}")
    if not torch.isfinite(s).all() or (s < 0).any():
        raise ValueError(f"sigma must be finite and non-negative, got {s.tolist()}")
    return s


def positive(value, name: str, allow_zero: bool = False) -> float:
    v = float(value)
    ok = (v >= 0 if allow_zero else v > 0) and v < float("inf")
    if not ok:
        raise ValueError(
            f"{name} must be a {'non-negative' if allow_zero else 'positive'} finite number, got {value!r}"
        )
    return v


def batch_shape(batch) -> tuple[int, ...]:
    if isinstance(batch, int):
        return (batch,)
    return tuple(int(b) for b in batch)


class ParticleSystem:
    """A ground-truth interacting particle system ``dX_i = f(X_i, ρ^N) dt + σ dW_i``.

    Attributes:
        name: registry name.
        dim: observed dimension d.
        drift: the true drift (:class:`~mfsde.drifts.MeanFieldDrift` with ``.intra`` / ``.inter``)
            acting on observed populations ``(..., N, d)``.
        sigma: diagonal noise of the simulated coordinates (number or ``(d_state,)`` tensor).
        feature_names: names of the d observed coordinates.
        default_times: a sensible observation schedule (used by :func:`~mfsde.systems.snapshots`
            when ``times`` is None).
        t0: time of the initial law (0).
    """

    name: str = "system"
    t0: float = 0.0
    default_times: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 4.0)

    def __init__(self, dim: int, drift: MeanFieldDrift, sigma, feature_names: Sequence[str] | None = None):
        check_positive_int(dim, "dim")
        self.dim = dim
        self.drift = drift
        self.sigma = sigma
        self.feature_names = list(feature_names) if feature_names is not None else [f"x{i + 1}" for i in range(dim)]
        if len(self.feature_names) != dim:
            raise ValueError(f"{len(self.feature_names)} feature names for d = {dim}")

    # -- hooks for systems integrated in other coordinates -------------------------------------
    @property
    def state_drift(self) -> MeanFieldDrift:
        """Drift integrated by :func:`sdeint` (in state coordinates; ``self.drift`` by default)."""
        return self.drift

    def _to_state(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def _from_state(self, s: torch.Tensor) -> torch.Tensor:
        return s

    def _sample_state(self, n: int, generator: torch.Generator | None, batch: tuple[int, ...], dtype) -> torch.Tensor:
        raise NotImplementedError

    # -- public API ------------------------------------------------------------------------------
    def sample_initial(
        self, n: int, generator: torch.Generator | None = None, batch=(), dtype=torch.float32
    ) -> torch.Tensor:
        """``n`` i.i.d. particles from the initial law, shape ``(*batch, n, d)`` (observed coords)."""
        check_positive_int(n, "n")
        return self._from_state(self._sample_state(n, generator, batch_shape(batch), dtype))

    def simulate(
        self,
        x0: torch.Tensor,
        ts,
        *,
        dt: float = 0.01,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        solver: str = "euler_maruyama",
    ) -> Solution:
        """Integrate the particle system from ``x0`` ``(..., N, d)`` (observed coordinates) with
        :func:`mfsde.sdeint`; ``sol.xs`` ``(T, ..., N, d)`` is in observed coordinates."""
        sol = sdeint(
            self.state_drift,
            self._to_state(x0),
            ts,
            sigma=self.sigma,
            dt=dt,
            generator=generator,
            seed=seed,
            solver=solver,
        )
        sol.xs = self._from_state(sol.xs)
        return sol

    def without_interaction(self) -> NonInteracting:
        """The control: same single-particle drift, noise and initial law, no interaction."""
        return NonInteracting(self)

    def diffusion(self) -> Diffusion:
        """The noise in *observed* coordinates, with ``drift`` the exact SDE of the observed
        process (``sdeint(system.drift, x0, ts, sigma=system.diffusion())``); diagonal σ here."""
        return Diffusion(self.sigma)

    def noise_config(self) -> dict:
        """Config overrides that give a model this system's own noise, in data units (so that
        the model family contains the truth): ``cfg.override(**system.noise_config())``."""
        sigma = torch.as_tensor(self.sigma, dtype=torch.float64).expand(self.dim)
        return {"model.noise": "diagonal", "model.sigma": [float(v) for v in sigma], "model.sigma_units": "data"}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


class NonInteracting(ParticleSystem):
    """Non-interacting control of ``base``: ``drift.intra`` is ``base.drift.intra`` and
    ``drift.inter`` is :class:`~mfsde.interactions.NoInteraction` (exact zeros); noise, initial
    law, coordinates and observation schedule are the base system's."""

    def __init__(self, base: ParticleSystem):
        if isinstance(base, NonInteracting):
            base = base.base
        self.base = base
        drift = MeanFieldDrift(base.drift.intra, NoInteraction(base.dim))
        super().__init__(base.dim, drift, base.sigma, base.feature_names)
        self.name = f"{base.name}_control"
        self.default_times = base.default_times
        self.t0 = base.t0
        sd = base.state_drift
        self._state_drift = drift if sd is base.drift else MeanFieldDrift(sd.intra, NoInteraction(sd.dim))

    @property
    def state_drift(self) -> MeanFieldDrift:
        return self._state_drift

    def _to_state(self, x):
        return self.base._to_state(x)

    def _from_state(self, s):
        return self.base._from_state(s)

    def _sample_state(self, n, generator, batch, dtype):
        return self.base._sample_state(n, generator, batch, dtype)

    def diffusion(self) -> Diffusion:
        return self.base.diffusion()

    def noise_config(self) -> dict:
        return self.base.noise_config()
