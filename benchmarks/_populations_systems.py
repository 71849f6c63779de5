"""The population families of ``benchmarks/populations.py`` and what is measured on each system.

The data set of a (family, control, seed), the presets' kernels and train settings as they are
today (what ``--resume`` checks logged rows against), the models' noise (``--sigma``), and the
system-specific measurements: who drives whom on two species (:func:`direction`), the order
parameter on Kuramoto (:func:`order_curves`), a radial kernel's force profile on Morse
(:func:`force_profile`).
"""

from __future__ import annotations

import functools

import _common
import numpy as np
import torch

import mfsde
from mfsde.data import PopulationTask
from mfsde.evaluation import SystemModel
from mfsde.explain import has_interaction_weights, label_influence, label_weights
from mfsde.systems import order_parameter, population_snapshots, population_systems

N_POPULATIONS, N_CELLS, HELDOUT = 8, 300, (1, 5)
FAMILIES = ("ou", "morse", "two_species")
PRESETS = ("ito", "rbf", "scimf")
#: extra presets on some families only (symmetric weights cannot show a direction)
EXTRA = {"two_species": ("symmetric_qk",), "two_species_layout": ("symmetric_qk",)}


@functools.cache  # baselines() and every run of the same (family, control, seed) share it
def dataset(family: str, control: bool, seed: int):
    systems = population_systems(family, N_POPULATIONS, control=control)
    pops = population_snapshots(systems, n_per_time=N_CELLS, seed=seed)
    task = PopulationTask("all", heldout_populations=[pops.names[i] for i in HELDOUT])
    return systems, pops, task


@functools.cache
def family_dim(family: str) -> int:
    """Particle dimension of a family's data (builds two systems, simulates nothing)."""
    return next(iter(population_systems(family, 2).values())).dim


def kernel_options(preset: str, family: str, overrides: dict) -> dict:
    """The interaction kernel's config (``{"name": …, **options}``) that ``run`` builds today."""
    dim = family_dim(family)
    own = {k: v for k, v in overrides.items() if k.startswith("model.inter.")}
    return mfsde.preset(preset, dim=dim).override(**own).to_dict()["model"]["inter"]


def trained_as(preset: str, family: str, overrides: dict) -> dict:
    """The preset's train settings (``_common.PRESET_TRAIN_KEYS``) that ``run`` trains with today."""
    return _common.train_settings(mfsde.preset(preset, dim=family_dim(family)).override(**overrides).train)


def system_type(systems: dict) -> type:
    """The class of a family's systems (a non-interacting control wraps its system as ``.base``)."""
    s = next(iter(systems.values()))
    return type(getattr(s, "base", s))


def sigma_overrides(mode: str, system, sigma_lr: float | None = None) -> dict:
    """Config overrides for the noise: ``preset`` (the preset's σ in model units), ``truth`` (the
    system's own noise in data units, ``system.noise_config()``: a diagonal σ, or the Kuramoto
    oscillators' rank-one noise along the circle as ``affine`` noise; the model family then
    contains the truth), ``learn`` (a diagonal σ trained with the drift from the preset's σ, step
    size ``sigma_lr``) or ``learn_affine`` (full-rank affine noise g(x) = B + A x trained with the
    drift from B = the preset's σ·I, A = 0)."""
    if mode == "preset":
        return {}
    if mode == "learn":
        return {"model.learn_sigma": True, "train.sigma_lr": sigma_lr}
    if mode == "learn_affine":
        return {"model.noise": "affine", "model.learn_sigma": True, "train.sigma_lr": sigma_lr}
    return system.noise_config()


def influence(drift, x: torch.Tensor, is_a: torch.Tensor, seed: int) -> dict:
    """Mean change of the drift of one species when the *other* species' positions are displaced
    (N(0, s²), s = the positions' spread), relative to that species' mean drift norm:
    ``{"A<-B": …, "B<-A": …}``. ``drift(x)`` → ``(N, d)``."""
    g = torch.Generator().manual_seed(seed)
    f = drift(x)
    spread = x[:, :-1].std()
    out = {}
    for recv, src, name in ((is_a, ~is_a, "A<-B"), (~is_a, is_a, "B<-A")):
        x2 = x.clone()
        x2[src, :-1] += spread * torch.randn(int(src.sum()), x.shape[1] - 1, generator=g, dtype=x.dtype)
        d = (drift(x2)[recv] - f[recv]).norm(dim=-1).mean()
        out[name] = float(d / f[recv].norm(dim=-1).mean().clamp_min(1e-12))
    return out


def direction(model, system, snaps, seed: int) -> dict:
    """Weights (kernel) and perturbation influence (model and truth) on the last observed time of a
    held-out two-species population."""
    k = snaps.n_times - 1
    x = torch.as_tensor(snaps.data[k], dtype=torch.float32)
    is_a = x[:, -1] > 0
    t = float(snaps.times[k])
    with torch.no_grad():
        out = {
            "model": influence(lambda z: model.data_velocity(z, t), x, is_a, seed),
            "truth": influence(lambda z: system.drift(z.double()).float(), x, is_a, seed),
        }
    labels = snaps.labels[k]
    for who, m in (("model", model), ("truth", SystemModel(system))):  # ‖∂f_inter(x_i)/∂x_j‖ by species
        lab = label_influence(m, x, labels, t, names=["A", "B"])
        out[f"jacobian_{who}"] = {
            "A<-B": float(lab.matrix[0, 1]),
            "B<-A": float(lab.matrix[1, 0]),
            "A<-A": float(lab.matrix[0, 0]),
            "B<-B": float(lab.matrix[1, 1]),
            "net_A<-B": float(lab.net[0, 1]),
            "sem_A<-B": float(lab.sem[0, 1]),
            "sem_B<-A": float(lab.sem[1, 0]),
        }
    with torch.no_grad():
        ok, _ = has_interaction_weights(model)
        if ok:
            w = model.drift.inter.pair_weights(model.scale.encode(x)).mean(0).numpy()
            lab = label_weights(w, snaps.labels[k], names=["A", "B"])
            out["weights"] = {
                "A<-B": float(lab.matrix[0, 1]),
                "B<-A": float(lab.matrix[1, 0]),
                "A<-A": float(lab.matrix[0, 0]),
                "B<-B": float(lab.matrix[1, 1]),
                "asymmetry": float(lab.asymmetry),
            }
    return out


def order_curves(models: dict, pops, seed: int) -> dict:
    """Kuramoto order parameter r(t) = |mean of the cells on the circle| of the populations
    ``models`` names (``{population: model}``): observed, and simulated by the model
    (``.sample``) from the population's first snapshot (points projected onto the circle, y/|y|:
    a model's noise may leave it). ``{"error": mean over populations and times ≥ 1 of |r̂ − r|,
    "previous": the same for copying the previous observed time, "curves": {name: {"times",
    "observed", "model"}}}``. Unlike W1, r does not see the mean phase, which with a few hundred
    oscillators wanders between independent realisations (finite-N phase diffusion)."""
    curves, err, prev = {}, [], []
    for i, (name, model) in enumerate(models.items()):
        snaps = pops[name]
        x0 = torch.as_tensor(snaps.data[0], dtype=torch.float32)
        with torch.no_grad():
            xs = model.sample(x0, list(snaps.times), generator=torch.Generator().manual_seed(seed + 5 + i))
        r_hat = [float(order_parameter(torch.nn.functional.normalize(x, dim=-1))) for x in xs]
        r_obs = [float(order_parameter(torch.as_tensor(x, dtype=torch.float64))) for x in snaps.data]
        curves[name] = {"times": [float(t) for t in snaps.times], "observed": r_obs, "model": r_hat}
        err += [abs(a - b) for a, b in zip(r_hat[1:], r_obs[1:])]
        prev += [abs(a - b) for a, b in zip(r_obs[:-1], r_obs[1:])]
    return {"error": float(np.mean(err)), "previous": float(np.mean(prev)), "curves": curves}


def force_profile(model, system, pops) -> dict:
    """A radial kernel's learned force profile ψ(r) in data units (ψ_data(r) = ψ(r / s) s / τ for
    the global scale s and time unit τ) beside the Morse system's W'(r), on distances up to the
    largest distance between two observed cells of one snapshot; ``counts``: how often each
    distance occurs between cells of one snapshot (the first 150 cells of every snapshot of every
    population: where pairs are observed, ψ is identified)."""
    s, tau = float(model.scale.scale.mean()), float(model.scale.time_unit)
    dist = []
    for name in pops.names:
        for x in pops[name].data:
            x = torch.as_tensor(x[:150], dtype=torch.float64)
            dist.append(torch.pdist(x).numpy())
    dist = np.concatenate(dist)
    r = np.linspace(0.02, float(dist.max()), 120)
    with torch.no_grad():
        learned = model.drift.inter.profile(torch.as_tensor(r / s, dtype=torch.float32)).double().numpy() * s / tau
        true = system.drift.inter.dW(torch.as_tensor(r)).numpy()
    counts, _ = np.histogram(dist, bins=len(r), range=(0.0, float(dist.max())))
    return {"r": r.tolist(), "learned": learned.tolist(), "true": true.tolist(), "counts": counts.tolist()}
