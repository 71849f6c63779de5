"""End to end on real data: fit a few iterations on ../shared/data/emt and evaluate held-out W1/W2."""

import numpy as np
import pytest
from conftest import REPO

import mfsde
from mfsde import evaluate, fit
from mfsde.data import load_csv
from mfsde.losses import w1

EMT = REPO / ".." / "shared" / "data" / "emt" / "emt.csv"


@pytest.fixture(scope="module")
def emt():
    if not EMT.is_file():
        pytest.skip(f"real-data test: {EMT} not found (../shared/data is not beside the checkout)")
    return load_csv(EMT, time_col="samples")


@pytest.mark.parametrize("name", ["scimf", "ito"])
def test_fit_and_evaluate_on_emt(emt, name, tmp_path):
    cfg = mfsde.preset(name, dim=emt.dim).override(
        **{
            "train.iterations": 3,
            "train.n_particles": 64,
            "train.n_targets": 200,
            "model.intra.width": 32,
        }
    )
    res = fit(cfg, emt, "loo:2", out_dir=tmp_path, progress=False)
    assert len(res.history) == 3 and all(np.isfinite(h["loss"]) for h in res.history)
    assert (tmp_path / "config.json").is_file() and (tmp_path / "meta.json").is_file()
    ev = evaluate(res.model, emt, "loo:2", n_particles=200, seed=0)
    assert [r["index"] for r in ev["per_time"]] == [2] and ev["per_time"][0]["n_observed"] == len(emt.data[2])
    assert np.isfinite(ev["w1"]) and np.isfinite(ev["w2"]) and ev["w2"] >= ev["w1"] > 0
    # a model that has barely trained is still a distribution of cells near the data: its W1 to
    # the held-out cells is finite and of the order of the data's spread, and far below the W1
    # of a population shifted by 10 data standard deviations
    obs = emt.data[2].astype(np.float64)
    shifted = obs[:200] + 10 * obs.std(0)
    assert ev["w1"] < w1(shifted, obs)
