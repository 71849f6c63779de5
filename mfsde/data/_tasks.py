"""Held-out time-point tasks: which snapshot indices supervise training and which are evaluated.

Indices refer to the snapshot times ``0..T-1``; index 0 (the initial population, from which
cells are drawn to start the simulation) is always a training time. The named tasks are those
of scIMF's protocol (../shared/docs/scimf.md):

==============  ====  =========================================
name            T     held out
==============  ====  =========================================
zb_easy         12    4, 6, 8               (interpolation)
zb_medium       12    10, 11                (extrapolation)
zb_hard         12    2, 4, 6, 8, 10, 11    (both)
mef_easy        19    5, 10, 15
mef_medium      19    16, 17, 18
mef_hard        19    5, 7, 9, 11, 15, 16, 17, 18
panc_loo_k      8     k, for k = 2..7
==============  ====  =========================================

Generic tasks for any ``T`` are parsed from strings by :func:`get_task`:
``"interpolate:2,3"``, ``"extrapolate:2"`` (the last 2), ``"loo:2"``, ``"heldout:2,5"`` (any
indices except 0) and ``"all"`` (no held-out time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


class TaskError(ValueError):
    """An invalid task (overlapping / out-of-range indices, t0 held out…)."""


class UnknownTaskError(KeyError):
    """No task of that name; the message lists the available ones."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _as_indices(values, what: str, name: str) -> list[int]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TaskError(f"task {name!r}: {what} must be a sequence of time-point indices, got {values!r}")
    out = []
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise TaskError(f"task {name!r}: {what} indices must be integers, got {v!r}")
        out.append(int(v))
    dup = sorted({v for v in out if out.count(v) > 1})
    if dup:
        raise TaskError(f"task {name!r}: duplicate {what} index(es) {dup}")
    return sorted(out)


@dataclass
class Task:
    """Training and held-out time-point indices.

    Args:
        name: task name (recorded with runs).
        train: indices supervised in training; must contain 0 and at least one more index.
        heldout: indices never seen in training (evaluated); disjoint from ``train``, no 0.
        n_times: number of snapshot times the task is defined for (``None``: not fixed; then
            only :meth:`check` against a data set can find out-of-range indices).
    """

    name: str
    train: list[int]
    heldout: list[int]
    n_times: int | None = field(default=None)

    def __post_init__(self) -> None:
        name = str(self.name)
        self.name = name
        self.train = _as_indices(self.train, "train", name)
        self.heldout = _as_indices(self.heldout, "heldout", name)
        neg = [i for i in self.train + self.heldout if i < 0]
        if neg:
            raise TaskError(f"task {name!r}: negative time-point index(es) {sorted(neg)}")
        if 0 in self.heldout:
            raise TaskError(
                f"task {name!r}: time index 0 is the initial population and is always trained; it cannot be held out"
            )
        overlap = sorted(set(self.train) & set(self.heldout))
        if overlap:
            raise TaskError(f"task {name!r}: index(es) {overlap} are both trained and held out")
        if 0 not in self.train:
            raise TaskError(f"task {name!r}: time index 0 (the initial population) must be in train, got {self.train}")
        if len(self.train) < 2:
            raise TaskError(f"task {name!r}: need at least 2 training times (0 and a target), got {self.train}")
        if self.n_times is not None:
            if isinstance(self.n_times, bool) or not isinstance(self.n_times, (int, np.integer)) or self.n_times < 2:
                raise TaskError(f"task {name!r}: n_times must be an integer >= 2, got {self.n_times!r}")
            self.n_times = int(self.n_times)
            self.check(self.n_times)

    def check(self, n_times: int) -> Task:
        """Raise :class:`TaskError` unless every index is in ``0..n_times-1`` (and ``n_times`` agrees
        with the task's own ``n_times``). Returns the task."""
        if self.n_times is not None and n_times != self.n_times:
            raise TaskError(
                f"task {self.name!r} is defined for {self.n_times} time points, but the data have {n_times}"
            )
        out = sorted(i for i in self.train + self.heldout if i >= n_times)
        if out:
            raise TaskError(
                f"task {self.name!r}: index(es) {out} out of range for {n_times} time points (valid: 0..{n_times - 1})"
            )
        return self

    @property
    def kind(self) -> str:
        """``"interpolation"`` (every held-out index before the last training one), ``"extrapolation"``
        (all after), ``"both"`` or ``"none"`` (nothing held out)."""
        if not self.heldout:
            return "none"
        last = max(self.train)
        before = [i < last for i in self.heldout]
        return "interpolation" if all(before) else "extrapolation" if not any(before) else "both"

    def unused(self, n_times: int | None = None) -> list[int]:
        """Indices neither trained nor held out."""
        n = self.n_times if n_times is None else n_times
        if n is None:
            raise ValueError("pass n_times: the task does not fix it")
        return [i for i in range(n) if i not in self.train and i not in self.heldout]

    def split(self, snapshots):
        """``(training Snapshots, {heldout index: (n_k, d) array})`` after :meth:`check`."""
        self.check(snapshots.n_times)
        return snapshots.subset(self.train), {i: snapshots.data[i] for i in self.heldout}

    def to_dict(self) -> dict:
        return {"name": self.name, "train": list(self.train), "heldout": list(self.heldout), "n_times": self.n_times}

    @classmethod
    def from_dict(cls, d: dict) -> Task:
        return cls(d["name"], d["train"], d["heldout"], d.get("n_times"))


def _check_n(n_times: int) -> int:
    if isinstance(n_times, bool) or not isinstance(n_times, (int, np.integer)) or n_times < 2:
        raise TaskError(f"n_times must be an integer >= 2, got {n_times!r}")
    return int(n_times)


def _fmt(idx: Sequence[int]) -> str:
    return ",".join(str(i) for i in idx)


def explicit(n_times: int, heldout: Sequence[int], name: str | None = None) -> Task:
    """Hold out ``heldout`` (any indices except 0); train on all the others."""
    n = _check_n(n_times)
    h = _as_indices(heldout, "heldout", name or "heldout")
    return Task(name or (f"heldout:{_fmt(h)}" if h else "all"), [i for i in range(n) if i not in h], h, n)


def interpolation(n_times: int, heldout: Sequence[int], name: str | None = None) -> Task:
    """Hold out interior time points (each strictly between 0 and the last index ``n_times-1``)."""
    n = _check_n(n_times)
    h = _as_indices(heldout, "heldout", name or "interpolate")
    if not h:
        raise TaskError("interpolation needs at least one held-out index")
    bad = [i for i in h if not 0 < i < n - 1]
    if bad:
        raise TaskError(
            f"interpolation: held-out index(es) {bad} are not interior time points of 0..{n - 1} "
            f"(valid: 1..{n - 2}); use extrapolation() or explicit() for the last ones"
        )
    return explicit(n, h, name or f"interpolate:{_fmt(h)}")


def extrapolation(n_times: int, k_last: int, name: str | None = None) -> Task:
    """Hold out the last ``k_last`` time points (train on ``0..n_times-k_last-1``)."""
    n = _check_n(n_times)
    if isinstance(k_last, bool) or not isinstance(k_last, (int, np.integer)) or not 1 <= k_last <= n - 2:
        raise TaskError(
            f"extrapolation: k_last must be an integer in 1..{n - 2} for {n} time points "
            f"(at least 2 training times remain), got {k_last!r}"
        )
    return explicit(n, list(range(n - int(k_last), n)), name or f"extrapolate:{int(k_last)}")


def leave_one_out(n_times: int, indices: Sequence[int] | None = None, prefix: str = "loo") -> list[Task]:
    """One task per held-out index (default every index ``1..n_times-1``), named ``"loo:k"``."""
    n = _check_n(n_times)
    idx = list(range(1, n)) if indices is None else _as_indices(indices, "heldout", prefix)
    return [explicit(n, [k], f"{prefix}:{k}") for k in idx]


def _named() -> dict[str, Task]:
    t = {
        "zb_easy": explicit(12, [4, 6, 8], "zb_easy"),
        "zb_medium": explicit(12, [10, 11], "zb_medium"),
        "zb_hard": explicit(12, [2, 4, 6, 8, 10, 11], "zb_hard"),
        "mef_easy": explicit(19, [5, 10, 15], "mef_easy"),
        "mef_medium": explicit(19, [16, 17, 18], "mef_medium"),
        "mef_hard": explicit(19, [5, 7, 9, 11, 15, 16, 17, 18], "mef_hard"),
    }
    for k in range(2, 8):
        t[f"panc_loo_{k}"] = explicit(8, [k], f"panc_loo_{k}")
    return t


#: The named tasks of scIMF's protocol (fixed ``n_times``).
TASKS: dict[str, Task] = _named()

#: String forms accepted by :func:`get_task` for any number of time points.
GENERIC_TASKS = ("interpolate:I,J,…", "extrapolate:K", "loo:I", "heldout:I,J,…", "all")


def available_tasks() -> list[str]:
    """Named tasks and the generic forms."""
    return list(TASKS) + list(GENERIC_TASKS)


def _parse_ints(arg: str, name: str) -> list[int]:
    try:
        return [int(x) for x in arg.split(",") if x.strip() != ""]
    except ValueError:
        raise TaskError(f"task {name!r}: expected comma-separated integers after ':', got {arg!r}") from None


def get_task(name, n_times: int | None = None) -> Task:
    """A task by name (or a :class:`Task`, checked against ``n_times``).

    Named tasks (:data:`TASKS`) fix their number of time points; if ``n_times`` is given it must
    agree. Generic forms (``"interpolate:2,3"``, ``"extrapolate:2"``, ``"loo:2"``,
    ``"heldout:2,5"``, ``"all"``) need ``n_times``. Unknown names raise :class:`UnknownTaskError`
    (a ``KeyError``) listing the available ones.
    """
    if isinstance(name, Task):
        return name.check(n_times) if n_times is not None else name
    if not isinstance(name, str):
        raise TypeError(f"task must be a name or a Task, got {type(name).__name__}")
    key = name.strip()
    if key in TASKS:
        task = TASKS[key]
        if n_times is not None:
            task.check(int(n_times))
        return Task(task.name, list(task.train), list(task.heldout), task.n_times)
    kind, sep, arg = key.partition(":")
    kind = kind.strip().lower()
    generic = {"interpolate", "extrapolate", "loo", "heldout", "explicit", "all"}
    if kind not in generic or (kind == "all") == bool(sep):
        raise UnknownTaskError(f"unknown task {name!r}; available: {available_tasks()}")
    if n_times is None:
        raise TaskError(f"task {name!r} is generic: pass n_times (the number of snapshot times)")
    if kind == "all":
        return explicit(n_times, [], "all")
    if kind == "extrapolate":
        vals = _parse_ints(arg, name)
        if len(vals) != 1:
            raise TaskError(f"task {name!r}: 'extrapolate:K' takes one integer K (the number of last times held out)")
        return extrapolation(n_times, vals[0])
    vals = _parse_ints(arg, name)
    if not vals:
        raise TaskError(f"task {name!r}: no index after ':'")
    if kind == "loo":
        if len(vals) != 1:
            raise TaskError(f"task {name!r}: 'loo:I' takes one index (use 'heldout:I,J' for several)")
        task = explicit(n_times, vals, f"loo:{vals[0]}")
    elif kind == "interpolate":
        task = interpolation(n_times, vals)
    else:
        task = explicit(n_times, vals)
    return task
