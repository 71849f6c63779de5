"""Diffusion coefficients g: scalar, per-dimension or state-dependent diagonal noise."""
from __future__ import annotations

from typing import Callable, Union

import torch
from torch import nn

SigmaLike = Union[float, torch.Tensor, Callable[..., torch.Tensor], "Diffusion"]


class Diffusion(nn.Module):
    """Diagonal noise ``g(x, t)`` multiplying independent Brownian increments, ``dx = f dt + g ⊙ dW``.

    ``sigma`` may be
    - a number: the same σ for every particle and dimension (``kind == "scalar"``);
    - a tensor of shape ``(d,)``: one σ per dimension (``kind == "per_dimension"``);
    - a callable ``g(x, t) → (..., N, d)`` (e.g. an ``nn.Module``): state-dependent diagonal
      noise (``kind == "diagonal"``). Declare ``elementwise = True`` on it when entry k of g
      depends on coordinate k only: torchsde's adjoint needs that (see :mod:`.torchsde_adapter`).

    Constant kinds are additive noise (Itô = Stratonovich). ``learnable=True`` makes a constant σ
    an ``nn.Parameter`` (stored as log σ, so it stays positive).
    """

    def __init__(self, sigma: SigmaLike = 0.1, learnable: bool = False):
        super().__init__()
        self.fn = None
        if isinstance(sigma, Diffusion):
            raise TypeError("sigma is already a Diffusion; pass it directly")
        if callable(sigma) and not isinstance(sigma, torch.Tensor):
            self.kind = "diagonal"
            self.fn = sigma
            self.elementwise = bool(getattr(sigma, "elementwise", False))
            if isinstance(sigma, nn.Module):
                self.module = sigma
            return
        value = torch.as_tensor(sigma, dtype=torch.get_default_dtype())
        if value.dim() > 1:
            raise ValueError(f"sigma must be a number, a (d,) tensor or a callable g(x, t), got shape {tuple(value.shape)}")
        _check_values(value)
        self.kind = "scalar" if value.dim() == 0 else "per_dimension"
        self.elementwise = True
        if learnable:
            if (value <= 0).any():
                raise ValueError("a learnable sigma must start positive")
            self.log_sigma = nn.Parameter(value.log())
        else:
            self.register_buffer("sigma_value", value)

    @property
    def additive(self) -> bool:
        """True when g does not depend on the state (Itô and Stratonovich agree)."""
        return self.fn is None

    def constant(self) -> torch.Tensor:
        """The constant σ (scalar or ``(d,)``); raises for state-dependent noise."""
        if self.fn is not None:
            raise ValueError("this diffusion is state-dependent; call it with (x, t)")
        return self.log_sigma.exp() if hasattr(self, "log_sigma") else self.sigma_value

    @torch.no_grad()
    def set_(self, value) -> "Diffusion":
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
        """g(x, t), broadcastable to ``x`` (a scalar/``(d,)`` tensor for constant noise)."""
        if self.fn is None:
            s = self.constant()
            if s.dim() == 1 and s.shape[0] != x.shape[-1]:
                raise ValueError(f"sigma has {s.shape[0]} entries but particles have d = {x.shape[-1]}")
            return s.to(dtype=x.dtype, device=x.device)
        return self.fn(x, t)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"


def _check_values(value: torch.Tensor) -> None:
    if not torch.isfinite(value).all() or (value < 0).any():
        raise ValueError(f"sigma must be finite and non-negative, got {value.tolist()}")


def as_diffusion(sigma: SigmaLike) -> Diffusion:
    return sigma if isinstance(sigma, Diffusion) else Diffusion(sigma)
