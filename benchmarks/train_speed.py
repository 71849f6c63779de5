"""Training speed of the scIMF preset, the paper's recipe vs mfsde's defaults, and the choice of
``TrainConfig.n_targets`` (target sub-sampling) by accuracy vs time.

Data: CITE-seq 50-D PCA, days 2, 3, 4, 7 (``../shared/data/cite/full_cite_pcas_50_day_*.npy``;
6071 / 7643 / 8485 / 7195 cells), time axis in days minus day 2. Task: train on days 2 (t_0),
3, 4 (two supervised times with ~7000-8500 cells each), hold out day 7 (extrapolation).
Without the files, a synthetic 50-D set of the same sizes is used (say so in the output).

Model: ``mfsde.preset("scimf", dim=50)`` (attention + MLP, σ = 0.1, dt = 0.1, 512 particles,
Adam 1e-3, clip 0.1, seed 0); one iteration = draw 512 cells of day 2, simulate 20 Euler steps
to day 4, Sinkhorn (blur 0.1, scaling 0.7) at days 3 and 4 + path energy, backward, step.

Parts (all in one process):

1. ``speed``: two :class:`mfsde.training.Trainer` runs stepped in turn (so load changes on the
   shared CPU hit both alike), ``--iterations`` each:
   * ``paper``: the public code's recipe: ``torchsde`` ``method="euler"`` (energy accumulated
     as an extra state column, zero noise on it) and Sinkhorn against ALL observed cells;
   * ``mfsde``: mfsde's defaults: its own particle solver and ``n_targets`` sub-sampling
     (``TrainConfig.n_targets``).
   Reports median seconds per iteration and, after the same number of iterations, exact W1 /
   W2 (POT) at the held-out day 7 from ``--eval-particles`` simulated cells.
2. ``fidelity`` (accuracy vs time of the loss): at the trained model and one fixed simulation,
   the fit term with all targets (reference) and with ``n_targets`` ∈ ``--n-targets`` drawn
   ``--repeats`` times: seconds for loss forward + backward, relative bias / sd of the loss
   value, and the cosine between the sub-sampled and the all-target gradients, w.r.t. the
   particles and w.r.t. the parameters (pulled back through the simulation: what Adam sees).
   Calibration: the parameter-gradient cosine between two independent all-target iterations
   (the noise of stochastic training itself); sub-sampling is harmless where its cosine to
   the reference stays well above that.
3. ``sweep`` (``--sweep-train``, slow): end-to-end, one Trainer per ``n_targets`` (own solver),
   stepped in turn for ``--iterations``; seconds per iteration and held-out W1/W2.

    python benchmarks/train_speed.py [--quick] [--iterations 20] [--n-targets 200,500,1000,2000,all]
                                     [--repeats 5] [--eval-particles 2000] [--sweep-train]

``--quick``: 2 iterations, 2 fidelity repeats, 1000 evaluation particles (a smoke run).
Writes ``benchmarks/results/train_speed.json`` (``--out`` to change).

Measured (torch 2.13 CPU, 2 threads; ``--iterations 4 --repeats 3``, see docs/results.md for the table):

* per iteration: paper recipe 47.7 s (46-54 s; the first two on an idle machine), mfsde
  defaults 1.42 s (1.0-1.6 s): 33.6x. The all-target debiased Sinkhorn is almost all of the
  paper's cost (geomloss solves the M x M target-target problem, 8485^2 entries, at every
  iteration, although it carries no gradient); an mfsde iteration is ~75 % Sinkhorn (profiled).
* held-out day-7 W1 after 4 iterations: 60.8 (paper) vs 62.0 (mfsde), +2.0 %.
* ``TrainConfig.n_targets = 1000``: loss bias +2.4 %, parameter-gradient cosine to the
  all-target gradient 0.988, against 0.955 between two independent all-target iterations (SGD
  noise); 200 targets: +9.9 % and 0.928 (as noisy as SGD itself); 2000 targets gains little for
  2.3x the loss time. 1000 costs ~1/30 of the all-target loss.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO_ROOT, env_info, markdown_table, write_json

import mfsde
from mfsde import evaluate
from mfsde.config import TrainConfig
from mfsde.losses import LOSSES
from mfsde.solvers import torchsde_sdeint
from mfsde.training import Trainer

CITE = REPO_ROOT.parent / "shared" / "data" / "cite"
DAYS = (2, 3, 4, 7)
COUNTS = (6071, 7643, 8485, 7195)


# -- data -------------------------------------------------------------------------------------
def load_data():
    from mfsde.data import from_arrays, load_npy

    files = [CITE / f"full_cite_pcas_50_day_{d}.npy" for d in DAYS]
    if all(f.is_file() for f in files):
        return load_npy(files, times=list(DAYS), name="cite50"), "cite50 (../shared/data/cite)"
    rng = np.random.default_rng(0)
    scale = np.r_[np.full(5, 30.0), np.full(45, 3.0)]
    drift = rng.normal(size=50) * scale / 4
    arrays = [(rng.normal(size=(n, 50)) * scale + (d - 2) * drift).astype(np.float32) for n, d in zip(COUNTS, DAYS)]
    return from_arrays(arrays, times=list(DAYS)), "synthetic 50-D Gaussians (CITE files absent)"


def make_task():
    try:
        from mfsde.data import Task

        return Task("cite-day7", train=[0, 1, 2], heldout=[3], n_times=4)
    except ImportError:
        return SimpleNamespace(name="cite-day7", train=[0, 1, 2], heldout=[3])


# -- the paper's solver: torchsde euler with the energy as an extra state column ----------------
def torchsde_simulate(model, x0, ts, generator, bm=None):
    """torchsde ``method="euler"``, dt = model.dt; the path energy ∫ mean_i ‖f‖² dt is integrated
    as a (d+1)-th coordinate with zero noise (left-point rule, as mfsde's solver does).
    ``bm``: a torchsde Brownian motion of size ``(1, N·(d+1))`` (default: torchsde's own)."""
    d = x0.shape[-1]
    if not model.diffusion.additive or model.diffusion.general:
        raise ValueError(f"torchsde_simulate takes constant diagonal noise, got {model.diffusion.kind!r}")
    sigma = torch.broadcast_to(model.diffusion(x0, 0.0), x0.shape).reshape(-1, d)[0]  # constant σ: (d,)
    sigma_aug = torch.cat([sigma.detach().to(x0.dtype), sigma.new_zeros(1)])

    def drift(z, t):
        f = model.drift(z[..., :d], t)
        return torch.cat([f, f.pow(2).sum(-1, keepdim=True)], dim=-1)

    z0 = torch.cat([x0, x0.new_zeros(*x0.shape[:-1], 1)], dim=-1)
    zs = torchsde_sdeint(drift, z0, ts, sigma=sigma_aug, dt=model.dt, method="euler", bm=bm)
    return SimpleNamespace(ts=ts, xs=zs[..., :d], energy=zs[..., d].mean(-1))


# -- helpers ----------------------------------------------------------------------------------
def median(xs):
    return statistics.median(xs) if xs else float("nan")


def steady(history):
    """Per-iteration seconds without the first (warm-up) iteration when there are more."""
    s = [h["seconds"] for h in history]
    return s[1:] if len(s) > 1 else s


def label(n):
    return "all" if n is None else str(n)


def parse_targets(text: str):
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        out.append(None if part in ("all", "none") else int(part))
    return out


def step_in_turn(trainers: dict, iterations: int, log):
    for i in range(iterations):
        names = list(trainers)
        k = i % len(names)
        for name in names[k:] + names[:k]:
            rec = trainers[name].step()
            log(
                f"  iter {i + 1:3d} {name:>10}: {rec['seconds']:7.2f} s  loss {rec['loss']:.4g} "
                f"(fit {rec['fit']:.4g}, energy {rec['energy']:.3g})"
            )


def held_out(trainer, snaps, task, n_particles, log):
    t0 = time.perf_counter()
    ev = evaluate(trainer.model, snaps, task, n_particles=n_particles, seed=0)
    log(f"  eval: W1 {ev['w1']:.3f}  W2 {ev['w2']:.3f}  ({time.perf_counter() - t0:.0f} s)")
    trainer.model.train()
    return {"w1": ev["w1"], "w2": ev["w2"]}


# -- parts ------------------------------------------------------------------------------------
def part_speed(cfg, snaps, task, args, log):
    log(
        f"speed: paper (torchsde euler, all targets) vs mfsde (own solver, n_targets={cfg.train.n_targets}), "
        f"{args.iterations} iterations each, stepped in turn"
    )
    trainers = {
        "paper": Trainer(cfg.override(**{"train.n_targets": None}), snaps, task, simulate=torchsde_simulate),
        "mfsde": Trainer(cfg, snaps, task),
    }
    step_in_turn(trainers, args.iterations, log)
    out = {}
    for name, tr in trainers.items():
        log(f" {name}:")
        out[name] = {
            "n_targets": label(tr.config.train.n_targets),
            "solver": "torchsde euler" if name == "paper" else tr.config.model.solver,
            "seconds_per_iteration": median(steady(tr.history)),
            "seconds_all": [h["seconds"] for h in tr.history],
            "final_loss": tr.history[-1]["loss"],
            "heldout": held_out(tr, snaps, task, args.eval_particles, log),
        }
    out["speedup"] = out["paper"]["seconds_per_iteration"] / out["mfsde"]["seconds_per_iteration"]
    return out, trainers["mfsde"]


def part_fidelity(cfg, snaps, task, trainer, targets, repeats, log):
    """Loss and gradients with sub-sampled targets vs all targets, at one fixed simulation.

    One simulation (512 cells, train mode, fixed seed) is kept with its graph. For every target
    choice the fit term is computed, its gradient w.r.t. the particles, and that gradient pulled
    back through the simulation to the parameters (what Adam sees; after clipping only the
    direction matters, hence cosines). Calibration: the parameter-gradient cosine between two
    independent iterations (other cells, other noise) both using all targets, i.e. the noise SGD
    has anyway.
    """
    model, gen_seed = trainer.model, 123
    model.train()
    fit_idx = [i for i in sorted(task.train) if i >= 1]
    ys = snaps.tensors(torch.float32, "cpu")
    params = [p for p in model.parameters() if p.requires_grad]
    opts = dict(cfg.loss.fit.options)
    opts.pop("n_targets", None)
    from mfsde.training import default_simulate, draw_initial

    def simulation(seed):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        x0 = draw_initial(ys[0], cfg.train.n_particles, gen)
        t0 = time.perf_counter()
        sol = default_simulate(model, x0, trainer.series[0].ts, gen)
        return [sol.xs[k] for k in fit_idx], time.perf_counter() - t0

    def grads(xs, n_targets, gen):
        loss_fn = LOSSES.build(cfg.loss.fit.name, **opts, n_targets=n_targets)
        leaves = [x.detach().requires_grad_(True) for x in xs]
        t0 = time.perf_counter()
        value = torch.stack([loss_fn(x, ys[k], generator=gen) for x, k in zip(leaves, fit_idx)]).mean()
        pg = torch.autograd.grad(value, leaves)
        loss_secs = time.perf_counter() - t0
        t0 = time.perf_counter()
        g = torch.autograd.grad(xs, params, grad_outputs=pg, retain_graph=True, allow_unused=True)
        back_secs = time.perf_counter() - t0
        g = torch.cat([(gi if gi is not None else torch.zeros_like(p)).reshape(-1) for gi, p in zip(g, params)])
        return value.item(), torch.cat([q.reshape(-1) for q in pg]), g, loss_secs, back_secs

    def cos(a, b):
        return float(torch.nn.functional.cosine_similarity(a, b, dim=0))

    log("fidelity: reference (all targets) …")
    xs, sim_secs = simulation(gen_seed)
    ref_value, ref_pg, ref_g, ref_secs, back_secs = grads(xs, None, None)
    log(
        f"  simulation {sim_secs:.1f} s, backward through it {back_secs:.1f} s; all targets: loss {ref_value:.4g}, "
        f"{ref_secs:.1f} s (loss forward + backward, {len(fit_idx)} times)"
    )
    xs_b, _ = simulation(gen_seed + 1)
    _, _, g_b, secs_b, _ = grads(xs_b, None, None)
    del xs_b
    baseline = cos(ref_g, g_b)
    log(f"  calibration: param-gradient cosine between two iterations with all targets = {baseline:.3f}")
    rows = []
    for nt in targets:
        if nt is None:
            rows.append(
                {
                    "n_targets": "all",
                    "loss_seconds": median([ref_secs, secs_b]),
                    "loss_rel_bias": 0.0,
                    "loss_rel_sd": 0.0,
                    "particle_grad_cosine": 1.0,
                    "param_grad_cosine": 1.0,
                    "param_grad_cosine_sd": 0.0,
                }
            )
            continue
        gen = torch.Generator().manual_seed(7)
        vals, secs, pcos, gcos = [], [], [], []
        for _ in range(repeats):
            v, pg, g, s, _ = grads(xs, nt, gen)
            vals.append(v)
            secs.append(s)
            pcos.append(cos(pg, ref_pg))
            gcos.append(cos(g, ref_g))
        row = {
            "n_targets": str(nt),
            "loss_seconds": median(secs),
            "loss_rel_bias": (float(np.mean(vals)) - ref_value) / abs(ref_value),
            "loss_rel_sd": float(np.std(vals)) / abs(ref_value),
            "particle_grad_cosine": float(np.mean(pcos)),
            "param_grad_cosine": float(np.mean(gcos)),
            "param_grad_cosine_sd": float(np.std(gcos)),
        }
        rows.append(row)
        log(
            f"  {nt:>5}: loss {row['loss_seconds']:.2f} s, bias {100 * row['loss_rel_bias']:+.2f}% "
            f"(sd {100 * row['loss_rel_sd']:.2f}%), particle-grad cosine {row['particle_grad_cosine']:.3f}, "
            f"param-grad cosine {row['param_grad_cosine']:.3f}"
        )
    return {
        "reference_loss": ref_value,
        "repeats": repeats,
        "simulation_seconds": sim_secs,
        "simulation_backward_seconds": back_secs,
        "baseline_param_grad_cosine": baseline,
        "rows": rows,
    }


def part_sweep(cfg, snaps, task, targets, args, log):
    log(f"sweep: end-to-end training per n_targets, {args.iterations} iterations each, stepped in turn")
    trainers = {label(nt): Trainer(cfg.override(**{"train.n_targets": nt}), snaps, task) for nt in targets}
    step_in_turn(trainers, args.iterations, log)
    rows = []
    for name, tr in trainers.items():
        log(f" n_targets={name}:")
        rows.append(
            {
                "n_targets": name,
                "seconds_per_iteration": median(steady(tr.history)),
                "final_loss": tr.history[-1]["loss"],
                **held_out(tr, snaps, task, args.eval_particles, log),
            }
        )
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iterations", type=int, default=20, help="training iterations per variant (default 20)")
    ap.add_argument("--quick", action="store_true", help="2 iterations, 2 repeats, 1000 eval particles")
    ap.add_argument("--n-targets", default="200,500,1000,2000,all", help="comma list; 'all' = every cell")
    ap.add_argument("--repeats", type=int, default=5, help="sub-sample draws per n_targets in the fidelity part")
    ap.add_argument("--eval-particles", type=int, default=2000)
    ap.add_argument("--sweep-train", action="store_true", help="also train end-to-end per n_targets (slow)")
    ap.add_argument("--skip-speed", action="store_true", help="skip part 1 (the paper recipe is the slow one)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--max-cells", type=int, default=None, help="keep at most this many cells per day (smoke runs)")
    ap.add_argument("--particles", type=int, default=None, help="override train.n_particles (smoke runs)")
    ap.add_argument("--out", default="train_speed", help="results name under benchmarks/results/")
    args = ap.parse_args(argv)
    if args.quick:
        args.iterations, args.repeats = min(args.iterations, 2), min(args.repeats, 2)
        args.eval_particles = min(args.eval_particles, 1000)
    if args.threads:
        torch.set_num_threads(args.threads)
    targets = parse_targets(args.n_targets)

    def log(msg):
        print(msg, flush=True)

    snaps, source = load_data()
    if args.max_cells:
        from mfsde.data import from_arrays

        rng = np.random.default_rng(0)
        snaps = from_arrays([a[rng.permutation(len(a))[: args.max_cells]] for a in snaps.data], times=snaps.times)
        source += f", at most {args.max_cells} cells per day"
    task = make_task()
    overrides = {"train.iterations": args.iterations}
    if args.particles:
        overrides["train.n_particles"] = args.particles
    cfg = mfsde.preset("scimf", dim=snaps.dim).override(**overrides)
    log(f"data: {source}: {snaps}")
    log(
        f"task: train {list(task.train)}, held out {list(task.heldout)}; default n_targets = "
        f"{TrainConfig().n_targets}; torch threads {torch.get_num_threads()}"
    )
    t_start = time.perf_counter()
    result = {
        "benchmark": "train_speed",
        "env": env_info(),
        "data": source,
        "counts": [len(a) for a in snaps.data],
        "times": snaps.times.tolist(),
        "task": {"train": list(task.train), "heldout": list(task.heldout)},
        "settings": {
            "iterations": args.iterations,
            "quick": args.quick,
            "repeats": args.repeats,
            "eval_particles": args.eval_particles,
            "n_targets": [label(t) for t in targets],
            "config": cfg.to_dict(),
        },
    }
    if not args.skip_speed:
        result["speed"], trainer = part_speed(cfg, snaps, task, args, log)
    else:
        trainer = Trainer(cfg, snaps, task)
    result["fidelity"] = part_fidelity(cfg, snaps, task, trainer, targets, args.repeats, log)
    if args.sweep_train:
        result["sweep"] = part_sweep(cfg, snaps, task, targets, args, log)
    result["total_seconds"] = time.perf_counter() - t_start
    path = write_json(args.out, result)

    print()
    if "speed" in result:
        sp = result["speed"]
        rows = [
            [
                name,
                sp[name]["solver"],
                sp[name]["n_targets"],
                sp[name]["seconds_per_iteration"],
                sp[name]["heldout"]["w1"],
                sp[name]["heldout"]["w2"],
            ]
            for name in ("paper", "mfsde")
        ]
        print(f"Seconds per iteration and held-out (day 7) W1/W2 after {args.iterations} iterations:")
        print(markdown_table(["recipe", "solver", "targets", "s / iteration", "W1 day 7", "W2 day 7"], rows))
        print(f"speed-up mfsde vs paper: {sp['speedup']:.1f}x")
        print()
    fr = result["fidelity"]["rows"]
    fi = result["fidelity"]
    print(
        "Fidelity of target sub-sampling at one simulation (reference = all targets); "
        f"simulation {fi['simulation_seconds']:.1f} s + backward {fi['simulation_backward_seconds']:.1f} s;"
    )
    print(
        f"param-gradient cosine between two independent all-target iterations (SGD noise): "
        f"{fi['baseline_param_grad_cosine']:.3f}"
    )
    print(
        markdown_table(
            ["n_targets", "loss s (fwd+bwd)", "loss bias %", "loss sd %", "particle-grad cos", "param-grad cos"],
            [
                [
                    r["n_targets"],
                    r["loss_seconds"],
                    100 * r["loss_rel_bias"],
                    100 * r["loss_rel_sd"],
                    r["particle_grad_cosine"],
                    r["param_grad_cosine"],
                ]
                for r in fr
            ],
        )
    )
    if "sweep" in result:
        print()
        print(
            markdown_table(
                ["n_targets", "s / iteration", "W1 day 7", "W2 day 7"],
                [[r["n_targets"], r["seconds_per_iteration"], r["w1"], r["w2"]] for r in result["sweep"]],
            )
        )
    print(f"\nwrote {path} ({result['total_seconds']:.0f} s)")
    return result


if __name__ == "__main__":
    main()
