"""The :class:`Snapshots` container: unpaired cell populations observed at increasing times.

A data set for mfsde is a list of point clouds ``data[k]`` of shape ``(n_k, d)`` observed at
times ``times[k]``; cell counts ``n_k`` may differ between time points (no pairing between
cells of different times is assumed). Only numpy and torch are needed here.

Times are kept exactly as given (physical times such as CITE days 2, 3, 4, 7, or time-point
indices 0, 1, 2, … as in the CSV files). scIMF's public code trains on index units; use
:func:`normalise_times` / :meth:`Snapshots.with_times` to choose the time axis explicitly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch


class SnapshotError(ValueError):
    """Invalid snapshot data (ragged dimensions, NaN/Inf, bad times, empty time points…)."""


def _fmt_time(t: float) -> str:
    t = float(t)
    return str(int(t)) if t.is_integer() else repr(t)


def _check_finite(a: np.ndarray, what: str) -> None:
    """Raise naming ``what`` and how many NaN / Inf values (and cells) ``a`` ``(n, d)`` holds."""
    finite = np.isfinite(a)
    if not finite.all():
        n_bad, n_nan = int((~finite).sum()), int(np.isnan(a).sum())
        raise SnapshotError(
            f"{what} contains {n_bad} non-finite value(s) ({n_nan} NaN, {n_bad - n_nan} Inf) "
            f"in {int((~finite).any(axis=1).sum())} of {a.shape[0]} cells"
        )


@dataclass(eq=False)
class Snapshots:
    """Cells observed at ``T ≥ 2`` strictly increasing times.

    Attributes:
        times: ``(T,)`` float64, strictly increasing and finite.
        data: ``T`` arrays of shape ``(n_k, d)``, float32 (converted on construction), all finite.
        labels: optional per-cell string labels (e.g. cell type), one array of length ``n_k``
            per time point.
        feature_names: optional names of the ``d`` columns (genes, ``PC1``…).
        name: free-form name of the data set (recorded in run metadata).

    ``len(s)`` and iteration are over time points; ``s[k]`` is ``s.data[k]``.
    """

    times: np.ndarray
    data: list[np.ndarray]
    labels: list[np.ndarray] | None = None
    feature_names: list[str] | None = None
    name: str = ""

    def __post_init__(self) -> None:
        where = f"snapshots {self.name!r}: " if self.name else ""
        if isinstance(self.data, np.ndarray) and self.data.dtype != object and self.data.ndim == 3:
            self.data = list(self.data)
        if not isinstance(self.data, (list, tuple)):
            raise SnapshotError(f"{where}data must be a list of (n_k, d) arrays, got {type(self.data).__name__}")
        n = len(self.data)
        try:
            times = np.asarray(self.times, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise SnapshotError(f"{where}times must be numbers, got {self.times!r}") from e
        if times.ndim != 1:
            raise SnapshotError(f"{where}times must be 1-D, got shape {times.shape}")
        if len(times) != n:
            raise SnapshotError(f"{where}{len(times)} times but {n} data arrays")
        if n < 2:
            raise SnapshotError(
                f"{where}need at least 2 time points to learn dynamics, got {n}"
                + (f" (time {_fmt_time(times[0])})" if n == 1 else "")
            )
        if not np.isfinite(times).all():
            raise SnapshotError(f"{where}times must be finite, got {times.tolist()}")
        if not (np.diff(times) > 0).all():
            raise SnapshotError(f"{where}times must be strictly increasing, got {times.tolist()}")
        self.times = times

        arrays: list[np.ndarray] = []
        dim = None
        for k, a in enumerate(self.data):
            label = f"time point {k} (t={_fmt_time(times[k])})"
            if hasattr(a, "detach"):  # torch tensor
                a = a.detach().cpu().numpy()
            try:
                a = np.asarray(a, dtype=np.float32)
            except (TypeError, ValueError) as e:
                raise SnapshotError(f"{where}{label}: data must be numeric, got {type(a).__name__}") from e
            if a.ndim != 2:
                raise SnapshotError(f"{where}{label}: data must have shape (n_cells, d), got shape {a.shape}")
            if a.shape[0] == 0:
                raise SnapshotError(f"{where}{label} has no cells")
            if a.shape[1] == 0:
                raise SnapshotError(f"{where}{label} has 0 dimensions")
            if dim is None:
                dim = a.shape[1]
            elif a.shape[1] != dim:
                raise SnapshotError(
                    f"{where}ragged dimensions: {label} has d = {a.shape[1]} but time point 0 has d = {dim}"
                )
            _check_finite(a, where + label)
            arrays.append(a)
        self.data = arrays

        if self.labels is not None:
            if len(self.labels) != n:
                raise SnapshotError(f"{where}labels has {len(self.labels)} entries but there are {n} time points")
            labs = []
            for k, (lab, a) in enumerate(zip(self.labels, arrays)):
                lab = np.asarray(lab).astype(str)
                if lab.ndim != 1 or len(lab) != a.shape[0]:
                    raise SnapshotError(
                        f"{where}labels of time point {k} (t={_fmt_time(times[k])}) have shape {lab.shape} "
                        f"but that time point has {a.shape[0]} cells"
                    )
                labs.append(lab)
            self.labels = labs
        if self.feature_names is not None:
            names = [str(f) for f in self.feature_names]
            if len(names) != dim:
                raise SnapshotError(f"{where}{len(names)} feature names for data of dimension {dim}")
            self.feature_names = names
        self.name = str(self.name)

    # -- summary --------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Number of features ``d``."""
        return int(self.data[0].shape[1])

    @property
    def n_times(self) -> int:
        """Number of time points ``T``."""
        return len(self.data)

    @property
    def counts(self) -> list[int]:
        """Cells per time point, ``[n_0, …, n_{T-1}]``."""
        return [int(a.shape[0]) for a in self.data]

    @property
    def n_cells(self) -> int:
        """Total number of cells over all time points."""
        return int(sum(self.counts))

    def __len__(self) -> int:
        return self.n_times

    def __getitem__(self, k: int) -> np.ndarray:
        return self.data[k]

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self.data)

    def __repr__(self) -> str:
        head = f"Snapshots({self.name!r}, " if self.name else "Snapshots("
        times = ", ".join(_fmt_time(t) for t in self.times)
        extra = ""
        if self.labels is not None:
            extra += f", labels={len(np.unique(np.concatenate(self.labels)))} kinds"
        if self.feature_names is not None:
            shown = ", ".join(self.feature_names[:3]) + (", …" if self.dim > 3 else "")
            extra += f", features=[{shown}]"
        return (
            f"{head}T={self.n_times}, d={self.dim}, times=[{times}], "
            f"counts={self.counts} (total {self.n_cells}){extra})"
        )

    # -- access ---------------------------------------------------------------------------------
    def tensors(self, dtype: torch.dtype = torch.float32, device=None) -> list[torch.Tensor]:
        """The data as a list of torch tensors (``(n_k, d)`` each, default float32 on CPU)."""
        return [torch.as_tensor(a, dtype=dtype, device=device) for a in self.data]

    def index_of(self, time: float, atol: float = 1e-9) -> int:
        """Index ``k`` with ``times[k] == time`` (within ``atol``); ``KeyError`` listing the times otherwise."""
        hits = np.flatnonzero(np.abs(self.times - float(time)) <= atol)
        if len(hits) == 0:
            raise KeyError(f"time {time!r} is not a snapshot time; times are {[_fmt_time(t) for t in self.times]}")
        return int(hits[0])

    def subset(self, indices: Sequence[int]) -> Snapshots:
        """The time points ``indices`` (in increasing order; negative indices allowed), times unchanged."""
        idx = []
        for i in indices:
            if not isinstance(i, (int, np.integer)) or isinstance(i, bool):
                raise TypeError(f"subset takes integer time-point indices, got {i!r}")
            j = int(i) + self.n_times if int(i) < 0 else int(i)
            if not 0 <= j < self.n_times:
                raise IndexError(f"time-point index {i} out of range for {self.n_times} time points")
            idx.append(j)
        if len(set(idx)) != len(idx):
            raise ValueError(f"duplicate time-point indices in {list(indices)}")
        idx = sorted(idx)
        return Snapshots(
            times=self.times[idx],
            data=[self.data[i] for i in idx],
            labels=None if self.labels is None else [self.labels[i] for i in idx],
            feature_names=self.feature_names,
            name=self.name,
        )

    def all_cells(self) -> np.ndarray:
        """All cells stacked, ``(sum n_k, d)``, in time order."""
        return np.concatenate(self.data, axis=0)

    def cell_times(self) -> np.ndarray:
        """The time of each row of :meth:`all_cells`, ``(sum n_k,)`` float64."""
        return np.repeat(self.times, self.counts)

    def cell_time_indices(self) -> np.ndarray:
        """The time-point index of each row of :meth:`all_cells`, ``(sum n_k,)`` int64."""
        return np.repeat(np.arange(self.n_times), self.counts)

    def all_labels(self) -> np.ndarray | None:
        """All labels concatenated in the order of :meth:`all_cells` (``None`` without labels)."""
        return None if self.labels is None else np.concatenate(self.labels)

    # -- transformations --------------------------------------------------------------------------
    def map(
        self, fn: Callable[[np.ndarray], np.ndarray], feature_names: list[str] | None = None, name: str | None = None
    ) -> Snapshots:
        """Apply ``fn`` to each ``(n_k, d)`` array (e.g. a projection); ``fn`` must keep the rows.

        Feature names are kept when the dimension is unchanged and ``feature_names`` is not given,
        dropped otherwise.
        """
        out = []
        for k, a in enumerate(self.data):
            b = np.asarray(fn(a))
            if b.ndim != 2 or b.shape[0] != a.shape[0]:
                raise SnapshotError(
                    f"map: fn turned time point {k} of shape {a.shape} into shape {b.shape}; "
                    "it must return one row per cell"
                )
            out.append(b)
        if feature_names is None and self.feature_names is not None and out[0].shape[1] == self.dim:
            feature_names = self.feature_names
        return Snapshots(self.times.copy(), out, self.labels, feature_names, self.name if name is None else name)

    def with_times(self, times: Sequence[float]) -> Snapshots:
        """The same cells with a new time axis (e.g. ``normalise_times(s.times, "index")``)."""
        return Snapshots(np.asarray(times, dtype=np.float64), self.data, self.labels, self.feature_names, self.name)

    def to_dict(self) -> dict:
        """A JSON-serialisable summary (no cell data): name, times, counts, dim, features."""
        return {
            "name": self.name,
            "times": self.times.tolist(),
            "counts": self.counts,
            "dim": self.dim,
            "feature_names": self.feature_names,
            "has_labels": self.labels is not None,
        }


TIME_MODES = ("none", "index", "shift", "unit")


def normalise_times(times, mode: str = "index"):
    """Rescale a time axis (an array, or a :class:`Snapshots` whose times are replaced).

    Modes:
        ``"none"``: unchanged (the loaders' default: times are kept as given);
        ``"index"``: ``0, 1, …, T-1`` regardless of spacing (scIMF's public code integrates in
            time-point index units, with dt = 0.1 in those units);
        ``"shift"``: ``t - t_0`` (physical units, starting at 0);
        ``"unit"``: ``(t - t_0) / (t_{T-1} - t_0)``, in ``[0, 1]``.

    With unequal gaps (CITE days 2, 3, 4, 7) ``"index"`` and the physical modes give different
    dynamics; keep the original times if you need them for reporting.
    """
    if isinstance(times, Snapshots):
        return times.with_times(normalise_times(times.times, mode))
    t = np.asarray(times, dtype=np.float64)
    if t.ndim != 1 or len(t) < 1:
        raise ValueError(f"times must be a non-empty 1-D sequence, got shape {t.shape}")
    if not np.isfinite(t).all() or not (np.diff(t) > 0).all():
        raise ValueError(f"times must be finite and strictly increasing, got {t.tolist()}")
    if mode == "none":
        return t.copy()
    if mode == "index":
        return np.arange(len(t), dtype=np.float64)
    if mode == "shift":
        return t - t[0]
    if mode == "unit":
        if len(t) < 2:
            raise ValueError("mode 'unit' needs at least 2 times")
        return (t - t[0]) / (t[-1] - t[0])
    raise ValueError(f"unknown time mode {mode!r}; choose one of {list(TIME_MODES)}")
