"""Mean-field flow matching: a simulation-free training method for f(x, ρ_t).

One iteration, per training population (a ``Series`` (mfsde/data/_inputs.py), model units):

1. draw ``train.fm_times`` times t uniformly on [t₀, t_K] (the training times' span, so a wide
   gap is visited as often as its length asks); t falls in the gap (t_k, t_{k+1}) between two
   *consecutive training* times (a held-out time in between is bridged over, unequal gaps are
   handled by Δ = t_{k+1} − t_k);
2. for each gap visited draw ``train.fm_batch`` cells from each of its two snapshots and couple
   them by minibatch optimal transport (the times in one gap share its pairs) (``train.fm_coupling``:
   ``"exact"``, POT's network simplex on the squared Euclidean cost; ``"sinkhorn"``, the entropic
   plan with ε = σ²Δ on the cost ‖x − y‖²/2, which is the Schrödinger bridge's coupling for
   Brownian motion of noise σ; ``"independent"``; or ``"global"``: pairs drawn from one exact OT
   plan between up to ``train.fm_plan_cells`` cells of each whole snapshot, solved once per gap, so
   that the bridges are those of the snapshots' OT plan rather than of a minibatch's);
3. put every pair on a **Brownian bridge** of the model's noise σ: with s = (t − t_k)/Δ,
   x_t = (1 − s) x₀ + s x₁ + σ √(s(1 − s)Δ) ε, ε ~ N(0, I);
4. the B bridged cells at t are one sample of ρ_t, so the drift is evaluated on them as a
   population, ``f(x_t^i, {x_t^j})``: every interaction kernel attends to the batch it is in
   (with ``train.random_batch`` to random groups of it, as in simulation);
5. regress f on the bridge's drift u = (x₁ − x_t)/((1 − s)Δ), weighted by (1 − s):
   loss = mean over times and cells of (1 − s)‖f(x_t, ρ_t) − u‖².

**What is learned.** The mixture of Brownian bridges with coupling π has the marginals of an
SDE dx = b(x, t) dt + σ dW whose drift is the conditional mean b = E[u | x_t] (its Markovian
projection); the regression's minimiser over f is that b, evaluated where the mixture has mass.
So f is an SDE drift *for the model's σ* — the probability-flow field plus σ²/2 times the score,
in one regression ([SF]²M's u + σ²/2 ∇log p, written with the bridge's own drift) — not only a
probability flow. With the ``"sinkhorn"`` coupling at ε = σ²Δ the mixture is the Schrödinger
bridge between consecutive snapshots (Tong et al. 2024, [SF]²M); ``"exact"`` is its ε → 0 limit
(OT-CFM's coupling, with the bridge noise kept). The (1 − s) weight keeps the target's variance,
σ²s/((1 − s)Δ) per dimension, bounded near t_{k+1}; it does not change the minimiser.

**What it assumes.** Noise that is additive, constant and diagonal (``model.noise`` =
``"diagonal"``, σ fixed: flow matching does not identify σ from snapshots, so ``model.learn_sigma``
needs simulation); the law between two consecutive snapshots is the bridge mixture (minimal
action given the two ends, the same prior as the simulation loss's energy term); a minibatch of
``fm_batch`` cells is a fair sample of ρ_t for the kernel (the attention softmax is a weighted
mean, so its estimate converges as the batch grows; the interaction preset's ``random_batch``
applies as in simulation). With ``model.inter = "none"`` the batch plays no role and this is
independent-particle bridge matching, exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from mfsde.data._inputs import draw_initial

#: ``train.method`` values: the simulation loss (scIMF), flow matching, or flow matching for
#: ``train.fm_iterations`` iterations then the simulation loss
TRAINING_METHODS = ("simulation", "flow_matching", "flow_matching+simulation")
#: ``train.fm_coupling`` values
COUPLINGS = ("exact", "sinkhorn", "independent", "global")
#: ``train.fm_interpolant`` values: straight bridges, or geodesics of a data-density metric
#: (:mod:`mfsde.training._geodesic`)
INTERPOLANTS = ("linear", "metric")
#: the largest float64 cost matrix a coupling may build (bytes)
MAX_COST_BYTES = 2 * 1024**3


def check_cost_size(n: int, m: int, key: str = "train.fm_batch") -> None:
    """Refuse a coupling whose ``n × m`` float64 cost matrix would exceed :data:`MAX_COST_BYTES`
    (the one-line error names ``key``, the setting that sizes it)."""
    need = 8 * n * m
    if need > MAX_COST_BYTES:
        raise ValueError(
            f"{key}: the coupling's {n} × {m} cost matrix would need {need / 1024**3:.1f} GiB "
            f"(at most {MAX_COST_BYTES / 1024**3:.0f} GiB); lower {key}"
        )


class GlobalPlan:
    """The exact OT plan between two whole snapshots (``train.fm_coupling "global"``), solved once.

    Args:
        x0: the first snapshot's cells ``(n, d)`` (at most ``train.fm_plan_cells``, drawn beforehand).
        x1: the second's ``(m, d)``.
        metric: the gap's :class:`~mfsde.training._geodesic.RBFMetric` (``train.fm_interpolant
            "metric"``) or ``None``. With it, the geodesic of every entry of the plan is solved here,
            once, in chunks of :data:`~mfsde.training._geodesic.GEODESIC_CHUNK` entries in the plan's
            order (:attr:`geodesics`), instead of again at every draw of the entry.

    The plan of the two uniform empirical measures on ‖x − y‖² (POT ``emd``) has at most n + m − 1
    entries; :meth:`sample` draws pairs from it, so a batch of pairs is a sample of the coupling
    and its first ends a uniform sample of ``x0``."""

    def __init__(self, x0: torch.Tensor, x1: torch.Tensor, metric=None):
        from mfsde.losses._wasserstein import ot_plan
        from mfsde.training import _geodesic

        n, m = x0.shape[0], x1.shape[0]
        check_cost_size(n, m, "train.fm_plan_cells")
        ends = (x.detach().cpu().double().numpy() for x in (x0, x1))
        plan = ot_plan(*ends, num_iter_max=max(10_000_000, 50 * n * m))
        i, j = np.nonzero(plan > 0)
        self.x0, self.x1 = x0, x1
        self.rows, self.cols = torch.as_tensor(i), torch.as_tensor(j)
        self.mass = torch.as_tensor(plan[i, j], dtype=torch.float64)
        #: sine coefficients ``(E, J, d)`` of each entry's geodesic (with ``metric``), else ``None``
        self.geodesics = None
        if metric is not None:
            chunks = torch.arange(len(self.rows)).split(_geodesic.GEODESIC_CHUNK)
            self.geodesics = torch.cat([_geodesic.geodesic(x0[self.rows[c]], x1[self.cols[c]], metric) for c in chunks])

    def sample(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``batch`` pairs drawn from the plan with ``generator``: ``(x0, x1, a)``, the ends each
        ``(batch, d)``, row i of one paired with row i of the other, and their geodesics'
        coefficients ``(batch, J, d)`` (``None`` without a metric)."""
        pick = torch.multinomial(self.mass.to(generator.device), batch, replacement=True, generator=generator).cpu()
        a = None if self.geodesics is None else self.geodesics[pick]
        return self.x0[self.rows[pick]], self.x1[self.cols[pick]], a


def couple(
    x0: torch.Tensor, x1: torch.Tensor, method: str, generator: torch.Generator, eps: float | None = None
) -> torch.Tensor:
    """For each row of ``x0`` ``(n, d)`` the index of its partner in ``x1`` ``(m, d)``, drawn from a
    coupling of the two uniform empirical measures: ``"exact"`` (POT ``emd`` on ‖x − y‖², a
    permutation when n = m), ``"sinkhorn"`` (POT's log-domain Sinkhorn with ``eps`` on ‖x − y‖²/2)
    or ``"independent"``. The partner of row i is drawn from row i of the plan with ``generator``.
    Returns ``(n,)`` long indices."""
    import ot

    n, m = x0.shape[0], x1.shape[0]
    if method == "independent":
        return torch.randint(0, m, (n,), generator=generator, device=generator.device).to(x0.device)
    check_cost_size(n, m)
    a, b = np.full(n, 1.0 / n), np.full(m, 1.0 / m)
    cost = torch.cdist(x0.detach().double(), x1.detach().double()).pow(2).cpu().numpy()
    if method == "exact":
        plan, log = ot.emd(a, b, cost, numItermax=max(100_000, 50 * n * m), log=True)
        if log.get("warning"):
            raise RuntimeError(f"flow matching: the exact coupling did not converge ({log['warning']})")
    elif method == "sinkhorn":
        if eps is None or not eps > 0:
            raise ValueError(f"train.fm_coupling 'sinkhorn' needs σ > 0 (ε = σ²Δ), got ε = {eps!r}")
        plan = ot.sinkhorn(a, b, cost / 2, eps, method="sinkhorn_log", numItermax=5000, stopThr=1e-6, warn=False)
        off = float(np.abs(plan.sum(0) - b).max() * m)
        if not np.isfinite(off) or off > 0.05:  # POT only warns; a plan off its marginals is a wrong coupling
            raise RuntimeError(
                f"train.fm_coupling 'sinkhorn': the plan misses its marginals by {off:.1%} at ε = {eps:.3g} "
                f"(ε = σ²Δ is small for these distances); use train.fm_coupling 'exact'"
            )
    else:
        raise ValueError(f"train.fm_coupling must be one of {', '.join(COUPLINGS)}; got {method!r}")
    rows = torch.as_tensor(plan, dtype=torch.float64).clamp_min(0)
    rows = rows / rows.sum(1, keepdim=True)
    return torch.multinomial(rows.to(generator.device), 1, generator=generator).squeeze(1).to(x0.device)


def bridge(
    x0: torch.Tensor,
    x1: torch.Tensor,
    s: torch.Tensor,
    gap: torch.Tensor,
    sigma: torch.Tensor,
    generator: torch.Generator,
    mean: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Brownian-bridge points and their drift targets.

    Args:
        x0: the pairs' first ends ``(..., B, d)``.
        x1: their second ends, row i paired with row i of ``x0``.
        s: fraction of the gap ``(..., 1, 1)`` in [0, 1).
        gap: Δ = t₁ − t₀ ``(..., 1, 1)`` (model time).
        sigma: the noise, a scalar or ``(d,)``.
        generator: draws ε.
        mean: ``(μ, dμ/ds)`` of a curved path from x₀ to x₁ at s (``train.fm_interpolant
            "metric"``), each ``(..., B, d)``; ``None``: the straight line.

    Returns:
        ``(x_t, u)``, both ``(..., B, d)``. Straight: x_t = (1 − s) x₀ + s x₁ + σ √(s(1 − s)Δ) ε and
        u = (x₁ − x_t)/((1 − s)Δ). Around a curved mean μ (μ(0) = x₀, μ(1) = x₁): x_t = μ + σ √(s(1 − s)Δ) ε
        and u = μ̇ − (x_t − μ)/((1 − s)Δ), μ̇ = (dμ/ds)/Δ: the drift of the Brownian bridge of noise σ
        whose mean is μ (it is the straight formula when μ is the straight line).
    """
    eps = torch.randn(x0.shape, generator=generator, device=generator.device, dtype=x0.dtype).to(x0.device)
    if mean is None:
        xt = (1 - s) * x0 + s * x1 + sigma * torch.sqrt(s * (1 - s) * gap) * eps
        return xt, (x1 - xt) / ((1 - s) * gap)
    mu, dmu = mean
    xt = mu + sigma * torch.sqrt(s * (1 - s) * gap) * eps
    return xt, dmu / gap - (xt - mu) / ((1 - s) * gap)


class FlowMatchingBatch:
    """One iteration's regression problem for one series: ``xt`` and ``target`` ``(M, B, d)``,
    ``t`` ``(M, 1)`` (model time), ``weight`` ``(M,)`` = 1 − s."""

    def __init__(self, xt, target, t, weight):
        self.xt, self.target, self.t, self.weight = xt, target, t, weight


def flow_matching_batch(
    series,
    sigma: torch.Tensor,
    *,
    n_times: int,
    batch: int,
    coupling: str,
    generator: torch.Generator,
    metrics: Callable[[int], object] | None = None,
    plans: Callable[[int], GlobalPlan] | None = None,
) -> FlowMatchingBatch:
    """Draw the bridged populations of one series (see the module docstring; ``series.data`` and
    ``series.ts`` in model units, ``series.fit_idx`` the training indices ≥ 1). ``metrics``: for
    ``train.fm_interpolant "metric"``, a callable ``g ↦`` the :class:`~mfsde.training._geodesic.RBFMetric`
    of gap ``g`` (between the g-th and (g+1)-th training times); the bridges then follow each pair's
    geodesic in it instead of the straight line. ``plans``: for ``coupling "global"``, a callable
    ``g ↦`` the :class:`GlobalPlan` of gap ``g``, from which the gap's pairs are drawn (with the
    geodesics the plan solved for its entries, where it was built with the gap's metric)."""
    from mfsde.training import _geodesic

    idx = [0] + list(series.fit_idx)
    times = series.ts[idx]
    t0, t_end = float(times[0]), float(times[-1])
    dev, dtype = series.data[0].device, series.data[0].dtype
    u = torch.rand(n_times, generator=generator, device=generator.device, dtype=torch.float64).cpu()
    t = t0 + u * (t_end - t0)
    tt = times.double().cpu()
    k = (torch.searchsorted(tt, t, right=True) - 1).clamp(0, len(idx) - 2)
    gap = tt[k + 1] - tt[k]
    s = ((t - tt[k]) / gap).clamp(0.0, 1.0 - 1e-6)
    pairs = {}  # one minibatch and coupling per gap visited, shared by the times that fall in it
    if coupling == "global" and plans is None:
        raise ValueError("train.fm_coupling 'global' needs the gaps' plans (plans=)")
    for g in sorted(set(k.tolist())):
        geo = None
        if coupling == "global":
            a, b, geo = plans(g).sample(batch, generator)
        else:
            a = draw_initial(series.data[idx[g]], batch, generator)
            b = draw_initial(series.data[idx[g + 1]], batch, generator)
            eps = float((sigma.double().pow(2).mean() * (tt[g + 1] - tt[g])).item()) if coupling == "sinkhorn" else None
            b = b[couple(a, b, coupling, generator, eps)]
        if metrics is not None and geo is None:
            geo = _geodesic.geodesic(a, b, metrics(g))
        pairs[g] = (a, b, None if metrics is None else geo)
    x0 = torch.stack([pairs[int(g)][0] for g in k])
    x1 = torch.stack([pairs[int(g)][1] for g in k])
    s_, gap_ = s.to(dev, dtype).view(-1, 1, 1), gap.to(dev, dtype).view(-1, 1, 1)
    mean = None
    if metrics is not None:
        means = [
            _geodesic.path(pairs[int(g)][0], pairs[int(g)][1], pairs[int(g)][2], sv.view(1)) for g, sv in zip(k, s_)
        ]
        mean = (torch.stack([m[0][:, 0] for m in means]), torch.stack([m[1][:, 0] for m in means]))
    xt, target = bridge(x0, x1, s_, gap_, sigma.to(dev, dtype), generator, mean)
    return FlowMatchingBatch(xt, target, t.to(dev, dtype).view(-1, 1), (1 - s).to(dev, dtype))


def flow_matching_loss(
    drift, fb: FlowMatchingBatch, random_batch: int | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """mean over times and cells of (1 − s)‖f(x_t, ρ_t) − u‖² for a drift ``f(x, t)`` on
    ``(M, B, d)`` populations (each of the M rows a population at its own time ``t`` ``(M, 1)``).
    With ``random_batch`` the cells of every population interact within random groups of that
    size (a permutation drawn from ``generator``), as the simulation's random batch method."""
    m, b = fb.xt.shape[0], fb.xt.shape[-2]

    def timed(x, _t=None):  # each population's own time, broadcast over its (grouped) cells
        return drift(x, fb.t.view(m, *([1] * (x.dim() - 2))))

    f_eval = timed
    if random_batch is not None and random_batch < b:
        from mfsde.solvers._sdeint import random_batch_drift

        perm = torch.randperm(b, generator=generator, device=generator.device).to(fb.xt.device)
        f_eval = random_batch_drift(timed, perm, random_batch)
    f = f_eval(fb.xt)
    return (fb.weight.view(-1, 1) * (f - fb.target).pow(2).sum(-1)).mean()


def diffusion_sigma(diffusion) -> torch.Tensor:
    """The constant diagonal σ (scalar or ``(d,)``, detached) flow matching bridges with; a
    one-line error for noise it cannot bridge."""
    kind = getattr(diffusion, "kind", None)
    if not diffusion.additive or kind not in ("scalar", "per_dimension"):
        raise ValueError(
            f"train.method flow matching needs constant diagonal noise (model.noise 'diagonal'); "
            f"this model's noise is {kind!r}: use train.method 'simulation'"
        )
    sigma = diffusion.constant().detach()
    if not bool(torch.isfinite(sigma).all()) or bool((sigma < 0).any()):
        raise ValueError(f"flow matching needs a finite σ ≥ 0, got {sigma.tolist()}")
    return sigma
