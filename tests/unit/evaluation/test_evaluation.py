"""mfsde.evaluation: held-out W1/W2 against POT, comparisons, summaries and tables."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import ot
import pytest
import torch

import mfsde
from mfsde.config import preset
from mfsde.data import from_arrays
from mfsde.evaluation import compare, evaluate, simulate, summarise, to_csv, to_markdown

D = 2


@pytest.fixture(scope="module")
def snaps():
    rng = np.random.default_rng(1)
    return from_arrays(
        [(0.3 * rng.normal(size=(60 + 5 * k, D)) + k).astype(np.float32) for k in range(4)], times=[0.0, 1.0, 2.0, 4.0]
    )


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    cfg = mfsde.preset("scimf", dim=D).override(**{"model.intra.width": 8, "model.inter.heads": 1, "model.dt": 0.25})
    return mfsde.model.build_model(cfg)


def task(train=(0, 1), heldout=(2, 3)):
    return SimpleNamespace(name="hold", train=list(train), heldout=list(heldout))


def test_evaluate_matches_direct_pot(snaps, model):
    model.train()
    ev = evaluate(model, snaps, task(), n_particles=70, seed=3)
    assert model.training  # mode restored
    assert ev["task"] == "hold" and ev["n_particles"] == 70 and ev["seed"] == 3
    assert [r["index"] for r in ev["per_time"]] == [2, 3]
    assert [r["time"] for r in ev["per_time"]] == [2.0, 4.0]
    sims = simulate(model, snaps, [2, 3], n_particles=70, seed=3)
    for rec in ev["per_time"]:
        x = sims[rec["index"]].double().numpy()
        y = snaps.data[rec["index"]].astype(np.float64)
        assert rec["n_observed"] == len(y)
        assert x.shape == (70, D)
        w1 = ot.emd2(np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y)), ot.dist(x, y, metric="euclidean"))
        w2 = math.sqrt(ot.emd2([], [], ot.dist(x, y)))
        assert np.isfinite([rec["w1"], rec["w2"]]).all()
        assert rec["w1"] == pytest.approx(w1, rel=1e-9)
        assert rec["w2"] == pytest.approx(w2, rel=1e-9)
        assert rec["w1"] <= rec["w2"] + 1e-9  # W1 ≤ W2
    assert ev["w1"] == pytest.approx(np.mean([r["w1"] for r in ev["per_time"]]))
    assert ev["w2"] == pytest.approx(np.mean([r["w2"] for r in ev["per_time"]]))


def test_evaluate_is_seeded_and_sees_the_data(snaps, model):
    a = evaluate(model, snaps, task(), n_particles=50, seed=0)
    b = evaluate(model, snaps, task(), n_particles=50, seed=0)
    c = evaluate(model, snaps, task(), n_particles=50, seed=1)
    assert a == b and a["w1"] != c["w1"]
    # an evaluation at t_0 compares the drawn cells with all of t_0: zero when they are all drawn
    ev0 = evaluate(model, snaps, task(), times=[0], n_particles=len(snaps.data[0]), seed=0)
    assert ev0["w1"] == pytest.approx(0.0, abs=1e-5)


def test_evaluate_simulation_uses_the_snapshot_time_axis(snaps, model):
    """Simulated cells at index k equal the model's own simulation to times[k] - times[0]."""
    sims = simulate(model, snaps, [3], n_particles=20, seed=5)
    gen = torch.Generator().manual_seed(5)
    model.eval()
    with torch.no_grad():
        x0 = torch.as_tensor(snaps.data[0])[torch.randperm(len(snaps.data[0]), generator=gen)[:20]]
        xs = model(x0, torch.tensor([0.0, 1.0, 2.0, 4.0]), generator=gen).xs
    assert torch.equal(sims[3], xs[3])


def test_evaluate_bad_input(snaps, model):
    with pytest.raises(ValueError, match="out of range"):
        evaluate(model, snaps, task(heldout=(2, 9)))
    with pytest.raises(ValueError, match="no held-out"):
        evaluate(model, snaps, task(heldout=()))
    other = from_arrays([np.zeros((5, 3), np.float32), np.ones((5, 3), np.float32)])
    with pytest.raises(ValueError, match="dim"):
        evaluate(model, other, SimpleNamespace(name="x", train=[0], heldout=[1]))


def test_compare_summarise_markdown_csv(snaps, tmp_path):
    overrides = {
        "train.iterations": 2,
        "train.n_particles": 16,
        "train.n_targets": 20,
        "model.intra.width": 8,
        "model.dt": 0.5,
        "eval.n_particles": 30,
        "loss.fit.blur": 0.5,
    }
    rows = compare(
        ["ito", "rbf"],
        snaps,
        task(),
        seeds=[0, 1],
        overrides=overrides,
        out_dir=tmp_path,
        progress=False,
        baselines=False,
    )
    assert [(r["preset"], r["seed"]) for r in rows] == [("ito", 0), ("ito", 1), ("rbf", 0), ("rbf", 1)]
    for r in rows:
        assert np.isfinite([r["w1"], r["w2"], r["w1@2"], r["w2@3"]]).all()
        assert (tmp_path / f"{r['preset']}-seed{r['seed']}" / "eval-t0.json").is_file()
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 4
    summary = summarise(rows)
    assert [s["preset"] for s in summary] == ["ito", "rbf"]
    s = summary[0]
    assert s["n_seeds"] == 2 and s["seeds"] == [0, 1]
    vals = [rows[0]["w1"], rows[1]["w1"]]
    assert s["w1_mean"] == pytest.approx(np.mean(vals)) and s["w1_std"] == pytest.approx(np.std(vals, ddof=1))
    md = to_markdown(summary)
    lines = md.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("| task | start | preset") and "W1" in lines[0] and "W2" in lines[0]
    assert "±" in lines[2] and "ito" in lines[2] and "rbf" in lines[3]
    text = to_csv(summary, tmp_path / "summary.csv")
    assert (tmp_path / "summary.csv").read_text() == text
    assert len(text.strip().splitlines()) == 3 and text.splitlines()[0].startswith("task,start,preset,n_seeds")


def test_summarise_single_seed_and_raw_markdown():
    rows = [{"preset": "a", "task": "t", "seed": 0, "w1": 1.0, "w2": 2.0}]
    s = summarise(rows)
    assert s[0]["w1_mean"] == 1.0 and math.isnan(s[0]["w1_std"])
    assert "| 1.00 |" in to_markdown(s)
    assert "| 0 | 1.00 | 2.00 |" in to_markdown(rows)
    assert summarise([]) == [] and to_markdown([]) == ""


def test_compare_takes_labelled_configs(snaps):
    """Variants that are not presets: a mapping label → Config; same rows as the preset names."""
    overrides = {
        "train.iterations": 2,
        "train.n_particles": 16,
        "train.n_targets": 20,
        "model.intra.width": 8,
        "model.dt": 0.5,
        "eval.n_particles": 30,
        "loss.fit.blur": 0.5,
    }
    by_name = compare(["ito"], snaps, task(), seeds=[0], overrides=overrides, progress=False, baselines=False)
    variants = {
        "plain": preset("ito", dim=snaps.dim),
        "zero": preset("scimf", dim=snaps.dim).override(**{"model.inter.zero_init": True}),
    }
    rows = compare(variants, snaps, task(), seeds=[0], overrides=overrides, progress=False)
    assert [r["preset"] for r in rows] == ["plain", "zero", "previous", "mccann", "floor"]
    assert rows[0]["w1"] == by_name[0]["w1"]  # same config, same seed: the same run
    assert rows[1]["w1"] != rows[0]["w1"]  # the mapped scimf config was trained, not a preset by label
    with pytest.raises(TypeError, match=r"a mapping must give an mfsde.Config per label, not for \['x'\]"):
        compare({"x": "ito"}, snaps, task(), seeds=[0], progress=False)


def test_compare_bad_input(snaps):
    with pytest.raises(KeyError, match="unknown preset"):
        compare(["nope"], snaps, task(), seeds=[0], progress=False)
    with pytest.raises(ValueError, match="seeds"):
        compare(["ito"], snaps, task(), seeds=[0], overrides={"train.seed": 3}, progress=False)
    with pytest.raises(ValueError, match="out of range"):
        compare(["ito"], snaps, task(heldout=(7,)), seeds=[0], progress=False)


def test_markdown_prints_enough_digits_to_separate_rows_and_the_training_cost():
    rows = [
        {"preset": p, "task": "t", "seed": 0, "w1": w, "w2": 1.0, "iterations": it, "train_seconds": 60.4}
        for p, w, it in (("a", 0.2958, 120), ("b", 0.2997, 95), ("c", 0.3000, 80))
    ]
    lines = to_markdown(summarise(rows)).strip().splitlines()
    assert lines[0].endswith("| W1 | W2 | iterations | train s |")
    # at 2 decimals all three print 0.30 and at 3 two still do: the table takes 4
    assert [ln.split("|")[4].strip() for ln in lines[2:]] == ["0.2958", "0.2997", "0.3000"]
    assert lines[3].endswith("| 95 | 60 |")
