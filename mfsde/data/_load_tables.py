"""Tables with one row per cell: CSV files and pandas DataFrames (see :mod:`mfsde.data`)."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from mfsde.data._load_common import (
    MissingColumnError,
    PathLike,
    _check_file,
    _short,
    _split_by_population,
    _split_by_time,
    _times_from_column,
)
from mfsde.data._snapshots import SnapshotError


def _from_columns(
    columns: Mapping[str, np.ndarray],
    *,
    time_col: str,
    feature_cols,
    label_col,
    time_values,
    name: str,
    where: str,
    drop_cols: Sequence[str] | None = None,
    population_col: str | None = None,
):
    cols = list(columns)
    if time_col not in columns:
        raise MissingColumnError(f"{where}: time column {time_col!r} not found; columns are {_short(cols)}")
    if label_col is not None and label_col not in columns:
        raise MissingColumnError(f"{where}: label column {label_col!r} not found; columns are {_short(cols)}")
    if population_col is not None and population_col not in columns:
        raise MissingColumnError(f"{where}: population column {population_col!r} not found; columns are {_short(cols)}")
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
            mats.append(
                np.array(
                    [
                        np.nan if (x is None or (isinstance(x, str) and x.strip() == "")) else float(x)
                        for x in v.tolist()
                    ],
                    dtype=np.float64,
                )
            )
        except (TypeError, ValueError):
            non_numeric.append(c)
    if non_numeric:
        hint = (
            ""
            if explicit
            else (
                " (exclude them with drop_cols=[...] / --drop-cols, choose features with "
                "feature_cols=[...] / --features, or make one the label column)"
            )
        )
        raise SnapshotError(f"{where}: non-numeric feature column(s) {non_numeric}{hint}")
    values = np.stack(mats, axis=1)
    times, index = _times_from_column(columns[time_col], time_values, where, time_col)
    labels = None if label_col is None else np.asarray(columns[label_col])
    if population_col is not None:
        bad = ~np.isfinite(values).all(axis=1)
        if bad.any():  # name the population before splitting, so nothing is dropped silently
            pops = sorted(set(np.asarray(columns[population_col]).astype(str)[bad].tolist()))
            raise SnapshotError(f"{where}: {int(bad.sum())} cell(s) with non-finite values in population(s) {pops}")
        return _split_by_population(
            columns[population_col],
            index,
            times,
            where,
            lambda r: values[r].astype(np.float32),
            labels,
            [str(c) for c in feature_cols],
            name,
        )
    return _split_by_time(values, index, times, labels, [str(c) for c in feature_cols], name, where)


def from_dataframe(
    df,
    time_col: str = "samples",
    feature_cols: Sequence[str] | None = None,
    label_col: str | None = None,
    time_values=None,
    name: str = "",
    population_col: str | None = None,
):
    """Snapshots from a pandas DataFrame with one row per cell (see :func:`load_csv`;
    with ``population_col`` a :class:`~mfsde.data.Populations`)."""
    names = [str(c) for c in df.columns]
    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        raise SnapshotError(f"dataframe: duplicate column name(s) {dup}")
    columns = {str(c): df[c].to_numpy() for c in df.columns}
    return _from_columns(
        columns,
        time_col=time_col,
        feature_cols=feature_cols,
        label_col=label_col,
        time_values=time_values,
        name=name,
        where="dataframe",
        population_col=population_col,
    )


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
        raise SnapshotError(
            f"{str(p)!r}: line(s) {short[:5]} have a different number of fields than the header ({len(header)})"
        )
    out: dict[str, np.ndarray] = {}
    for j, h in enumerate(header):
        col = [r[j] for r in body]
        try:
            out[h] = np.array([float(x) if x.strip() != "" else np.nan for x in col], dtype=np.float64)
        except ValueError:
            out[h] = np.array(col, dtype=object)
    return out


def load_csv(
    path: PathLike,
    time_col: str = "samples",
    feature_cols: Sequence[str] | None = None,
    label_col: str | None = None,
    time_values=None,
    name: str | None = None,
    engine: str = "auto",
    drop_cols: Sequence[str] | None = None,
    population_col: str | None = None,
):
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
    return _from_columns(
        columns,
        time_col=time_col,
        feature_cols=feature_cols,
        label_col=label_col,
        time_values=time_values,
        name=p.stem if name is None else name,
        where=repr(str(p)),
        drop_cols=drop_cols,
        population_col=population_col,
    )
