"""Debiased Sinkhorn divergence between particle clouds (geomloss)."""

from __future__ import annotations

import math

import torch
from torch import nn

from mfsde._checks import check_population
from mfsde.losses._registry import LOSSES

try:  # geomloss's own Sinkhorn loop, ε-schedule and cost (its tensorized backend), to pass it a faster soft-min
    from geomloss._legacy.sinkhorn_divergence import log_weights, scaling_parameters, sinkhorn_cost, sinkhorn_loop
    from geomloss._legacy.sinkhorn_samples import cost_routines
except ImportError:  # another geomloss layout: SamplesLoss as is (same values, slower)
    sinkhorn_loop = None


class _LogSumExp(torch.autograd.Function):
    """``z.logsumexp(-1)`` with the same values, without torch's slow path for exp underflow.

    On CPU, ``exp`` of an argument below log(float32's smallest normal) ≈ −87.3 (a subnormal or zero
    result) runs 30–80× slower than in range. Sinkhorn's soft-min at a small ε is mostly such
    arguments (−C/ε for far pairs), so geomloss's tensorized loop spends most of its time there.
    Clamping the shifted arguments at log(tiny) + 1 leaves the sum, which is ≥ 1 (its largest term
    is exp(0)), unchanged in floating point: each clamped term adds < 2e-38 (float32). The
    gradient (the soft-max weights) differs by less than that per entry.
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor) -> torch.Tensor:
        low = math.log(torch.finfo(z.dtype).tiny) + 1.0
        top = z.amax(-1)
        m = top.masked_fill(top.abs() == math.inf, 0.0)  # as torch.logsumexp
        out = (z - m.unsqueeze(-1)).clamp_(min=low).exp_().sum(-1).log_().add_(m)
        out = out.masked_fill(top == -math.inf, -math.inf)  # a row of −inf only: −inf, as torch
        ctx.save_for_backward(z, out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        z, out = ctx.saved_tensors
        low = math.log(torch.finfo(z.dtype).tiny) + 1.0
        return grad.unsqueeze(-1) * (z - out.unsqueeze(-1)).clamp_(min=low).exp_()


def _softmin(eps: float, C_xy: torch.Tensor, h_y: torch.Tensor) -> torch.Tensor:
    """geomloss's ``softmin_tensorized`` (f_i = −ε log Σ_j exp(h_j − C_ij/ε)) with :class:`_LogSumExp`."""
    B = C_xy.shape[0]
    return -eps * _LogSumExp.apply(h_y.view(B, 1, -1) - C_xy / eps).view(B, -1)


def _sinkhorn_tensorized(a, x, b, y, *, p, blur, reach, scaling, debias) -> torch.Tensor:
    """geomloss's ``sinkhorn_tensorized`` step for step, with :func:`_softmin`: ``(B,)`` values for
    weights ``a`` ``(B, N)``, ``b`` ``(B, M)`` and points ``x`` ``(B, N, D)``, ``y`` ``(B, M, D)``."""
    cost = cost_routines[p]
    C_xy, C_yx = cost(x, y.detach()), cost(y, x.detach())
    C_xx = cost(x, x.detach()) if debias else None
    C_yy = cost(y, y.detach()) if debias else None
    _, eps, eps_list, rho = scaling_parameters(x, y, p, blur, reach, None, scaling)
    f_aa, g_bb, g_ab, f_ba = sinkhorn_loop(
        _softmin, log_weights(a), log_weights(b), C_xx, C_yy, C_xy, C_yx, eps_list, rho, debias=debias
    )
    return sinkhorn_cost(eps, rho, a, b, f_aa, g_bb, g_ab, f_ba, batch=True, debias=debias)


def subsample(y: torch.Tensor, n: int | None, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` rows of ``y`` ``(M, d)`` drawn without replacement (all of them if n is None or ≥ M)."""
    idx = subsample_index(y.shape[-2], n, generator, y.device)
    return y if idx is None else y[..., idx, :]


def subsample_index(m: int, n: int | None, generator: torch.Generator | None, device) -> torch.Tensor | None:
    """The indices :func:`subsample` keeps of ``m`` rows (``None``: all of them)."""
    if n is None or n >= m:
        return None
    if n < 1:
        raise ValueError(f"n_targets must be a positive int or None, got {n!r}")
    return torch.randperm(m, generator=generator, device="cpu")[:n].to(device)


def check_weights(x: torch.Tensor, log_w: torch.Tensor | None, mass) -> None:
    """One-line errors for the particle weights a weighted loss takes."""
    if log_w is not None and (not isinstance(log_w, torch.Tensor) or log_w.shape != x.shape[:-1]):
        got = tuple(log_w.shape) if isinstance(log_w, torch.Tensor) else type(log_w).__name__
        raise ValueError(f"log_w must have the shape of x without d, {tuple(x.shape[:-1])}; got {got}")
    if mass is not None and not float(mass) > 0:
        raise ValueError(f"mass must be > 0 (the target's mass relative to the initial population's), got {mass!r}")


@LOSSES.register("sinkhorn")
class SinkhornLoss(nn.Module):
    """S_ε(x, y): geomloss ``SamplesLoss("sinkhorn", p, blur, scaling)`` with uniform weights.

    Args:
        p: exponent of the ground cost; geomloss's p=2 cost is ‖x−y‖²/2 (half of POT's).
        blur: ε^(1/p), the entropic blur length.
        scaling: ε-scaling ratio (0.7–0.9 recommended by geomloss's maintainers).
        n_targets: compare against a random subset of this many target points per call
            (``None``: all of them). Uses ``generator`` for the draw.
        n_sources: also compare only a random subset of this many of the points of ``x``
            (``None``: all of them; drawn after the targets, with the same ``generator``). The
            debiased divergence holds the N × N problem S(x, x): with the tensorized backend that
            is N² floats (40 GB at N = 100,000), so very large simulated populations need this or
            a KeOps backend. Gradients reach every particle through the interaction, but the fit
            term itself only sees the subset.
        backend: geomloss backend; ``"tensorized"`` (default) never needs KeOps, ``"auto"``
            switches to KeOps for large problems and fails without pykeops.
        reach: unbalanced transport (geomloss ``reach``, a length in the data's units): mass may be
            created or destroyed at a cost of about reach^p instead of being transported farther.
            Only with weighted particles (``log_w``) and a target ``mass``; ``None``: balanced.
        fast: with the tensorized backend on CPU, run geomloss's Sinkhorn loop with a soft-min that
            avoids torch's slow path for exp underflow (:class:`_LogSumExp`): the same values and
            gradients (bit for bit in the tests), 1.7–2.7× faster on CPU at the default blur
            (``benchmarks/iteration_speed.py``). ``False``: geomloss's ``SamplesLoss`` as is.

    Call: ``loss(x, y)`` with ``x`` ``(..., N, d)`` and ``y`` ``(..., M, d)`` (same leading dims
    or ``y`` without them) → ``(...)``.

    Weighted particles (a mass channel): ``loss(x, y, log_w=…, mass=…)``. ``log_w`` ``(..., N)``
    are the log-weights of ``x``'s particles (each started at weight 1). Balanced (no ``reach``),
    the normalised laws are compared: x weighted by softmax(log_w). With ``reach``, x carries
    mass exp(log_w)/N (its mass relative to the initial population) and y carries ``mass`` (the
    observed mass relative to the initial time) spread evenly over its points.
    """

    #: takes particle weights (``log_w``, ``mass``): usable with a growth model
    weighted = True

    def __init__(
        self,
        p: int = 2,
        blur: float = 0.1,
        scaling: float = 0.7,
        n_targets: int | None = None,
        backend: str = "tensorized",
        debias: bool = True,
        n_sources: int | None = None,
        reach: float | None = None,
        fast: bool = True,
    ):
        super().__init__()
        from geomloss import SamplesLoss

        if p not in (1, 2):
            raise ValueError(f"p must be 1 or 2, got {p!r}")
        if not blur > 0:
            raise ValueError(f"blur must be > 0, got {blur!r}")
        if not 0 < scaling < 1:
            raise ValueError(f"scaling must be in (0, 1), got {scaling!r}")
        if backend == "auto" or backend in ("online", "multiscale"):
            try:
                import pykeops  # noqa: F401  (only whether it imports)
            except ImportError as err:
                raise ValueError(f"geomloss backend {backend!r} needs pykeops; use backend='tensorized'") from err
        for name, n in (("n_targets", n_targets), ("n_sources", n_sources)):
            if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
                raise ValueError(f"{name} must be a positive int or None, got {n!r}")
        self.p, self.blur, self.scaling, self.n_targets, self.backend = p, blur, scaling, n_targets, backend
        if reach is not None and not (isinstance(reach, (int, float)) and not isinstance(reach, bool) and reach > 0):
            raise ValueError(f"reach must be > 0 or None, got {reach!r}")
        self.n_sources, self.reach = n_sources, reach
        if not isinstance(fast, bool):
            raise ValueError(f"fast must be true or false, got {fast!r}")
        self.debias, self.fast = debias, fast and backend == "tensorized" and sinkhorn_loop is not None
        self._loss = SamplesLoss("sinkhorn", p=p, blur=blur, scaling=scaling, backend=backend, debias=debias)
        self._unbalanced = (
            None
            if reach is None
            else SamplesLoss("sinkhorn", p=p, blur=blur, scaling=scaling, backend=backend, debias=debias, reach=reach)
        )

    def forward(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator | None = None,
        *,
        log_w: torch.Tensor | None = None,
        mass: float | None = None,
    ) -> torch.Tensor:
        check_population(x, "x")
        check_population(y, "y", x.shape[-1])
        check_weights(x, log_w, mass)
        if self.reach is not None and (log_w is None or mass is None):
            raise ValueError("a sinkhorn loss with reach (unbalanced) needs the particles' log_w and the target's mass")
        y = subsample(y, self.n_targets, generator)
        idx = subsample_index(x.shape[-2], self.n_sources, generator, x.device)
        n_all = x.shape[-2]
        if idx is not None:
            x = x[..., idx, :]
            log_w = None if log_w is None else log_w[..., idx]
        lead = x.shape[:-2]
        if y.dim() == 2 and lead:
            y = y.expand(*lead, *y.shape)
        if y.shape[:-2] != lead:
            raise ValueError(f"x has leading dims {tuple(lead)} but y has {tuple(y.shape[:-2])}")
        if log_w is None:
            if not lead:
                return self._call(self._loss, x, y)
            out = self._call(self._loss, x.reshape(-1, *x.shape[-2:]), y.reshape(-1, *y.shape[-2:]).contiguous())
            return out.reshape(lead)
        n, m = x.shape[-2], y.shape[-2]
        if self.reach is None:  # the normalised laws
            a, b, loss = torch.softmax(log_w, dim=-1), y.new_full((*lead, m), 1.0 / m), self._loss
        else:  # the masses relative to the initial population (a sub-sample keeps its share of the mass)
            a = log_w.exp() / n_all * (n_all / n)
            b, loss = y.new_full((*lead, m), float(mass) / m), self._unbalanced
        flat = (-1, *x.shape[-2:])
        out = self._call(
            loss, a.reshape(-1, n), x.reshape(flat), b.reshape(-1, m), y.reshape(-1, m, y.shape[-1]).contiguous()
        )
        return out.reshape(lead)

    def _call(self, loss, *args) -> torch.Tensor:
        """``loss(x, y)`` or ``loss(a, x, b, y)`` (a geomloss ``SamplesLoss``), on the fast path where set."""
        if not self.fast or args[-1].device.type != "cpu":  # the slow exp path is the CPU's
            return loss(*args)
        if len(args) == 2:
            x, y = args
            a, b = loss.generate_weights(x), loss.generate_weights(y)
        else:
            a, x, b, y = args
        batched = x.dim() == 3
        if not batched:
            a, x, b, y = a.unsqueeze(0), x.unsqueeze(0), b.unsqueeze(0), y.unsqueeze(0)
        out = _sinkhorn_tensorized(
            a, x, b, y, p=self.p, blur=self.blur, reach=loss.reach, scaling=self.scaling, debias=self.debias
        )
        return out if batched else out[0]

    def extra_repr(self) -> str:
        return (
            f"p={self.p}, blur={self.blur}, scaling={self.scaling}, n_targets={self.n_targets}, "
            f"n_sources={self.n_sources}"
            + (f", reach={self.reach}" if self.reach is not None else "")
            + ("" if self.fast else ", fast=False")
        )


def sinkhorn(x: torch.Tensor, y: torch.Tensor, **options) -> torch.Tensor:
    """Functional form of :class:`SinkhornLoss`."""
    return SinkhornLoss(**options)(x, y)
