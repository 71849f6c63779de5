"""Seconds per training iteration against torch threads, on EMT (``ito`` and ``scimf``, 512 particles).

Why ``mfsde`` commands default to half the cores the process may use (``mfsde.training.default_threads``)
instead of torch's all cores: on a 2-core machine that is busy with anything else, torch's intra-op
threads wait for each other. Each setting runs in a fresh subprocess (so thread pools do not carry
over), interleaved, several times; the load average of the machine is recorded with every sample.

    python benchmarks/threads.py                  # ~2 min
    python benchmarks/threads.py --threads 1 2 --iterations 15 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

CHILD = """
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
import mfsde
from mfsde.training import Trainer
sys.path.insert(0, sys.argv[4])
from accuracy import load
snaps = load("emt")
cfg = mfsde.preset(sys.argv[3], dim=snaps.dim)
tr = Trainer(cfg, snaps, "loo:1")
tr.step()  # warm-up
t = []
for _ in range(int(sys.argv[2])):
    t.append(tr.step()["seconds"])
print(json.dumps(sorted(t)[len(t) // 2]))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--presets", nargs="+", default=["ito", "scimf"])
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--name", default="threads")
    args = ap.parse_args(argv)
    rows = []
    for r in range(args.repeats):
        for preset in args.presets:
            order = args.threads if r % 2 == 0 else list(reversed(args.threads))
            for n in order:
                load = os.getloadavg()[0]
                out = subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        CHILD,
                        str(n),
                        str(args.iterations),
                        preset,
                        str(Path(__file__).resolve().parent),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                rows.append(
                    {
                        "preset": preset,
                        "threads": n,
                        "repeat": r,
                        "s_per_iteration": json.loads(out.stdout),
                        "loadavg_1_before": load,
                    }
                )
                print(rows[-1], flush=True)
    lines = [
        "| preset | threads | median s / iteration (of repeats) | all repeats | load average (1 min) |",
        "|---|---|---|---|---|",
    ]
    for preset in args.presets:
        for n in args.threads:
            rs = [x for x in rows if x["preset"] == preset and x["threads"] == n]
            v = sorted(x["s_per_iteration"] for x in rs)
            lines.append(
                f"| {preset} | {n} | {v[len(v) // 2]:.3f} | "
                + ", ".join(f"{x:.3f}" for x in v)
                + " | "
                + ", ".join(f"{x['loadavg_1_before']:.1f}" for x in rs)
                + " |"
            )
    md = "\n".join(lines) + "\n"
    print(md)
    (_common.RESULTS_DIR / f"{args.name}.md").write_text(md)
    _common.write_json(args.name, {"settings": vars(args), "environment": _common.env_info(), "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
