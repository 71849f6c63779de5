"""Tests of mfsde.data: Snapshots, loaders (real files in ../shared/data when present), preprocessing
fitted on training times only, and held-out tasks."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO

from mfsde.data import (
    TASKS,
    MissingColumnError,
    Preprocessor,
    SnapshotError,
    Snapshots,
    Task,
    TaskError,
    UnknownTaskError,
    explicit,
    extrapolation,
    from_arrays,
    from_dataframe,
    get_task,
    highly_variable_genes,
    interpolation,
    leave_one_out,
    load,
    load_csv,
    load_h5ad,
    load_npy,
    load_npy_pattern,
    load_npy_stack,
    normalise_times,
    normalize_total,
)

ROOT = REPO
DATA = ROOT / ".." / "shared" / "data"


def shared(rel: str) -> Path:
    p = DATA / rel
    if not p.exists():
        pytest.skip(f"shared data file {rel} not found under {DATA.resolve()} (real-data test)")
    return p


def toy(counts=(5, 7, 6), d=3, seed=0, times=None, labels=False) -> Snapshots:
    rng = np.random.default_rng(seed)
    data = [rng.normal(size=(n, d)) + k for k, n in enumerate(counts)]
    labs = [rng.choice(["A", "B"], n) for n in counts] if labels else None
    return Snapshots(np.arange(len(counts)) if times is None else times, data, labs, None, "toy")


def write_csv(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


# == Snapshots ===================================================================================
def test_snapshots_basics():
    s = toy(labels=True, times=[2, 3, 7])
    assert s.times.dtype == np.float64 and all(a.dtype == np.float32 for a in s.data)
    assert (s.dim, s.n_times, len(s), s.counts, s.n_cells) == (3, 3, 3, [5, 7, 6], 18)
    r = repr(s)
    assert "T=3" in r and "d=3" in r and "[2, 3, 7]" in r and "[5, 7, 6]" in r and "toy" in r
    assert s.all_cells().shape == (18, 3) and np.array_equal(s.all_cells()[5:12], s.data[1])
    assert s.cell_times().tolist() == [2.0] * 5 + [3.0] * 7 + [7.0] * 6
    assert s.all_labels().shape == (18,)
    ts = s.tensors()
    assert [t.shape for t in ts] == [(5, 3), (7, 3), (6, 3)] and ts[0].dtype == torch.float32
    assert s.tensors(torch.float64)[1].dtype == torch.float64
    assert s.index_of(7) == 2 and s.index_of(3.0) == 1
    with pytest.raises(KeyError, match=r"time 5 is not a snapshot time; times are \['2', '3', '7'\]"):
        s.index_of(5)
    sub = s.subset([2, 0])
    assert sub.times.tolist() == [2.0, 7.0] and sub.counts == [5, 6] and np.array_equal(sub.data[1], s.data[2])
    assert sub.labels[1].tolist() == s.labels[2].tolist()
    with pytest.raises(IndexError, match="out of range"):
        s.subset([0, 3])
    proj = np.ones((3, 2), dtype=np.float32)
    m = s.map(lambda a: a @ proj)
    assert m.dim == 2 and m.counts == s.counts and np.allclose(m.data[0], s.data[0].sum(1, keepdims=True))
    assert m.labels is not None and m.feature_names is None
    with pytest.raises(SnapshotError, match="one row per cell"):
        s.map(lambda a: a[:2])
    assert s.with_times([0, 1, 2]).times.tolist() == [0, 1, 2]
    assert s.to_dict()["counts"] == [5, 7, 6]


def test_snapshots_validation_errors():
    ok = [np.zeros((3, 2)), np.ones((4, 2)), np.ones((2, 2))]
    with pytest.raises(
        SnapshotError, match=r"ragged dimensions: time point 2 \(t=2\) has d = 3 but time point 0 has d = 2"
    ):
        Snapshots([0, 1, 2], ok[:2] + [np.ones((2, 3))])
    bad = np.ones((4, 2))
    bad[0, 0] = np.nan
    bad[2, 1] = np.nan
    bad[3, 0] = np.inf
    with pytest.raises(SnapshotError, match=r"time point 1 \(t=1\) contains 3 non-finite value\(s\) \(2 NaN, 1 Inf\)"):
        Snapshots([0, 1, 2], [ok[0], bad, ok[2]])
    with pytest.raises(SnapshotError, match="at least 2 time points"):
        Snapshots([0], [ok[0]])
    with pytest.raises(SnapshotError, match=r"time point 1 \(t=5\) has no cells"):
        Snapshots([0, 5, 6], [ok[0], np.zeros((0, 2)), ok[2]])
    with pytest.raises(SnapshotError, match="labels of time point 1 .* 4 cells"):
        Snapshots([0, 1, 2], ok, labels=[["a"] * 3, ["a"] * 3, ["a"] * 2])
    with pytest.raises(SnapshotError, match="strictly increasing"):
        Snapshots([0, 2, 1], ok)
    with pytest.raises(SnapshotError, match="3 times but 2 data arrays"):
        Snapshots([0, 1, 2], ok[:2])
    with pytest.raises(SnapshotError, match="shape \\(n_cells, d\\)"):
        Snapshots([0, 1], [np.ones(3), np.ones((3, 1))])
    with pytest.raises(SnapshotError, match="3 feature names for data of dimension 2"):
        Snapshots([0, 1, 2], ok, feature_names=["a", "b", "c"])


def test_normalise_times():
    t = [2.0, 3.0, 4.0, 7.0]
    assert normalise_times(t, "index").tolist() == [0, 1, 2, 3]
    assert normalise_times(t, "shift").tolist() == [0, 1, 2, 5]
    assert np.allclose(normalise_times(t, "unit"), [0, 0.2, 0.4, 1.0])
    assert normalise_times(t, "none").tolist() == t
    s = normalise_times(toy(times=[2, 3, 7]), "index")
    assert isinstance(s, Snapshots) and s.times.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="unknown time mode 'days'"):
        normalise_times(t, "days")


# == loaders: real files =========================================================================
def test_emt_csv():
    p = shared("emt/emt.csv")
    s = load(p)
    assert (s.n_times, s.dim, s.counts) == (4, 10, [577, 885, 788, 883])
    assert s.times.tolist() == [0, 1, 2, 3] and s.feature_names == [f"x{i}" for i in range(1, 11)]
    # the first data line of the file is a cell of time index 3
    first = np.array(p.read_text().splitlines()[1].split(","), dtype=np.float64)
    assert first[0] == 3 and np.allclose(s.data[3][0], first[1:])
    py = load_csv(p, engine="python")
    assert py.counts == s.counts and all(np.array_equal(a, b) for a, b in zip(py.data, s.data))
    days = load_csv(p, time_values=[2, 3, 4, 7])
    assert days.times.tolist() == [2, 3, 4, 7] and np.array_equal(days.data[3], s.data[3])
    m = load_csv(p, time_values={0: 0.0, 1: 0.5, 2: 1.0, 3: 3.0})
    assert m.times.tolist() == [0, 0.5, 1, 3]
    with pytest.raises(SnapshotError, match="time_values has 3 entries but column 'samples' has 4 distinct"):
        load_csv(p, time_values=[1, 2, 3])
    assert load_csv(p, feature_cols=["x2", "x1"]).data[0][:, 1].tolist() == s.data[0][:, 0].tolist()


def test_weinreb_and_interacting_grn_csv():
    w = load(shared("weinreb/mouse_hematopoiesis.csv"))
    assert (w.n_times, w.dim, w.counts) == (3, 2, [1429, 3781, 5788])
    g = load(shared("interacting_grn/simulation_LJ.csv"))
    assert (g.n_times, g.dim, g.counts[0], g.n_cells) == (5, 2, 400, 2747)


def test_cite_npy():
    d = shared("cite")
    files = [d / f"full_cite_pcas_50_day_{t}.npy" for t in (2, 3, 4, 7)]
    s = load_npy(files, times=[2, 3, 4, 7])
    assert s.times.tolist() == [2, 3, 4, 7] and s.dim == 50 and s.counts == [6071, 7643, 8485, 7195]
    g = load(str(d / "full_cite_pcas_50_day_*.npy"))  # times parsed from the file names
    assert g.times.tolist() == [2, 3, 4, 7] and np.array_equal(g.data[3], s.data[3])
    f = load_npy_pattern(d / "full_cite_pcas_50_day_{}.npy", times=[2, 3, 4, 7])
    assert f.counts == s.counts and f.name == "full_cite_pcas_50_day"
    assert load(files).times.tolist() == [0, 1, 2, 3]


def test_bargaje_stack():
    p = shared("bargaje/Bifurcation.npy")
    with pytest.raises(SnapshotError, match="pickled Python objects that loading would execute.*--allow-pickle"):
        load(p)  # an object array is a pickle: explicit opt-in only
    s = load(p, allow_pickle=True)
    assert (s.n_times, s.dim) == (8, 4)
    assert s.counts == [231, 166, 93, 211, 122, 258, 456, 359]
    raw = np.load(p, allow_pickle=True)
    assert np.allclose(s.data[5], raw[0, 5])
    assert load_npy_stack(p, times=np.arange(8) * 0.5, allow_pickle=True).times[-1] == 3.5
    with pytest.raises(SnapshotError, match="object array.*load_npy_stack"):
        load_npy([p, p])


# == loaders: in-memory and bad files ============================================================
def test_from_dataframe_and_arrays():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(
        {
            "t": ["day4", "day2", "day4", "day2", "day2"],
            "ct": list("abcab"),
            "g1": [1.0, 2, 3, 4, 5],
            "g2": [0.0, 0, 1, 1, 1],
        }
    )
    s = from_dataframe(df, time_col="t", label_col="ct")
    assert s.times.tolist() == [2, 4] and s.counts == [3, 2] and s.feature_names == ["g1", "g2"]
    assert s.data[0][:, 0].tolist() == [2, 4, 5] and s.labels[0].tolist() == ["b", "a", "b"]
    a = from_arrays([np.zeros((2, 3)), np.ones((4, 3))], times=[0.5, 1.5], labels=[["x", "y"], list("abcd")])
    assert a.times.tolist() == [0.5, 1.5] and a.labels[1].tolist() == list("abcd")
    with pytest.raises(SnapshotError, match="2 times given for 1 time points"):
        from_arrays([np.zeros((2, 3))], times=[0, 1])
    with pytest.raises(SnapshotError, match="non-numeric value\\(s\\) \\['early'\\].*time_values"):
        from_dataframe(df.assign(t=["early", "day2", "day4", "day2", "day2"]), time_col="t", label_col="ct")
    with pytest.raises(SnapshotError, match="non-numeric feature column\\(s\\) \\['ct'\\]"):
        from_dataframe(df, time_col="t")


@pytest.mark.parametrize("engine", ["pandas", "python"])
def test_bad_csv_files(tmp_path, engine):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_csv(tmp_path / "nope.csv", engine=engine)
    p = write_csv(
        tmp_path / "a.csv",
        """
        time,x1,x2
        0,1,2
        1,3,4
        """,
    )
    with pytest.raises(
        MissingColumnError, match=r"a.csv.*time column 'samples' not found; columns are \['time', 'x1', 'x2'\]"
    ):
        load_csv(p, engine=engine)
    with pytest.raises(MissingColumnError, match=r"label column 'ct' not found"):
        load_csv(p, time_col="time", label_col="ct", engine=engine)
    assert load_csv(p, time_col="time", engine=engine).counts == [1, 1]
    one = write_csv(
        tmp_path / "one.csv",
        """
        samples,x1
        0,1
        0,2
        """,
    )
    with pytest.raises(SnapshotError, match=r"one.csv.*at least 2 time points.*got 1 \(time 0\)"):
        load_csv(one, engine=engine)
    nan = write_csv(
        tmp_path / "nan.csv",
        """
        samples,x1,x2
        0,1,2
        1,,4
        1,nan,4
        2,1,1
        """,
    )
    with pytest.raises(SnapshotError, match=r"nan.csv.*time point 1 \(t=1\) contains 2 non-finite value\(s\)"):
        load_csv(nan, engine=engine)
    tnan = write_csv(
        tmp_path / "tnan.csv",
        """
        samples,x1
        0,1
        ,2
        1,3
        """,
    )
    with pytest.raises(SnapshotError, match=r"tnan.csv.*time column 'samples' has 1 missing"):
        load_csv(tnan, engine=engine)
    dup = write_csv(
        tmp_path / "dup.csv",
        """
        samples,x1,x1
        0,1,2
        1,1,2
        """,
    )
    with pytest.raises(SnapshotError, match=r"duplicate column name\(s\) \['x1'\]"):
        load_csv(dup, engine=engine)


def test_bad_npy_files(tmp_path):
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(a, np.zeros((4, 3), dtype=np.float32))
    np.save(b, np.zeros((5, 2), dtype=np.float32))
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        load_npy([a, tmp_path / "missing.npy"])
    with pytest.raises(
        SnapshotError, match=r"ragged dimensions: '.*b.npy' \(time 1\) has d = 2 but '.*a.npy' has d = 3"
    ):
        load_npy([a, b])
    with pytest.raises(SnapshotError, match="at least 2 time points"):
        load_npy([a])
    with pytest.raises(SnapshotError, match="single \\(n_cells, d\\) array, i.e. one time point"):
        load(a)
    c = tmp_path / "c.npy"
    x = np.ones((3, 3))
    x[1, 1] = np.nan
    np.save(c, x)
    with pytest.raises(SnapshotError, match=r"c.npy.*time point 1 \(t=1\) contains 1 non-finite"):
        load_npy([a, c])
    with pytest.raises(FileNotFoundError, match="no file matches"):
        load(str(tmp_path / "zzz_*.npy"))
    with pytest.raises(FileNotFoundError, match="stack.npy"):
        load_npy_stack(tmp_path / "stack.npy")
    ragged = np.empty((1, 2), dtype=object)
    ragged[0, 0], ragged[0, 1] = np.zeros((3, 4)), np.zeros((2, 5))
    np.save(tmp_path / "stack.npy", ragged, allow_pickle=True)
    with pytest.raises(SnapshotError, match=r"stack.npy.*ragged dimensions: time point 1"):
        load(tmp_path / "stack.npy", allow_pickle=True)
    with pytest.raises(ValueError, match="supported: .csv, .npy, .h5ad"):
        load(tmp_path / "x.parquet")


# == AnnData round trip + preprocessing ==========================================================
def _write_h5ad(path: Path, n=40, g=120, seed=0):
    ad = pytest.importorskip("anndata")
    pd = pytest.importorskip("pandas")
    sparse = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(seed)
    days = [2, 3, 4, 7]
    blocks = []
    for k in range(len(days)):
        mu = rng.gamma(0.6, 3.0, size=g) * np.where(np.arange(g) < 20, 1 + k, 1.0)
        blocks.append(rng.poisson(mu, size=(n, g)))
    x = np.concatenate(blocks).astype(np.float32)
    perm = rng.permutation(len(x))  # cells of different days interleaved in the file
    obs = pd.DataFrame(
        {
            "day": np.repeat([f"day{d}" for d in days], n)[perm],
            "cell_type": rng.choice(["prog", "ery", "mono"], len(x)),
        },
        index=[f"cell{i}" for i in range(len(x))],
    )
    var = pd.DataFrame(index=[f"gene{j}" for j in range(g)])
    adata = ad.AnnData(sparse.csr_matrix(x[perm]), obs=obs, var=var)
    adata.layers["counts"] = sparse.csr_matrix(x[perm])
    adata.obsm["X_pca"] = rng.normal(size=(len(x), 5)).astype(np.float32)
    adata.write_h5ad(path)
    return x, perm


def test_h5ad_round_trip_and_preprocess_on_train_only(tmp_path):
    path = tmp_path / "toy.h5ad"
    x, perm = _write_h5ad(path)
    s = load(path, time_col="day", label_col="cell_type")
    assert s.times.tolist() == [2, 3, 4, 7] and s.counts == [40] * 4 and s.dim == 120
    assert s.feature_names[:2] == ["gene0", "gene1"] and set(np.concatenate(s.labels)) == {"prog", "ery", "mono"}
    # cells of each day are those of the generated block, in file order
    day_of_row = perm // 40
    assert np.array_equal(s.data[3], x[perm][day_of_row == 3])
    assert np.array_equal(load_h5ad(path, "day", layer="counts").data[1], s.data[1])
    assert load_h5ad(path, "day", obsm="X_pca").dim == 5
    with pytest.raises(
        MissingColumnError, match=r"time column 'time' not in obs; obs columns are \['day', 'cell_type'\]"
    ):
        load_h5ad(path, "time")
    with pytest.raises(MissingColumnError, match=r"layer 'raw' not found; layers are \['counts'\]"):
        load_h5ad(path, "day", layer="raw")
    with pytest.raises(FileNotFoundError, match="absent.h5ad"):
        load_h5ad(tmp_path / "absent.h5ad", "day")

    task = get_task("interpolate:2", s.n_times)  # hold out day 4
    pre = Preprocessor("counts")  # 2000 HVG (> 120 genes: all kept), 1e4, log1p, scale, PCA 50
    out = pre.fit_transform(s, task)
    assert out.dim == 50 and out.counts == s.counts and out.feature_names[0] == "PC1"
    assert out.labels[2].tolist() == s.labels[2].tolist() and out.times.tolist() == [2, 3, 4, 7]
    rec = json.loads(json.dumps(pre.record))
    assert rec["train_indices"] == [0, 1, 3] and rec["heldout_indices"] == [2]
    assert [st["step"] for st in rec["steps"]] == ["normalize_total", "log1p", "highly_variable_genes", "scale", "pca"]
    # the PCA is fitted on the training cells: their scores are centred
    train_scores = np.concatenate([out.data[i] for i in task.train]).astype(np.float64)
    assert np.abs(train_scores.mean(0)).max() < 1e-3
    assert np.abs(out.data[2].astype(np.float64).mean(0)).max() > 1e-2

    # drastically change the held-out time point: the fit must not move
    for n_top in (2000, 40):
        changed = Snapshots(
            s.times, [a if k != 2 else a * 50 + 7 for k, a in enumerate(s.data)], s.labels, s.feature_names, s.name
        )
        p1 = Preprocessor("counts", n_top_genes=n_top).fit(s, task.train)
        p2 = Preprocessor("counts", n_top_genes=n_top).fit(changed, task.train)
        assert np.array_equal(p1.components_, p2.components_) and np.array_equal(p1.scale_mean_, p2.scale_mean_)
        assert (p1.genes_ is None) == (n_top >= 120)
        if p1.genes_ is not None:
            assert len(p1.genes_) == 40 and np.array_equal(p1.genes_, p2.genes_)
        t1, t2 = p1.transform(s), p2.transform(changed)
        assert all(np.array_equal(t1.data[i], t2.data[i]) for i in task.train)
        assert not np.allclose(t1.data[2], t2.data[2])
        # ...whereas fitting on every time point does see the change (so the check above can fail)
        q1 = Preprocessor("counts", n_top_genes=n_top).fit(s)
        q2 = Preprocessor("counts", n_top_genes=n_top).fit(changed)
        assert not np.allclose(q1.scale_mean_, q2.scale_mean_)

    # the fitted transform is restored from its state without refitting
    back = Preprocessor.from_state_dict(pre.state_dict())
    assert np.array_equal(back.transform(s).data[2], out.data[2])
    with pytest.raises(SnapshotError, match="has 3 negative value"):
        Preprocessor("counts").fit(Snapshots([0, 1], [-np.eye(3), np.eye(3)]))


def _toy_counts(seed=7, n=120, g=400):
    rng = np.random.default_rng(seed)
    mu = rng.gamma(0.5, 4.0, size=g)
    shape = rng.gamma(2.0, 1.0, size=g)
    lam = rng.gamma(shape, mu / shape, size=(n, g))
    x = rng.poisson(lam).astype(np.float32)
    x[:, :3] = 0.0
    return x


def test_highly_variable_genes_matches_scanpy_seurat():
    # reference: scanpy 1.11.5, normalize_total(1e4) + log1p + highly_variable_genes(n_top_genes=50, flavor="seurat")
    expected = [
        11,
        34,
        50,
        51,
        65,
        75,
        76,
        85,
        129,
        133,
        151,
        153,
        156,
        166,
        186,
        194,
        195,
        200,
        203,
        213,
        214,
        215,
        216,
        218,
        222,
        227,
        229,
        231,
        236,
        259,
        275,
        286,
        287,
        301,
        305,
        314,
        330,
        338,
        339,
        340,
        348,
        349,
        358,
        368,
        370,
        376,
        378,
        381,
        384,
        387,
    ]
    logx = np.log1p(normalize_total(_toy_counts(), 1e4))
    assert np.allclose(logx.sum(1) > 0, True)
    idx, stats = highly_variable_genes([logx[:50], logx[50:]], n_top_genes=50)
    assert idx.tolist() == expected
    assert np.allclose(stats["dispersions_norm"][[11, 34, 50]], [2.141959, 1.609641, 2.150035], atol=1e-5)
    assert np.isnan(stats["dispersions_norm"]).sum() == 17  # constant genes are never selected
    assert highly_variable_genes(logx, n_top_genes=10_000)[0].size == 400 - 17
    # a gene alone in its mean bin gets normalised dispersion 1 (scanpy's rule)
    x = _toy_counts()
    x[:, 3] = np.random.default_rng(1).poisson(5000.0, size=len(x))
    _, st = highly_variable_genes(np.log1p(normalize_total(x)), n_top_genes=50)
    assert st["dispersions_norm"][3] == pytest.approx(1.0)


def test_preprocess_embedded_real_emt():
    s = load(shared("emt/emt.csv"))
    ident = Preprocessor("embedded").fit_transform(s, [0, 1, 2])
    assert all(np.array_equal(a, b) for a, b in zip(ident.data, s.data))
    assert ident.feature_names == s.feature_names and ident.dim == 10
    sc = Preprocessor("embedded", scale=True).fit(s, [0, 1, 2])
    z = sc.transform(s)
    train = np.concatenate(z.data[:3]).astype(np.float64)
    assert np.allclose(train.mean(0), 0, atol=1e-5) and np.allclose(train.std(0), 1, atol=1e-4)
    assert not np.allclose(z.data[3].mean(0), 0, atol=1e-2)
    p = Preprocessor("embedded", n_components=3).fit(s, [0, 1, 2])
    assert p.transform(s).dim == 3 and p.record["steps"][-1]["n_components"] == 3
    with pytest.raises(ValueError, match=r"\['n_top_genes'\] apply to kind='counts' only"):
        Preprocessor("embedded", n_top_genes=100)
    with pytest.raises(RuntimeError, match="not fitted"):
        Preprocessor("embedded").transform(s)
    with pytest.raises(SnapshotError, match="d = 3 but the preprocessor was fitted on d = 10"):
        sc.transform(toy())
    with pytest.raises(ValueError, match="unknown preprocessing kind"):
        Preprocessor("rna")
    with pytest.raises(ValueError, match=r"train_indices \[0, 9\] invalid for 4 time points"):
        Preprocessor("embedded").fit(s, [0, 9])


def test_core_import_and_csv_without_optional_packages(tmp_path):
    p = write_csv(
        tmp_path / "t.csv",
        """
        samples,x1,x2,ct
        0,1,2,a
        1,3,4,b
        1,5,6,a
        """,
    )
    code = textwrap.dedent(f"""
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('pandas', 'anndata', 'sklearn', 'scanpy'):
                    raise ImportError('blocked ' + name)
        sys.meta_path.insert(0, Block())
        import mfsde.data as md
        s = md.load({str(p)!r}, label_col='ct')
        assert s.counts == [1, 2] and s.labels[1].tolist() == ['b', 'a'], s
        md.Preprocessor('embedded').fit_transform(s)
        try:
            md.Preprocessor('embedded', n_components=1).fit(s)
        except ImportError as e:
            assert 'pip install mfsde[sc]' in str(e)
        else:
            raise AssertionError('PCA without scikit-learn should fail')
        print('ok')
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


# == tasks =======================================================================================
def test_named_tasks():
    assert get_task("zb_easy").heldout == [4, 6, 8] and get_task("zb_easy").n_times == 12
    assert get_task("zb_medium").heldout == [10, 11] and get_task("zb_medium").kind == "extrapolation"
    assert get_task("zb_hard").heldout == [2, 4, 6, 8, 10, 11] and get_task("zb_hard").kind == "both"
    assert get_task("zb_hard").train == [0, 1, 3, 5, 7, 9]
    assert get_task("mef_easy", 19).heldout == [5, 10, 15] and get_task("mef_easy").kind == "interpolation"
    assert get_task("mef_medium").train == list(range(16))
    assert get_task("mef_hard").heldout == [5, 7, 9, 11, 15, 16, 17, 18]
    for k in range(2, 8):
        t = get_task(f"panc_loo_{k}", 8)
        assert t.heldout == [k] and t.train == [i for i in range(8) if i != k]
    assert sorted(TASKS) == sorted(
        ["zb_easy", "zb_medium", "zb_hard", "mef_easy", "mef_medium", "mef_hard"]
        + [f"panc_loo_{k}" for k in range(2, 8)]
    )
    get_task("zb_easy").train.append(4)  # a copy: the registry is unchanged
    assert TASKS["zb_easy"].train == [0, 1, 2, 3, 5, 7, 9, 10, 11]
    with pytest.raises(TaskError, match="'zb_easy' is defined for 12 time points, but the data have 4"):
        get_task("zb_easy", 4)


def test_generic_tasks_and_constructors():
    assert get_task("interpolate:2,3", 6).to_dict() == {
        "name": "interpolate:2,3",
        "train": [0, 1, 4, 5],
        "heldout": [2, 3],
        "n_times": 6,
    }
    assert get_task("extrapolate:2", 5).heldout == [3, 4]
    assert get_task("loo:2", 4).train == [0, 1, 3]
    assert get_task(" heldout: 3, 1 ", 5).heldout == [1, 3]
    assert get_task("all", 3).heldout == [] and get_task("all", 3).kind == "none"
    assert interpolation(5, [1, 3]).kind == "interpolation"
    assert extrapolation(4, 1).heldout == [3]
    loo = leave_one_out(8)
    assert [t.heldout for t in loo] == [[k] for k in range(1, 8)] and loo[0].name == "loo:1"
    assert explicit(5, [4, 2]).train == [0, 1, 3]
    t = Task.from_dict(get_task("mef_hard").to_dict())
    assert t.heldout == [5, 7, 9, 11, 15, 16, 17, 18] and t.unused() == []
    train, held = get_task("interpolate:1", 3).split(toy())
    assert train.counts == [5, 6] and list(held) == [1] and held[1].shape == (7, 3)
    with pytest.raises(UnknownTaskError, match=r"unknown task 'zb_easyy'; available: \['zb_easy'.*'loo:I'"):
        get_task("zb_easyy", 12)
    with pytest.raises(KeyError):
        get_task("bogus:1", 4)
    with pytest.raises(TaskError, match="generic: pass n_times"):
        get_task("loo:2")
    with pytest.raises(TaskError, match=r"index\(es\) \[5\] out of range for 4 time points"):
        get_task("heldout:5", 4)
    with pytest.raises(TaskError, match="not interior"):
        interpolation(4, [3])
    with pytest.raises(TaskError, match="k_last must be an integer in 1..2"):
        extrapolation(4, 3)


def test_task_validation_errors():
    with pytest.raises(TaskError, match=r"index\(es\) \[2\] are both trained and held out"):
        Task("x", [0, 1, 2], [2, 3])
    with pytest.raises(TaskError, match="time index 0 is the initial population .* cannot be held out"):
        Task("x", [1, 2], [0])
    with pytest.raises(TaskError, match="time index 0 .* must be in train"):
        Task("x", [1, 2], [3])
    with pytest.raises(TaskError, match=r"index\(es\) \[7\] out of range for 5 time points \(valid: 0..4\)"):
        Task("x", [0, 1], [7], n_times=5)
    with pytest.raises(TaskError, match=r"out of range for 3 time points"):
        Task("x", [0, 1], [4]).check(3)
    with pytest.raises(TaskError, match="duplicate train index"):
        Task("x", [0, 1, 1], [2])
    with pytest.raises(TaskError, match="at least 2 training times"):
        Task("x", [0], [1])
    with pytest.raises(TaskError, match="must be integers"):
        Task("x", [0, 1.5], [2])
