"""Mean-field flow matching (``train.method``): couplings, bridges, the regression's limit on a
linear system, reduction to independent-particle matching, every kernel, phases, resume, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

import mfsde
from mfsde.cli import main
from mfsde.data import Populations, PopulationTask, from_arrays
from mfsde.training import (
    GlobalPlan,
    Trainer,
    bridge,
    couple,
    fit,
    flow_matching_batch,
    flow_matching_loss,
    load_checkpoint,
)

D = 2


def fm(preset="ito", dim=D, **over):
    base = {
        "train.method": "flow_matching",
        "model.intra.width": 32,
        "train.fm_batch": 32,
        "train.fm_times": 4,
        "train.iterations": 3,
        "train.lr": 1e-2,
        "eval.n_particles": 40,
        "train.checkpoint_seconds": None,
    }
    base.update(over)
    return mfsde.preset(preset, dim=dim).override(**base)


def moving(times=(0.0, 1.0, 2.0, 3.0), n=60, seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    return from_arrays(
        [(offset + 0.3 * rng.normal(size=(n, D)) + np.array([t, 0.0])).astype(np.float32) for t in times],
        times=list(times),
    )


def ou_snapshots(theta=1.0, sigma=0.5, n=400, seed=0):
    """A 2-D Ornstein–Uhlenbeck process dx = −θx dt + σ dW from N((3, −2), 0.25 I), sampled exactly
    from its Gaussian marginals at 9 times in [0, 2]."""
    rng = np.random.default_rng(seed)
    ts = np.linspace(0.0, 2.0, 9)
    arrays = []
    for t in ts:
        mean = np.array([3.0, -2.0]) * np.exp(-theta * t)
        var = 0.25 * np.exp(-2 * theta * t) + sigma**2 / (2 * theta) * (1 - np.exp(-2 * theta * t))
        arrays.append((mean + np.sqrt(var) * rng.standard_normal((n, D))).astype(np.float32))
    return from_arrays(arrays, times=ts.tolist())


# -- couplings and bridges ---------------------------------------------------------------------------
def test_the_exact_coupling_is_the_optimal_assignment():
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(40, 3, generator=g), torch.randn(40, 3, generator=g) + 1.0
    j = couple(x0, x1, "exact", torch.Generator().manual_seed(1))
    cost = torch.cdist(x0.double(), x1.double()).pow(2).numpy()
    _, best = linear_sum_assignment(cost)
    assert sorted(j.tolist()) == list(range(40))  # a permutation
    assert cost[np.arange(40), j.numpy()].sum() == pytest.approx(cost[np.arange(40), best].sum(), rel=1e-9)
    # Sinkhorn at a small ε is close to it; the independent coupling is not
    js = couple(x0, x1, "sinkhorn", torch.Generator().manual_seed(1), eps=0.02)
    ji = couple(x0, x1, "independent", torch.Generator().manual_seed(1))
    opt = cost[np.arange(40), best].sum()
    assert cost[np.arange(40), js.numpy()].sum() < 1.05 * opt < cost[np.arange(40), ji.numpy()].sum()


def test_the_global_coupling_draws_its_pairs_from_the_snapshots_exact_plan():
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(60, 3, generator=g), torch.randn(60, 3, generator=g) + 1.0
    plan = GlobalPlan(x0, x1)
    cost = torch.cdist(x0.double(), x1.double()).pow(2).numpy()
    _, best = linear_sum_assignment(cost)
    a, b, geo = plan.sample(500, torch.Generator().manual_seed(1))
    assert geo is None  # no metric: straight bridges, nothing solved
    i = torch.cdist(a, x0).argmin(1).numpy()
    j = torch.cdist(b, x1).argmin(1).numpy()
    # equal sizes: the plan is the optimal assignment, and every drawn pair is one of its pairs
    assert (j == best[i]).all()
    assert len(set(i.tolist())) > 50  # the first ends cover the snapshot (uniform draws)
    # a minibatch plan of 10 + 10 cells pairs the same cells differently: a different coupling
    rows = torch.randperm(60, generator=g)[:10]
    k = couple(x0[rows], x1[best[rows.numpy()]], "exact", torch.Generator().manual_seed(2))
    assert k.tolist() == list(range(10))  # restricted to the global pairs, the minibatch agrees
    # unequal sizes: the drawn partners' marginal is the second snapshot's (each of its 30 cells
    # carries 1/30 of the plan's mass)
    plan = GlobalPlan(x0, x1[:30])
    _, b, _ = plan.sample(30_000, torch.Generator().manual_seed(3))
    counts = np.bincount(torch.cdist(b, x1[:30]).argmin(1).numpy(), minlength=30)
    assert np.abs(counts / 30_000 - 1 / 30).max() < 0.01


def test_the_global_plan_is_solved_once_per_gap_from_its_own_draws_and_trains_reproducibly():
    snaps = moving(n=80)
    cfg = fm("scimf", **{"train.fm_coupling": "global", "train.fm_plan_cells": 50})
    trainer = Trainer(cfg, snaps, "loo:2")
    before = trainer.replicas[0].generator.get_state()
    plan = trainer.fm_plan(0, 1)
    assert torch.equal(trainer.replicas[0].generator.get_state(), before)  # no training draws used
    assert trainer.fm_plan(0, 1) is plan and plan.x0.shape == (50, D) and plan.x1.shape == (50, D)
    # its ends are cells of the gap's two training snapshots (times 1 and 3 with time 2 held out)
    scaled = [trainer.series[0].data[k] for k in (1, 3)]
    assert all(torch.cdist(e, c).min(1).values.max() < 1e-6 for e, c in zip((plan.x0, plan.x1), scaled))
    # the same on a new trainer (a resume), and training with it is reproducible
    assert torch.equal(Trainer(cfg, snaps, "loo:2").fm_plan(0, 1).x0, plan.x0)
    r1, r2 = (fit(cfg, snaps, "loo:2", progress=False) for _ in range(2))
    assert [r["loss"] for r in r1.history] == [r["loss"] for r in r2.history]
    other = fit(cfg.override(**{"train.seed": 1}), snaps, "loo:2", progress=False)
    assert [r["loss"] for r in other.history] != [r["loss"] for r in r1.history]


@pytest.mark.parametrize(
    "interpolant", [{}, {"train.fm_interpolant": "metric", "train.fm_metric_centers": 12}], ids=["linear", "metric"]
)
def test_a_run_with_the_global_coupling_resumes_bit_identically(tmp_path, interpolant, monkeypatch):
    from mfsde.training import _geodesic

    monkeypatch.setattr(_geodesic, "GEODESIC_CHUNK", 16)  # the plan's geodesics in several chunks
    snaps = moving(n=80)
    over = {"train.fm_coupling": "global", "train.fm_plan_cells": 50, "train.iterations": 4, **interpolant}
    cfg = fm("scimf", **over)
    full = fit(cfg, snaps, "loo:2", out_dir=tmp_path / "full", progress=False)
    fit(cfg.override(**{"train.iterations": 2}), snaps, "loo:2", out_dir=tmp_path / "part", progress=False)
    part = fit(cfg, snaps, "loo:2", resume=tmp_path / "part", progress=False)
    assert [r["loss"] for r in part.history] == [r["loss"] for r in full.history]
    a, b = load_checkpoint(tmp_path / "full")["model"], load_checkpoint(tmp_path / "part")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_bridge_has_the_brownian_bridge_law_and_its_drift():
    g = torch.Generator().manual_seed(0)
    n, s, gap, sigma = 200_000, 0.3, 2.0, 0.5
    x0, x1 = torch.zeros(n, 1), torch.ones(n, 1)
    xt, u = bridge(x0, x1, torch.tensor(s).view(1, 1), torch.tensor(gap).view(1, 1), torch.tensor(sigma), g)
    assert float(xt.mean()) == pytest.approx(s, abs=3e-3)
    assert float(xt.var()) == pytest.approx(sigma**2 * s * (1 - s) * gap, rel=0.02)
    assert torch.allclose(u, (x1 - xt) / ((1 - s) * gap))
    # σ = 0: a straight line at the speed of the gap (OT-CFM's target)
    xt, u = bridge(x0[:5], x1[:5], torch.tensor(s).view(1, 1), torch.tensor(gap).view(1, 1), torch.tensor(0.0), g)
    assert torch.allclose(xt, torch.full((5, 1), s)) and torch.allclose(u, torch.full((5, 1), 1 / gap))


# -- what is learned ---------------------------------------------------------------------------------
def test_on_an_ou_process_flow_matching_recovers_the_closed_form_drift():
    theta, sigma = 1.0, 0.5
    snaps = ou_snapshots(theta, sigma)
    cfg = fm(
        "ito",
        **{
            "model.sigma": sigma,
            "model.sigma_units": "data",
            "train.iterations": 400,
            "train.fm_batch": 128,
            "train.lr": 3e-3,
            "model.intra.width": 64,
            "train.clip_grad_norm": None,
        },
    )
    x = torch.as_tensor(np.concatenate(snaps.data))
    true = -theta * x
    before = mfsde.model.build_model(cfg)
    res = fit(cfg, snaps, "all", progress=False)
    err = float((res.model.data_velocity(x).detach() - true).norm() / true.norm())
    assert err < 0.2, err  # 0.11 measured (the rest: finite batches, the exact coupling's ε → 0 limit)
    # and the untrained drift is far from it (the scale is the identity there: data units)
    assert float((before.drift(x).detach() - true).norm() / true.norm()) > 0.8


def test_with_no_interaction_it_is_independent_particle_matching_exactly():
    snaps = moving()
    cfg = fm("ito")
    trainer = Trainer(cfg, snaps, "all")
    pop = trainer.replicas[0]
    state, rng = pop.generator.get_state(), pop.torch_rng
    loss = trainer.flow_matching_loss(pop)
    pop.generator.set_state(state)
    pop.torch_rng = rng
    sigma = trainer.model.diffusion.constant().detach()
    fb = flow_matching_batch(trainer.series[0], sigma, n_times=4, batch=32, coupling="exact", generator=pop.generator)
    # every cell on its own: a population of one, its own regression term
    terms = [
        fb.weight[m] * (trainer.model.drift(fb.xt[m, i : i + 1], fb.t[m]) - fb.target[m, i]).pow(2).sum()
        for m in range(fb.xt.shape[0])
        for i in range(fb.xt.shape[1])
    ]
    assert torch.allclose(loss, torch.stack(terms).mean(), rtol=1e-6, atol=0)


def test_each_bridged_population_is_what_the_kernel_attends_to():
    snaps = moving()
    trainer = Trainer(fm("scimf", **{"model.inter.dropout": 0.0, "model.inter.zero_init": False}), snaps, "all")
    g = torch.Generator().manual_seed(3)
    fb = flow_matching_batch(trainer.series[0], torch.tensor(0.1), n_times=3, batch=16, coupling="exact", generator=g)
    drift = trainer.model.drift
    batched = drift(fb.xt, fb.t)
    # row m is one population at its own time: the same as evaluating it alone …
    for m in range(3):
        assert torch.allclose(batched[m], drift(fb.xt[m], fb.t[m]), atol=1e-6)
    # … and the attention really depends on the rest of that population
    alone = drift(fb.xt[0, :1], fb.t[0])
    assert not torch.allclose(batched[0, :1], alone, atol=1e-4)
    loss = flow_matching_loss(drift, fb)
    manual = torch.stack([fb.weight[m] * (batched[m] - fb.target[m]).pow(2).sum(-1).mean() for m in range(3)]).mean()
    assert torch.allclose(loss, manual, rtol=1e-6)


@pytest.mark.parametrize("preset", ["scimf", "ito", "symmetric_qk", "rbf", "radial", "pairwise_mlp"])
def test_every_kernel_trains_by_flow_matching(preset):
    snaps = moving()
    model = mfsde.model.build_model(fm(preset))
    res = fit(fm(preset), snaps, "loo:2", progress=False)
    assert res.iteration == 3 and all(np.isfinite(r["fm"]) and r["phase"] == "flow_matching" for r in res.history)
    assert "fit" not in res.history[-1]
    moved = [
        n
        for n, p in res.model.state_dict().items()
        if n in model.state_dict() and n.startswith("drift.") and not torch.equal(p, model.state_dict()[n])
    ]
    assert any(n.startswith("drift.intra.") for n in moved)
    ev = mfsde.evaluate(res.model, snaps, "loo:2", n_particles=40, seed=0)
    assert np.isfinite(ev["w1"])


def test_flow_matching_is_reproducible_with_a_seed():
    snaps = moving()
    a = fit(fm("scimf", **{"train.seed": 4}), snaps, "all", progress=False)
    b = fit(fm("scimf", **{"train.seed": 4}), snaps, "all", progress=False)
    c = fit(fm("scimf", **{"train.seed": 5}), snaps, "all", progress=False)
    assert [r["fm"] for r in a.history] == [r["fm"] for r in b.history] != [r["fm"] for r in c.history]
    assert all(torch.equal(p, q) for p, q in zip(a.model.state_dict().values(), b.model.state_dict().values()))


def test_several_populations_are_coupled_within_each():
    far = Populations({"a": moving(seed=1), "b": moving(seed=2, offset=100.0)})
    trainer = Trainer(fm("scimf"), far, PopulationTask("all"))
    g = torch.Generator().manual_seed(0)
    for series in trainer.series:
        fb = flow_matching_batch(series, torch.tensor(0.1), n_times=4, batch=32, coupling="exact", generator=g)
        centre = float(series.data[0].mean(0)[0])
        # every bridged cell stays with its own population (in model units the two are far apart)
        assert (fb.xt[..., 0] - centre).abs().max() < 0.5 * abs(
            float(trainer.series[1].data[0].mean(0)[0]) - float(trainer.series[0].data[0].mean(0)[0])
        )
    rec = trainer.step()
    assert np.isfinite(rec["fm"])


# -- flow matching, then simulation ------------------------------------------------------------------
def test_flow_matching_then_simulation_switches_and_resumes_bit_identically(tmp_path):
    snaps = moving()
    cfg = fm(
        "scimf",
        **{
            "train.method": "flow_matching+simulation",
            "train.fm_iterations": 3,
            "train.iterations": 6,
            "train.n_particles": 24,
            "train.n_targets": 30,
            "model.dt": 0.25,
            "train.checkpoint_every": 1,
        },
    )
    full = fit(cfg, snaps, "loo:2", out_dir=tmp_path / "full", progress=False)
    assert [r["phase"] for r in full.history] == ["flow_matching"] * 3 + ["simulation"] * 3
    assert "fm" in full.history[0] and "fit" in full.history[-1] and "energy" in full.history[-1]
    # stopped at iteration 2 (inside the first phase), then at 4 (inside the second), resumed each time
    fit(cfg.override(**{"train.iterations": 2}), snaps, "loo:2", out_dir=tmp_path / "part", progress=False)
    fit(cfg.override(**{"train.iterations": 4}), snaps, "loo:2", resume=tmp_path / "part", progress=False)
    part = fit(cfg, snaps, "loo:2", resume=tmp_path / "part", progress=False)

    def strip(h):
        return [{k: v for k, v in r.items() if k not in ("seconds", "cpu_seconds")} for r in h]

    assert strip(part.history) == strip(full.history)
    a, b = load_checkpoint(tmp_path / "full")["model"], load_checkpoint(tmp_path / "part")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    hist = [r["phase"] for r in mfsde.training.read_history(tmp_path / "part")]
    assert hist == ["flow_matching"] * 3 + ["simulation"] * 3


def test_the_time_budget_covers_both_phases(monkeypatch):
    snaps = moving()
    ticks = iter(np.arange(0.0, 1e6, 0.5))
    monkeypatch.setattr(mfsde.training._fit.time, "process_time", lambda: float(next(ticks)))
    cfg = fm(
        "ito",
        **{
            "train.method": "flow_matching+simulation",
            "train.fm_iterations": 2,
            "train.iterations": 50,
            "train.time_budget": 1.75,
            "train.time_clock": "cpu",
            "train.n_particles": 16,
            "train.n_targets": 20,
        },
    )
    res = fit(cfg, snaps, "all", progress=False)
    assert (
        res.stopped == "time_budget" and [r["phase"] for r in res.history] == ["flow_matching"] * 2 + ["simulation"] * 2
    )


def test_fm_share_switches_to_simulation_at_its_share_of_the_budget(monkeypatch):
    """Each step costs 0.5 CPU s on the fake clock: with a 4 s budget and fm_share 0.5, flow
    matching runs until 2 s are spent (4 steps, far below fm_iterations), then simulation to the
    end of the budget, and never back."""
    snaps = moving()
    ticks = iter(np.arange(0.0, 1e6, 0.5))
    monkeypatch.setattr(mfsde.training._fit.time, "process_time", lambda: float(next(ticks)))
    cfg = fm(
        "ito",
        **{
            "train.method": "flow_matching+simulation",
            "train.fm_iterations": 1000,
            "train.fm_share": 0.5,
            "train.iterations": 50,
            "train.time_budget": 4.0,
            "train.time_clock": "cpu",
            "train.n_particles": 16,
            "train.n_targets": 20,
        },
    )
    res = fit(cfg, snaps, "all", progress=False)
    phases = [r["phase"] for r in res.history]
    assert res.stopped == "time_budget" and phases == ["flow_matching"] * 4 + ["simulation"] * 4, phases


@pytest.mark.parametrize("restart", [False, True])
def test_fm_restart_lr_starts_the_schedule_again_when_simulation_takes_over(restart, tmp_path):
    snaps = moving()
    over = {
        "train.method": "flow_matching+simulation",
        "train.fm_iterations": 3,
        "train.iterations": 5,
        "train.lr_step": 1,
        "train.lr_gamma": 0.5,
        "train.fm_restart_lr": restart,
        "train.n_particles": 16,
        "train.n_targets": 20,
    }
    full = fit(fm("ito", **over), snaps, "all", progress=False)
    lrs = [r["lr"] for r in full.history]
    first = lrs[0]
    expected = [first, first / 2, first / 4] + ([first, first / 2] if restart else [first / 8, first / 16])
    assert lrs == pytest.approx(expected, rel=1e-12), lrs
    # resumed at the switch: the restart happens on the resumed run's first step, bit-identically
    fit(fm("ito", **{**over, "train.iterations": 3}), snaps, "all", out_dir=tmp_path, progress=False)
    resumed = fit(fm("ito", **over), snaps, "all", resume=tmp_path, progress=False)
    assert [r["lr"] for r in resumed.history] == lrs
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in full.history]


# -- bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "over, match",
    [
        ({"train.method": "matching"}, "train.method must be one of simulation, flow_matching, flow_matching"),
        ({"train.fm_coupling": "greedy"}, "train.fm_coupling must be one of exact, sinkhorn, independent, global"),
        ({"train.fm_plan_cells": 0, "train.fm_coupling": "global"}, "train.fm_plan_cells must be a positive int"),
        (
            {"train.method": "simulation", "train.fm_coupling": "global"},
            "train.fm_coupling 'global' shapes flow matching's bridges; train.method 'simulation' has none",
        ),
        ({"train.fm_plan_cells": 100}, "train.fm_plan_cells applies to train.fm_coupling 'global' only; got 'exact'"),
        (
            {"train.fm_plan_cells": 20000, "train.fm_coupling": "global"},
            r"train.fm_plan_cells: the coupling's 20000 × 20000 cost matrix would need 3.0 GiB .*lower "
            "train.fm_plan_cells",
        ),
        ({"train.fm_batch": 0}, "train.fm_batch must be a positive int"),
        ({"train.fm_times": 0}, "train.fm_times must be a positive int"),
        ({"train.fm_batch": 1}, "train.fm_batch must be >= 2 with an interaction kernel"),
        ({"train.fm_share": 1.5}, r"train.fm_share must be a number in \(0, 1\)"),
        (
            {"train.fm_restart_lr": True, "train.method": "flow_matching"},
            "train.fm_restart_lr applies to train.method 'flow_matching\\+simulation' only",
        ),
        (
            {"train.fm_share": 0.5, "train.method": "flow_matching"},
            "train.fm_share applies to train.method 'flow_matching\\+simulation' only",
        ),
        (
            {"train.fm_share": 0.5, "train.method": "flow_matching+simulation"},
            "train.fm_share is a share of train.time_budget",
        ),
        ({"train.fm_batch": 20000}, r"20000 × 20000 cost matrix would need 3.0 GiB .*lower train.fm_batch"),
        (
            {"model.learn_sigma": True},
            "model.learn_sigma needs train.method 'simulation' or 'flow_matching\\+simulation'",
        ),
        ({"model.noise.name": "affine"}, "needs model.noise 'diagonal'"),
    ],
)
def test_bad_flow_matching_settings_are_one_line_errors(over, match):
    with pytest.raises(ValueError, match=match) as e:
        fm("scimf", **over)
    assert "\n" not in str(e.value)


def test_flow_matching_needs_two_training_times_and_distinct_times():
    with pytest.raises(ValueError, match="no training time after t_0"):
        fit(
            fm("ito"),
            moving(),
            {"train": [0], "heldout": [1]}
            if False
            else type("T", (), {"name": "t", "train": [0], "heldout": [1, 2, 3]})(),
            progress=False,
        )
    with pytest.raises(ValueError, match="strictly increasing"):
        fit(fm("ito"), moving(times=(0.0, 1.0, 1.0, 2.0)), "all", progress=False)


def test_cli_refuses_an_unknown_training_method_in_one_line(tmp_path, capsys):
    snaps = moving()
    rows = ["t,x1,x2"] + [f"{t},{x[0]},{x[1]}" for t, a in zip(snaps.times, snaps.data) for x in a]
    (tmp_path / "cells.csv").write_text("\n".join(rows) + "\n")
    code = main(
        [
            "fit",
            "--data",
            str(tmp_path / "cells.csv"),
            "--time-col",
            "t",
            "--preset",
            "ito",
            "--set",
            "train.method=magic",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "train.method must be one of" in err[0], err


def test_the_loss_plot_draws_a_history_of_both_phases(tmp_path):
    from mfsde.pl import plot_loss

    history = [
        {"iteration": 1, "loss": 2.0, "fm": 2.0, "phase": "flow_matching", "seconds": 0.1, "cpu_seconds": 0.1},
        {
            "iteration": 2,
            "loss": 1.0,
            "fit": 0.9,
            "energy": 10.0,
            "fit@1": 0.9,
            "phase": "simulation",
            "seconds": 0.2,
            "cpu_seconds": 0.2,
        },
    ]
    path = plot_loss(history, tmp_path / "loss.png")
    assert path.is_file() and path.stat().st_size > 1000


def test_flow_matching_refuses_data_parallel_runs_and_a_simulate_it_would_ignore(monkeypatch):
    snaps = moving()
    with pytest.raises(ValueError, match="never simulates: a simulate function would be ignored"):
        Trainer(fm("ito"), snaps, "all", simulate=lambda *a: None)
    monkeypatch.setattr(mfsde.training.distributed, "world_size", lambda: 2)
    monkeypatch.setattr(mfsde.training.distributed, "rank", lambda: 0)
    with pytest.raises(ValueError, match="runs in one process; data-parallel .* needs train.method 'simulation'"):
        Trainer(fm("ito", **{"train.replicas": 2}), snaps, "all")
