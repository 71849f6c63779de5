"""Published time-series snapshot data sets by name, fetched once and cached.

```pycon
>>> import mfsde
>>> snaps = mfsde.datasets.emt()           # doctest: +SKIP
>>> adata = mfsde.datasets.emt(anndata=True)  # doctest: +SKIP
```

Each function returns :class:`~mfsde.data.Snapshots` (``anndata=True``: an ``AnnData`` with the
cells in ``X``, ``obs["time"]`` and ``obsm["X_data"]``). Files are looked for, in order:

1. in ``data_dir`` (an argument), else in the folder named by the environment variable
   ``MFSDE_DATA_DIR``, laid out as ``<folder>/<data set>/<file>`` (e.g. ``emt/emt.csv``);
2. in the cache (``cache_dir``, else ``MFSDE_CACHE_DIR``, else pooch's user cache ``mfsde``);
3. downloaded with pooch from the public repository the file was published in, at a pinned
   commit, into the cache.

Every file is checked against its pinned SHA-256 wherever it is found: a corrupted or truncated
file is refused (a cached one is fetched again), and a download that does not match is deleted,
so no partial file ever passes as valid. Downloading needs the ``pooch`` extra
(``pip install "mfsde[data]"``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "emt",
    "bargaje",
    "cite",
    "weinreb",
    "interacting_grn",
    "fetch",
    "DATASETS",
    "DatasetError",
    "DatasetNotFound",
]


class DatasetError(ValueError):
    """A data set could not be named, found, verified or fetched (one line, saying what and where)."""


class DatasetNotFound(DatasetError):
    """With ``download=False``: the file is in no data dir and not in the cache."""


@dataclass(frozen=True)
class _File:
    folder: str  # the data set's folder under a data dir or the cache
    name: str
    url: str
    sha256: str


_LIGHTSB = "https://raw.githubusercontent.com/ngushchin/LightSB/acb2e250c16b32252ab460358d354700be71385c/data/"
_DEEPRUOT = "https://raw.githubusercontent.com/zhenyiizhang/DeepRUOT/29e94d6684baf64963d16265214a788e4244f85e/data/"
_CYTOBRIDGE = (
    "https://raw.githubusercontent.com/zhenyiizhang/CytoBridge-NeurIPS/184f63aba67bb74b1fc5f5b6354e090e0b9e2946/data/"
)
_TIGON = "https://raw.githubusercontent.com/yutongo/TIGON/7fb46bc3f466f81ef6f5e7fcab0b556b5e9e3d14/Input/"

_CITE_SHA = {
    (50, 2): "ba7cc587e6df22382099e8592939e188b1fe32681a71640473058719f56f1bf4",
    (50, 3): "3b427bff70dfae37e3c4793d3ae9b3493c96a88cb507518e41387b7eeca62f94",
    (50, 4): "db70a163f9ae8ec7ae26ea41a330f0de814facc97d1928f14e00cc3fa48a741b",
    (50, 7): "b8409dad032f03afba90ffd7762e49a6413b0b2ef8bfc3304a46ea143536bc07",
    (100, 2): "85000b25eb6b7ae5c7daf7ad17e995741e8a76f25771d5716ccb539d3d22ad55",
    (100, 3): "5a4fdcbb076b2f25b2e823b87d92deccacf29d702f3ac32835490e7db10b59c8",
    (100, 4): "04cd3ba804006ee72413aab33c90b6d977eb3a4e4a38127445a46625436fe524",
    (100, 7): "4a422acef3226958035c72e87ca7d1644d86f4efbb29be2c0bea67fc1e93b24e",
}
_GRN = {
    "attract": "d7d32e58dbee493013759a2eb7cd2166babbbc098bfed71167c2d9165418c172",
    "LJ": "faec8e324653c3565b8b35492c7a5edb56b9b8e148447c9732e674b02cfe43f0",
    "no_interact": "d41e3bcd94ff55383264461f2eed048780dbea8faffb77011cff9b8dce231d10",
}

#: every file by key: the data set's files, where they are published and their SHA-256
DATASETS: dict[str, _File] = {
    "emt": _File(
        "emt", "emt.csv", _DEEPRUOT + "emt.csv", "820eca0ca6a9b8c5aba970dda04052b2e2ea4489b712b948559fe5cd185a8294"
    ),
    "bargaje": _File(
        "bargaje",
        "Bifurcation.npy",
        _TIGON + "Bifurcation.npy",
        "d663a9e7de455ffbe96ae3cce88dfac6c4d1096157269e3aae161eed36d00a75",
    ),
    "weinreb": _File(
        "weinreb",
        "mouse_hematopoiesis.csv",
        _DEEPRUOT + "mouse_hematopoiesis.csv",
        "be4360cd67e76205501de63124379be5c82506748e018197a3fdb4dbb1c7ca2f",
    ),
    **{
        f"cite{dim}_day{day}": _File(
            "cite", f"full_cite_pcas_{dim}_day_{day}.npy", _LIGHTSB + f"full_cite_pcas_{dim}_day_{day}.npy", sha
        )
        for (dim, day), sha in _CITE_SHA.items()
    },
    **{
        f"interacting_grn_{kind}": _File(
            "interacting_grn", f"simulation_{kind}.csv", _CYTOBRIDGE + f"simulation_{kind}.csv", sha
        )
        for kind, sha in _GRN.items()
    },
}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _cache_dir(cache_dir) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get("MFSDE_CACHE_DIR"):
        return Path(os.environ["MFSDE_CACHE_DIR"])
    try:
        import pooch
    except ImportError:
        return Path.home() / ".cache" / "mfsde"
    return Path(pooch.os_cache("mfsde"))


def fetch(key: str, *, data_dir=None, cache_dir=None, download: bool = True) -> Path:
    """The local path of file ``key`` of :data:`DATASETS` (e.g. ``"emt"``, ``"cite50_day3"``),
    verified against its SHA-256: from ``data_dir`` / ``MFSDE_DATA_DIR``, else the cache, else
    downloaded into the cache (``download=False``: an error instead)."""
    if key not in DATASETS:
        raise DatasetError(f"unknown data file {key!r}; known: {', '.join(sorted(DATASETS))}")
    f = DATASETS[key]
    folder = data_dir if data_dir is not None else os.environ.get("MFSDE_DATA_DIR") or None
    if folder is not None:
        local = Path(folder) / f.folder / f.name
        if local.is_file():
            if _sha256(local) != f.sha256:
                raise DatasetError(
                    f"{local} does not match the published {f.name} (SHA-256 differs): "
                    f"replace it with the file from {f.url}"
                )
            return local
    cache = _cache_dir(cache_dir) / f.folder
    target = cache / f.name
    if target.is_file():
        if _sha256(target) == f.sha256:
            return target
        target.unlink()  # corrupted or truncated: fetched again below
    where = f"put {f.name} in {Path(folder) / f.folder if folder else '$MFSDE_DATA_DIR/' + f.folder} or pass data_dir="
    if not download:
        raise DatasetNotFound(f"{f.name} is neither in a data dir nor in the cache {cache} (download=False); {where}")
    try:
        import pooch
    except ImportError:
        raise DatasetError(f"downloading {f.name} needs pooch (pip install 'mfsde[data]'); or {where}") from None
    try:
        cache.mkdir(parents=True, exist_ok=True)
        probe = cache / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise DatasetError(
            f"cannot write to the data cache {cache} ({exc.strerror or exc}); set MFSDE_CACHE_DIR or pass cache_dir="
        ) from None
    try:
        path = pooch.retrieve(f.url, known_hash=f"sha256:{f.sha256}", fname=f.name, path=cache, progressbar=False)
    except ValueError as exc:  # pooch: the downloaded file's hash differs (it deletes the download)
        raise DatasetError(
            f"the download of {f.name} from {f.url} does not match its pinned SHA-256 "
            f"and was deleted ({str(exc).splitlines()[0]}); {where}"
        ) from None
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DatasetError(f"could not download {f.name} from {f.url} ({reason}); {where}") from None
    return Path(path)


def _snapshots_or_anndata(snaps, anndata: bool):
    if not anndata:
        return snaps
    import anndata as ad
    import numpy as np
    import pandas as pd

    x = np.concatenate(snaps.data).astype(np.float32)
    times = np.concatenate([np.full(len(a), t, dtype=float) for a, t in zip(snaps.data, snaps.times)])
    obs = pd.DataFrame({"time": times}, index=[f"cell{i}" for i in range(len(x))])
    names = list(getattr(snaps, "feature_names", None) or [f"x{j + 1}" for j in range(x.shape[1])])
    return ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=names), obsm={"X_data": x.copy()})


def _csv(key: str, name: str, anndata: bool, **where):
    from mfsde.data import load_csv

    return _snapshots_or_anndata(load_csv(fetch(key, **where), time_col="samples", name=name), anndata)


def emt(*, anndata: bool = False, data_dir=None, cache_dir=None, download: bool = True):
    """A549 lung cancer cells in TGF-β–induced epithelial–mesenchymal transition (Cook &
    Vanderhyden 2020): 3133 cells, 10-D embedding (values in [0, 1]), 4 time points.
    Source: github zhenyiizhang/DeepRUOT ``data/emt.csv`` (MIT)."""
    return _csv("emt", "emt", anndata, data_dir=data_dir, cache_dir=cache_dir, download=download)


def weinreb(*, anndata: bool = False, data_dir=None, cache_dir=None, download: bool = True):
    """Mouse haematopoiesis with LARRY lineage tracing (Weinreb et al. 2020), days 2/4/6, 2-D
    embedding, 10,998 cells (the count grows: 1429 / 3781 / 5788).
    Source: github zhenyiizhang/DeepRUOT ``data/mouse_hematopoiesis.csv`` (MIT)."""
    return _csv("weinreb", "weinreb", anndata, data_dir=data_dir, cache_dir=cache_dir, download=download)


def interacting_grn(
    kind: str = "attract", *, anndata: bool = False, data_dir=None, cache_dir=None, download: bool = True
):
    """Simulated gene-regulatory dynamics of proliferating cells (CytoBridge, NeurIPS 2025), 2-D,
    5 time points, ≈2700–3000 cells (400 at t = 0, growing); ``kind`` is ``"attract"``
    (attractive interaction), ``"LJ"`` (Lennard-Jones) or ``"no_interact"`` (the control).
    Source: github zhenyiizhang/CytoBridge-NeurIPS ``data/simulation_<kind>.csv`` (MIT)."""
    if kind not in _GRN:
        raise DatasetError(f"interacting_grn: kind must be one of {', '.join(_GRN)}; got {kind!r}")
    return _csv(
        f"interacting_grn_{kind}",
        f"interacting_grn_{kind}",
        anndata,
        data_dir=data_dir,
        cache_dir=cache_dir,
        download=download,
    )


def bargaje(*, anndata: bool = False, data_dir=None, cache_dir=None, download: bool = True):
    """Human iPSC → mesoderm/endoderm differentiation, single-cell qPCR (Bargaje et al. 2017): 4-D,
    8 time points, 1896 cells. The published file is a pickled numpy object array; it is read only
    after its SHA-256 matched the pinned one.
    Source: github yutongo/TIGON ``Input/Bifurcation.npy`` (MIT)."""
    from mfsde.data import load_npy_stack

    path = fetch("bargaje", data_dir=data_dir, cache_dir=cache_dir, download=download)
    return _snapshots_or_anndata(load_npy_stack(path, name="bargaje", allow_pickle=True), anndata)


def cite(dim: int = 50, *, anndata: bool = False, data_dir=None, cache_dir=None, download: bool = True):
    """CITE-seq, human bone-marrow CD34+ differentiation (NeurIPS 2022 Open Problems; Lance et al.
    2022): PCA coordinates (``dim`` 50 or 100: two separate PCA solves), days 2, 3, 4, 7 (times
    in days), 29,394 cells. Raw, unwhitened PCA scores.
    Source: github ngushchin/LightSB ``data/full_cite_pcas_<dim>_day_<day>.npy`` (MIT)."""
    if dim not in (50, 100):
        raise DatasetError(f"cite: dim must be 50 or 100; got {dim!r}")
    from mfsde.data import load_npy

    paths = [
        fetch(f"cite{dim}_day{day}", data_dir=data_dir, cache_dir=cache_dir, download=download) for day in (2, 3, 4, 7)
    ]
    return _snapshots_or_anndata(load_npy(paths, times=[2, 3, 4, 7], name=f"cite{dim}"), anndata)
