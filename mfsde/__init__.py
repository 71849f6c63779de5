"""mfsde: modular components for mean-field (McKean–Vlasov) neural SDEs.

```pycon
>>> import mfsde
>>> snaps = mfsde.datasets.emt()                                        # mfsde.Snapshots
>>> result = mfsde.fit(mfsde.preset("scimf", dim=snaps.dim), snaps, "loo:1", out_dir="runs/emt")
>>> mfsde.evaluate(result.model, snaps, "loo:1")["w1"]
>>> model, config = mfsde.load_run("runs/emt")                          # a run directory
>>> sol = model(x0, ts=[0., 1., 2.], seed=0)       # x0: (N, d) or (..., N, d), model units
```

The top level holds the stable names below; everything else lives in one namespace by
responsibility: the component registries (:mod:`mfsde.interactions`, :mod:`mfsde.drifts`,
:mod:`mfsde.solvers`, :mod:`mfsde.losses`), :mod:`mfsde.config`, :mod:`mfsde.model`,
:mod:`mfsde.data`, :mod:`mfsde.datasets`, :mod:`mfsde.training`, :mod:`mfsde.evaluation`,
:mod:`mfsde.explain`, :mod:`mfsde.systems`, the AnnData API (:mod:`mfsde.pp`, :mod:`mfsde.tl`,
:mod:`mfsde.pl`) and :mod:`mfsde.testing`.
"""

from mfsde import (  # scanpy-style AnnData API (anndata needed only when called)
    config,
    data,
    datasets,
    drifts,
    evaluation,
    explain,
    interactions,
    losses,
    model,
    pl,
    pp,
    solvers,
    systems,
    tl,
    training,
)
from mfsde.config._presets import preset
from mfsde.config._schema import Config
from mfsde.data._populations import Populations
from mfsde.data._snapshots import Snapshots
from mfsde.evaluation._comparison import compare
from mfsde.evaluation._evaluate import evaluate
from mfsde.model._sde import MeanFieldSDE
from mfsde.solvers._sdeint import sdeint
from mfsde.training._fit import fit
from mfsde.training._runs import load_run

try:  # one source of truth: the installed package's metadata (pyproject.toml)
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _version

    __version__ = _version("mfsde")
except PackageNotFoundError:  # pragma: no cover - imported from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "Config",
    "preset",
    "MeanFieldSDE",
    "sdeint",
    "Snapshots",
    "Populations",
    "fit",
    "evaluate",
    "compare",
    "load_run",
    "__version__",
]
