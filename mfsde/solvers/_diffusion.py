"""Diffusion coefficients g: scalar, per-dimension, state-dependent diagonal, or general (d × m) noise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Union

import torch
from torch import nn

from mfsde._checks import check_positive_int

SigmaLike = Union[float, torch.Tensor, Callable[..., torch.Tensor], "Diffusion"]


class Diffusion(nn.Module):
    """Noise ``g(x, t)`` multiplying Brownian increments: ``dx = f dt + g ⊙ dW`` (diagonal kinds,
    ``dW`` shaped like ``x``) or ``dx = f dt + g dW`` (general kinds: ``g`` is ``d × m`` per
    particle and ``dW`` has ``m = noise_dim`` independent entries per particle).

    ``sigma`` may be
    - a number: the same σ for every particle and dimension (``kind == "scalar"``);
    - a tensor of shape ``(d,)``: one σ per dimension (``kind == "per_dimension"``);
    - a tensor of shape ``(d, m)``: one constant noise matrix for every particle
      (``kind == "matrix"``; correlated additive noise, covariance g gᵀ);
    - a callable ``g(x, t) → (..., N, d)`` (e.g. an ``nn.Module``): state-dependent diagonal
      noise (``kind == "diagonal"``). Declare ``elementwise = True`` on it when entry k of g
      depends on coordinate k only: torchsde's adjoint needs that (see :mod:`.torchsde_adapter`);
    - a callable ``g(x, t) → (..., N, d, m)`` with ``noise_dim=m`` (passed here or declared as
      the callable's ``noise_dim`` attribute): state-dependent general noise
      (``kind == "general"``), e.g. the rank-one noise √(2D) J y of oscillators observed on the
      circle (:meth:`mfsde.systems.NoisyKuramoto.diffusion`).

    Constant kinds are additive noise (Itô = Stratonovich). ``learnable=True`` makes a constant σ
    an ``nn.Parameter`` (stored as log σ, so it stays positive; not for a matrix).
    """

    def __init__(self, sigma: SigmaLike = 0.1, learnable: bool = False, noise_dim: int | None = None):
        super().__init__()
        self.fn = None
        if isinstance(sigma, Diffusion):
            raise TypeError("sigma is already a Diffusion; pass it directly")
        if callable(sigma) and not isinstance(sigma, torch.Tensor):
            if learnable:
                raise ValueError("learnable=True is for a constant sigma; a callable g(x, t) trains its own parameters")
            noise_dim = getattr(sigma, "noise_dim", None) if noise_dim is None else noise_dim
            self.kind = "diagonal" if noise_dim is None else "general"
            self.noise_dim = None if noise_dim is None else check_positive_int(noise_dim, "noise_dim")
            self.fn = sigma  # an nn.Module is registered once, as the submodule ``fn``
            self.elementwise = bool(getattr(sigma, "elementwise", False)) and noise_dim is None
            return
        value = torch.as_tensor(sigma, dtype=torch.get_default_dtype())
        if value.dim() > 2:
            raise ValueError(
                "sigma must be a number, a (d,) tensor, a (d, m) matrix or a callable g(x, t), "
                f"got shape {tuple(value.shape)}"
            )
        if value.dim() == 2:
            if learnable:
                raise ValueError("learnable=True needs a number or a (d,) sigma, not a (d, m) matrix")
            _check_values(value)
            if noise_dim is not None and check_positive_int(noise_dim, "noise_dim") != value.shape[1]:
                raise ValueError(f"noise_dim={noise_dim} but the sigma matrix has {value.shape[1]} columns")
            self.kind, self.noise_dim, self.elementwise = "matrix", int(value.shape[1]), False
            self.register_buffer("sigma_value", value)
            return
        if noise_dim is not None:
            raise ValueError("noise_dim is for a (d, m) matrix or a callable returning (..., N, d, m)")
        _check_values(value)
        self.kind = "scalar" if value.dim() == 0 else "per_dimension"
        self.noise_dim = None
        self.elementwise = True
        if learnable:
            if (value <= 0).any():
                raise ValueError("a learnable sigma must start positive")
            self.log_sigma = nn.Parameter(value.log())
        else:
            self.register_buffer("sigma_value", value)

    @property
    def general(self) -> bool:
        """True for d × m noise (``"matrix"``, ``"general"``): ``dW`` has ``noise_dim`` entries per particle."""
        return self.noise_dim is not None

    def noise_shape(self, shape) -> tuple:
        """The shape of ``dW`` for a population of shape ``shape`` ``(..., N, d)``."""
        shape = tuple(shape)
        return shape[:-1] + (self.noise_dim,) if self.general else shape

    def increment(self, g: torch.Tensor, dW: torch.Tensor) -> torch.Tensor:
        """The noise term ``g ⊙ dW`` (diagonal) or ``g dW`` (general), shaped like the state."""
        if not self.general:
            return g * dW
        if g.dim() == 2:  # one constant (d, m) matrix: a single GEMM, ~30× faster than N mat-vecs
            return dW @ g.mT
        return (g @ dW.unsqueeze(-1)).squeeze(-1)

    def frozen(self, x: torch.Tensor, t=None) -> FrozenDiffusion:
        """Constant noise evaluated once (kept in the autograd graph), with this one's kind."""
        return FrozenDiffusion(self(x, t), self)

    @property
    def additive(self) -> bool:
        """True when g does not depend on the state (Itô and Stratonovich agree)."""
        return self.fn is None

    def constant(self) -> torch.Tensor:
        """The constant σ (scalar, ``(d,)`` or ``(d, m)``); raises for state-dependent noise."""
        if self.fn is not None:
            raise ValueError("this diffusion is state-dependent; call it with (x, t)")
        return self.log_sigma.exp() if hasattr(self, "log_sigma") else self.sigma_value

    @torch.no_grad()
    def set_(self, value) -> Diffusion:
        """Overwrite a constant σ in place (same shape; a learnable one restarts from ``value``)."""
        if self.fn is not None:
            raise ValueError("set_ needs a constant diffusion, not a state-dependent one")
        old = self.constant()
        value = torch.as_tensor(value, dtype=old.dtype, device=old.device)
        if value.shape != old.shape:
            raise ValueError(f"sigma has shape {tuple(old.shape)}, got {tuple(value.shape)}")
        _check_values(value)
        if hasattr(self, "log_sigma"):
            if (value <= 0).any():
                raise ValueError("a learnable sigma must stay positive")
            self.log_sigma.copy_(value.log())
        else:
            self.sigma_value.copy_(value)
        return self

    def forward(self, x: torch.Tensor, t=None) -> torch.Tensor:
        """g(x, t): broadcastable to ``x`` (diagonal kinds; a scalar/``(d,)`` tensor for constant
        noise), or ``(d, m)`` / ``(..., N, d, m)`` (general kinds)."""
        if self.fn is None:
            s = self.constant()
            if s.dim() >= 1 and s.shape[0] != x.shape[-1]:
                what = "rows" if s.dim() == 2 else "entries"
                raise ValueError(f"sigma has {s.shape[0]} {what} but particles have d = {x.shape[-1]}")
            return s.to(dtype=x.dtype, device=x.device)
        g = self.fn(x, t)
        if self.general and tuple(g.shape) != tuple(x.shape) + (self.noise_dim,):
            raise ValueError(
                f"general noise g(x, t) must have shape {tuple(x.shape) + (self.noise_dim,)} "
                f"(..., N, d, noise_dim), got {tuple(g.shape)}"
            )
        return g

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}" + (f", noise_dim={self.noise_dim}" if self.general else "")


class FrozenDiffusion:
    """A constant diffusion's value, evaluated once per block of solver steps: calling it returns
    the value; :meth:`increment` is that of the :class:`Diffusion` it came from."""

    def __init__(self, value: torch.Tensor, source: Diffusion):
        self.value, self.increment = value, source.increment

    def __call__(self, x=None, t=None) -> torch.Tensor:
        return self.value


def _check_values(value: torch.Tensor) -> None:
    """A (d, m) matrix must be finite; a number or (d,) σ also non-negative."""
    if value.dim() == 2:
        if not torch.isfinite(value).all():
            raise ValueError("the sigma matrix contains NaN/Inf")
    elif not torch.isfinite(value).all() or (value < 0).any():
        raise ValueError(f"sigma must be finite and non-negative, got {value.tolist()}")


def as_diffusion(sigma: SigmaLike) -> Diffusion:
    return sigma if isinstance(sigma, Diffusion) else Diffusion(sigma)
