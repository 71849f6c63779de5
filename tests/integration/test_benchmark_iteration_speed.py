"""``benchmarks/iteration_speed.py``: both Sinkhorn soft-mins side by side, the loss bit for bit and a
training run's loss history, and the three training variants; on small synthetic data (the timings
themselves are the benchmark's)."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
from conftest import load_benchmark

import mfsde


def test_iteration_speed_writes_both_sides_and_finds_them_identical(tmp_path, monkeypatch):
    bench = load_benchmark("iteration_speed")
    monkeypatch.setattr(bench._common, "RESULTS_DIR", tmp_path)
    rng = np.random.default_rng(0)
    snaps = mfsde.Snapshots([0.0, 1.0, 2.0], [rng.normal(size=(80, 3)) + k for k in range(3)], name="emt")
    monkeypatch.setitem(sys.modules, "accuracy", types.SimpleNamespace(load=lambda name: snaps))
    monkeypatch.setitem(bench.DATASETS, "emt", "loo:1")
    assert bench.main(["--dims", "3", "--repeats", "2", "--iterations", "1", "--datasets", "emt", "--name", "s"]) == 0
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["git_commit"] and doc["environment"]["torch_num_threads"] == 1
    (loss,) = doc["loss"]
    assert loss["d"] == 3 and loss["same_value"] and loss["same_gradient"] and loss["fast_ms"] > 0
    (train,) = doc["train"]
    assert train["dataset"] == "emt" and train["same_history"] and train["iterations"] == 3
    labels = [v[0] for v in bench.VARIANTS]
    assert set(train["seconds"]) == set(labels) and train["speedup"][labels[0]] == 1.0
    assert {r["value"] for r in doc["exp"]} >= {-80.0, -95.0}
    assert "| emt loo:1 " in (tmp_path / "s.md").read_text()
