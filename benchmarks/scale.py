"""Scale-out: seconds and peak memory of a drift evaluation and a training step vs N, per kernel,
full interaction vs the random batch method.

Kernels are the presets' interactions at d = 50 (``attention`` = the ``scimf`` preset: 2 heads,
LayerNorms, FFN, dropout 0.1; ``rbf``, ``pairwise_mlp``; ``none`` = the ``ito`` preset), each with
the preset's MLP f_intra. For every kernel, N and mode (``full``: every particle interacts with
all others; ``rb``: random batch method, groups of ``--batch`` particles, one fresh shuffle per
step; ``none`` has no interaction and runs ``full`` only) one fresh subprocess measures:

* ``eval`` - one drift evaluation ``model.drift(x)`` (f_intra + f_inter), ``x ~ N(0, I)`` of shape
  ``(N, 50)``, eval mode, ``torch.no_grad()``;
* ``step`` - one training step in train mode: 4 Euler-Maruyama steps (ts = 0, 0.2, 0.4; dt = 0.1;
  σ = 0.1) with the path energy, Sinkhorn loss (blur 0.1, scaling 0.7, ``n_targets=1000``) at
  t = 0.2 and 0.4 against fixed target clouds of 5000 points, loss = mean fit + energy / 0.4,
  ``backward()`` and one Adam step. The debiased Sinkhorn divergence contains S(x, x), an N x N
  problem in geomloss's tensorized backend (40 GB at N = 100k), so the fit term compares a fixed
  random subset of 1000 simulated particles (all of them for N <= 1000); the simulation, the
  energy term and the backward run over all N particles.

Memory: on CPU the peak resident-memory increase of the call (``VmHWM`` after resetting it through
``/proc/self/clear_refs``, minus ``VmRSS`` before the call; workers use
``MALLOC_MMAP_THRESHOLD_=131072`` so that freed buffers leave RSS, as in attention_memory.py); on
CUDA ``torch.cuda.max_memory_allocated`` minus the memory allocated before the call.

Time budget and extrapolation. A pilot times f_inter on the first 64 receiver rows against all N
sources (``Interaction.forward_rows``). When the predicted cost of a cell exceeds
``--max-seconds``, the cell is *extrapolated*, never reported as measured:

* ``eval``: ``forward_rows(x, rows)`` timed for R and 2R rows (R sized to the budget); the linear
  fit t = a + b·R gives t(N); f_intra is timed on all N and added;
* ``step``: the same fit for forward + backward of ``forward_rows`` (all N sources, parameters and
  x requiring grad) gives one f_inter fwd+bwd at N, times the 4 drift evaluations of the step,
  plus the *measured* step of the same model with the interaction switched off.

Extrapolated cells carry ``"extrapolated": true`` and an ``*`` in the table; their memory is the
peak of the parts that ran (the chunked kernels hold O(N·chunk) whatever the number of rows, so
this is the peak of a full call up to O(N·d) outputs). Slopes of log seconds vs log N are fitted
on measured cells only.

    python benchmarks/scale.py [--quick] [--sizes 1000 5000 20000 100000] [--kernels ...]
                               [--batch 64] [--max-seconds 60] [--device cpu|cuda] [--threads T]

Writes ``benchmarks/results/scale{_quick}{_cuda}.json``, ``.md`` and ``.png`` (matplotlib).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, env_info, markdown_table, write_json

D = 50
MIB = 2**20
KERNELS = {"attention": "scimf", "rbf": "rbf", "pairwise_mlp": "pairwise_mlp", "none": "ito"}
TS, DT, N_TARGETS, TARGET_POINTS = (0.0, 0.2, 0.4), 0.1, 1000, 5000
# geomloss's debiased Sinkhorn has an N x N term S(x, x) (40 GB at N = 100k, tensorized backend):
# the fit loss sees a fixed random subset of this many simulated particles
LOSS_PARTICLES = 1000
N_EVALS = 4  # Euler-Maruyama drift evaluations in one step
PILOT_ROWS = 64
MMAP_THRESHOLD = 128 * 1024
STARTUP_S = 6.0  # subprocess start, imports, model build, warm-up (for the up-front estimate)


# -- memory and timing in the worker ------------------------------------------------------------
class Meter:
    """Peak memory increase and wall time of a call, on CPU (VmHWM) or CUDA (allocator stats)."""

    def __init__(self, device):
        import torch

        self.torch, self.device = torch, device
        self.cuda = device.type == "cuda"

    def _kib(self, field):
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize(self.device)

    def __call__(self, fn):
        """(seconds, peak bytes above the pre-call level, method) of one call of ``fn``."""
        gc.collect()
        self.sync()
        if self.cuda:
            self.torch.cuda.reset_peak_memory_stats(self.device)
            base = self.torch.cuda.memory_allocated(self.device)
        else:
            base = self._kib("VmRSS")
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
        t0 = time.perf_counter()
        fn()
        self.sync()
        seconds = time.perf_counter() - t0
        if self.cuda:
            return seconds, self.torch.cuda.max_memory_allocated(self.device) - base, "cuda max_memory_allocated"
        return seconds, (self._kib("VmHWM") - base) * 1024, "VmHWM after clear_refs"


def _timed(meter, fn, repeats):
    """First call's memory; median seconds over ``repeats`` calls (the first included)."""
    secs, peak, method = meter(fn)
    times = [secs] + [meter(fn)[0] for _ in range(repeats - 1)]
    return statistics.median(times), peak, method


def _linear_fit(r1, t1, r2, t2, n):
    """t(n) from t = a + b·r through (r1, t1), (r2, t2); a negative intercept (noise) is dropped."""
    b = (t2 - t1) / (r2 - r1)
    a = t1 - b * r1
    if a < 0 or b <= 0:
        return t2 / r2 * n
    return a + b * n


# -- the worker ---------------------------------------------------------------------------------
def _setup(kernel, n, device, seed=0):
    import torch

    import mfsde

    torch.manual_seed(seed)
    model = mfsde.model.build_model(mfsde.preset(KERNELS[kernel], dim=D)).to(device)
    g = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn(n, D, generator=g, device=device)
    targets = [torch.randn(TARGET_POINTS, D, generator=g, device=device) + 0.5 * k for k in (1, 2)]
    return model, x, targets


def _step_fn(model, x, targets, batch, device, seed=1):
    """One training step (see the module docstring) as a closure."""
    import torch

    from mfsde.losses import SinkhornLoss

    loss_fn = SinkhornLoss(blur=0.1, scaling=0.7, n_targets=N_TARGETS)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator(device=device).manual_seed(seed)
    tg = torch.Generator().manual_seed(seed)
    n = x.shape[0]
    sub = torch.randperm(n, generator=tg)[:LOSS_PARTICLES].to(device) if n > LOSS_PARTICLES else None

    def step():
        model.train()
        opt.zero_grad(set_to_none=True)
        sol = model(x, list(TS), dt=DT, generator=g, energy=True, random_batch=batch)
        xs = sol.xs if sub is None else sol.xs[:, sub]
        fit = torch.stack([loss_fn(xs[k], targets[k - 1], generator=tg) for k in (1, 2)]).mean()
        loss = fit + sol.energy[-1] / TS[-1]
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def _eval_fn(model, x, batch, device, seed=2):
    import torch

    from mfsde.solvers import random_batch_drift

    g = torch.Generator(device=device).manual_seed(seed)
    drift = model.drift.eval()

    def call():
        with torch.no_grad():
            if batch is None:
                return drift(x)
            return random_batch_drift(drift, torch.randperm(x.shape[0], generator=g, device=device), batch)(x)

    return call


def _rows_fn(inter, x, rows, grad):
    """f_inter at ``rows`` receivers (all N sources), with or without backward."""
    import torch

    def call():
        if not grad:
            with torch.no_grad():
                inter.forward_rows(x, slice(0, rows))
            return
        xg = x.detach().requires_grad_(True)
        for p in inter.parameters():
            p.grad = None
        inter.forward_rows(xg, slice(0, rows)).square().mean().backward()

    return call


def _extrapolate_rows(meter, inter, x, grad, rate, budget):
    """Linear fit of f_inter cost over R and 2R receiver rows, evaluated at N (see docstring)."""
    n = x.shape[0]
    r1 = min(n // 2, max(PILOT_ROWS, min(n // 4, int(budget / 3 / max(rate, 1e-12)))))  # 2·r1 ≤ n
    t1, p1, _ = meter(_rows_fn(inter, x, r1, grad))
    t2, p2, _ = meter(_rows_fn(inter, x, 2 * r1, grad))
    return _linear_fit(r1, t1, 2 * r1, t2, n), max(p1, p2), {"fit_rows": [r1, 2 * r1], "fit_seconds": [t1, t2]}


def worker(kernel, n, mode, batch, max_seconds, device_name, threads=None, step_max_seconds=None):
    import torch

    from mfsde.drifts import MeanFieldDrift
    from mfsde.interactions import NoInteraction

    if threads:
        torch.set_num_threads(threads)
    device = torch.device(device_name)
    meter = Meter(device)
    model, x, targets = _setup(kernel, n, device)
    b = batch if mode == "rb" else None
    inter = model.drift.inter.eval()
    # warm-up at a small N (kernels, thread pools), then the pilot rate of f_inter per receiver row
    small, small_x, small_targets = _setup(kernel, 128, device)
    _eval_fn(small, small_x, b, device)()
    _step_fn(small, small_x, small_targets, b, device)()
    # pilot: f_inter on 64 and 128 receiver rows (all N sources); the linear fit separates the
    # O(N) part (projections of all sources) from the per-row cost
    r1, r2 = min(PILOT_ROWS, n), min(2 * PILOT_ROWS, n)
    t1 = meter(_rows_fn(inter, x, r1, False))[0]
    t2 = meter(_rows_fn(inter, x, r2, False))[0] if r2 > r1 else t1
    full_inter = _linear_fit(r1, t1, r2, t2, n) if r2 > r1 else t1 * n / r1
    rate = full_inter / n  # seconds per receiver row against N sources (no grad)
    predicted_eval = full_inter * min(b or n, n) / n  # N rows x (B or N) sources
    out = {
        "kernel": kernel,
        "N": n,
        "mode": mode,
        "batch": b,
        "device": device_name,
        "torch_num_threads": torch.get_num_threads(),
        "pilot_rows": [r1, r2],
        "pilot_s": [t1, t2],
        "predicted_eval_s": predicted_eval,
    }

    # (a) drift evaluation
    if mode == "rb" or kernel == "none" or predicted_eval <= max_seconds:
        secs, peak, method = _timed(meter, _eval_fn(model, x, b, device), 3 if predicted_eval < 1 else 1)
        out["eval"] = {"seconds": secs, "peak_bytes": peak, "extrapolated": False}
        print(f"eval {out['eval']}", file=sys.stderr, flush=True)
    else:
        t_inter, peak, detail = _extrapolate_rows(meter, inter, x, False, rate, max_seconds / 2)
        intra = model.drift.intra.eval()

        def intra_call():
            with torch.no_grad():
                intra(x)

        t_intra, p_intra, method = meter(intra_call)
        out["eval"] = {
            "seconds": t_inter + t_intra,
            "peak_bytes": max(peak, p_intra),
            "extrapolated": True,
            "method": "f_inter: linear fit over receiver rows; f_intra measured",
            **detail,
        }
    out["peak_method"] = method

    # (b) training step (forward + backward + recompute of checkpointed chunks: ~4x a forward)
    predicted_step = N_EVALS * 4 * predicted_eval + 1.0
    out["predicted_step_s"] = predicted_step
    step = _step_fn(model, x, targets, b, device)
    step_budget = max_seconds if step_max_seconds is None else step_max_seconds
    if mode == "rb" or kernel == "none" or predicted_step <= step_budget:
        secs, peak, _m = _timed(meter, step, 3 if predicted_step < 1 else 1)
        out["step"] = {"seconds": secs, "peak_bytes": peak, "extrapolated": False}
    else:
        t_fb, peak, detail = _extrapolate_rows(meter, model.drift.inter.train(), x, True, 4 * rate, step_budget / 2)
        bare = type(model)(MeanFieldDrift(model.drift.intra, NoInteraction(D)), sigma=model.diffusion, dt=model.dt).to(
            device
        )
        t_rest, p_rest, _m = meter(_step_fn(bare, x, targets, None, device))
        out["step"] = {
            "seconds": N_EVALS * t_fb + t_rest,
            "peak_bytes": max(peak, p_rest),
            "extrapolated": True,
            "method": f"{N_EVALS} x f_inter fwd+bwd (linear fit over receiver rows) + measured step without f_inter",
            "step_without_inter_s": t_rest,
            **detail,
        }
    return out


# -- driver ---------------------------------------------------------------------------------------
def run_cell(kernel, n, mode, args) -> dict:
    cmd = (
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            "--kernel",
            kernel,
            "--n",
            str(n),
            "--mode",
            mode,
            "--batch",
            str(args.batch),
            "--max-seconds",
            str(args.max_seconds),
            "--device",
            args.device,
        ]
        + ([] if args.threads is None else ["--threads", str(args.threads)])
        + ([] if args.step_max_seconds is None else ["--step-max-seconds", str(args.step_max_seconds)])
    )
    env = os.environ.copy()
    env.setdefault("MALLOC_MMAP_THRESHOLD_", str(MMAP_THRESHOLD))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env)
    if proc.returncode != 0:
        return {"kernel": kernel, "N": n, "mode": mode, "error": proc.stderr[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cells(args):
    modes = getattr(args, "modes", None) or ["full", "rb"]
    return [(k, n, m) for k in args.kernels for n in args.sizes for m in modes if not (k == "none" and m == "rb")]


def estimate_seconds(args) -> float:
    """Up-front bound: per cell start-up plus, for every phase that may hit the budget, the budget
    (an extrapolated phase costs ~budget: pilot + R + 2R rows + the step without f_inter)."""
    total = 0.0
    for kernel, n, mode in cells(args):
        total += STARTUP_S + 5.0  # start-up, warm-up, Sinkhorn of the step (~constant in N)
        if mode == "full" and kernel != "none" and n >= 5000:
            total += 2 * args.max_seconds  # both phases extrapolated or cut at the budget
        else:  # always measured: O(N) with measured per-1000-particle costs on 2 cores
            total += n / 1000 * {"pairwise_mlp": 2.0, "none": 0.3}.get(kernel, 0.5 if mode == "rb" else 4.0)
    return total


def loglog_slope(points):
    """Least-squares slope of log seconds vs log N over (N, seconds) points (None if < 2)."""
    pts = [(math.log(n), math.log(s)) for n, s in points if s and s > 0]
    if len(pts) < 2:
        return None
    mx, my = statistics.fmean(p[0] for p in pts), statistics.fmean(p[1] for p in pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx else None


def slopes(runs):
    out = {}
    for kernel in dict.fromkeys(r["kernel"] for r in runs):
        for mode in ("full", "rb"):
            for what in ("eval", "step"):
                rs = [r for r in runs if r["kernel"] == kernel and r["mode"] == mode and what in r]
                meas = [(r["N"], r[what]["seconds"]) for r in rs if not r[what]["extrapolated"]]
                if rs:
                    large = [(n, t) for n, t in meas if n >= 5000]
                    out[f"{kernel}/{mode}/{what}"] = {
                        "slope_measured": loglog_slope(meas),
                        "n_measured": len(meas),
                        "slope_measured_N_ge_5000": loglog_slope(large),
                        "n_measured_N_ge_5000": len(large),
                        "slope_all": loglog_slope([(r["N"], r[what]["seconds"]) for r in rs]),
                        "n_all": len(rs),
                    }
    return out


def interaction_step_slopes(runs) -> dict:
    """Log-log slope vs N (N ≥ 5000, measured cells) of the random-batch training step *minus* the
    `none` kernel's step at the same N: the interaction's share of the step. The step also holds
    an N-independent Sinkhorn (1000 sub-sampled particles vs fixed targets), which flattens the
    raw step slope at these sizes."""
    base = {
        r["N"]: r["step"]["seconds"]
        for r in runs
        if r["kernel"] == "none" and "step" in r and not r["step"]["extrapolated"]
    }
    out = {}
    for kernel in dict.fromkeys(r["kernel"] for r in runs if r["kernel"] != "none"):
        pts = [
            (r["N"], r["step"]["seconds"] - base[r["N"]])
            for r in runs
            if r["kernel"] == kernel
            and r["mode"] == "rb"
            and "step" in r
            and not r["step"]["extrapolated"]
            and r["N"] in base
            and r["N"] >= 5000
        ]
        pts = [(n, t) for n, t in pts if t > 0]
        out[f"{kernel}/rb/step - none/step"] = {"slope": loglog_slope(pts), "points": pts}
    return out


def table(runs):
    rows = []
    for r in runs:
        if "error" in r:
            rows.append([r["kernel"], r["mode"], r["N"], "error", "", "", "", ""])
            continue
        cell = []
        for what in ("eval", "step"):
            c = r[what]
            star = "*" if c["extrapolated"] else ""
            cell += [f"{c['seconds']:.3g}{star}", f"{c['peak_bytes'] / MIB:.0f}{star}"]
        rows.append([r["kernel"], r["mode"] if r["mode"] == "full" else f"rb B={r['batch']}", r["N"], *cell])
    headers = ["kernel", "mode", "N", "eval s", "eval peak MiB", "step s", "step peak MiB"]
    return markdown_table(headers, rows)


def plot(runs, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8), sharex=True)
    colors = dict(zip(KERNELS, ["C0", "C1", "C2", "C3"]))
    for j, what in enumerate(("eval", "step")):
        for i, (key, scale, label) in enumerate((("seconds", 1, "seconds"), ("peak_bytes", MIB, "peak MiB"))):
            ax = axes[i, j]
            for kernel in KERNELS:
                for mode, style in (("full", "-"), ("rb", "--")):
                    rs = sorted(
                        (r for r in runs if r.get("kernel") == kernel and r.get("mode") == mode and what in r),
                        key=lambda r: r["N"],
                    )
                    if not rs:
                        continue
                    ns = [r["N"] for r in rs]
                    ys = [max(r[what][key] / scale, 1e-3) for r in rs]
                    ax.plot(ns, ys, style, color=colors[kernel], label=f"{kernel} {mode}")
                    ext = [(n_, y) for n_, y, r in zip(ns, ys, rs) if r[what]["extrapolated"]]
                    meas = [(n_, y) for n_, y, r in zip(ns, ys, rs) if not r[what]["extrapolated"]]
                    if meas:
                        ax.plot(*zip(*meas), "o", color=colors[kernel])
                    if ext:
                        ax.plot(*zip(*ext), "o", mfc="none", color=colors[kernel])
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{what}: {label}")
            ax.set_xlabel("N")
            ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("mfsde scale-out (d = 50); hollow markers = extrapolated")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000, 100000])
    ap.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=list(KERNELS))
    ap.add_argument(
        "--modes",
        nargs="+",
        default=["full", "rb"],
        choices=["full", "rb"],
        help="full interaction and/or random batch",
    )
    ap.add_argument("--batch", type=int, default=64, help="random-batch group size B")
    ap.add_argument(
        "--max-seconds",
        type=float,
        default=30.0,
        help="per-phase budget: predicted longer -> measure part and extrapolate",
    )
    ap.add_argument(
        "--step-max-seconds",
        type=float,
        default=None,
        help="budget of the training-step phase (default: --max-seconds)",
    )
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads in the workers")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per subprocess")
    ap.add_argument("--quick", action="store_true", help="smoke run: N = 1000, 5000; --max-seconds 10")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument(
        "--name",
        default=None,
        help="results file stem (default scale[_quick][_cuda]); e.g. for a run with other --sizes",
    )
    ap.add_argument(
        "--render", action="store_true", help="only redo tables, slopes and plot from benchmarks/results/<name>.json"
    )
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--kernel", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        print(
            json.dumps(
                worker(
                    args.kernel,
                    args.n,
                    args.mode,
                    args.batch,
                    args.max_seconds,
                    args.device,
                    args.threads,
                    args.step_max_seconds,
                )
            )
        )
        return 0
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            ap.error("--device cuda but torch.cuda.is_available() is False")
    if args.quick:
        args.sizes, args.max_seconds = [1000, 5000], 10.0

    name = args.name or (
        "scale" + ("_quick" if args.quick else "") + ("" if args.device == "cpu" else f"_{args.device.split(':')[0]}")
    )
    env = None
    if args.render:  # tables, slopes and plot again from the stored runs (nothing is re-measured)
        prev = json.loads((RESULTS_DIR / f"{name}.json").read_text())
        runs, elapsed, env = prev["runs"], prev["elapsed_s"], prev.get("environment") or prev.get("env")
        setup = prev["setup"]
        args.batch, args.max_seconds, args.sizes = setup["batch"], setup["max_seconds"], setup["sizes"]
    else:
        todo = cells(args)
        print(
            f"[scale] {len(todo)} cells; estimated total ~{estimate_seconds(args) / 60:.0f} min "
            f"(--max-seconds {args.max_seconds:g} per phase)",
            flush=True,
        )
        t_start, runs = time.perf_counter(), []
        for kernel, n, mode in todo:
            print(f"[scale] {kernel} N={n} {mode} ...", flush=True)
            runs.append(run_cell(kernel, n, mode, args))
            if "error" in runs[-1]:
                print(f"  FAILED: {runs[-1]['error'][-500:]}", flush=True)
        elapsed = time.perf_counter() - t_start

    ok = [r for r in runs if "error" not in r]
    tab = table(runs)
    fits = slopes(ok)
    fit_rows = [
        [
            k,
            v["slope_measured"],
            v["n_measured"],
            v["slope_measured_N_ge_5000"],
            v["n_measured_N_ge_5000"],
            v["slope_all"],
            v["n_all"],
        ]
        for k, v in fits.items()
    ]
    fit_tab = markdown_table(
        [
            "kernel/mode/what",
            "slope (measured)",
            "points",
            "slope (measured, N >= 5000)",
            "points",
            "slope (all, incl. extrapolated)",
            "points",
        ],
        fit_rows,
    )
    meta = ok[0] if ok else {}
    header = (
        f"d = {D}, device = {args.device}, torch threads = {meta.get('torch_num_threads')}, "
        f"random batch B = {args.batch}, budget {args.max_seconds:g} s per phase; "
        f"memory = {meta.get('peak_method')}; `*` = extrapolated (see scale.py); total {elapsed / 60:.1f} min"
    )
    print(f"\n{header}\n\n{tab}\n\nlog-log slopes of seconds vs N:\n\n{fit_tab}")

    extra = interaction_step_slopes(ok)
    extra_tab = markdown_table(
        ["random-batch interaction share of the step", "slope (N >= 5000)", "points"],
        [[k, v["slope"], len(v["points"])] for k, v in extra.items()],
    )
    print(f"\n{extra_tab}")
    fit_tab += "\n\n" + extra_tab
    att = [r for r in ok if r["kernel"] == "attention" and r["mode"] == "full" and r["N"] >= 100000]
    checks = {f"attention full eval N={r['N']}: peak < 4 GiB": r["eval"]["peak_bytes"] < 4 * 2**30 for r in att}
    checks.update(
        {
            f"{k}: slope (N >= 5000) in [0.8, 1.2]": (
                v["slope_measured_N_ge_5000"] is not None and 0.8 <= v["slope_measured_N_ge_5000"] <= 1.2
            )
            for k, v in fits.items()
            if "/rb/" in k and v["n_measured_N_ge_5000"] >= 2
        }
    )
    for k, v in checks.items():
        print(f"  {'PASS' if v else 'MISS'}  {k}")
    if args.no_write:
        return 0
    payload = {
        "benchmark": "scale",
        "setup": {
            "d": D,
            "kernels": KERNELS,
            "sizes": args.sizes,
            "batch": args.batch,
            "max_seconds": args.max_seconds,
            "ts": TS,
            "dt": DT,
            "n_targets": N_TARGETS,
            "device": args.device,
        },
        "env": env or env_info(),
        "runs": runs,
        "slopes": fits,
        "interaction_step_slopes": extra,
        "checks": checks,
        "elapsed_s": elapsed,
        "table_markdown": tab,
        "slopes_markdown": fit_tab,
    }
    print(f"\nwrote {write_json(name, payload)}")
    (RESULTS_DIR / f"{name}.md").write_text(
        f"# {name}\n\n{header}\n\n{tab}\n\nlog-log slopes of seconds vs N\n\n{fit_tab}\n"
    )
    try:
        plot(ok, RESULTS_DIR / f"{name}.png")
        print(f"wrote {RESULTS_DIR / f'{name}.png'}")
    except ImportError:
        print("matplotlib not installed: no plot (pip install mfsde[plot])")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
