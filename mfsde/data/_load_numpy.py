"""Numpy inputs: one ``.npy`` per time point, file patterns, stacked arrays, in-memory arrays."""

from __future__ import annotations

import glob as _glob
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mfsde.data._load_common import _NUMBER, PathLike, _check_file, _to_number, _wrap
from mfsde.data._snapshots import SnapshotError, Snapshots, _fmt_time


# -- numpy ---------------------------------------------------------------------------------------
def _resolve_times(times, n: int, where: str) -> np.ndarray:
    if times is None:
        return np.arange(n, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64).ravel()
    if len(t) != n:
        raise SnapshotError(f"{where}: {len(t)} times given for {n} time points")
    return t


def from_arrays(
    arrays: Sequence[np.ndarray],
    times: Sequence[float] | None = None,
    labels: Sequence[Sequence[str]] | None = None,
    feature_names: Sequence[str] | None = None,
    name: str = "",
) -> Snapshots:
    """Snapshots from in-memory ``(n_k, d)`` arrays (or tensors); ``times`` default ``0..T-1``."""
    arrays = list(arrays)
    return Snapshots(
        _resolve_times(times, len(arrays), "from_arrays"),
        arrays,
        None if labels is None else list(labels),
        None if feature_names is None else list(feature_names),
        name,
    )


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


def load_npy(
    paths: Sequence[PathLike],
    times: Sequence[float] | None = None,
    name: str = "",
    feature_names: Sequence[str] | None = None,
) -> Snapshots:
    """One ``.npy`` file per time point, in the order given; ``times`` default ``0..T-1``.

    >>> d = "../shared/data/cite"
    >>> s = load_npy([f"{d}/full_cite_pcas_50_day_{t}.npy" for t in (2, 3, 4, 7)], times=[2, 3, 4, 7])
    """
    if isinstance(paths, (str, Path)):
        raise TypeError(
            "load_npy takes a list of paths (one per time point); for a stacked file use "
            "load_npy_stack, for a pattern load_npy_pattern"
        )
    ps = [_check_file(p) for p in paths]
    if len(ps) < 2:
        raise SnapshotError(f"need at least 2 time points (files), got {len(ps)}: {[str(p) for p in ps]}")
    arrays = [_load_one_npy(p) for p in ps]
    t = _resolve_times(times, len(ps), "load_npy")
    for k in range(1, len(arrays)):
        if arrays[k].shape[1] != arrays[0].shape[1]:
            raise SnapshotError(
                f"ragged dimensions: {str(ps[k])!r} (time {_fmt_time(t[k])}) has d = "
                f"{arrays[k].shape[1]} but {str(ps[0])!r} has d = {arrays[0].shape[1]}"
            )
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
            part = m[len(pre) : len(m) - len(post)]
            num = _to_number(part) if _NUMBER.fullmatch(part) else None
            if num is None:
                raise ValueError(f"cannot read a time from {m!r} (the '*' matched {part!r}); pass times=[...]")
            found.append((num, m))
        found.sort()
        return load_npy([m for _, m in found], times=[t for t, _ in found], name=name)
    return load_npy(matches, times=times, name=name)


def load_npy_stack(
    path: PathLike, times: Sequence[float] | None = None, name: str | None = None, allow_pickle: bool = False
) -> Snapshots:
    """All time points in one ``.npy``: a numeric ``(T, n, d)`` array, or an object array of
    ``(n_k, d)`` arrays (any shape with ``T`` entries, e.g. the Bargaje ``Bifurcation.npy`` of
    shape (1, 8)). An object array is a pickle: reading it can run code stored in the file, so it
    needs ``allow_pickle=True`` (CLI ``--allow-pickle``) — only for files you trust."""
    p = _check_file(path)
    a = _np_load(
        p,
        allow_pickle,
        ", i.e. pickled Python objects that loading would execute; if you trust the "
        "file pass allow_pickle=True (--allow-pickle)",
    )
    if a.dtype == object:
        entries = list(a.ravel())
    elif a.ndim == 3:
        entries = list(a)
    else:
        raise SnapshotError(
            f"{str(p)!r}: expected an object array of (n_k, d) arrays or a (T, n, d) array, "
            f"got a {a.dtype} array of shape {a.shape}"
        )
    arrays = []
    for k, e in enumerate(entries):
        e = np.asarray(e)
        if e.ndim != 2:
            raise SnapshotError(f"{str(p)!r}: entry {k} has shape {e.shape}, expected (n_cells, d)")
        arrays.append(e)
    t = _resolve_times(times, len(arrays), repr(str(p)))
    return _wrap(repr(str(p)), Snapshots, t, arrays, None, None, p.stem if name is None else name)
