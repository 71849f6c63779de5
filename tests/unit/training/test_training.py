"""mfsde.training.fit and mfsde.training: learning, determinism, bit-identical resume, run files."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import load_benchmark

import mfsde
from mfsde.config import Config
from mfsde.data import Task, from_arrays, get_task
from mfsde.losses import path_energy
from mfsde.training import (
    FitResult,
    Trainer,
    fit,
    load_checkpoint,
    load_run,
    package_versions,
    read_history,
    seed_everything,
)
from mfsde.training._trainer import default_simulate

D = 2


def tiny_config(preset: str = "scimf", **overrides) -> Config:
    base = {
        "model.intra.width": 16,
        "model.inter.heads": 1,
        "model.inter.dropout": 0.1,  # dropout in the attention: the global RNG matters
        "model.dt": 0.25,
        "loss.fit.blur": 0.3,
        "train.n_particles": 32,
        "train.n_targets": 48,
        "train.iterations": 6,
        "train.lr": 1e-2,
        "train.clip_grad_norm": 1.0,
    }
    if mfsde.preset(preset, dim=D).model.inter.name != "attention":
        del base["model.inter.heads"], base["model.inter.dropout"]
    base.update(overrides)
    return mfsde.preset(preset, dim=D).override(**base)


def shifted_snapshots(n: int = 80, shift: float = 1.5, seed: int = 0):
    """Cells drifting along x by ``shift`` per time unit: a drift the model can learn."""
    rng = np.random.default_rng(seed)
    arrays = [(0.3 * rng.normal(size=(n + 7 * k, D)) + np.array([shift * k, 0.0])).astype(np.float32) for k in range(4)]
    return from_arrays(arrays, times=[0.0, 1.0, 2.0, 3.0])


def task(train=(0, 1, 3), heldout=(2,), name="t"):
    return SimpleNamespace(name=name, train=list(train), heldout=list(heldout))


def strip(history):
    """History without wall and CPU times (the only fields allowed to differ between identical runs)."""
    return [{k: v for k, v in rec.items() if k not in ("seconds", "cpu_seconds")} for rec in history]


def same_params(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def snaps():
    return shifted_snapshots()


def test_fit_learns_a_shift(snaps):
    cfg = tiny_config("ito", **{"train.iterations": 15, "train.lr": 5e-2, "train.lr_step": 1000})
    res = fit(cfg, snaps, task(), progress=False)
    assert isinstance(res, FitResult) and res.iteration == 15 and len(res.history) == 15
    fits, losses = [h["fit"] for h in res.history], [h["loss"] for h in res.history]
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:3]), losses
    assert np.mean(fits[-5:]) < 0.25 * np.mean(fits[:3]), fits
    rec = res.history[0]
    assert {"iteration", "loss", "fit", "energy", "fit@1", "fit@3", "lr", "grad_norm", "seconds"} <= set(rec)
    assert "fit@2" not in rec  # held-out time never supervised
    assert rec["loss"] == pytest.approx(rec["fit"] + cfg.loss.energy_weight * rec["energy"], rel=1e-5)
    assert rec["fit"] == pytest.approx((rec["fit@1"] + rec["fit@3"]) / 2, rel=1e-5)
    assert not res.model.training


def test_same_seed_same_history_different_seed_differs(snaps):
    cfg = tiny_config()
    a = fit(cfg, snaps, task(), progress=False)
    b = fit(cfg, snaps, task(), progress=False)
    assert strip(a.history) == strip(b.history)
    assert same_params(a.model, b.model)
    c = fit(cfg.override(**{"train.seed": 1}), snaps, task(), progress=False)
    assert strip(c.history) != strip(a.history)


def test_heldout_data_are_never_read(snaps):
    """Replacing the held-out snapshot changes nothing in training."""
    other = from_arrays([a if k != 2 else a * 0 + 100.0 for k, a in enumerate(snaps.data)], times=snaps.times)
    cfg = tiny_config(**{"train.iterations": 3})
    assert strip(fit(cfg, snaps, task(), progress=False).history) == strip(
        fit(cfg, other, task(), progress=False).history
    )


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"model.learn_sigma": True, "train.sigma_lr": 0.05},
        {"model.learn_sigma": True, "train.sigma_lr": 0.05, "train.inter_lr": 0.03},
        {"train.random_batch": 8},
        {"train.starts": "every"},
        {"train.starts": "mixed"},
    ],
    ids=["default", "learned_sigma", "three_step_sizes", "random_batch", "starts_every", "starts_mixed"],
)
def test_resume_is_bit_identical(snaps, tmp_path, extra):
    cfg = tiny_config(**{"train.iterations": 6, "train.lr_step": 2, "train.lr_gamma": 0.5, **extra})
    full = fit(cfg, snaps, task(), out_dir=tmp_path / "full", progress=False)
    half = fit(cfg.override(**{"train.iterations": 3}), snaps, task(), out_dir=tmp_path / "half", progress=False)
    assert half.iteration == 3
    resumed = fit(cfg, snaps, task(), resume=tmp_path / "half" / "checkpoint.pt", progress=False)
    assert resumed.out_dir == tmp_path / "half"
    assert strip(resumed.history) == strip(full.history)
    assert same_params(resumed.model, full.model)
    assert [h["iteration"] for h in read_history(tmp_path / "half")] == list(range(1, 7))
    assert load_checkpoint(tmp_path / "half")["iteration"] == 6
    # the learning-rate schedule went on where it stopped
    assert [h["lr"] for h in resumed.history] == [h["lr"] for h in full.history]
    assert resumed.history[-1]["lr"] < resumed.history[0]["lr"]


def test_inter_lr_is_the_interaction_kernels_own_step_size(snaps):
    """Adam's first step moves every parameter with a non-zero gradient by its group's step size:
    the kernel's by train.inter_lr, every other by train.lr."""
    cfg = tiny_config(
        "radial",
        **{"train.iterations": 1, "train.lr": 1e-3, "train.inter_lr": 0.05, "train.lr_step": 1000, "train.ema": 0.0},
    )  # the trained weights, not their average
    seed_everything(cfg.train.seed)  # the initial parameters fit() starts from
    start = mfsde.model.build_model(cfg)
    res = fit(cfg, snaps, task(), progress=False)
    before, after = dict(start.named_parameters()), dict(res.model.named_parameters())
    moved = {n: (after[n] - before[n]).abs().max().item() for n in after}
    assert moved["drift.inter.nodes"] == pytest.approx(0.05, rel=1e-3)
    assert max(v for n, v in moved.items() if not n.startswith("drift.inter.")) == pytest.approx(1e-3, rel=1e-3)


class _FixedMeanPull(mfsde.interactions.Interaction):
    """A kernel without trainable parameters: f_i = mean of the others − x_i."""

    def forward(self, x, t=None):
        x = self.check(x)
        n = x.shape[-2]
        return (x.sum(-2, keepdim=True) - x) / (n - 1) - x if n > 1 else torch.zeros_like(x)


def test_inter_lr_with_a_parameter_free_kernel_is_refused(snaps, registry_cleanup):
    """train.inter_lr must act on something: a kernel without trainable parameters (a plugin the
    config check cannot know about) makes it an error, not a silently ignored setting."""
    mfsde.interactions.INTERACTIONS.register("test_fixed_pull", _FixedMeanPull)
    cfg = tiny_config("ito", **{"model.inter": {"name": "test_fixed_pull"}, "train.iterations": 1})
    assert fit(cfg, snaps, task(), progress=False).iteration == 1  # trains without inter_lr
    with pytest.raises(
        ValueError, match=r"train.inter_lr is set but no trainable parameter under .drift.inter. takes it"
    ):
        fit(cfg.override(**{"train.inter_lr": 0.1}), snaps, task(), progress=False)


class _OrderedPull(_FixedMeanPull):
    """Declares itself not permutation-equivariant (random groups would reorder its input)."""

    equivariant = False


def test_random_batch_with_a_non_equivariant_kernel_is_refused(snaps, registry_cleanup):
    mfsde.interactions.INTERACTIONS.register("test_ordered_pull", _OrderedPull)
    mfsde.interactions.INTERACTIONS.register("test_fixed_pull", _FixedMeanPull)
    base = {"train.iterations": 1, "train.random_batch": 8}
    assert (
        fit(
            tiny_config("ito", **{"model.inter": {"name": "test_fixed_pull"}, **base}), snaps, task(), progress=False
        ).iteration
        == 1
    )
    with pytest.raises(
        ValueError,
        match=r"train.random_batch needs a permutation-equivariant kernel; "
        r"'test_ordered_pull' is not",
    ):
        fit(tiny_config("ito", **{"model.inter": {"name": "test_ordered_pull"}, **base}), snaps, task(), progress=False)


def test_resume_from_periodic_checkpoint(snaps, tmp_path):
    """A run stopped (by its callback) after a periodic checkpoint resumes bit-identically."""
    cfg = tiny_config(**{"train.iterations": 5, "train.checkpoint_every": 2})
    full = fit(cfg, snaps, task(), progress=False)
    seen = []
    stopped = fit(
        cfg,
        snaps,
        task(),
        out_dir=tmp_path,
        progress=False,
        callback=lambda rec, model: seen.append(rec["iteration"]) or rec["iteration"] == 2,
    )
    assert stopped.iteration == 2 and seen == [1, 2]
    resumed = fit(cfg, snaps, task(), resume=tmp_path, progress=False)
    assert strip(resumed.history) == strip(full.history)
    assert same_params(resumed.model, full.model)


def test_resume_refuses_a_different_config(snaps, tmp_path):
    cfg = tiny_config(**{"train.iterations": 2})
    fit(cfg, snaps, task(), out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="train.lr"):
        fit(cfg.override(**{"train.lr": 0.5}), snaps, task(), resume=tmp_path, progress=False)
    with pytest.raises(ValueError, match="task"):
        fit(cfg, snaps, task(train=(0, 1), heldout=(2, 3)), resume=tmp_path, progress=False)


def test_run_directory_files(snaps, tmp_path):
    cfg = tiny_config(**{"train.iterations": 4, "train.checkpoint_every": 2})
    res = fit(cfg, snaps, task(), out_dir=tmp_path, progress=False)
    for name in ("config.json", "meta.json", "history.jsonl", "checkpoint.pt"):
        assert (tmp_path / name).is_file(), name
    assert Config.load(tmp_path / "config.json").to_dict() == cfg.to_dict()
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["seed"] == 0 and meta["task"]["heldout"] == [2]
    assert {"torch", "torchsde", "geomloss", "POT", "numpy", "mfsde"} <= set(meta["packages"])
    assert meta["packages"]["torch"] == package_versions()["torch"] and "python" in meta and "start_time" in meta
    hist = read_history(tmp_path)
    assert strip(hist) == strip(res.history)
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert {"model", "optimiser", "scheduler", "config", "iteration", "rng", "history"} <= set(ckpt)
    assert {"torch", "generator", "numpy", "python"} <= set(ckpt["rng"])
    model, config = load_run(tmp_path)
    assert config.to_dict() == cfg.to_dict() and same_params(model, res.model)


def test_fewer_cells_than_particles_draws_with_replacement():
    s = shifted_snapshots(n=10)
    res = fit(tiny_config(**{"train.iterations": 2, "train.n_targets": None}), s, task(), progress=False)
    assert np.isfinite([h["loss"] for h in res.history]).all()


@pytest.mark.parametrize(
    "bad_task, match",
    [
        (task(train=(0, 1, 7), heldout=(2,)), "out of range"),
        (task(train=(0, 1), heldout=(4,)), "out of range"),
        (task(train=(1, 3), heldout=(2,)), "index 0"),
        (task(train=(0,), heldout=(1, 2)), "no training time"),
        (task(train=(0, 1, 2), heldout=(2,)), "both train and held out"),
    ],
)
def test_bad_task_raises(snaps, bad_task, match):
    with pytest.raises(ValueError, match=match):
        fit(tiny_config(), snaps, bad_task, progress=False)


def test_real_task_objects_and_names(snaps):
    cfg = tiny_config(**{"train.iterations": 2})
    named = fit(cfg, snaps, "interpolate:2", progress=False)
    explicit = fit(cfg, snaps, get_task("interpolate:2", 4), progress=False)
    assert strip(named.history) == strip(explicit.history)
    assert "fit@2" not in named.history[0]
    with pytest.raises(ValueError, match="out of range"):
        fit(cfg, snaps, Task("too-far", train=[0, 1], heldout=[6]), progress=False)


def test_trainers_stepped_in_turn_match_separate_runs(snaps):
    """Each Trainer keeps its own RNG streams (dropout included), so interleaving is harmless."""
    c0, c1 = tiny_config(**{"train.iterations": 3}), tiny_config(**{"train.iterations": 3, "train.seed": 1})
    a, b = Trainer(c0, snaps, task()), Trainer(c1, snaps, task())
    for _ in range(3):
        a.step()
        b.step()
    assert strip(a.history) == strip(fit(c0, snaps, task(), progress=False).history)
    assert strip(b.history) == strip(fit(c1, snaps, task(), progress=False).history)


def test_benchmark_paper_recipe_computes_the_same_objective():
    """benchmarks/train_speed.py's torchsde path (energy as an extra state column) gives the same
    particles and path energy as mfsde's solver on the same Brownian path."""

    import torchsde

    bench = load_benchmark("train_speed")
    torch.manual_seed(0)
    model = mfsde.model.build_model(tiny_config("scimf", **{"model.dt": 0.25}))
    model.eval()
    x0, ts = torch.randn(8, D), torch.tensor([0.0, 0.5, 1.0])
    bi = torchsde.BrownianInterval(t0=0.0, t1=1.0, size=(1, 8 * (D + 1)), entropy=3)
    paper = bench.torchsde_simulate(model, x0, ts, None, bm=bi)
    own = model(x0, ts, bm=lambda a, b: bi(a, b).reshape(8, D + 1)[:, :D], energy=True)
    assert torch.allclose(paper.xs, own.xs, atol=1e-5)
    assert torch.allclose(paper.energy, own.energy, rtol=1e-5)
    assert own.energy[-1] > 0


def test_dim_mismatch_raises(snaps):
    cfg = mfsde.preset("ito", dim=3).override(**{"model.intra.width": 8})
    with pytest.raises(ValueError, match="dim"):
        fit(cfg, snaps, task(), progress=False)


def test_populations_resume_bit_identically_and_differ_from_one(snaps, tmp_path):
    """Two populations per iteration (each with its own streams): a different objective from one
    population, seeded and resumable bit-identically like it."""
    cfg = tiny_config(**{"train.iterations": 4, "train.replicas": 2})
    full = fit(cfg, snaps, task(), out_dir=tmp_path / "full", progress=False)
    one = fit(cfg.override(**{"train.replicas": 1}), snaps, task(), progress=False)
    assert full.history[0]["loss"] != one.history[0]["loss"]
    fit(cfg.override(**{"train.iterations": 2}), snaps, task(), out_dir=tmp_path / "half", progress=False)
    resumed = fit(cfg, snaps, task(), resume=tmp_path / "half", progress=False)
    assert strip(resumed.history) == strip(full.history)
    assert same_params(resumed.model, full.model)
    assert len(load_checkpoint(tmp_path / "full")["rng"]["replicas"]) == 2
    with pytest.raises(ValueError, match="train.replicas"):
        fit(cfg.override(**{"train.replicas": 3}), snaps, task(), resume=tmp_path / "half", progress=False)


def test_checkpoint_without_replicas_resumes(snaps, tmp_path):
    """A checkpoint written before train.replicas existed (no such config key, no
    rng["replicas"]) still resumes bit-identically."""
    cfg = tiny_config(**{"train.iterations": 4})
    full = fit(cfg, snaps, task(), progress=False)
    fit(cfg.override(**{"train.iterations": 2}), snaps, task(), out_dir=tmp_path, progress=False)
    ckpt = load_checkpoint(tmp_path)
    del ckpt["config"]["train"]["replicas"], ckpt["rng"]["replicas"]
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    resumed = fit(cfg, snaps, task(), resume=tmp_path, progress=False)
    assert strip(resumed.history) == strip(full.history)
    assert same_params(resumed.model, full.model)


def test_non_finite_loss_raises(snaps):
    cfg = tiny_config("ito", **{"train.iterations": 1, "loss.fit_weight": float("nan")})
    with pytest.raises(FloatingPointError, match="non-finite"):
        fit(cfg, snaps, task(), progress=False)


def test_parameter_average_follows_its_formula():
    from mfsde.training import ParameterAverage

    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    avg = ParameterAverage([p], decay=0.9)
    expect = p.detach().clone()
    for i in range(1, 40):
        with torch.no_grad():
            p.add_(torch.tensor([0.5, 0.25]))
        avg.update(i)
        d = min(0.9, i / (9 + i))
        expect = d * expect + (1 - d) * p.detach()
        torch.testing.assert_close(avg.values[0], expect)
    raw = p.detach().clone()
    with avg.applied():
        torch.testing.assert_close(p.detach(), expect)
    torch.testing.assert_close(p.detach(), raw)


def test_ema_model_is_the_average_and_resumes_bit_identically(snaps, tmp_path):
    cfg = tiny_config(**{"train.iterations": 6, "train.ema": 0.9})
    plain = fit(cfg.override(**{"train.ema": 0.0}), snaps, task(), progress=False)
    full = fit(cfg, snaps, task(), out_dir=tmp_path / "full", progress=False)
    assert strip(full.history) == strip(plain.history)  # training itself is unchanged
    assert not same_params(full.model, plain.model)  # the result is the averaged weights
    ckpt = load_checkpoint(tmp_path / "full")
    assert all(torch.equal(full.model.state_dict()[k], v) for k, v in ckpt["model_averaged"].items())
    assert all(torch.equal(plain.model.state_dict()[k], v) for k, v in ckpt["model"].items())
    assert same_params(load_run(tmp_path / "full")[0], full.model)
    fit(cfg.override(**{"train.iterations": 3}), snaps, task(), out_dir=tmp_path / "half", progress=False)
    resumed = fit(cfg, snaps, task(), resume=tmp_path / "half", progress=False)
    assert same_params(resumed.model, full.model)
    with pytest.raises(ValueError, match=r"train.ema must be a number in \[0, 1\)"):
        cfg.override(**{"train.ema": 1.0})


def test_random_batch_trains_on_random_groups_and_predicts_exactly(snaps):
    """``train.random_batch``: the training simulation is sdeint's random batch method under the
    population's own generator (the same draws reproduce it); under the same Brownian path the
    groups change it; the trained model predicts with every pair (nothing of the groups stays in it)."""
    assert mfsde.preset("pairwise_mlp", dim=D).train.random_batch == 16  # the preset trains in groups of 16
    cfg = tiny_config(
        "pairwise_mlp", **{"train.iterations": 3, "model.inter.zero_init": False, "train.random_batch": 8}
    )
    tr = Trainer(cfg, snaps, task())
    x0, ts = tr.series[0].data[0][:32], tr.series[0].ts
    sim = tr.simulate(tr.model, x0, ts, torch.Generator().manual_seed(5))
    same = tr.model(x0, ts, generator=torch.Generator().manual_seed(5), energy=True, random_batch=8)
    torch.testing.assert_close(sim.xs, same.xs, rtol=0, atol=0)
    torch.testing.assert_close(sim.energy, same.energy, rtol=0, atol=0)
    dw = 0.1 * torch.randn(200, 32, D, generator=torch.Generator().manual_seed(6), dtype=x0.dtype)
    steps = iter(dw)

    def path(*_):
        return next(steps)

    grouped = tr.model(x0, ts, bm=path, generator=torch.Generator().manual_seed(7), random_batch=8).xs
    steps = iter(dw)
    exact = tr.model(x0, ts, bm=path).xs
    assert not torch.allclose(grouped[-1], exact[-1], atol=1e-4)  # the groups, not the noise, differ
    with pytest.raises(ValueError, match="train.random_batch is applied by the default simulation only"):
        Trainer(cfg, snaps, task(), simulate=lambda m, x0, ts, g: m(x0, ts))
    res = fit(cfg, snaps, task(), progress=False)
    fresh = mfsde.model.build_model(cfg)
    fresh.load_state_dict(res.model.state_dict())
    fresh.eval()
    torch.testing.assert_close(res.model(x0, ts, seed=1).xs, fresh(x0, ts, seed=1).xs, rtol=0, atol=0)


# -- loss.tail_weight: the least-action prior over one mean gap past the last training time --------


def _trainer(**over):
    return Trainer(tiny_config("ito", **over), shifted_snapshots(), task(train=(0, 1, 2), heldout=(3,)))


def test_the_tail_simulates_one_mean_gap_further_and_adds_its_energy_per_unit_time():
    seen = {}

    def spy(model, x0, ts, generator, **kw):
        sol = default_simulate(model, x0, ts, generator)
        seen["ts"], seen["sol"] = ts.clone(), sol
        return sol

    trainer = _trainer(**{"loss.tail_weight": 2.0})
    trainer.simulate = spy
    pop = trainer.replicas[0]
    loss, fit, energy, _ = trainer.population_loss(pop)
    ts = seen["ts"]
    gap = float(ts[1] - ts[0])
    assert len(ts) == 4 and float(ts[-1] - ts[-2]) == pytest.approx(gap)  # 3 training times + the tail
    sol = seen["sol"]
    assert energy.item() == pytest.approx(path_energy(sol, t_end=float(ts[-2])).item())  # unchanged by the tail
    tail = (sol.energy[-1] - sol.energy[-2]).item() / gap
    assert tail > 0
    expected = fit.item() + 0.01 * energy.item() + 2.0 * tail
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_no_tail_is_the_loss_without_it():
    a, b = _trainer(), _trainer(**{"loss.tail_weight": 0.0})
    assert a.config.loss.tail_weight == 0.0
    la = a.population_loss(a.replicas[0])[0]
    lb = b.population_loss(b.replicas[0])[0]
    assert torch.equal(la, lb)


def test_a_tail_holds_the_drift_back_past_the_last_time():
    """Trained with a heavy tail weight, the drift at the last time's cells is smaller."""
    snaps = shifted_snapshots()
    speeds = {}
    for w in (0.0, 10.0):
        res = mfsde.fit(
            tiny_config("ito", **{"loss.tail_weight": w, "train.iterations": 30}),
            snaps,
            task(train=(0, 1, 2), heldout=(3,)),
            progress=False,
        )
        x = torch.as_tensor(snaps.data[2])
        speeds[w] = res.model.data_velocity(x).norm(dim=-1).mean().item()
    assert speeds[10.0] < 0.8 * speeds[0.0]


def test_a_negative_tail_weight_is_one_line():
    with pytest.raises(ValueError, match="loss.tail_weight must be a finite number >= 0"):
        tiny_config("ito", **{"loss.tail_weight": -0.5})


# -- train.starts: one simulation per gap, started from that gap's observed cells --------------------


def test_starts_every_simulates_each_gap_from_its_observed_cells():
    """Training times 0, 1, 3 (2 held out): two simulations, 0 → 1 from cells of time 0 and 1 → 3
    (through the held-out time) from cells of time 1, each fitted to its end's cells; the energy is
    the mean per unit time over both, as one path's would be."""
    snaps = shifted_snapshots()
    trainer = Trainer(tiny_config(**{"train.starts": "every"}), snaps, task())
    seen = []

    def spy(model, x0, ts, generator, **kw):
        sol = default_simulate(model, x0, ts, generator)
        seen.append((x0.clone(), ts.clone(), sol))
        return sol

    trainer.simulate = spy
    loss, fit_term, energy, per_k = trainer.population_loss(trainer.replicas[0])
    assert len(seen) == 2
    series = trainer.series[0]
    for (x0, ts, _), a, b in zip(seen, (0, 1), (1, 3)):
        cells = series.data[a]
        assert torch.equal(ts, series.ts[a : b + 1])
        # every start is one of the observed cells of the gap's first time
        assert bool((x0[:, None, :] == cells[None, :, :]).all(-1).any(-1).all())
    spans = [float(ts[-1] - ts[0]) for _, ts, _ in seen]
    total = sum(path_energy(sol, normalise=False).item() for _, _, sol in seen)
    assert energy.item() == pytest.approx(total / sum(spans), rel=1e-5)
    assert per_k.shape == (2,) and fit_term.item() == pytest.approx(per_k.mean().item(), rel=1e-6)
    assert loss.item() == pytest.approx(fit_term.item() + 0.01 * energy.item(), rel=1e-5)


def test_starts_every_simulates_populations_that_share_their_times_together():
    """Two data populations on one time axis: one simulation per gap for both (a stacked batch),
    each started from its own population's cells and fitted to its own next snapshot."""
    from mfsde.data import Populations, PopulationTask

    pops = Populations({"a": shifted_snapshots(seed=1), "b": shifted_snapshots(seed=2)})
    trainer = Trainer(tiny_config(**{"train.starts": "every"}), pops, PopulationTask("all"))
    seen = []

    def spy(model, x0, ts, generator, **kw):
        seen.append(x0.clone())
        return default_simulate(model, x0, ts, generator)

    trainer.simulate = spy
    loss, fit_term, energy, per_k = trainer.population_loss(trainer.replicas[0])
    assert len(seen) == 3 and all(x0.shape == (2, 32, D) for x0 in seen)  # 3 gaps, both populations at once
    for k, x0 in enumerate(seen):
        for j, s in enumerate(trainer.series):
            assert bool((x0[j][:, None, :] == s.data[k][None, :, :]).all(-1).any(-1).all())
    assert torch.isfinite(loss) and per_k.shape == (3,)


def test_starts_first_is_one_path_from_the_first_time():
    trainer = Trainer(tiny_config(), shifted_snapshots(), task())
    seen = []
    trainer.simulate = lambda model, x0, ts, generator, **kw: (
        seen.append(ts) or default_simulate(model, x0, ts, generator)
    )
    trainer.population_loss(trainer.replicas[0])
    assert len(seen) == 1 and torch.equal(seen[0], trainer.series[0].ts)


def test_starts_mixed_takes_the_path_from_the_first_time_and_the_gaps_in_turn():
    """Iterations 1, 3, … simulate one path from the first time through every training time (as
    ``first``), iterations 2, 4, … one simulation per gap (as ``every``); the history says which."""
    snaps = shifted_snapshots()
    trainer = Trainer(tiny_config(**{"train.starts": "mixed", "train.iterations": 4}), snaps, task())
    calls = []
    trainer.simulate = lambda model, x0, ts, generator, **kw: (
        calls[-1].append(ts.clone()) or default_simulate(model, x0, ts, generator)
    )
    series = trainer.series[0]
    for _ in range(4):
        calls.append([])
        trainer.step()
    for i, seen in enumerate(calls):
        if i % 2 == 0:
            assert len(seen) == 1 and torch.equal(seen[0], series.ts)
        else:
            assert [t.tolist() for t in seen] == [series.ts[0:2].tolist(), series.ts[1:4].tolist()]
    assert [r["starts"] for r in trainer.history] == ["first", "every", "first", "every"]


def test_starts_every_learns_the_drift():
    snaps = shifted_snapshots()
    res = fit(tiny_config("ito", **{"train.starts": "every", "train.iterations": 40}), snaps, task(), progress=False)
    v = res.model.data_velocity(torch.as_tensor(snaps.data[1])).mean(0)
    assert v[0].item() == pytest.approx(1.5, abs=0.5) and abs(v[1].item()) < 0.5


@pytest.mark.parametrize(
    "over, match",
    [
        ({"train.starts": "last"}, "train.starts must be one of first, every, mixed"),
        ({"train.starts": "every", "train.method": "flow_matching"}, "never simulates"),
        ({"train.starts": "every", "loss.tail_weight": 1.0}, "loss.tail_weight needs train.starts 'first'"),
        ({"train.starts": "mixed", "loss.tail_weight": 1.0}, "loss.tail_weight needs train.starts 'first'"),
    ],
)
def test_bad_starts_are_one_line(over, match):
    with pytest.raises(ValueError, match=match) as e:
        tiny_config(**over)
    assert "\n" not in str(e.value)
