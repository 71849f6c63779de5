"""Particle-coupled SDE integration: the whole population moves at once, step by step."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.checkpoint import checkpoint

from mfsde._checks import check_population, check_positive_int
from mfsde.solvers._diffusion import SigmaLike, as_diffusion
from mfsde.solvers._grid import check_times, step_counts
from mfsde.solvers._steppers import SOLVERS

BrownianFn = Callable[[float, float], torch.Tensor]

#: log-weights of a mass channel are clipped to ±this at every output time (with a warning naming
#: how many particles): a particle e^30 ≈ 10¹³ times heavier than at the start has overflowed any
#: sensible growth model, and exp(log w) must stay finite in float32
LOG_W_LIMIT = 30.0


def clip_log_weights(lw: torch.Tensor, t: float) -> torch.Tensor:
    """``lw`` clipped to ±:data:`LOG_W_LIMIT`, warning with the number of particles clipped."""
    over = lw.detach().abs() > LOG_W_LIMIT
    if not bool(over.any()):
        return lw
    warnings.warn(
        f"{int(over.sum())} of {lw.numel()} particle log-weights passed ±{LOG_W_LIMIT:g} by t = {t:g} and were "
        "clipped: the growth rate is too large for this time span (lower the growth model's output or train longer)",
        RuntimeWarning,
        stacklevel=3,
    )
    return lw.clamp(-LOG_W_LIMIT, LOG_W_LIMIT)


@dataclass
class Solution:
    """Result of :func:`sdeint`.

    Attributes:
        ts: ``(T,)`` output times.
        xs: ``(T, ..., N, d)`` populations at the output times (``xs[0]`` is ``x0``).
        energy: ``(T, ...)`` cumulative path energy ∫_{t_0}^{t_k} mean_i ‖f(x_i, ρ)‖² dt per
            population (left-point rule on the solver grid), or ``None`` if not requested. With a
            mass channel the mean over particles is weighted by their normalised weights.
        n_steps: number of solver steps taken.
        n_drift_evals: number of population drift evaluations (steps × evals per step).
        solver: solver name.
        log_w: ``(T, ..., N)`` log-weights of the particles at the output times (a mass channel,
            ``sdeint(..., growth=g)``), or ``None``. A particle of weight w counts w times; the
            population's mass relative to ``x0``'s is :meth:`mass`.
        growth_energy: ``(T, ...)`` cumulative ∫ Σ_i w̄_i g(x_i)² dt (w̄ the normalised weights,
            left-point rule) with ``growth`` and ``energy=True``, else ``None``.
    """

    ts: torch.Tensor
    xs: torch.Tensor
    energy: torch.Tensor | None
    n_steps: int
    n_drift_evals: int
    solver: str
    log_w: torch.Tensor | None = None
    growth_energy: torch.Tensor | None = None

    def mass(self) -> torch.Tensor:
        """The total mass at every output time relative to the initial population's, ``(T, ...)``:
        mean_i w_i (every particle starts at weight 1 unless ``log_w0`` says otherwise); ones
        without a mass channel."""
        if self.log_w is None:
            return self.xs.new_ones(self.xs.shape[:-2])
        return self.log_w.exp().mean(-1)

    def at(self, t: float) -> torch.Tensor:
        """Population at output time ``t`` (must be one of ``ts``)."""
        hit = torch.isclose(self.ts, torch.as_tensor(t, dtype=self.ts.dtype), rtol=0, atol=1e-9).nonzero()
        if hit.numel() == 0:
            raise KeyError(f"t={t} is not an output time; ts = {self.ts.tolist()}")
        return self.xs[int(hit[0, 0])]


def random_batch_drift(drift, perm: torch.Tensor, batch: int):
    """``drift`` restricted to random groups (Jin, Li & Liu 2020): ``f(x, t)`` evaluates ``drift``
    on the particles ordered by ``perm`` ``(N,)`` and split into groups of ``batch`` — one call on
    ``(..., N // batch, batch, d)`` plus one on the last, smaller group ``(..., N % batch, d)`` if
    any — and returns each output to its particle: ``(..., N, d)`` → ``(..., N, d)``. Each
    particle interacts with the ``batch − 1`` others of its group only: O(N·batch) work.
    A leftover group of a single particle would have nobody to interact with (a bias of order
    1/N), so when ``N % batch == 1`` that particle joins the last full group (one group of
    ``batch + 1``).
    """
    check_positive_int(batch, "batch")
    inv = torch.argsort(perm)

    def f(x, t=None):
        n = x.shape[-2]
        if perm.shape != (n,):
            raise ValueError(f"perm has shape {tuple(perm.shape)} but the population has N = {n}")
        xp = x[..., perm, :]
        n_groups = n // batch
        if n % batch == 1 and n_groups >= 1:  # no group of one: it joins the last full group
            n_groups -= 1
        full = n_groups * batch
        parts = []
        if full:
            groups = xp[..., :full, :].reshape(*x.shape[:-2], n_groups, batch, x.shape[-1])
            parts.append(drift(groups, t).reshape(*x.shape[:-2], full, x.shape[-1]))
        if full < n:  # the last group: smaller, or batch + 1 to avoid a group of one
            parts.append(drift(xp[..., full:, :], t))
        out = torch.cat(parts, dim=-2) if len(parts) > 1 else parts[0]
        return out[..., inv, :]

    return f


def sdeint(
    drift: Callable[[torch.Tensor, float], torch.Tensor],
    x0: torch.Tensor,
    ts,
    *,
    sigma: SigmaLike = 0.1,
    dt: float = 0.1,
    solver: str = "euler_maruyama",
    generator: torch.Generator | None = None,
    seed: int | None = None,
    bm: BrownianFn | None = None,
    energy: bool = False,
    random_batch: int | None = None,
    recompute_every: int | None = None,
    growth: Callable | None = None,
    log_w0: torch.Tensor | None = None,
) -> Solution:
    """Integrate the mean-field SDE ``dx = f(x, ρ_t, t) dt + g(x, t) dW`` for a particle population.

    Args:
        drift: ``drift(x, t)`` mapping ``(..., N, d)`` to ``(..., N, d)``; it sees the whole
            population at every evaluation, in the order given (the solver never resizes or
            re-orders it, except with ``random_batch``).
        x0: initial population ``(..., N, d)``; leading dims are independent populations.
        ts: increasing output times ``(T,)``; ``ts[0]`` is the time of ``x0``. Each interval is
            split into ⌈Δ/dt⌉ equal steps, so the solver lands exactly on every output time.
        sigma: diffusion — a number, a ``(d,)`` tensor, a ``(d, m)`` matrix, a callable
            ``g(x, t)`` or a :class:`~mfsde.solvers.Diffusion` (general d × m noise:
            ``Diffusion(g, noise_dim=m)``).
        dt: largest step size.
        solver: a name in ``SOLVERS`` (``"euler_maruyama"``, ``"heun"``).
        generator: source of the Brownian increments (neither it nor ``seed``: torch's global RNG).
        seed: builds a fresh ``torch.Generator`` for the increments.
        bm: optional ``bm(t_a, t_b)`` returning the Brownian increment over [t_a, t_b] with the
            shape of ``x0`` (``(..., N, m)`` for general noise) (to share noise with torchsde or
            another run); overrides the generator.
        energy: also accumulate the path energy ∫ mean_i ‖f‖² dt (see :class:`Solution`).
        random_batch: random batch method (Jin, Li & Liu 2020): at every step particles are
            shuffled into groups of this size and interact only within their group (O(N·B)).
        recompute_every: recompute the forward pass of blocks of this many steps during
            backward (``torch.utils.checkpoint``) to trade compute for memory.
        growth: a mass channel: ``growth(x, t, log_w)`` → ``(..., N)`` growth rates g (division
            minus death per unit time). Every particle then carries a log-weight,
            d log w_i = g(x_i, ρ_t) dt, integrated by the same stepper, and the drift is called
            as ``drift(x, t, log_w=log_w)`` so that the interaction counts particle i w_i times.
            ``None`` (default): no weights, the drift is called as ``drift(x, t)``.
        log_w0: initial log-weights ``(..., N)`` (default zeros: every particle weight 1); only
            with ``growth``.

    Returns:
        :class:`Solution` with ``xs`` of shape ``(T, ..., N, d)`` (and ``log_w`` ``(T, ..., N)``
        with ``growth``).
    """
    x0 = check_population(x0, "x0")
    if not isinstance(ts, torch.Tensor):  # Python numbers: keep x0's precision, not the default dtype
        ts = torch.as_tensor(ts, dtype=x0.dtype)
    ts = check_times(ts).to(device=x0.device)
    stepper = SOLVERS.build(solver)
    diffusion = as_diffusion(sigma).to(x0.device)
    stepper.check(diffusion)
    grid = step_counts(ts, dt)
    if generator is not None and seed is not None:
        raise ValueError("pass either generator or seed, not both")
    if seed is not None:
        generator = torch.Generator(device=x0.device).manual_seed(int(seed))
    n = x0.shape[-2]
    dw_shape = diffusion.noise_shape(x0.shape)  # x0's shape, or (..., N, m) for general noise
    check_positive_int(random_batch, "random_batch", allow_none=True)
    if random_batch is not None and random_batch >= n:
        random_batch = None  # one group holding everybody: the exact mean-field drift
    check_positive_int(recompute_every, "recompute_every", allow_none=True)
    weighted = growth is not None
    if weighted:
        if not callable(growth):
            raise TypeError(f"growth must be a callable growth(x, t, log_w) -> (..., N), got {type(growth).__name__}")
        if random_batch is not None:
            raise ValueError("random_batch does not carry particle weights: use growth=None or random_batch=None")
        if not hasattr(stepper, "weighted_step"):
            raise ValueError(f"solver {solver!r} has no mass channel (weighted_step); use 'euler_maruyama' or 'heun'")
        if log_w0 is None:
            log_w0 = x0.new_zeros(x0.shape[:-1])
        elif not isinstance(log_w0, torch.Tensor) or log_w0.shape != x0.shape[:-1]:
            got = tuple(log_w0.shape) if isinstance(log_w0, torch.Tensor) else type(log_w0).__name__
            raise ValueError(f"log_w0 must be a tensor of shape {tuple(x0.shape[:-1])} (x0 without d), got {got}")
        elif torch.isnan(log_w0).any() or (log_w0 == math.inf).any():
            raise ValueError("log_w0 must not hold NaN or +inf")
    elif log_w0 is not None:
        raise ValueError("log_w0 is given without growth: particle weights need a growth(x, t, log_w) callable")

    def noise(t: float, h: float) -> torch.Tensor:
        if bm is not None:
            inc = bm(t, t + h)
            if inc.numel() != math.prod(dw_shape):
                raise ValueError(
                    f"bm must return Brownian increments of shape {dw_shape} "
                    f"({'(..., N, m) for general noise' if diffusion.general else 'that of x0'}), "
                    f"got {tuple(inc.shape)}"
                )
            return inc.reshape(dw_shape).to(x0.dtype)
        return torch.randn(dw_shape, generator=generator, dtype=x0.dtype, device=x0.device).mul_(math.sqrt(h))

    def perm() -> torch.Tensor | None:
        if random_batch is None:
            return None
        return torch.randperm(n, generator=generator, device=x0.device)

    def run(x, e, times, h, dWs, perms):
        # constant noise: evaluate g once per block instead of once per step (it stays in the graph)
        g = diffusion.frozen(x, times[0]) if diffusion.additive else diffusion
        for t, dW, p in zip(times, dWs, perms):
            f_eval = drift if p is None else random_batch_drift(drift, p, random_batch)
            x, f = stepper.step(f_eval, g, x, t, h, dW)
            if e is not None:
                e = e + h * f.pow(2).sum(-1).mean(-1)
        return x, e

    def run_weighted(x, lw, e, ge, times, h, dWs):
        g = diffusion.frozen(x, times[0]) if diffusion.additive else diffusion
        for t, dW in zip(times, dWs):
            w = torch.softmax(lw, dim=-1) if e is not None else None  # normalised weights at the step's start
            x, lw, f, r = stepper.weighted_step(drift, growth, g, x, lw, t, h, dW)
            if e is not None:
                e = e + h * (w * f.pow(2).sum(-1)).sum(-1)
                ge = ge + h * (w * r.pow(2)).sum(-1)
        return x, lw, e, ge

    use_ckpt = recompute_every is not None and torch.is_grad_enabled()
    x = x0
    e = x0.new_zeros(x0.shape[:-2]) if energy else None
    xs, es = [x0], [e]
    lw, ge = log_w0, (x0.new_zeros(x0.shape[:-2]) if energy and weighted else None)
    lws, ges = [lw], [ge]
    for k, (n_k, h) in enumerate(grid):
        t_k = float(ts[k])
        times = [t_k + i * h for i in range(n_k)]
        block = recompute_every if use_ckpt else n_k
        for b in range(0, n_k, block):
            tb = times[b : b + block]
            # drawn outside any checkpoint (replays are exact), step by step (noise, then
            # permutation) so that the RNG stream does not depend on recompute_every
            draws = [(noise(t, h), perm()) for t in tb]
            dWs, perms = [d for d, _ in draws], [q for _, q in draws]
            if weighted:
                args = (x, lw, e, ge, tb, h, dWs)
                x, lw, e, ge = checkpoint(run_weighted, *args, use_reentrant=False) if use_ckpt else run_weighted(*args)
            elif use_ckpt:
                x, e = checkpoint(run, x, e, tb, h, dWs, perms, use_reentrant=False)
            else:
                x, e = run(x, e, tb, h, dWs, perms)
        if weighted:
            lw = clip_log_weights(lw, float(ts[k + 1]))
        xs.append(x)
        es.append(e)
        lws.append(lw)
        ges.append(ge)
    n_steps = sum(c for c, _ in grid)
    return Solution(
        ts=ts,
        xs=torch.stack(xs),
        energy=torch.stack(es) if energy else None,
        n_steps=n_steps,
        n_drift_evals=n_steps * stepper.drift_evals_per_step,
        solver=solver,
        log_w=torch.stack(lws) if weighted else None,
        growth_energy=torch.stack(ges) if weighted and energy else None,
    )
