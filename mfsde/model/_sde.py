"""The mean-field neural SDE as one ``nn.Module``."""

from __future__ import annotations

import torch
from torch import nn

from mfsde.config._schema import Config, ModelConfig
from mfsde.drifts import GrowthRate, MeanFieldDrift, build_growth, build_intra
from mfsde.interactions import build_interaction
from mfsde.model._scaling import DataScale
from mfsde.solvers import Diffusion, Solution, sdeint
from mfsde.solvers._noise_models import build_noise, noise_to_model_units


class MeanFieldSDE(nn.Module):
    """dx = f(x, ρ_t) dt + σ dW with f = f_intra + f_inter, simulated as a particle system.

    >>> model = MeanFieldSDE(drift, sigma=0.1, dt=0.1)
    >>> sol = model(x0, ts, seed=0)            # Solution; sol.xs: (T, ..., N, d), model units
    >>> xs = model.sample(cells, times, seed=0)  # data units in and out (via model.scale)

    ``forward``, ``velocity`` and the drift work in *model units*; ``model.scale`` (a
    :class:`~mfsde.model.DataScale`, fitted by training on the training time points, the
    identity otherwise) maps data units in and out: :meth:`sample` and :meth:`data_velocity`.

    With a ``growth`` model (:mod:`mfsde.drifts`, ``model.growth``) the particles carry
    log-weights, d log w = g(x, ρ) dt, that every kernel counts: the solution's ``log_w``
    ``(T, ..., N)`` and :meth:`Solution.mass` give the population's mass relative to ``x0``'s.
    """

    def __init__(
        self,
        drift: MeanFieldDrift,
        sigma=0.1,
        dt: float = 0.1,
        solver: str = "euler_maruyama",
        growth: GrowthRate | None = None,
    ):
        super().__init__()
        self.drift = drift
        self.diffusion = sigma if isinstance(sigma, Diffusion) else Diffusion(sigma)
        self.dt, self.solver = float(dt), solver
        self.dim = drift.dim
        self.scale = DataScale(self.dim)
        if growth is not None and not getattr(drift.inter, "weighted", False):
            raise ValueError(
                f"a growth model needs an interaction kernel that accepts particle weights (log_w); "
                f"{type(drift.inter).__name__} does not"
            )
        self.growth = growth

    def forward(self, x0: torch.Tensor, ts, **kwargs) -> Solution:
        """Simulate from ``x0`` ``(..., N, d)`` through output times ``ts``; kwargs go to
        :func:`mfsde.sdeint` (``generator``, ``seed``, ``energy``, ``random_batch``, ``log_w0`` …).
        With a growth model the solution carries the particles' log-weights."""
        kwargs.setdefault("dt", self.dt)
        if "method" not in kwargs:
            kwargs.setdefault("solver", self.solver)
        if self.growth is not None:
            kwargs.setdefault("growth", self.growth)
        return sdeint(self.drift, x0, ts, sigma=self.diffusion, **kwargs)

    def sample_with_mass(self, x0: torch.Tensor, times, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        """Like :meth:`sample`, and the mass at every time relative to ``x0``'s, ``(T, ...)``
        (ones without a growth model): ``(xs, mass)``. The positions alone are the unweighted
        particles; weigh them by ``softmax(log_w)`` through :meth:`forward` for the weighted law."""
        ts = self.scale.encode_times(times).to(x0.device)
        sol = self(self.scale.encode(x0), ts, **kwargs)
        return self.scale.decode(sol.xs), sol.mass()

    def data_growth_rate(self, x: torch.Tensor, t=None, log_w: torch.Tensor | None = None) -> torch.Tensor:
        """The growth rate g at cells ``x`` ``(..., N, d)`` in data units at data time ``t``, per
        data time unit, ``(..., N)`` (zeros without a growth model)."""
        if self.growth is None:
            return x.new_zeros(x.shape[:-1])
        z = self.scale.encode(x)
        s = None if t is None else self.scale.encode_times(t).to(x.device)
        return self.growth(z, s, log_w) / self.scale.time_unit

    def velocity(self, x: torch.Tensor, t=None) -> torch.Tensor:
        """The drift f(x, ρ) at a population ``(..., N, d)`` (ρ = the population's empirical law),
        in model units (``t`` on the model's time axis)."""
        return self.drift(x, t)

    def sample(self, x0: torch.Tensor, times, **kwargs) -> torch.Tensor:
        """Simulate from cells ``x0`` ``(..., N, d)`` in *data units* observed at ``times[0]``
        through the data times ``times`` (increasing); returns ``(T, ..., N, d)`` in data units.
        kwargs go to :func:`mfsde.sdeint` (``generator``, ``seed`` …)."""
        ts = self.scale.encode_times(times).to(x0.device)
        return self.scale.decode(self(self.scale.encode(x0), ts, **kwargs).xs)

    def data_velocity(self, x: torch.Tensor, t=None, part: str = "total") -> torch.Tensor:
        """The drift at cells ``x`` ``(..., N, d)`` in data units at data time ``t``, in data
        units per data time unit; ``part`` is ``"total"``, ``"intra"`` or ``"inter"``."""
        z = self.scale.encode(x)
        s = None if t is None else self.scale.encode_times(t).to(x.device)
        if part == "total":
            v = self.drift(z, s)
        elif part in ("intra", "inter"):
            v = self.drift.parts(z, s)[part]
        else:
            raise ValueError(f"part must be 'total', 'intra' or 'inter', got {part!r}")
        return self.scale.decode_velocity(v)


def build_model(config: Config | ModelConfig) -> MeanFieldSDE:
    """Build a :class:`MeanFieldSDE` from a config by registry names."""
    m = config.model if isinstance(config, Config) else config
    intra = build_intra(m.intra.name, dim=m.dim, **m.intra.options)
    inter = build_interaction(m.inter.name, dim=m.dim, **m.inter.options)
    sigma = torch.as_tensor(m.sigma, dtype=torch.get_default_dtype())
    if m.sigma_units in ("data", "spread"):  # one σ per dimension, set once the scale is fitted
        sigma = sigma.expand(m.dim).clone()
    diffusion = build_noise(m.noise.name, m.dim, sigma, m.learn_sigma, **m.noise.options)
    growth = build_growth(m.growth.name, dim=m.dim, **m.growth.options)
    return MeanFieldSDE(MeanFieldDrift(intra, inter), sigma=diffusion, dt=m.dt, solver=m.solver, growth=growth)


def sigma_to_model_units(model: MeanFieldSDE, config: Config | ModelConfig, spread: torch.Tensor | None = None) -> None:
    """Set the noise in model units once the model's scale is fitted.

    ``model.sigma_units = "data"``: σ · √time_unit / scale per dimension (affine noise: see
    ``noise_to_model_units``). ``"spread"``: σ_k = σ · spread_k / rms(spread), where ``spread``
    ``(d,)`` is the training cells' standard deviation per dimension in model units
    (:func:`mfsde.model.training_spread`; required then). ``"model"``: nothing."""
    m = config.model if isinstance(config, Config) else config
    if m.sigma_units == "data":
        noise_to_model_units(model.diffusion, m.sigma, model.scale)
    elif m.sigma_units == "spread":
        if spread is None:
            raise ValueError("model.sigma_units 'spread' needs the training cells' spread per dimension")
        spread = torch.as_tensor(spread, dtype=torch.float64)
        rms = spread.square().mean().sqrt()
        if not bool(torch.isfinite(spread).all()) or float(rms) <= 0:
            raise ValueError("model.sigma_units 'spread': the training cells have no spread to share σ by")
        model.diffusion.set_((float(m.sigma) * spread / rms).to(model.scale.scale.dtype))
