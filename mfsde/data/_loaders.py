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

from pathlib import Path

import numpy as np

from mfsde.data._load_common import _check_file
from mfsde.data._load_h5ad import load_h5ad
from mfsde.data._load_numpy import load_npy, load_npy_pattern, load_npy_stack
from mfsde.data._load_tables import load_csv
from mfsde.data._snapshots import SnapshotError, Snapshots


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
            raise SnapshotError(
                f"{str(p)!r} holds a single (n_cells, d) array, i.e. one time point; need at "
                "least 2 time points: pass a list of .npy files (one per time point)"
            )
        return load_npy_stack(p, **kw)
    raise ValueError(
        f"cannot tell the format of {s!r} from its suffix {suffix!r}; supported: .csv, .npy, .h5ad, "
        "a list of .npy files, or a pattern with '*' / '{}'"
    )
