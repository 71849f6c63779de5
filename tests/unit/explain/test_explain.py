"""Interpretation outputs: attention maps, label aggregation, asymmetry, velocities, figures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mfsde
from mfsde.data import from_arrays
from mfsde.explain import (
    NoInteractionWeights,
    asymmetry_index,
    cluster_labels,
    explain,
    interaction_weights,
    label_weights,
    pca_embedding,
    velocities,
)


def _snapshots(dim=4, n=(30, 24, 27), labelled=True, seed=0):
    rng = np.random.default_rng(seed)
    data, labels = [], []
    for k, m in enumerate(n):
        lab = rng.choice(["T", "B", "NK"], m)
        shift = {"T": 0.0, "B": 2.0, "NK": -2.0}
        x = rng.normal(size=(m, dim)) + np.array([shift[s] for s in lab])[:, None] + 0.3 * k
        data.append(x.astype(np.float32))
        labels.append(lab)
    return from_arrays(data, times=[0.0, 1.0, 2.5][: len(n)], labels=labels if labelled else None)


def _model(name="scimf", dim=4, **over):
    """An untrained model of the preset; attention kernels keep a random output layer (the presets
    start with f_inter ≡ 0, which would leave these checks nothing to see)."""
    torch.manual_seed(0)
    cfg = mfsde.preset(name, dim=dim)
    if cfg.model.inter.name == "attention":
        over = {"model.inter.zero_init": False, **over}
    if over:
        cfg = cfg.override(**over)
    return mfsde.model.build_model(cfg)


def test_attention_rows_sum_to_one_off_diagonal_and_cells_ordered_by_label():
    snaps, model = _snapshots(), _model()
    maps = interaction_weights(model, snaps)
    assert [m.time_index for m in maps] == [0, 1, 2]
    for m, x, lab in zip(maps, snaps.data, snaps.labels):
        n = len(x)
        assert m.weights.shape == (n, n) and m.heads.shape == (2, n, n)
        np.testing.assert_allclose(np.diag(m.weights), 0.0, atol=1e-12)
        np.testing.assert_allclose(m.weights.sum(1), 1.0, atol=1e-5)
        np.testing.assert_allclose(m.heads.sum(-1), 1.0, atol=1e-5)
        np.testing.assert_allclose(m.weights, m.heads.mean(0))
        # cells are a permutation of the snapshot, grouped into contiguous sorted label blocks
        assert sorted(m.cells.tolist()) == list(range(n))
        assert list(m.labels) == sorted(m.labels) and (m.labels == lab[m.cells]).all()
        # ordering is a relabelling: the matrix equals pair_weights at the re-ordered cells
        direct = model.drift.inter.pair_weights(torch.as_tensor(x[m.cells])).mean(-3).detach().double().numpy()
        np.testing.assert_allclose(m.weights, direct, atol=1e-6)
        assert m.label is not None and m.label.names == ["B", "NK", "T"]
        # each receiver's row sums to 1, so the counts-weighted label rows sum to ≈ 1 as well
        assert 0 <= m.asymmetry <= 1 / np.sqrt(2) + 1e-9


def test_interaction_weights_subsample_and_time_indices():
    snaps, model = _snapshots(), _model()
    maps = interaction_weights(model, snaps, time_indices=[-1], n_cells=10, seed=3)
    assert len(maps) == 1 and maps[0].time_index == 2 and maps[0].weights.shape == (10, 10)
    again = interaction_weights(model, snaps, time_indices=[2], n_cells=10, seed=3)[0]
    np.testing.assert_array_equal(maps[0].cells, again.cells)
    with pytest.raises(ValueError, match=r"time index .* out of range for .* time points \(valid: 0\.\."):
        interaction_weights(model, snaps, time_indices=[5])


def test_label_weights_on_a_hand_built_matrix():
    w = np.array(
        [
            [0.0, 1.0, 2.0, 3.0],
            [4.0, 0.0, 5.0, 6.0],
            [7.0, 8.0, 0.0, 9.0],
            [1.0, 1.0, 1.0, 0.0],
        ]
    )
    labels = np.array(["a", "a", "b", "c"])
    lab = label_weights(w, labels)
    assert lab.names == ["a", "b", "c"] and lab.counts.tolist() == [2, 1, 1]
    expected = np.array(
        [
            [(1.0 + 4.0) / 2, (2.0 + 5.0) / 2, (3.0 + 6.0) / 2],  # receivers a: pairs i≠j only
            [(7.0 + 8.0) / 2, np.nan, 9.0],  # b has one cell: no b←b pair
            [(1.0 + 1.0) / 2, 1.0, np.nan],
        ]
    )
    np.testing.assert_allclose(lab.matrix, expected, equal_nan=True)
    np.testing.assert_allclose(lab.net, expected - expected.T, equal_nan=True)
    # including the (zero) diagonal divides by all n_a·n_b pairs
    incl = label_weights(w, labels, exclude_self=False)
    assert incl.matrix[0, 0] == pytest.approx(5.0 / 4) and incl.matrix[1, 1] == 0.0
    # a head axis is averaged first; an explicit order is kept
    lab2 = label_weights(np.stack([w, 3 * w]), labels, names=["c", "b", "a"])
    assert lab2.matrix[2, 0] == pytest.approx(2 * 4.5)
    with pytest.raises(ValueError):
        label_weights(w, labels[:3])


def test_asymmetry_index():
    rng = np.random.default_rng(0)
    a = rng.random((6, 6))
    sym = a + a.T
    assert asymmetry_index(sym) == 0.0
    assert asymmetry_index(np.zeros((3, 3))) == 0.0
    assert asymmetry_index(a - a.T) == pytest.approx(1.0)
    one_way = np.triu(a, 1)  # every pair interacts in one direction only
    assert asymmetry_index(one_way) == pytest.approx(1 / np.sqrt(2))
    assert asymmetry_index(5 * a) == pytest.approx(asymmetry_index(a))
    perm = rng.permutation(6)
    assert asymmetry_index(a[perm][:, perm]) == pytest.approx(asymmetry_index(a))
    with pytest.raises(ValueError):
        asymmetry_index(np.ones((2, 3)))


def test_symmetric_kernel_gives_symmetric_label_matrix():
    snaps, model = _snapshots(), _model("rbf")
    m = interaction_weights(model, snaps, time_indices=[0])[0]
    assert m.asymmetry == pytest.approx(0.0, abs=1e-6)
    assert m.label.asymmetry == pytest.approx(0.0, abs=1e-6)
    assert m.heads.shape[0] == 3  # one "head" per bandwidth


def test_no_interaction_is_reported_not_raised(tmp_path):
    snaps, model = _snapshots(), _model("ito")
    with pytest.raises(NoInteractionWeights, match="no interaction"):
        interaction_weights(model, snaps)
    summary = explain(model, snaps, tmp_path, n_particles=20, figures=False)
    assert summary["weights"] is None and "no interaction" in summary["notes"][0]
    assert (tmp_path / "velocities.npz").is_file() and not list(tmp_path.glob("weights_*"))


def test_velocities_are_the_drift_and_its_parts():
    snaps, model = _snapshots(), _model()
    x = snaps.data[1]
    v = velocities(model, x, t=1.0)
    assert set(v) == {"intra", "inter", "total"} and v["total"].shape == x.shape
    np.testing.assert_allclose(v["total"], v["intra"] + v["inter"], atol=1e-5)
    model.eval()
    with torch.no_grad():
        np.testing.assert_allclose(v["total"], model.velocity(torch.as_tensor(x)).numpy(), atol=1e-5)
    assert model.training is False  # eval restored to what it was
    ito = velocities(_model("ito"), x)
    assert np.all(ito["inter"] == 0)


def test_pca_embedding_and_clusters():
    snaps = _snapshots()
    emb = pca_embedding(np.concatenate(snaps.data))
    assert emb["components"].shape == (2, 4)
    np.testing.assert_allclose(emb["components"] @ emb["components"].T, np.eye(2), atol=1e-8)
    assert bool(pca_embedding(np.zeros((5, 2)))["identity"])
    labels = cluster_labels(snaps, 3, seed=0)
    assert [len(lab) for lab in labels] == [len(x) for x in snaps.data]
    assert set(np.concatenate(labels)) <= {"c1", "c2", "c3"}


def test_explain_writes_arrays_summary_and_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    snaps, model = _snapshots(), _model()
    history = [
        {"iteration": i, "loss": 1.0 / i, "fit": 0.8 / i, "energy": 0.2, "fit@1": 0.5 / i, "lr": 1e-3, "seconds": 0.1}
        for i in range(1, 30)
    ]
    summary = explain(
        model, snaps, tmp_path, time_indices=[0], n_cells=20, n_particles=50, history=history, heldout=[1]
    )
    for name in (
        "weights_cells_t0.png",
        "weights_labels_t0.png",
        "weights_graph_t0.png",
        "influence_labels_t0.png",
        "velocities.png",
        "loss.png",
    ):
        path = tmp_path / name
        assert path.is_file() and path.stat().st_size > 5000, name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    arrays = np.load(tmp_path / "weights_t0.npz")
    assert arrays["weights"].shape == (20, 20) and arrays["label_matrix"].shape == (3, 3)
    vel = np.load(tmp_path / "velocities.npz")
    assert vel["v_t1"].shape == snaps.data[1].shape and vel["pred_t2"].shape == (50, 4)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["weights"][0]["label_names"] == ["B", "NK", "T"]
    from mfsde.explain import label_influence

    m = interaction_weights(model, snaps, time_indices=[0], n_cells=20, seed=0)[0]
    want = label_influence(model, np.asarray(snaps.data[0])[m.cells], m.labels, m.time, names=m.label.names)
    inf = on_disk["influence"][0]
    assert inf["label_names"] == ["B", "NK", "T"] and np.allclose(inf["label_matrix"], want.matrix, rtol=1e-5)
    assert set(summary["files"]) >= {"weights_t0.npz", "velocities.npz", "summary.json", "loss.png"}


def test_explain_unlabelled_data_with_clusters(tmp_path):
    snaps, model = _snapshots(labelled=False), _model()
    plain = explain(model, snaps, tmp_path / "plain", time_indices=[0], n_particles=0, figures=False)
    assert "label_names" not in plain["weights"][0] and any("no cell labels" in n for n in plain["notes"])
    clustered = explain(model, snaps, tmp_path / "k", time_indices=[0], n_particles=0, figures=False, clusters=2)
    assert clustered["weights"][0]["label_names"] == ["c1", "c2"]


# -- figures that do not mislead ----------------------------------------------------------------------
@pytest.fixture
def captured(monkeypatch):
    """The figures the plotting functions would save."""
    from mfsde.pl import _common

    figs = []
    monkeypatch.setattr(_common, "_save", lambda fig, path: figs.append(fig) or path)
    return figs


def test_graph_widths_are_absolute_and_noise_is_marked(captured):
    from matplotlib.patches import Circle, FancyArrowPatch

    from mfsde.explain import LabelWeights
    from mfsde.pl import plot_label_graph

    m = np.array([[0.00249, 0.00250], [0.00244, 0.00251]])  # almost reciprocal (asymmetry ≈ 0.008)
    lab = LabelWeights(["A", "B"], m, np.array([200, 201]), asymmetry_index(m), m - m.T, sem=np.full((2, 2), 1e-4))
    plot_label_graph(lab, "x.png", kernel="AttentionInteraction")
    arrows = [p for p in captured[-1].axes[0].patches if isinstance(p, FancyArrowPatch)]
    widths = sorted(a.get_linewidth() for a in arrows)
    assert len(arrows) == 2 and widths[1] / widths[0] < 1.05  # not one thick arrow and one hairline
    assert all(a.get_linestyle() not in ("-", "solid") for a in arrows)  # within noise: dashed
    assert "uniform 1/(N−1)" in captured[-1].axes[0].get_title()
    # a real difference is drawn solid and wider
    m2 = np.array([[0.0025, 0.0040], [0.0010, 0.0025]])
    plot_label_graph(
        LabelWeights(["A", "B"], m2, np.array([200, 201]), asymmetry_index(m2), m2 - m2.T, sem=np.full((2, 2), 1e-5)),
        "y.png",
        kernel="AttentionInteraction",
    )
    arrows = [p for p in captured[-1].axes[0].patches if isinstance(p, FancyArrowPatch)]
    assert all(a.get_linestyle() in ("-", "solid") for a in arrows)
    assert max(a.get_linewidth() for a in arrows) / min(a.get_linewidth() for a in arrows) > 3
    # a cluster without cells is listed, not drawn as a node "n=0"
    m3 = np.array([[0.1, np.nan, 0.2], [np.nan, np.nan, np.nan], [0.3, np.nan, 0.1]])
    plot_label_graph(LabelWeights(["A", "E", "C"], m3, np.array([10, 0, 12]), 0.1, m3 - m3.T), "z.png")
    ax = captured[-1].axes[0]
    assert sum(isinstance(p, Circle) for p in ax.patches) == 4  # 2 nodes + 2 halos
    assert "no cells here: E" in ax.get_title() and not any("n=0" in t.get_text() for t in ax.texts)


def test_heat_map_titles_and_references(captured):
    from mfsde.explain import LabelWeights
    from mfsde.pl import plot_cell_weights, plot_label_weights, plot_loss

    snaps, model = _snapshots(), _model()
    amap = interaction_weights(model, snaps, time_indices=[0], n_cells=12, seed=0)[0]
    plot_cell_weights(amap, "c.png")
    assert "Interaction" not in captured[-1].axes[0].get_title()  # no Python class names
    m = np.array([[0.01, 0.03], [0.02, 0.05]])
    plot_label_weights(
        LabelWeights(["A", "B"], m, np.array([20, 19]), 0.1, m - m.T), "l.png", kernel="AttentionInteraction"
    )
    cbar = captured[-1].axes[1]
    assert "uniform 1/(N−1) = 0.0263" in cbar.get_ylabel()
    plot_loss([{"iteration": i, "loss": 1.0 / (i + 1), "fit@2": 0.5 / (i + 1), "w1@1": 3.0} for i in range(5)], "h.png")
    legend = [t.get_text() for t in captured[-1].axes[0].get_legend().get_texts()]
    assert "fit at time index 2 (distribution loss)" in legend and not any("w1@" in t for t in legend)


def test_label_weights_standard_errors():
    rng = np.random.default_rng(0)
    w = rng.random((7, 7))
    labels = np.array(list("AABBBCC"))
    lab = label_weights(w, labels)
    rows, cols = np.flatnonzero(labels == "B"), np.flatnonzero(labels == "A")
    block = w[np.ix_(rows, cols)].ravel()
    assert lab.sem[1, 0] == pytest.approx(block.std() / np.sqrt(block.size))
    diag = [w[i, j] for i in rows for j in rows if i != j]
    assert lab.sem[1, 1] == pytest.approx(np.std(diag) / np.sqrt(len(diag)))


# -- influence: ‖∂f_inter(x_i)/∂x_j‖ -----------------------------------------------------------------
def test_influence_matrix_is_the_jacobian_norm_of_the_interaction_drift():
    from mfsde.explain import influence_matrix

    model = _model("scimf", dim=3)
    x = torch.randn(12, 3)
    inf = influence_matrix(model, x, chunk=5)  # chunks that split receivers' rows

    def f(z):
        return model.data_velocity(z, part="inter")

    model.eval()
    jac = torch.autograd.functional.jacobian(f, x)  # (N, d, N, d)
    assert np.allclose(inf, jac.pow(2).sum((1, 3)).sqrt().numpy(), atol=1e-6)
    assert inf.shape == (12, 12) and (inf > 0).all()


def test_influence_of_the_none_kernel_is_exactly_zero():
    from mfsde.explain import influence_matrix

    assert not influence_matrix(_model("ito", dim=3), torch.randn(10, 3)).any()


@given(seed=st.integers(0, 10**6), n=st.integers(4, 12))
@settings(max_examples=10, deadline=None)
def test_influence_is_permutation_equivariant(seed, n):
    from mfsde.explain import influence_matrix

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    perm = torch.randperm(n, generator=g)
    model = _model("scimf", dim=3)
    a, b = influence_matrix(model, x), influence_matrix(model, x[perm])
    assert np.allclose(b, a[perm.numpy()][:, perm.numpy()], atol=1e-6)


def test_label_influence_shows_a_one_way_interaction_that_weights_cannot():
    """Two species, A chases B, B feels nothing: the true drift's influence is A←B > 0 and
    B←A = 0 exactly; a softmax attention's label weights cannot be 0 for B (rows sum to 1)."""
    from mfsde.evaluation import SystemModel
    from mfsde.explain import label_influence
    from mfsde.systems import TwoSpecies

    system = TwoSpecies(fraction=0.4)
    x = system.sample_initial(60, generator=torch.Generator().manual_seed(0)).float()
    labels = np.where(x[:, -1] > 0, "A", "B")
    lab = label_influence(SystemModel(system), x, labels, names=["A", "B"])
    assert lab.matrix[0, 1] > 0 and lab.matrix[1, 0] == 0 and lab.net[0, 1] > 0
    weights = label_weights(
        _model("scimf", dim=3).drift.inter.pair_weights(x).mean(0).detach().numpy(), labels, names=["A", "B"]
    )
    assert weights.matrix[1, 0] > 0


def test_influence_bad_input():
    from mfsde.explain import influence_matrix, label_influence

    model = _model("scimf", dim=3)
    with pytest.raises(ValueError, match="x must be"):
        influence_matrix(model, torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match="NaN"):
        influence_matrix(model, torch.full((4, 3), float("nan")))
    with pytest.raises(ValueError, match="labels must have"):
        label_influence(model, torch.randn(5, 3), ["A"] * 4)
    with pytest.raises(ValueError, match="chunk"):
        influence_matrix(model, torch.randn(5, 3), chunk=0)


@given(seed=st.integers(0, 10**6), n=st.integers(3, 10))
@settings(max_examples=10, deadline=None)
def test_newtonian_kernels_have_reciprocal_influence(seed, n):
    """Central pair forces F_ij(x_j − x_i) = −F_ji: ∂f_i/∂x_j = ∂f_j/∂x_i, so the influence matrix
    of `rbf` and `radial` is symmetric and no direction can show; attention's is not."""
    from mfsde.explain import influence_matrix
    from mfsde.interactions import build_interaction

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g, dtype=torch.float64)
    for name in ("rbf", "radial"):
        torch.manual_seed(seed)
        kernel = build_interaction(name, dim=3).double()
        for p in kernel.parameters():
            torch.nn.init.normal_(p, generator=g)
        inf = influence_matrix(kernel, x)
        assert np.allclose(inf, inf.T, rtol=1e-6, atol=1e-12) and inf.max() > 0
    qk = _model("symmetric_qk", dim=4)
    inf = influence_matrix(qk, torch.randn(n, 4, generator=g))
    assert not np.allclose(inf, inf.T, rtol=1e-3)
