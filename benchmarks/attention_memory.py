"""Attention interaction at large N: wall time and peak memory, showing that no N x N matrix exists.

The kernel is the ``scimf`` preset's interaction (``mfsde.model.build_model(mfsde.preset("scimf",
dim=50)).drift.inter``: 2 heads, LayerNorms, FFN) in eval mode, on ``x ~ N(0, I)`` of shape
``(N, 50)``:

* ``no_grad``  - ``with torch.no_grad(): inter(x)`` for N = 1000, 5000, 20000;
* ``grad``     - ``inter(x).square().mean().backward()`` (autograd graph kept through the
                 forward, then the backward) for the smaller N = 1000, 5000, 10000; the table
                 also gives the RSS increase between the two passes (what the graph holds).

Every (mode, N) runs in a fresh subprocess, so nothing from an earlier, larger run inflates the
numbers. In it: build the model and ``x``, run one small warm-up call (N = 64, which loads the
kernels and thread pools), collect garbage, take the baseline ``VmRSS`` from
``/proc/self/status``, reset the high-water mark by writing ``5`` to ``/proc/self/clear_refs``,
run the first full-size call and read ``VmHWM``: **peak = VmHWM - baseline** is the extra
resident memory the call touched (every temporary tensor that was written shows up there).
Where ``clear_refs`` is not writable, a sampler thread reading ``VmRSS`` every 2 ms is used
instead (it can miss short spikes; the JSON says which method was used). Wall times are the
median over ``--repeats`` calls after the first. For comparison the table lists the bytes of one
N x N float32 matrix and of the ``(heads, N, N)`` score tensor a naive implementation would hold.

The workers run with ``MALLOC_MMAP_THRESHOLD_=131072``: a fixed threshold switches glibc's
dynamic one off, so buffers above 128 KiB are mmapped and returned when freed, and RSS follows
the live tensors. (With the dynamic threshold, freed ~32 MB chunk temporaries stay resident and
look like live memory; ``--default-malloc`` keeps it.)

The worker also runs one extra call under ``torch.profiler(profile_memory=True)`` and reports
the op with the largest net ("self") allocation, i.e. the biggest buffer one op leaves behind
(``--no-profile`` skips it).

    python benchmarks/attention_memory.py [--repeats 3] [--quick] [--sizes 1000 5000 20000]
                                          [--grad-sizes 1000 5000 10000] [--threads T]
                                          [--default-malloc] [--no-profile]

Writes ``benchmarks/results/attention_memory.json`` (``attention_memory[_t<T>][_quick].json`` with
``--threads``/``--quick``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import env_info, markdown_table, write_json

D = 50
MIB = 2**20
GIB = 2**30
TARGET_PEAK_BYTES = GIB  # "well under 1 GiB" at N = 20000
MMAP_THRESHOLD = 128 * 1024  # MALLOC_MMAP_THRESHOLD_ for the workers (see run_one)


# -- worker (runs in a subprocess) --------------------------------------------------------------
def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class _RSSSampler(threading.Thread):
    """Polls VmRSS (KiB) every ``interval`` seconds and keeps the maximum."""

    def __init__(self, interval: float = 0.002):
        super().__init__(daemon=True)
        self.interval, self.peak_kib, self._stop_evt = interval, 0, threading.Event()

    def run(self):
        while not self._stop_evt.is_set():
            self.peak_kib = max(self.peak_kib, _status_kib("VmRSS"))
            time.sleep(self.interval)

    def stop(self) -> int:
        self._stop_evt.set()
        self.join()
        self.peak_kib = max(self.peak_kib, _status_kib("VmRSS"))
        return self.peak_kib


def _largest_allocation(call) -> dict:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        call()
    best = {"bytes": 0, "op": None}
    for ev in prof.events():
        if ev.name == "[memory]":
            continue
        size = ev.self_cpu_memory_usage  # net bytes the op itself left allocated or freed
        # an op's own allocations: the largest positive "self" figure is a lower bound of its
        # biggest buffer; temporaries freed inside the op show up in peak RSS instead
        if size > best["bytes"]:
            best = {"bytes": int(size), "op": ev.name}
    return best


def worker(n: int, mode: str, repeats: int, profile_alloc: bool, threads: int | None = None) -> dict:
    import torch

    if threads is not None:
        torch.set_num_threads(threads)

    import mfsde
    from mfsde.interactions._base import auto_chunk

    torch.manual_seed(0)
    inter = mfsde.model.build_model(mfsde.preset("scimf", dim=D)).drift.inter.eval()
    x = torch.randn(n, D)
    small = torch.randn(64, D)

    def call(inp=x):
        if mode == "no_grad":
            with torch.no_grad():
                inter(inp)
        else:
            for p in inter.parameters():
                p.grad = None
            inter(inp).square().mean().backward()

    call(small)  # load kernels / thread pools outside the measurement
    gc.collect()
    baseline_kib = _status_kib("VmRSS")
    hwm_ok = _reset_hwm()
    sampler = _RSSSampler()
    sampler.start()
    held_kib = None
    t0 = time.perf_counter()
    if mode == "no_grad":
        call()
    else:  # the same call, split to read the memory the autograd graph holds between the passes
        out = inter(x).square().mean()
        held_kib = _status_kib("VmRSS") - baseline_kib
        out.backward()
        del out
    first_s = time.perf_counter() - t0
    sampled_kib = sampler.stop()
    hwm_kib = _status_kib("VmHWM")
    peak_kib = (hwm_kib if hwm_ok else sampled_kib) - baseline_kib

    times = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    out = {
        "N": n,
        "mode": mode,
        "heads": inter.heads,
        "chunk_size": inter.chunk_size,
        # query rows per SDPA call, computed as AttentionInteraction.forward does (auto: 256 MiB budget)
        "chunk_rows": inter.chunk_size or auto_chunk(n, n * inter.heads * x.element_size() * 4),
        "peak_method": "VmHWM after clear_refs" if hwm_ok else "VmRSS sampler (2 ms)",
        "baseline_rss_bytes": baseline_kib * 1024,
        "peak_increase_bytes": peak_kib * 1024,
        "sampled_peak_increase_bytes": (sampled_kib - baseline_kib) * 1024,
        # grad mode: RSS increase after the forward, before backward (what the graph keeps alive)
        "held_after_forward_bytes": None if held_kib is None else held_kib * 1024,
        "first_call_s": first_s,
        "median_s": statistics.median(times) if times else first_s,
        "samples_s": times,
        "torch_num_threads": torch.get_num_threads(),
        "MALLOC_MMAP_THRESHOLD_": os.environ.get("MALLOC_MMAP_THRESHOLD_"),
    }
    if profile_alloc:
        out["largest_op_self_alloc"] = _largest_allocation(call)
    return out


# -- driver ------------------------------------------------------------------------------------
def run_one(
    n: int, mode: str, repeats: int, profile_alloc: bool, timeout: float, threads: int | None, malloc_threshold: int = 0
) -> dict:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "--n",
        str(n),
        "--mode",
        mode,
        "--repeats",
        str(repeats),
    ] + ([] if profile_alloc else ["--no-profile"])
    cmd += [] if threads is None else ["--threads", str(threads)]
    env = os.environ.copy()
    if malloc_threshold:
        # a fixed mmap threshold turns glibc's dynamic one off: every large buffer is mmapped and
        # given back on free, so RSS follows the live tensors instead of keeping freed ones
        env.setdefault("MALLOC_MMAP_THRESHOLD_", str(malloc_threshold))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"worker N={n} mode={mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000], help="N for the no-grad runs")
    ap.add_argument(
        "--grad-sizes", type=int, nargs="*", default=[1000, 5000, 10000], help="N for forward+backward runs"
    )
    ap.add_argument("--repeats", type=int, default=3, help="timed calls after the first (median reported)")
    ap.add_argument("--quick", action="store_true", help="N = 1000, 5000 (no grad), 1000 (grad); 1 repeat")
    ap.add_argument("--no-profile", action="store_true", help="skip the profiler's largest-allocation pass")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per subprocess")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch.set_num_threads in the workers (default: torch's default, one per core)",
    )
    ap.add_argument(
        "--default-malloc",
        action="store_true",
        help="keep glibc's dynamic mmap threshold (RSS then also holds freed buffers)",
    )
    ap.add_argument("--no-write", action="store_true", help="do not write the JSON file")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--mode", choices=["no_grad", "grad"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args.n, args.mode, args.repeats, not args.no_profile, args.threads)))
        return 0
    if args.quick:
        args.sizes, args.grad_sizes, args.repeats = [1000, 5000], [1000], 1

    jobs = [("no_grad", n) for n in args.sizes] + [("grad", n) for n in args.grad_sizes]
    runs = []
    for mode, n in jobs:
        print(f"[attention_memory] N={n} {mode} ...", flush=True)
        runs.append(
            run_one(
                n,
                mode,
                args.repeats,
                not args.no_profile,
                args.timeout,
                args.threads,
                0 if args.default_malloc else MMAP_THRESHOLD,
            )
        )

    rows = []
    for r in runs:
        n, h = r["N"], r["heads"]
        nn_bytes = 4 * n * n
        big = r.get("largest_op_self_alloc") or {}
        rows.append(
            [
                r["mode"],
                n,
                r["chunk_rows"],
                r["median_s"] * 1e3,
                r["first_call_s"] * 1e3,
                r["peak_increase_bytes"] / MIB,
                None if r["held_after_forward_bytes"] is None else r["held_after_forward_bytes"] / MIB,
                nn_bytes / MIB,
                h * nn_bytes / MIB,
                r["peak_increase_bytes"] / nn_bytes,
                (f"{big['bytes'] / MIB:.1f} ({big['op']})" if big.get("op") else "–"),
            ]
        )
    headers = [
        "mode",
        "N",
        "chunk rows",
        "median ms",
        "first call ms",
        "peak +RSS MiB",
        "held after fwd MiB",
        "one NxN f32 MiB",
        "H·NxN f32 MiB",
        "peak / NxN",
        "largest op self-alloc MiB",
    ]
    table = markdown_table(headers, rows)
    print(
        f"\nscimf attention interaction (d={D}, eval mode), torch threads = {runs[0]['torch_num_threads']}; "
        f"peak = {runs[0]['peak_method']} minus RSS before the call\n"
    )
    print(table)

    checks = {}
    for r in runs:
        n = r["N"]
        if r["chunk_rows"] >= n:
            continue  # one chunk holds every query row: an (N, N) mask is allowed by the chunk budget
        checks[f"{r['mode']} N={n}: peak < one NxN float32 ({4 * n * n / MIB:.0f} MiB)"] = (
            r["peak_increase_bytes"] < 4 * n * n
        )
    big_n = [r for r in runs if r["mode"] == "no_grad" and r["N"] >= 20000]
    for r in big_n:
        checks[f"no_grad N={r['N']}: peak < 1 GiB"] = r["peak_increase_bytes"] < TARGET_PEAK_BYTES
    print(
        "\nChecks (N whose query rows fit in one chunk are skipped: there the (N, N) mask is within the"
        " 256 MiB chunk budget by design):"
    )
    for k, ok in checks.items():
        print(f"  {'PASS' if ok else 'MISS'}  {k}")

    payload = {
        "benchmark": "attention_memory",
        "setup": {
            "d": D,
            "preset": "scimf",
            "interaction_mode": "eval",
            "x": "randn(N, d)",
            "grad_call": "inter(x).square().mean().backward()",
            "repeats": args.repeats,
            "isolation": "one subprocess per (mode, N)",
        },
        "env": env_info(),
        "runs": runs,
        "checks": checks,
        "table_markdown": table,
    }
    if not args.no_write:
        name = (
            "attention_memory"
            + (f"_t{args.threads}" if args.threads is not None else "")
            + ("_quick" if args.quick else "")
        )
        print(f"\nwrote {write_json(name, payload)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
