"""How well can each interaction kernel represent a system's true interaction at all?

Supervised, not from snapshots: each kernel is fitted by least squares (Adam) directly to the
true interaction drift f_inter(x_i, ρ) of a population family (`mfsde.systems.POPULATION_FAMILIES`)
at the observed cells of the training populations (model units: the scale transform the
training would fit), and scored on the two held-out populations of ``benchmarks/populations.py``:

    relative error = Σ ‖f̂_inter − f_inter‖² / Σ ‖f_inter‖²   (held-out populations, every time).

This is the floor that training from snapshots cannot beat: a kernel family whose best member
misses the true forces by 15 % cannot recover the interaction, whatever the budget.

    python benchmarks/kernel_floor.py                     # Morse: rbf (3 and 6 widths), radial
    python benchmarks/kernel_floor.py --family ou --steps 300

Writes ``benchmarks/results/kernel_floor[_FAMILY].{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common
import numpy as np
import torch

from mfsde.interactions import build_interaction
from mfsde.model import DataScale
from mfsde.systems import population_snapshots, population_systems

HELDOUT = (1, 5)
KERNELS = [("rbf", {}), ("rbf", {"n_kernels": 6}), ("radial", {}), ("radial", {"basis": "linear"})]


def forces(systems, pops, scale: DataScale, idx, n_cells: int, rng) -> tuple[torch.Tensor, torch.Tensor]:
    """Observed cells ``(B, n, d)`` and their true interaction drift, in model units."""
    xs, fs = [], []
    for i in idx:
        name = pops.names[i]
        for cells in pops[name].data:
            x = np.asarray(cells, dtype=np.float64)
            x = torch.as_tensor(x[rng.choice(len(x), min(n_cells, len(x)), replace=False)])
            f = systems[name].drift.parts(x)["inter"]
            xs.append(scale.encode(x).float())
            fs.append((f / scale.scale * scale.time_unit).float())  # data velocity → model units
    return torch.stack(xs), torch.stack(fs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="morse", choices=["morse", "ou", "two_species", "kuramoto"])
    ap.add_argument("--steps", type=int, default=600, help="Adam steps per kernel (default 600)")
    ap.add_argument("--cells", type=int, default=150, help="cells per snapshot used (default 150)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    systems = population_systems(args.family, 8)
    pops = population_snapshots(systems, n_per_time=300, seed=args.seed)
    train = [i for i in range(len(pops.names)) if i not in HELDOUT]
    scale = DataScale(pops.dim).fit_many_(
        [(pops[pops.names[i]], list(range(pops[pops.names[i]].n_times))) for i in train]
    )
    x_tr, f_tr = forces(systems, pops, scale, train, args.cells, rng)
    x_te, f_te = forces(systems, pops, scale, HELDOUT, args.cells, rng)
    rows = []
    for name, opts in KERNELS:
        kernel = build_interaction(name, dim=pops.dim, **opts)
        opt = torch.optim.Adam(kernel.parameters(), lr=1e-2)
        t0 = time.perf_counter()
        for _ in range(args.steps):
            loss = (kernel(x_tr) - f_tr).pow(2).sum() / f_tr.pow(2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            test = float((kernel(x_te) - f_te).pow(2).sum() / f_te.pow(2).sum())
        rows.append(
            {
                "kernel": name,
                "options": opts,
                "train_error": float(loss),
                "heldout_error": test,
                "seconds": time.perf_counter() - t0,
                "steps": args.steps,
            }
        )
        print(f"{name} {opts}: train {float(loss):.4f}  held-out {test:.4f}  ({rows[-1]['seconds']:.0f} s)", flush=True)
    table = _common.markdown_table(
        ["kernel", "options", "relative error, training populations", "relative error, held-out populations"],
        [
            [r["kernel"], r["options"] or "default", f"{r['train_error']:.4f}", f"{r['heldout_error']:.4f}"]
            for r in rows
        ],
    )
    stem = "kernel_floor" + ("" if args.family == "morse" else f"_{args.family}")
    md = (
        f"Best supervised fit of each kernel to the true {args.family} interaction ({args.steps} Adam steps, "
        f"{args.cells} cells per snapshot, model units):\n\n{table}\n"
    )
    (_common.RESULTS_DIR / f"{stem}.md").write_text(md)
    _common.write_json(stem, {"settings": vars(args), "environment": _common.env_info(), "rows": rows})
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
