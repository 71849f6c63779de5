"""A model's noise, chosen by name in the config (``model.noise``, registry ``NOISES``).

* ``"diagonal"`` (the default): constant σ dW, σ a number or one per dimension (``model.sigma``).
* ``"affine"``: state-dependent general noise g(x) dW with g(x) = B + A x ∈ R^{d × m} and m
  independent Brownian motions per particle (:class:`AffineNoise`). It holds noise that a
  diagonal σ cannot: correlated noise, and noise along a curve, e.g. oscillators observed as
  points (cos θ, sin θ) whose noise √(2D) J y runs along the circle (B = 0, A = √(2D) J, m = 1).

Both are trained with the drift when ``model.learn_sigma`` is set (step size ``train.sigma_lr``)
and are in the units of ``model.sigma_units``: with ``"data"`` they are converted to model
units once the data scale is fitted (:func:`noise_to_model_units`).
"""

from __future__ import annotations

import torch
from torch import nn

from mfsde._checks import check_positive_int
from mfsde.registry import Registry
from mfsde.solvers._diffusion import Diffusion, _check_values

NOISES = Registry("noise model")


@NOISES.register("diagonal")
def diagonal_noise(dim: int, sigma, learnable: bool = False) -> Diffusion:
    """Constant diagonal noise σ (a number, or a ``(dim,)`` list/tensor)."""
    sigma = torch.as_tensor(sigma, dtype=torch.get_default_dtype())
    return Diffusion(sigma if sigma.dim() else float(sigma), learnable=learnable)


class AffineNoise(nn.Module):
    """g(x) = B + A x: ``(..., N, d)`` → ``(..., N, d, m)``, with B ``(d, m)`` and A ``(d, m, d)``
    (``g_ik(x) = B_ik + Σ_j A_ikj x_j``).

    Args:
        dim: d.
        rank: m, the number of independent Brownian motions per particle (default d).
        bias: B as nested lists ``(d, m)``; default σ·I (the first min(d, m) dimensions each
            get their own Brownian motion), which with A = 0 is the diagonal model's noise.
        slope: A as nested lists ``(d, m, d)``; default 0.
        sigma: σ of the default B (a number or ``(d,)``).
        learnable: B and A are ``nn.Parameter`` (else buffers).
    """

    elementwise = False

    def __init__(self, dim: int, rank: int | None = None, bias=None, slope=None, sigma=0.1, learnable: bool = False):
        super().__init__()
        d = int(dim)
        m = d if rank is None else check_positive_int(rank, "affine noise: rank")
        dtype = torch.get_default_dtype()
        if bias is None:
            s = torch.as_tensor(sigma, dtype=dtype)
            if s.dim() > 1 or (s.dim() == 1 and s.shape[0] != d):
                raise ValueError(f"affine noise: sigma must be a number or {d} values, got shape {tuple(s.shape)}")
            _check_values(s)  # the diagonal σ's own rule: finite and non-negative
            s = s.expand(d)
            B = torch.zeros(d, m, dtype=dtype)
            k = min(d, m)
            B[:k, :k] = torch.diag(s[:k])
        else:
            B = _matrix(bias, (d, m), "bias")
        A = torch.zeros(d, m, d, dtype=dtype) if slope is None else _matrix(slope, (d, m, d), "slope")
        self.dim, self.noise_dim = d, m
        if learnable:
            self.bias, self.slope = nn.Parameter(B), nn.Parameter(A)
        else:
            self.register_buffer("bias", B)
            self.register_buffer("slope", A)

    def forward(self, x: torch.Tensor, t=None) -> torch.Tensor:
        if x.shape[-1] != self.dim:
            raise ValueError(f"affine noise has d = {self.dim} but particles have d = {x.shape[-1]}")
        return self.bias.to(x) + torch.einsum("imj,...j->...im", self.slope.to(x), x)

    @torch.no_grad()
    def to_model_units_(self, scale) -> AffineNoise:
        """Data units → model units z = (x − loc) / s, t_model = t / τ: g_model(z) = S⁻¹ g(S z + loc) √τ,
        so B ← S⁻¹ (B + A loc) √τ and A_ikj ← A_ikj s_j / s_i √τ."""
        s, loc = scale.scale.to(self.bias), scale.loc.to(self.bias)
        root = float(scale.time_unit) ** 0.5
        B = (self.bias + torch.einsum("imj,j->im", self.slope, loc)) / s[:, None] * root
        A = self.slope * s[None, None, :] / s[:, None, None] * root
        self.bias.copy_(B)
        self.slope.copy_(A)
        return self

    def extra_repr(self) -> str:
        return f"dim={self.dim}, rank={self.noise_dim}"


@NOISES.register("affine")
def affine_noise(
    dim: int, sigma=0.1, learnable: bool = False, rank: int | None = None, bias=None, slope=None
) -> Diffusion:
    """General noise g(x) = B + A x with ``rank`` Brownian motions per particle (:class:`AffineNoise`)."""
    return Diffusion(AffineNoise(dim, rank, bias, slope, sigma, learnable))


def build_noise(name: str, dim: int, sigma, learnable: bool = False, **options) -> Diffusion:
    """The :class:`Diffusion` registered as ``name`` (``"diagonal"``, ``"affine"``)."""
    return NOISES.build(name, dim=dim, sigma=sigma, learnable=learnable, **options)


def noise_to_model_units(diffusion: Diffusion, sigma, scale) -> None:
    """Convert a model's noise from data units with the fitted ``scale`` (a
    :class:`~mfsde.model.DataScale`): a constant σ becomes σ √τ / s per dimension (``sigma``:
    the configured value); :class:`AffineNoise` converts itself."""
    fn = getattr(diffusion, "fn", None)
    if isinstance(fn, AffineNoise):
        fn.to_model_units_(scale)
        return
    if diffusion.kind not in ("scalar", "per_dimension"):
        raise ValueError(
            f"cannot convert a {diffusion.kind!r} diffusion to model units (model.sigma_units=data "
            "takes a constant σ or affine noise)"
        )
    s = scale.scale
    value = torch.as_tensor(sigma, dtype=s.dtype).expand(s.shape[0]) * float(scale.time_unit) ** 0.5 / s
    diffusion.set_(value)


def _matrix(value, shape: tuple, what: str) -> torch.Tensor:
    try:
        t = torch.as_tensor(value, dtype=torch.get_default_dtype())
    except (TypeError, ValueError) as e:
        raise ValueError(f"affine noise: {what} must be nested lists of numbers of shape {shape}: {e}") from None
    if tuple(t.shape) != shape:
        raise ValueError(f"affine noise: {what} must have shape {shape}, got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"affine noise: {what} contains NaN/Inf")
    return t.clone()
