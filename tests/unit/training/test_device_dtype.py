"""Device and dtype propagation: float64 in → float64 out, outputs on the input's device.

Parametrised over ``cpu`` and, when a GPU is present, ``cuda``.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

import mfsde
from mfsde.data import from_arrays
from mfsde.drifts import INTRA_DRIFTS, build_intra
from mfsde.interactions import INTERACTIONS, build_interaction
from mfsde.losses import MMDLoss, SinkhornLoss, w1, w2
from mfsde.solvers import sdeint
from mfsde.training import Trainer

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
F64 = torch.float64
D = 4


@pytest.fixture
def default_float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(F64)
    yield
    torch.set_default_dtype(old)


def _x(*shape, device, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64).to(device)


def _check(t: torch.Tensor, device):
    assert t.dtype == F64, t.dtype
    assert t.device.type == torch.device(device).type, t.device


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", INTERACTIONS.names())
def test_interaction_dtype_and_device(name, device):
    k = build_interaction(name, dim=D, **({"chunk_size": 3} if name != "none" else {})).double().to(device)
    x = _x(2, 7, D, device=device).requires_grad_(True)
    out = k(x)
    _check(out, device)
    _check(k.pair_weights(x), device)
    _check(k.forward_rows(x, slice(2, 5)), device)
    if name != "none":  # exact zeros: no graph
        out.square().sum().backward()  # chunked backward (recomputed blocks) keeps dtype and device
        _check(x.grad, device)
    for p in k.parameters():
        _check(p, device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", INTRA_DRIFTS.names())
def test_intra_drift_dtype_and_device(name, device):
    f = build_intra(name, dim=D, **({"width": 8} if name in ("mlp", "potential") else {})).double().to(device)
    _check(f(_x(3, 5, D, device=device)), device)
    g = build_intra(name, dim=D, time_input=True, **({"width": 8} if name in ("mlp", "potential") else {}))
    _check(g.double().to(device)(_x(5, D, device=device), 0.3), device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("method", ["euler_maruyama", "heun"])
@pytest.mark.parametrize("options", [{}, {"random_batch": 3, "recompute_every": 2}], ids=["plain", "rb-ckpt"])
def test_solver_dtype_and_device(method, options, device):
    drift = (
        mfsde.drifts.MeanFieldDrift(build_intra("mlp", dim=D, width=8), build_interaction("rbf", dim=D))
        .double()
        .to(device)
    )
    x0 = _x(2, 7, D, device=device).requires_grad_(True)
    sigma = torch.tensor([0.1, 0.2, 0.3, 0.4], device=device)  # float32 sigma: the state stays float64
    sol = sdeint(drift, x0, [0.0, 0.25, 0.5], sigma=sigma, dt=0.1, solver=method, seed=0, energy=True, **options)
    for t in (sol.xs, sol.energy, sol.ts):
        _check(t, device)
    (sol.xs[-1].sum() + sol.energy[-1].sum()).backward()
    _check(x0.grad, device)


@pytest.mark.parametrize("device", DEVICES)
def test_losses_dtype_and_device(device):
    x, y = _x(2, 30, D, device=device), _x(40, D, device=device, seed=1)
    _check(SinkhornLoss(blur=0.3, n_targets=20)(x, y), device)
    _check(MMDLoss()(x, y), device)
    _check(MMDLoss("gaussian")(x[0], y), device)
    assert isinstance(w1(x[0], y), float) and isinstance(w2(x[0], y), float)
    assert w2(x[0], y) > 0


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("preset", list(mfsde.config.PRESETS))
@pytest.mark.parametrize("how", ["default_dtype", "double"])
def test_model_from_every_preset(preset, how, device, request):
    if how == "default_dtype":
        request.getfixturevalue("default_float64")
        model = mfsde.model.build_model(mfsde.preset(preset, dim=D)).to(device)
    else:
        model = mfsde.model.build_model(mfsde.preset(preset, dim=D)).double().to(device)
    for t in [*model.parameters(), *model.buffers()]:
        if t.is_floating_point():
            _check(t, device)
    sol = model(_x(2, 6, D, device=device), [0.0, 0.2], seed=0, energy=True)
    _check(sol.xs, device)
    _check(sol.energy, device)
    _check(model.velocity(_x(6, D, device=device)), device)


@pytest.mark.parametrize("device", DEVICES)
def test_trainer_step_in_float64(device, default_float64):
    rng = np.random.default_rng(0)
    snaps = from_arrays([rng.normal(size=(20, D)) + k for k in range(3)], times=[0.0, 1.0, 2.0])
    cfg = mfsde.preset("scimf", dim=D).override(
        **{
            "model.intra.width": 8,
            "model.inter.heads": 1,
            "model.dt": 0.5,
            "train.n_particles": 16,
            "train.n_targets": 16,
            "train.iterations": 1,
        }
    )
    trainer = Trainer(cfg, snaps, SimpleNamespace(name="t", train=[0, 1, 2], heldout=[]), device=device)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    rec = trainer.step()
    assert np.isfinite(rec["loss"])
    for p, _ in zip(trainer.model.parameters(), before):
        _check(p, device)
        _check(p.grad, device)
    assert any(not torch.equal(p, q) for p, q in zip(trainer.model.parameters(), before))
