"""The runner of ``benchmarks/populations.py``: one training run and its scores, the baselines of a
data set, the job list, the checks before ``--resume`` adds to a log, the loop that appends every
finished run to the row log, and ``--signal`` (how much the data say before any model).
"""

from __future__ import annotations

import time

import _common
import numpy as np
from _populations_systems import (
    EXTRA,
    N_CELLS,
    dataset,
    direction,
    force_profile,
    kernel_options,
    order_curves,
    sigma_overrides,
    system_type,
    trained_as,
)

import mfsde
from mfsde import evaluate, fit
from mfsde.data import PredictTask
from mfsde.evaluation import (
    SystemModel,
    baseline_evaluations,
    cross_population_error,
    drift_error,
    interaction_error,
    pair_jacobian_error,
    recovery_samples,
)
from mfsde.systems import NoisyKuramoto, TwoSpecies


def noise_record(diffusion) -> list | dict:
    """The model's noise after training: σ (constant noise) or affine noise's B and A (model units)."""
    if diffusion.additive:
        return diffusion.constant().detach().tolist()
    return {"bias": diffusion.fn.bias.detach().tolist(), "slope": diffusion.fn.slope.detach().tolist()}


def run(
    family: str,
    control: bool,
    preset: str,
    seed: int,
    budget: float,
    quick: bool,
    sigma: str = "preset",
    sigma_lr: float | None = None,
    inter_lr: float | None = None,
    inter_set: dict | None = None,
) -> dict:
    """One training run and its scores. ``inter_set``: config overrides (``{"model.inter.width": 16}``)
    applied to the presets with an interaction kernel, like ``inter_lr``."""
    systems, pops, task = dataset(family, control, seed)
    cfg = mfsde.preset(preset, dim=pops.dim)
    own = {}
    if cfg.model.inter.name != "none":
        own = dict(inter_set or {})
        if inter_lr is not None:
            own["train.inter_lr"] = inter_lr
    cfg = cfg.override(
        **{
            "train.seed": seed,
            "train.time_budget": budget,
            "train.iterations": 10**6,
            "train.n_particles": 128,
            **sigma_overrides(sigma, next(iter(systems.values())), sigma_lr),
            **own,
        }
    )
    res = fit(cfg, pops, task, progress=False)
    model = res.model
    ev = evaluate(model, pops, task, n_particles=N_CELLS, seed=seed, metrics=("w1",))
    row = {
        "kind": "model",
        "family": family,
        "control": control,
        "preset": preset,
        "seed": seed,
        "budget": budget,
        "sigma_mode": sigma,
        "sigma_lr": sigma_lr,
        "inter_options": cfg.to_dict()["model"]["inter"],
        "lr": cfg.train.lr,
        **_common.train_settings(cfg.train),
        "overrides": own,
        "sigma_model": noise_record(model.diffusion),
        "iterations": res.iteration,
        "train_seconds": res.train_seconds,
        "w1": ev["w1"],
        "w1_per_population": {n: v["w1"] for n, v in ev["per_population"].items()},
    }
    drift, inter, scaled, jac = [], [], [], []
    n_rec = 100 if quick else 300
    for name in task.heldout_populations:
        system, times = systems[name], list(pops[name].times)
        drift.append(drift_error(model, system, times, n_particles=n_rec, seed=seed + 1)["drift"])
        ie = interaction_error(model, system, times, n_particles=n_rec, seed=seed + 2)
        inter.append(ie["inter"])
        scaled.append(ie["inter_scaled"])
        jac.append(pair_jacobian_error(model, system, times, n_particles=min(n_rec, 150), seed=seed + 4))
    row.update(
        drift=float(np.mean(drift)),
        inter=float(np.mean(inter)),
        inter_scaled=float(np.mean(scaled)),
        inter_jac=float(np.mean([j["inter"] for j in jac])),
        cosine_jac=float(np.mean([j["cosine"] for j in jac])),
        jac_model_norm=float(np.mean([j["model_norm"] for j in jac])),
        jac_true_norm=float(np.mean([j["true_norm"] for j in jac])),
    )
    if not control:  # the two held-out populations against each other, at shared times
        h0, h1 = task.heldout_populations[:2]
        cross = cross_population_error(
            model, systems[h0], systems[h1], list(pops[h0].times), n_particles=n_rec, seed=seed + 3
        )
        row.update(inter_cross=cross["inter"], cosine_cross=cross["cosine"])
    kind = system_type(systems)
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


def baselines(family: str, control: bool, seed: int) -> list[dict]:
    systems, pops, task = dataset(family, control, seed)
    rows = []
    truth = []
    for name in task.heldout_populations:
        t = PredictTask.for_population(name, pops[name].n_times)
        truth.append(
            evaluate(SystemModel(systems[name]), pops[name], t, n_particles=N_CELLS, seed=seed, metrics=("w1",))["w1"]
        )
    rows.append(
        {
            "kind": "baseline",
            "family": family,
            "control": control,
            "preset": "truth",
            "seed": seed,
            "w1": float(np.mean(truth)),
        }
    )
    for ev in baseline_evaluations(pops, task, n_particles=N_CELLS, seed=seed, metrics=("w1",)):
        rows.append(
            {
                "kind": "baseline",
                "family": family,
                "control": control,
                "preset": ev["preset"],
                "seed": seed,
                "w1": ev["w1"],
            }
        )
    if issubclass(system_type(systems), NoisyKuramoto):  # the order parameter r(t) (see order_curves)
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
        for control in (True,) if only_controls else (False, True) if controls else (False,):
            for p in dict.fromkeys([*presets, *(EXTRA.get(fam, ()) if extra else ())]):  # a listed extra runs once
                for s in seeds:
                    out.append((fam, control, p, s))
    return out


def resume_conflict(old: list[dict], args, inter_set: dict, log_name: str) -> str | None:
    """Why the logged rows ``old`` cannot be resumed with these settings (``--resume`` must not mix
    runs of different settings under one name, nor runs of a preset that has changed since), or
    ``None``."""
    want = {**inter_set, **({"train.inter_lr": args.inter_lr} if args.inter_lr is not None else {})}
    clash = sorted(
        {
            f"{r['preset']} (budget {r['budget']:g} s, noise {r['sigma_mode']}, overrides {r['overrides']})"
            for r in old
            if r["kind"] == "model"
            and "overrides" in r
            and (
                (r["overrides"] != want and r["inter_options"].get("name") != "none")
                or r["budget"] != args.budget
                or r["sigma_mode"] != args.sigma
            )
        }
    )
    if clash:  # resuming must not mix runs of different settings under one name
        return f"--resume: {log_name} holds runs with other settings: {'; '.join(clash)}"
    stale = sorted(
        {
            f"{r['preset']} on {r['family']}"
            for r in old
            if r["kind"] == "model"
            and "inter_options" in r
            and (
                r["inter_options"] != kernel_options(r["preset"], r["family"], r.get("overrides") or {})
                or _common.logged_train_settings(r) != trained_as(r["preset"], r["family"], r.get("overrides") or {})
            )
        }
    )
    if stale:  # the same name and overrides, but the preset has changed since (scimf's qk_bias, rbf's inter_lr)
        return (
            f"--resume: {log_name} holds runs whose kernel, random batch or inter_lr differs from today's preset "
            f"({'; '.join(stale)}); "
            "start a new --name"
        )
    return None


def run_jobs(args, inter_set: dict, old: list[dict], log) -> None:
    """Every job of this shard not in ``old``: train, score and append its row to ``log`` (with the
    data set's baselines, computed once by the shard that runs its first job)."""
    k, n = args.shard
    done = {(r["family"], r["control"], r["preset"], r["seed"]) for r in old if r["kind"] == "model"}
    base_done = {(r["family"], r["control"], r["seed"]) for r in old if r["kind"] == "baseline"}
    commit = _common.env_info()["git_commit"]
    todo = jobs(
        args.families,
        args.presets,
        args.seeds,
        controls=not args.no_controls,
        only_controls=args.only_controls,
        extra=not args.no_extra,
    )
    print(f"{len(todo)} runs of {args.budget:g} s (+ evaluation); shard {k}/{n}", flush=True)
    mine = set(_common.share(range(len(todo)), args.shard))
    for i, (fam, control, preset, seed) in enumerate(todo):
        if i not in mine or (fam, control, preset, seed) in done:
            continue
        t0 = time.perf_counter()
        new = []
        first = next(j for j, job in enumerate(todo) if job[:2] == (fam, control) and job[3] == seed)
        if (fam, control, seed) not in base_done and first == i:  # one shard computes them
            new += baselines(fam, control, seed)
            base_done.add((fam, control, seed))
        row = run(
            fam, control, preset, seed, args.budget, args.quick, args.sigma, args.sigma_lr, args.inter_lr, inter_set
        )
        row.update(_common.run_fields(commit))
        new.append(row)
        _common.append_rows(log, new)
        print(
            f"{fam}{'_control' if control else ''} {preset} seed {seed}: W1 {row['w1']:.4f} drift {row['drift']:.3f} "
            f"inter {row['inter']:.3f} ({row['iterations']} it, {time.perf_counter() - t0:.0f} s)",
            flush=True,
        )


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
                s = recovery_samples(
                    SystemModel(systems[name].without_interaction()),
                    systems[name],
                    list(pops[name].times),
                    n_particles=300,
                    seed=seed + 2,
                )
                f2.append(float(s["f_true"].pow(2).sum(-1).mean()))
                per_pop.append(float(s["delta_true"].pow(2).sum(-1).mean()) / f2[-1])
            cross = cross_population_error(
                SystemModel(systems[h0].without_interaction()),
                systems[h0],
                systems[h1],
                list(pops[h0].times),
                n_particles=300,
                seed=seed + 3,
            )
            rows.append(
                {
                    "family": fam,
                    "seed": seed,
                    "time_pairs": float(np.mean(per_pop)),
                    "cross": cross["inter_norm"] / float(np.mean(f2)),
                }
            )
    lines = [
        "E‖Δf‖² / E‖f‖² of the true system on the held-out populations (300 particles, probes as in the "
        "interaction errors; the cross-population Δf in units of E‖f‖² at the time-pair probes), mean over "
        "seeds " + ", ".join(map(str, seeds)) + ".",
        "",
        "| family | Δf between two times of one population | Δf between the two held-out populations |",
        "|---|---|---|",
    ]
    for fam in families:
        rs = [r for r in rows if r["family"] == fam]
        lines.append(
            f"| {fam} | {_common.mean_pm([r['time_pairs'] for r in rs], drop_undefined=True)} | "
            f"{_common.mean_pm([r['cross'] for r in rs], drop_undefined=True)} |"
        )
    md = "\n".join(lines) + "\n"
    (_common.RESULTS_DIR / "populations_signal.md").write_text(md)
    _common.write_json(
        "populations_signal", {"settings": {"families": list(families), "seeds": list(seeds)}, "rows": rows}
    )
    return md
