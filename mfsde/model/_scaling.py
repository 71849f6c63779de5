"""The data scale transform: the model works in standardised units, users see data units.

A preset's σ, Sinkhorn blur, ``dt`` and energy weight are numbers in *model units*. Data come in
any units (EMT lies in [0, 1] with a spread of ≈ 0.15; raw CITE PCA scores have a spread of
≈ 40; CITE days are 2, 3, 4, 7), so the model holds a :class:`DataScale` fitted on the
*training* time points only and maps in and out of it:

    z = (x − loc) / scale            s = (t − t₀) / time_unit

* ``standardize="global"`` (default): ``loc`` = mean of the pooled training cells, ``scale`` =
  one number, the root-mean-square per-dimension standard deviation (so the pooled cloud has
  unit spread on average, and distances keep their geometry: W1/W2 in model units are the data
  units' divided by ``scale``); ``"per_dim"``: each dimension its own standard deviation (unit
  variance per dimension; changes the geometry, so W1 is *not* a multiple of the data one);
  ``"none"``: identity.
* ``time_scale="mean_gap"`` (default): ``time_unit`` = the mean gap between consecutive
  training times, so a preset's ``dt = 0.1`` means ≈ 10 steps between two training snapshots
  whatever the time units (CITE's days 2, 4, 7 or time-point indices); ``"none"``: the times as
  given (minus t₀).

Metrics are always computed in data units (:func:`mfsde.evaluate` decodes the
simulated cells). The transform is a buffer of the model (``model.scale``), so it travels in
every checkpoint and reloads with the model; ``meta.json`` records it too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

STANDARDIZE = ("global", "per_dim", "none")
TIME_SCALES = ("mean_gap", "none")


def training_spread(parts, scale: DataScale) -> torch.Tensor:
    """The standard deviation per dimension ``(d,)`` of the pooled training cells in ``scale``'s
    model units; ``parts`` as :meth:`DataScale.fit_many_` takes them (a list of ``(snapshots,
    train)``). ``model.sigma_units = "spread"`` shares σ out in proportion to it."""
    cells = [np.asarray(snapshots.data[int(i)], dtype=np.float64) for snapshots, train in parts for i in train]
    if not cells:
        raise ValueError("training_spread needs at least one training time point")
    z = scale.encode(torch.as_tensor(np.concatenate(cells), dtype=torch.float64))
    return z.std(0, unbiased=False)


class DataScale(nn.Module):
    """An affine map between data and model units (buffers ``loc``, ``scale`` ``(d,)``, ``t0``,
    ``time_unit``); the identity until :meth:`fit_` is called.

    >>> scale = DataScale(10).fit_(snapshots, train=[0, 2, 3])
    >>> z = scale.encode(x)            # (..., N, d) data → model units
    >>> x = scale.decode(z)
    """

    def __init__(self, dim: int):
        super().__init__()
        self.dim = int(dim)
        self.register_buffer("loc", torch.zeros(self.dim))
        self.register_buffer("scale", torch.ones(self.dim))
        self.register_buffer("t0", torch.zeros(()))
        self.register_buffer("time_unit", torch.ones(()))

    @torch.no_grad()
    def fit_(
        self, snapshots, train: Sequence[int], standardize: str = "global", time_scale: str = "mean_gap"
    ) -> DataScale:
        """Fit in place on the cells of the time indices ``train`` (t₀ must be among them)."""
        return self.fit_many_([(snapshots, train)], standardize, time_scale)

    @torch.no_grad()
    def fit_many_(self, parts, standardize: str = "global", time_scale: str = "mean_gap") -> DataScale:
        """Fit in place on several populations: ``parts`` is a list of ``(snapshots, train)``.

        The cells of every population's training times are pooled; t₀ is the earliest first
        time; the time unit is the mean gap between consecutive training times over all
        populations (Σ spans / Σ gaps). With one population this is :meth:`fit_`."""
        if standardize not in STANDARDIZE:
            raise ValueError(f"standardize must be one of {', '.join(STANDARDIZE)}; got {standardize!r}")
        if time_scale not in TIME_SCALES:
            raise ValueError(f"time_scale must be one of {', '.join(TIME_SCALES)}; got {time_scale!r}")
        cells, t_first, span, gaps = [], [], 0.0, 0
        for snapshots, train in parts:
            train = sorted(int(i) for i in train)
            if not train:
                raise ValueError("DataScale.fit_ needs at least one training time index")
            times = np.asarray(snapshots.times, dtype=np.float64)
            cells += [np.asarray(snapshots.data[i], dtype=np.float64) for i in train]
            t_first.append(float(times[0]))
            span += float(times[train[-1]] - times[train[0]])
            gaps += len(train) - 1
        if not cells:
            raise ValueError("DataScale.fit_many_ needs at least one population")
        cells = np.concatenate(cells)
        if cells.shape[-1] != self.dim:
            raise ValueError(f"DataScale has dim {self.dim} but the data have dim {cells.shape[-1]}")
        loc, scale = np.zeros(self.dim), np.ones(self.dim)
        if standardize != "none":
            loc = cells.mean(0)
            std = cells.std(0)
            if standardize == "global":
                scale = np.full(self.dim, float(np.sqrt(np.mean(std**2))))
            else:
                scale = std.copy()
            # constant dimensions (or a single cell) keep unit scale instead of dividing by zero
            tiny = scale <= 1e-12 * max(1.0, float(np.abs(cells).max(initial=0.0)))
            scale[tiny] = 1.0
        self.loc.copy_(torch.as_tensor(loc, dtype=self.loc.dtype))
        self.scale.copy_(torch.as_tensor(scale, dtype=self.scale.dtype))
        self.t0.fill_(min(t_first))
        unit = span / gaps if time_scale == "mean_gap" and gaps > 0 and span > 0 else 1.0
        self.time_unit.fill_(unit)
        return self

    # -- maps ---------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Data → model units, ``(..., d)``."""
        return (x - self.loc.to(x)) / self.scale.to(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Model → data units, ``(..., d)``."""
        return z * self.scale.to(z) + self.loc.to(z)

    def encode_times(self, t) -> torch.Tensor:
        """Data times → model times ``(t − t₀) / time_unit`` (float64 in, the buffers' dtype out)."""
        t = torch.as_tensor(np.asarray(t, dtype=np.float64))
        return ((t - float(self.t0)) / float(self.time_unit)).to(self.loc.dtype)

    def decode_velocity(self, v: torch.Tensor) -> torch.Tensor:
        """A drift in model units → data units per data time unit, ``(..., d)``."""
        return v * self.scale.to(v) / float(self.time_unit)

    @property
    def is_identity(self) -> bool:
        return bool(
            (self.loc == 0).all() and (self.scale == 1).all() and float(self.t0) == 0 and float(self.time_unit) == 1
        )

    def to_dict(self) -> dict:
        """JSON-friendly record (what ``meta.json`` stores under ``"scale"``)."""
        return {
            "loc": self.loc.tolist(),
            "scale": self.scale.tolist(),
            "t0": float(self.t0),
            "time_unit": float(self.time_unit),
        }

    def extra_repr(self) -> str:
        s = self.scale
        sc = (
            f"{float(s[0]):.4g}" if bool((s == s[0]).all()) else f"per-dim [{float(s.min()):.3g}, {float(s.max()):.3g}]"
        )
        return f"dim={self.dim}, scale={sc}, t0={float(self.t0):g}, time_unit={float(self.time_unit):.4g}"


class DataUnitsDrift(nn.Module):
    """A model-units drift seen in data units: ``forward(x, t)`` with ``x`` ``(..., N, d)`` in data
    units and ``t`` on the data time axis *relative to t₀* (``t − t₀``), returning data units per
    data time unit. ``.intra`` / ``.inter`` (when the wrapped drift has them) are wrapped alike,
    so code written for a drift in data coordinates (e.g. :mod:`mfsde.evaluation`) works on
    a standardised model unchanged."""

    def __init__(self, drift: nn.Module, scale: DataScale):
        super().__init__()
        self.drift, self.scale = drift, scale
        self.dim = getattr(drift, "dim", scale.dim)
        for part in ("intra", "inter"):
            module = getattr(drift, part, None)
            if isinstance(module, nn.Module):
                # stored outside _modules: the parts are already parameters of self.drift
                object.__setattr__(self, f"_{part}", DataUnitsDrift(module, scale))

    @property
    def intra(self):
        return getattr(self, "_intra", None)

    @property
    def inter(self):
        return getattr(self, "_inter", None)

    def forward(self, x: torch.Tensor, t=None) -> torch.Tensor:
        s = None if t is None else torch.as_tensor(t, dtype=x.dtype, device=x.device) / float(self.scale.time_unit)
        return self.scale.decode_velocity(self.drift(self.scale.encode(x), s))
