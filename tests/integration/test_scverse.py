"""The scanpy-style AnnData path: mfsde.pp / mfsde.tl / mfsde.pl and the CellRank hand-off."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO

ad = pytest.importorskip("anndata", reason="the AnnData API needs anndata (pip install mfsde[sc])")
pd = pytest.importorskip("pandas")

import mfsde  # noqa: E402  (after the importorskips)
from mfsde.data import MissingColumnError  # noqa: E402

ROOT = REPO
EMT = ROOT.parent / "shared" / "data" / "emt" / "emt.csv"
FAST = dict(train__iterations=2, train__n_particles=24, progress=False)


def _counts(n_per=60, genes=80, seed=0):
    """Counts at 3 days with a day-dependent programme; cell types A/B; shuffled obs order."""
    rng = np.random.default_rng(seed)
    days, types, rows = [], [], []
    for day in (0, 1, 2):
        rate = rng.gamma(2.0, 1.0, genes) * (1 + day * (np.arange(genes) < 10))
        t = rng.choice(["A", "B"], n_per)
        rows.append(rng.poisson(rate * np.where(t == "A", 1.0, 1.5)[:, None]))
        days += [f"day{day}"] * n_per
        types += list(t)
    X = np.concatenate(rows).astype(np.float32)
    perm = rng.permutation(len(X))
    obs = pd.DataFrame(
        {"day": np.asarray(days)[perm], "cell_type": np.asarray(types)[perm]}, index=[f"cell{i}" for i in range(len(X))]
    )
    return ad.AnnData(X=X[perm], obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(genes)]))


@pytest.fixture(scope="module")
def fitted():
    adata = _counts()
    mfsde.pp.preprocess(adata, "day", task="loo:1", n_top_genes=30, n_comps=4)
    model = mfsde.tl.fit(adata, "day", preset="rbf", task="loo:1", seed=0, **FAST)
    return adata, model


def test_preprocess_fits_on_training_times_only_and_writes_scanpy_keys():
    adata = _counts()
    mfsde.pp.preprocess(adata, "day", task="loo:1", n_top_genes=30, n_comps=4)
    assert adata.obsm["X_pca"].shape == (adata.n_obs, 4)
    assert adata.var["highly_variable"].sum() == 30
    assert adata.varm["PCs"].shape == (80, 4)
    assert np.all(adata.varm["PCs"][~adata.var["highly_variable"].to_numpy()] == 0)
    assert len(adata.uns["pca"]["variance_ratio"]) == 4
    rec = json.loads(adata.uns["mfsde"]["preprocess"])
    assert rec["train_indices"] == [0, 2] and rec["heldout_indices"] == [1] and rec["heldout_times"] == [1.0]
    # changing the held-out day's counts changes nothing fitted: training cells keep their coordinates
    other = adata.copy()
    held = (other.obs["day"] == "day1").to_numpy()
    other.X[held] = other.X[held] * 5 + 3
    mfsde.pp.preprocess(other, "day", task="loo:1", n_top_genes=30, n_comps=4)
    np.testing.assert_allclose(other.obsm["X_pca"][~held], adata.obsm["X_pca"][~held], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(other.varm["PCs"], adata.varm["PCs"])
    # ...while fitting on all days does see it
    mfsde.pp.preprocess(other, "day", n_top_genes=30, n_comps=4)
    assert not np.allclose(other.varm["PCs"], adata.varm["PCs"])


def test_fit_records_what_it_was_fitted_on(fitted):
    adata, model = fitted
    rec = adata.uns["mfsde"]["fit"]
    assert rec["time_key"] == "day" and rec["basis"] == "X_pca" and rec["preset"] == "rbf"
    np.testing.assert_array_equal(rec["times"], [0.0, 1.0, 2.0])
    assert '"heldout": [1]' in rec["task"] and model.dim == 4
    assert '"iterations": 2' in rec["config"] and rec["iterations"] == 2


def test_velocity_is_the_drift_of_each_cell_within_its_own_time_point(fitted):
    adata, model = fitted
    mfsde.tl.velocity(adata, model)
    v, vi, vx = (adata.obsm[k] for k in ("velocity_pca", "velocity_pca_intra", "velocity_pca_inter"))
    assert v.shape == adata.obsm["X_pca"].shape
    np.testing.assert_allclose(v, vi + vx, rtol=1e-5, atol=1e-6)
    assert np.abs(vx).max() > 0  # rbf interacts
    for day, t in (("day0", 0.0), ("day2", 2.0)):  # obs order is shuffled: rows must still match
        rows = np.flatnonzero(adata.obs["day"].to_numpy() == day)
        with torch.no_grad():
            ref = model.data_velocity(torch.as_tensor(adata.obsm["X_pca"][rows]), t).numpy()
        np.testing.assert_allclose(v[rows], ref, rtol=1e-4, atol=1e-5)


def test_ito_model_has_exactly_zero_interaction_velocity():
    adata = _counts(seed=1)
    mfsde.pp.preprocess(adata, "day", n_top_genes=30, n_comps=3)
    model = mfsde.tl.fit(adata, "day", preset="ito", **FAST)
    mfsde.tl.velocity(adata, model)
    assert np.all(adata.obsm["velocity_pca_inter"] == 0)
    with pytest.raises(ValueError, match="the model has no interaction"):
        mfsde.tl.interactions(adata, model, groupby="cell_type")


def test_interactions_per_time_with_a_shuffled_label_reference(fitted):
    adata, model = fitted  # rbf: symmetric, so the label matrices are symmetric and the null is NaN
    rec = mfsde.tl.interactions(adata, model, groupby="cell_type", n_cells=50, n_permutations=20, cellwise=True)
    assert list(rec["names"]) == ["A", "B"] and rec["matrix"].shape == (3, 2, 2)
    np.testing.assert_allclose(rec["net"], rec["matrix"] - rec["matrix"].transpose(0, 2, 1))
    assert np.all(rec["counts"].sum(1) == 50) and np.all(rec["asymmetry"] < 1e-9)
    assert np.isnan(rec["asymmetry_p_value"]).all() and np.isnan(rec["asymmetry_null_q95"]).all()
    assert adata.uns["mfsde"]["interactions"] is rec
    # the cell-wise weights belong to the cells they name, in that order
    w = rec["cellwise"]["2"]
    x = torch.as_tensor(adata[w["obs_names"]].obsm["X_pca"])
    with torch.no_grad():
        ref = model.drift.inter.pair_weights(model.scale.encode(x), model.scale.encode_times(2.0)).mean(-3)
    np.testing.assert_allclose(w["weights"], ref.numpy(), rtol=1e-4, atol=1e-7)


def test_interactions_by_influence_are_the_drift_sensitivities_of_the_named_cells(fitted):
    from mfsde.explain import influence_matrix

    adata, model = fitted  # rbf is Newtonian: its influence is reciprocal too, but now it has a null
    rec = mfsde.tl.interactions(
        adata, model, groupby="cell_type", n_cells=40, n_permutations=10, cellwise=True, measure="influence"
    )
    assert rec["measure"] == "influence" and rec["matrix"].shape == (3, 2, 2)
    w = rec["cellwise"]["1"]
    ref = influence_matrix(model, adata[w["obs_names"]].obsm["X_pca"], 1.0)
    np.testing.assert_allclose(w["weights"], ref, rtol=1e-4, atol=1e-8)
    assert np.isfinite(rec["asymmetry_p_value"]).all() and np.all(rec["asymmetry"] < 1e-4)
    with pytest.raises(ValueError, match="measure must be"):
        mfsde.tl.interactions(adata, model, groupby="cell_type", measure="attention")


def test_attention_asymmetry_has_a_permutation_reference():
    adata = _counts(seed=3)
    adata.obs.loc[adata.obs_names[:7], "cell_type"] = np.nan  # unlabelled cells stay out of the matrices
    mfsde.pp.preprocess(adata, "day", n_top_genes=30, n_comps=4)
    model = mfsde.tl.fit(adata, "day", preset="scimf", **FAST)
    rec = mfsde.tl.interactions(adata, model, groupby="cell_type", n_cells=None, n_permutations=30)
    assert list(rec["names"]) == ["A", "B"]
    assert rec["counts"].sum() == adata.n_obs - 7
    p = rec["asymmetry_p_value"]
    assert np.all((p >= 1 / 31) & (p <= 1)) and np.all(rec["asymmetry_null_q95"] >= rec["asymmetry_null_mean"])


def test_predict_gives_simulated_cells_that_concatenate(fitted):
    adata, model = fitted
    pred = mfsde.tl.predict(adata, model, times=[2.0, 1.5], n_cells=40, seed=3)
    assert pred.n_obs == 80 and pred.obsm["X_pca"].shape == (80, 4)
    assert pred.obs["simulated"].all()
    again = mfsde.tl.predict(adata, model, times=[2.0, 1.5], n_cells=40, seed=3)
    np.testing.assert_array_equal(pred.obsm["X_pca"], again.obsm["X_pca"])
    assert list(pred.obs["day"].astype(str)) == ["1.5"] * 40 + ["day2"] * 40  # the column's own labels
    np.testing.assert_array_equal(pred.obs["mfsde_time"], [1.5] * 40 + [2.0] * 40)
    both = ad.concat([adata, pred], join="outer")
    assert both.n_obs == adata.n_obs + 80 and "X_pca" in both.obsm


def test_predicted_cells_keep_a_categorical_time_column_and_save(fitted, tmp_path):
    adata, model = fitted
    cat = adata.copy()
    cat.obs["day"] = pd.Categorical(cat.obs["day"], categories=["day0", "day1", "day2"], ordered=True)
    pred = mfsde.tl.predict(cat, model, n_cells=10)
    assert pred.obs["day"].dtype == "category" and list(pred.obs["day"].unique()) == ["day1", "day2"]
    both = ad.concat([cat, pred], join="outer")
    both.obs["simulated"] = both.obs["simulated"].astype("boolean").fillna(False)
    both.write_h5ad(tmp_path / "both.h5ad")
    assert ad.read_h5ad(tmp_path / "both.h5ad").n_obs == cat.n_obs + 20


def test_everything_written_survives_write_h5ad(fitted, tmp_path):
    adata, model = fitted
    mfsde.tl.velocity(adata, model)
    mfsde.tl.interactions(adata, model, groupby="cell_type", n_cells=40, n_permutations=5)
    adata.write_h5ad(tmp_path / "a.h5ad")
    back = ad.read_h5ad(tmp_path / "a.h5ad")
    assert set(back.uns["mfsde"]) >= {"fit", "preprocess", "velocity", "interactions"}
    np.testing.assert_array_equal(back.obsm["velocity_pca"], adata.obsm["velocity_pca"])


def test_plots_return_axes_and_save(fitted, tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    adata, model = fitted
    mfsde.tl.velocity(adata, model)
    mfsde.tl.interactions(adata, model, groupby="cell_type", n_cells=40, n_permutations=5)
    adata.obsm["X_umap"] = adata.obsm["X_pca"][:, [1, 0]] * 3
    for mode in ("stream", "arrows"):
        ax = mfsde.pl.velocity(
            adata, basis="umap", color="cell_type", mode=mode, show=False, save=tmp_path / f"{mode}.png"
        )
        assert ax.get_xlabel() == "umap 1" and (tmp_path / f"{mode}.png").stat().st_size > 0
    proj = adata.obsm["velocity_pca_umap"]
    assert proj.shape == (adata.n_obs, 2) and np.isfinite(proj).all()
    for kind in ("heatmap", "graph"):
        assert mfsde.pl.interactions(adata, time=2, kind=kind, show=False) is not None
    axes = mfsde.pl.predicted(adata, mfsde.tl.predict(adata, model, n_cells=30), show=False)
    assert len(axes) == 2
    legends = [[t.get_text() for t in ax.get_legend().get_texts()] for ax in axes]
    assert legends == [["observed (60)", "simulated (30)"]] * 2


def test_projection_onto_the_model_basis_is_the_velocity_itself(fitted):
    adata, model = fitted
    mfsde.tl.velocity(adata, model)
    np.testing.assert_array_equal(mfsde.pl.velocity_embedding(adata, basis="pca"), adata.obsm["velocity_pca"][:, :2])


def test_bad_input_names_the_key_and_what_exists(fitted):
    adata, model = fitted
    with pytest.raises(
        MissingColumnError, match=r"time_key 'when' not in adata.obs; obs columns are \['day', 'cell_type'"
    ):
        mfsde.tl.fit(adata, "when", **FAST)
    with pytest.raises(MissingColumnError, match=r"basis 'X_umap3'.*obsm keys are \['X_pca'"):
        mfsde.tl.fit(adata, "day", basis="X_umap3", **FAST)
    with pytest.raises(MissingColumnError, match=r"groupby 'celltype' not in adata.obs"):
        mfsde.tl.interactions(adata, model, groupby="celltype")
    one = adata.copy()
    one.obs["batch"] = "b1"
    with pytest.raises(ValueError, match=r"groupby 'batch' has a single category \['b1'\]"):
        mfsde.tl.interactions(one, model, groupby="batch")
    other = adata.copy()
    other.obsm["X_pca"] = other.obsm["X_pca"][:, :3]
    with pytest.raises(ValueError, match=r"model has dimension 4 but obsm\['X_pca'\] has 3 columns"):
        mfsde.tl.velocity(other, model)
    with pytest.raises(ValueError, match="later than the first time point"):
        mfsde.tl.predict(adata, model, times=[0.0])
    with pytest.raises(TypeError, match="adata must be an AnnData"):
        mfsde.tl.velocity(np.zeros((3, 2)), model)
    with pytest.raises(KeyError, match="run mfsde.tl.interactions first"):
        mfsde.pl.interactions(_counts())
    with pytest.raises(TypeError, match="basis must be an obsm key"):
        mfsde.tl.fit(adata, "day", basis=None, **FAST)
    logged = _counts()
    logged.uns["log1p"] = {"base": None}
    with pytest.raises(ValueError, match=r"already log-normalised \(uns\['log1p'\] is set\)"):
        mfsde.pp.preprocess(logged, "day")
    embedded = _counts()
    embedded.X = np.asarray(embedded.X, dtype=np.float32) / 7.0  # continuous values, as EMT's [0, 1] embedding
    with pytest.raises(ValueError, match="kind='counts' needs raw counts but adata.X has non-integer values"):
        mfsde.pp.preprocess(embedded, "day")
    embedded.X = embedded.X - 1.0
    with pytest.raises(ValueError, match="has negative values .* or kind='embedded'"):
        mfsde.pp.preprocess(embedded, "day")
    mfsde.pp.preprocess(embedded, "day", kind="embedded", n_comps=3)
    words = adata.copy()
    words.obs["stage"] = np.where(words.obs["day"] == "day0", "early", "late")
    with pytest.raises(mfsde.data.SnapshotError, match="ordered categorical whose category order is the time order"):
        mfsde.tl.fit(words, "stage", **FAST)


def test_fit_warns_when_preprocessing_saw_the_held_out_time():
    adata = _counts(seed=4)
    mfsde.pp.preprocess(adata, "day", n_top_genes=30, n_comps=3)  # fitted on every day
    with pytest.warns(UserWarning, match=r"fitted on held-out time\(s\) \[1.0\]"):
        mfsde.tl.fit(adata, "day", preset="ito", task="loo:1", **FAST)


def test_populations_through_population_key():
    adata = _counts(seed=2)
    adata.obs["donor"] = np.where(np.arange(adata.n_obs) % 2, "d1", "d2")
    mfsde.pp.preprocess(adata, "day", n_top_genes=30, n_comps=3)
    model = mfsde.tl.fit(adata, "day", preset="rbf", population_key="donor", **FAST)
    assert adata.uns["mfsde"]["fit"]["population_key"] == "donor"
    mfsde.tl.velocity(adata, model)
    rows = np.flatnonzero((adata.obs["donor"] == "d1").to_numpy() & (adata.obs["day"] == "day2").to_numpy())
    with torch.no_grad():  # ρ is the cells of the same donor and day
        ref = model.data_velocity(torch.as_tensor(adata.obsm["X_pca"][rows]), 2.0).numpy()
    np.testing.assert_allclose(adata.obsm["velocity_pca"][rows], ref, rtol=1e-4, atol=1e-5)
    pred = mfsde.tl.predict(adata, model, n_cells=20, population="d2")
    assert set(pred.obs["donor"]) == {"d2"}


def test_cellrank_velocity_kernel_reads_mfsde_velocities(fitted):
    cr = pytest.importorskip("cellrank", reason="the CellRank hand-off needs pip install mfsde[cellrank]")
    sc = pytest.importorskip("scanpy")
    adata, model = fitted
    mfsde.tl.velocity(adata, model)
    sc.pp.neighbors(adata, use_rep="X_pca", n_neighbors=15)
    vk = cr.kernels.VelocityKernel(adata, attr="obsm", xkey="X_pca", vkey="velocity_pca").compute_transition_matrix()
    T = vk.transition_matrix.toarray()
    np.testing.assert_allclose(T.sum(1), 1.0, atol=1e-6)
    # transitions follow the velocity: the expected displacement points along it
    x, v = adata.obsm["X_pca"].astype(float), adata.obsm["velocity_pca"].astype(float)
    step = T @ x - x
    cos = (step * v).sum(1) / (np.linalg.norm(step, axis=1) * np.linalg.norm(v, axis=1) + 1e-12)
    assert np.median(cos) > 0.3


@pytest.mark.slow
def test_tutorial_runs(tmp_path):
    pytest.importorskip("cellrank", reason="the tutorial needs pip install mfsde[cellrank]")
    if not EMT.exists():
        pytest.skip(f"real data absent: {EMT} (see ../shared/data/README.md)")
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "anndata_cellrank.py"), "2", str(tmp_path / "t.png")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "terminal-state fates per time point" in out.stdout and (tmp_path / "t.png").stat().st_size > 0
