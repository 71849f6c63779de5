"""Ground-truth particle systems (mfsde.systems): dynamics, exact solutions and snapshot datasets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mfsde.interactions import NoInteraction
from mfsde.systems import (
    SYSTEMS,
    CuckerSmale,
    MeanFieldOU,
    MorseAggregation,
    NoisyKuramoto,
    NonInteracting,
    OpinionDynamics,
    demo_dataset,
    get_system,
    order_parameter,
    snapshots,
    stationary_order_parameter,
    velocity_variance,
)

ALL = [
    "ou",
    "ou_control",
    "kuramoto",
    "cucker_smale",
    "opinion",
    "morse",
    "morse_control",
    "two_species",
    "two_species_control",
]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- registry and drift objects -------------------------------------------------------------------
def test_registry_lists_every_system_and_builds_by_name():
    assert sorted(ALL) == SYSTEMS.names()
    assert isinstance(get_system("ou", K=2.0), MeanFieldOU)
    assert isinstance(get_system("kuramoto", K=0.3, D=0.5), NoisyKuramoto)
    with pytest.raises(KeyError, match="unknown particle system"):
        get_system("lorenz")
    with pytest.raises(TypeError, match="unknown option"):
        get_system("cucker_smale", gamma=1.0)


@pytest.mark.parametrize("name", ALL)
def test_drift_is_intra_plus_inter_on_batched_populations(name):
    system = get_system(name)
    x = system.sample_initial(9, gen(1), batch=(2, 3))
    assert x.shape == (2, 3, 9, system.dim) and x.dtype == torch.float32
    f, a, b = system.drift(x), system.drift.intra(x), system.drift.inter(x)
    assert f.shape == a.shape == b.shape == x.shape
    torch.testing.assert_close(f, a + b)
    # a lone particle has nobody to interact with
    assert torch.equal(system.drift.inter(x[..., :1, :]), torch.zeros_like(x[..., :1, :]))
    # populations in the batch do not interact with each other
    torch.testing.assert_close(system.drift(x[1, 2]), f[1, 2])
    assert len(system.feature_names) == system.dim


@pytest.mark.parametrize("name", ALL)
def test_interaction_is_permutation_equivariant(name):
    system = get_system(name)
    x = system.sample_initial(12, gen(2))
    perm = torch.randperm(12, generator=gen(3))
    torch.testing.assert_close(system.drift.inter(x[perm]), system.drift.inter(x)[perm], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "system",
    [
        MeanFieldOU(),
        CuckerSmale(),
        MorseAggregation(),
        OpinionDynamics(dim=2, normalize=False),
    ],
    ids=lambda s: s.name,
)
def test_symmetric_pair_forces_cancel(system):
    """Antisymmetric pairwise forces: Σ_i f_inter(x_i) = 0 (momentum / mean conservation)."""
    x = system.sample_initial(40, gen(4))
    f = system.drift.inter(x)
    assert f.abs().max() > 1e-2
    torch.testing.assert_close(f.sum(-2), torch.zeros(system.dim), atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["ou_control", "morse_control"])
def test_registered_controls_have_zero_interaction_and_the_base_intra(name):
    control = get_system(name)
    base = get_system(name.removesuffix("_control"))
    assert isinstance(control.drift.inter, NoInteraction)
    x = base.sample_initial(30, gen(5))
    assert torch.equal(control.drift.inter(x), torch.zeros_like(x))
    torch.testing.assert_close(control.drift(x), base.drift.intra(x))
    assert not torch.allclose(base.drift(x), base.drift.intra(x))  # the base does interact
    assert control.sigma == base.sigma


def test_noninteracting_wrapper_for_angle_integrated_kuramoto():
    """The control also strips the interaction from the drift actually integrated (angles):
    without coupling a synchronised start desynchronises (r ~ r0 e^{−Dt}); with K = 3 it stays."""
    base = NoisyKuramoto(K=3.0, D=0.5, theta_std=0.5)
    control = base.without_interaction()
    assert isinstance(control, NonInteracting) and control.name == "kuramoto_control"
    x0 = base.sample_initial(300, gen(6))
    y = base.sample_initial(20, gen(7))
    assert torch.equal(control.drift.inter(y), torch.zeros_like(y))
    r_base = order_parameter(base.simulate(x0, [0.0, 8.0], seed=0).xs[-1])
    r_ctrl = order_parameter(control.simulate(x0, [0.0, 8.0], seed=0).xs[-1])
    assert r_base > 0.8 and r_ctrl < 0.2


# -- mean-field OU ---------------------------------------------------------------------------------
def test_ou_exact_moments_solve_the_moment_odes():
    ou = MeanFieldOU(
        dim=2,
        A=[[0.5, -1.0], [1.0, 0.5]],
        K=[[1.0, 0.3], [0.0, 0.6]],
        sigma=[0.5, 0.2],
        m0=[2.0, -1.0],
        C0=[[0.2, 0.05], [0.05, 0.1]],
    )
    m, C = ou.exact_moments([0.0, 40.0])
    torch.testing.assert_close(m[0], ou.m0)
    torch.testing.assert_close(C[0], ou.C0)
    B = ou.A + ou.K
    # stationary covariance: Lyapunov equation B C + C Bᵀ = Σ Σᵀ
    torch.testing.assert_close(B @ C[1] + C[1] @ B.T, ou.Q, atol=1e-9, rtol=0)
    # derivatives by central differences at a few times
    h = 1e-4
    for t in (0.3, 1.0, 2.5):
        (mm, mp), (Cm, Cp) = ou.exact_moments([t - h, t + h])
        (m_t,), (C_t,) = ou.exact_moments([t])
        torch.testing.assert_close((mp - mm) / (2 * h), -ou.A @ m_t, atol=1e-6, rtol=0)
        torch.testing.assert_close((Cp - Cm) / (2 * h), -B @ C_t - C_t @ B.T + ou.Q, atol=1e-6, rtol=0)


def test_ou_snapshot_moments_match_exact_within_statistical_tolerance():
    ou = MeanFieldOU()  # rotation + contraction, K = I, σ = 0.5, m0 = (2, 0), C0 = 0.1 I
    times = [0.0, 0.5, 1.0, 2.0, 4.0]
    n = 3000
    ds = snapshots(ou, times, n, seed=11, dt=0.01)
    means, covs = ou.exact_moments(times)
    for k in range(len(times)):
        x = torch.as_tensor(ds.data[k], dtype=torch.float64)
        m, C = means[k], covs[k]
        se_mean = (torch.diagonal(C) / n).sqrt()
        assert ((x.mean(0) - m).abs() < 5 * se_mean).all(), (k, x.mean(0), m)
        se_cov = ((torch.diagonal(C)[:, None] * torch.diagonal(C)[None, :] + C**2) / n).sqrt()
        # 5 standard errors + 2% for the O(dt) Euler bias and the O(1/N) finite-population bias
        assert ((torch.cov(x.T) - C).abs() < 5 * se_cov + 0.02 * C.abs().max()).all(), (k, torch.cov(x.T), C)
    # the interaction matters: the K = 0 control has a clearly wider law at t = 4
    _, C_ctrl = ou.without_interaction().exact_moments([4.0])
    assert torch.trace(C_ctrl[0]) > 1.5 * torch.trace(covs[-1])


# -- Kuramoto --------------------------------------------------------------------------------------
def test_kuramoto_synchronises_only_above_critical_coupling():
    n, D = 400, 0.5  # K_c = 2D = 1
    r = {}
    for K in (0.4, 3.0):
        system = NoisyKuramoto(K=K, D=D, theta_std=None)  # incoherent (uniform) start
        assert system.K_c == 1.0
        x0 = system.sample_initial(n, gen(8), batch=(4,))
        xs = system.simulate(x0, [0.0, 5.0, 10.0, 15.0], generator=gen(9), dt=0.02).xs
        r[K] = order_parameter(xs)  # (T, 4)
    assert (r[0.4][0] < 4 / math.sqrt(n)).all()
    assert r[0.4][1:].mean() < 2 / math.sqrt(n)  # stays O(1/√N): E r ≈ √(π/4N) ≈ 0.044
    assert (r[3.0][-1] > 0.7).all()  # grows from O(1/√N) to the synchronised branch
    assert abs(r[3.0][-1].mean().item() - stationary_order_parameter(3.0, D)) < 0.06


def test_kuramoto_stationary_order_parameter_solves_self_consistency():
    assert stationary_order_parameter(0.9, 0.5) == 0.0
    for K, D in [(2.0, 0.5), (1.2, 0.5), (3.0, 1.0)]:
        r = stationary_order_parameter(K, D)
        z = torch.tensor(K * r / D, dtype=torch.float64)
        assert 0 < r < 1
        assert abs(float(torch.special.i1e(z) / torch.special.i0e(z)) - r) < 1e-9


def test_kuramoto_embedded_drift_matches_angle_dynamics_with_ito_correction():
    system = NoisyKuramoto(K=2.0, D=0.5, omega=0.7, theta_std=1.0)
    y0 = system.sample_initial(100, gen(10))
    theta = torch.atan2(y0[:, 1:], y0[:, :1])
    # deterministic identity: embedded coupling = angle coupling along the tangent J y
    tangent = torch.cat([-y0[:, 1:], y0[:, :1]], dim=-1)
    torch.testing.assert_close(system.drift.inter(y0), system.angle_drift.inter(theta) * tangent)
    torch.testing.assert_close(order_parameter(theta), order_parameter(y0))
    # stochastic check of the Itô drift: average increments over 2000 noise replicas
    h, reps = 0.02, 2000
    y = system.simulate(y0.expand(reps, -1, -1), [0.0, h], generator=gen(11), dt=0.01).xs[-1]
    dy = (y - y0).double().mean(0)
    f = system.drift(y0).double()
    radial = (dy * y0).sum(-1).mean()  # E⟨Δy, y⟩ = −D h + O(h²): the Itô correction alone
    assert abs(radial.item() - (-system.D * h)) < 0.1 * system.D * h
    tang = (dy * tangent).sum(-1)  # per particle: ≈ h (ω + coupling_i)
    assert (tang - h * (f * tangent).sum(-1)).abs().mean() < 0.15 * (h * (f * tangent).sum(-1)).abs().mean()
    assert torch.allclose((f * y0).sum(-1), torch.full((100,), -system.D, dtype=torch.float64), atol=1e-5)


# -- Cucker–Smale ----------------------------------------------------------------------------------
@pytest.mark.parametrize("beta", [0.25, 0.5])
def test_noise_free_cucker_smale_flocks_for_beta_at_most_half(beta):
    system = CuckerSmale(K=1.0, beta=beta, sigma=0.0)
    x0 = system.sample_initial(100, gen(12))
    xs = system.simulate(x0, [0.0, 1.0, 2.0, 4.0, 8.0], generator=gen(13), dt=0.02).xs
    var = velocity_variance(xs)
    assert (var[1:] <= var[:-1] * (1 + 1e-5)).all(), var  # non-increasing
    assert var[-1] < 0.05 * var[0], var
    # total momentum is conserved and positions follow the velocities
    torch.testing.assert_close(xs[-1, :, 2:].mean(0), x0[:, 2:].mean(0), atol=1e-4, rtol=0)
    assert torch.equal(system.drift.intra(x0)[:, :2], x0[:, 2:])


def test_cucker_smale_noise_acts_on_velocities_only():
    system = CuckerSmale(sigma=0.3, K=0.0)
    x0 = system.sample_initial(50, gen(14))
    x1 = system.simulate(x0, [0.0, 0.1], seed=0).xs[-1]
    # with K = 0 and Euler steps, positions move exactly with the (noisy) velocities: no noise on x
    assert torch.equal(system.sigma[:2], torch.zeros(2))
    assert (x1[:, 2:] - x0[:, 2:]).abs().max() > 0.05


# -- opinion dynamics ------------------------------------------------------------------------------
def test_noise_free_bounded_confidence_clusters_and_never_widens():
    system = OpinionDynamics(dim=1, radius=1.0, sigma=0.0, width=6.0)
    x0 = system.sample_initial(200, gen(15))
    xs = system.simulate(x0, [0.0, 1.0, 2.0, 4.0, 8.0, 16.0], generator=gen(16), dt=0.05).xs[..., 0]
    spread = xs.max(-1).values - xs.min(-1).values
    assert (spread[1:] <= spread[:-1] + 1e-5).all(), spread
    final = xs[-1].sort().values
    clusters = 1 + int((final.diff() > 0.5).sum())
    assert 2 <= clusters <= 4, final  # bounded confidence: no consensus, a few clusters ≈ 2R apart
    within = max(
        float(c.max() - c.min()) for c in torch.tensor_split(final, torch.nonzero(final.diff() > 0.5).flatten() + 1)
    )
    assert within < 0.05
    # confidence radius larger than the initial range: consensus
    wide = OpinionDynamics(dim=1, radius=8.0, sigma=0.0, width=6.0)
    xs = wide.simulate(x0, [0.0, 16.0], generator=gen(16), dt=0.05).xs[-1, :, 0]
    assert xs.max() - xs.min() < 0.05


# -- Morse aggregation -----------------------------------------------------------------------------
def test_morse_aggregation_contracts_to_a_bounded_swarm_unlike_its_control():
    system = MorseAggregation()
    control = get_system("morse_control")
    x0 = system.sample_initial(150, gen(17))
    xs = system.simulate(x0, [0.0, 2.0, 4.0], generator=gen(18), dt=0.02).xs
    xc = control.simulate(x0, [0.0, 2.0, 4.0], generator=gen(18), dt=0.02).xs
    radius, radius_c = xs.norm(dim=-1).mean(-1), xc.norm(dim=-1).mean(-1)
    assert radius[-1] < 0.6 * radius_c[-1], (radius, radius_c)
    assert xs[-1].norm(dim=-1).max() < system.init_radius
    # short-range repulsion: no collapse to a point
    d = torch.cdist(xs[-1], xs[-1]) + 1e3 * torch.eye(150)
    assert d.min(-1).values.mean() > 0.02 and radius[-1] > 0.3


# -- snapshots ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
def test_snapshots_shapes_times_and_determinism(name):
    times = [0.1, 0.2, 0.35]
    ds = snapshots(name, times, n_per_time=[6, 9, 6], seed=3, dt=0.05)
    d = get_system(name).dim
    assert ds.times.dtype == np.float64 and np.array_equal(ds.times, np.array(times))
    assert [a.shape for a in ds.data] == [(6, d), (9, d), (6, d)]
    assert all(a.dtype == np.float32 and np.isfinite(a).all() for a in ds.data)
    assert len(ds.feature_names) == d and ds.name == get_system(name).name
    again = snapshots(name, times, n_per_time=[6, 9, 6], seed=3, dt=0.05)
    other = snapshots(name, times, n_per_time=[6, 9, 6], seed=4, dt=0.05)
    assert all(np.array_equal(a, b) for a, b in zip(ds.data, again.data))
    assert all(not np.allclose(a, b) for a, b in zip(ds.data, other.data))


def test_snapshots_use_fresh_populations_at_every_time():
    """Noise-free, non-interacting OU: if snapshots shared particles, data[1] would be the exact
    deterministic image e^{−A t} of data[0]. It must not be, yet it follows the right law."""
    system = MeanFieldOU(K=0.0, sigma=0.0, A=0.5, C0=1.0)
    ds = snapshots(system, [0.0, 1.0], n_per_time=500, seed=0)
    image = ds.data[0] * math.exp(-0.5)
    assert not np.allclose(image, ds.data[1], atol=1e-2)
    m, C = system.exact_moments([1.0])
    assert abs(ds.data[1].std(0) - C[0].diagonal().sqrt().numpy()).max() < 0.1


def test_snapshots_population_size_sets_the_interaction():
    """Each time point is simulated at its own observed size N (the interaction depends on N)."""
    system = MeanFieldOU(K=5.0, A=0.0, sigma=0.0, C0=1.0)  # x_i − x̄ contracts, x̄ stays put
    ds = snapshots(system, [0.0, 2.0], n_per_time=[3, 3], seed=1)
    pts = ds.data[1]
    assert np.ptp(pts, axis=0).max() < 1e-3  # its own 3-particle population has collapsed
    assert np.abs(pts.mean(0)).max() > 1e-3  # onto its own (random) mean, not 0


def test_snapshots_reject_bad_times():
    with pytest.raises(ValueError, match="increasing"):
        snapshots("ou", [0.0, 1.0, 0.5], 5, seed=0)
    with pytest.raises(ValueError, match="t0"):
        snapshots("ou", [-1.0, 1.0], 5, seed=0)
    with pytest.raises(ValueError, match="entries"):
        snapshots("ou", [0.0, 1.0], [5, 5, 5], seed=0)


def test_constructor_validation():
    with pytest.raises(ValueError, match="semi-definite"):
        MeanFieldOU(C0=[[1.0, 0.0], [0.0, -1.0]])
    with pytest.raises(ValueError, match="sigma"):
        MeanFieldOU(dim=2, sigma=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="non-negative"):
        NoisyKuramoto(D=-1.0)
    with pytest.raises(ValueError, match=r"\(\.\.\., N, 2\)"):
        NoisyKuramoto().simulate(torch.zeros(5, 1), [0.0, 1.0])


def test_demo_dataset_is_a_small_2d_interacting_system():
    ds = demo_dataset(seed=0)
    assert len(ds.times) == 5 and ds.feature_names == ["x", "y"]
    assert all(a.shape == (300, 2) for a in ds.data)
    spread = [float(np.linalg.norm(a, axis=1).mean()) for a in ds.data]
    assert spread[-1] < 0.6 * spread[0]  # the swarm visibly aggregates
