"""Interpolants that follow the data: a data-density metric and its geodesics between coupled cells.

Straight-line interpolants between two snapshots cut through regions where no cell ever is.
Metric Flow Matching (Kapusniak et al. 2024) bends them towards the data by making movement
expensive where the data are sparse; ``train.fm_interpolant = "metric"`` does the same for the
bridges of mean-field flow matching (:mod:`mfsde.training._flow_matching`).

**The metric** (one per gap between consecutive training times, built from the gap's two
snapshots only, so a held-out time in between is never read): an RBF network

    h(x) = Σ_k w_k exp(−‖x − c_k‖² / (4 κ² s_k²)),   G(x) = I / (h(x) + ε),

with K centres c_k from k-means on the two snapshots, s_k the root mean squared per-coordinate
spread of cluster k about its centre, and weights w_k ≥ 10⁻⁴ fitted so that h ≈ 1 on the cells
(least squares, Adam). Off the data h → 0 and moving costs up to 1/ε times more. This is MFM's RBF
metric, isotropic, with its κ (MFM writes the width as λ_k = 0.5/(κ s_k)² in exp(−λ_k‖x − c_k‖²/2)).

**The geodesic** of each coupled pair (x₀, x₁): the path of least metric energy

    μ(s) = (1 − s) x₀ + s x₁ + Σ_{j=1..J} a_j sin(jπ s),   E = ∫₀¹ μ̇(s)ᵀ G(μ(s)) μ̇(s) ds,

with its J coefficients per pair fitted by L-BFGS from the straight line (a_j = 0) on an
M-point midpoint rule. Each pair is its own problem; nothing is learned across iterations, so a
run resumes bit-identically without extra state (MFM amortises the same minimisation in a
network instead). With minibatch couplings the pairs of each draw are solved as they come; with
``train.fm_coupling "global"`` the plan solves each of its entries once, when it is built
(:class:`~mfsde.training._flow_matching.GlobalPlan`), and every later draw of an entry reuses it.
With a constant metric the straight line is the geodesic and a_j stays 0.

The bridge around μ and its drift target are in
:func:`mfsde.training._flow_matching.bridge`.
"""

from __future__ import annotations

import math

import torch

#: the most cells of each snapshot a gap's metric (``train.fm_interpolant "metric"``) is built from
METRIC_CELLS = 2000
#: pairs per L-BFGS problem where a global plan solves the geodesics of all its entries at once
#: (the size of a default ``train.fm_batch``: the same problem size as a minibatch's solve)
GEODESIC_CHUNK = 256


def kmeans(x: torch.Tensor, k: int, generator: torch.Generator, iterations: int = 50) -> torch.Tensor:
    """``k`` centres ``(k, d)`` of the rows of ``x`` ``(n, d)`` by Lloyd's algorithm from a k-means++
    start drawn with ``generator`` (deterministic given it). An empty cluster keeps its centre."""
    n = x.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"train.fm_metric_centers must be between 1 and the {n} cells of the gap; got {k}")
    first = int(torch.randint(0, n, (1,), generator=generator, device=generator.device))
    centres = [x[first]]
    d2 = (x - x[first]).pow(2).sum(-1)
    for _ in range(1, k):
        total = d2.sum()
        if not total > 0:  # fewer distinct cells than centres: repeat one
            nxt = int(torch.randint(0, n, (1,), generator=generator, device=generator.device))
        else:
            nxt = int(torch.multinomial((d2 / total).to(generator.device), 1, generator=generator))
        centres.append(x[nxt])
        d2 = torch.minimum(d2, (x - x[nxt]).pow(2).sum(-1))
    c = torch.stack(centres)
    for _ in range(iterations):
        label = torch.cdist(x, c).argmin(1)
        sums = torch.zeros_like(c).index_add_(0, label, x)
        counts = torch.bincount(label, minlength=k).to(x.dtype).unsqueeze(1)
        new = torch.where(counts > 0, sums / counts.clamp_min(1), c)
        if torch.equal(new, c):
            break
        c = new
    return c


class RBFMetric:
    """The data-density metric G(x) = I / (h(x) + ε) of one gap (module docstring).

    Args:
        cells: the gap's two snapshots' cells, stacked ``(n, d)`` (model units).
        n_centers: K, the RBF centres (k-means).
        kappa: κ, the width of each centre in units of its cluster's spread.
        eps: ε, the floor under h (movement off the data costs up to 1/ε more).
        generator: draws the k-means start and the weights' minibatches.
        steps: Adam steps of the weights' least-squares fit.
    """

    def __init__(
        self,
        cells: torch.Tensor,
        n_centers: int,
        kappa: float,
        eps: float,
        generator: torch.Generator,
        steps: int = 1000,
    ):
        cells = cells.detach()
        self.eps = float(eps)
        self.centres = kmeans(cells, n_centers, generator)
        self._c2 = self.centres.pow(2).sum(-1)
        label = torch.cdist(cells, self.centres).argmin(1)
        spread2 = torch.zeros(n_centers, dtype=cells.dtype, device=cells.device)
        spread2.index_add_(0, label, (cells - self.centres[label]).pow(2).mean(-1))
        counts = torch.bincount(label, minlength=n_centers).to(cells.dtype)
        spread2 = spread2 / counts.clamp_min(1)
        # a centre alone in its cluster borrows the median spread of the others
        fallback = spread2[counts > 1].median() if bool((counts > 1).any()) else cells.var(0).mean()
        spread2 = torch.where(counts > 1, spread2, fallback).clamp_min(torch.finfo(cells.dtype).tiny)
        self.inv_width = 1.0 / (4.0 * float(kappa) ** 2 * spread2)  # (K,)
        w = torch.rand(n_centers, dtype=cells.dtype, generator=generator, device=generator.device).to(cells.device)
        w.requires_grad_(True)
        opt = torch.optim.Adam([w], lr=1e-2)
        batch = min(256, cells.shape[0])
        with torch.enable_grad():
            for _ in range(steps):
                idx = torch.randint(0, cells.shape[0], (batch,), generator=generator, device=generator.device)
                loss = (1 - self._h(cells[idx.to(cells.device)], w.clamp_min(1e-4))).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        self.weights = w.detach().clamp_min(1e-4)
        #: mean (1 − h)² over the gap's cells: how well h ≈ 1 holds on the data (0 is perfect)
        self.fit_error = float((1 - self.h(cells)).pow(2).mean())

    def to(self, device) -> RBFMetric:
        """This metric with its tensors on ``device`` (in place; returns it)."""
        self.centres, self.inv_width, self.weights, self._c2 = (
            t.to(device) for t in (self.centres, self.inv_width, self.weights, self._c2)
        )
        return self

    def _h(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        # ‖x − c‖² through one product (cheaper than cdist's backward); clamped at 0 against rounding
        d2 = (flat.pow(2).sum(-1, keepdim=True) - 2 * flat @ self.centres.T + self._c2).clamp_min(0)
        return (torch.exp(-d2 * self.inv_width) @ w).reshape(x.shape[:-1])

    def h(self, x: torch.Tensor) -> torch.Tensor:
        """The data density proxy h ``(...)`` at points ``x`` ``(..., d)``."""
        return self._h(x, self.weights)

    def inverse_scale(self, x: torch.Tensor) -> torch.Tensor:
        """1 / (h(x) + ε) ``(...)``: G(x) is this times the identity."""
        return 1.0 / (self.h(x) + self.eps)


def geodesic(
    x0: torch.Tensor,
    x1: torch.Tensor,
    metric: RBFMetric,
    *,
    n_basis: int = 3,
    n_nodes: int = 8,
    max_iter: int = 10,
) -> torch.Tensor:
    """The sine coefficients ``(B, J, d)`` of each pair's path of least metric energy.

    Args:
        x0: first ends ``(B, d)``; x1: second ends, row i paired with row i.
        metric: the gap's :class:`RBFMetric`.
        n_basis: J, sine modes of the deviation from the straight line.
        n_nodes: M, midpoint-rule nodes on [0, 1] for the energy.
        max_iter: L-BFGS iterations (strong-Wolfe line search) from the straight line.
    """
    x0, x1 = x0.detach(), x1.detach()
    s = (torch.arange(n_nodes, dtype=x0.dtype, device=x0.device) + 0.5) / n_nodes
    a = torch.zeros(x0.shape[0], n_basis, x0.shape[-1], dtype=x0.dtype, device=x0.device, requires_grad=True)
    opt = torch.optim.LBFGS([a], max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_change=1e-12)

    def energy():
        opt.zero_grad()
        mu, dmu = path(x0, x1, a, s)
        # the pairs' problems are independent: their summed energy has each pair's minimiser
        e = (metric.inverse_scale(mu) * dmu.pow(2).sum(-1)).mean(-1).sum()
        e.backward()
        return e

    with torch.enable_grad():
        opt.step(energy)
    return a.detach()


def path(x0: torch.Tensor, x1: torch.Tensor, a: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(μ(s), dμ/ds)``, each ``(B, S, d)``, of the sine-deformed paths with coefficients ``a``
    ``(B, J, d)`` at fractions ``s`` ``(S,)`` (or ``(B, S)``: one set of fractions per pair)."""
    j = torch.arange(1, a.shape[1] + 1, dtype=a.dtype, device=a.device)
    s = s if s.dim() == 2 else s.unsqueeze(0).expand(x0.shape[0], -1)
    arg = math.pi * s.unsqueeze(-1) * j  # (B, S, J)
    mu = (1 - s).unsqueeze(-1) * x0.unsqueeze(1) + s.unsqueeze(-1) * x1.unsqueeze(1)
    mu = mu + torch.einsum("bsj,bjd->bsd", torch.sin(arg), a)
    dmu = (x1 - x0).unsqueeze(1) + torch.einsum("bsj,bjd->bsd", math.pi * j * torch.cos(arg), a)
    return mu, dmu
