"""Run any mfsde drift through torchsde (every method, and ``sdeint_adjoint`` where valid).

torchsde's state is 2-D ``(batch, channels)``: each leading population becomes one torchsde
batch row and its ``N × d`` particle coordinates the channels, so the drift still sees whole
populations. Noise is diagonal (``noise_type="diagonal"``) in Itô form.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from mfsde._checks import check_population
from mfsde.solvers._diffusion import SigmaLike, as_diffusion
from mfsde.solvers._grid import check_times


class TorchsdeSDE(nn.Module):
    """A torchsde SDE object (``f``, ``g``) wrapping ``drift(x, t)`` and a diffusion.

    Args:
        drift: mfsde drift ``(..., N, d) → (..., N, d)``.
        sigma: anything :class:`~mfsde.solvers.Diffusion` accepts.
        shape: ``(N, d)`` of one population.
    """

    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(self, drift, sigma: SigmaLike, shape: tuple[int, int]):
        super().__init__()
        self.drift = drift
        self.diffusion = as_diffusion(sigma)
        if self.diffusion.general:
            raise ValueError(
                f"the torchsde backend takes diagonal noise only, got {self.diffusion.kind!r} "
                "(d × m) noise; use mfsde.sdeint"
            )
        self.shape = tuple(shape)
        self.n_f = self.n_g = 0  # evaluation counters

    def _unflat(self, y: torch.Tensor) -> torch.Tensor:
        return y.reshape(y.shape[0], *self.shape)

    def f(self, t, y):
        self.n_f += 1
        return self.drift(self._unflat(y), t).reshape(y.shape)

    def g(self, t, y):
        self.n_g += 1
        x = self._unflat(y)
        return torch.broadcast_to(self.diffusion(x, t), x.shape).reshape(y.shape)


def _has_dropout(module) -> bool:
    return isinstance(module, nn.Module) and any(
        isinstance(m, nn.Dropout) or (getattr(m, "dropout", 0) or 0) > 0 for m in module.modules() if m.training
    )


def torchsde_sdeint(
    drift,
    x0: torch.Tensor,
    ts,
    *,
    sigma: SigmaLike = 0.1,
    dt: float = 0.1,
    method: str = "euler",
    adjoint: bool = False,
    bm=None,
    **kwargs,
) -> torch.Tensor:
    """``torchsde.sdeint`` (or ``sdeint_adjoint``) on an mfsde drift; returns ``(T, ..., N, d)``.

    Unlike :func:`mfsde.sdeint`, torchsde evaluates f and g once more than the number
    of steps and *interpolates linearly* at output times off its dt grid (too little variance
    in those snapshots). Use it for cross-checks and for torchsde's higher-order methods.

    The adjoint is refused (``ValueError``) for a diffusion whose entry k may depend on other
    coordinates (torchsde's adjoint drops ∂g_k/∂y_l, l ≠ k, and its gradients would be wrong);
    a drift with active dropout gets a warning, because the adjoint's backward re-simulation
    draws different dropout masks from the forward pass.
    """
    import torchsde

    x0 = check_population(x0, "x0")
    if not isinstance(ts, torch.Tensor):  # Python numbers straight to x0's dtype (no float32 round trip)
        ts = torch.as_tensor(ts, dtype=x0.dtype)
    ts = check_times(ts).to(device=x0.device, dtype=x0.dtype)
    sde = TorchsdeSDE(drift, sigma, x0.shape[-2:])
    lead = x0.shape[:-2]
    y0 = x0.reshape(-1, x0.shape[-2] * x0.shape[-1])
    if adjoint:
        if not sde.diffusion.elementwise:
            raise ValueError(
                "torchsde's adjoint assumes diagonal noise whose entry k depends on coordinate k only "
                "(∂g_k/∂y_l = 0 for l ≠ k); this diffusion does not declare `elementwise = True`, so "
                "adjoint gradients could be wrong. Use adjoint=False (backprop through the solver)."
            )
        if _has_dropout(drift):
            warnings.warn(
                "the drift has active dropout: the adjoint's backward pass re-simulates the path with "
                "different dropout masks than the forward pass, so its gradients are inexact; call "
                "drift.eval() or use adjoint=False",
                stacklevel=2,
            )
        params = kwargs.pop("adjoint_params", None)
        if params is None:
            params = tuple(p for p in sde.parameters() if p.requires_grad)
        ys = torchsde.sdeint_adjoint(sde, y0, ts, method=method, dt=dt, bm=bm, adjoint_params=params, **kwargs)
    else:
        ys = torchsde.sdeint(sde, y0, ts, method=method, dt=dt, bm=bm, **kwargs)
    return ys.reshape(len(ts), *lead, *x0.shape[-2:])


def brownian_interval(x0: torch.Tensor, t0: float, t1: float, seed: int = 0):
    """A torchsde ``BrownianInterval`` shaped for :func:`torchsde_sdeint` on ``x0``, plus an
    mfsde-shaped view ``bm(t_a, t_b) → (..., N, d)`` for :func:`mfsde.sdeint`'s ``bm=``.
    Both draw the same increments, so the two solvers can be compared path by path."""
    import torchsde

    flat = (math.prod(x0.shape[:-2]) if x0.dim() > 2 else 1, x0.shape[-2] * x0.shape[-1])
    bi = torchsde.BrownianInterval(t0=t0, t1=t1, size=flat, dtype=x0.dtype, device=x0.device, entropy=seed)
    return bi, (lambda ta, tb: bi(ta, tb).reshape(x0.shape))
