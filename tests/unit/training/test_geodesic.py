"""Metric interpolants of flow matching (``train.fm_interpolant = "metric"``): the data-density
metric, the geodesics it gives, the bridge around a curved mean, and training with it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mfsde
from mfsde.data import from_arrays
from mfsde.training import Trainer, _geodesic, fit, load_checkpoint
from mfsde.training._flow_matching import GlobalPlan, bridge, flow_matching_batch
from mfsde.training._geodesic import RBFMetric, geodesic, kmeans, path


def fm(**over):
    """A small ``scimf`` trained by flow matching along metric geodesics."""
    small = {"train.fm_batch": 32, "train.fm_times": 4, "train.iterations": 3, "train.checkpoint_seconds": None}
    metric = {"train.method": "flow_matching", "train.fm_interpolant": "metric", "train.fm_metric_centers": 12}
    return mfsde.preset("scimf", dim=2).override(**{**small, **metric, **over})


def ring(n=300, seed=0, radius=3.0):
    """Cells on a ring of ``radius`` (a hole in the middle), ``(n, 2)``."""
    g = torch.Generator().manual_seed(seed)
    a = 2 * math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    r = radius + 0.15 * torch.randn(n, generator=g, dtype=torch.float64)
    return torch.stack([r * torch.cos(a), r * torch.sin(a)], 1)


def arcs(times=(0.0, 1.0, 2.0, 3.0), n=80, seed=0):
    """Snapshots moving around a ring: at time t the cells sit near angle t·π/3."""
    rng = np.random.default_rng(seed)
    out = []
    for t in times:
        a = t * math.pi / 3 + 0.15 * rng.normal(size=n)
        r = 3.0 + 0.1 * rng.normal(size=n)
        out.append(np.stack([r * np.cos(a), r * np.sin(a)], 1).astype(np.float32))
    return from_arrays(out, times=list(times))


# -- k-means and the metric ---------------------------------------------------------------------------
def test_kmeans_finds_separated_clusters_and_is_deterministic_with_its_generator():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], dtype=torch.float64)
    x = torch.cat([c + 0.1 * torch.randn(50, 2, generator=g, dtype=torch.float64) for c in centres])
    c1 = kmeans(x, 3, torch.Generator().manual_seed(1))
    c2 = kmeans(x, 3, torch.Generator().manual_seed(1))
    assert torch.equal(c1, c2)
    nearest = torch.cdist(centres, c1).min(1).values
    assert float(nearest.max()) < 0.1
    with pytest.raises(ValueError, match="train.fm_metric_centers must be between 1 and the 150 cells"):
        kmeans(x, 151, g)


def test_the_metric_is_about_one_on_the_cells_and_vanishes_off_them():
    cells = ring()
    m = RBFMetric(cells, 20, 3.0, 0.1, torch.Generator().manual_seed(0))
    assert m.fit_error < 0.05
    assert float(m.h(cells).median()) == pytest.approx(1.0, abs=0.15)
    centre = torch.zeros(1, 2, dtype=torch.float64)
    assert float(m.h(centre)) < 0.05  # the hole in the ring
    assert float(m.inverse_scale(centre)) > 5 * float(m.inverse_scale(cells[:1]))


def test_narrow_centres_warn_naming_kappa():
    trainer = Trainer(fm(**{"train.fm_metric_kappa": 0.01}), arcs(), "all")
    with pytest.warns(UserWarning, match="train.fm_metric_kappa: the metric of gap 0 does not cover its cells"):
        trainer.fm_metric(0, 0)


# -- geodesics ------------------------------------------------------------------------------------------
def test_geodesics_go_round_the_hole_and_lower_the_energy():
    cells = ring()
    m = RBFMetric(cells, 24, 3.0, 0.01, torch.Generator().manual_seed(0))
    x0 = torch.tensor([[3.0, 0.2], [3.0, -0.2]], dtype=torch.float64)
    x1 = torch.tensor([[-3.0, 0.2], [-3.0, -0.2]], dtype=torch.float64)
    a = geodesic(x0, x1, m, max_iter=50)
    s = (torch.arange(64, dtype=torch.float64) + 0.5) / 64
    zero = torch.zeros_like(a)

    def energy(c):
        mu, d = path(x0, x1, c, s)
        return (m.inverse_scale(mu) * d.pow(2).sum(-1)).mean(-1)

    assert bool((energy(a) < 0.5 * energy(zero)).all())
    mid, _ = path(x0, x1, a, torch.tensor([0.5], dtype=torch.float64))
    # the straight midpoint is the empty centre; the geodesic's sits near the ring
    assert bool((mid[:, 0].norm(dim=-1) > 2.0).all())
    assert bool((m.h(mid[:, 0]) > 0.3).all())


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**16), st.integers(1, 5))
def test_under_a_flat_metric_the_geodesic_is_the_straight_line(seed, n_basis):
    g = torch.Generator().manual_seed(seed)
    cells = torch.randn(40, 3, generator=g, dtype=torch.float64)
    m = RBFMetric(cells, 4, 3.0, 0.1, g, steps=0)
    m.weights = torch.zeros_like(m.weights)  # h ≡ 0: G = I / ε everywhere
    x0, x1 = torch.randn(6, 3, generator=g, dtype=torch.float64), torch.randn(6, 3, generator=g, dtype=torch.float64)
    a = geodesic(x0, x1, m, n_basis=n_basis)
    assert float(a.abs().max()) < 1e-6


def test_the_path_has_its_ends_and_its_derivative():
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
    a = torch.randn(5, 4, 3, generator=g, dtype=torch.float64)
    ends, _ = path(x0, x1, a, torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert torch.allclose(ends[:, 0], x0) and torch.allclose(ends[:, 1], x1)
    s, h = torch.tensor([0.3], dtype=torch.float64), 1e-6
    (_, dmu), (up, _), (down, _) = path(x0, x1, a, s), path(x0, x1, a, s + h), path(x0, x1, a, s - h)
    assert torch.allclose(dmu, (up - down) / (2 * h), atol=1e-6)


# -- the bridge around a curved mean ------------------------------------------------------------------
def test_the_bridge_around_the_straight_line_is_the_straight_bridge():
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(7, 10, 3, generator=g), torch.randn(7, 10, 3, generator=g)
    s, gap = torch.rand(7, 1, 1, generator=g) * 0.99, 0.5 + torch.rand(7, 1, 1, generator=g)
    straight = bridge(x0, x1, s, gap, torch.tensor(0.3), torch.Generator().manual_seed(1))
    mean = ((1 - s) * x0 + s * x1, (x1 - x0).expand_as(x0))
    curved = bridge(x0, x1, s, gap, torch.tensor(0.3), torch.Generator().manual_seed(1), mean)
    for a, b in zip(straight, curved):
        assert torch.allclose(a, b, atol=1e-5)


def test_the_curved_bridge_has_mean_mu_and_its_noise_free_drift_is_mu_dot():
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(1, 4000, 2, generator=g, dtype=torch.float64), torch.randn(1, 4000, 2, generator=g)
    x1 = x1.double()
    a = torch.randn(4000, 3, 2, generator=g, dtype=torch.float64)
    s, gap = torch.tensor([[[0.4]]], dtype=torch.float64), torch.tensor([[[2.0]]], dtype=torch.float64)
    mu, dmu = path(x0[0], x1[0], a, s.view(1))
    mean = (mu[:, 0].unsqueeze(0), dmu[:, 0].unsqueeze(0))
    # no noise: the point is on the path and the target is its velocity in model time
    xt, u = bridge(x0, x1, s, gap, torch.tensor(0.0), torch.Generator().manual_seed(1), mean)
    assert torch.allclose(xt, mean[0]) and torch.allclose(u, mean[1] / 2.0)
    # with noise: centred on μ with the Brownian bridge's variance σ² s (1 − s) Δ
    xt, u = bridge(x0, x1, s, gap, torch.tensor(0.5), torch.Generator().manual_seed(1), mean)
    dev = xt - mean[0]
    assert float(dev.mean().abs()) < 0.03
    assert float(dev.var()) == pytest.approx(0.25 * 0.4 * 0.6 * 2.0, rel=0.05)
    assert torch.allclose(u, mean[1] / 2.0 - dev / (0.6 * 2.0))


# -- training ---------------------------------------------------------------------------------------------
def test_metric_bridges_bend_and_never_read_a_held_out_time():
    snaps = arcs()
    poisoned = from_arrays(
        [np.asarray(d) if k != 2 else np.asarray(d) + 1000.0 for k, d in enumerate(snaps.data)],
        times=list(snaps.times),
    )
    trainer = Trainer(fm(), poisoned, "loo:2")  # time 2 held out: the gap (1, 3) is bridged over it
    series = trainer.series[0]

    def batch(metrics=None):  # the geodesics draw nothing: one seed gives the same times and pairs
        g = torch.Generator().manual_seed(0)
        return flow_matching_batch(
            series, torch.tensor(0.0), n_times=16, batch=32, coupling="exact", generator=g, metrics=metrics
        )

    fb, straight = batch(lambda gap: trainer.fm_metric(0, gap)), batch()
    assert bool(torch.isfinite(fb.xt).all()) and bool(torch.isfinite(fb.target).all())
    # the held-out cells (1000 away) are in no gap's metric: every centre sits among training cells
    train_cells = torch.cat([series.data[k] for k in (0, 1, 3)])
    for gap in range(2):
        centres = trainer.fm_metric(0, gap).centres
        assert float(torch.cdist(centres, train_cells).min(1).values.max()) < 1.0
    # same times and pairs, bent paths: the points move off the chords
    assert torch.equal(fb.t, straight.t)
    assert float((fb.xt - straight.xt).norm(dim=-1).mean()) > 1e-3
    rec = trainer.step()
    assert np.isfinite(rec["fm"])


def test_metric_flow_matching_is_reproducible_and_resumes_bit_identically(tmp_path):
    snaps = arcs()
    cfg = fm(**{"train.iterations": 4, "train.checkpoint_every": 1, "train.seed": 3})
    full = fit(cfg, snaps, "loo:2", out_dir=tmp_path / "full", progress=False)
    again = fit(cfg, snaps, "loo:2", progress=False)
    linear = fit(
        cfg.override(**{"train.fm_interpolant": "linear", "train.fm_metric_centers": 150}),
        snaps,
        "loo:2",
        progress=False,
    )
    assert [r["fm"] for r in full.history] == [r["fm"] for r in again.history]
    assert [r["fm"] for r in full.history] != [r["fm"] for r in linear.history]
    fit(cfg.override(**{"train.iterations": 2}), snaps, "loo:2", out_dir=tmp_path / "part", progress=False)
    part = fit(cfg, snaps, "loo:2", resume=tmp_path / "part", progress=False)
    assert [r["fm"] for r in part.history] == [r["fm"] for r in full.history]
    a, b = load_checkpoint(tmp_path / "full")["model"], load_checkpoint(tmp_path / "part")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_global_plan_solves_each_entrys_geodesic_once_and_draws_reuse_it(monkeypatch):
    cells = ring(400, seed=1)
    m = RBFMetric(cells, 24, 3.0, 0.01, torch.Generator().manual_seed(0))
    # two arcs of the ring on opposite sides: their straight pairings cut through the hole
    x0, x1 = cells[cells[:, 0] > 2.0][:60], cells[cells[:, 0] < -2.0][:50]
    monkeypatch.setattr(_geodesic, "GEODESIC_CHUNK", 16)  # several chunks
    plan = GlobalPlan(x0, x1, metric=m)
    n_entries = len(plan.rows)
    assert plan.geodesics.shape == (n_entries, 3, 2)
    s = (torch.arange(32, dtype=torch.float64) + 0.5) / 32

    def energy(e, c):
        mu, d = path(x0[plan.rows[e]], x1[plan.cols[e]], c, s)
        return (m.inverse_scale(mu) * d.pow(2).sum(-1)).mean(-1)

    every = torch.arange(n_entries)
    assert energy(every, plan.geodesics).sum() < 0.5 * energy(every, torch.zeros_like(plan.geodesics)).sum()
    # a draw carries the coefficients of the entries it drew, and solves nothing again
    calls = []
    monkeypatch.setattr(_geodesic, "geodesic", lambda *a, **k: calls.append(1))
    a, b, geo = plan.sample(200, torch.Generator().manual_seed(2))
    entry = {(int(i), int(j)): k for k, (i, j) in enumerate(zip(plan.rows, plan.cols))}
    i, j = torch.cdist(a, x0).argmin(1), torch.cdist(b, x1).argmin(1)
    drawn = torch.tensor([entry[(int(p), int(q))] for p, q in zip(i, j)])
    assert torch.equal(geo, plan.geodesics[drawn])
    assert calls == []


def test_training_on_the_global_plan_solves_no_geodesic_after_the_plans(monkeypatch):
    calls = []
    solve = _geodesic.geodesic
    monkeypatch.setattr(_geodesic, "geodesic", lambda a, b, m, **k: calls.append(len(a)) or solve(a, b, m, **k))
    cfg = fm(**{"train.fm_coupling": "global", "train.fm_plan_cells": 60, "train.iterations": 1})
    trainer = Trainer(cfg, arcs(), "loo:2")
    trainer.step()
    # the plans of the gaps visited solved each of their entries once, chunk by chunk
    assert sum(calls) == sum(len(p.rows) for p in trainer._fm_plans.values()) > 0
    for _ in range(3):
        trainer.step()
    # later steps reuse them: what was solved is still one solve per entry of the plans built
    assert sum(calls) == sum(len(p.rows) for p in trainer._fm_plans.values())


@pytest.mark.parametrize(
    "over, match",
    [
        ({"train.fm_interpolant": "spline"}, "train.fm_interpolant must be one of linear, metric; got 'spline'"),
        ({"train.fm_metric_centers": 0}, "train.fm_metric_centers must be a positive int"),
        ({"train.fm_metric_kappa": -1.0}, "train.fm_metric_kappa must be a positive number"),
        ({"train.fm_metric_eps": 0.0}, "train.fm_metric_eps must be a positive number"),
        ({"train.method": "simulation"}, "train.fm_interpolant 'metric' shapes flow matching's bridges"),
        (
            {"train.fm_interpolant": "linear", "train.fm_metric_centers": 150, "train.fm_metric_kappa": 5.0},
            "train.fm_metric_kappa applies to train.fm_interpolant 'metric' only; got 'linear'",
        ),
    ],
)
def test_bad_metric_settings_are_one_line_errors(over, match):
    with pytest.raises(ValueError, match=match) as e:
        fm(**over)
    assert "\n" not in str(e.value)


def test_the_cli_refuses_an_unknown_interpolant_with_exit_2(tmp_path, capsys):
    from mfsde.cli import main

    snaps = arcs()
    rows = ["t,x1,x2"] + [f"{t},{x[0]},{x[1]}" for t, a in zip(snaps.times, snaps.data) for x in a]
    (tmp_path / "cells.csv").write_text("\n".join(rows) + "\n")
    args = ["fit", "--data", str(tmp_path / "cells.csv"), "--time-col", "t", "--preset", "scimf"]
    sets = ["--set", "train.method=flow_matching", "--set", "train.fm_interpolant=spline"]
    code = main(args + sets + ["--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "train.fm_interpolant must be one of linear, metric" in err[0], err


def test_more_centres_than_a_gap_has_cells_is_refused_before_training():
    snaps = arcs(n=10)  # 20 cells per gap
    with pytest.raises(ValueError, match="train.fm_metric_centers must be at most 20 .*; got 21") as e:
        Trainer(fm(**{"train.fm_metric_centers": 21, "train.fm_batch": 8}), snaps, "all")
    assert "\n" not in str(e.value)
    Trainer(fm(**{"train.fm_metric_centers": 20, "train.fm_batch": 8}), snaps, "all").fm_metric(0, 0)
