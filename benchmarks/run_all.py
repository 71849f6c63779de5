"""Run every benchmark in turn: ``python benchmarks/run_all.py --quick`` (smoke runs, each writing
``results/<name>_quick.*`` so the real results stay) or without ``--quick`` (the full runs that
produce the figures in README.md and docs/results.md: hours on 2 cores).

Each script runs in its own process with one torch thread where it takes ``--threads``; a failure
or a timeout is recorded and the suite goes on. Writes ``results/run_all[_quick].{json,md}``: per
script the command, exit status, seconds and the last lines of its output on failure, in the
shared JSON envelope (environment, git commit).

    python benchmarks/run_all.py --quick                  # ~15 min on 2 cores
    python benchmarks/run_all.py --only accuracy populations
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

HERE = Path(__file__).resolve().parent
#: script → (quick arguments, full arguments); quick runs write *_quick results
SUITE = {
    "solver_speed": (["--quick", "--threads", "1"], ["--threads", "1"]),
    "attention_memory": (["--quick", "--threads", "1", "--no-profile"], ["--threads", "1"]),
    "train_speed": (["--quick", "--threads", "1", "--out", "train_speed_quick"], ["--threads", "1"]),
    "checkpoint_cost": (None, []),
    "threads": (["--iterations", "2", "--repeats", "1", "--name", "threads_quick"], []),
    "scale": (["--quick", "--threads", "1"], ["--threads", "1"]),
    "systems": (["--quick"], []),
    "accuracy": (["--quick"], []),
    "fit_diagnostics": (["--budget", "3", "--variants", "default (λ = 0.01)", "--name", "fit_diagnostics_quick"], []),
    "populations": (["--quick"], []),
    "interpolants": (
        ["--datasets", "emt", "--seeds", "0", "--name", "interpolants_quick"],
        ["--models", "fm_linear_120s", "fm_metric_120s", "fm_metric_900s", "fm_linear_60s", "fm_metric_60s"],
    ),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke runs (results/<name>_quick.*)")
    ap.add_argument("--only", nargs="+", choices=list(SUITE), default=None, help="run these scripts only")
    ap.add_argument(
        "--timeout", type=float, default=None, help="seconds per script (default: 1800 with --quick, none otherwise)"
    )
    args = ap.parse_args(argv)
    timeout = args.timeout if args.timeout is not None else (1800 if args.quick else None)
    rows = []
    for name in args.only or SUITE:
        extra = SUITE[name][0 if args.quick else 1]
        if extra is None:
            rows.append(
                {
                    "script": name,
                    "status": "skipped",
                    "reason": "no quick mode (it is itself quick: run it without --quick)",
                    "seconds": 0.0,
                }
            )
            print(f"{name}: skipped (no quick mode)", flush=True)
            continue
        cmd = [sys.executable, str(HERE / f"{name}.py"), *extra]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
            tail = "" if proc.returncode == 0 else (proc.stdout + proc.stderr)[-2000:]
        except subprocess.TimeoutExpired:
            status, tail = f"timeout ({timeout:g} s)", ""
        seconds = time.perf_counter() - t0
        rows.append({"script": name, "command": cmd[1:], "status": status, "seconds": seconds, "output_tail": tail})
        print(f"{name}: {status} in {seconds:.0f} s", flush=True)
    md = _common.markdown_table(
        ["script", "status", "seconds"], [[r["script"], r["status"], r["seconds"]] for r in rows]
    )
    out = "run_all_quick" if args.quick else "run_all"
    (_common.RESULTS_DIR / f"{out}.md").write_text(md + "\n")
    _common.write_json(out, {"settings": vars(args), "rows": rows})
    print(md)
    return 0 if all(r["status"] in ("ok", "skipped") for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
