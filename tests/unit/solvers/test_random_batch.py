"""Random batch method (Jin, Li & Liu 2020) on the mean-field OU process, and its structure.

Model: dX_i = −a X_i dt − k/(n−1) Σ_{j≠i} (X_i − X_j) dt + σ dW_i, with n the number of
particles the drift sees (the whole population, or a random-batch group of B). The 1/(n−1)
self-excluding normalisation is the one of every mfsde kernel; with it the RBM has the same
mean-field limit as the full system: N(m0 e^{−at}, v∞ + (v0 − v∞) e^{−2(a+k)t}), v∞ = σ²/2(a+k).

Exact law of the Euler–Maruyama RBM scheme (any N, B with B | N). Within a group g,
X_i ← α X_i + β X̄_g + σ ΔW_i with κ = k B/(B−1), α = 1 − (a+κ)h, β = κh. The groups are drawn
uniformly at random each step, so the particles stay exchangeable: write v = Var X_i,
c = Cov(X_i, X_j) (i ≠ j) and u = Var X̄_g = v/B + (1 − 1/B) c. Then

    m ← (1 − a h) m,   v ← α² v + (2αβ + β²) u + σ² h,
    c ← p [α² c + (2αβ + β²) u] + (1 − p) (α + β)² c,   p = (B−1)/(N−1) = P(j in i's group).

B = N is the full N-particle system. The Monte Carlo tolerances are 5 standard errors of the
replicate averages ((batch, dimension) pairs are independent replicates).
"""

from __future__ import annotations

import math

import pytest
import torch

from mfsde.solvers import random_batch_drift, sdeint

F64 = torch.float64
A, K, SIGMA, M0, V0 = 0.5, 1.5, 1.0, 1.0, 1.0


def ou_drift(x, t=None):
    """−a x_i − k/(n−1) Σ_{j≠i} (x_i − x_j) over the n particles it is given: ``(..., n, d)``."""
    n = x.shape[-2]
    return -A * x - K * n / (n - 1) * (x - x.mean(-2, keepdim=True))


def scheme_law(n: int, batch: int, h: float, steps: int) -> tuple[float, float]:
    """Exact mean and variance of one particle after ``steps`` EM steps of the RBM (module doc)."""
    kappa = K * batch / (batch - 1)
    alpha, beta = 1 - (A + kappa) * h, kappa * h
    p = (batch - 1) / (n - 1)
    m, v, c = M0, V0, 0.0
    for _ in range(steps):
        u = v / batch + (1 - 1 / batch) * c
        v, c = (
            alpha**2 * v + (2 * alpha * beta + beta**2) * u + SIGMA**2 * h,
            p * (alpha**2 * c + (2 * alpha * beta + beta**2) * u) + (1 - p) * (alpha + beta) ** 2 * c,
        )
        m *= 1 - A * h
    return m, v


def mean_field_law(t: float) -> tuple[float, float]:
    lam = A + K
    v_inf = SIGMA**2 / (2 * lam)
    return M0 * math.exp(-A * t), v_inf + (V0 - v_inf) * math.exp(-2 * lam * t)


def x0(b: int, n: int, d: int, seed: int = 0) -> torch.Tensor:
    return M0 + math.sqrt(V0) * torch.randn(b, n, d, generator=torch.Generator().manual_seed(seed), dtype=F64)


def replicate_stats(x: torch.Tensor, m: float):
    """(mean, SE of mean, second moment about m, its SE) over (batch, dim) replicates of ``x`` (b, N, d)."""
    first = x.mean(-2).flatten()
    second = (x - m).pow(2).mean(-2).flatten()
    r = first.numel()
    return (
        first.mean().item(),
        first.std().item() / math.sqrt(r),
        second.mean().item(),
        second.std().item() / math.sqrt(r),
    )


# -- the law of the random batch method --------------------------------------------------------------
@pytest.mark.parametrize("batch", [2, 5, 20])
def test_random_batch_ou_matches_the_exact_scheme_law(batch):
    n, h, steps = 20, 0.1, 10
    xT = sdeint(ou_drift, x0(400, n, 5), [0.0, steps * h], sigma=SIGMA, dt=h, seed=1, random_batch=batch).xs[-1]
    m, v = scheme_law(n, batch, h, steps)
    mean, se_mean, second, se_second = replicate_stats(xT, m)
    assert abs(mean - m) < 5 * se_mean, (mean, m, se_mean)
    assert abs(second - v) < 5 * se_second, (second, v, se_second)


def test_fixed_groups_are_rejected_by_the_scheme_law():
    """Negative control: groups drawn once and kept (no reshuffle) correlate the group members;
    their variance is far from the RBM law, so the test above can tell them apart."""
    n, batch, h, steps = 20, 2, 0.1, 10

    def fixed_groups(x, t):
        g = x.reshape(*x.shape[:-2], n // batch, batch, x.shape[-1])
        return ou_drift(g).reshape(x.shape)

    xT = sdeint(fixed_groups, x0(400, n, 5), [0.0, steps * h], sigma=SIGMA, dt=h, seed=1).xs[-1]
    m, v = scheme_law(n, batch, h, steps)
    _, _, second, se_second = replicate_stats(xT, m)
    assert abs(second - v) > 8 * se_second, (second, v, se_second)


def test_random_batch_converges_to_the_mean_field_law_as_dt_shrinks():
    """The scheme's bias against the mean-field law falls ~linearly in h (weak order 1) for B = 2
    and N large, and a Monte Carlo run at small h (N = 200, B ∈ {2, 10}, and the full solver)
    agrees with the mean-field law within 5 SE plus the known finite-N/finite-h bias."""
    T = 1.0
    m_mf, v_mf = mean_field_law(T)
    errors = [abs(scheme_law(100_000, 2, T / s, s)[1] - v_mf) for s in (10, 20, 40, 80)]
    ratios = [e0 / e1 for e0, e1 in zip(errors, errors[1:])]
    assert all(1.8 < r < 2.4 for r in ratios), (errors, ratios)

    n, h = 200, 0.05
    steps = round(T / h)
    for batch in (2, 10, None):
        xT = sdeint(ou_drift, x0(50, n, 4, seed=2), [0.0, T], sigma=SIGMA, dt=h, seed=3, random_batch=batch).xs[-1]
        m_s, v_s = scheme_law(n, batch or n, h, steps)
        mean, se_mean, second, se_second = replicate_stats(xT, m_mf)
        assert abs(mean - m_mf) < 5 * se_mean + abs(m_s - m_mf), (batch, mean, m_mf)
        assert abs(second - v_mf) < 5 * se_second + abs(v_s - v_mf), (batch, second, v_mf, se_second)


def test_random_batch_strong_error_is_order_half_in_dt():
    """Jin–Li–Liu: E|X^RBM − X^full|² = O(h/(B−1)) with shared Brownian paths; mean-square
    differences fall ~4× when h falls 4× and are smaller for larger B."""
    n, d, b, T, h_min = 20, 2, 200, 1.0, 0.0125
    start = x0(b, n, d, seed=4)
    w = torch.cat(
        [
            torch.zeros(1, b, n, d, dtype=F64),
            torch.randn(round(T / h_min), b, n, d, generator=torch.Generator().manual_seed(5), dtype=F64)
            .mul(math.sqrt(h_min))
            .cumsum(0),
        ]
    )

    def bm(ta, tb):
        return w[round(tb / h_min)] - w[round(ta / h_min)]

    def mse(h, batch):
        full = sdeint(ou_drift, start, [0.0, T], sigma=SIGMA, dt=h, bm=bm).xs[-1]
        rb = sdeint(ou_drift, start, [0.0, T], sigma=SIGMA, dt=h, bm=bm, seed=6, random_batch=batch).xs[-1]
        return (rb - full).pow(2).mean().item()

    coarse, fine = mse(0.1, 2), mse(0.025, 2)
    assert 2.5 < coarse / fine < 6.5, (coarse, fine)
    assert mse(0.025, 10) < 0.5 * fine


# -- structure: O(N·B) work, groups, fallback, equivariance, determinism ------------------------------
def shapes_seen_by_drift(start, t_end: float, batch: int) -> list[tuple]:
    """The shapes of every population the drift is called on, random batch ``batch``, dt = 0.1."""
    shapes = []

    def drift(x, t):
        shapes.append(tuple(x.shape))
        return ou_drift(x)

    sdeint(drift, start, [0.0, t_end], sigma=SIGMA, dt=0.1, seed=0, random_batch=batch)
    return shapes


def test_random_batch_calls_the_drift_on_groups_only():
    """The interaction only ever sees (..., N/B, B, d) groups plus the remainder group: the pairs
    it can form number N·B at most (O(N·B) work), not N²."""
    n, batch, d = 103, 10, 3
    shapes = shapes_seen_by_drift(x0(2, n, d), 0.3, batch)
    assert shapes == [(2, 10, 10, 3), (2, 3, 3)] * 3
    pairs_per_step = sum(math.prod(s[:-1]) * s[-2] for s in shapes[:2]) // 2  # populations × rows × sources
    assert pairs_per_step <= n * batch < n * n


def test_random_batch_never_leaves_a_particle_alone():
    """N % B == 1: the leftover particle joins the last full group (a group of one would get no
    interaction at all); every particle still gets its drift back in its own place."""
    n, batch, d = 21, 10, 2
    shapes = shapes_seen_by_drift(x0(1, n, d), 0.1, batch)
    assert shapes == [(1, 1, 10, 2), (1, 11, 2)]
    x = x0(1, n, d)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    out = random_batch_drift(ou_drift, perm, batch)(x)
    xp = x[..., perm, :]
    expected = torch.cat([ou_drift(xp[..., :10, :]), ou_drift(xp[..., 10:, :])], dim=-2)[..., torch.argsort(perm), :]
    torch.testing.assert_close(out, expected)
    # N = 11, B = 10 → one group of 11 (the exact drift); N = 1 stays a single particle
    torch.testing.assert_close(
        random_batch_drift(ou_drift, torch.arange(11), 10)(x[..., :11, :]), ou_drift(x[..., :11, :])
    )


def test_random_batch_at_least_n_is_the_exact_drift():
    start = x0(3, 12, 2)
    full = sdeint(ou_drift, start, [0.0, 0.5], sigma=SIGMA, dt=0.1, seed=7).xs
    for batch in (12, 50):
        same = sdeint(ou_drift, start, [0.0, 0.5], sigma=SIGMA, dt=0.1, seed=7, random_batch=batch).xs
        assert torch.equal(same, full)
    assert not torch.allclose(sdeint(ou_drift, start, [0.0, 0.5], sigma=SIGMA, dt=0.1, seed=7, random_batch=4).xs, full)


def test_random_batch_is_deterministic_under_a_seed():
    start = x0(2, 30, 2)

    def run(seed):
        return sdeint(ou_drift, start, [0.0, 0.4], sigma=SIGMA, dt=0.1, seed=seed, random_batch=4).xs

    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))


def test_random_batch_drift_is_permutation_equivariant():
    """Relabelling the particles by σ and the grouping permutation accordingly gives the same
    groups, so the output is relabelled by σ: f_{σ⁻¹∘π}(x[σ]) = f_π(x)[σ]."""
    g = torch.Generator().manual_seed(8)
    n, batch = 11, 3
    x = torch.randn(2, n, 3, generator=g, dtype=F64)
    pi, sigma = torch.randperm(n, generator=g), torch.randperm(n, generator=g)
    want = random_batch_drift(ou_drift, pi, batch)(x)[..., sigma, :]
    got = random_batch_drift(ou_drift, torch.argsort(sigma)[pi], batch)(x[..., sigma, :])
    torch.testing.assert_close(got, want, atol=1e-14, rtol=0)
    with pytest.raises(ValueError, match="perm has shape"):
        random_batch_drift(ou_drift, pi, batch)(x[..., :5, :])
    with pytest.raises(ValueError, match="batch must be a positive int"):
        random_batch_drift(ou_drift, pi, 0)
