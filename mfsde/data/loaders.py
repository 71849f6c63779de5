"""Loaders that turn snapshot files into :class:`~mfsde.data.Snapshots`.

Formats (see ../shared/data/README.md):

- CSV (:func:`load_csv`): one row per cell, a time column (``samples`` = time index in the
  EMT / Weinreb / interacting-GRN files) and feature columns (``x1..xd``), optionally a label.
- One ``.npy`` per time point (:func:`load_npy`, :func:`load_npy_pattern`), e.g. the CITE files
  ``full_cite_pcas_50_day_{2,3,4,7}.npy``.
- A stacked ``.npy`` (:func:`load_npy_stack`): an object array of ``(n_k, d)`` arrays (the
  Bargaje ``Bifurcation.npy`` of shape (1, 8)) or a numeric ``(T, n, d)`` array.
- AnnData ``.h5ad`` (:func:`load_h5ad`): time in ``obs``; ``X``, a layer or an ``obsm`` key.
- In-memory: :func:`from_arrays`, :func:`from_dataframe`.

:func:`load` dispatches on the suffix. Times are kept as given (time indices for the CSVs,
whatever ``times=`` says otherwise); ``time_values`` maps the raw time values onto physical
times, and :func:`~mfsde.data.normalise_times` rescales them. pandas and anndata are imported
only when needed (``pip install mfsde[sc]``).
"""
from __future__ import annotations

import csv
import glob as _glob
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .snapshots import Snapshots, SnapshotError, _fmt_time

__all__ = [
    "load", "load_csv", "from_dataframe", "load_npy", "load_npy_pattern", "load_npy_stack",
    "load_h5ad", "from_arrays", "MissingColumnError",
]

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
        missing = [i for i, v in enumerate(raw) if v is None or (isinstance(v, float) and not np.isfinite(v))
                   or (isinstance(v, str) and v.strip() == "")]
        if missing:
            raise SnapshotError(f"{where}: time column {column!r} has {len(missing)} missing value(s) "
                                f"(first at row {missing[0]})")
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
            raise SnapshotError(f"{where}: time value(s) {absent} of column {column!r} are not in time_values "
                                f"(keys {list(time_values)})")
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
            raise SnapshotError(f"{where}: time labels {distinct} of column {column!r} parse to repeated numbers; "
                                "pass time_values={label: time} explicitly")
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


def _split_by_time(values: np.ndarray, index: np.ndarray, times: np.ndarray, labels, feature_names, name,
                   where: str) -> Snapshots:
    order = np.argsort(index, kind="stable")
    bounds = np.searchsorted(index[order], np.arange(len(times) + 1))
    data = [values[order[bounds[k]:bounds[k + 1]]] for k in range(len(times))]
    labs = None
    if labels is not None:
        labels = np.asarray(labels).astype(str)
        labs = [labels[order[bounds[k]:bounds[k + 1]]] for k in range(len(times))]
    return _wrap(where, Snapshots, times=times, data=data, labels=labs, feature_names=feature_names, name=name)


# -- tables (CSV, DataFrame) -----------------------------------------------------------------------
def _split_by_population(pop_values, index: np.ndarray, times: np.ndarray, where: str, block, labels,
                         feature_names, name: str):
    """:class:`Populations` from per-row population values: population p gets the time points it
    has cells at; ``block(rows)`` returns the ``(len(rows), d)`` float array of those rows."""
    from .populations import PopulationError, Populations

    pop = np.asarray(pop_values).astype(str)
    lab = None if labels is None else np.asarray(labels).astype(str)
    out = []
    for p in dict.fromkeys(pop.tolist()):
        rows_p = np.flatnonzero(pop == p)
        present = np.unique(index[rows_p])
        if len(present) < 2:
            raise PopulationError(f"{where}: population {p!r} has cells at a single time point "
                                  f"({times[present[0]]:g}); each population needs at least 2")
        rows = [rows_p[index[rows_p] == k] for k in present]
        try:
            snaps = Snapshots(times[present], [block(r) for r in rows],
                              None if lab is None else [lab[r] for r in rows], feature_names, name=p)
        except SnapshotError as e:
            raise PopulationError(f"{where}: population {p!r}: {e}") from None
        out.append((p, snaps))
    return Populations(out, name=name)


def _from_columns(columns: Mapping[str, np.ndarray], *, time_col: str, feature_cols, label_col, time_values,
                  name: str, where: str, drop_cols: Sequence[str] | None = None, population_col: str | None = None):
    cols = list(columns)
    if time_col not in columns:
        raise MissingColumnError(f"{where}: time column {time_col!r} not found; columns are {_short(cols)}")
    if label_col is not None and label_col not in columns:
        raise MissingColumnError(f"{where}: label column {label_col!r} not found; columns are {_short(cols)}")
    if population_col is not None and population_col not in columns:
        raise MissingColumnError(f"{where}: population column {population_col!r} not found; columns are "
                                 f"{_short(cols)}")
    drop = [drop_cols] if isinstance(drop_cols, str) else list(drop_cols or [])
    missing = [c for c in drop if c not in columns]
    if missing:
        raise MissingColumnError(f"{where}: column(s) to drop {missing} not found; columns are {_short(cols)}")
    if drop and feature_cols is not None:
        raise ValueError(f"{where}: give feature columns or columns to drop, not both")
    if feature_cols is None:
        feature_cols = [c for c in cols if c not in (time_col, label_col, population_col) and c not in drop]
        explicit = False
    else:
        feature_cols = [feature_cols] if isinstance(feature_cols, str) else list(feature_cols)
        missing = [c for c in feature_cols if c not in columns]
        if missing:
            raise MissingColumnError(f"{where}: feature column(s) {missing} not found; columns are {_short(cols)}")
        explicit = True
    if not feature_cols:
        raise SnapshotError(f"{where}: no feature columns besides the time column {time_col!r}")
    n_rows = len(columns[time_col])
    if n_rows == 0:
        raise SnapshotError(f"{where}: no rows")
    mats, non_numeric = [], []
    for c in feature_cols:
        v = np.asarray(columns[c])
        if v.dtype.kind in "biuf":
            mats.append(v.astype(np.float64))
            continue
        try:
            mats.append(np.array([np.nan if (x is None or (isinstance(x, str) and x.strip() == "")) else float(x)
                                  for x in v.tolist()], dtype=np.float64))
        except (TypeError, ValueError):
            non_numeric.append(c)
    if non_numeric:
        hint = "" if explicit else (" (exclude them with drop_cols=[...] / --drop-cols, choose features with "
                                    "feature_cols=[...] / --features, or make one the label column)")
        raise SnapshotError(f"{where}: non-numeric feature column(s) {non_numeric}{hint}")
    values = np.stack(mats, axis=1)
    times, index = _times_from_column(columns[time_col], time_values, where, time_col)
    labels = None if label_col is None else np.asarray(columns[label_col])
    if population_col is not None:
        bad = ~np.isfinite(values).all(axis=1)
        if bad.any():  # name the population before splitting, so nothing is dropped silently
            pops = sorted(set(np.asarray(columns[population_col]).astype(str)[bad].tolist()))
            raise SnapshotError(f"{where}: {int(bad.sum())} cell(s) with non-finite values in population(s) {pops}")
        return _split_by_population(columns[population_col], index, times, where,
                                    lambda r: values[r].astype(np.float32), labels, [str(c) for c in feature_cols], name)
    return _split_by_time(values, index, times, labels, [str(c) for c in feature_cols], name, where)


def from_dataframe(df, time_col: str = "samples", feature_cols: Sequence[str] | None = None,
                   label_col: str | None = None, time_values=None, name: str = "",
                   population_col: str | None = None):
    """Snapshots from a pandas DataFrame with one row per cell (see :func:`load_csv`;
    with ``population_col`` a :class:`~mfsde.data.Populations`)."""
    names = [str(c) for c in df.columns]
    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        raise SnapshotError(f"dataframe: duplicate column name(s) {dup}")
    columns = {str(c): df[c].to_numpy() for c in df.columns}
    return _from_columns(columns, time_col=time_col, feature_cols=feature_cols, label_col=label_col,
                         time_values=time_values, name=name, where="dataframe", population_col=population_col)


def _read_csv_columns(p: Path, engine: str) -> dict[str, np.ndarray]:
    if engine not in ("auto", "pandas", "python"):
        raise ValueError(f"engine must be 'auto', 'pandas' or 'python', got {engine!r}")
    with open(p, newline="") as f:
        header = next(csv.reader(f), None)
    if not header:
        raise SnapshotError(f"{str(p)!r}: empty CSV file")
    header = [h.strip() for h in header]
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise SnapshotError(f"{str(p)!r}: duplicate column name(s) {dup} in the header")
    if engine in ("auto", "pandas"):
        try:
            import pandas as pd
        except ImportError:
            if engine == "pandas":
                raise ImportError("load_csv(engine='pandas') needs pandas: pip install mfsde[sc]") from None
        else:
            try:
                df = pd.read_csv(p, skipinitialspace=True)
            except (pd.errors.ParserError, UnicodeDecodeError) as e:
                raise SnapshotError(f"{str(p)!r}: cannot parse CSV ({e})") from None
            df.columns = [str(c).strip() for c in df.columns]
            return {c: df[c].to_numpy() for c in df.columns}
    with open(p, newline="") as f:
        rows = list(csv.reader(f))
    rows = [r for r in rows if r]
    if not rows:
        raise SnapshotError(f"{str(p)!r}: empty CSV file")
    body = rows[1:]
    short = [i + 2 for i, r in enumerate(body) if len(r) != len(header)]
    if short:
        raise SnapshotError(f"{str(p)!r}: line(s) {short[:5]} have a different number of fields than the header "
                            f"({len(header)})")
    out: dict[str, np.ndarray] = {}
    for j, h in enumerate(header):
        col = [r[j] for r in body]
        try:
            out[h] = np.array([float(x) if x.strip() != "" else np.nan for x in col], dtype=np.float64)
        except ValueError:
            out[h] = np.array(col, dtype=object)
    return out


def load_csv(path: PathLike, time_col: str = "samples", feature_cols: Sequence[str] | None = None,
             label_col: str | None = None, time_values=None, name: str | None = None,
             engine: str = "auto", drop_cols: Sequence[str] | None = None, population_col: str | None = None):
    """Load a CSV with one row per cell (with ``population_col``: :class:`~mfsde.data.Populations`).

    Args:
        path: the file (e.g. ``../shared/data/emt/emt.csv``).
        time_col: column holding each cell's time (``"samples"``: time index 0..T-1 in the shared
            files). Numbers, or strings with one number in them ("day2"); anything else needs
            ``time_values`` as a mapping.
        feature_cols: feature columns (default: every column except the time and label columns
            and ``drop_cols``).
        drop_cols: columns to leave out (e.g. a barcode), instead of listing the features.
        label_col: optional per-cell label column (e.g. cell type).
        time_values: ``None`` to keep the raw time values; a sequence giving the time of the
            ``k``-th smallest distinct raw value (e.g. ``[2, 3, 4, 7]`` for days); or a mapping
            ``{raw value: time}``.
        name: data-set name (default: the file stem).
        engine: ``"auto"`` (pandas if installed), ``"pandas"`` or ``"python"`` (stdlib csv).
        population_col: a column naming each cell's population (condition, replicate, donor):
            the result is :class:`~mfsde.data.Populations`, one :class:`Snapshots` per
            population (in order of first appearance) with the time points it has cells at.

    Rows are grouped by time in file order within each time point.
    """
    p = _check_file(path)
    columns = _read_csv_columns(p, engine)
    return _from_columns(columns, time_col=time_col, feature_cols=feature_cols, label_col=label_col,
                         time_values=time_values, name=p.stem if name is None else name, where=repr(str(p)),
                         drop_cols=drop_cols, population_col=population_col)


# -- numpy ---------------------------------------------------------------------------------------
def _resolve_times(times, n: int, where: str) -> np.ndarray:
    if times is None:
        return np.arange(n, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64).ravel()
    if len(t) != n:
        raise SnapshotError(f"{where}: {len(t)} times given for {n} time points")
    return t


def from_arrays(arrays: Sequence[np.ndarray], times: Sequence[float] | None = None,
                labels: Sequence[Sequence[str]] | None = None, feature_names: Sequence[str] | None = None,
                name: str = "") -> Snapshots:
    """Snapshots from in-memory ``(n_k, d)`` arrays (or tensors); ``times`` default ``0..T-1``."""
    arrays = list(arrays)
    return Snapshots(_resolve_times(times, len(arrays), "from_arrays"), arrays,
                     None if labels is None else list(labels),
                     None if feature_names is None else list(feature_names), name)


def _np_load(p: Path, allow_pickle: bool, object_array_hint: str):
    """``np.load`` with one-line errors; an object array without ``allow_pickle`` gets the hint."""
    try:
        return np.load(p, allow_pickle=bool(allow_pickle))
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise SnapshotError(f"{str(p)!r} holds an object array{object_array_hint}") from None
        raise SnapshotError(f"{str(p)!r}: cannot read .npy file ({e})") from None
    except OSError as e:
        raise SnapshotError(f"{str(p)!r}: cannot read .npy file ({e})") from None


def _load_one_npy(p: Path) -> np.ndarray:
    a = _np_load(p, False, "; if it is a stack of time points (one (n_k, d) array per time) use load_npy_stack")
    if isinstance(a, np.lib.npyio.NpzFile):  # pragma: no cover - .npz passed as .npy
        raise SnapshotError(f"{str(p)!r} is an .npz archive, not a single array")
    if a.ndim != 2:
        raise SnapshotError(f"{str(p)!r}: expected one time point of shape (n_cells, d), got shape {a.shape}")
    return a


def load_npy(paths: Sequence[PathLike], times: Sequence[float] | None = None, name: str = "",
             feature_names: Sequence[str] | None = None) -> Snapshots:
    """One ``.npy`` file per time point, in the order given; ``times`` default ``0..T-1``.

    >>> d = "../shared/data/cite"
    >>> s = load_npy([f"{d}/full_cite_pcas_50_day_{t}.npy" for t in (2, 3, 4, 7)], times=[2, 3, 4, 7])
    """
    if isinstance(paths, (str, Path)):
        raise TypeError("load_npy takes a list of paths (one per time point); for a stacked file use "
                        "load_npy_stack, for a pattern load_npy_pattern")
    ps = [_check_file(p) for p in paths]
    if len(ps) < 2:
        raise SnapshotError(f"need at least 2 time points (files), got {len(ps)}: {[str(p) for p in ps]}")
    arrays = [_load_one_npy(p) for p in ps]
    t = _resolve_times(times, len(ps), "load_npy")
    for k in range(1, len(arrays)):
        if arrays[k].shape[1] != arrays[0].shape[1]:
            raise SnapshotError(f"ragged dimensions: {str(ps[k])!r} (time {_fmt_time(t[k])}) has d = "
                                f"{arrays[k].shape[1]} but {str(ps[0])!r} has d = {arrays[0].shape[1]}")
    try:
        return Snapshots(t, arrays, None, None if feature_names is None else list(feature_names), name)
    except SnapshotError as e:
        m = re.search(r"time point (\d+)", str(e))
        if m:
            raise SnapshotError(f"{str(ps[int(m.group(1))])!r}: {e}") from None
        raise


def _natural_key(s: str):
    return [float(x) if x.replace(".", "", 1).isdigit() else x for x in re.split(r"(\d+(?:\.\d+)?)", s)]


def load_npy_pattern(pattern: PathLike, times: Sequence[float] | None = None, name: str | None = None) -> Snapshots:
    """One ``.npy`` per time point found by a pattern.

    - ``"dir/full_cite_pcas_50_day_{}.npy"`` (``{}`` or ``{t}``) with ``times=[2, 3, 4, 7]``:
      the file of time ``t`` is the pattern formatted with ``t`` (integral times written as ints).
    - ``"dir/full_cite_pcas_50_day_*.npy"`` (a glob with one ``*``): the matched files; without
      ``times``, the text matched by ``*`` must be a number and gives the time (files sorted by
      it); with ``times``, files are taken in natural order.
    """
    pattern = str(pattern)
    if name is None:  # "dir/full_cite_pcas_50_day_*.npy" -> "full_cite_pcas_50_day"
        name = re.sub(r"(\{t?\}|\*)", "", Path(pattern).name)
        name = re.sub(r"[_\-. ]+$", "", Path(name).stem if name.endswith(".npy") else name)
    if "{" in pattern:
        if times is None:
            raise ValueError(f"pattern {pattern!r} has a '{{}}' placeholder: pass times=[...] to fill it")
        paths = [pattern.replace("{t}", "{}").format(_fmt_time(t)) for t in times]
        return load_npy(paths, times=times, name=name)
    if pattern.count("*") != 1:
        raise ValueError(f"pattern {pattern!r} needs exactly one '*' (or a '{{}}' placeholder with times=)")
    matches = sorted(_glob.glob(str(Path(pattern).expanduser())), key=_natural_key)
    if not matches:
        raise FileNotFoundError(f"no file matches {pattern!r}")
    if times is None:
        pre, post = str(Path(pattern).expanduser()).split("*")
        found = []
        for m in matches:
            part = m[len(pre):len(m) - len(post)]
            num = _to_number(part) if _NUMBER.fullmatch(part) else None
            if num is None:
                raise ValueError(f"cannot read a time from {m!r} (the '*' matched {part!r}); pass times=[...]")
            found.append((num, m))
        found.sort()
        return load_npy([m for _, m in found], times=[t for t, _ in found], name=name)
    return load_npy(matches, times=times, name=name)


def load_npy_stack(path: PathLike, times: Sequence[float] | None = None, name: str | None = None,
                   allow_pickle: bool = False) -> Snapshots:
    """All time points in one ``.npy``: a numeric ``(T, n, d)`` array, or an object array of
    ``(n_k, d)`` arrays (any shape with ``T`` entries, e.g. the Bargaje ``Bifurcation.npy`` of
    shape (1, 8)). An object array is a pickle: reading it can run code stored in the file, so it
    needs ``allow_pickle=True`` (CLI ``--allow-pickle``) — only for files you trust."""
    p = _check_file(path)
    a = _np_load(p, allow_pickle, ", i.e. pickled Python objects that loading would execute; if you trust the "
                                  "file pass allow_pickle=True (--allow-pickle)")
    if a.dtype == object:
        entries = list(a.ravel())
    elif a.ndim == 3:
        entries = list(a)
    else:
        raise SnapshotError(f"{str(p)!r}: expected an object array of (n_k, d) arrays or a (T, n, d) array, "
                            f"got a {a.dtype} array of shape {a.shape}")
    arrays = []
    for k, e in enumerate(entries):
        e = np.asarray(e)
        if e.ndim != 2:
            raise SnapshotError(f"{str(p)!r}: entry {k} has shape {e.shape}, expected (n_cells, d)")
        arrays.append(e)
    t = _resolve_times(times, len(arrays), repr(str(p)))
    return _wrap(repr(str(p)), Snapshots, t, arrays, None, None, p.stem if name is None else name)


# -- AnnData -------------------------------------------------------------------------------------
def load_h5ad(path: PathLike, time_col: str, label_col: str | None = None, layer: str | None = None,
              obsm: str | None = None, time_values=None, genes: Sequence[str] | None = None,
              name: str | None = None, population_col: str | None = None):
    """Load an AnnData ``.h5ad`` file (with ``population_col``, an ``obs`` column naming each
    cell's population: :class:`~mfsde.data.Populations`).

    Args:
        time_col: ``obs`` column with each cell's time (numbers, strings such as "day2", or a
            categorical; see :func:`load_csv` for ``time_values``).
        label_col: optional ``obs`` column with labels (e.g. cell type).
        layer: use ``adata.layers[layer]`` instead of ``X`` (e.g. raw counts).
        obsm: use ``adata.obsm[obsm]`` instead (an existing embedding, e.g. ``"X_pca"``).
        genes: keep only these ``var_names`` (in this order) before densifying.

    Sparse matrices are densified one time point at a time (as float32).
    """
    ad = _require_module("anndata", "load_h5ad")
    p = _check_file(path)
    where = repr(str(p))
    if layer is not None and obsm is not None:
        raise ValueError("pass at most one of layer= and obsm=")
    if genes is not None and obsm is not None:
        raise ValueError("genes= selects var_names and cannot be combined with obsm=")
    try:
        adata = ad.read_h5ad(p)
    except Exception as e:  # h5py / anndata errors on corrupt files
        raise SnapshotError(f"{where}: cannot read as AnnData ({type(e).__name__}: {e})") from None
    obs_cols = [str(c) for c in adata.obs.columns]
    if time_col not in adata.obs.columns:
        raise MissingColumnError(f"{where}: time column {time_col!r} not in obs; obs columns are {_short(obs_cols)}")
    if label_col is not None and label_col not in adata.obs.columns:
        raise MissingColumnError(f"{where}: label column {label_col!r} not in obs; obs columns are "
                                 f"{_short(obs_cols)}")
    if population_col is not None and population_col not in adata.obs.columns:
        raise MissingColumnError(f"{where}: population column {population_col!r} not in obs; obs columns are "
                                 f"{_short(obs_cols)}")
    feature_names: list[str] | None
    if obsm is not None:
        if obsm not in adata.obsm:
            raise MissingColumnError(f"{where}: obsm key {obsm!r} not found; obsm keys are {list(adata.obsm.keys())}")
        X = adata.obsm[obsm]
        feature_names = [str(c) for c in X.columns] if hasattr(X, "columns") else None
        X = X.to_numpy() if hasattr(X, "to_numpy") else X
    else:
        if layer is not None:
            if layer not in adata.layers:
                raise MissingColumnError(f"{where}: layer {layer!r} not found; layers are {list(adata.layers.keys())}")
            X = adata.layers[layer]
        else:
            X = adata.X
            if X is None:
                raise SnapshotError(f"{where}: X is empty; pass layer= or obsm=")
        feature_names = [str(v) for v in adata.var_names]
        if genes is not None:
            pos = {g: i for i, g in enumerate(feature_names)}
            missing = [g for g in genes if g not in pos]
            if missing:
                raise MissingColumnError(f"{where}: {len(missing)} gene(s) not in var_names, e.g. {missing[:5]}")
            cols = [pos[g] for g in genes]
            X = X[:, cols]
            feature_names = [str(g) for g in genes]
    col = adata.obs[time_col]
    if hasattr(col, "cat") and getattr(col.cat, "ordered", False) and time_values is None:
        # an ordered categorical: its category order is the time order when labels are not numbers
        cats = list(col.cat.categories)
        if any(_to_number(c) is None for c in cats):
            time_values = {c: float(i) for i, c in enumerate(cats)}
    raw = col.to_numpy() if not hasattr(col, "cat") else col.astype(object).to_numpy()
    times, index = _times_from_column(raw, time_values, where, time_col)
    if population_col is not None:
        def block(rows):
            b = X[rows]
            return np.asarray(b.toarray() if hasattr(b, "toarray") else b, dtype=np.float32)
        labs = None if label_col is None else adata.obs[label_col].astype(str).to_numpy()
        return _split_by_population(adata.obs[population_col].astype(str).to_numpy(), index, times, where, block,
                                    labs, feature_names, p.stem if name is None else name)
    order = np.argsort(index, kind="stable")
    bounds = np.searchsorted(index[order], np.arange(len(times) + 1))
    data = []
    for k in range(len(times)):
        rows = order[bounds[k]:bounds[k + 1]]
        block = X[rows]
        if hasattr(block, "toarray"):
            block = block.toarray()
        data.append(np.asarray(block, dtype=np.float32))
    labels = None
    if label_col is not None:
        lab = adata.obs[label_col].astype(str).to_numpy()
        labels = [lab[order[bounds[k]:bounds[k + 1]]] for k in range(len(times))]
    return _wrap(where, Snapshots, times, data, labels, feature_names, p.stem if name is None else name)


# -- dispatch ------------------------------------------------------------------------------------
def load(path_or_paths, **kw) -> Snapshots:
    """Load snapshots, choosing the loader from the input:

    - a list/tuple of paths → :func:`load_npy` (one ``.npy`` per time point);
    - a string with ``*`` or ``{}`` → :func:`load_npy_pattern`;
    - ``.csv`` → :func:`load_csv`; ``.h5ad`` → :func:`load_h5ad`;
    - ``.npy`` → :func:`load_npy_stack` (a stacked file; a single 2-D array is one time point,
      which is an error).

    Keyword arguments go to the chosen loader.
    """
    if isinstance(path_or_paths, (list, tuple)):
        bad = [str(p) for p in path_or_paths if Path(p).suffix.lower() != ".npy"]
        if bad:
            raise ValueError(f"a list of paths must be .npy files (one per time point); got {bad}")
        return load_npy(path_or_paths, **kw)
    s = str(path_or_paths)
    if "*" in s or "{" in s:
        return load_npy_pattern(s, **kw)
    p = Path(s)
    suffix = p.suffix.lower()
    if suffix == ".csv":
        return load_csv(p, **kw)
    if suffix == ".h5ad":
        return load_h5ad(p, **kw)
    if suffix == ".npy":
        p = _check_file(p)
        try:
            a = np.load(p, mmap_mode="r", allow_pickle=False)
        except ValueError:
            a = None  # object array: a stack
        if a is not None and a.ndim == 2:
            raise SnapshotError(f"{str(p)!r} holds a single (n_cells, d) array, i.e. one time point; need at "
                                "least 2 time points: pass a list of .npy files (one per time point)")
        return load_npy_stack(p, **kw)
    raise ValueError(f"cannot tell the format of {s!r} from its suffix {suffix!r}; supported: .csv, .npy, .h5ad, "
                     "a list of .npy files, or a pattern with '*' / '{}'")
