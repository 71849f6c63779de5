"""Scale-aware training, baselines, both evaluation protocols and the time budget."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mfsde
from mfsde import fit
from mfsde.cli import main
from mfsde.config import Component
from mfsde.data import from_arrays
from mfsde.evaluation import (
    BASELINES,
    baseline_evaluations,
    compare,
    evaluate,
    floor_split,
    mccann,
    neighbours,
    previous,
    simulate,
)
from mfsde.losses import w1
from mfsde.model import DataScale, DataUnitsDrift

D = 2


def tiny(preset="ito", **overrides):
    base = {
        "model.intra.width": 16,
        "model.dt": 0.25,
        "loss.fit.blur": 0.3,
        "train.n_particles": 32,
        "train.n_targets": 48,
        "train.iterations": 4,
        "train.lr": 1e-2,
        "eval.n_particles": 40,
    }
    base.update(overrides)
    return mfsde.preset(preset, dim=D).override(**base)


def line_snapshots(scale: float = 1.0, offset: float = 0.0, times=(0.0, 1.0, 2.0, 3.0), n: int = 60, seed: int = 0):
    """Cells moving along x at unit speed (in units of ``scale``), observed at ``times``."""
    rng = np.random.default_rng(seed)
    arrays = [
        (offset + scale * (0.3 * rng.normal(size=(n + 5 * k, D)) + np.array([t, 0.0]))).astype(np.float32)
        for k, t in enumerate(times)
    ]
    return from_arrays(arrays, times=list(times))


def task(train=(0, 1, 3), heldout=(2,)):
    return SimpleNamespace(name="t", train=list(train), heldout=list(heldout))


# -- DataScale ---------------------------------------------------------------------------------------
def test_datascale_fits_training_times_only():
    snaps = line_snapshots(scale=7.0, offset=100.0)
    scale = DataScale(D).fit_(snaps, [0, 1, 3])
    cells = np.concatenate([snaps.data[i] for i in (0, 1, 3)]).astype(np.float64)
    assert np.allclose(scale.loc.numpy(), cells.mean(0), rtol=1e-5)
    assert np.allclose(scale.scale.numpy(), np.sqrt((cells.std(0) ** 2).mean()), rtol=1e-5)
    assert float(scale.time_unit) == pytest.approx(1.5)  # (3 - 0) / 2 gaps
    z = scale.encode(torch.as_tensor(cells, dtype=torch.float32))
    assert float(z.pow(2).mean()) == pytest.approx(1.0, rel=1e-4)  # unit spread on average
    # held-out time 2 is not used: moving its cells changes nothing
    moved = from_arrays([a + (50.0 if k == 2 else 0.0) for k, a in enumerate(snaps.data)], times=snaps.times)
    assert torch.equal(DataScale(D).fit_(moved, [0, 1, 3]).loc, scale.loc)


@settings(max_examples=25, deadline=None)
@given(st.floats(1e-3, 1e3), st.floats(-1e3, 1e3), st.sampled_from(["global", "per_dim"]))
def test_datascale_round_trips(s, offset, mode):
    snaps = line_snapshots(scale=s, offset=offset)
    scale = DataScale(D).fit_(snaps, [0, 1, 3], standardize=mode)
    x = torch.as_tensor(snaps.data[2], dtype=torch.float64)
    assert torch.allclose(scale.double().decode(scale.double().encode(x)), x, rtol=1e-9, atol=1e-9 * (abs(offset) + s))


def test_datascale_identity_and_bad_names():
    snaps = line_snapshots()
    ident = DataScale(D).fit_(snaps, [0, 1, 3], standardize="none", time_scale="none")
    assert ident.is_identity
    with pytest.raises(ValueError, match="standardize must be one of global, per_dim, none"):
        DataScale(D).fit_(snaps, [0, 1], standardize="zscore")
    with pytest.raises(ValueError, match="model.time_scale must be one of"):
        mfsde.preset("ito", dim=D).override(**{"model.time_scale": "days"})


def test_model_units_do_not_depend_on_the_data_units():
    """The same cells in other units (×1000, shifted, slower clock) train to the same model:
    σ, blur, dt and the energy term are in model units, metrics come back in data units."""
    a = line_snapshots()
    b = from_arrays([1000.0 * x + 5.0 for x in a.data], times=[10 * t + 2 for t in a.times])
    cfg = tiny()
    ra, rb = fit(cfg, a, task(), progress=False), fit(cfg, b, task(), progress=False)
    la, lb = [h["loss"] for h in ra.history], [h["loss"] for h in rb.history]
    assert np.allclose(la, lb, rtol=1e-3), (la, lb)
    ea = evaluate(ra.model, a, task(), n_particles=40, seed=0)
    eb = evaluate(rb.model, b, task(), n_particles=40, seed=0)
    assert eb["w1"] == pytest.approx(1000.0 * ea["w1"], rel=1e-3)  # reported in data units


def test_paper_preset_keeps_the_data_units():
    a = line_snapshots()
    b = from_arrays([1000.0 * x for x in a.data], times=a.times)
    cfg = mfsde.preset("scimf_paper", dim=D).override(
        **{"model.intra.width": 8, "train.iterations": 2, "train.n_particles": 16, "model.inter.heads": 1}
    )
    ra, rb = fit(cfg, a, task(), progress=False), fit(cfg, b, task(), progress=False)
    assert ra.model.scale.is_identity and rb.model.scale.is_identity
    assert not np.allclose(ra.history[0]["fit"] * 1e6, rb.history[0]["fit"], rtol=0.1)  # σ, blur absolute


def test_scale_is_saved_with_the_run_and_reloaded(tmp_path):
    snaps = line_snapshots(scale=40.0)
    res = fit(tiny(), snaps, task(), out_dir=tmp_path / "run", progress=False)
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["scale"]["scale"][0] == pytest.approx(float(res.model.scale.scale[0]))
    model, _ = mfsde.training.load_run(tmp_path / "run")
    assert torch.equal(model.scale.scale, res.model.scale.scale) and not model.scale.is_identity
    e1 = evaluate(res.model, snaps, task(), n_particles=30, seed=1)
    e2 = evaluate(model, snaps, task(), n_particles=30, seed=1)
    assert e1["w1"] == e2["w1"]


def test_data_velocity_is_the_drift_in_data_units():
    snaps = line_snapshots(scale=5.0, offset=3.0, times=(0.0, 2.0, 4.0, 6.0))
    model = fit(tiny("rbf"), snaps, task(), progress=False).model.eval()
    x = torch.as_tensor(snaps.data[1])
    s = model.scale
    want = model.drift(s.encode(x), s.encode_times(2.0)) * s.scale / s.time_unit
    assert torch.allclose(model.data_velocity(x, 2.0), want)
    parts = DataUnitsDrift(model.drift, s)
    assert torch.allclose(parts(x, torch.tensor(2.0)), want, atol=1e-6)
    assert torch.allclose(parts.inter(x, torch.tensor(2.0)), model.data_velocity(x, 2.0, part="inter"), atol=1e-6)


# -- baselines ---------------------------------------------------------------------------------------
def test_neighbours():
    assert neighbours([0, 1, 3, 5], 2) == (1, 3)
    assert neighbours([0, 1, 3], 4) == (3, None)
    with pytest.raises(ValueError, match="no earlier training time"):
        neighbours([1, 2], 0)


def test_previous_and_mccann_on_a_translation():
    """Cells translated by a constant vector: McCann at the midpoint is the exact translation."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, D)).astype(np.float32)
    snaps = from_arrays([x, x + 10.0, x + 20.0], times=[0.0, 1.0, 2.0])
    mid = mccann(snaps, 1, [0, 2], n=50, seed=0)
    assert np.allclose(np.sort(mid[:, 0]), np.sort(x[:, 0] + 10.0), atol=1e-5)
    assert w1(mid, snaps.data[1]) < 1e-5
    assert np.array_equal(np.sort(previous(snaps, 1, [0, 2], n=None)[:, 0]), np.sort(x[:, 0].astype(np.float64)))
    # s follows the physical times, not the indices
    snaps2 = from_arrays([x, x + 5.0, x + 20.0], times=[0.0, 0.25, 1.0])
    assert w1(mccann(snaps2, 1, [0, 2], n=50), snaps2.data[1]) < 1e-5
    with pytest.raises(ValueError, match="no later training time"):
        mccann(snaps, 2, [0, 1], n=10)


def test_floor_split_is_disjoint_and_bounded():
    snaps = line_snapshots(n=40)
    a, b = floor_split(snaps, 1, n=1000, seed=0)
    assert len(a) == len(snaps.data[1]) // 2 and len(a) + len(b) == len(snaps.data[1])
    assert not set(map(tuple, a)) & set(map(tuple, b))


def test_baseline_evaluations_rows_and_fallback():
    snaps = line_snapshots()
    rows = baseline_evaluations(snaps, task(train=(0, 1), heldout=(2, 3)), n_particles=30, seed=0)
    assert [r["preset"] for r in rows] == list(BASELINES)
    mc = rows[1]
    assert all("no later training time" in r["note"] for r in mc["per_time"])  # extrapolation: falls back
    assert [r["w1"] for r in mc["per_time"]] == [r["w1"] for r in rows[0]["per_time"]]
    assert all(r["n_predicted"] == 30 for r in rows[0]["per_time"])
    inter = baseline_evaluations(snaps, task(), n_particles=30, seed=0)
    assert inter[1]["w1"] < inter[0]["w1"]  # the cells move: interpolating beats copying
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline_evaluations(snaps, task(), names=["copy"])


# -- protocols ---------------------------------------------------------------------------------------
def test_previous_protocol_starts_from_the_previous_training_time():
    snaps = line_snapshots()
    model = fit(tiny(), snaps, task(train=(0, 1, 3), heldout=(2,)), progress=False).model
    ev = evaluate(model, snaps, task(), n_particles=None, seed=0, start="previous")
    (r,) = ev["per_time"]
    assert r["start_index"] == 1 and r["n_predicted"] == len(snaps.data[1]) and ev["start"] == "previous"
    direct = simulate(model, snaps, [2], n_particles=None, seed=0, start=1)[2]
    assert r["w1"] == pytest.approx(w1(direct, snaps.data[2]))
    t0 = evaluate(model, snaps, task(), n_particles=None, seed=0)
    assert t0["per_time"][0]["start_index"] == 0 and t0["per_time"][0]["n_predicted"] == len(snaps.data[0])
    with pytest.raises(ValueError, match="start must be one of t0, previous"):
        evaluate(model, snaps, task(), start="first")


def test_compare_rows_have_baselines_for_each_protocol():
    snaps = line_snapshots()
    rows = compare(
        ["ito"],
        snaps,
        task(),
        seeds=[0],
        overrides={"model.intra.width": 8, "train.iterations": 2, "eval.n_particles": 30},
        starts=["t0", "previous"],
        progress=False,
    )
    got = [(r["preset"], r["start"], r["kind"]) for r in rows]
    assert got == [("ito", "t0", "model"), ("ito", "previous", "model")] + [
        (b, s, "baseline") for s in ("t0", "previous") for b in BASELINES
    ]
    with pytest.raises(ValueError, match="starts: unknown protocol"):
        compare(["ito"], snaps, task(), seeds=[0], starts=["t1"])


# -- time budget and training-time fit ---------------------------------------------------------------
@pytest.mark.parametrize("clock, fake", [("wall", "perf_counter"), ("cpu", "process_time")])
def test_time_budget_stops_training_and_is_validated(monkeypatch, clock, fake):
    snaps = line_snapshots()
    ticks = iter(np.arange(0.0, 1e6, 0.5))  # every call of the budget's clock "takes" 0.5 s
    monkeypatch.setattr(mfsde.training._fit.time, fake, lambda: float(next(ticks)))
    res = fit(
        tiny(**{"train.iterations": 50, "train.time_budget": 1.75, "train.time_clock": clock}),
        snaps,
        task(),
        progress=False,
    )
    # a step reads the clock twice (0.5 s each): the budget is counted in training-step seconds of its clock
    assert res.iteration == 4 and res.stopped == "time_budget" and res.train_seconds == 2.0
    other = res.train_wall_seconds if clock == "cpu" else res.train_cpu_seconds
    assert (res.train_cpu_seconds if clock == "cpu" else res.train_wall_seconds) == 2.0 and other < 2.0
    assert all({"seconds", "cpu_seconds"} <= set(r) for r in res.history)
    res = fit(tiny(**{"train.iterations": 2, "train.time_budget": 100.0}), snaps, task(), progress=False)
    assert res.iteration == 2 and res.stopped == "iterations"
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="train.time_budget must be a positive number"):
            tiny(**{"train.time_budget": bad})
    for bad in ("fast", True):
        with pytest.raises(TypeError, match="config key train.time_budget expects a number"):
            tiny(**{"train.time_budget": bad})
    with pytest.raises(ValueError, match="train.time_clock must be one of cpu, wall; got 'gpu'"):
        tiny(**{"train.time_clock": "gpu"})


def test_the_cpu_clock_does_not_count_waiting():
    """A training step that sleeps (a loaded machine, another process on the core) spends wall time
    but no CPU time: the CPU clock does not count it (the default clock, wall, does)."""
    snaps = line_snapshots()
    assert tiny().train.time_clock == "wall"
    cfg = tiny(**{"train.iterations": 3, "train.time_clock": "cpu"})
    trainer = mfsde.training.Trainer(cfg, snaps, task())
    loss = trainer.population_loss
    trainer.population_loss = lambda pop: (time.sleep(0.2), loss(pop))[1]
    rec = trainer.step()
    # the sleep is in the wall clock and not in the CPU clock (the step's own work, in both, varies with load)
    assert rec["seconds"] >= 0.2 and rec["seconds"] - rec["cpu_seconds"] >= 0.15
    assert trainer.train_seconds == rec["cpu_seconds"] and trainer.train_wall_seconds == rec["seconds"]


def test_eval_every_records_training_and_heldout_w1(tmp_path):
    snaps = line_snapshots()
    res = fit(
        tiny(**{"train.iterations": 4, "train.eval_every": 2, "train.eval_particles": 30}),
        snaps,
        task(),
        out_dir=tmp_path / "r",
        progress=False,
    )
    recs = mfsde.training.read_history(tmp_path / "r")
    assert [("w1@1" in r, "w1@2" in r, "w1@3" in r) for r in recs] == [(False,) * 3, (True,) * 3] * 2
    ev = evaluate(res.model, snaps, task(), n_particles=30, seed=0, times=[1, 2, 3], metrics=("w1",))
    assert recs[-1]["w1@2"] == pytest.approx(ev["per_time"][1]["w1"])


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--time-budget", "0"], "expected a positive number of seconds"),
        (["--time-budget", "soon"], "expected a positive number of seconds"),
    ],
)
def test_cli_time_budget_bad_input(argv, needle, tmp_path, capsys):
    snaps = line_snapshots()
    np.save(tmp_path / "a.npy", snaps.data[0])
    np.save(tmp_path / "b.npy", snaps.data[1])
    with pytest.raises(SystemExit) as e:
        main(["fit", "--data", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), *argv])
    assert e.value.code == 2 and needle in capsys.readouterr().err


def test_cli_evaluate_start_previous_prints_baselines(tmp_path, capsys):
    snaps = line_snapshots()
    files = []
    for k, a in enumerate(snaps.data):
        files.append(str(tmp_path / f"t{k}.npy"))
        np.save(files[-1], a)
    run = tmp_path / "run"
    assert (
        main(
            [
                "fit",
                "--data",
                *files,
                "--task",
                "interpolate:2",
                "--preset",
                "ito",
                "--iterations",
                "2",
                "--set",
                "model.intra.width=8",
                "--set",
                "eval.n_particles=30",
                "--time-budget",
                "60",
                "--out",
                str(run),
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["evaluate", "--run", str(run), "--start", "previous", "--n-particles", "all"]) == 0
    out = capsys.readouterr().out
    assert "start: previous" in out and "| mccann | 2 |" in out and "| floor | 2 |" in out
    ev = json.loads((run / "eval.json").read_text())
    assert ev["per_time"][0]["start_index"] == 1 and [b["preset"] for b in ev["baselines"]] == list(BASELINES)
    with pytest.raises(SystemExit):
        main(["evaluate", "--run", str(run), "--start", "first"])
    with pytest.raises(SystemExit):
        main(["evaluate", "--run", str(run), "--n-particles", "0"])


def test_mccann_plan_refuses_an_unconverged_ot():
    """POT only warns when the network simplex hits its iteration limit; the plan must raise."""
    from mfsde.losses._wasserstein import ot_plan

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 2)), rng.normal(size=(60, 2))
    assert np.allclose(ot_plan(x, y).sum(1), 1 / 60)
    with pytest.raises(RuntimeError, match="did not converge"):
        ot_plan(x, y, num_iter_max=3)


# -- σ in data units, learned σ -------------------------------------------------------------------
@pytest.mark.parametrize("standardize", ["global", "per_dim"])
def test_sigma_in_data_units_gives_that_noise_in_data_units(standardize, tmp_path):
    """σ given in data units reaches the data as σ: with the drift zeroed, the decoded particles'
    variance grows by σ_k² Δt per dimension (data time), whatever the scale and time unit."""
    snaps = line_snapshots(scale=40.0, times=(0.0, 2.0, 5.0, 8.0))
    sigma = [6.0, 2.0]
    cfg = tiny(
        **{"model.sigma": sigma, "model.sigma_units": "data", "model.standardize": standardize, "train.iterations": 1}
    )
    res = fit(cfg, snaps, task(), out_dir=tmp_path / "run")
    model = res.model
    sc = model.scale
    expect = torch.tensor(sigma) * float(sc.time_unit) ** 0.5 / sc.scale
    assert torch.allclose(model.diffusion.constant(), expect, rtol=1e-6)
    assert float(sc.time_unit) != 1.0 and not torch.allclose(model.diffusion.constant(), torch.tensor(sigma))
    reloaded = mfsde.training.load_run(tmp_path / "run")[0]
    assert torch.equal(reloaded.diffusion.constant(), model.diffusion.constant())
    for p in model.drift.parameters():
        p.data.zero_()
    x0 = torch.zeros(20000, D)
    xs = model.sample(x0, [0.0, 3.0], seed=0)
    var = xs[-1].var(0)
    assert torch.allclose(var, torch.tensor(sigma) ** 2 * 3.0, rtol=0.05), var


def test_sigma_in_model_units_is_unchanged_by_the_scale():
    snaps = line_snapshots(scale=40.0)
    res = fit(tiny(**{"model.sigma": 0.2, "train.iterations": 1}), snaps, task())
    assert float(res.model.diffusion.constant()) == pytest.approx(0.2)


def test_sigma_in_spread_units_shares_sigma_by_each_dimension_s_spread(tmp_path):
    """``sigma_units="spread"``: σ_k = σ · sd_k / rms(sd), sd the training cells' standard deviation
    per dimension in model units; the total noise is the same as ``"model"``'s, and it reloads."""
    rng = np.random.default_rng(0)
    times = [0.0, 1.0, 2.0, 3.0]
    spread = np.array([10.0, 1.0])  # one wide, one thin direction
    arrays = [(spread * rng.normal(size=(200, D)) + [t, 0.0]).astype(np.float32) for t in times]
    snaps = from_arrays(arrays, times=times)
    res = fit(
        tiny(**{"model.sigma": 0.2, "model.sigma_units": "spread", "train.iterations": 1}),
        snaps,
        task(),
        out_dir=tmp_path / "run",
    )
    sigma = res.model.diffusion.constant()
    cells = np.concatenate([arrays[i] for i in (0, 1, 3)]).astype(np.float64)
    sd = cells.std(0) / float(res.model.scale.scale[0])
    expect = torch.as_tensor(0.2 * sd / np.sqrt(np.mean(sd**2)), dtype=sigma.dtype)
    assert torch.allclose(sigma, expect, rtol=1e-5), (sigma, expect)
    assert float(sigma.square().mean().sqrt()) == pytest.approx(0.2, rel=1e-5)
    assert float(sigma[0] / sigma[1]) == pytest.approx(float(sd[0] / sd[1]), rel=1e-5) and sigma[0] > 5 * sigma[1]
    reloaded = mfsde.training.load_run(tmp_path / "run")[0]
    assert torch.equal(reloaded.diffusion.constant(), sigma)


def test_learned_sigma_is_a_parameter_that_moves_and_resumes(tmp_path):
    snaps = line_snapshots()
    cfg = tiny(**{"model.learn_sigma": True, "model.sigma": 0.5, "train.iterations": 5})
    res = fit(cfg, snaps, task(), out_dir=tmp_path / "run")
    names = [n for n, _ in res.model.named_parameters()]
    assert "diffusion.log_sigma" in names
    assert float(res.model.diffusion.constant().detach()) != pytest.approx(0.5, abs=1e-7)
    again = mfsde.training.load_run(tmp_path / "run")[0]
    assert torch.equal(again.diffusion.constant(), res.model.diffusion.constant())
    assert [round(r["sigma"], 6) for r in res.history][-1] == round(float(res.model.diffusion.constant().detach()), 6)


def test_learned_sigma_finds_the_noise_of_pure_diffusion():
    """Cells that only diffuse (σ = 0.6 per √time, no drift): an Itô model started at σ = 0.1
    with its own σ step size (train.sigma_lr) learns the noise; at the default lr σ barely moves."""
    rng = np.random.default_rng(0)
    times = [0.0, 1.0, 2.0, 3.0]
    arrays = [
        (0.6 * np.sqrt(t) * rng.normal(size=(300, D)) + 0.05 * rng.normal(size=(300, D))).astype(np.float32)
        for t in times
    ]
    snaps = from_arrays(arrays, times=times)
    over = {
        "model.learn_sigma": True,
        "model.sigma": 0.6 / 6,
        "model.sigma_units": "data",
        "model.standardize": "none",
        "model.time_scale": "none",
        "train.iterations": 80,
        "train.lr": 1e-3,
        "train.n_particles": 200,
        "train.n_targets": 200,
        "loss.fit.blur": 0.05,
        "loss.energy_weight": 0.0,
    }

    def run(**extra):
        cfg = tiny(**over, **extra)
        cfg.model.intra = Component("zero")  # no drift to learn: only σ
        return fit(cfg, snaps, task(train=(0, 1, 2, 3), heldout=()), progress=False).model

    slow, fast = run(), run(**{"train.sigma_lr": 5e-2})
    assert float(slow.diffusion.constant().detach().mean()) < 0.2
    assert float(fast.diffusion.constant().detach().mean()) == pytest.approx(0.6, rel=0.15)


@pytest.mark.parametrize(
    "over, match",
    [
        ({"model.sigma_units": "pixels"}, "model.sigma_units"),
        ({"model.sigma_units": "spread", "model.sigma": [0.1, 0.2]}, "model.sigma_units 'spread'"),
        ({"model.sigma_units": "spread", "model.noise.name": "affine"}, "model.sigma_units 'spread'"),
        ({"model.learn_sigma": True, "model.sigma": 0.0}, "model.learn_sigma"),
        ({"model.learn_sigma": "yes"}, "model.learn_sigma"),
        ({"train.sigma_lr": 0.0, "model.learn_sigma": True}, "train.sigma_lr"),
        ({"train.sigma_lr": 0.01}, "model.learn_sigma is false"),
        ({"train.inter_lr": -1.0}, "train.inter_lr"),
        ({"train.inter_lr": 0.1, "model.inter.name": "none"}, "model.inter is 'none'"),
    ],
)
def test_bad_sigma_options_name_the_key(over, match):
    with pytest.raises((ValueError, TypeError), match=match):
        tiny(**over).validate()
