"""Many initial populations: does interaction pay off on populations the model has never seen?

For each family of :mod:`mfsde.systems.populations` (and its non-interacting control) 8
populations share the dynamics and differ in their initial state; 6 train (every time point) and
2 are held out (index 1 and 5). Every preset is trained for the same budget of training-step
seconds per run (one torch thread), seeds 0, 1, 2 (the seed drives the data set and the
training), and scored on the held-out populations, each predicted from its own first snapshot:

* held-out W1 (exact, 300 simulated vs 300 observed cells per time, mean over populations and
  times ≥ 1), beside the **truth** floor (the true system simulated from the same t₀ cells), and
  the references ``previous`` / ``mccann`` (from the held-out population's own observed
  neighbouring snapshots, which the model never sees) and ``floor`` (observed vs observed);
* relative drift error and gauge-fixed interaction error (:mod:`mfsde.evaluation`) on each
  held-out population's own system, averaged (controls: ``inter_scaled``, a spurious interaction);
* on ``two_species`` (A is pulled by B, B feels nothing from A): the direction of influence, from
  the cell-type aggregated interaction weights of the kernel (rows = receivers) and from a
  kernel-agnostic perturbation — how much the drift of one species changes when the other
  species' cells are displaced — for the model and for the truth.

    python benchmarks/populations.py --shard 1/2 & python benchmarks/populations.py --shard 2/2; \\
        python benchmarks/populations.py --render
    python benchmarks/populations.py --quick        # a few seconds per run, smoke test of the pipeline

Writes ``benchmarks/results/populations.{rows.jsonl,json,md,png}`` (the figure: true vs learned
interaction on OU) and, when a radial kernel ran on Morse, ``populations_profile.png`` (its learned
force profile ψ(r) against the truth's W'(r), in data units).
"""
from __future__ import annotations

import argparse
import functools
import json
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import mfsde  # noqa: E402
from mfsde.evaluation import baseline_evaluations  # noqa: E402
from mfsde.cli import CLIError, parse_overrides  # noqa: E402
from mfsde.data import PopulationTask, PredictTask  # noqa: E402
from mfsde.evaluation import evaluate  # noqa: E402
from mfsde.explain import has_interaction_weights, label_influence, label_weights  # noqa: E402
from mfsde.systems import (SystemModel, cross_population_error, drift_error, order_parameter,  # noqa: E402
                           pair_jacobian_error, NoisyKuramoto, TwoSpecies, population_snapshots, population_systems)
from mfsde.evaluation import interaction_error, recovery_samples  # noqa: E402
from mfsde.training import fit  # noqa: E402

N_POPULATIONS, N_CELLS, HELDOUT = 8, 300, (1, 5)
FAMILIES = ("ou", "morse", "two_species")
PRESETS = ("ito", "rbf", "scimf")
#: extra presets on some families only (symmetric weights cannot show a direction)
EXTRA = {"two_species": ("symmetric_qk",), "two_species_layout": ("symmetric_qk",)}
NAME = "populations"


@functools.lru_cache(maxsize=None)  # baselines() and every run of the same (family, control, seed) share it
def dataset(family: str, control: bool, seed: int):
    systems = population_systems(family, N_POPULATIONS, control=control)
    pops = population_snapshots(systems, n_per_time=N_CELLS, seed=seed)
    task = PopulationTask("all", heldout_populations=[pops.names[i] for i in HELDOUT])
    return systems, pops, task


@functools.lru_cache(maxsize=None)
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
        out = {"model": influence(lambda z: model.data_velocity(z, t), x, is_a, seed),
               "truth": influence(lambda z: system.drift(z.double()).float(), x, is_a, seed)}
    labels = snaps.labels[k]
    for who, m in (("model", model), ("truth", SystemModel(system))):  # ‖∂f_inter(x_i)/∂x_j‖ by species
        lab = label_influence(m, x, labels, t, names=["A", "B"])
        out[f"jacobian_{who}"] = {"A<-B": float(lab.matrix[0, 1]), "B<-A": float(lab.matrix[1, 0]),
                                  "A<-A": float(lab.matrix[0, 0]), "B<-B": float(lab.matrix[1, 1]),
                                  "net_A<-B": float(lab.net[0, 1]), "sem_A<-B": float(lab.sem[0, 1]),
                                  "sem_B<-A": float(lab.sem[1, 0])}
    with torch.no_grad():
        ok, _ = has_interaction_weights(model)
        if ok:
            w = model.drift.inter.pair_weights(model.scale.encode(x)).mean(0).numpy()
            lab = label_weights(w, snaps.labels[k], names=["A", "B"])
            out["weights"] = {"A<-B": float(lab.matrix[0, 1]), "B<-A": float(lab.matrix[1, 0]),
                              "A<-A": float(lab.matrix[0, 0]), "B<-B": float(lab.matrix[1, 1]),
                              "asymmetry": float(lab.asymmetry)}
    return out


def _system_type(systems: dict) -> type:
    """The class of a family's systems (a non-interacting control wraps its system as ``.base``)."""
    s = next(iter(systems.values()))
    return type(getattr(s, "base", s))


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


def noise_record(diffusion) -> list | dict:
    """The model's noise after training: σ (constant noise) or affine noise's B and A (model units)."""
    if diffusion.additive:
        return diffusion.constant().detach().tolist()
    return {"bias": diffusion.fn.bias.detach().tolist(), "slope": diffusion.fn.slope.detach().tolist()}


def run(family: str, control: bool, preset: str, seed: int, budget: float, quick: bool,
        sigma: str = "preset", sigma_lr: float | None = None, inter_lr: float | None = None,
        inter_set: dict | None = None) -> dict:
    """One training run and its scores. ``inter_set``: config overrides (``{"model.inter.width": 16}``)
    applied to the presets with an interaction kernel, like ``inter_lr``."""
    systems, pops, task = dataset(family, control, seed)
    cfg = mfsde.preset(preset, dim=pops.dim)
    own = {}
    if cfg.model.inter.name != "none":
        own = dict(inter_set or {})
        if inter_lr is not None:
            own["train.inter_lr"] = inter_lr
    cfg = cfg.override(**{
        "train.seed": seed, "train.time_budget": budget, "train.iterations": 10**6, "train.n_particles": 128,
        **sigma_overrides(sigma, next(iter(systems.values())), sigma_lr), **own})
    res = fit(cfg, pops, task, progress=False)
    model = res.model
    ev = evaluate(model, pops, task, n_particles=N_CELLS, seed=seed, metrics=("w1",))
    row = {"kind": "model", "family": family, "control": control, "preset": preset, "seed": seed, "budget": budget,
           "sigma_mode": sigma, "sigma_lr": sigma_lr, "inter_options": cfg.to_dict()["model"]["inter"],
           "lr": cfg.train.lr, **_common.train_settings(cfg.train), "overrides": own, "sigma_model": noise_record(model.diffusion),
           "iterations": res.iteration, "train_seconds": res.train_seconds, "w1": ev["w1"],
           "w1_per_population": {n: v["w1"] for n, v in ev["per_population"].items()}}
    drift, inter, scaled, jac = [], [], [], []
    n_rec = 100 if quick else 300
    for name in task.heldout_populations:
        system, times = systems[name], list(pops[name].times)
        drift.append(drift_error(model, system, times, n_particles=n_rec, seed=seed + 1)["drift"])
        ie = interaction_error(model, system, times, n_particles=n_rec, seed=seed + 2)
        inter.append(ie["inter"])
        scaled.append(ie["inter_scaled"])
        jac.append(pair_jacobian_error(model, system, times, n_particles=min(n_rec, 150), seed=seed + 4))
    row.update(drift=float(np.mean(drift)), inter=float(np.mean(inter)), inter_scaled=float(np.mean(scaled)),
               inter_jac=float(np.mean([j["inter"] for j in jac])), cosine_jac=float(np.mean([j["cosine"] for j in jac])),
               jac_model_norm=float(np.mean([j["model_norm"] for j in jac])),
               jac_true_norm=float(np.mean([j["true_norm"] for j in jac])))
    if not control:  # the two held-out populations against each other, at shared times
        h0, h1 = task.heldout_populations[:2]
        cross = cross_population_error(model, systems[h0], systems[h1], list(pops[h0].times), n_particles=n_rec,
                                       seed=seed + 3)
        row.update(inter_cross=cross["inter"], cosine_cross=cross["cosine"])
    kind = _system_type(systems)
    if issubclass(kind, TwoSpecies) and not control:  # who drives whom
        name = task.heldout_populations[0]
        row["direction"] = direction(model, systems[name], pops[name], seed)
    if issubclass(kind, NoisyKuramoto):
        oc = order_curves({n: model for n in task.heldout_populations}, pops, seed)
        row.update(order=oc["error"], order_curves=oc["curves"])
    if family == "morse" and not control and hasattr(model.drift.inter, "profile"):
        row["profile"] = force_profile(model, systems[task.heldout_populations[0]], pops)
    if family == "ou" and not control and seed == 0:  # material for the figure
        name = task.heldout_populations[0]
        s = recovery_samples(model, systems[name], list(pops[name].times), n_particles=n_rec, seed=seed + 2)
        row["delta_sample"] = {"true": s["delta_true"][:200].tolist(), "model": s["delta_model"][:200].tolist()}
    return row


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


def baselines(family: str, control: bool, seed: int) -> list[dict]:
    systems, pops, task = dataset(family, control, seed)
    rows = []
    truth = []
    for name in task.heldout_populations:
        t = PredictTask.for_population(name, pops[name].n_times)
        truth.append(evaluate(SystemModel(systems[name]), pops[name], t, n_particles=N_CELLS, seed=seed,
                              metrics=("w1",))["w1"])
    rows.append({"kind": "baseline", "family": family, "control": control, "preset": "truth", "seed": seed,
                 "w1": float(np.mean(truth))})
    for ev in baseline_evaluations(pops, task, n_particles=N_CELLS, seed=seed, metrics=("w1",)):
        rows.append({"kind": "baseline", "family": family, "control": control, "preset": ev["preset"], "seed": seed,
                     "w1": ev["w1"]})
    if issubclass(_system_type(systems), NoisyKuramoto):  # the order parameter r(t) (see order_curves)
        oc = order_curves({n: SystemModel(systems[n]) for n in task.heldout_populations}, pops, seed)
        for r in rows:
            if r["preset"] == "truth":
                r.update(order=oc["error"], order_curves=oc["curves"])
            elif r["preset"] == "previous":
                r["order"] = oc["previous"]
    return rows


def jobs(families, presets, seeds, controls=True, only_controls=False, extra=True):
    out = []
    for fam in families:
        for control in ((True,) if only_controls else (False, True) if controls else (False,)):
            for p in dict.fromkeys([*presets, *(EXTRA.get(fam, ()) if extra else ())]):  # a listed extra runs once
                for s in seeds:
                    out.append((fam, control, p, s))
    return out


# -- report -------------------------------------------------------------------------------------
def combine(sources: list[str]) -> list[dict]:
    """The rows of several named runs (``NAME``, ``NAME:PRESET``, either with ``=LABEL``) as one log:
    each seed's baselines once (they depend on the data set only); ``:PRESET`` keeps only that
    preset's model rows of the run, ``=LABEL`` renames its presets to ``LABEL``."""
    rows, seen = [], set()
    for src in sources:
        name, _, label = src.partition("=")
        name, _, only = name.partition(":")
        log = _common.RESULTS_DIR / f"{name}.rows.jsonl"
        if not log.is_file():
            raise FileNotFoundError(f"no rows of a run named {name!r} ({log})")
        found = False
        for r in _common.read_rows(log):
            if r["kind"] == "baseline":
                key = (r["family"], r["control"], r["seed"], r["preset"])
                if key in seen:
                    continue
                seen.add(key)
            elif only and r["preset"] != only:
                continue
            else:
                found = True
                if label:
                    r = {**r, "preset": label, "source": name}
            rows.append(r)
        if only and not found:
            raise FileNotFoundError(f"the run named {name!r} has no rows of preset {only!r}")
    return rows


def _options(preset: str, options: dict) -> str:
    """``"rbf: bandwidth=1.0, name=rbf"``: a preset and its settings, for the table's header."""
    return f"{preset}: " + ", ".join(f"{k}={v}" for k, v in sorted(options.items()))


def _ms(vals, d=3) -> str:
    v = np.asarray([x for x in vals if x is not None and np.isfinite(x)], float)
    if not v.size:
        return "–"
    return f"{v.mean():.{d}f}" + (f" ± {v.std(ddof=1):.{d}f}" if v.size > 1 else "")


def _spread(vals) -> tuple[float, float]:
    v = np.asarray(vals, float)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def _direction_table(fam: str, dirs: list[dict]) -> list[str]:
    """Markdown lines: who drives whom on a two-species family, per preset and seed."""
    lines = [f"### {fam}: who drives whom (held-out population, last time; truth: A←B > 0, B←A = 0)", "",
             "Jacobian: mean ‖∂f_inter(x_i)/∂x_j‖ over receivers i of one species and sources j of the other "
             "(`mfsde.explain.label_influence`, data units); shown when A←B is more than twice B←A and the gap "
             "exceeds 2 standard errors (the truth: B←A = 0). Perturbation: relative change of one species' drift when the other's cells are displaced. "
             "Weights: the kernel's cell-type aggregated weights, shown when A←B is more than twice B←A.", "",
             "| method | seed | Jacobian A←B | Jacobian B←A | shown (Jacobian) | perturbation A←B | "
             "perturbation B←A | weights A←B | weights B←A | shown (weights) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    truth = dirs[0]["direction"]
    jt = truth.get("jacobian_truth")
    jcells = f"{jt['A<-B']:.4f} | {jt['B<-A']:.4f} | yes" if jt else "| |"
    lines.append(f"| *truth* | – | {jcells} | {truth['truth']['A<-B']:.3f} | {truth['truth']['B<-A']:.3f} | | | |")
    for r in sorted(dirs, key=lambda r: (r["preset"], r["seed"])):
        d = r["direction"]
        w, j = d.get("weights"), d.get("jacobian_model")
        shown = "–" if w is None else ("yes" if w["A<-B"] > 2 * w["B<-A"] else "no")  # as the Jacobian
        wcells = "| – | – |" if w is None else f"| {w['A<-B']:.4f} | {w['B<-A']:.4f} |"
        if j is None:
            jcells = "– | – | –"
        else:
            gap = j["A<-B"] - j["B<-A"]
            ok = gap > 2 * float(np.hypot(j["sem_A<-B"], j["sem_B<-A"])) and j["A<-B"] > 2 * j["B<-A"]
            jcells = f"{j['A<-B']:.4f} | {j['B<-A']:.4f} | {'yes' if ok else 'no'}"
        lines.append(f"| {r['preset']} | {r['seed']} | {jcells} | {d['model']['A<-B']:.3f} | "
                     f"{d['model']['B<-A']:.3f} {wcells} {shown} |")
    lines.append("")
    return lines


def render(rows: list[dict], settings: dict) -> str:
    budget = next((r["budget"] for r in rows if r["kind"] == "model"), float("nan"))
    lines = [f"Held-out populations ({len(HELDOUT)} of {N_POPULATIONS}, each predicted from its own first snapshot; "
             f"{N_CELLS} cells per time), {budget:g} s of training steps per run (1 thread, 128 particles per "
             "population), mean ± std over seeds. W1: mean over held-out populations and times ≥ 1. drift: "
             "E‖f̂−f‖²/E‖f‖² on the held-out populations' own cells. inter: E‖Δf̂−Δf‖²/E‖Δf‖², Δf = the change of the "
             "drift at the same probes between two times of one held-out population (the presets' f_intra has no "
             "time input, so it cancels: gauge-free, L², on the population's support; 0 = truth, 1 = no interaction; "
             "controls: inter_scaled, the spurious interaction in units of the drift). pairwise ∂f: "
             "Σ‖Ĵ_ij−J_ij‖²/Σ‖J_ij‖², J_ij = ∂f(x_i, ρ)/∂x_j (j ≠ i) on fresh populations of the true system "
             "(`mfsde.systems.pair_jacobian_error`; gauge-free for any model but a derivative (H¹-type) criterion, "
             "dominated by close pairs), with its cosine. cross-pop: Δf between the two held-out populations at "
             "shared times (time effects cancel, but probes of one population sit outside the other), with the "
             "cosine. Verdict: an interaction preset *beats* ito when its mean W1 is "
             "lower by more than the larger of the two seed spreads (controls: *within* = not different by more "
             "than that).", ""]
    all_models = [r for r in rows if r["kind"] == "model"]
    sigma_modes = sorted({r.get("sigma_mode", "preset") for r in all_models})
    steps = sorted({f"{r['preset']} {r.get('inter_lr')}" for r in all_models if r.get("inter_lr") is not None})
    lines[0] += (f" Noise: {', '.join(sigma_modes)}. Step size of the interaction kernel (train.inter_lr): "
                 f"{'; '.join(steps) if steps else 'train.lr for every preset'}.")
    kernels = sorted({_options(r["preset"], r["inter_options"]) for r in all_models
                      if r.get("inter_options", {}).get("name", "none") != "none"})
    if kernels:
        lines[0] += f" Kernels: {'; '.join(kernels)}."
    if any("order" in r for r in rows):
        lines[0] += (" Order parameter error (Kuramoto): |r̂ − r| for r = |mean of the cells on the circle|, the "
                     "model simulated from each held-out population's first snapshot (its points projected onto "
                     "the circle), mean over held-out populations and times ≥ 1; blind to the mean phase, which W1 "
                     "sees and which with 300 oscillators wanders between independent realisations.")
    groups = sorted({f"{r['preset']} {r['random_batch']}" for r in all_models if r.get("random_batch")})
    if groups:
        lines[0] += f" Trained in random groups of (train.random_batch; evaluation uses every pair): {'; '.join(groups)}."
    extra = sorted({_options(r["preset"], r["overrides"]) for r in all_models if r.get("overrides")})
    if extra:
        lines[0] += f" Overrides (--inter-lr, --inter-set): {'; '.join(extra)}."
    if settings.get("sources"):  # a combined table: say where its rows come from (rerunnable)
        lines[0] += " Rows from: --from " + " ".join(shlex.quote(s) for s in settings["sources"]) + "."
    verdicts = []
    for fam in dict.fromkeys(r["family"] for r in rows):
        for control in (False, True):
            rs = [r for r in rows if r["family"] == fam and r["control"] == control]
            if not rs:
                continue
            title = f"{fam}{' control (no interaction)' if control else ''}"
            order = any("order" in r for r in rs)  # Kuramoto: the order parameter's error |r̂ − r|
            lines += [f"### {title}", "", "| method | held-out W1 | drift error | "
                      f"{'inter_scaled' if control else 'inter error'} | pairwise ∂f error (cosine) | cross-pop inter (cosine) | iterations | seeds "
                      f"| vs ito |{' order parameter error |' if order else ''}",
                      "|---|---|---|---|---|---|---|---|---|" + ("---|" if order else "")]
            models = [r for r in rs if r["kind"] == "model"]
            ito = [r["w1"] for r in models if r["preset"] == "ito"]
            for p in dict.fromkeys(r["preset"] for r in models):
                pr = [r for r in models if r["preset"] == p]
                verdict = ""
                if p != "ito" and ito:
                    (m0, s0), (m1, s1) = _spread(ito), _spread([r["w1"] for r in pr])
                    tol = max(s0, s1)
                    if control:
                        verdict = "within" if abs(m1 - m0) <= tol else ("better" if m1 < m0 else "worse")
                    else:
                        verdict = "beats" if m0 - m1 > tol else ("worse" if m1 - m0 > tol else "tie")
                    verdicts.append((title, p, verdict))
                key = "inter_scaled" if control else "inter"
                cross = (f"{_ms([r.get('inter_cross') for r in pr])} ({_ms([r.get('cosine_cross') for r in pr], 2)})"
                         if any("inter_cross" in r for r in pr) else "–")
                jac = (f"{_ms([r.get('inter_jac') for r in pr])} ({_ms([r.get('cosine_jac') for r in pr], 2)})"
                       if not control and any("inter_jac" in r for r in pr) else "–")
                lines.append(f"| {p} | {_ms([r['w1'] for r in pr])} | {_ms([r['drift'] for r in pr])} | "
                             f"{_ms([r[key] for r in pr])} | {jac} | {cross} | {_ms([r['iterations'] for r in pr], 0)} | "
                             f"{len(pr)} | {verdict} |" + (f" {_ms([r.get('order') for r in pr])} |" if order else ""))
            for b in ("truth", "mccann", "previous", "floor"):
                br = [r for r in rs if r["kind"] == "baseline" and r["preset"] == b]
                if br:
                    lines.append(f"| *{b}* | {_ms([r['w1'] for r in br])} | | | | | | {len(br)} | |"
                                 + (f" {_ms([r.get('order') for r in br])} |" if order else ""))
            lines.append("")
    for fam in dict.fromkeys(r["family"] for r in rows if r.get("direction")):
        lines += _direction_table(fam, [r for r in rows if r.get("direction") and r["family"] == fam])
    if verdicts:
        lines += ["### verdicts against ito", "", "| system | preset | verdict |", "|---|---|---|"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in verdicts]
        lines.append("")
    md = "\n".join(lines) + "\n"
    (_common.RESULTS_DIR / f"{NAME}.md").write_text(md)
    _common.write_json(NAME, {"settings": settings, "environment": _common.env_info(), "rows": rows})
    figure(rows)
    return md


def figure(rows: list[dict]) -> None:
    samples = [r for r in rows if r.get("delta_sample")]
    profiles = [r for r in rows if r.get("profile")]
    if profiles:
        profile_figure(profiles)
    if any(r.get("order_curves") for r in rows):
        order_figure([r for r in rows if r.get("order_curves")])
    if not samples:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(samples), figsize=(3.6 * len(samples), 3.4), squeeze=False)
    for ax, r in zip(axes[0], sorted(samples, key=lambda r: r["preset"])):
        t, m = np.asarray(r["delta_sample"]["true"]), np.asarray(r["delta_sample"]["model"])
        lim = float(np.abs(t).max()) * 1.2
        for c, col in zip(range(t.shape[1]), ("tab:blue", "tab:orange")):
            ax.scatter(t[:, c], m[:, c], s=6, alpha=0.6, color=col, label=f"component {c + 1}")
        ax.plot([-lim, lim], [-lim, lim], color="k", lw=0.8)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_title(f"{r['preset']}: inter error {r['inter']:.2f}", fontsize=10)
        ax.set_xlabel("true Δf (population-dependent drift)")
        ax.set_ylabel("learned Δf")
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("mean-field OU, held-out population: true vs learned interaction (seed 0)", fontsize=10)
    fig.tight_layout()
    fig.savefig(_common.RESULTS_DIR / f"{NAME}.png", dpi=110)
    plt.close(fig)


def order_figure(rows: list[dict]) -> None:
    """Kuramoto: the order parameter r(t) of each held-out population, observed, the truth and every
    preset (the first seed; interacting system only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if not r["control"]]  # the controls are other data (no synchronisation)
    if not rows:
        return
    seed0 = min(r["seed"] for r in rows)
    rows = [r for r in rows if r["seed"] == seed0]
    names = list(dict.fromkeys(n for r in rows for n in r["order_curves"]))
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        c = next(r["order_curves"][name] for r in rows if name in r["order_curves"])
        ax.plot(c["times"], c["observed"], "ko-", lw=2, label="observed")
        for r in rows:
            if name in r["order_curves"]:
                truth = r["kind"] == "baseline"
                ax.plot(c["times"], r["order_curves"][name]["model"], lw=1.2, ls=":" if truth else "-",
                        label="truth (simulated)" if truth else r["preset"])
        ax.set_ylim(0, 1)
        ax.set_xlabel("time")
        ax.set_ylabel("order parameter r")
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(f"Kuramoto, held-out populations: synchronisation from each one's first snapshot (seed {seed0})",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(_common.RESULTS_DIR / f"{NAME}_order.png", dpi=110)
    plt.close(fig)


def profile_figure(rows: list[dict]) -> None:
    """Learned force profiles ψ(r) of the radial kernel on Morse, every seed, against W'(r)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    first = rows[0]["profile"]
    r = np.asarray(first["r"])
    ax.plot(r, first["true"], color="k", lw=2, label="truth W'(r)")
    for row in sorted(rows, key=lambda x: x["seed"]):
        ax.plot(r, row["profile"]["learned"], lw=1, alpha=0.8,
                label=f"{row['preset']}, step {row.get('inter_lr') or row.get('lr')}, seed {row['seed']} "
                      f"(inter {row['inter']:.2f})")
    counts = np.asarray(first["counts"], dtype=float)
    lo, hi = ax.get_ylim()
    ax.fill_between(r, lo, lo + 0.25 * (hi - lo) * counts / counts.max(), color="0.85", zorder=0,
                    label="pair distances in the data")
    ax.set_ylim(lo, hi)
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_xlabel("distance r (data units)")
    ax.set_ylabel("force ψ(r) (> 0 attracts)")
    ax.set_title("Morse swarms: learned force profile of the radial kernel", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(_common.RESULTS_DIR / f"{NAME}_profile.png", dpi=110)
    plt.close(fig)


def signal(families, seeds) -> str:
    """How much the data say about the interaction, before any model: on the held-out populations of
    each family, E‖Δf‖² / E‖f‖² for the true drift, Δf between two times of one population (what
    the interaction error compares) and between the two held-out populations at shared times (the
    cross-population error). A small share means a small absolute error of the drift already
    gives a large relative interaction error. Writes ``results/populations_signal.{md,json}``."""
    rows = []
    for fam in families:
        for seed in seeds:
            systems, pops, task = dataset(fam, False, seed)
            h0, h1 = task.heldout_populations[:2]
            per_pop, f2 = [], []
            for name in (h0, h1):
                # the "model" is the system without interaction: only the true drifts are used, and
                # this one costs no pairwise evaluation
                s = recovery_samples(SystemModel(systems[name].without_interaction()), systems[name], list(pops[name].times),
                                     n_particles=300, seed=seed + 2)
                f2.append(float(s["f_true"].pow(2).sum(-1).mean()))
                per_pop.append(float(s["delta_true"].pow(2).sum(-1).mean()) / f2[-1])
            cross = cross_population_error(SystemModel(systems[h0].without_interaction()), systems[h0], systems[h1],
                                           list(pops[h0].times),
                                           n_particles=300, seed=seed + 3)
            rows.append({"family": fam, "seed": seed, "time_pairs": float(np.mean(per_pop)),
                         "cross": cross["inter_norm"] / float(np.mean(f2))})
    lines = ["E‖Δf‖² / E‖f‖² of the true system on the held-out populations (300 particles, probes as in the "
             "interaction errors; the cross-population Δf in units of E‖f‖² at the time-pair probes), mean over "
             "seeds " + ", ".join(map(str, seeds)) + ".", "",
             "| family | Δf between two times of one population | Δf between the two held-out populations |",
             "|---|---|---|"]
    for fam in families:
        rs = [r for r in rows if r["family"] == fam]
        lines.append(f"| {fam} | {_ms([r['time_pairs'] for r in rs])} | {_ms([r['cross'] for r in rs])} |")
    md = "\n".join(lines) + "\n"
    (_common.RESULTS_DIR / "populations_signal.md").write_text(md)
    _common.write_json("populations_signal", {"settings": {"families": list(families), "seeds": list(seeds)},
                                              "rows": rows})
    return md


def main(argv=None) -> int:
    global NAME
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=75.0, help="seconds of training steps per run (default 75)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--families", nargs="+", default=None, choices=list(FAMILIES) + ["kuramoto", "two_species_layout"],
                    help=f"default: {' '.join(FAMILIES)}; with --render: keep only these families' rows")
    ap.add_argument("--presets", nargs="+", default=list(PRESETS))
    ap.add_argument("--shard", type=_common.shard, default=(1, 1), help="K/N: run every N-th job starting at K (parallel processes)")
    ap.add_argument("--resume", action="store_true", help="keep the rows already logged and skip their jobs")
    ap.add_argument("--render", action="store_true", help="only rebuild the table, JSON and figure from the log")
    ap.add_argument("--quick", action="store_true", help="3 s per run, one seed, two families: a smoke test")
    ap.add_argument("--name", default=None, help="results file stem (default populations[_quick])")
    ap.add_argument("--sigma", default="preset", choices=["preset", "truth", "learn", "learn_affine"],
                    help="noise of the models: the preset's σ (model units), the system's true noise (data units; "
                         "Kuramoto: rank one along the circle), a learned σ, or learned affine noise B + A x "
                         "(default preset)")
    ap.add_argument("--sigma-lr", type=float, default=None,
                    help="with --sigma learn: the step size of log σ (train.sigma_lr; default: train.lr)")
    ap.add_argument("--inter-lr", type=float, default=None,
                    help="step size of every interaction kernel (train.inter_lr; default: each preset's own)")
    ap.add_argument("--inter-set", nargs="+", default=[], metavar="KEY=VALUE",
                    help="config overrides for every preset with an interaction kernel, e.g. model.inter.width=16 "
                         "(values parsed as by `mfsde fit --set`)")
    ap.add_argument("--only-controls", action="store_true", help="run the non-interacting controls only")
    ap.add_argument("--no-extra", action="store_true",
                    help="skip the extra presets of some families (symmetric_qk on two_species)")
    ap.add_argument("--no-controls", action="store_true", help="skip the non-interacting controls")
    ap.add_argument("--from", dest="sources", nargs="+", default=[], metavar="NAME[:PRESET][=LABEL]",
                    help="with --render: one table from the rows of these named runs (their baselines once per "
                         "seed); :PRESET keeps one preset's rows of a run, =LABEL renames a run's presets, "
                         "e.g. populations_known_sigma:ito populations_pairwise_mlp_ema='pairwise_mlp, EMA'")
    ap.add_argument("--signal", action="store_true",
                    help="only measure E‖Δf‖²/E‖f‖² of the true systems (how much the data say about the "
                         "interaction): results/populations_signal.{md,json}")
    ap.add_argument("--readme", action="store_true",
                    help="with --render: also put the table between <!-- POPULATIONS --> markers in docs/populations.md")
    args = ap.parse_args(argv)
    try:
        inter_set = parse_overrides(args.inter_set)  # the same KEY=VALUE parsing as `mfsde fit --set`
    except CLIError as exc:
        ap.error(f"--inter-set: {exc}")
    if args.name:
        NAME = args.name
    if args.quick:
        NAME = args.name or "populations_quick"
        args.budget, args.seeds, args.families = 3.0, [0], ["ou", "two_species"]
    render_only = args.families  # --render keeps these families' rows (all when not given)
    args.families = args.families or list(FAMILIES)
    torch.set_num_threads(1)
    log = _common.RESULTS_DIR / f"{NAME}.rows.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    read = lambda: _common.read_rows(log)  # noqa: E731
    if args.signal:
        print(signal(args.families, args.seeds))
        return 0
    if args.sources and not args.render:
        ap.error("--from only works with --render")
    if args.render:
        try:
            rows = combine(args.sources) if args.sources else read()
        except FileNotFoundError as exc:
            ap.error(f"--from: {exc}")
        if render_only:
            rows = [r for r in rows if r["family"] in render_only]
        if args.only_controls:
            rows = [r for r in rows if r["control"]]
        md = render(rows, vars(args))
        print(md)
        if args.readme:
            readme = _common.REPO_ROOT / "docs" / "populations.md"
            text = readme.read_text()
            a, b = text.index("<!-- POPULATIONS -->"), text.index("<!-- /POPULATIONS -->")
            body = (f"Measured by `python benchmarks/populations.py` (2 shards on 2 cores; "
                    f"`results/{NAME}.md`, `.json`, `.png`):\n\n" + md.replace("### ", "#### "))
            readme.write_text(text[:a] + "<!-- POPULATIONS -->\n" + body + text[b:])
        return 0
    k, n = args.shard
    if k == 1 and not args.resume:
        log.unlink(missing_ok=True)
    old = read() if args.resume else []  # without --resume, rows of an earlier run (which shard 1 deletes) count for nothing
    want = {**inter_set, **({"train.inter_lr": args.inter_lr} if args.inter_lr is not None else {})}
    clash = sorted({f"{r['preset']} (budget {r['budget']:g} s, noise {r['sigma_mode']}, overrides {r['overrides']})"
                    for r in old if r["kind"] == "model" and "overrides" in r
                    and ((r["overrides"] != want and r["inter_options"].get("name") != "none")
                         or r["budget"] != args.budget or r["sigma_mode"] != args.sigma)})
    if clash:  # resuming must not mix runs of different settings under one name
        ap.error(f"--resume: {log.name} holds runs with other settings: {'; '.join(clash)}")
    stale = sorted({f"{r['preset']} on {r['family']}" for r in old if r["kind"] == "model" and "inter_options" in r
                    and (r["inter_options"] != kernel_options(r["preset"], r["family"], r.get("overrides") or {})
                         or _common.logged_train_settings(r) != trained_as(r["preset"], r["family"], r.get("overrides") or {}))})
    if stale:  # the same name and overrides, but the preset has changed since (scimf's qk_bias, rbf's inter_lr)
        ap.error(f"--resume: {log.name} holds runs whose kernel, random batch or inter_lr differs from today's preset "
                 f"({'; '.join(stale)}); "
                 "start a new --name")
    done = {(r["family"], r["control"], r["preset"], r["seed"]) for r in old if r["kind"] == "model"}
    base_done = {(r["family"], r["control"], r["seed"]) for r in old if r["kind"] == "baseline"}
    commit = _common.env_info()["git_commit"]
    todo = jobs(args.families, args.presets, args.seeds, controls=not args.no_controls,
                only_controls=args.only_controls, extra=not args.no_extra)
    print(f"{len(todo)} runs of {args.budget:g} s (+ evaluation); shard {k}/{n}", flush=True)
    for i, (fam, control, preset, seed) in enumerate(todo):
        if i % n != k - 1 or (fam, control, preset, seed) in done:
            continue
        t0 = time.perf_counter()
        new = []
        first = next(j for j, job in enumerate(todo) if job[:2] == (fam, control) and job[3] == seed)
        if (fam, control, seed) not in base_done and first == i:  # one shard computes them
            new += baselines(fam, control, seed)
            base_done.add((fam, control, seed))
        row = run(fam, control, preset, seed, args.budget, args.quick, args.sigma, args.sigma_lr, args.inter_lr,
                  inter_set)
        row.update(loadavg_1=_common.env_info()["loadavg_1_5_15"][0], git_commit=commit)
        new.append(row)
        with open(log, "a") as fh:
            for r in new:
                fh.write(json.dumps(r) + "\n")
        print(f"{fam}{'_control' if control else ''} {preset} seed {seed}: W1 {row['w1']:.4f} drift {row['drift']:.3f} "
              f"inter {row['inter']:.3f} ({row['iterations']} it, {time.perf_counter() - t0:.0f} s)", flush=True)
    if n == 1:
        print(render(read(), vars(args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
