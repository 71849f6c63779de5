"""What the default checkpoints cost: seconds per checkpoint write against seconds per iteration.

``train.checkpoint_every = 100`` iterations and ``train.checkpoint_seconds = 60`` (whichever comes
first) are the defaults. This times, for the ``scimf`` preset at d = 10 (EMT-sized) and d = 50
(CITE-sized, 512 particles, 1000 targets, synthetic cells), one training iteration and one
checkpoint (``Trainer.state_dict`` + the atomic, fsynced ``save_checkpoint``), and reports the
overhead = write time / time between two default checkpoints.

    python benchmarks/checkpoint_cost.py          # ~1 min
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common
import numpy as np
import torch

import mfsde
from mfsde import training as runs
from mfsde.data import from_arrays
from mfsde.training import Trainer


def main(argv=None) -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for dim, n_cells in ((10, 800), (50, 3000)):
        rng = np.random.default_rng(0)
        snaps = from_arrays([(rng.normal(size=(n_cells, dim)) + k).astype(np.float32) for k in range(4)])
        cfg = mfsde.preset("scimf", dim=dim)
        tr = Trainer(cfg, snaps, "loo:2")
        tr.step()
        steps = [tr.step()["seconds"] for _ in range(3)]
        with tempfile.TemporaryDirectory() as d:
            saves = []
            for _ in range(5):
                t0 = time.perf_counter()
                runs.save_checkpoint(Path(d) / "checkpoint.pt", **tr.state_dict())
                saves.append(time.perf_counter() - t0)
            size = (Path(d) / "checkpoint.pt").stat().st_size
        step, save = statistics.median(steps), statistics.median(saves)
        interval = min(cfg.train.checkpoint_every * step, cfg.train.checkpoint_seconds)
        rows.append(
            {
                "dim": dim,
                "s_per_iteration": step,
                "s_per_checkpoint": save,
                "checkpoint_MiB": size / 2**20,
                "seconds_between_checkpoints": interval,
                "overhead": save / interval,
            }
        )
    table = _common.markdown_table(
        ["d", "s / iteration", "s / checkpoint", "checkpoint MiB", "s between default checkpoints", "overhead"],
        [
            [
                r["dim"],
                r["s_per_iteration"],
                r["s_per_checkpoint"],
                r["checkpoint_MiB"],
                r["seconds_between_checkpoints"],
                f"{100 * r['overhead']:.2f} %",
            ]
            for r in rows
        ],
    )
    print(table)
    (_common.RESULTS_DIR / "checkpoint_cost.md").write_text(table + "\n")
    _common.write_json("checkpoint_cost", {"environment": _common.env_info(), "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
