"""Seconds per training iteration: the Sinkhorn soft-min and the attention dropout.

On CPU, torch's ``exp`` of an argument below ≈ −87.3 (float32's subnormal or zero results) runs
30–80× slower than in range. geomloss's tensorized Sinkhorn loop spends most of its time there at a
small blur: its soft-min takes exp of h_j − C_ij/ε, far below that for distant pairs. mfsde's
``SinkhornLoss(fast=True)`` (the default) runs geomloss's own loop with a soft-min that clamps
those arguments first; ``fast=False`` is geomloss's ``SamplesLoss`` as is. Attention dropout
(``model.inter.dropout``, 0.1 in the ``scimf`` preset up to version 0.2.0) makes torch's fused
attention fall back to its unfused path and draw a mask as large as the scores. Everything runs
here in one process, with one thread:

1. ``exp``: torch's exp of a 1000 × 1000 float32 tensor filled with one value, in and out of range.
2. ``loss``: forward + backward of the loss, N = 512 particles against M = 1000 targets
   (``train.n_targets``), two standard-normal clouds one unit apart in d ∈ {4, 10, 50} (the
   scale of standardised data), the default blur 0.1 and scaling 0.7, timed round-robin; values
   and gradients compared bit for bit.
3. ``train``: the ``scimf`` preset on EMT (``loo:1``), Bargaje (``interpolate:2,4,6``) and CITE
   (``loo:1``) from ``../shared/data`` (skipped with a message when absent), in three variants:
   geomloss's soft-min with dropout 0.1 (the preset up to 0.2.0), the fast soft-min with dropout
   0.1, and the fast soft-min without dropout (the preset now). A fresh
   :class:`mfsde.training.Trainer` per variant and repeat, the variants' order rotating between
   repeats, ``--iterations`` steps each after one untimed step; the median CPU seconds per
   iteration, and whether the two soft-mins' loss histories (both with dropout) are identical.

    python benchmarks/iteration_speed.py                 # ~6 min
    python benchmarks/iteration_speed.py --quick         # a smoke run (synthetic data only)

Writes ``results/iteration_speed.{json,md}`` (``--name``), with the machine's load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

DATASETS = {"emt": "loo:1", "bargaje": "interpolate:2,4,6", "cite": "loo:1"}


def _cpu(fn, repeats: int) -> float:
    """Median process CPU seconds of ``fn`` over ``repeats`` calls (one untimed call first)."""
    fn()
    out = []
    for _ in range(repeats):
        c = time.process_time()
        fn()
        out.append(time.process_time() - c)
    return statistics.median(out)


def exp_part(repeats: int) -> list[dict]:
    rows = []
    for value in (-10.0, -80.0, -87.0, -88.0, -95.0, -200.0):
        a = torch.full((1000, 1000), value)
        rows.append({"value": value, "ms": _common.ms(_cpu(a.exp, repeats))})
    return rows


def loss_part(dims, repeats: int) -> list[dict]:
    from mfsde.losses import SinkhornLoss

    rows = []
    for d in dims:
        g = torch.Generator().manual_seed(d)
        x0 = torch.randn(512, d, generator=g)
        y = torch.randn(1000, d, generator=g) + 1.0 / d**0.5
        out = {}

        def run(fast: bool, x0=x0, y=y, out=out):
            x = x0.clone().requires_grad_()
            v = SinkhornLoss(fast=fast)(x, y)
            v.backward()
            out[fast] = (v.detach(), x.grad)

        times = _common.time_interleaved({"fast": lambda: run(True), "geomloss": lambda: run(False)}, repeats=repeats)
        rows.append(
            {
                "d": d,
                "n": 512,
                "m": 1000,
                "geomloss_ms": _common.ms(times["geomloss"]["cpu_median_s"]),
                "fast_ms": _common.ms(times["fast"]["cpu_median_s"]),
                "speedup": times["geomloss"]["cpu_median_s"] / times["fast"]["cpu_median_s"],
                "same_value": bool(torch.equal(out[True][0], out[False][0])),
                "same_gradient": bool(torch.equal(out[True][1], out[False][1])),
            }
        )
    return rows


#: (name, loss.fit.fast, model.inter.dropout): the preset up to 0.2.0, its faster loss, the preset now
VARIANTS = [("geomloss, dropout 0.1", False, 0.1), ("fast, dropout 0.1", True, 0.1), ("fast, no dropout", True, 0.0)]


def train_part(names, iterations: int, repeats: int) -> list[dict]:
    from accuracy import load

    import mfsde
    from mfsde.training import Trainer

    rows = []
    for name in names:
        snaps = load(name)
        if snaps is None:
            print(f"{name}: data not in ../shared/data, skipped")
            continue
        task = DATASETS[name]
        per_it = {v[0]: [] for v in VARIANTS}
        hist = {v[0]: [] for v in VARIANTS}
        for r in range(repeats):
            for label, fast, dropout in VARIANTS[r % 3 :] + VARIANTS[: r % 3]:
                over = {"loss.fit.fast": fast, "model.inter.dropout": dropout, "train.seed": 0}
                tr = Trainer(mfsde.preset("scimf", dim=snaps.dim).override(**over), snaps, task)
                losses = [tr.step()["loss"]]
                for _ in range(iterations):
                    rec = tr.step()
                    per_it[label].append(rec["cpu_seconds"])
                    losses.append(rec["loss"])
                hist[label].append(losses)
        seconds = {label: statistics.median(v) for label, v in per_it.items()}
        base = seconds[VARIANTS[0][0]]
        rows.append(
            {
                "dataset": name,
                "task": task,
                "dim": snaps.dim,
                "seconds": seconds,
                "speedup": {label: base / s for label, s in seconds.items()},
                "iterations": iterations * repeats,
                "same_history": hist[VARIANTS[0][0]] == hist[VARIANTS[1][0]],
            }
        )
        print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in seconds.items()) + " CPU s per iteration")
    return rows


def render(doc: dict) -> str:
    env = doc["environment"]
    lines = [
        "# Seconds per iteration: the Sinkhorn soft-min and the attention dropout",
        "",
        f"`python benchmarks/iteration_speed.py{doc['argv']}`, commit {doc['git_commit']}, "
        f"torch {env.get('packages', {}).get('torch')}, 1 thread, load average {doc['load_before']:.2f} before "
        f"and {doc['load_after']:.2f} after. CPU time medians.",
        "",
        "## torch.exp of a 1000 × 1000 float32 tensor",
        "",
        _common.markdown_table(["argument", "ms"], [[r["value"], r["ms"]] for r in doc["exp"]]),
        "",
        "## Loss forward + backward (512 particles, 1000 targets, blur 0.1, scaling 0.7)",
        "",
        _common.markdown_table(
            ["d", "geomloss (ms)", "fast (ms)", "speed-up", "same value", "same gradient"],
            [
                [r["d"], r["geomloss_ms"], r["fast_ms"], r["speedup"], r["same_value"], r["same_gradient"]]
                for r in doc["loss"]
            ],
        ),
    ]
    if doc["train"]:
        labels = [v[0] for v in VARIANTS]
        lines += [
            "",
            "## One training iteration, `scimf` preset (CPU s; speed-up against the first column)",
            "",
            _common.markdown_table(
                ["data, task", "d", *labels, "speed-up", "iterations", "same history"],
                [
                    [
                        f"{r['dataset']} {r['task']}",
                        r["dim"],
                        *(r["seconds"][label] for label in labels),
                        " / ".join(f"{r['speedup'][label]:.2f}" for label in labels[1:]),
                        r["iterations"],
                        r["same_history"],
                    ]
                    for r in doc["train"]
                ],
            ),
            "",
            "Same history: the loss histories of the two soft-mins (both with dropout 0.1), bit for bit.",
        ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dims", type=int, nargs="+", default=[4, 10, 50])
    ap.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    ap.add_argument("--iterations", type=int, default=4, help="timed training steps per side and repeat")
    ap.add_argument("--repeats", type=int, default=10, help="loss calls per side (training: 3 blocks per variant)")
    ap.add_argument("--quick", action="store_true", help="2 repeats, d = 4 only, no training part")
    ap.add_argument("--name", default="iteration_speed")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.quick:
        args.dims, args.repeats, args.datasets = [4], 2, []
    load_before = os.getloadavg()[0]
    doc = {
        "argv": "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:])),
        "threads": 1,
        "load_before": load_before,
        "exp": exp_part(args.repeats),
        "loss": loss_part(args.dims, args.repeats),
        "train": train_part(args.datasets, args.iterations, 3),
    }
    doc["load_after"] = os.getloadavg()[0]
    doc["environment"] = _common.env_info()
    doc["git_commit"] = doc["environment"].get("git_commit")
    path = _common.write_json(args.name, doc)
    md = render(doc)
    path.with_suffix(".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
