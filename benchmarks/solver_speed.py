"""Solver-loop speed: mfsde.solvers.sdeint vs torchsde (method="euler") vs a minimal loop.

What one sample measures (forward + backward, as in a training iteration):

    x0: (N, d) = (512, 50) standard normal, no grad; sigma = 0.1; dt = 0.1;
    ts = [0, 1, 2, 3, 4, 5]  (every output time on the dt grid -> 50 Euler-Maruyama steps)
    xs = <solver>(drift, x0, ts)            # (6, N, d)
    loss = xs[1:].square().mean(); loss.backward()   # grads of the drift's parameters

Variants, run round-robin in the same process on the same drift object:

* ``mfsde``    - ``mfsde.solvers.sdeint(drift, x0, ts, sigma=0.1, dt=0.1, generator=g)``
* ``torchsde`` - ``mfsde.solvers.torchsde_sdeint(drift, x0, ts, sigma=0.1, dt=0.1, method="euler")``
                 (torchsde's own default BrownianInterval; it evaluates f and g once more than
                 the steps for a shape probe, and float round-off of the accumulated dt adds a
                 sliver step before t = 5: 52 drift calls instead of 50)
* ``floor``    - the minimal loop with the same arithmetic and no solver around it::

                     x = x0; xs = [x0]
                     for i in range(50):
                         x = x + drift(x, i*dt) * dt + (sigma*sqrt(dt)) * randn(x.shape, generator=g)
                         if (i + 1) % 10 == 0: xs.append(x)
                     loss(stack(xs)).backward()

  i.e. 50 forward drift calls (and their backward), one Gaussian draw per step, nothing else.

Drifts:

* ``scimf/train`` - ``mfsde.model.build_model(mfsde.preset("scimf", dim=50)).drift`` in train mode
  (attention dropout 0.1 active, as in training);
* ``scimf/eval``  - the same drift in eval mode (no dropout; gradients still computed);
* ``linear``      - a single ``nn.Linear(50, 50)`` (a cheap drift: the loop overhead shows).

Targets: torchsde/mfsde >= 1.3 on scimf (train), >= 10 on linear, mfsde/floor <= 1.15.

    python benchmarks/solver_speed.py [--repeats 21] [--warmup 3] [--quick] [--profile]
                                      [--threads T] [--n N] [--cases linear ...]

Writes ``benchmarks/results/solver_speed.json``; runs with ``--n``, ``--cases``, ``--threads`` or
``--quick`` write ``solver_speed[_n<N>][_<case>...][_t<T>][_quick].json`` instead, so a partial
run never overwrites the full one.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import env_info, markdown_table, ms, time_interleaved, write_json

import mfsde
from mfsde.solvers import sdeint, torchsde_sdeint

N, D, DT, SIGMA = 512, 50, 0.1, 0.1
TS = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
N_STEPS = round((TS[-1] - TS[0]) / DT)  # 50
TARGETS = {
    "torchsde_over_mfsde": {"scimf/train": 1.3, "linear": 10.0},
    "mfsde_over_floor_max": 1.15,
}


class LinearDrift(nn.Module):
    """The cheap drift: one ``nn.Linear(d, d)``, called as ``drift(x, t)``."""

    def __init__(self, dim: int):
        super().__init__()
        self.lin = nn.Linear(dim, dim)

    def forward(self, x, t=None):
        return self.lin(x)


class CountingDrift(nn.Module):
    """Wraps a drift and counts its calls (used once per variant, outside the timings)."""

    def __init__(self, drift):
        super().__init__()
        self.inner, self.calls = drift, 0

    def forward(self, x, t=None):
        self.calls += 1
        return self.inner(x, t)


def loss_of(xs: torch.Tensor) -> torch.Tensor:
    return xs[1:].square().mean()


def run_mfsde(drift, x0, gen):
    return sdeint(drift, x0, TS, sigma=SIGMA, dt=DT, generator=gen).xs


def run_torchsde(drift, x0, gen=None):
    return torchsde_sdeint(drift, x0, TS, sigma=SIGMA, dt=DT, method="euler")


def run_floor(drift, x0, gen):
    scale = SIGMA * math.sqrt(DT)
    every = round((TS[1] - TS[0]) / DT)
    x, xs = x0, [x0]
    for i in range(N_STEPS):
        x = x + drift(x, i * DT) * DT + scale * torch.randn(x.shape, generator=gen, dtype=x.dtype)
        if (i + 1) % every == 0:
            xs.append(x)
    return torch.stack(xs)


VARIANTS = {"mfsde": run_mfsde, "torchsde": run_torchsde, "floor": run_floor}


def make_sample(runner, drift, x0, gen, params):
    def sample():
        for p in params:
            p.grad = None
        loss_of(runner(drift, x0, gen)).backward()

    return sample


def build_drifts() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    scimf = mfsde.model.build_model(mfsde.preset("scimf", dim=D)).drift
    scimf_eval = mfsde.model.build_model(mfsde.preset("scimf", dim=D)).drift
    scimf_eval.load_state_dict(scimf.state_dict())
    return {"scimf/train": scimf.train(), "scimf/eval": scimf_eval.eval(), "linear": LinearDrift(D).train()}


def count_calls(drift, x0) -> dict[str, int]:
    out = {}
    for name, runner in VARIANTS.items():
        counter = CountingDrift(drift)
        with torch.no_grad():
            runner(counter, x0, torch.Generator().manual_seed(0))
        out[name] = counter.calls
    return out


def bench_case(name: str, drift: nn.Module, x0: torch.Tensor, warmup: int, repeats: int) -> dict:
    params = [p for p in drift.parameters() if p.requires_grad]
    gen = torch.Generator().manual_seed(1)
    samples = {v: make_sample(r, drift, x0, gen, params) for v, r in VARIANTS.items()}
    stats = time_interleaved(samples, warmup=warmup, repeats=repeats)
    med = {v: s["median_s"] for v, s in stats.items()}
    return {
        "drift": name,
        "training_mode": drift.training,
        "drift_calls_forward": count_calls(drift, x0),
        "timings": stats,
        "median_ms": {v: ms(m) for v, m in med.items()},
        "torchsde_over_mfsde": med["torchsde"] / med["mfsde"],
        "mfsde_over_floor": med["mfsde"] / med["floor"],
        "torchsde_over_floor": med["torchsde"] / med["floor"],
        "cpu_torchsde_over_mfsde": stats["torchsde"]["cpu_median_s"] / stats["mfsde"]["cpu_median_s"],
        "cpu_mfsde_over_floor": stats["mfsde"]["cpu_median_s"] / stats["floor"]["cpu_median_s"],
        "min_torchsde_over_mfsde": stats["torchsde"]["min_s"] / stats["mfsde"]["min_s"],
        "min_mfsde_over_floor": stats["mfsde"]["min_s"] / stats["floor"]["min_s"],
    }


def check_targets(cases: dict[str, dict]) -> dict[str, dict]:
    out = {}
    for name, need in TARGETS["torchsde_over_mfsde"].items():
        got = cases[name]["torchsde_over_mfsde"]
        out[f"{name}: torchsde/mfsde >= {need}"] = {"value": got, "pass": got >= need}
    cap = TARGETS["mfsde_over_floor_max"]
    for name, case in cases.items():
        got = case["mfsde_over_floor"]
        out[f"{name}: mfsde/floor <= {cap}"] = {"value": got, "pass": got <= cap}
    return out


def profile_case(drift, x0, row_limit: int = 25) -> None:
    """Print torch.profiler's op table for one forward+backward of each variant."""
    from torch.profiler import ProfilerActivity, profile

    params = list(drift.parameters())
    gen = torch.Generator().manual_seed(2)
    for v, runner in VARIANTS.items():
        sample = make_sample(runner, drift, x0, gen, params)
        sample()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            sample()
        print(f"\n### profile: {v}\n")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=row_limit))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=21, help="timed samples per variant (median reported)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed runs per variant first")
    ap.add_argument("--quick", action="store_true", help="3 repeats, 1 warm-up (smoke test; noisy)")
    ap.add_argument("--cases", nargs="*", default=None, help="subset of: scimf/train scimf/eval linear")
    ap.add_argument("--profile", action="store_true", help="also print torch.profiler tables per variant")
    ap.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads (default: leave torch's default, one per core)"
    )
    ap.add_argument("--n", type=int, default=N, help=f"particles (default {N}; the targets refer to {N})")
    ap.add_argument("--no-write", action="store_true", help="do not write the JSON file")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats, args.warmup = 3, 1
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    drifts = build_drifts()
    names = args.cases or list(drifts)
    torch.manual_seed(0)
    x0 = torch.randn(args.n, D)

    cases = {}
    for name in names:
        print(f"[solver_speed] {name}: {args.warmup} warm-up + {args.repeats} repeats per variant ...", flush=True)
        cases[name] = bench_case(name, drifts[name], x0, args.warmup, args.repeats)
        if args.profile:
            profile_case(drifts[name], x0)

    rows = []
    for name, c in cases.items():
        t = c["timings"]
        rows.append(
            [
                name,
                ms(t["mfsde"]["median_s"]),
                ms(t["torchsde"]["median_s"]),
                ms(t["floor"]["median_s"]),
                c["torchsde_over_mfsde"],
                c["mfsde_over_floor"],
                c["torchsde_over_floor"],
                c["cpu_torchsde_over_mfsde"],
                c["cpu_mfsde_over_floor"],
                "/".join(str(c["drift_calls_forward"][v]) for v in VARIANTS),
            ]
        )
    headers = [
        "drift",
        "mfsde ms",
        "torchsde ms",
        "floor ms",
        "torchsde/mfsde",
        "mfsde/floor",
        "torchsde/floor",
        "CPU-time torchsde/mfsde",
        "CPU-time mfsde/floor",
        "drift calls m/t/f",
    ]
    print(
        f"\nN={args.n}, d={D}, {N_STEPS} Euler-Maruyama steps (dt={DT}), forward+backward; wall-clock medians of "
        f"{args.repeats} interleaved repeats (CPU-time columns: process CPU time, all threads); "
        f"torch threads = {torch.get_num_threads()}\n"
    )
    table = markdown_table(headers, rows)
    print(table)

    targets = check_targets(cases) if set(TARGETS["torchsde_over_mfsde"]) <= set(cases) and args.n == N else {}
    if targets:
        print("\nTargets:")
        for k, v in targets.items():
            print(f"  {'PASS' if v['pass'] else 'MISS'}  {k}  (got {v['value']:.2f})")

    payload = {
        "benchmark": "solver_speed",
        "setup": {
            "N": args.n,
            "d": D,
            "torch_threads": torch.get_num_threads(),
            "dt": DT,
            "sigma": SIGMA,
            "ts": TS,
            "n_steps": N_STEPS,
            "loss": "xs[1:].square().mean(), backward",
            "repeats": args.repeats,
            "warmup": args.warmup,
            "order": "variants interleaved round-robin within each repeat",
        },
        "env": env_info(),
        "cases": cases,
        "targets": targets,
        "table_markdown": table,
    }
    if not args.no_write:
        name = "solver_speed"
        name += f"_n{args.n}" if args.n != N else ""
        name += "".join("_" + c.replace("/", "-") for c in args.cases or [])
        name += f"_t{args.threads}" if args.threads is not None else ""
        name += "_quick" if args.quick else ""
        print(f"\nwrote {write_json(name, payload)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
