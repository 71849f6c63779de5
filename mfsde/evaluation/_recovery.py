"""Recovery metrics: how well a fitted model matches a ground-truth particle system.

After fitting a model to snapshots of a :class:`~mfsde.systems.ParticleSystem`, three questions:

(a) **Distributions at unseen times** — :func:`recovery_report` calls
    :func:`mfsde.evaluate` (exact W1/W2 between particles simulated by the model from
    the t₀ cells and the observed cells at held-out times). :class:`SystemModel` runs the true
    system through the same protocol, which gives the sampling floor of these numbers.
(b) **Total drift** — :func:`drift_error`: on fresh populations ρ drawn from the true system at
    given times, the relative error

        E_i ‖f̂(x_i, ρ) − f(x_i, ρ)‖² / E_i ‖f(x_i, ρ)‖²      (pooled over particles and times).

    0 is perfect; the zero model scores exactly 1.
(c) **Interaction** — :func:`interaction_error`, with the gauge fixed as explained below.

Why (b) and (c) measure something W1/W2 do not
----------------------------------------------
Snapshots give marginal laws ρ_t only. Any field v with ∇·(ρ_t v) = 0 can be added to the drift
without changing one marginal (e.g. a rotation of an isotropic Gaussian), so a model can match
every snapshot and still have the wrong physics; (b) measures the physics itself, on the
populations the data came from.

The split f = f_intra + f_inter is not identified even when f is. Any function h(x_i) of a
particle's own state can move between the parts — f̂_intra − h and f̂_inter + h give the same
dynamics — and so can any population functional that is constant along the observed law
trajectory (the mean velocity of noise-free Cucker–Smale is conserved, so c·v̄ is a constant
there and can be absorbed by f_intra as well). Comparing f̂_inter with f_inter directly
(``inter_raw`` below) therefore scores the gauge, not the physics.

Gauge fixing (c). We compare the *population-dependent part* of the drift: for probe particles
x ∈ P and two populations A, B (drawn at two different times, so that their laws differ),

    Δf(x) = f(x, ρ_{A∪P}) − f(x, ρ_{B∪P}) = f_inter(x, ρ_{A∪P}) − f_inter(x, ρ_{B∪P}),

the change of a probe's drift when its surroundings change while the probe itself stays put.
Every function of x alone cancels exactly, whichever part holds it, so Δf is gauge-invariant and
needs no decomposition of the model (it uses the total drift only). The metric is

    inter = E ‖Δf̂ − Δf‖² / E ‖Δf‖²     (pooled over probes and population pairs),

0 when the interaction is recovered up to the gauge, exactly 1 for a model without any
population dependence. It is NaN for non-interacting systems (Δf ≡ 0); ``inter_scaled`` =
E ‖Δf̂ − Δf‖² / E ‖f‖² (in units of the total drift on the same probes) is defined for them too
and measures a spurious interaction. What Δf cannot see: population functionals that take the
same value on A and B (conserved quantities of the trajectory) — which are exactly the ones that
snapshots of one trajectory cannot attribute. Population pairs are consecutive evaluation times
(``pairs="consecutive"``) or all pairs (``"all"``). Models whose drift takes the time as input
are evaluated at each population's own time, so a model that encodes ρ_t through t gets credit
for it: along one law trajectory f(x, ρ_t) and g(x, t) are indistinguishable.

Coordinates and dtypes. The systems' snapshots are used raw (no preprocessing) by the
benchmarks and examples. A model that standardises internally (``model.scale``, see
:mod:`mfsde.model`) is evaluated in the system's coordinates through
:class:`~mfsde.model.DataUnitsDrift` (time relative to the first snapshot). A model fitted on affinely
standardised data z = (x − shift) / scale is handled with ``coords=(shift, scale)``: its drift
is mapped back by f̂_x(x) = scale ⊙ ĝ((x − shift) / scale) (time is not rescaled). Populations
are simulated in float32 (as the training snapshots) and then cast to float64; the true drift is
evaluated in float64; the model is evaluated in its own dtype
and its output compared in float64. The model time is ``t − time_origin`` (the trainer's time
axis starts at the first snapshot time; default ``system.t0``).

>>> from mfsde.systems import CuckerSmale
>>> from mfsde.evaluation import recovery_report
>>> rep = recovery_report(fit_result.model, CuckerSmale(), snaps, "heldout:2,5")
>>> rep["w1"], rep["drift"], rep["inter"]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from mfsde.drifts import MeanFieldDrift
from mfsde.model._scaling import DataScale, DataUnitsDrift
from mfsde.systems._base import ParticleSystem
from mfsde.systems._dataset import simulate_snapshots


# -- inputs ---------------------------------------------------------------------------------------
def _check_system(system) -> ParticleSystem:
    if not isinstance(system, ParticleSystem):
        raise TypeError(f"system must be an mfsde.systems.ParticleSystem, got {type(system).__name__}")
    return system


class _Truth:
    """The ground truth of a recovery metric: a :class:`ParticleSystem` (its drift, and fresh
    populations simulated from it), or any drift ``f(x, t)`` given as a torch or numpy callable
    with the populations to evaluate it on."""

    def __init__(self, system, times, populations, least: int = 1):
        self.system = system if isinstance(system, ParticleSystem) else None
        if self.system is None and not callable(system):
            raise TypeError(
                "system must be an mfsde.systems.ParticleSystem or a callable drift f(x, t) "
                f"(x: (N, d) population), got {type(system).__name__}"
            )
        if self.system is not None and populations is not None:
            raise ValueError("populations: give them with a callable drift only; a ParticleSystem simulates its own")
        if self.system is None and populations is None:
            raise ValueError(
                "populations is required with a callable drift: one (N, d) array per time, the populations ρ "
                "at which f(x, ρ) is compared (a ParticleSystem draws them itself)"
            )
        self.fn = system
        if self.system is not None:
            self.dim, self.t0, self.name = system.dim, system.t0, system.name
            self.times = _check_times(times, system, least)
            self.given = None
        else:
            self.given = _check_populations(populations)
            self.dim, self.name = self.given[0].shape[1], getattr(system, "__name__", "drift")
            self.t0 = -math.inf
            self.times = _check_times(times, self, least)
            if len(self.times) != len(self.given):
                raise ValueError(f"populations: {len(self.given)} arrays for {len(self.times)} times")
            self.t0 = self.times[0]

    def populations(self, n: int, seed: int, dt: float, cache) -> list[torch.Tensor]:
        if self.system is not None:
            return true_populations(self.system, self.times, n, seed, dt, cache)
        short = min(p.shape[0] for p in self.given)
        if short < n:
            raise ValueError(
                f"populations: need {n} particles per time (n_particles + probes), the smallest has {short}"
            )
        return [p[:n] for p in self.given]

    def drift(self, x: torch.Tensor, t: float) -> torch.Tensor:
        if self.system is not None:
            return _true_drift(self.system, x, t)
        out = call_on_particles(self.fn, x, t)
        if out.shape != x.shape:
            raise ValueError(
                f"the true drift returned shape {tuple(out.shape)} for a population of shape {tuple(x.shape)}"
            )
        return out

    def inter(self, x: torch.Tensor) -> torch.Tensor | None:
        return self.system.drift.inter(x).double() if self.system is not None else None


def call_on_particles(fn, x: torch.Tensor, t: float | None = None) -> torch.Tensor:
    """``fn(x[, t])`` for a torch callable (float64 tensors) or, when it cannot take tensors, a
    numpy one (arrays, ``t`` a float); the output as a float64 CPU tensor."""
    with torch.no_grad():
        try:
            out = fn(x) if t is None else fn(x, torch.tensor(t, dtype=x.dtype))
        except (TypeError, AttributeError):  # a numpy function that cannot take tensors
            out = fn(x.numpy()) if t is None else fn(x.numpy(), t)
    out = out.detach().cpu() if isinstance(out, torch.Tensor) else out
    return torch.as_tensor(np.asarray(out, dtype=np.float64))


def _check_populations(populations) -> list[torch.Tensor]:
    if isinstance(populations, (np.ndarray, torch.Tensor)) or not isinstance(populations, Sequence) or not populations:
        raise TypeError("populations must be a non-empty list of (N, d) arrays, one per time")
    out = []
    for k, p in enumerate(populations):
        a = torch.as_tensor(np.asarray(p.detach().cpu() if isinstance(p, torch.Tensor) else p, dtype=np.float64))
        if a.dim() != 2 or a.shape[0] < 2 or not torch.isfinite(a).all():
            raise ValueError(f"populations[{k}] must be a finite (N, d) array with N >= 2, got shape {tuple(a.shape)}")
        if a.shape[1] != (out[0].shape[1] if out else a.shape[1]):
            raise ValueError(f"populations[{k}] has d = {a.shape[1]}, populations[0] has d = {out[0].shape[1]}")
        out.append(a)
    return out


def _drift_of(model, system):
    """The learned drift ``(x (..., N, d), t) → (..., N, d)`` of ``model`` (a MeanFieldSDE, a
    MeanFieldDrift or anything with a ``.drift``), checked against ``system.dim``."""
    drift = model if isinstance(model, MeanFieldDrift) else getattr(model, "drift", None)
    if drift is None or not callable(drift):
        raise TypeError(
            f"model must be a MeanFieldSDE, a MeanFieldDrift or have a callable .drift, got {type(model).__name__}"
        )
    dim = getattr(drift, "dim", getattr(model, "dim", None))
    if dim is not None and dim != system.dim:
        raise ValueError(f"model has dim {dim} but system {system.name!r} has dim {system.dim}")
    scale = getattr(model, "scale", None)
    if isinstance(scale, DataScale) and not scale.is_identity:
        return DataUnitsDrift(drift, scale)  # a standardised model, seen in the system's coordinates
    return drift


def _check_times(times, system, least: int = 1) -> list[float]:
    try:
        ts = [float(t) for t in np.asarray(times, dtype=np.float64).reshape(-1)]
    except (TypeError, ValueError) as e:
        raise TypeError(f"times must be a sequence of numbers, got {times!r}") from e
    if len(ts) < least:
        raise ValueError(f"times needs at least {least} time(s), got {ts}")
    if not all(math.isfinite(t) for t in ts) or any(b <= a for a, b in zip(ts, ts[1:])):
        raise ValueError(f"times must be finite and strictly increasing, got {ts}")
    if ts[0] < system.t0:
        raise ValueError(f"times must be >= the system's t0 = {system.t0}, got {ts[0]}")
    return ts


def _check_count(n, name: str, least: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < least:
        raise ValueError(f"{name} must be an int >= {least}, got {n!r}")
    return int(n)


def _check_coords(coords, dim: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    if coords is None:
        return None
    if not isinstance(coords, (tuple, list)) or len(coords) != 2:
        raise TypeError("coords must be None or a (shift, scale) pair of numbers or (d,) arrays")
    out = []
    for what, v in zip(("shift", "scale"), coords):
        t = torch.as_tensor(np.asarray(v, dtype=np.float64))
        t = t.expand(dim).clone() if t.dim() == 0 else t
        if t.shape != (dim,) or not torch.isfinite(t).all():
            raise ValueError(f"coords {what} must be a finite number or ({dim},) array, got {np.asarray(v).tolist()}")
        out.append(t)
    if (out[1] <= 0).any():
        raise ValueError(f"coords scale must be positive, got {out[1].tolist()}")
    return out[0], out[1]


# -- populations and drifts -----------------------------------------------------------------------
def true_populations(
    system: ParticleSystem,
    times: Sequence[float],
    n_particles: int,
    seed: int = 0,
    dt: float = 0.01,
    cache: dict | None = None,
) -> list[torch.Tensor]:
    """Fresh populations ``[(n_particles, d)]`` (float64) of the true system at ``times``, each
    simulated from its own initial draw as :func:`~mfsde.systems.snapshots` does (in float32,
    then cast: evaluation points need no more precision than the data have).

    ``cache``: a dict to reuse populations across calls (e.g. one per system when several models
    are scored); the key holds the system's identity, times, size, seed and step.
    """
    system = _check_system(system)
    ts = _check_times(times, system)
    n = _check_count(n_particles, "n_particles")
    key = (id(system), tuple(ts), n, int(seed), float(dt))
    if cache is not None and key in cache and cache[key][0] is system:  # id() may be reused
        return cache[key][1]
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        pops = [p.double() for p in simulate_snapshots(system, ts, n, gen, dt=dt, dtype=torch.float32)]
    if cache is not None:
        cache[key] = (system, pops)  # keeps the system alive, so its id cannot be recycled
    return pops


def _true_drift(system: ParticleSystem, x: torch.Tensor, t: float) -> torch.Tensor:
    with torch.no_grad():
        return system.drift(x, torch.tensor(t, dtype=x.dtype)).double()


def _model_drift(drift, x: torch.Tensor, t: float, coords) -> torch.Tensor:
    """Learned drift at the float64 population ``x`` (system coordinates), float64 output."""
    p = next(iter(drift.parameters()), None) if isinstance(drift, nn.Module) else None
    dtype, device = (p.dtype, p.device) if p is not None else (torch.get_default_dtype(), torch.device("cpu"))
    z = x if coords is None else (x - coords[0]) / coords[1]
    was_training = getattr(drift, "training", False)
    if isinstance(drift, nn.Module):
        drift.eval()
    try:
        with torch.no_grad():
            out = drift(z.to(dtype=dtype, device=device), torch.tensor(t, dtype=dtype, device=device))
    finally:
        if isinstance(drift, nn.Module):
            drift.train(was_training)
    out = out.detach().to("cpu", torch.float64)
    if out.shape != x.shape:
        raise ValueError(
            f"the model's drift returned shape {tuple(out.shape)} for a population of shape {tuple(x.shape)}"
        )
    return out if coords is None else out * coords[1]


def _model_part(drift, part: str, x: torch.Tensor, t: float, coords) -> torch.Tensor | None:
    """``drift.inter`` / ``drift.intra`` at ``x`` (float64), or None when the model has no such part."""
    module = getattr(drift, part, None)
    if module is None or not callable(module):
        return None
    return _model_drift(module, x, t, coords)


def _sq(v: torch.Tensor) -> float:
    return float(v.pow(2).sum())


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else float("nan")


# -- (b) total drift ------------------------------------------------------------------------------
def drift_error(
    model,
    system,
    times: Sequence[float],
    *,
    populations=None,
    n_particles: int = 500,
    seed: int = 0,
    dt: float = 0.01,
    coords=None,
    time_origin: float | None = None,
    cache: dict | None = None,
) -> dict:
    """Relative error of the total drift on fresh true populations (metric (b) of the module doc).

    Args:
        model: a :class:`~mfsde.MeanFieldSDE` (or its ``MeanFieldDrift``) with ``dim == system.dim``.
        system: the ground truth: a :class:`~mfsde.systems.ParticleSystem`, or any drift
            ``f(x, t) → (N, d)`` of a population ``x`` ``(N, d)`` (f(x_i, ρ) with ρ the empirical
            law of ``x``), as a torch callable (float64 tensors) or a numpy one (arrays).
        times: evaluation times ``(T,)``, strictly increasing, ≥ ``system.t0``.
        populations: with a callable ``system``: one ``(N, d)`` array per time, the populations
            ρ_t the drifts are compared on (a ParticleSystem simulates fresh ones instead).
        n_particles: particles per fresh population (the true drift depends on N only through the
            empirical measure); with ``populations``, the first ``n_particles`` of each.
        seed: seed of the populations.
        dt: solver step of the true simulation.
        coords: ``(shift, scale)`` if the model lives in standardised coordinates (module doc).
        time_origin: the model's time zero (default ``system.t0``).
        cache: see :func:`true_populations`.

    Returns:
        ``{"drift": Σ‖f̂−f‖² / Σ‖f‖² (NaN if f ≡ 0), "drift_mse": mean ‖f̂−f‖², "drift_norm":
        mean ‖f‖², "inter_raw": Σ‖f̂_inter − f_inter‖² / Σ‖f_inter‖² (gauge-dependent; None when
        the model has no ``.inter``, NaN when f_inter ≡ 0), "per_time": [{"time", "drift",
        "drift_mse", "drift_norm"}], "n_particles", "seed"}``.
    """
    truth = _Truth(system, times, populations)
    drift = _drift_of(model, truth)
    ts = truth.times
    coords = _check_coords(coords, truth.dim)
    t_zero = truth.t0 if time_origin is None else float(time_origin)
    pops = truth.populations(_check_count(n_particles, "n_particles"), seed, dt, cache)
    per_time, num, den, inum, iden, has_inter = [], 0.0, 0.0, 0.0, 0.0, truth.system is not None
    for t, x in zip(ts, pops):
        f, fh = truth.drift(x, t), _model_drift(drift, x, t - t_zero, coords)
        e, s = _sq(fh - f), _sq(f)
        per_time.append({"time": t, "drift": _ratio(e, s), "drift_mse": e / x.shape[0], "drift_norm": s / x.shape[0]})
        num, den = num + e, den + s
        gi = _model_part(drift, "inter", x, t - t_zero, coords)
        has_inter = has_inter and gi is not None
        if has_inter:
            fi = truth.inter(x)
            inum, iden = inum + _sq(gi - fi), iden + _sq(fi)
    n_all = len(ts) * pops[0].shape[0]
    return {
        "drift": _ratio(num, den),
        "drift_mse": num / n_all,
        "drift_norm": den / n_all,
        "inter_raw": _ratio(inum, iden) if has_inter else None,
        "per_time": per_time,
        "n_particles": int(pops[0].shape[0]),
        "seed": int(seed),
    }


# -- (c) population-dependent part ------------------------------------------------------------------
def _pairs(n_times: int, pairs: str) -> list[tuple[int, int]]:
    if pairs == "consecutive":
        return [(k, k + 1) for k in range(n_times - 1)]
    if pairs == "all":
        return [(a, b) for a in range(n_times) for b in range(a + 1, n_times)]
    raise ValueError(f"pairs must be 'consecutive' or 'all', got {pairs!r}")


def recovery_samples(
    model,
    system,
    times: Sequence[float],
    *,
    populations=None,
    n_particles: int = 500,
    n_probes: int | None = None,
    seed: int = 0,
    dt: float = 0.01,
    coords=None,
    time_origin: float | None = None,
    pairs: str = "consecutive",
    cache: dict | None = None,
) -> dict:
    """The raw material of :func:`interaction_error`: probe states and true/learned drifts.

    For every time pair (a, b): background populations A (time a) and B (time b) of
    ``n_particles`` and probes P = ``n_probes`` fresh particles from each of the two times
    (2·n_probes in all, default ``n_particles // 4`` each); the drift is evaluated on the
    populations A∪P (at t_a) and B∪P (at t_b) and kept at the probes.

    Returns ``{"x": (M, d) probes, "delta_true", "delta_model": (M, d) Δf, Δf̂, "f_true",
    "f_model": (2M, d) total drifts at the probes in both populations, "pairs": [(t_a, t_b)]}``
    (float64 tensors, M = 2·n_probes × number of pairs).

    ``system`` and ``populations``: as in :func:`drift_error` (a callable drift needs
    ``n_particles + n_probes`` cells per given population).
    """
    truth = _Truth(system, times, populations, least=2)
    drift = _drift_of(model, truth)
    ts = truth.times
    n = _check_count(n_particles, "n_particles")
    m = max(1, n // 4) if n_probes is None else _check_count(n_probes, "n_probes")
    coords = _check_coords(coords, truth.dim)
    t_zero = truth.t0 if time_origin is None else float(time_origin)
    pops = truth.populations(n + m, seed, dt, cache)
    out = {k: [] for k in ("x", "delta_true", "delta_model", "f_true", "f_model")}
    for a, b in _pairs(len(ts), pairs):
        probes = torch.cat([pops[a][n:], pops[b][n:]])
        ends = []
        for k in (a, b):
            pop = torch.cat([pops[k][:n], probes])
            ends.append((truth.drift(pop, ts[k])[n:], _model_drift(drift, pop, ts[k] - t_zero, coords)[n:]))
        (fa, ga), (fb, gb) = ends
        out["x"].append(probes)
        out["delta_true"].append(fa - fb)
        out["delta_model"].append(ga - gb)
        out["f_true"] += [fa, fb]
        out["f_model"] += [ga, gb]
    res = {k: torch.cat(v) for k, v in out.items()}
    res["pairs"] = [(ts[a], ts[b]) for a, b in _pairs(len(ts), pairs)]
    return res


def interaction_error(
    model,
    system,
    times: Sequence[float],
    *,
    populations=None,
    n_particles: int = 500,
    n_probes: int | None = None,
    seed: int = 0,
    dt: float = 0.01,
    coords=None,
    time_origin: float | None = None,
    pairs: str = "consecutive",
    cache: dict | None = None,
) -> dict:
    """Gauge-fixed interaction error (metric (c) of the module doc) from :func:`recovery_samples`.

    Returns ``{"inter": E‖Δf̂−Δf‖² / E‖Δf‖² (NaN when the system does not interact),
    "inter_scaled": E‖Δf̂−Δf‖² / E‖f‖² (f: total true drift at the probes), "inter_norm":
    E‖Δf‖², "n_probes", "pairs"}``. ``system`` and ``populations``: as in :func:`drift_error`.
    """
    s = recovery_samples(
        model,
        system,
        times,
        populations=populations,
        n_particles=n_particles,
        n_probes=n_probes,
        seed=seed,
        dt=dt,
        coords=coords,
        time_origin=time_origin,
        pairs=pairs,
        cache=cache,
    )
    err = _sq(s["delta_model"] - s["delta_true"])
    m = s["x"].shape[0]
    norm = _sq(s["delta_true"])
    # the true interaction may vanish up to rounding (control systems): treat as exactly 0
    tiny = 1e-20 * max(_sq(s["f_true"]), 1e-300)
    return {
        "inter": _ratio(err, norm if norm > tiny else 0.0),
        "inter_scaled": _ratio(2 * err, _sq(s["f_true"])),
        "inter_norm": norm / m,
        "n_probes": m,
        "pairs": s["pairs"],
    }


# -- the true system as a model, and the combined report --------------------------------------------
class SystemModel(nn.Module):
    """The ground-truth system behind the model interface that :func:`mfsde.evaluate`
    uses: ``model(x0, ts, generator=g).xs`` simulates the true system from ``x0`` (in its own
    coordinates, float32, step ``dt``); ``.drift`` is the true drift. Evaluating it gives the
    sampling floor of held-out W1/W2; its recovery errors are 0 by construction."""

    def __init__(self, system: ParticleSystem, dt: float = 0.01):
        super().__init__()
        self.system = _check_system(system)
        self.drift = system.drift
        self.dim = system.dim
        self.dt = float(dt)

    def forward(self, x0: torch.Tensor, ts, generator: torch.Generator | None = None, **kwargs):
        t = torch.as_tensor(ts, dtype=torch.float64) + self.system.t0
        return self.system.simulate(x0, t.tolist(), dt=self.dt, generator=generator)

    def sample(self, x0: torch.Tensor, times, generator: torch.Generator | None = None, **kwargs) -> torch.Tensor:
        """Simulate from ``x0`` through the (system) ``times``: ``(T, ..., N, d)``."""
        times = [float(t) for t in torch.as_tensor(times, dtype=torch.float64)]
        return self.system.simulate(x0, times, dt=self.dt, generator=generator).xs


def recovery_report(
    model,
    system: ParticleSystem,
    snapshots,
    task,
    *,
    times: Sequence[float] | None = None,
    n_particles: int = 500,
    eval_particles: int = 1000,
    seed: int = 0,
    dt: float = 0.01,
    coords=None,
    cache: dict | None = None,
) -> dict:
    """(a) + (b) + (c) for a model fitted to ``snapshots`` of ``system`` on ``task``.

    ``times`` (default: every snapshot time) are the evaluation times of (b) and (c);
    W1/W2 from :func:`mfsde.evaluate` at the held-out times of ``task`` with
    ``eval_particles`` simulated particles. The model time origin is the first snapshot time.
    ``cache`` (see :func:`true_populations`) shares the true populations between models.

    Returns ``{"w1", "w2", "per_time" (held-out W), "drift", "drift_mse", "drift_norm", "inter_raw",
    "drift_per_time", "inter", "inter_scaled", "inter_norm"}``.
    """
    from mfsde.evaluation._evaluate import evaluate

    system = _check_system(system)
    _drift_of(model, system)
    if snapshots.dim != system.dim:
        raise ValueError(f"snapshots have dim {snapshots.dim} but system {system.name!r} has dim {system.dim}")
    if coords is not None:
        raise ValueError(
            "recovery_report evaluates W1/W2 on the raw snapshots; with standardised "
            "coordinates call drift_error / interaction_error with coords="
        )
    ts = list(np.asarray(snapshots.times, dtype=np.float64)) if times is None else times
    origin = float(np.asarray(snapshots.times)[0])
    ev = evaluate(model, snapshots, task, n_particles=eval_particles, seed=seed)
    de = drift_error(model, system, ts, n_particles=n_particles, seed=seed + 1, dt=dt, time_origin=origin, cache=cache)
    ie = interaction_error(
        model, system, ts, n_particles=n_particles, seed=seed + 2, dt=dt, time_origin=origin, cache=cache
    )
    return {
        "w1": ev["w1"],
        "w2": ev["w2"],
        "per_time": ev["per_time"],
        **{k: de[k] for k in ("drift", "drift_mse", "drift_norm", "inter_raw")},
        "drift_per_time": de["per_time"],
        **{k: ie[k] for k in ("inter", "inter_scaled", "inter_norm")},
    }
