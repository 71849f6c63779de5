"""Snapshot datasets from ground-truth systems: fresh, independent particles at every time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mfsde.systems._base import ParticleSystem, get_system


def _sizes(n_per_time, T: int) -> list[int]:
    if isinstance(n_per_time, (int, np.integer)):
        sizes = [int(n_per_time)] * T
    else:
        sizes = [int(n) for n in n_per_time]
        if len(sizes) != T:
            raise ValueError(f"n_per_time has {len(sizes)} entries for {T} times")
    if any(n < 1 for n in sizes):
        raise ValueError(f"n_per_time must be positive, got {sizes}")
    return sizes


def simulate_snapshots(
    system: ParticleSystem,
    times: Sequence[float],
    n_per_time: int | Sequence[int],
    generator: torch.Generator,
    dt: float = 0.01,
    solver: str = "euler_maruyama",
    dtype=torch.float32,
) -> list[torch.Tensor]:
    """Populations ``[(n_k, d)]``, population k drawn from its own initial sample and simulated
    from ``system.t0`` to ``times[k]`` (no particle identities shared across times).

    Populations of equal size are simulated together as one batch of independent populations
    (leading dim of :func:`~mfsde.sdeint`); population k leaves the batch once it
    reaches ``times[k]``, so the work is Σ_k (intervals up to t_k), not T × (all intervals).
    """
    ts = torch.as_tensor(np.asarray(times, dtype=np.float64))
    if ts.dim() != 1 or ts.numel() < 1:
        raise ValueError(f"times must be a non-empty 1-D sequence, got shape {tuple(ts.shape)}")
    if not torch.isfinite(ts).all() or (ts.numel() > 1 and not (ts[1:] > ts[:-1]).all()):
        raise ValueError(f"times must be finite and strictly increasing, got {ts.tolist()}")
    if float(ts[0]) < system.t0:
        raise ValueError(f"times must be >= t0 = {system.t0}, got {float(ts[0])}")
    sizes = _sizes(n_per_time, ts.numel())
    out: list[torch.Tensor | None] = [None] * ts.numel()
    for n in sorted(set(sizes)):  # fixed order: deterministic under the generator
        idx = [k for k, m in enumerate(sizes) if m == n]
        x = system.sample_initial(n, generator, batch=(len(idx),), dtype=dtype)
        t = system.t0
        for k in idx:
            t_k = float(ts[k])
            if t_k > t:
                x = system.simulate(x, [t, t_k], dt=dt, generator=generator, solver=solver).xs[-1]
                t = t_k
            out[k], x = x[0], x[1:]
    return out  # type: ignore[return-value]


def snapshots(
    system: ParticleSystem | str,
    times: Sequence[float] | None = None,
    n_per_time: int | Sequence[int] = 500,
    seed: int = 0,
    dt: float = 0.01,
    *,
    solver: str = "euler_maruyama",
    name: str | None = None,
):
    """Snapshot dataset of ``system`` at ``times``: ``n_per_time`` fresh particles per time.

    Every time point gets its own independent population of ``n_per_time`` particles (the
    mean-field interaction depends on N, so each population is simulated at its observed size),
    drawn from the initial law and simulated from ``system.t0`` — measurement destroys cells, so
    no identities link snapshots. Deterministic under ``seed`` (one ``torch.Generator`` drives
    initial draws and Brownian increments).

    Args:
        system: a :class:`ParticleSystem` or a registry name (built with defaults).
        times: observation times ``(T,)`` ≥ ``system.t0``, strictly increasing; default
            ``system.default_times``.
        n_per_time: particles per time (an int, or one int per time).
        seed: RNG seed.
        dt: largest solver step.
        solver: solver name (``"euler_maruyama"``, ``"heun"``).
        name: dataset name (default the system's name).

    Returns:
        :class:`mfsde.data.Snapshots` with ``times`` float64 ``(T,)``, ``data[k]`` float32
        ``(n_k, d)`` and ``feature_names`` the system's.
    """
    from mfsde.data import Snapshots

    if isinstance(system, str):
        system = get_system(system)
    if times is None:
        times = system.default_times
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        pops = simulate_snapshots(system, times, n_per_time, gen, dt=dt, solver=solver)
    return Snapshots(
        times=np.asarray(times, dtype=np.float64),
        data=[p.detach().cpu().numpy().astype(np.float32) for p in pops],
        feature_names=list(system.feature_names),
        name=system.name if name is None else name,
    )


def demo_dataset(seed: int = 0):
    """Small 2-D interacting-system dataset for demos: Morse aggregation (defaults of
    :class:`~mfsde.systems.MorseAggregation`), 5 times (0, 0.5, 1, 2, 4), 300 cells each."""
    from mfsde.systems._morse import MorseAggregation

    return snapshots(
        MorseAggregation(), times=(0.0, 0.5, 1.0, 2.0, 4.0), n_per_time=300, seed=seed, dt=0.02, name="demo_morse"
    )
