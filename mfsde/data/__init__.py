"""Snapshot data for mean-field SDEs: container, loaders, preprocessing and held-out tasks.

```pycon
>>> from mfsde.data import load, Preprocessor, get_task
>>> snaps = load("../shared/data/emt/emt.csv")                # Snapshots, times 0..3, d = 10
>>> task = get_task("interpolate:2", snaps.n_times)           # train on 0, 1, 3; hold out 2
>>> snaps = Preprocessor("embedded", scale=True).fit_transform(snaps, task.train)
```

Only numpy and torch are needed to import this package; pandas, anndata and scikit-learn
are imported by the functions that use them (``pip install mfsde[sc]``).
"""

from mfsde.data._load_common import MissingColumnError
from mfsde.data._load_h5ad import from_anndata, load_h5ad
from mfsde.data._load_numpy import from_arrays, load_npy, load_npy_pattern, load_npy_stack
from mfsde.data._load_tables import from_dataframe, load_csv
from mfsde.data._loaders import load
from mfsde.data._populations import PopulationError, Populations, PopulationTask, PredictTask, as_population_task
from mfsde.data._preprocess import Preprocessor, highly_variable_genes, normalize_total
from mfsde.data._snapshots import TIME_MODES, SnapshotError, Snapshots, normalise_times
from mfsde.data._tasks import (
    GENERIC_TASKS,
    TASKS,
    Task,
    TaskError,
    UnknownTaskError,
    available_tasks,
    explicit,
    extrapolation,
    get_task,
    interpolation,
    leave_one_out,
)

__all__ = [
    "SnapshotError",
    "normalise_times",
    "TIME_MODES",
    "PopulationError",
    "PopulationTask",
    "PredictTask",
    "as_population_task",
    "load",
    "load_csv",
    "from_dataframe",
    "load_npy",
    "load_npy_pattern",
    "load_npy_stack",
    "load_h5ad",
    "from_anndata",
    "from_arrays",
    "MissingColumnError",
    "Preprocessor",
    "highly_variable_genes",
    "normalize_total",
    "Task",
    "TaskError",
    "UnknownTaskError",
    "TASKS",
    "GENERIC_TASKS",
    "available_tasks",
    "explicit",
    "extrapolation",
    "interpolation",
    "leave_one_out",
    "get_task",
]
