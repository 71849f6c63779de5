"""Recovery metrics (mfsde.evaluation) and the Cucker–Smale example."""

from __future__ import annotations

import math
import runpy
import sys

import numpy as np
import pytest
import torch
from conftest import REPO

import mfsde
from mfsde.drifts import IntraDrift, MeanFieldDrift, ZeroDrift
from mfsde.evaluation import SystemModel, drift_error, interaction_error, recovery_report, true_populations
from mfsde.interactions import Interaction, NoInteraction
from mfsde.model import MeanFieldSDE
from mfsde.pl import plot_recovery
from mfsde.systems import CuckerSmale, MeanFieldOU, MeanReversion, get_system, snapshots

REPO = REPO
TIMES = [0.0, 0.5, 1.0]
SMALL = dict(n_particles=40, seed=0, dt=0.02)


def zero_model(dim: int) -> MeanFieldSDE:
    return MeanFieldSDE(MeanFieldDrift(ZeroDrift(dim), NoInteraction(dim)))


class Shifted(IntraDrift):
    """``base(x) + sign · h(x)`` with a nonlinear h of the particle's own state (a gauge term)."""

    def __init__(self, base, sign: float):
        super().__init__(base.dim)
        self.base, self.sign = base, sign

    def forward(self, x, t=None):
        h = torch.sin(3 * x) + 0.5 * x.pow(2)
        return self.base(x, t) + self.sign * h


class ShiftedInteraction(Interaction):
    def __init__(self, base, sign: float):
        super().__init__(base.dim)
        self.base, self.sign = base, sign

    def forward(self, x, t=None):
        return self.base(x, t) + self.sign * (torch.sin(3 * x) + 0.5 * x.pow(2))


def gauge_shifted(system) -> MeanFieldSDE:
    """The true dynamics with h(x_i) moved from f_intra to f_inter."""
    d = system.drift
    return MeanFieldSDE(MeanFieldDrift(Shifted(d.intra, -1.0), ShiftedInteraction(d.inter, +1.0)))


# -- (b) and (c) on known models ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ou", "morse", "cucker_smale", "kuramoto", "opinion"])
def test_true_model_scores_zero_against_itself(name):
    system = get_system(name)
    model = MeanFieldSDE(system.drift, sigma=0.1)
    de = drift_error(model, system, TIMES, **SMALL)
    ie = interaction_error(model, system, TIMES, **SMALL)
    assert de["drift"] < 1e-10 and de["inter_raw"] < 1e-10
    assert ie["inter"] < 1e-10 and ie["inter_norm"] > 0
    assert len(de["per_time"]) == len(TIMES) and de["drift_norm"] > 0


@pytest.mark.parametrize("name", ["ou", "cucker_smale", "kuramoto"])
def test_zero_model_scores_exactly_one(name):
    system = get_system(name)
    de = drift_error(zero_model(system.dim), system, TIMES, **SMALL)
    ie = interaction_error(zero_model(system.dim), system, TIMES, **SMALL)
    assert de["drift"] == pytest.approx(1.0, abs=1e-12)
    assert all(r["drift"] == pytest.approx(1.0, abs=1e-12) for r in de["per_time"])
    assert ie["inter"] == pytest.approx(1.0, abs=1e-12)


def _mean_field_ou_numpy(x, t):
    """−(x − 1) − 0.5 (x − mean(x)): a mean-field OU drift written with numpy only."""
    x = np.asarray(x)
    return -(x - 1.0) - 0.5 * (x - x.mean(axis=0, keepdims=True))


def _mean_field_ou_torch(x, t):
    return -(x - 1.0) - 0.5 * (x - x.mean(dim=-2, keepdim=True))


@pytest.mark.parametrize("truth", [_mean_field_ou_numpy, _mean_field_ou_torch])
def test_any_true_drift_given_as_a_callable_is_scored_on_given_populations(truth):
    """A drift that is not a ParticleSystem (numpy or torch), with the populations to compare on:
    the same drift as a model scores 0, the zero model exactly 1, an Itô model without the mean
    field loses the whole population-dependent part."""
    rng = np.random.default_rng(0)
    pops = [rng.normal(loc=m, size=(60, 2)) for m in (0.0, 0.5, 1.5)]

    class Truth(IntraDrift):  # the same drift as a model (it sees the whole population x)
        def forward(self, x, t=None):
            return _mean_field_ou_torch(x, None)

    model = MeanFieldSDE(MeanFieldDrift(Truth(2), NoInteraction(2)))
    kw, dkw = dict(populations=pops, n_particles=48, n_probes=6), dict(populations=pops, n_particles=60)
    assert drift_error(model, truth, TIMES, **dkw)["drift"] < 1e-12
    assert interaction_error(model, truth, TIMES, **kw)["inter"] < 1e-12
    assert drift_error(zero_model(2), truth, TIMES, **dkw)["drift"] == pytest.approx(1.0, abs=1e-12)
    ie = interaction_error(zero_model(2), truth, TIMES, **kw)
    assert ie["inter"] == pytest.approx(1.0, abs=1e-12) and ie["inter_norm"] > 0

    class Ito(IntraDrift):  # the drift without its mean-field part
        def forward(self, x, t=None):
            return -(x - 1.0)

    ito = MeanFieldSDE(MeanFieldDrift(Ito(2), NoInteraction(2)))
    assert interaction_error(ito, truth, TIMES, **kw)["inter"] == pytest.approx(1.0, abs=1e-12)
    assert 0.0 < drift_error(ito, truth, TIMES, **dkw)["drift"] < 1.0


def test_a_system_and_its_drift_as_a_callable_score_the_same():
    system = get_system("ou")
    model = MeanFieldSDE(MeanFieldDrift(ZeroDrift(system.dim), NoInteraction(system.dim)), sigma=0.1)
    pops = true_populations(system, TIMES, 40, seed=0, dt=0.02)
    a = drift_error(model, system, TIMES, **SMALL)["drift"]
    b = drift_error(model, system.drift, TIMES, populations=pops, n_particles=40)["drift"]
    assert a == pytest.approx(b, rel=1e-12)


def test_bad_callable_truths_are_one_line_errors():
    pops = [np.zeros((10, 2)) + k for k in range(3)]
    with pytest.raises(ValueError, match="populations is required with a callable drift"):
        drift_error(zero_model(2), _mean_field_ou_torch, TIMES)
    with pytest.raises(ValueError, match="populations: 2 arrays for 3 times"):
        drift_error(zero_model(2), _mean_field_ou_torch, TIMES, populations=pops[:2], n_particles=5)
    with pytest.raises(ValueError, match="need 40 particles per time"):
        drift_error(zero_model(2), _mean_field_ou_torch, TIMES, populations=pops, n_particles=40)
    with pytest.raises(ValueError, match="returned shape"):
        drift_error(zero_model(2), lambda x, t: x[:, :1], TIMES, populations=pops, n_particles=5)
    with pytest.raises(ValueError, match="a ParticleSystem simulates its own"):
        drift_error(zero_model(2), get_system("ou"), TIMES, populations=pops)
    with pytest.raises(TypeError, match="ParticleSystem or a callable drift"):
        drift_error(zero_model(2), 3.0, TIMES, populations=pops)


@pytest.mark.parametrize("name", ["ou", "morse", "cucker_smale"])
def test_gauge_shift_leaves_drift_and_gauge_fixed_interaction_exact(name):
    system = get_system(name)
    model = gauge_shifted(system)
    de = drift_error(model, system, TIMES, **SMALL)
    ie = interaction_error(model, system, TIMES, **SMALL)
    assert de["drift"] < 1e-10  # same total drift
    assert de["inter_raw"] > 0.1  # the naive part-by-part comparison scores the gauge
    assert ie["inter"] < 1e-10  # the population-dependent part does not see it


def test_mean_field_gauge_of_ou_and_a_half_strength_interaction():
    system = MeanFieldOU()
    A, K = system.A.float(), system.K.float()

    class Restore(IntraDrift):
        def __init__(self, M):
            super().__init__(2)
            self.M = M

        def forward(self, x, t=None):
            return -x @ self.M.to(x.dtype).T

    class PullToMean(Interaction):  # +K x̄: the population-mean part of −K(x − x̄)
        def forward(self, x, t=None):
            return x.mean(-2, keepdim=True).expand_as(x) @ K.to(x.dtype).T

    moved = MeanFieldSDE(MeanFieldDrift(Restore(A + K), PullToMean(2)))
    de = drift_error(moved, system, TIMES, **SMALL)
    assert de["drift"] < 1e-10 and de["inter_raw"] > 0.1
    assert interaction_error(moved, system, TIMES, **SMALL)["inter"] < 1e-10
    half = MeanFieldSDE(MeanFieldDrift(system.drift.intra, MeanReversion(0.5 * K)))
    # Δf̂ = Δf / 2 exactly (the interaction is linear in K): error (1/2)² = 1/4
    assert interaction_error(half, system, TIMES, **SMALL)["inter"] == pytest.approx(0.25, rel=1e-6)
    assert 0 < drift_error(half, system, TIMES, **SMALL)["drift"] < 1


def test_control_system_has_no_relative_inter_error_but_scores_spurious_interaction():
    system = get_system("morse_control")
    truth = interaction_error(MeanFieldSDE(system.drift), system, TIMES, **SMALL)
    assert math.isnan(truth["inter"]) and truth["inter_scaled"] == 0.0
    spurious = MeanFieldSDE(MeanFieldDrift(system.drift.intra, get_system("morse").drift.inter))
    assert interaction_error(spurious, system, TIMES, **SMALL)["inter_scaled"] > 1e-3
    assert math.isnan(drift_error(spurious, system, TIMES, **SMALL)["inter_raw"])


def test_standardised_coordinates_are_mapped_back():
    system = MeanFieldOU()
    shift, scale = torch.tensor([1.0, -0.5]), torch.tensor([2.0, 0.25])

    class InZ(torch.nn.Module):  # g(z) = f(shift + scale z) / scale
        def __init__(self):
            super().__init__()
            self.dim = 2

        def forward(self, z, t=None):
            x = shift.to(z.dtype) + scale.to(z.dtype) * z
            return system.drift(x, t) / scale.to(z.dtype)

    model = MeanFieldSDE(MeanFieldDrift(ZeroDrift(2), NoInteraction(2)))
    model.drift = InZ()
    assert drift_error(model, system, TIMES, coords=(shift, scale), **SMALL)["drift"] < 1e-10
    assert interaction_error(model, system, TIMES, coords=(shift, scale), **SMALL)["inter"] < 1e-10
    assert drift_error(model, system, TIMES, **SMALL)["drift"] > 0.1


def test_learned_model_is_scored_in_eval_mode_and_keeps_its_mode():
    system = get_system("ou")
    model = mfsde.model.build_model(mfsde.preset("scimf", dim=2).override(**{"model.inter.dropout": 0.1}))
    model.train()
    a = drift_error(model, system, TIMES, **SMALL)["drift"]
    b = drift_error(model, system, TIMES, **SMALL)["drift"]
    assert a == b and model.training and model.drift.inter.training
    assert a > 0


def test_true_populations_are_cached_and_deterministic():
    system = get_system("ou")
    cache = {}
    p1 = true_populations(system, TIMES, 30, seed=3, cache=cache)
    p2 = true_populations(system, TIMES, 30, seed=3, cache=cache)
    assert p1 is p2 and len(cache) == 1
    p3 = true_populations(system, TIMES, 30, seed=3)
    assert all(torch.equal(a, b) and a.dtype == torch.float64 and a.shape == (30, 2) for a, b in zip(p1, p3))


# -- (a) and the combined report --------------------------------------------------------------------
def test_recovery_report_of_the_true_system_model():
    system = get_system("ou")
    snaps = snapshots(system, [0.0, 0.5, 1.0, 1.5], n_per_time=200, seed=0, dt=0.02)
    rep = recovery_report(
        SystemModel(system, dt=0.02), system, snaps, "heldout:2,3", n_particles=40, eval_particles=300, dt=0.02
    )
    assert rep["drift"] < 1e-10 and rep["inter"] < 1e-10
    assert [r["index"] for r in rep["per_time"]] == [2, 3]
    zero = recovery_report(zero_model(2), system, snaps, "heldout:2,3", n_particles=40, eval_particles=300, dt=0.02)
    assert zero["drift"] == pytest.approx(1.0) and zero["w1"] > 2 * rep["w1"]


def test_plot_recovery_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    system = CuckerSmale()
    path = plot_recovery(gauge_shifted(system), system, TIMES, tmp_path / "rec.png", n_particles=40, components=[2, 3])
    assert path.is_file() and path.stat().st_size > 1000
    with pytest.raises(ValueError, match="components"):
        plot_recovery(zero_model(4), system, TIMES, tmp_path / "bad.png", n_particles=40, components=[4])


# -- bad inputs ---------------------------------------------------------------------------------------
def test_bad_inputs_raise_clear_errors():
    system = get_system("ou")
    model = zero_model(2)
    with pytest.raises(ValueError, match="model has dim 3 but system 'ou' has dim 2"):
        drift_error(zero_model(3), system, TIMES)
    with pytest.raises(TypeError, match="model must be"):
        drift_error(object(), system, TIMES)
    with pytest.raises(TypeError, match="system must be"):
        drift_error(model, "ou", TIMES)
    with pytest.raises(ValueError, match="strictly increasing"):
        drift_error(model, system, [0.0, 1.0, 0.5])
    with pytest.raises(ValueError, match="t0"):
        drift_error(model, system, [-1.0, 1.0])
    with pytest.raises(ValueError, match="at least 2"):
        interaction_error(model, system, [1.0])
    with pytest.raises(ValueError, match="n_particles"):
        drift_error(model, system, TIMES, n_particles=0)
    with pytest.raises(ValueError, match="n_probes"):
        interaction_error(model, system, TIMES, n_probes=0)
    with pytest.raises(ValueError, match="pairs"):
        interaction_error(model, system, TIMES, n_particles=20, pairs="some")
    with pytest.raises(ValueError, match="coords scale"):
        drift_error(model, system, TIMES, coords=(0.0, [1.0, -1.0]))
    with pytest.raises(ValueError, match=r"coords shift must be .* \(2,\)"):
        drift_error(model, system, TIMES, coords=([0.0, 0.0, 0.0], 1.0))
    snaps = snapshots(get_system("morse"), [0.0, 0.5, 1.0], n_per_time=20, seed=0, dt=0.05)
    with pytest.raises(ValueError, match="snapshots have dim 2 but system 'cucker_smale' has dim 4"):
        recovery_report(zero_model(4), CuckerSmale(), snaps, "heldout:2")


# -- the example ---------------------------------------------------------------------------------------
@pytest.mark.slow  # ~25 s: the true populations behind the metrics and the figure dominate, not the 2 iterations
def test_cucker_smale_example_runs_with_tiny_settings(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    script = REPO / "examples" / "cucker_smale.py"
    out = tmp_path / "cs.png"
    monkeypatch.setattr(sys, "argv", [str(script), "2", str(out)])
    runpy.run_path(str(script), run_name="__main__")
    assert out.is_file() and out.stat().st_size > 1000
    text = capsys.readouterr().out
    assert "drift error" in text and "interaction error" in text
