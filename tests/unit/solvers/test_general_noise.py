"""General (d × m) noise: the solver's g dW, constant noise matrices, the ``affine`` noise model
(config, units, training) and the Kuramoto oscillators integrated on the circle."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mfsde
from mfsde.solvers import AffineNoise, Diffusion, build_noise, sdeint, torchsde_sdeint
from mfsde.systems import get_system, order_parameter

F64 = torch.float64


class DiagAsGeneral(torch.nn.Module):
    """diag(σ(x)) as a (..., N, d, d) matrix, beside the same σ(x) as diagonal noise."""

    def __init__(self, general: bool):
        super().__init__()
        self.general = general
        if general:
            self.noise_dim = 2

    def forward(self, x, t=None):
        s = 0.2 + 0.1 * torch.tanh(x)
        return torch.diag_embed(s) if self.general else s


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(1, 12), batch=st.sampled_from([(), (3,)]))
def test_general_noise_of_a_diagonal_matrix_is_the_diagonal_noise(seed, n, batch):
    """g = diag(σ(x)) as general noise (m = d) draws the same dW and gives the same path, bit for bit
    up to rounding, as σ(x) as diagonal noise; likewise a constant diagonal matrix and its (d,) σ."""
    x0 = torch.randn(*batch, n, 2, generator=torch.Generator().manual_seed(seed), dtype=F64)

    def drift(x, t):
        return -x + x.mean(-2, keepdim=True)

    ts = [0.0, 0.3, 1.0]
    a = sdeint(drift, x0, ts, sigma=Diffusion(DiagAsGeneral(True)), dt=0.1, seed=seed).xs
    b = sdeint(drift, x0, ts, sigma=Diffusion(DiagAsGeneral(False)), dt=0.1, seed=seed).xs
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    m = sdeint(drift, x0, ts, sigma=torch.diag(torch.tensor([0.3, 0.5], dtype=F64)), dt=0.1, seed=seed).xs
    v = sdeint(drift, x0, ts, sigma=torch.tensor([0.3, 0.5], dtype=F64), dt=0.1, seed=seed).xs
    torch.testing.assert_close(m, v, rtol=0, atol=1e-12)


@pytest.mark.parametrize("solver", ["euler_maruyama", "heun"])
def test_constant_noise_matrix_gives_its_covariance(solver):
    """dx = G dW with G (d × m): x_T − x_0 ~ N(0, G Gᵀ T) (m = 3 Brownian motions into d = 2)."""
    G = torch.tensor([[0.5, 0.2, 0.0], [0.3, -0.4, 0.6]], dtype=F64)
    x0 = torch.zeros(20000, 2, dtype=F64)
    xs = sdeint(lambda x, t: torch.zeros_like(x), x0, [0.0, 2.0], sigma=G, dt=0.25, seed=0, solver=solver).xs
    cov = torch.cov((xs[-1] - xs[0]).T)
    torch.testing.assert_close(cov, 2.0 * G @ G.T, rtol=0, atol=0.03)


def test_kuramoto_integrated_on_the_circle_matches_its_angles():
    """The embedded Kuramoto SDE, integrated with its rank-one noise √(2D) J y (general noise,
    d = 2, m = 1), has the order parameter of the angle integration (exact in law)."""
    system = get_system("kuramoto")
    x0 = system.sample_initial(1000, generator=torch.Generator().manual_seed(0), batch=(4,), dtype=F64)
    ts = [0.0, 1.0, 2.0]
    angles = system.simulate(x0, ts, seed=1, dt=0.005).xs
    embedded = sdeint(system.drift, x0, ts, sigma=system.diffusion(), dt=0.005, seed=2).xs
    r_a = order_parameter(angles).mean(-1)
    r_e = order_parameter(torch.nn.functional.normalize(embedded, dim=-1)).mean(-1)
    assert float(r_a[-1] - r_a[0]) > 0.1  # it synchronises
    torch.testing.assert_close(r_e, r_a, rtol=0, atol=0.02)
    assert (
        float((embedded[-1].norm(dim=-1) - 1).abs().mean()) < 0.1
    )  # it stays near the circle (Euler–Maruyama: O(√h) off it)
    # diagonal noise of the same size leaves the circle: what a diagonal model cannot help
    diag = sdeint(system.drift, x0, ts, sigma=system.sigma, dt=0.005, seed=2).xs
    assert float((diag[-1].norm(dim=-1) - 1).abs().mean()) > 0.2


def test_affine_noise_in_data_units_converts_to_model_units():
    """g_model(z) = S⁻¹ g_data(S z + loc) √τ for the fitted scale, whatever B, A, loc, s, τ."""
    gen = torch.Generator().manual_seed(3)
    d, m = 3, 2
    bias, slope = torch.randn(d, m, generator=gen), torch.randn(d, m, d, generator=gen)
    data = AffineNoise(d, m, bias.tolist(), slope.tolist())
    model = AffineNoise(d, m, bias.tolist(), slope.tolist())
    scale = mfsde.model.DataScale(d)
    scale.loc.copy_(torch.tensor([1.0, -2.0, 0.5]))
    scale.scale.copy_(torch.tensor([2.0, 0.5, 3.0]))
    scale.time_unit.fill_(4.0)
    model.to_model_units_(scale)
    z = torch.randn(5, 7, d, generator=gen)
    expect = data(scale.decode(z)) / scale.scale[:, None] * 2.0
    torch.testing.assert_close(model(z), expect, rtol=1e-5, atol=1e-5)


def test_model_with_the_kuramoto_noise_has_the_true_noise_after_scaling():
    """``system.noise_config()`` gives a trained model the system's own noise: in data units the
    model's g equals √(2D) J y at observed cells, once the trainer has fitted the scale."""
    from mfsde.systems import snapshots as snapshot_dataset
    from mfsde.training import Trainer

    system = get_system("kuramoto")
    snaps = snapshot_dataset(system, [0.0, 1.0, 2.0], n_per_time=200, seed=0)
    cfg = mfsde.preset("ito", dim=2).override(**system.noise_config(), **{"train.n_particles": 32})
    tr = Trainer(cfg, snaps, "interpolate:1")
    g = tr.model.diffusion
    assert g.kind == "general" and g.noise_dim == 1
    y = torch.as_tensor(snaps.data[2][:50], dtype=torch.float32)
    s, tau = tr.model.scale.scale, float(tr.model.scale.time_unit)
    got = g(tr.model.scale.encode(y)) * s[:, None] / math.sqrt(tau)
    torch.testing.assert_close(got, system.embedded_noise(y.double()).unsqueeze(-1).float(), rtol=1e-4, atol=1e-5)


def test_learned_affine_noise_trains_and_resumes(tmp_path):
    """``model.noise = affine`` with ``learn_sigma``: B and A are parameters in σ's step-size group,
    they move, the config round-trips, and a resumed run is bit-identical."""
    from mfsde.systems import snapshots as snapshot_dataset
    from mfsde.training import Trainer, fit

    system = get_system("ou", dim=2)
    snaps = snapshot_dataset(system, [0.0, 0.5, 1.0], n_per_time=100, seed=0)
    cfg = mfsde.preset("ito", dim=2).override(
        **{
            "model.noise": {"name": "affine", "rank": 1},
            "model.learn_sigma": True,
            "train.sigma_lr": 0.01,
            "train.n_particles": 32,
            "train.iterations": 4,
            "train.checkpoint_every": 2,
            "train.seed": 1,
        }
    )
    assert mfsde.Config.from_dict(cfg.to_dict()).model.noise == cfg.model.noise
    full = fit(cfg, snaps, "interpolate:1", out_dir=tmp_path / "a", progress=False)
    start = mfsde.model.build_model(cfg).diffusion.fn
    assert not torch.equal(full.model.diffusion.fn.slope, start.slope)
    names = [n for n, p in full.model.named_parameters() if n.startswith("diffusion.")]
    assert sorted(names) == ["diffusion.fn.bias", "diffusion.fn.slope"]
    tr = Trainer(cfg, snaps, "interpolate:1")
    params = {id(p) for n, p in tr.model.named_parameters() if n.startswith("diffusion.")}
    groups = [g for g in tr.optimiser.param_groups if {id(p) for p in g["params"]} & params]
    assert len(groups) == 1 and {id(p) for p in groups[0]["params"]} == params and groups[0]["lr"] == 0.01
    half = fit(cfg.override(**{"train.iterations": 2}), snaps, "interpolate:1", out_dir=tmp_path / "b", progress=False)
    assert half.iteration == 2
    resumed = fit(cfg, snaps, "interpolate:1", resume=tmp_path / "b", progress=False)
    for (n, p), q in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(p, q), n


def test_default_noise_is_the_diagonal_sigma():
    cfg = mfsde.preset("scimf", dim=3)
    assert cfg.model.noise.name == "diagonal"
    d = mfsde.model.build_model(cfg).diffusion
    assert d.kind == "scalar" and float(d.constant()) == pytest.approx(cfg.model.sigma)
    e = build_noise("affine", 3, 0.2)  # default B = σ I, A = 0: the diagonal noise as a matrix
    x = torch.randn(4, 3)
    torch.testing.assert_close(e(x), 0.2 * torch.eye(3).expand(4, 3, 3))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Diffusion(torch.ones(2, 3), learnable=True), "learnable=True needs a number"),
        (lambda: Diffusion(torch.ones(2, 3, 1)), "sigma must be a number"),
        (lambda: Diffusion(torch.tensor([[1.0, float("nan")]])), "NaN"),
        (lambda: Diffusion(lambda x, t: x, noise_dim=0), "noise_dim must be a positive int"),
        (lambda: Diffusion(0.1, noise_dim=2), "noise_dim is for"),
        (lambda: Diffusion(torch.ones(2, 3), noise_dim=2), "3 columns"),
        (lambda: build_noise("affine", 2, 0.1, rank=0), "rank must be a positive int"),
        (lambda: build_noise("affine", 2, 0.1, slope=[[1.0]]), r"slope must have shape \(2, 2, 2\)"),
    ],
)
def test_bad_noise_is_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_general_noise_of_the_wrong_shape_and_where_it_cannot_go():
    x0 = torch.zeros(5, 2)
    bad = Diffusion(lambda x, t: torch.ones(*x.shape, 2), noise_dim=1)
    with pytest.raises(ValueError, match=r"must have shape \(5, 2, 1\)"):
        sdeint(lambda x, t: x, x0, [0.0, 1.0], sigma=bad, seed=0)
    general = Diffusion(lambda x, t: torch.ones(*x.shape, 1), noise_dim=1)
    with pytest.raises(ValueError, match="heun"):
        sdeint(lambda x, t: x, x0, [0.0, 1.0], sigma=general, seed=0, solver="heun")
    with pytest.raises(ValueError, match="diagonal noise only"):
        torchsde_sdeint(lambda x, t: x, x0, [0.0, 1.0], sigma=general)
    with pytest.raises(ValueError, match="3 rows but particles have d = 2"):
        sdeint(lambda x, t: x, x0, [0.0, 1.0], sigma=torch.ones(3, 1), seed=0)
    with pytest.raises(KeyError, match="unknown noise model 'bogus'"):
        mfsde.preset("ito", dim=2).override(**{"model.noise": "bogus"})


def test_a_loaded_run_has_the_averaged_learned_noise(tmp_path):
    """With ``train.ema`` the result's noise is the averaged one, and loading the run gives the same
    (the noise module is registered once, so its averaged state is not overwritten by a raw copy)."""
    from mfsde.systems import snapshots as snapshot_dataset

    snaps = snapshot_dataset(get_system("ou", dim=2), [0.0, 0.5, 1.0], n_per_time=100, seed=0)
    cfg = mfsde.preset("ito", dim=2).override(
        **{
            "model.noise": {"name": "affine", "rank": 2},
            "model.learn_sigma": True,
            "train.sigma_lr": 0.05,
            "train.ema": 0.5,
            "train.n_particles": 32,
            "train.iterations": 5,
        }
    )
    res = mfsde.fit(cfg, snaps, "interpolate:1", out_dir=tmp_path / "run", progress=False)
    loaded, _ = mfsde.load_run(tmp_path / "run")
    for name in ("bias", "slope"):
        torch.testing.assert_close(
            getattr(loaded.diffusion.fn, name), getattr(res.model.diffusion.fn, name), rtol=0, atol=0
        )
    assert [k for k in loaded.state_dict() if k.startswith("diffusion.")] == ["diffusion.fn.bias", "diffusion.fn.slope"]


def test_general_noise_with_batches_random_batch_and_recompute():
    """m ≠ d with a leading batch: recomputation in blocks (checkpointing) replays the same path and
    gradients, and the random batch method takes general noise too."""
    noise = AffineNoise(
        2,
        3,
        slope=(0.1 * torch.randn(2, 3, 2, generator=torch.Generator().manual_seed(0))).tolist(),
        sigma=0.2,
        learnable=True,
    )
    diff = Diffusion(noise)
    x0 = torch.randn(2, 9, 2, generator=torch.Generator().manual_seed(1))

    def drift(x, t):
        return -x + x.mean(-2, keepdim=True)

    a = sdeint(drift, x0, [0.0, 1.0], sigma=diff, dt=0.1, seed=3)
    b = sdeint(drift, x0, [0.0, 1.0], sigma=diff, dt=0.1, seed=3, recompute_every=3)
    torch.testing.assert_close(a.xs, b.xs, rtol=0, atol=0)
    ga = torch.autograd.grad(a.xs[-1].pow(2).sum(), noise.slope)[0]
    gb = torch.autograd.grad(b.xs[-1].pow(2).sum(), noise.slope)[0]
    torch.testing.assert_close(ga, gb)
    c = sdeint(drift, x0, [0.0, 1.0], sigma=diff, dt=0.1, seed=3, random_batch=3).xs
    assert c.shape == (2, 2, 9, 2) and torch.isfinite(c).all()


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"model.noise": {"name": "affine", "sigma": 0.3}}, "may not set dim, sigma or learnable"),
        ({"model.noise": "affine", "model.solver": "heun"}, "'heun' takes constant noise only"),
    ],
)
def test_bad_noise_config_is_refused(overrides, match):
    with pytest.raises(ValueError, match=match):
        mfsde.preset("ito", dim=2).override(**overrides)


def test_more_bad_noise_input():
    with pytest.raises(ValueError, match="noise_dim must be a positive int"):
        Diffusion(torch.ones(2, 2), noise_dim=2.7)
    with pytest.raises(ValueError, match="sigma must be finite and non-negative"):
        build_noise("affine", 2, float("nan"))
    with pytest.raises(ValueError, match=r"bm must return Brownian increments of shape \(4, 1\)"):
        sdeint(lambda x, t: x, torch.zeros(4, 2), [0.0, 1.0], sigma=torch.ones(2, 1), bm=lambda a, b: torch.zeros(4, 2))
