"""Training with a mass channel: config checks, the mass and growth terms, evaluation with TMV."""

from __future__ import annotations

import argparse

import pytest
import torch

import mfsde
from mfsde.evaluation import baseline_evaluations
from mfsde.systems import branching_ou, branching_snapshots


@pytest.fixture(scope="module")
def branching():
    return branching_snapshots(branching_ou(), times=[0.0, 0.5, 1.0, 1.5], n0=300, seed=0)


def _cfg(**over):
    base = {
        "model.growth.name": "mlp",
        "data.mass": "counts",
        "train.iterations": 40,
        "train.n_particles": 64,
        "train.n_targets": 200,
        "model.intra.width": 32,
        "model.dt": 0.25,
    }
    base.update(over)
    return mfsde.preset("ito", dim=2).override(**base)


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"data.mass": "counts", "model.growth.name": "none"}, "data.mass 'counts' needs a growth model"),
        ({"data.mass": "sizes"}, "data.mass must be one of normalised, counts"),
        ({"data.mass": [1.0, 0.0]}, "data.mass sizes must be positive finite numbers"),
        (
            {"loss.fit.name": "mmd"},
            "loss that sees particle weights; loss.fit 'mmd' does not .losses that do: sinkhorn",
        ),
        ({"train.random_batch": 8}, "random groups do not carry weights"),
        ({"train.method": "flow_matching"}, "model.growth is trained by the simulation loss"),
        ({"loss.mass_weight": -1.0}, "loss.mass_weight must be a finite number >= 0"),
        ({"model.growth.name": "none", "data.mass": "normalised", "loss.fit.reach": 1.0}, "reach .* needs a growth"),
        ({"model.growth.name": "wobble"}, "wobble"),
    ],
)
def test_bad_mass_settings_are_one_line(over, match):
    with pytest.raises((ValueError, KeyError)) as err:
        _cfg(**over)
    assert "\n" not in str(err.value)
    assert err.match(match)


def test_masses_given_for_some_time_points_only_are_refused(branching):
    snaps, _ = branching
    cfg = _cfg(**{"data.mass": [1.0, 2.0]})
    with pytest.raises(ValueError, match="data.mass has 2 sizes but the data have 4 time points"):
        mfsde.fit(cfg, snaps, "loo:2", progress=False)


def test_a_growth_fit_records_its_terms_and_learns_the_mass(branching):
    snaps, masses = branching
    torch.manual_seed(0)
    grown = mfsde.fit(_cfg(**{"train.lr": 1e-2}), snaps, "all", progress=False)
    last = grown.history[-1]
    assert {"mass", "growth", "fit", "energy"} <= set(last)
    first_mass = grown.history[0]["mass"]
    assert last["mass"] < first_mass / 3  # the model's mass approaches the counts
    ev = mfsde.evaluate(grown.model, snaps, "all", times=[1, 2, 3], mass="counts", n_particles=500)
    balanced = mfsde.fit(
        _cfg(**{"model.growth.name": "none", "data.mass": "normalised", "train.lr": 1e-2}), snaps, "all", progress=False
    )
    ev0 = mfsde.evaluate(balanced.model, snaps, "all", times=[1, 2, 3], mass="counts", n_particles=500)
    assert all({"mass", "mass_observed", "tmv"} <= set(r) for r in ev["per_time"])
    assert ev["tmv"] < ev0["tmv"] / 2  # the balanced model keeps mass 1
    assert ev0["per_time"][0]["mass"] == 1.0
    assert ev["per_time"][0]["mass_observed"] == pytest.approx(masses[1])


def test_baselines_know_the_counts(branching):
    snaps, masses = branching
    base = {b["preset"]: b for b in baseline_evaluations(snaps, "loo:2", mass="counts", n_particles=200)}
    prev, mc = base["previous"]["per_time"][0], base["mccann"]["per_time"][0]
    assert prev["mass"] == pytest.approx(masses[1])
    assert mc["mass"] == pytest.approx((masses[1] + masses[3]) / 2)  # times 0.5, 1.0, 1.5: halfway
    assert mc["tmv"] == pytest.approx(abs(mc["mass"] - masses[2]) / masses[2])
    assert "tmv" not in base["floor"]["per_time"][0]


def test_cli_mass_counts_turns_on_the_default_growth_model():
    from mfsde.cli._inputs import DEFAULT_GROWTH, build_config

    args = argparse.Namespace(config=None, preset="ito", overrides=[], mass="counts")
    cfg = build_config(args, 2)
    assert cfg.data.mass == "counts" and cfg.model.growth.name == DEFAULT_GROWTH
    args = argparse.Namespace(config=None, preset="ito", overrides=["model.growth.name='population'"], mass="counts")
    assert build_config(args, 2).model.growth.name == "population"
    args = argparse.Namespace(config=None, preset="ito", overrides=[], mass=None)
    assert build_config(args, 2).model.growth.name == "none"


def test_tl_velocity_writes_the_growth_rate(branching):
    ad = pytest.importorskip("anndata")
    import numpy as np

    snaps, _ = branching
    x = np.concatenate(snaps.data)
    t = np.concatenate([[tt] * len(d) for tt, d in zip(snaps.times, snaps.data)])
    adata = ad.AnnData(np.zeros((len(x), 1), dtype=np.float32))
    adata.obsm["X_pca"] = x
    adata.obs["day"] = t
    model = mfsde.tl.fit(adata, "day", preset=_cfg(**{"train.iterations": 5}), progress=False)
    mfsde.tl.velocity(adata, model)
    g = adata.obs["growth_rate"].to_numpy()
    assert g.shape == (len(x),) and np.isfinite(g).all()
    expected = model.data_growth_rate(torch.as_tensor(snaps.data[1]), float(snaps.times[1])).detach().numpy()
    np.testing.assert_allclose(g[t == snaps.times[1]], expected, rtol=1e-5, atol=1e-6)


def test_compare_reports_tmv_for_models_and_baselines(branching, tmp_path):
    snaps, _ = branching
    configs = {"balanced": _cfg(**{"model.growth.name": "none", "data.mass": "normalised"}), "grown": _cfg()}
    configs = {k: c.override(**{"train.iterations": 2, "eval.n_particles": 100}) for k, c in configs.items()}
    rows = mfsde.compare(configs, snaps, "loo:2", seeds=[0], progress=False)
    by = {r["preset"]: r for r in rows}
    assert {"balanced", "grown", "previous", "mccann"} <= set(by)
    assert all("tmv" in by[k] and "tmv@2" in by[k] for k in ("grown", "previous", "mccann"))
    # a mass-conserving model is scored against the counts too: its mass stays 1
    assert by["balanced"]["tmv"] == pytest.approx(
        abs(1.0 - snaps.data[2].shape[0] / snaps.data[0].shape[0]) / (snaps.data[2].shape[0] / snaps.data[0].shape[0])
    )
    other = _cfg(**{"data.mass": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(ValueError, match="the configs give different data.mass"):
        mfsde.compare({"a": configs["grown"], "b": other}, snaps, "loo:2", seeds=[0], progress=False)


def test_sample_with_mass_gives_the_mass_relative_to_the_start():
    model = mfsde.model.build_model(_cfg())
    with torch.no_grad():
        model.growth.net[-1].bias.fill_(0.5)  # g ≡ 0.5 per unit of model time (identity scale: data time)
    x0 = torch.randn(30, 2)
    xs, mass = model.sample_with_mass(x0, [0.0, 1.0, 2.0], seed=0)
    assert xs.shape == (3, 30, 2)
    torch.testing.assert_close(mass, torch.exp(0.5 * torch.tensor([0.0, 1.0, 2.0])), rtol=1e-5, atol=0)


@pytest.mark.parametrize("starts", ["first", "every"])
def test_populations_each_carry_their_own_counts(starts):
    from mfsde.data import Populations

    a, _ = branching_snapshots(branching_ou(), times=[0.0, 0.5, 1.0], n0=120, seed=1)
    b, _ = branching_snapshots(branching_ou(birth=0.2, death=1.0), times=[0.0, 0.5, 1.0], n0=120, seed=2)
    pops = Populations({"grows": a, "shrinks": b})
    res = mfsde.fit(_cfg(**{"train.iterations": 3, "train.starts": starts}), pops, "all", progress=False)
    assert "mass" in res.history[-1]
    # at initialisation g ≡ 0: each population keeps its own start's mass, so the mass term is
    # the mean over both of their own relative mass errors (every: each gap from its observed mass)
    m = {k: [len(p.data[i]) / len(p.data[0]) for i in range(3)] for k, p in (("a", a), ("b", b))}
    if starts == "first":
        want = [sum(((1 - v[i]) / v[i]) ** 2 for i in (1, 2)) / 2 for v in m.values()]
    else:
        want = [sum(((v[i - 1] - v[i]) / v[i]) ** 2 for i in (1, 2)) / 2 for v in m.values()]
    assert res.history[0]["mass"] == pytest.approx(sum(want) / 2, rel=1e-4)
    ev = mfsde.evaluate(res.model, pops, "all", times=[2], mass="counts", n_particles=50)
    observed = {r["population"]: r["mass_observed"] for r in ev["per_time"]}
    assert observed == {"grows": len(a.data[2]) / len(a.data[0]), "shrinks": len(b.data[2]) / len(b.data[0])}
    assert observed["grows"] > 1 > observed["shrinks"]
    with pytest.raises(ValueError, match="applies to one Snapshots; for populations use data.mass 'counts'"):
        mfsde.fit(_cfg(**{"data.mass": [1.0, 2.0, 3.0]}), pops, "all", progress=False)


def test_flow_matching_then_simulation_trains_the_growth_rate_in_its_simulation_phase(branching):
    snaps, _ = branching
    cfg = _cfg(**{"train.method": "flow_matching+simulation", "train.fm_iterations": 2, "train.iterations": 4})
    res = mfsde.fit(cfg, snaps, "all", progress=False)
    phases = [r["phase"] for r in res.history]
    assert phases == ["flow_matching"] * 2 + ["simulation"] * 2
    assert "mass" not in res.history[1] and "mass" in res.history[-1]
    assert any(p.abs().sum() > 0 for p in res.model.growth.net[-1].parameters())  # trained after the switch


def test_pl_growth_draws_the_growth_rate(tmp_path):
    ad = pytest.importorskip("anndata")
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np

    adata = ad.AnnData(np.zeros((50, 1), dtype=np.float32))
    adata.obsm["X_pca"] = np.random.default_rng(0).normal(size=(50, 2))
    adata.obs["growth_rate"] = np.linspace(-1, 2, 50)
    ax = mfsde.pl.growth(adata, show=False, save=str(tmp_path / "g.png"))
    assert (tmp_path / "g.png").stat().st_size > 0
    coll = ax.collections[0]
    assert coll.norm.vmin == -2.0 and coll.norm.vmax == 2.0  # centred at zero
    with pytest.raises(Exception, match="growth_rate"):
        mfsde.pl.growth(ad.AnnData(np.zeros((3, 1), dtype=np.float32)), show=False)


def test_a_growth_run_interrupted_and_resumed_matches_one_run(branching, tmp_path):
    snaps, _ = branching
    whole = mfsde.fit(_cfg(**{"train.iterations": 4}), snaps, "all", progress=False)
    part = _cfg(**{"train.iterations": 2, "train.checkpoint_every": 1})
    mfsde.fit(part, snaps, "all", out_dir=tmp_path / "run", progress=False)
    resumed = mfsde.fit(_cfg(**{"train.iterations": 4}), snaps, "all", resume=tmp_path / "run", progress=False)
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert any(k.startswith("growth.") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["mass"] for r in whole.history] == [r["mass"] for r in resumed.history]


# -- train.starts "every" / "mixed" with a growth model: every gap starts from the observed mass ------


def test_every_gap_starts_from_its_observed_mass_and_the_fit_sees_the_weights(branching):
    """Training times 0, 0.5, 1.5 (1.0 held out): gaps 0 → 1 and 1 → 3. At initialisation g ≡ 0,
    so a gap's particles keep their start's observed mass m_a: the mass term is the mean over the
    gaps of ((m_a − m_b) / m_b)², and the fit at b is handed log-weights log m_a and mass m_b."""
    from mfsde.training import Trainer

    snaps, _ = branching
    trainer = Trainer(_cfg(**{"train.starts": "every"}), snaps, "loo:2")
    series = trainer.series[0]
    seen = []
    loss_fn = trainer.loss_fn

    def spy(x, y, generator=None, **kw):
        seen.append((len(y), kw["log_w"].detach().clone(), kw["mass"]))
        return loss_fn(x, y, generator, **kw)

    trainer.loss_fn = spy
    loss, fit, energy, mass_term, growth_term, per_k = trainer.population_loss(trainer.replicas[0])
    m = [float(v) for v in series.mass]
    assert series.fit_idx == [1, 3] and m[1] != m[0] and m[3] != m[1]
    want = (((m[0] - m[1]) / m[1]) ** 2 + ((m[1] - m[3]) / m[3]) ** 2) / 2
    assert mass_term.item() == pytest.approx(want, rel=1e-5)
    assert growth_term.item() == 0.0 and per_k.shape == (2,)
    assert [(n, mass) for n, _, mass in seen] == [(len(series.data[1]), m[1]), (len(series.data[3]), m[3])]
    for (_, lw, _), a in zip(seen, (0, 1)):
        assert torch.allclose(lw, torch.full_like(lw, torch.log(torch.tensor(m[a])).item()))


@pytest.mark.parametrize("starts", ["every", "mixed"])
def test_a_growth_fit_from_every_gap_learns_the_mass(branching, starts):
    snaps, _ = branching
    torch.manual_seed(0)
    res = mfsde.fit(_cfg(**{"train.lr": 1e-2, "train.starts": starts}), snaps, "all", progress=False)
    first, last = res.history[0]["mass"], res.history[-1]["mass"]
    assert last < first / 3
    ev = mfsde.evaluate(res.model, snaps, "all", times=[1, 2, 3], mass="counts", n_particles=500)
    assert ev["tmv"] < 0.15
