"""Shared pieces of the loaders: file checks, time columns, splitting rows by time and population."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mfsde.data._snapshots import SnapshotError, Snapshots, _fmt_time

PathLike = str | Path


class MissingColumnError(KeyError, ValueError):
    """A requested column / key is absent; the message lists what exists."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ""


def _require_module(name: str, what: str):
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise ImportError(f"{what} needs the optional dependency {name!r}: pip install mfsde[sc]") from e


def _check_file(path: PathLike) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"snapshot file not found: {str(p)!r}")
    if not p.is_file():
        raise FileNotFoundError(f"not a file: {str(p)!r}")
    return p


def _short(names: Sequence[str], n: int = 20) -> str:
    names = [str(c) for c in names]
    return str(names[:n])[:-1] + (f", … ({len(names)} in all)]" if len(names) > n else "]")


# -- times --------------------------------------------------------------------------------------
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _to_number(v: Any) -> float | None:
    """``v`` as a float: numbers, numeric strings and strings with a single number ("day2", "D4.5")."""
    if isinstance(v, (bool, np.bool_)):
        return None
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    s = str(v).strip()
    try:
        return float(s)
    except ValueError:
        pass
    found = _NUMBER.findall(s)
    if len(found) == 1:
        return float(found[0])
    return None


def _times_from_column(raw: np.ndarray, time_values, where: str, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Turn a per-cell time column into ``(times (T,), index (n_cells,))``.

    ``time_values``: ``None`` (raw values, parsed as numbers, are the times), a sequence (the
    ``k``-th smallest distinct raw value gets time ``time_values[k]``), or a mapping raw → time.
    """
    raw = np.asarray(raw, dtype=object) if np.asarray(raw).dtype.kind not in "biuf" else np.asarray(raw)
    if raw.dtype.kind in "f":
        n_bad = int((~np.isfinite(raw)).sum())
        if n_bad:
            raise SnapshotError(f"{where}: time column {column!r} has {n_bad} missing/non-finite value(s)")
    else:
        missing = [
            i
            for i, v in enumerate(raw)
            if v is None or (isinstance(v, float) and not np.isfinite(v)) or (isinstance(v, str) and v.strip() == "")
        ]
        if missing:
            raise SnapshotError(
                f"{where}: time column {column!r} has {len(missing)} missing value(s) (first at row {missing[0]})"
            )
    if isinstance(time_values, Mapping):
        keys = {}
        for k, v in time_values.items():
            keys[str(k)] = float(v)
            num = _to_number(k)
            if num is not None:
                keys.setdefault(f"#{num!r}", float(v))
        distinct = list(dict.fromkeys(raw.tolist()))

        def lookup(v):
            if str(v) in keys:
                return keys[str(v)]
            num = _to_number(v)
            if num is not None and f"#{num!r}" in keys:
                return keys[f"#{num!r}"]
            return None

        mapped = {v: lookup(v) for v in distinct}
        absent = [v for v, t in mapped.items() if t is None]
        if absent:
            raise SnapshotError(
                f"{where}: time value(s) {absent} of column {column!r} are not in time_values "
                f"(keys {list(time_values)})"
            )
        per_cell = np.array([mapped[v] for v in raw.tolist()], dtype=np.float64)
        times, index = np.unique(per_cell, return_inverse=True)  # raw values mapped to one time are merged
        return times, index
    if raw.dtype.kind in "biuf":
        per_cell = raw.astype(np.float64)
    else:
        distinct = list(dict.fromkeys(raw.tolist()))
        nums = {v: _to_number(v) for v in distinct}
        bad = [v for v, x in nums.items() if x is None]
        if bad:
            raise SnapshotError(
                f"{where}: time column {column!r} has non-numeric value(s) {bad[:5]}; pass "
                "time_values={raw_value: time, ...} to map them onto times"
            )
        if len(set(nums.values())) != len(nums):
            raise SnapshotError(
                f"{where}: time labels {distinct} of column {column!r} parse to repeated numbers; "
                "pass time_values={label: time} explicitly"
            )
        per_cell = np.array([nums[v] for v in raw.tolist()], dtype=np.float64)
    raw_times, index = np.unique(per_cell, return_inverse=True)
    if time_values is None:
        return raw_times, index
    tv = np.asarray(time_values, dtype=np.float64).ravel()
    if len(tv) != len(raw_times):
        raise SnapshotError(
            f"{where}: time_values has {len(tv)} entries but column {column!r} has {len(raw_times)} distinct "
            f"values {[_fmt_time(t) for t in raw_times]} (entry k is the time of the k-th smallest value)"
        )
    if not np.isfinite(tv).all() or not (np.diff(tv) > 0).all():
        raise SnapshotError(f"{where}: time_values must be finite and strictly increasing, got {tv.tolist()}")
    return tv, index


def _wrap(where: str, fn, *args, **kw) -> Snapshots:
    """Build Snapshots, prefixing validation errors with the file name."""
    try:
        return fn(*args, **kw)
    except SnapshotError as e:
        msg = str(e)
        raise SnapshotError(msg if msg.startswith(where) else f"{where}: {msg}") from None


def _split_by_time(
    values: np.ndarray, index: np.ndarray, times: np.ndarray, labels, feature_names, name, where: str
) -> Snapshots:
    order = np.argsort(index, kind="stable")
    bounds = np.searchsorted(index[order], np.arange(len(times) + 1))
    data = [values[order[bounds[k] : bounds[k + 1]]] for k in range(len(times))]
    labs = None
    if labels is not None:
        labels = np.asarray(labels).astype(str)
        labs = [labels[order[bounds[k] : bounds[k + 1]]] for k in range(len(times))]
    return _wrap(where, Snapshots, times=times, data=data, labels=labs, feature_names=feature_names, name=name)


# -- tables (CSV, DataFrame) -----------------------------------------------------------------------


def _split_by_population(
    pop_values, index: np.ndarray, times: np.ndarray, where: str, block, labels, feature_names, name: str
):
    """:class:`Populations` from per-row population values: population p gets the time points it
    has cells at; ``block(rows)`` returns the ``(len(rows), d)`` float array of those rows."""
    from mfsde.data._populations import PopulationError, Populations

    pop = np.asarray(pop_values).astype(str)
    lab = None if labels is None else np.asarray(labels).astype(str)
    out = []
    for p in dict.fromkeys(pop.tolist()):
        rows_p = np.flatnonzero(pop == p)
        present = np.unique(index[rows_p])
        if len(present) < 2:
            raise PopulationError(
                f"{where}: population {p!r} has cells at a single time point "
                f"({times[present[0]]:g}); each population needs at least 2"
            )
        rows = [rows_p[index[rows_p] == k] for k in present]
        try:
            snaps = Snapshots(
                times[present],
                [block(r) for r in rows],
                None if lab is None else [lab[r] for r in rows],
                feature_names,
                name=p,
            )
        except SnapshotError as e:
            raise PopulationError(f"{where}: population {p!r}: {e}") from None
        out.append((p, snaps))
    return Populations(out, name=name)
