"""The mass channel: particle log-weights in the solver, growth models, weighted losses and metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mfsde
from mfsde.drifts import GROWTH_MODELS, MeanFieldDrift, build_growth, build_intra
from mfsde.interactions import build_interaction
from mfsde.losses import SinkhornLoss, w1
from mfsde.model import MeanFieldSDE
from mfsde.solvers import sdeint


def _model(inter="rbf", growth="mlp", dim=2, sigma=0.1, **growth_options):
    torch.manual_seed(0)
    drift = MeanFieldDrift(build_intra("mlp", dim=dim, width=16), build_interaction(inter, dim=dim))
    g = build_growth(growth, dim=dim, **growth_options)
    return MeanFieldSDE(drift, sigma=sigma, dt=0.1, growth=g)


# -- the solver -------------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["euler_maruyama", "heun"])
def test_constant_growth_gives_the_exponential_mass(solver):
    x0 = torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sol = sdeint(
        lambda x, t, log_w=None: -x,
        x0,
        [0.0, 0.5, 1.5],
        sigma=0.1,
        dt=0.05,
        solver=solver,
        seed=0,
        growth=lambda x, t, lw: torch.full(x.shape[:-1], 0.7, dtype=x.dtype),
    )
    assert sol.log_w.shape == (3, 50)
    torch.testing.assert_close(sol.mass(), torch.exp(0.7 * sol.ts), rtol=1e-12, atol=0)


def test_heun_integrates_a_position_dependent_growth_to_second_order():
    # dx = -x dt (σ = 0), g(x) = x: log w(T) = x0 (1 − e^{−T}) exactly
    x0 = torch.linspace(-1, 1, 7, dtype=torch.float64).reshape(7, 1)
    exact = x0[:, 0] * (1 - math.exp(-1.0))
    errors = {}
    for solver in ("euler_maruyama", "heun"):
        errs = []
        for dt in (0.1, 0.05):
            sol = sdeint(
                lambda x, t, log_w=None: -x,
                x0,
                [0.0, 1.0],
                sigma=0.0,
                dt=dt,
                solver=solver,
                seed=0,
                growth=lambda x, t, lw: x[..., 0],
            )
            errs.append(float((sol.log_w[-1] - exact).abs().max()))
        errors[solver] = errs
    assert 1.7 < errors["euler_maruyama"][0] / errors["euler_maruyama"][1] < 2.3  # first order
    assert errors["heun"][0] / errors["heun"][1] > 3.5  # second order
    assert errors["heun"][1] < errors["euler_maruyama"][1] / 10


def test_a_particle_of_weight_k_moves_the_others_as_k_copies_do():
    """The defining property of a weight, through the kernel and the solver (σ = 0, one step: later
    the heavy particle and its copies move apart, as a copy also feels the other copies)."""
    torch.manual_seed(1)
    drift = MeanFieldDrift(build_intra("zero", dim=2), build_interaction("rbf", dim=2)).double()
    x = torch.randn(6, 2, dtype=torch.float64)
    lw = torch.zeros(6, dtype=torch.float64)
    lw[0] = math.log(3.0)
    no_growth = lambda x, t, lw: torch.zeros(x.shape[:-1], dtype=x.dtype)  # noqa: E731
    weighted = sdeint(drift, x, [0.0, 0.3], sigma=0.0, dt=0.3, seed=0, growth=no_growth, log_w0=lw)
    copies = torch.cat([x[:1], x[:1], x])  # particle 0 three times
    plain = sdeint(drift, copies, [0.0, 0.3], sigma=0.0, dt=0.3, seed=0)
    assert not torch.allclose(weighted.xs[-1, 1:], sdeint(drift, x, [0.0, 0.3], sigma=0.0, dt=0.3).xs[-1, 1:])
    torch.testing.assert_close(weighted.xs[-1, 1:], plain.xs[-1, 3:], rtol=1e-10, atol=1e-12)


def test_growth_none_is_todays_model_and_zero_growth_moves_ito_particles_identically():
    cfg = mfsde.preset("ito", dim=2)
    assert mfsde.model.build_model(cfg).growth is None  # "none": no mass channel, no weights anywhere
    a = _model(inter="none", growth="mlp")
    b = _model(inter="none", growth="mlp")
    b.growth = None
    x0 = torch.randn(40, 2, generator=torch.Generator().manual_seed(3))
    sa, sb = a(x0, [0.0, 0.5, 1.0], seed=4), b(x0, [0.0, 0.5, 1.0], seed=4)
    assert torch.equal(sa.xs, sb.xs)  # a zero-initialised growth model changes no path, bit for bit
    assert torch.equal(sa.log_w, torch.zeros_like(sa.log_w))
    assert sb.log_w is None


@settings(max_examples=15, deadline=None)
@given(n=st.integers(2, 12), shift=st.floats(-5, 5), seed=st.integers(0, 2**16))
def test_weights_are_relative_and_permutation_equivariant(n, shift, seed):
    model = _model(inter="rbf", growth="population", kernel={"name": "rbf"}).double()
    with torch.no_grad():
        for p in model.growth.net[-1].parameters():
            p.normal_(0, 0.5, generator=torch.Generator().manual_seed(seed))
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    lw = torch.randn(n, generator=gen, dtype=torch.float64)
    perm = torch.randperm(n, generator=gen)
    g = model.growth(x, None, lw)
    torch.testing.assert_close(model.growth(x, None, lw + shift), g)  # only relative weights matter
    torch.testing.assert_close(model.growth(x[perm], None, lw[perm]), g[perm])
    f = model.drift(x, None, log_w=lw)
    torch.testing.assert_close(model.drift(x[perm], None, log_w=lw[perm]), f[perm])


def test_log_weights_that_overflow_are_clipped_with_a_warning_naming_the_count():
    x0 = torch.zeros(10, 1)
    with pytest.warns(RuntimeWarning, match="10 of 10 particle log-weights"):
        sol = sdeint(
            lambda x, t, log_w=None: torch.zeros_like(x),
            x0,
            [0.0, 1.0],
            sigma=0.0,
            dt=0.5,
            growth=lambda x, t, lw: torch.full(x.shape[:-1], 100.0),
        )
    assert torch.isfinite(sol.mass()).all() and float(sol.log_w.max()) == 30.0


def test_solver_bad_input_is_one_line():
    x0 = torch.zeros(4, 2)
    drift = lambda x, t, log_w=None: -x  # noqa: E731
    g = lambda x, t, lw: torch.zeros(x.shape[:-1])  # noqa: E731
    with pytest.raises(ValueError, match="log_w0 is given without growth"):
        sdeint(drift, x0, [0.0, 1.0], log_w0=torch.zeros(4))
    with pytest.raises(ValueError, match=r"log_w0 must be a tensor of shape \(4,\)"):
        sdeint(drift, x0, [0.0, 1.0], growth=g, log_w0=torch.zeros(5))
    with pytest.raises(ValueError, match="random_batch does not carry particle weights"):
        sdeint(drift, x0, [0.0, 1.0], growth=g, random_batch=2)
    with pytest.raises(TypeError, match="growth must be a callable"):
        sdeint(drift, x0, [0.0, 1.0], growth=3)


# -- growth models ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(GROWTH_MODELS.names()))
def test_every_growth_model_starts_at_zero_and_has_gradients(name):
    x = torch.randn(2, 9, 3)
    g = build_growth(name, dim=3)
    out = g(x, None, torch.zeros(2, 9))
    assert out.shape == (2, 9) and torch.equal(out, torch.zeros_like(out))
    out.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())


def test_a_model_with_growth_needs_a_weighted_kernel():
    class Plain(mfsde.interactions.Interaction):
        def forward_rows(self, x, rows, t=None):
            return torch.zeros_like(x[..., rows, :])

    drift = MeanFieldDrift(build_intra("mlp", dim=2), Plain(2))
    with pytest.raises(ValueError, match="accepts particle weights"):
        MeanFieldSDE(drift, growth=build_growth("mlp", dim=2))


# -- losses and metrics -------------------------------------------------------------------------------
def test_weighted_sinkhorn_uniform_weights_equal_the_unweighted_loss_and_weights_count():
    gen = torch.Generator().manual_seed(0)
    x, y = (
        torch.randn(30, 2, generator=gen, dtype=torch.float64),
        torch.randn(40, 2, generator=gen, dtype=torch.float64),
    )
    loss = SinkhornLoss(blur=0.05)
    torch.testing.assert_close(loss(x, y, log_w=torch.zeros(30, dtype=torch.float64)), loss(x, y))
    lw = torch.zeros(30, dtype=torch.float64)
    lw[0] = math.log(4.0)
    torch.testing.assert_close(loss(x, y, log_w=lw), loss(torch.cat([x[:1]] * 3 + [x]), y), rtol=1e-5, atol=1e-7)


def test_unbalanced_sinkhorn_sees_the_mass():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(50, 2, generator=gen, dtype=torch.float64)
    loss = SinkhornLoss(blur=0.05, reach=1.0)
    lw = torch.zeros(50, dtype=torch.float64, requires_grad=True)
    same, more = loss(x, x, log_w=lw, mass=1.0), loss(x, x, log_w=lw, mass=2.0)
    assert float(more.detach()) > float(same.detach()) + 0.1
    more.backward()
    assert float(lw.grad.sum()) < 0  # more observed mass: the loss asks the weights to grow
    with pytest.raises(ValueError, match="needs the particles' log_w and the target's mass"):
        loss(x, x)
    with pytest.raises(ValueError, match="reach must be > 0"):
        SinkhornLoss(reach=0)


def test_weighted_w1():
    x = np.array([[0.0], [1.0]])
    y = np.array([[1.0]])
    assert w1(x, y) == pytest.approx(0.5)
    assert w1(x, y, a=[1.0, 3.0]) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="a must be 2 finite weights"):
        w1(x, y, a=[1.0, -1.0])
