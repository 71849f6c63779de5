"""Losses and metrics: Sinkhorn (geomloss), exact W1/W2 (POT), MMD / energy distance,
path energy, registry. Closed-form cases: Diracs, translations, permutations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mfsde
from mfsde.losses import (
    LOSSES,
    MMDLoss,
    SinkhornLoss,
    build_loss,
    energy_distance,
    path_energy,
    sinkhorn,
    subsample,
    w1,
    w2,
)
from mfsde.solvers import sdeint
from mfsde.testing.strategies import point_clouds

F64 = torch.float64


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


clouds = point_clouds


shifts = st.lists(st.floats(-3, 3, allow_nan=False), min_size=3, max_size=3)


# -- Sinkhorn --------------------------------------------------------------------------------------
def test_sinkhorn_zero_for_identical_positive_otherwise():
    x = _randn(30, 3)
    loss = SinkhornLoss()
    assert abs(loss(x, x).item()) < 1e-10
    assert abs(loss(x, x[torch.randperm(30, generator=torch.Generator().manual_seed(1))]).item()) < 1e-8
    assert loss(x, _randn(40, 3, seed=2) + 0.5).item() > 0.05


def test_sinkhorn_dirac_and_translation_closed_forms():
    """geomloss's p = 2 cost is ‖x − y‖²/2: for two Diracs, and for a cloud and its translate
    (for any blur: the linear terms of the cost integrate to zero), S = ‖shift‖²/2 = W2²/2."""
    a, b = torch.tensor([[1.0, 2.0]], dtype=F64), torch.tensor([[0.0, -1.0]], dtype=F64)
    assert SinkhornLoss()(a, b).item() == pytest.approx(5.0, rel=1e-9)
    assert SinkhornLoss()(a, b).item() == pytest.approx(w2(a, b) ** 2 / 2, rel=1e-9)
    assert SinkhornLoss()(a.expand(5, 2), b.expand(7, 2)).item() == pytest.approx(5.0, rel=1e-9)  # repeated points
    x, s = _randn(20, 3), torch.tensor([0.7, -0.2, 0.4], dtype=F64)
    for blur in (0.05, 0.5):
        value = SinkhornLoss(blur=blur)(x, x + s).item()
        assert value == pytest.approx(0.5 * (s @ s).item(), rel=1e-5)
        assert value == pytest.approx(w2(x, x + s) ** 2 / 2, rel=1e-5)
    # p = 1: cost ‖x − y‖
    assert SinkhornLoss(p=1)(a, b).item() == pytest.approx(math.sqrt(10), rel=1e-3)


def test_sinkhorn_batched_leading_dims():
    x, y = _randn(2, 3, 10, 2), _randn(2, 3, 12, 2, seed=1)
    loss = SinkhornLoss()
    out = loss(x, y)
    assert out.shape == (2, 3)
    # geomloss sizes its ε-schedule from the diameter of the whole batch, so a batched value
    # matches the single-population one to ~1e-3, not to round-off
    for i in range(2):
        for j in range(3):
            assert out[i, j].item() == pytest.approx(loss(x[i, j], y[i, j]).item(), rel=2e-3)
    shared = loss(x, y[0, 0])  # targets without the leading dims are shared
    assert shared.shape == (2, 3)
    assert shared[1, 2].item() == pytest.approx(loss(x[1, 2], y[0, 0]).item(), rel=2e-3)
    assert not torch.allclose(out[0], out[1])
    with pytest.raises(ValueError, match=r"x has leading dims \(2, 3\) but y has \(3,\)"):
        loss(x, y[0])


def test_sinkhorn_is_differentiable():
    x = _randn(8, 2).requires_grad_(True)
    SinkhornLoss()(x, _randn(9, 2, seed=1)).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_sinkhorn_subsamples_targets_reproducibly():
    x, y = _randn(10, 2), _randn(50, 2, seed=1)
    loss = SinkhornLoss(n_targets=12)
    a = loss(x, y, generator=torch.Generator().manual_seed(0))
    b = loss(x, y, generator=torch.Generator().manual_seed(0))
    assert a.item() == b.item()
    assert subsample(y, 12, torch.Generator().manual_seed(0)).shape == (12, 2)
    assert subsample(y, None) is y and subsample(y, 80) is y
    with pytest.raises(ValueError, match="n_targets must be a positive int"):
        subsample(y, 0)


def test_sinkhorn_n_sources_compares_a_subset_of_x():
    x, y = _randn(40, 2), _randn(30, 2, seed=1) + 1.0

    def gen():
        return torch.Generator().manual_seed(3)

    loss = SinkhornLoss(n_sources=10)
    # the value is the divergence of the drawn subset: same draw, same subset, same number
    idx = torch.randperm(40, generator=gen())[:10]
    expected = SinkhornLoss()(x[idx], y)
    assert torch.allclose(loss(x, y, generator=gen()), expected, rtol=1e-6)
    assert not torch.allclose(loss(x, y, generator=gen()), SinkhornLoss()(x, y), rtol=1e-3)
    xg = x.clone().requires_grad_(True)
    loss(xg, y, generator=gen()).backward()
    assert int((xg.grad.abs().sum(-1) > 0).sum()) == 10  # only the subset gets a fit gradient
    assert SinkhornLoss(n_sources=100)(x, y).item() == SinkhornLoss()(x, y).item()
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n_sources must be a positive int or None"):
            SinkhornLoss(n_sources=bad)


@pytest.mark.parametrize(
    "options, match",
    [
        ({"p": 3}, "p must be 1 or 2"),
        ({"blur": 0.0}, "blur must be > 0"),
        ({"scaling": 1.0}, r"scaling must be in \(0, 1\)"),
    ],
)
def test_sinkhorn_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        SinkhornLoss(**options)


def test_sinkhorn_keops_backend_needs_pykeops():
    try:
        import pykeops  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="needs pykeops; use backend='tensorized'"):
            SinkhornLoss(backend="auto")
    else:  # pragma: no cover - depends on the environment
        SinkhornLoss(backend="auto")


def test_sinkhorn_bad_inputs():
    loss = SinkhornLoss()
    with pytest.raises(ValueError, match=r"x must have shape"):
        loss(torch.zeros(4, dtype=F64), torch.zeros(4, 2, dtype=F64))
    with pytest.raises(ValueError, match=r"y has d = 3 .* built for d = 2"):
        loss(torch.zeros(4, 2, dtype=F64), torch.zeros(4, 3, dtype=F64))
    with pytest.raises(ValueError, match=r"y contains 1 NaN/Inf"):
        loss(torch.zeros(4, 2, dtype=F64), torch.tensor([[0.0, float("nan")]], dtype=F64))


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_fast_logsumexp_matches_torch_out_of_exp_range(dtype):
    from mfsde.losses._sinkhorn import _LogSumExp

    g = torch.Generator().manual_seed(0)
    z = torch.randn(3, 5, 200, generator=g, dtype=dtype) * torch.tensor([1.0, 50.0, 1e4], dtype=dtype).view(3, 1, 1)
    z[0, 0] = -math.inf  # a row of −inf: −inf, as torch gives
    z[1, 1, :5] = math.inf
    z = z.requires_grad_()
    ref = torch.logsumexp(z, -1)
    out = _LogSumExp.apply(z)
    assert torch.equal(out, ref) or torch.allclose(out, ref, rtol=0, atol=0, equal_nan=True)
    finite = torch.isfinite(ref)
    w = torch.randn(ref.shape, generator=g, dtype=dtype)
    (gr,) = torch.autograd.grad((ref[finite] * w[finite]).sum(), z)
    (go,) = torch.autograd.grad((out[finite] * w[finite]).sum(), z)
    tiny = torch.finfo(dtype).tiny
    assert (go - gr)[finite].abs().max() <= 2 * math.e * tiny * w.abs().max()  # only terms below exp's range differ


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 40),
    m=st.integers(1, 40),
    d=st.integers(1, 6),
    scale=st.sampled_from([0.01, 1.0, 30.0]),
    blur=st.sampled_from([0.01, 0.1, 1.0]),
    p=st.sampled_from([1, 2]),
    debias=st.booleans(),
    weighted=st.sampled_from([None, "balanced", "unbalanced"]),
    seed=st.integers(0, 2**16),
)
def test_fast_sinkhorn_equals_geomloss(n, m, d, scale, blur, p, debias, weighted, seed):
    """fast=True runs geomloss's loop with the clamped soft-min: the same value and gradients."""
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(2, n, d, generator=g) * scale
    y = torch.randn(2, m, d, generator=g) * scale + 0.5
    lw0 = torch.randn(2, n, generator=g)
    out = {}
    for fast in (True, False):
        options = {"reach": 1.0} if weighted == "unbalanced" else {}
        loss = SinkhornLoss(p=p, blur=blur, debias=debias, fast=fast, **options)
        assert loss.fast is fast
        x, lw = x0.clone().requires_grad_(), lw0.clone().requires_grad_()
        v = loss(x, y) if weighted is None else loss(x, y, log_w=lw, mass=1.3)
        v.sum().backward()
        out[fast] = (v.detach(), x.grad, lw.grad)
    (v1, gx1, gw1), (v0, gx0, gw0) = out[True], out[False]
    assert torch.allclose(v1, v0, rtol=1e-6, atol=1e-6 * scale**p)
    assert torch.allclose(gx1, gx0, rtol=1e-5, atol=1e-6 * max(scale, 1.0) ** p)
    if weighted is not None:
        assert torch.allclose(gw1, gw0, rtol=1e-5, atol=1e-6 * max(scale, 1.0) ** p)


def test_fast_sinkhorn_is_bitwise_geomloss_on_a_training_sized_problem():
    g = torch.Generator().manual_seed(1)
    x0, y = torch.randn(256, 10, generator=g), torch.randn(500, 10, generator=g) + 0.3
    res = []
    for fast in (True, False):
        x = x0.clone().requires_grad_()
        v = SinkhornLoss(fast=fast)(x, y)
        v.backward()
        res.append((v.detach(), x.grad))
    assert torch.equal(res[0][0], res[1][0]) and torch.equal(res[0][1], res[1][1])


def test_fast_sinkhorn_option():
    assert SinkhornLoss().fast and not SinkhornLoss(fast=False).fast
    assert "fast=False" in repr(SinkhornLoss(fast=False))
    with pytest.raises(ValueError, match="fast must be true or false"):
        SinkhornLoss(fast="yes")


# -- exact OT (POT) ------------------------------------------------------------------------------------
@settings(max_examples=20)
@given(a=st.lists(st.floats(-5, 5), min_size=2, max_size=2), b=st.lists(st.floats(-5, 5), min_size=2, max_size=2))
def test_w1_w2_of_two_diracs_is_their_distance(a, b):
    dist = math.dist(a, b)
    assert w2([a], [b]) == pytest.approx(dist, rel=1e-9, abs=1e-9)
    assert w1([a], [b]) == pytest.approx(dist, rel=1e-9, abs=1e-9)


@settings(max_examples=20)
@given(x=clouds(), data=st.data())
def test_w1_w2_zero_on_permuted_identical_sets(x, data):
    perm = data.draw(st.permutations(range(len(x))))
    assert w2(x, x[perm]) == pytest.approx(0.0, abs=1e-7)
    assert w1(x, x[perm]) == pytest.approx(0.0, abs=1e-9)
    assert w2(torch.from_numpy(x), torch.from_numpy(x[perm])) == pytest.approx(0.0, abs=1e-7)  # tensors too


@settings(max_examples=20)
@given(x=clouds(max_d=3), s=shifts)
def test_w_shift_equals_shift_norm(x, s):
    s = np.asarray(s[: x.shape[1]])
    norm = float(np.linalg.norm(s))
    assert w2(x, x + s) == pytest.approx(norm, rel=1e-6, abs=1e-6)
    assert w1(x, x + s) == pytest.approx(norm, rel=1e-6, abs=1e-6)


def test_w2_is_sqrt_of_squared_cost_and_symmetric():
    x, y = np.random.default_rng(0).normal(size=(7, 2)), np.random.default_rng(1).normal(size=(9, 2)) + 1.0
    assert w2(x, y) == pytest.approx(w2(y, x), rel=1e-9)
    assert w1(x, y) <= w2(x, y) + 1e-12  # Jensen


def test_pot_non_convergence_raises():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 2)), rng.normal(size=(30, 2)) + 1.0
    with pytest.raises(RuntimeError, match="did not converge"):
        w2(x, y, num_iter_max=1)
    with pytest.raises(RuntimeError, match="did not converge"):
        w1(x, y, num_iter_max=1)
    assert w2(x, y) > 0


@pytest.mark.parametrize(
    "x, y, match",
    [
        (np.zeros(3), np.zeros((3, 2)), r"x must be a 2-D array"),
        (np.zeros((3, 2)), np.zeros((0, 2)), r"y must be a 2-D array \(n, d\) with n ≥ 1"),
        (np.zeros((3, 2)), np.zeros((3, 3)), r"x has d = 2 but y has d = 3"),
        (np.array([[0.0, np.nan]]), np.zeros((3, 2)), r"x contains NaN/Inf"),
    ],
)
def test_wasserstein_bad_input(x, y, match):
    with pytest.raises(ValueError, match=match):
        w2(x, y)
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        mfsde.losses.wasserstein(np.zeros((2, 2)), np.zeros((2, 2)), p=3)


# -- MMD / energy distance --------------------------------------------------------------------------------
@settings(max_examples=20)
@given(x=clouds(max_d=2), y=clouds(max_d=2), data=st.data())
def test_energy_distance_nonnegative_and_zero_on_identical(x, y, data):
    if x.shape[1] != y.shape[1]:
        y = np.resize(y, (y.shape[0], x.shape[1]))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    assert energy_distance(xt, yt).item() >= -1e-6
    assert energy_distance(xt, xt).item() == pytest.approx(0.0, abs=1e-9)
    perm = data.draw(st.permutations(range(len(x))))
    assert energy_distance(xt, xt[perm]).item() == pytest.approx(0.0, abs=1e-6)
    assert MMDLoss("gaussian")(xt, yt).item() >= -1e-9


def test_mmd_positive_for_different_clouds_and_batched():
    x, y = _randn(2, 20, 2), _randn(2, 25, 2, seed=1) + 1.0
    for kernel in ("energy", "gaussian"):
        out = MMDLoss(kernel)(x, y)
        assert out.shape == (2,) and (out > 0.05).all()
        assert out[1].item() == pytest.approx(MMDLoss(kernel)(x[1], y[1]).item(), rel=1e-12)
    # energy distance of two Diracs: 2‖a − b‖
    assert energy_distance(x[0, :1], y[0, :1]).item() == pytest.approx(2 * (x[0, 0] - y[0, 0]).norm().item(), rel=1e-6)
    with pytest.raises(ValueError, match="kernel must be 'energy' or 'gaussian'"):
        MMDLoss("laplace")


# -- path energy ------------------------------------------------------------------------------------------
def test_path_energy():
    c = torch.tensor([1.0, 2.0], dtype=F64)  # ‖c‖² = 5
    sol = sdeint(lambda x, t: c.expand_as(x), _randn(3, 4, 2), [0.0, 0.5, 2.0], dt=0.1, seed=0, energy=True)
    torch.testing.assert_close(path_energy(sol), torch.full((3,), 5.0, dtype=F64))  # normalised by 2.0
    torch.testing.assert_close(path_energy(sol, normalise=False), torch.full((3,), 10.0, dtype=F64))
    torch.testing.assert_close(path_energy(sol, t_end=0.5, normalise=False), torch.full((3,), 2.5, dtype=F64))
    torch.testing.assert_close(path_energy(sol, t_end=0.5), torch.full((3,), 5.0, dtype=F64))
    with pytest.raises(ValueError, match="carries no energy"):
        path_energy(sdeint(lambda x, t: x, _randn(3, 2), [0.0, 0.1], seed=0))


def test_path_energy_gradient():
    w = torch.tensor(0.5, dtype=F64, requires_grad=True)
    sol = sdeint(lambda x, t: w * torch.ones_like(x), _randn(4, 2), [0.0, 1.0], dt=0.25, seed=0, energy=True)
    path_energy(sol).backward()  # = d w² ⇒ gradient 2 d w
    assert w.grad.item() == pytest.approx(2 * 2 * 0.5, rel=1e-12)


# -- registry ---------------------------------------------------------------------------------------------
def test_loss_registry():
    assert LOSSES.names() == ["mmd", "sinkhorn"]
    loss = build_loss("sinkhorn", blur=0.05)
    assert isinstance(loss, SinkhornLoss) and loss.blur == 0.05
    x, y = _randn(6, 2), _randn(7, 2, seed=1)
    assert sinkhorn(x, y, blur=0.05).item() == pytest.approx(loss(x, y).item(), rel=1e-12)
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['blurr'\]; accepted: \['p', 'blur'"):
        build_loss("sinkhorn", blurr=0.05)
    with pytest.raises(KeyError, match=r"unknown loss 'w3'; available: mmd, sinkhorn"):
        build_loss("w3")
