"""Particle-coupled SDE integration: the whole population moves at once, step by step."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.checkpoint import checkpoint

from mfsde._checks import check_population, check_positive_int
from mfsde.solvers._diffusion import SigmaLike, as_diffusion
from mfsde.solvers._grid import check_times, step_counts
from mfsde.solvers._steppers import SOLVERS

BrownianFn = Callable[[float, float], torch.Tensor]


@dataclass
class Solution:
    """Result of :func:`sdeint`.

    Attributes:
        ts: ``(T,)`` output times.
        xs: ``(T, ..., N, d)`` populations at the output times (``xs[0]`` is ``x0``).
        energy: ``(T, ...)`` cumulative path energy ∫_{t_0}^{t_k} mean_i ‖f(x_i, ρ)‖² dt per
            population (left-point rule on the solver grid), or ``None`` if not requested.
        n_steps: number of solver steps taken.
        n_drift_evals: number of population drift evaluations (steps × evals per step).
        solver: solver name.
    """

    ts: torch.Tensor
    xs: torch.Tensor
    energy: torch.Tensor | None
    n_steps: int
    n_drift_evals: int
    solver: str

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

    Returns:
        :class:`Solution` with ``xs`` of shape ``(T, ..., N, d)``.
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

    use_ckpt = recompute_every is not None and torch.is_grad_enabled()
    x = x0
    e = x0.new_zeros(x0.shape[:-2]) if energy else None
    xs, es = [x0], [e]
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
            if use_ckpt:
                x, e = checkpoint(run, x, e, tb, h, dWs, perms, use_reentrant=False)
            else:
                x, e = run(x, e, tb, h, dWs, perms)
        xs.append(x)
        es.append(e)
    n_steps = sum(c for c, _ in grid)
    return Solution(
        ts=ts,
        xs=torch.stack(xs),
        energy=torch.stack(es) if energy else None,
        n_steps=n_steps,
        n_drift_evals=n_steps * stepper.drift_evals_per_step,
        solver=solver,
    )
