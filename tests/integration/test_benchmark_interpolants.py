"""``benchmarks/interpolants.py``: the flow-matching interpolants scored with no model, one table
line per data set, task, protocol and held-out time, model rows of named results beside them."""

from __future__ import annotations

import json

import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("interpolants")


def row(method, seed, w1, index=1, start="t0"):
    return {"dataset": "emt", "task": "loo:1", "start": start, "method": method, "seed": seed, "index": index, "w1": w1}


def test_one_line_per_held_out_time_and_protocol_with_mean_and_spread(bench):
    rows = [row(m, s, w + 0.01 * s) for m, w in (("previous", 0.37), ("mccann", 0.29)) for s in (0, 1, 2)]
    rows += [row("mccann", 0, 0.5, start="previous")]
    rows += [row("scimf (fm_a)", s, 0.28) for s in (0, 1)]
    lines = bench.table(rows, ["previous", "mccann", "scimf (fm_a)"]).splitlines()
    assert "McCann" in lines[0] and "scimf (fm_a)" in lines[0]
    body = {ln.split("|")[1].strip(): [c.strip() for c in ln.split("|")[2:-1]] for ln in lines[2:]}
    assert body["emt loo:1, time 1, t0"] == ["0.380 ± 0.010", "0.300 ± 0.010", "0.280 ± 0.000 (2)"]
    assert body["emt loo:1, time 1, previous"] == ["–", "0.500", "–"]


def test_model_rows_come_from_a_named_result_one_per_held_out_time(bench, tmp_path, monkeypatch):
    doc = {
        "rows": [
            {
                "kind": "baseline",
                "dataset": "emt",
                "task": "loo:1",
                "start": "t0",
                "preset": "mccann",
                "seed": 0,
                "per_time": [{"index": 1, "w1": 0.3}],
            },
            {
                "kind": "model",
                "dataset": "emt",
                "task": "loo:1",
                "start": "t0",
                "preset": "scimf",
                "seed": 2,
                "per_time": [{"index": 1, "w1": 0.28}, {"index": 2, "w1": 0.31}],
            },
        ]
    }
    (tmp_path / "fm_x.json").write_text(json.dumps(doc))
    monkeypatch.setattr(bench._common, "RESULTS_DIR", tmp_path)
    got = bench.model_rows(["fm_x"])
    assert [(r["method"], r["seed"], r["index"], r["w1"]) for r in got] == [
        ("scimf (fm_x)", 2, 1, 0.28),
        ("scimf (fm_x)", 2, 2, 0.31),
    ]
