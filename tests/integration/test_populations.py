"""Populations as inputs: the container, tasks over populations, training, evaluation, baselines,
CLI and the multi-population systems."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import mfsde
from mfsde.cli import main as cli_main
from mfsde.data import PopulationError, Populations, PopulationTask, Snapshots, from_dataframe, load_csv
from mfsde.evaluation import baseline_evaluations, evaluate, previous
from mfsde.losses import w1
from mfsde.model import DataScale
from mfsde.systems import TwoSpecies, population_snapshots, population_systems
from mfsde.training import Trainer, default_simulate, fit


def snaps(offset: float, times=(0.0, 1.0, 2.0), n: int = 40, d: int = 2, seed: int = 0, name: str = "") -> Snapshots:
    rng = np.random.default_rng(seed)
    return Snapshots(np.asarray(times), [offset + k + rng.normal(size=(n, d)) for k in range(len(times))], name=name)


def three(times_c=(0.0, 1.0, 2.0)) -> Populations:
    return Populations({"a": snaps(0.0, seed=1), "b": snaps(10.0, seed=2), "c": snaps(-10.0, times=times_c, seed=3)})


def tiny(preset: str = "ito", dim: int = 2, **over):
    return mfsde.preset(preset, dim=dim).override(
        **{"train.iterations": 2, "train.n_particles": 16, "train.n_targets": 20, "eval.n_particles": 30, **over}
    )


# -- container and tasks ------------------------------------------------------------------------
def test_populations_container_and_errors():
    pops = three()
    assert pops.names == ["a", "b", "c"] and len(pops) == 3 and pops.dim == 2 and pops.n_cells == 360
    assert pops.subset(["c", "a"]).names == ["c", "a"]
    with pytest.raises(KeyError, match="unknown population 'z'"):
        pops["z"]
    with pytest.raises(PopulationError, match="population 'b' has dimension 3 but population 'a' has 2"):
        Populations({"a": snaps(0.0), "b": snaps(0.0, d=3)})
    with pytest.raises(PopulationError, match="duplicate population name 'a'"):
        Populations([("a", snaps(0.0)), ("a", snaps(1.0))])
    with pytest.raises(PopulationError, match="need at least one"):
        Populations({})


def test_population_task_resolves_per_population_and_names_the_offender():
    pops = three(times_c=(0.0, 1.0))
    tasks = PopulationTask("all", heldout_populations=["b"]).resolve(pops)
    assert tasks["a"].heldout == [] and tasks["b"].train == [0] and tasks["b"].heldout == [1, 2]
    with pytest.raises(PopulationError, match="population 'c' \\(2 time points\\)"):
        PopulationTask("loo:2").resolve(pops)
    with pytest.raises(PopulationError, match="unknown held-out population\\(s\\) \\['zz'\\]"):
        PopulationTask("all", ["zz"]).resolve(pops)
    with pytest.raises(PopulationError, match="every population is held out"):
        PopulationTask("all", ["a", "b", "c"]).resolve(pops)
    with pytest.raises(PopulationError, match="\\['a'\\] are both training and held-out"):
        PopulationTask("all", ["a"], train_populations=["a", "b"])
    only = PopulationTask("all", ["b"], train_populations=["a"]).resolve(pops)
    assert set(only) == {"a", "b"}  # c is in neither list: left out


def test_dataframe_and_csv_with_a_population_column(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "t": [0] * 5 + [1] * 5 + [0] * 4 + [3] * 4,
            "donor": ["x"] * 10 + ["y"] * 8,
            "g1": rng.normal(size=18),
            "g2": rng.normal(size=18),
        }
    )
    pops = from_dataframe(df, "t", population_col="donor")
    assert pops.names == ["x", "y"] and pops.feature_names == ["g1", "g2"]
    assert pops["x"].times.tolist() == [0, 1] and pops["y"].times.tolist() == [0, 3] and pops["y"].counts == [4, 4]
    df.to_csv(tmp_path / "d.csv", index=False)
    assert load_csv(tmp_path / "d.csv", time_col="t", population_col="donor").names == ["x", "y"]
    with pytest.raises(PopulationError, match="population 'y' has cells at a single time point"):
        from_dataframe(df[~((df.donor == "y") & (df.t == 3))], "t", population_col="donor")
    with pytest.raises(KeyError, match="population column 'site' not found"):
        from_dataframe(df, "t", population_col="site")
    bad = df.copy()
    bad.loc[12, "g1"] = np.nan
    with pytest.raises(ValueError, match="non-finite values in population\\(s\\) \\['y'\\]"):
        from_dataframe(bad, "t", population_col="donor")


def test_scale_fits_on_the_pooled_training_populations():
    a, b = snaps(0.0, seed=1), snaps(10.0, times=(1.0, 3.0, 7.0), seed=2)
    one = DataScale(2).fit_(a, [0, 1, 2])
    many = DataScale(2).fit_many_([(a, [0, 1, 2])])
    assert torch.equal(one.loc, many.loc) and torch.equal(one.scale, many.scale)
    both = DataScale(2).fit_many_([(a, [0, 2]), (b, [0, 1, 2])])
    pooled = np.concatenate([a.data[0], a.data[2], *b.data]).astype(np.float64)
    np.testing.assert_allclose(both.loc.numpy(), pooled.mean(0), rtol=1e-5)
    assert float(both.t0) == 0.0 and float(both.time_unit) == pytest.approx((2 + 6) / (1 + 2))


# -- training --------------------------------------------------------------------------------------
def test_each_population_is_simulated_from_its_own_cells_batched_by_time_axis():
    pops = three(times_c=(0.0, 0.5, 2.0))
    calls = []

    def spy(model, x0, ts, generator):
        calls.append((x0.detach().clone(), ts.clone()))
        return default_simulate(model, x0, ts, generator)

    tr = Trainer(
        tiny(**{"model.standardize": "none", "model.time_scale": "none"}), pops, PopulationTask("all"), simulate=spy
    )
    assert tr.groups == [[0, 1], [2]] and tr.fit_idx == [1, 2]
    tr.step()
    (xab, ts_ab), (xc, ts_c) = calls
    assert xab.shape == (2, 16, 2) and xc.shape == (16, 2)
    assert ts_ab.tolist() == [0.0, 1.0, 2.0] and ts_c.tolist() == [0.0, 0.5, 2.0]
    # rows come from each population's own first snapshot (a near 0, b near 10, c near -10)
    for x, cells in ((xab[0], pops["a"].data[0]), (xab[1], pops["b"].data[0]), (xc, pops["c"].data[0])):
        assert all(np.isclose(cells, row).all(1).any() for row in x.numpy())
    rec = tr.history[-1]
    assert set(rec) >= {"fit@1", "fit@2"} and np.isfinite(rec["loss"])


def test_held_out_populations_never_enter_training():
    pops = three()
    task = PopulationTask("all", heldout_populations=["b"])
    tr = Trainer(tiny(), pops, task)
    assert [s.name for s in tr.series] == ["a", "c"]
    # b's cells (near 11) are not part of the fitted scale: the pooled mean is that of a (≈ 1) and c (≈ −9)
    assert abs(float(tr.model.scale.loc.mean()) + 4.0) < 0.5


def test_populations_train_resume_bit_identically(tmp_path):
    pops = three()
    task = PopulationTask("all", heldout_populations=["c"])
    cfg = tiny("scimf", **{"train.iterations": 4, "train.replicas": 2})
    full = fit(cfg, pops, task, progress=False)
    fit(cfg.override(**{"train.iterations": 2}), pops, task, out_dir=tmp_path / "r", progress=False)
    meta = json.loads((tmp_path / "r" / "meta.json").read_text())
    assert meta["task"]["heldout_populations"] == ["c"] and set(meta["n_cells"]) == {"a", "b", "c"}
    resumed = fit(cfg, pops, task, resume=tmp_path / "r", progress=False)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in full.history]
    with pytest.raises(ValueError, match="differs"):
        fit(cfg, pops, PopulationTask("all", heldout_populations=["b"]), resume=tmp_path / "r", progress=False)


# -- evaluation and baselines ------------------------------------------------------------------------
def test_evaluate_scores_held_out_populations_at_every_later_time():
    pops = three()
    task = PopulationTask("loo:1", heldout_populations=["b"])
    model = fit(tiny(), pops, task, progress=False).model
    ev = evaluate(model, pops, task, n_particles=30, seed=0)
    keys = [(r["population"], r["index"], r["heldout_population"]) for r in ev["per_time"]]
    assert keys == [("a", 1, False), ("b", 1, True), ("b", 2, True), ("c", 1, False)]
    assert ev["w1"] == pytest.approx(np.mean([r["w1"] for r in ev["per_time"]]))
    assert ev["per_population"]["b"]["w1"] == pytest.approx(np.mean([r["w1"] for r in ev["per_time"][1:3]]))


def test_baselines_of_a_held_out_population_use_its_own_observed_neighbours():
    pops = three()
    task = PopulationTask("all", heldout_populations=["b"])
    rows = {ev["preset"]: ev for ev in baseline_evaluations(pops, task, n_particles=30, seed=0, metrics=("w1",))}
    prev2 = [r for r in rows["previous"]["per_time"] if r["index"] == 2][0]
    x = previous(pops["b"], 2, [0, 1], n=30, seed=0)  # the observed time 1 of b
    assert prev2["w1"] == pytest.approx(w1(x, pops["b"].data[2].astype(np.float64)))
    mc = {r["index"]: r for r in rows["mccann"]["per_time"]}
    assert "note" not in mc[1] and "falls back" in mc[2]["note"]  # index 2 is b's last time


# -- command line ------------------------------------------------------------------------------------
def test_cli_fit_evaluate_explain_with_populations(tmp_path, capsys):
    pops = population_snapshots(population_systems("two_species", 3), times=[0.0, 0.5, 1.0], n_per_time=40, seed=0)
    frames = []
    for name, s in pops.items():
        for t, a, lab in zip(s.times, s.data, s.labels):
            f = pd.DataFrame(a, columns=s.feature_names)
            f["samples"], f["pop"], f["kind"] = t, name, lab
            frames.append(f)
    csv = tmp_path / "p.csv"
    pd.concat(frames).to_csv(csv, index=False)
    held = pops.names[1]
    run = tmp_path / "run"
    common = ["--data", str(csv), "--population-col", "pop", "--label-col", "kind"]
    assert (
        cli_main(
            [
                "fit",
                *common,
                "--heldout-populations",
                held,
                "--iterations",
                "2",
                "--n-particles",
                "16",
                "--set",
                "eval.n_particles=20",
                "--out",
                str(run),
                "--quiet",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"| model | {held}:2 |" in out and f"| mccann | {held}:1 |" in out
    assert cli_main(["evaluate", "--run", str(run), "--n-particles", "20"]) == 0
    assert json.loads((run / "eval.json").read_text())["per_time"][0]["population"] == held
    assert (
        cli_main(
            [
                "explain",
                "--run",
                str(run),
                "--population",
                held,
                "--no-figures",
                "--n-cells",
                "20",
                "--n-particles",
                "20",
            ]
        )
        == 0
    )
    assert (run / "explain" / held / "summary.json").is_file()
    capsys.readouterr()
    for argv, msg in (
        (["--heldout-populations", "nope"], "unknown held-out population(s) ['nope']"),
        (["--heldout-populations", *pops.names], "every population is held out"),
        (["--task", "loo:7"], f"population {pops.names[0]!r} (3 time points)"),
    ):
        assert cli_main(["fit", *common, *argv, "--iterations", "1", "--out", str(tmp_path / "x")]) == 2
        assert msg in capsys.readouterr().err
    assert (
        cli_main(
            [
                "fit",
                "--data",
                str(csv),
                "--label-col",
                "kind",
                "--drop-cols",
                "pop",
                "--heldout-populations",
                held,
                "--iterations",
                "1",
                "--out",
                str(tmp_path / "y"),
            ]
        )
        == 2
    )
    assert "needs data with populations (--population-col COL)" in capsys.readouterr().err


# -- systems -----------------------------------------------------------------------------------------
def test_population_systems_differ_only_in_their_initial_law():
    systems = population_systems("ou", 4)
    means = [s.m0.tolist() for s in systems.values()]
    assert len({tuple(np.round(m, 6)) for m in means}) == 4
    x = torch.randn(3, 50, 2)
    f = [s.drift(x) for s in systems.values()]
    assert all(torch.equal(f[0], g) for g in f[1:])
    control = population_systems("ou", 4, control=True)
    assert all(torch.equal(s.drift.inter(x), torch.zeros_like(x)) for s in control.values())
    with pytest.raises(KeyError, match="unknown population family 'lorenz'"):
        population_systems("lorenz", 3)
    with pytest.raises(ValueError, match="n_populations must be an int >= 2"):
        population_systems("ou", 1)


def test_two_species_is_non_reciprocal():
    system = TwoSpecies(fraction=0.5)
    x = system.sample_initial(60, torch.Generator().manual_seed(0)).double()
    a = x[:, -1] > 0
    assert int(a.sum()) == 30
    moved = x.clone()
    moved[a, :2] += 1.0  # move the A's: the B's feel nothing
    f, g = system.drift.inter(x), system.drift.inter(moved)
    assert torch.equal(f[~a], g[~a]) and torch.equal(f[~a], torch.zeros_like(f[~a]))
    moved = x.clone()
    moved[~a, :2] += 1.0  # move the B's: the A's follow
    assert (system.drift.inter(moved)[a] - f[a]).abs().max() > 1e-3
    pops = population_snapshots(population_systems("two_species", 3), times=[0.0, 1.0], n_per_time=50, seed=0)
    for s in pops.values():  # species are constant and labelled
        for data, lab in zip(s.data, s.labels):
            assert set(np.unique(data[:, -1])) <= {-1.0, 1.0}
            assert (lab == np.where(data[:, -1] > 0, "A", "B")).all()
    fractions = [float((s.data[0][:, -1] > 0).mean()) for s in pops.values()]
    assert fractions == sorted(fractions) and fractions[0] < fractions[-1]


def test_two_species_layout_moves_the_clusters_between_populations():
    systems = population_systems("two_species_layout", 6)
    x = torch.randn(2, 40, 3)
    x[..., -1] = torch.where(x[..., -1] > 0, 1.0, -1.0)
    f = [s.drift(x) for s in systems.values()]
    assert all(torch.equal(f[0], g) for g in f[1:])  # the same dynamics everywhere
    gen = torch.Generator().manual_seed(0)
    b_centres, fractions = [], []
    for i, s in enumerate(systems.values()):
        angle = float(torch.atan2(s.centers[1, 1], s.centers[1, 0])) % (2 * np.pi)
        assert angle == pytest.approx(2 * np.pi * i / 6, abs=1e-9)  # B on the population's own direction
        x0 = s.sample_initial(4000, gen).double()
        a = x0[:, -1] > 0
        ca, cb = x0[a, :2].mean(0), x0[~a, :2].mean(0)
        torch.testing.assert_close(ca, -cb, atol=0.05, rtol=0)  # A and B opposite about the origin
        torch.testing.assert_close(cb, s.centers[1], atol=0.05, rtol=0)
        b_centres.append(cb)
        fractions.append(float(a.double().mean()))
    b = torch.stack(b_centres)
    assert torch.cdist(b, b).add(torch.eye(len(b)) * 9).min() > 0.5  # every population puts B elsewhere
    assert {round(float((s.centers[1] - s.centers[0]).norm()), 2) for s in systems.values()} == {2.0, 2.75, 3.5}
    assert fractions == sorted(fractions) and fractions[0] < 0.3 < 0.7 < fractions[-1]
    control = population_systems("two_species_layout", 3, control=True)
    assert all(torch.equal(s.drift.inter(x), torch.zeros_like(x)) for s in control.values())
    for key, value in (("center_b", (1.0, 0.0)), ("center_a", (0.0, 0.0)), ("fraction", 0.5)):
        with pytest.raises(ValueError, match=f"two_species_layout sets {key} itself"):
            population_systems("two_species_layout", 3, **{key: value})


def test_b_rotation_turns_the_bs_about_the_origin_and_nothing_else():
    x = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, -1.0], [0.0, 2.0, -1.0]], dtype=torch.float64)
    still, turning = TwoSpecies(confinement=0.0), TwoSpecies(confinement=0.0, b_rotation=0.5)
    assert torch.equal(still.drift.intra(x), torch.zeros_like(x))
    confined = TwoSpecies(confinement=0.3).drift.intra(x)  # without rotation: −λ p, as before the option
    assert torch.equal(confined, torch.cat([-0.3 * x[:, :2], torch.zeros(3, 1, dtype=x.dtype)], dim=-1))
    assert TwoSpecies(b_rotation=np.float32(0.5)).drift.intra.b_rotation == 0.5
    torch.testing.assert_close(
        turning.drift.intra(x), torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.5, 0.0], [-1.0, 0.0, 0.0]], dtype=torch.float64)
    )
    torch.testing.assert_close(turning.drift.inter(x), still.drift.inter(x))  # the interaction is untouched
    system = next(iter(population_systems("two_species_layout", 3).values()))
    assert system.drift.intra.b_rotation == 0.5
    for bad in (float("nan"), "fast", True):
        with pytest.raises(ValueError, match="b_rotation must be a finite number"):
            TwoSpecies(b_rotation=bad)


def test_preprocessing_fits_on_the_training_populations_only():
    from mfsde.data import Preprocessor

    pops = three()
    task = PopulationTask("all", heldout_populations=["b"])
    pre = Preprocessor("embedded", scale=True, n_components=None).fit(pops, task)
    out = pre.transform(pops)
    assert isinstance(out, Populations) and out.names == pops.names
    train = np.concatenate([*pops["a"].data, *pops["c"].data])
    np.testing.assert_allclose(np.concatenate([*out["a"].data, *out["c"].data]).mean(0), 0.0, atol=1e-4)
    assert out["b"].data[0].mean() > 1.0  # b (near 10) was not part of the fit: far from 0 after it
    assert train.shape[0] == 240


def test_explain_asks_for_one_population(tmp_path):
    from mfsde.explain import explain, interaction_weights

    pops = three()
    model = mfsde.model.build_model(tiny("scimf"))
    with pytest.raises(TypeError, match="explain one population at a time: pass snapshots\\[name\\]"):
        explain(model, pops, tmp_path / "e", figures=False)
    assert len(interaction_weights(model, pops["a"], n_cells=20)) == 3


def test_compare_over_populations_has_rows_per_population_and_time(tmp_path):
    from mfsde.evaluation import compare, summarise

    pops = three()
    task = PopulationTask("all", heldout_populations=["b"])
    rows = compare(
        ["ito"],
        pops,
        task,
        seeds=[0],
        overrides={"train.iterations": 2, "train.n_particles": 16, "eval.n_particles": 20},
        out_dir=tmp_path,
        progress=False,
    )
    model = [r for r in rows if r["kind"] == "model"][0]
    assert {"w1@b:1", "w1@b:2"} <= set(model) and not any(k.startswith("w1@a") for k in model)
    base = {r["preset"]: r for r in rows if r["kind"] == "baseline"}
    assert set(base) == {"previous", "mccann", "floor"} and "w1@b:2" in base["mccann"]
    assert (tmp_path / "ito-seed0" / "eval-t0.json").is_file()
    assert {s["preset"] for s in summarise(rows)} == {"ito", "previous", "mccann", "floor"}


def test_cross_population_error_is_zero_for_the_truth_and_one_without_interaction():
    from mfsde.evaluation import SystemModel, cross_population_error
    from mfsde.systems import population_systems

    systems = population_systems("morse", 4)
    a, b = (systems[n] for n in list(systems)[:2])
    times = [0.0, 0.5, 1.0]
    truth = cross_population_error(SystemModel(a), a, b, times, n_particles=80, seed=0)
    assert truth["inter"] < 1e-8 and truth["cosine"] > 1 - 1e-8 and truth["inter_norm"] > 0  # float32 model
    ito = mfsde.model.build_model(mfsde.preset("ito", dim=2))  # f(x, t) only: Δf̂ ≡ 0 at a shared time
    assert cross_population_error(ito, a, b, times, n_particles=80, seed=0)["inter"] == pytest.approx(1.0, abs=1e-12)
    rbf = mfsde.model.build_model(mfsde.preset("rbf", dim=2))
    assert cross_population_error(rbf, a, b, times, n_particles=80, seed=0)["inter"] != pytest.approx(1.0)
    with pytest.raises(TypeError, match="systems of different kinds"):
        cross_population_error(ito, a, next(iter(population_systems("ou", 2).values())), times)


def test_pair_jacobian_error_is_zero_for_the_truth_one_without_interaction_and_gauge_free():
    from mfsde.drifts import MeanFieldDrift
    from mfsde.evaluation import SystemModel, pair_jacobian_error
    from mfsde.systems import population_systems

    system = next(iter(population_systems("morse", 2).values()))
    times = [0.0, 1.0]
    truth = pair_jacobian_error(SystemModel(system), system, times, n_particles=30, seed=0)
    assert truth["inter"] < 1e-10 and truth["cosine"] > 1 - 1e-10 and truth["true_norm"] > 0
    ito = mfsde.model.build_model(mfsde.preset("ito", dim=2))
    assert pair_jacobian_error(ito, system, times, n_particles=30)["inter"] == pytest.approx(1.0, abs=1e-12)

    class Gauged(torch.nn.Module):  # the true drift plus a population-independent g(x, t)
        def __init__(self):
            super().__init__()
            self.dim = 2

        def forward(self, x, t=None):
            return system.drift(x, t) + torch.sin(3 * x) * (1 + t)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.drift, self.dim = Gauged(), 2

    gauged = pair_jacobian_error(Model(), system, times, n_particles=30, seed=0)
    assert gauged["inter"] < 1e-10  # g(x_i, t) has no derivative in x_j, j ≠ i
    rbf = mfsde.model.build_model(mfsde.preset("rbf", dim=2))
    assert 0 < pair_jacobian_error(rbf, system, times, n_particles=30)["inter"] != pytest.approx(1.0)
    assert isinstance(system.drift, MeanFieldDrift)
