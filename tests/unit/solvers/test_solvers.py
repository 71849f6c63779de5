"""Particle solvers: grid, counting, reproducibility, energy, random batches, checkpointing,
permutation equivariance, reduction to Itô, agreement with torchsde, weak convergence on the
mean-field Ornstein–Uhlenbeck process, the torchsde adapter, bad input."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from conftest import small_drift
from hypothesis import given, settings
from hypothesis import strategies as st

import mfsde
from mfsde.solvers import (
    SOLVERS,
    Diffusion,
    brownian_interval,
    sdeint,
    step_counts,
    torchsde_sdeint,
)
from mfsde.solvers._grid import check_times

F64 = torch.float64
METHODS = ["euler_maruyama", "heun"]


class Counting:
    """A drift that counts its evaluations and records (t, population shape)."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __call__(self, x, t):
        self.calls.append((t, tuple(x.shape)))
        return self.fn(x, t)


class TableBM:
    """``bm(t_a, t_b)``: the k-th row of a noise table for the step starting at t_a = k·h."""

    def __init__(self, table: torch.Tensor, h: float, t0: float = 0.0):
        self.table, self.h, self.t0 = table, h, t0

    def __call__(self, ta, tb):
        k = round((float(ta) - self.t0) / self.h)
        assert abs(float(tb) - float(ta) - self.h) < 1e-12
        return self.table[k]


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


# -- grid: exact output times, step counts, evaluation counts ------------------------------------
TS_OFF_GRID = [0.0, 0.25, 0.6, 1.0]  # 0.25 and 0.35 are not multiples of dt = 0.1


def test_step_counts_land_on_output_times():
    grid = step_counts(torch.tensor(TS_OFF_GRID, dtype=F64), 0.1)
    assert [n for n, _ in grid] == [3, 4, 4]
    for (n, h), a, b in zip(grid, TS_OFF_GRID[:-1], TS_OFF_GRID[1:]):
        assert h <= 0.1 + 1e-15
        assert n * h == pytest.approx(b - a, abs=1e-15)


@settings(max_examples=30)
@given(
    gaps=st.lists(st.floats(1e-3, 3.0), min_size=1, max_size=5),
    dt=st.floats(1e-2, 1.0),
    start=st.floats(-5, 5),
)
def test_step_counts_property(gaps, dt, start):
    ts = torch.tensor([start] + [start + s for s in torch.tensor(gaps, dtype=F64).cumsum(0).tolist()], dtype=F64)
    for (n, h), a, b in zip(step_counts(ts, dt), ts[:-1].tolist(), ts[1:].tolist()):
        assert n >= 1 and h <= dt * (1 + 1e-9)
        r = (b - a) / dt
        # ⌈Δ/dt⌉ steps, except that a Δ within round-off of a multiple of dt takes exactly Δ/dt
        assert n == (max(1, round(r)) if abs(r - round(r)) < 1e-6 else math.ceil(r))
        assert n * h == pytest.approx(b - a, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("as_tensor", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("ts, want", [([0.0, 0.3], 3), ([0.0, 1.1], 11), ([0.0, 0.7, 2.3], 23), ([1.0, 2.0, 3.0], 20)])
def test_float32_times_take_the_right_number_of_steps(ts, want, dtype, as_tensor):
    """0.3 in float32 is 0.30000001: 0.3f32 / 0.1 must not give 4 steps."""
    counter = Counting(lambda x, t: torch.zeros_like(x))
    ts_in = torch.tensor(ts, dtype=dtype) if as_tensor else ts
    sol = sdeint(counter, torch.zeros(3, 2, dtype=dtype), ts_in, dt=0.1, seed=0)
    assert sol.n_steps == want == len(counter.calls)
    assert sol.ts.dtype == dtype  # list times take x0's precision
    assert sum(n for n, _ in step_counts(torch.tensor(ts, dtype=torch.float32), 0.1)) == want


def test_list_times_keep_float64_precision():
    c = torch.tensor([1.0], dtype=F64)
    sol = sdeint(lambda x, t: c.expand_as(x), torch.zeros(2, 1, dtype=F64), [0.0, 0.6], sigma=0.0, dt=0.1, energy=True)
    assert sol.xs[-1, 0, 0].item() == pytest.approx(0.6, abs=1e-14)
    assert sol.energy[-1].item() == pytest.approx(0.6, abs=1e-14)


@pytest.mark.parametrize("method", METHODS)
def test_output_times_hit_exactly_and_no_hidden_drift_evaluations(method):
    c = torch.tensor([1.0, -2.0], dtype=F64)
    counter = Counting(lambda x, t: c.expand_as(x))
    x0 = _randn(2, 4, 2)
    sol = sdeint(counter, x0, TS_OFF_GRID, sigma=0.0, dt=0.1, solver=method)
    torch.testing.assert_close(sol.ts, torch.tensor(TS_OFF_GRID, dtype=sol.ts.dtype))
    grid = step_counts(check_times(TS_OFF_GRID), 0.1)
    n_steps = sum(n for n, _ in grid)
    assert sol.n_steps == n_steps == 11
    per_step = SOLVERS.get(method).drift_evals_per_step
    assert sol.n_drift_evals == n_steps * per_step == len(counter.calls)
    assert all(shape == (2, 4, 2) for _, shape in counter.calls)  # whole populations, every time
    # a constant drift with no noise is integrated exactly: x(t) = x0 + c (t − t0) at every t_k
    for k, t in enumerate(TS_OFF_GRID):
        torch.testing.assert_close(sol.xs[k], x0 + c * t, atol=1e-6, rtol=0)
        torch.testing.assert_close(sol.at(t), sol.xs[k])
    # the steps start on every output time (no interpolation across output times)
    starts = [t for t, _ in counter.calls[::per_step]]
    for t in TS_OFF_GRID[:-1]:
        assert any(abs(s - t) < 1e-6 for s in starts)
    assert max(starts) < TS_OFF_GRID[-1]
    with pytest.raises(KeyError, match="not an output time"):
        sol.at(0.5)


def test_single_output_time_returns_x0():
    x0 = _randn(4, 2)
    sol = sdeint(lambda x, t: x, x0, [0.5], seed=0)
    assert sol.xs.shape == (1, 4, 2) and sol.n_steps == 0 and torch.equal(sol.xs[0], x0)


# -- reproducibility -----------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_seed_and_generator(method):
    drift = small_drift(2)
    x0 = _randn(2, 5, 2)

    def run(**kw):
        return sdeint(drift, x0, [0.0, 0.5], dt=0.1, solver=method, **kw).xs

    a, b = run(seed=7), run(seed=7)
    assert torch.equal(a, b)
    assert not torch.allclose(run(seed=8), a)
    assert torch.equal(run(generator=torch.Generator().manual_seed(7)), a)
    torch.manual_seed(3)
    c = run()
    torch.manual_seed(3)
    assert torch.equal(run(), c)  # neither: torch's global RNG
    with pytest.raises(ValueError, match="either generator or seed"):
        run(seed=1, generator=torch.Generator())


# -- energy --------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_energy_of_constant_drift(method):
    c = torch.tensor([1.0, 2.0], dtype=F64)  # ‖c‖² = 5
    x0 = _randn(2, 3, 4, 2)
    sol = sdeint(lambda x, t: c.expand_as(x), x0, TS_OFF_GRID, sigma=0.3, dt=0.1, solver=method, seed=0, energy=True)
    assert sol.energy.shape == (4, 2, 3)
    want = 5.0 * torch.tensor(TS_OFF_GRID, dtype=F64).view(-1, 1, 1).expand(4, 2, 3)
    torch.testing.assert_close(sol.energy, want, atol=1e-12, rtol=1e-12)
    assert sdeint(lambda x, t: c.expand_as(x), x0, TS_OFF_GRID, dt=0.1, seed=0).energy is None


def test_energy_is_mean_over_particles_of_squared_drift():
    x0 = _randn(5, 2)
    sol = sdeint(lambda x, t: x, x0, [0.0, 0.1], sigma=0.0, dt=0.1, energy=True)
    torch.testing.assert_close(sol.energy[-1], 0.1 * x0.pow(2).sum(-1).mean(), atol=1e-14, rtol=0)


# -- random batch ----------------------------------------------------------------------------------
def test_random_batch_groups_partition_the_population():
    n, batch, d = 12, 4, 2
    x0 = torch.zeros(2, n, d, dtype=F64)
    x0[..., 0] = torch.arange(n, dtype=F64)  # particle ids in coordinate 0
    seen = []

    def drift(x, t):
        seen.append(x[..., 0].detach().clone())
        return torch.zeros_like(x)

    sdeint(drift, x0, [0.0, 0.5], sigma=0.0, dt=0.1, random_batch=batch, seed=0)
    assert len(seen) == 5
    partitions = []
    for ids in seen:
        assert ids.shape == (2, n // batch, batch)  # every drift call sees groups of exactly B
        for pop in ids:
            assert sorted(pop.flatten().long().tolist()) == list(range(n))
        partitions.append(frozenset(frozenset(g.long().tolist()) for g in ids[0]))
    assert len(set(partitions)) > 1  # reshuffled between steps


def test_random_batch_remainder_group_and_full_group():
    sizes = []

    def drift(x, t):
        return (sizes.append(x.shape[-2]), torch.zeros_like(x))[1]

    sdeint(drift, torch.zeros(10, 2, dtype=F64), [0.0, 0.1], dt=0.1, random_batch=4, seed=0)
    assert sorted(sizes) == [2, 4]
    # B ≥ N: one group holding everybody, identical to the exact mean-field drift
    mf = small_drift(2, "rbf")
    x0 = _randn(3, 6, 2)
    full = sdeint(mf, x0, [0.0, 0.5], dt=0.1, seed=1).xs
    torch.testing.assert_close(sdeint(mf, x0, [0.0, 0.5], dt=0.1, seed=1, random_batch=6).xs, full, atol=0, rtol=0)
    assert not torch.allclose(sdeint(mf, x0, [0.0, 0.5], dt=0.1, seed=1, random_batch=2).xs, full)


@pytest.mark.parametrize("method", METHODS)
def test_random_batch_returns_each_drift_to_its_particle(method):
    """A per-particle drift is unaffected by grouping: with shared noise (bm) the random-batch
    path equals the exact one, so every group's output went back to the right particles."""
    x0, h = _randn(2, 10, 2), 0.1
    z = _randn(4, 2, 10, 2, seed=1) * math.sqrt(h)

    def drift(x, t):
        return -x.pow(3) + torch.sin(x)

    full = sdeint(drift, x0, [0.0, 0.4], sigma=0.3, dt=h, solver=method, bm=TableBM(z, h)).xs
    for batch in (3, 5):
        rb = sdeint(
            drift, x0, [0.0, 0.4], sigma=0.3, dt=h, solver=method, bm=TableBM(z, h), seed=2, random_batch=batch
        ).xs
        torch.testing.assert_close(rb, full, atol=1e-14, rtol=0)


# -- checkpointing ----------------------------------------------------------------------------------
@pytest.mark.parametrize("random_batch", [None, 3])
@pytest.mark.parametrize("method", METHODS)
def test_checkpointing_gives_same_values_and_gradients(method, random_batch):
    drift = small_drift(2, "attention")
    base = _randn(2, 7, 2)

    def run(ckpt):
        drift.zero_grad()
        x0 = base.clone().requires_grad_(True)
        sol = sdeint(
            drift,
            x0,
            [0.0, 0.35, 0.6],
            dt=0.1,
            solver=method,
            seed=3,
            energy=True,
            random_batch=random_batch,
            recompute_every=ckpt,
        )
        (sol.xs.pow(2).sum() + sol.energy.sum()).backward()
        return sol.xs.detach(), x0.grad, [p.grad.clone() for p in drift.parameters()]

    xs, gx, gp = run(None)
    for ckpt in (1, 2, 10):
        xs_c, gx_c, gp_c = run(ckpt)
        torch.testing.assert_close(xs_c, xs, atol=1e-12, rtol=0)
        torch.testing.assert_close(gx_c, gx, atol=1e-10, rtol=1e-10)
        for a, b in zip(gp_c, gp):
            torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


# -- permutation equivariance of the solver ----------------------------------------------------------
@settings(max_examples=10)
@given(data=st.data())
def test_solver_is_permutation_equivariant_with_matching_noise(data):
    kernel = data.draw(st.sampled_from(["attention", "rbf", "pairwise_mlp"]))
    method = data.draw(st.sampled_from(METHODS))
    lead = data.draw(st.sampled_from([(), (2,), (2, 1)]))
    n, d = data.draw(st.integers(2, 6)), data.draw(st.integers(1, 3))
    perm = torch.tensor(data.draw(st.permutations(range(n))))
    drift = small_drift(d, kernel, seed=data.draw(st.integers(0, 3)))
    x0 = _randn(*lead, n, d, seed=1)
    h, steps = 0.1, 3
    z = _randn(steps, *lead, n, d, seed=2) * math.sqrt(h)
    sol = sdeint(drift, x0, [0.0, 0.1, 0.3], sigma=0.5, dt=h, solver=method, bm=TableBM(z, h))
    sol_p = sdeint(
        drift, x0[..., perm, :], [0.0, 0.1, 0.3], sigma=0.5, dt=h, solver=method, bm=TableBM(z[..., perm, :], h)
    )
    torch.testing.assert_close(sol_p.xs, sol.xs[..., perm, :], atol=1e-10, rtol=1e-10)


def test_noise_is_scaled_per_dimension():
    x0 = _randn(3, 4, 2)
    z = _randn(5, 3, 4, 2, seed=1)
    sigma = torch.tensor([0.5, 2.0], dtype=F64)
    sol = sdeint(lambda x, t: torch.zeros_like(x), x0, [0.0, 0.5], sigma=sigma, dt=0.1, bm=TableBM(z, 0.1))
    torch.testing.assert_close(sol.xs[-1] - x0, sigma * z.sum(0), atol=1e-12, rtol=0)


# -- reduction to Itô ----------------------------------------------------------------------------------
@pytest.mark.parametrize("lead", [(), (2,)])
def test_ito_preset_particles_are_independent(lead):
    """With inter = none, perturbing particle j leaves every other path bit-identical; with
    scIMF's attention (a random output layer: the preset starts it at zero), the others move too."""
    d, n, j = 4, 6, 2
    x0 = _randn(*lead, n, d)
    moved = x0.clone()
    moved[..., j, :] += 0.7
    others = [i for i in range(n) if i != j]
    ito = mfsde.model.build_model(mfsde.preset("ito", dim=d)).double().eval()
    assert isinstance(ito.drift.inter, mfsde.interactions.NoInteraction)
    a, b = ito(x0, [0.0, 0.5, 1.0], seed=0).xs, ito(moved, [0.0, 0.5, 1.0], seed=0).xs
    assert torch.equal(a[..., others, :], b[..., others, :])
    assert not torch.equal(a[1:, ..., j, :], b[1:, ..., j, :])
    scimf = mfsde.model.build_model(mfsde.preset("scimf", dim=d).override(**{"model.inter.zero_init": False}))
    scimf = scimf.double().eval()
    a, b = scimf(x0, [0.0, 0.5, 1.0], seed=0).xs, scimf(moved, [0.0, 0.5, 1.0], seed=0).xs
    for i in others:
        assert not torch.allclose(a[-1, ..., i, :], b[-1, ..., i, :], atol=1e-9, rtol=0)


@pytest.mark.parametrize("sigma", [0.3, "per_dimension", "state"])
def test_euler_maruyama_equals_torchsde_euler(sigma):
    """Same Brownian increments, dt = 2^-3 (exact float grid): mfsde and torchsde agree."""
    drift = small_drift(2, "attention")
    if sigma == "per_dimension":
        sigma = torch.tensor([0.2, 0.5], dtype=F64)
    elif sigma == "state":

        def sigma(x, t):
            return 0.2 * torch.tanh(x) + 0.1

    x0 = _randn(3, 5, 2)
    ts = torch.tensor([0.0, 0.5, 1.0], dtype=F64)
    bi, bm = brownian_interval(x0, 0.0, 1.0, seed=3)
    ours = sdeint(drift, x0, ts, sigma=sigma, dt=0.125, bm=bm)
    theirs = torchsde_sdeint(drift, x0, ts, sigma=sigma, dt=0.125, method="euler", bm=bi)
    assert theirs.shape == ours.xs.shape == (3, 3, 5, 2)
    torch.testing.assert_close(ours.xs, theirs, atol=1e-12, rtol=1e-12)


# -- weak convergence on the mean-field OU process --------------------------------------------------
# dX_i = −a X_i dt − k (X_i − X̄) dt + σ dW_i with N particles. Split X_i = X̄ + Y_i:
#   dX̄  = −a X̄ dt + (σ/√N) dW̄,            dY_i = −(a+k) Y_i dt + σ d(W_i − W̄),
# W̄ and W_i − W̄ are uncorrelated (hence independent), Var(W_i − W̄) = (1 − 1/N) t. With X_i(0)
# i.i.d. N(m0, v0): Var X_i(t) = Var X̄(t) + Var Y_i(t), Var X̄(0) = v0/N, Var Y_i(0) = v0 (1 − 1/N),
# and Var X_i → v∞ + (v0 − v∞) e^{−2(a+k)t}, v∞ = σ²/(2(a+k)), as N → ∞. A scheme with one-step
# amplification r(λh) and noise factor c(λh) obeys v ← r² v + c² σ² h (per component).
OU = dict(a=0.5, k=1.5, sigma=1.0, m0=1.0, v0=1.0)


def ou_drift(x, t):
    return -OU["a"] * x - OU["k"] * (x - x.mean(-2, keepdim=True))


def ou_exact(t, n):
    a, lam, s2, v0 = OU["a"], OU["a"] + OU["k"], OU["sigma"] ** 2, OU["v0"]
    v_bar = v0 / n * math.exp(-2 * a * t) + s2 / n * (1 - math.exp(-2 * a * t)) / (2 * a)
    v_y = (1 - 1 / n) * (v0 * math.exp(-2 * lam * t) + s2 * (1 - math.exp(-2 * lam * t)) / (2 * lam))
    return OU["m0"] * math.exp(-a * t), v_bar + v_y, v_bar


def ou_scheme(ts, dt, n, method):
    """Exact mean and variance of the discrete scheme at every output time."""
    a, lam, s2 = OU["a"], OU["a"] + OU["k"], OU["sigma"] ** 2

    def factors(z):
        if method == "euler_maruyama":
            return 1 - z, 1.0
        return 1 - z + z * z / 2, (1 - z / 2) ** 2  # Heun: x̃ = x + f h + σΔW, average the slopes

    m, v_bar, v_y = OU["m0"], OU["v0"] / n, OU["v0"] * (1 - 1 / n)
    out = [(m, v_bar + v_y)]
    for steps, h in step_counts(torch.tensor(ts, dtype=F64), dt):
        (ra, ca), (rl, cl) = factors(a * h), factors(lam * h)
        for _ in range(steps):
            m, v_bar, v_y = ra * m, ra**2 * v_bar + ca * s2 * h / n, rl**2 * v_y + cl * s2 * h * (1 - 1 / n)
        out.append((m, v_bar + v_y))
    return out


def _ou_x0(b, n, d, seed):
    return OU["m0"] + math.sqrt(OU["v0"]) * _randn(b, n, d, seed=seed)


@pytest.mark.parametrize(
    "method, dt", [("euler_maruyama", 0.2), ("euler_maruyama", 0.05), ("heun", 0.2), ("heun", 0.05)]
)
def test_ou_marginals_match_the_scheme_and_the_exact_law(method, dt):
    b, n, d = 1000, 10, 4
    ts = [0.0, 0.3, 0.7, 1.5]
    x0 = _ou_x0(b, n, d, seed=0)
    xs = sdeint(ou_drift, x0, ts, sigma=OU["sigma"], dt=dt, solver=method, seed=1).xs
    scheme = ou_scheme(ts, dt, n, method)
    for k, t in enumerate(ts[1:], start=1):
        m_exact, v_exact, v_bar = ou_exact(t, n)
        m_s, v_s = scheme[k]
        dev2 = (xs[k] - m_s).pow(2)
        sd_mean = math.sqrt(v_bar / (b * d))  # the population means carry the shared noise
        sd_var = dev2.std().item() / math.sqrt(dev2.numel()) * 1.5
        assert abs(xs[k].mean().item() - m_s) < 5 * sd_mean, (t, xs[k].mean().item(), m_s)
        assert abs(dev2.mean().item() - v_s) < 5 * sd_var, (t, dev2.mean().item(), v_s)
        if method == "heun" and dt == 0.05:  # bias far below the Monte Carlo error: the exact law
            assert abs(xs[k].mean().item() - m_exact) < 5 * sd_mean
            assert abs(dev2.mean().item() - v_exact) < 5 * sd_var + abs(m_s - m_exact) ** 2
            # the finite-N factor matters: the N = ∞ variance is clearly rejected
            lam = OU["a"] + OU["k"]
            v_inf = OU["sigma"] ** 2 / (2 * lam)
            v_mf = v_inf + (OU["v0"] - v_inf) * math.exp(-2 * lam * t)
            assert abs(dev2.mean().item() - v_mf) > 10 * sd_var
    if dt == 0.2 and method == "euler_maruyama":  # the dt bias is resolved: not the exact law
        assert abs(scheme[-1][1] - ou_exact(ts[-1], n)[1]) > 10 * sd_var


def test_ou_weak_order():
    """Richardson differences of the variance at T on nested grids with common Brownian paths:
    ratios ≈ 2 for Euler–Maruyama (weak order 1), ≈ 4 for Heun (order 2 for additive noise)."""
    b, n, d, T, h_min = 1000, 10, 2, 1.0, 0.05
    x0 = _ou_x0(b, n, d, seed=5)
    fine = _randn(round(T / h_min), b, n, d, seed=6) * math.sqrt(h_min)
    w = torch.cat([torch.zeros(1, b, n, d, dtype=F64), fine.cumsum(0)])

    def bm(ta, tb):
        return w[round(tb / h_min)] - w[round(ta / h_min)]

    ratios, diffs = {}, {}
    for method in METHODS:
        v = [
            sdeint(ou_drift, x0, [0.0, T], sigma=OU["sigma"], dt=h, solver=method, bm=bm).xs[-1].var().item()
            for h in (0.2, 0.1, 0.05)
        ]
        diffs[method] = (v[0] - v[1], v[1] - v[2])
        ratios[method] = diffs[method][0] / diffs[method][1]
        # the exact scheme variances give the same ratios (sanity of the expectation)
        s = [ou_scheme([0.0, T], h, n, method)[-1][1] for h in (0.2, 0.1, 0.05)]
        assert ratios[method] == pytest.approx((s[0] - s[1]) / (s[1] - s[2]), rel=0.15)
    assert 1.7 < ratios["euler_maruyama"] < 3.0, ratios
    assert 3.3 < ratios["heun"] < 6.0, ratios
    assert abs(diffs["heun"][0]) < 0.3 * abs(diffs["euler_maruyama"][0])


# -- torchsde adapter ---------------------------------------------------------------------------------
def test_adjoint_refused_for_non_elementwise_callable_diffusion():
    drift = small_drift(2)
    x0 = _randn(4, 2)

    def g(x, t):
        return 0.1 + 0.0 * x

    with pytest.raises(ValueError, match="elementwise = True"):
        torchsde_sdeint(drift, x0, [0.0, 0.1], sigma=g, dt=0.05, adjoint=True)

    class Elementwise(torch.nn.Module):
        elementwise = True

        def forward(self, x, t):
            return 0.1 * torch.tanh(x) + 0.1

    bi, _ = brownian_interval(x0, 0.0, 0.1, seed=0)
    ys = torchsde_sdeint(drift, x0, [0.0, 0.1], sigma=Elementwise(), dt=0.05, adjoint=True, bm=bi)
    assert ys.shape == (2, 4, 2) and torch.isfinite(ys).all()


def test_adjoint_warns_with_active_dropout():
    intra = mfsde.drifts.build_intra("mlp", dim=2, width=8).double()
    drift = mfsde.drifts.MeanFieldDrift(
        intra, mfsde.interactions.build_interaction("attention", dim=2, heads=1, dropout=0.1).double()
    )
    x0 = _randn(4, 2)
    bi, _ = brownian_interval(x0, 0.0, 0.1, seed=0)
    with pytest.warns(UserWarning, match="dropout"):
        torchsde_sdeint(drift, x0, [0.0, 0.1], sigma=0.1, dt=0.05, adjoint=True, bm=bi)
    drift.eval()
    bi, _ = brownian_interval(x0, 0.0, 0.1, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torchsde_sdeint(drift, x0, [0.0, 0.1], sigma=0.1, dt=0.05, adjoint=True, bm=bi)


def test_adjoint_gradient_matches_backprop():
    drift = small_drift(2, "attention")
    x0 = _randn(2, 5, 2)
    grads = []
    for adjoint in (False, True):
        bi, _ = brownian_interval(x0, 0.0, 0.5, seed=4)
        drift.zero_grad()
        ys = torchsde_sdeint(drift, x0, [0.0, 0.5], sigma=0.2, dt=0.01, adjoint=adjoint, bm=bi)
        ys[-1].pow(2).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in drift.parameters()]))
    rel = ((grads[0] - grads[1]).norm() / grads[0].norm()).item()
    assert rel < 0.02, rel  # O(dt) discretisation difference between the two gradients


# -- diffusion and bad input --------------------------------------------------------------------------
def test_heun_refuses_state_dependent_noise():
    with pytest.raises(ValueError, match="'heun' supports additive"):
        sdeint(lambda x, t: x, _randn(3, 2), [0.0, 0.1], sigma=lambda x, t: x, solver="heun")


def test_learnable_sigma_gets_gradients():
    sigma = Diffusion(torch.tensor([0.3, 0.4]), learnable=True).double()
    sol = sdeint(lambda x, t: -x, _randn(6, 2), [0.0, 0.3], sigma=sigma, dt=0.1, seed=0)
    sol.xs[-1].pow(2).sum().backward()
    assert sigma.log_sigma.grad is not None and torch.isfinite(sigma.log_sigma.grad).all()


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(x0=torch.zeros(4, dtype=F64)), ValueError, r"x0 must have shape \(\.\.\., N, d\)"),
        (dict(x0=torch.tensor([[0.0, float("nan")]], dtype=F64)), ValueError, r"x0 contains 1 NaN/Inf"),
        (dict(x0=torch.tensor([[0.0, float("inf")]], dtype=F64)), ValueError, r"x0 contains 1 NaN/Inf"),
        (dict(x0=torch.zeros(3, 3, dtype=F64)), ValueError, r"x has d = 3 .* built for d = 2"),
        (dict(ts=[0.0, 0.5, 0.5]), ValueError, r"ts must be strictly increasing"),
        (dict(ts=[1.0, 0.5]), ValueError, r"ts must be strictly increasing"),
        (dict(ts=[[0.0, 1.0]]), ValueError, r"ts must be a 1-D tensor"),
        (dict(ts=[]), ValueError, r"ts must be a 1-D tensor"),
        (dict(ts=[0.0, float("nan")]), ValueError, r"ts contains NaN/Inf"),
        (dict(dt=0.0), ValueError, r"dt must be a positive finite number"),
        (dict(dt=-0.1), ValueError, r"dt must be a positive finite number"),
        (dict(dt=float("inf")), ValueError, r"dt must be a positive finite number"),
        (dict(dt=float("nan")), ValueError, r"dt must be a positive finite number"),
        (dict(sigma=torch.tensor([0.1, 0.2, 0.3])), ValueError, r"sigma has 3 entries but particles have d = 2"),
        (dict(sigma=-0.1), ValueError, r"sigma must be finite and non-negative"),
        (dict(sigma=torch.ones(2, 2, 2)), ValueError, r"sigma must be a number, a \(d,\) tensor"),
        (dict(solver="rk4"), KeyError, r"unknown solver 'rk4'; available: euler_maruyama, heun"),
        (dict(random_batch=0), ValueError, r"random_batch must be a positive int"),
        (dict(recompute_every=0), ValueError, r"recompute_every must be a positive int"),
    ],
)
def test_bad_solver_input(kwargs, exc, match):
    args = dict(x0=_randn(4, 2), ts=[0.0, 0.2], dt=0.1)
    args.update(kwargs)
    drift = small_drift(2, "attention")
    with pytest.raises(exc, match=match):
        sdeint(drift, args.pop("x0"), args.pop("ts"), seed=0, **args)


def test_bad_torchsde_input():
    drift = small_drift(2)
    with pytest.raises(ValueError, match=r"x0 must have shape"):
        torchsde_sdeint(drift, torch.zeros(3, dtype=F64), [0.0, 0.1])
    with pytest.raises(ValueError, match=r"ts must be strictly increasing"):
        torchsde_sdeint(drift, _randn(3, 2), [0.1, 0.0])
