"""``benchmarks/growth.py``'s method names and task selection. Nothing trains."""

from __future__ import annotations

import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("growth")


def test_a_method_name_says_preset_mass_channel_and_warm_start(bench):
    assert bench.method_spec("ito") == ("ito", False, "simulation", None)
    assert bench.method_spec("scimf_growth") == ("scimf", True, "simulation", None)
    assert bench.method_spec("ito_fm") == ("ito", False, "flow_matching+simulation", None)
    assert bench.method_spec("radial_growth_fm50") == ("radial", True, "flow_matching+simulation", 50)
    cfg = bench.config("scimf_growth_fm50", 2, seed=1, budget=30.0)
    assert (cfg.train.method, cfg.train.fm_iterations, cfg.model.growth.name, cfg.data.mass) == (
        "flow_matching+simulation",
        50,
        "mlp",
        "counts",
    )
    assert bench.config("ito_fm", 2, seed=0, budget=30.0).train.fm_iterations == 500  # the config's default
    assert all(bench.method_spec(m)[0] in ("ito", "scimf", "radial") for m in bench.METHODS)


def test_data_and_tasks_that_select_nothing_are_refused_in_one_line(bench, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(bench._common, "RESULTS_DIR", tmp_path)  # nothing of the repository's is written
    with pytest.raises(SystemExit) as exc:
        bench.main(["--data", "weinreb", "--tasks", "loo:2"])
    assert exc.value.code == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]
    assert len(err) == 1 and "--data and --tasks select none of the tasks (grn_attract loo:2" in err[0]


def test_signal_compares_each_network_with_the_control_beside_the_floor(bench, tmp_path, monkeypatch):
    """``--signal``: a network equal to the control is 0 away from it; one shifted by 1 along x is
    ~1 away; every floor is positive."""
    import json

    import numpy as np

    from mfsde.data import from_arrays

    monkeypatch.setattr(bench._common, "RESULTS_DIR", tmp_path)
    rng = np.random.default_rng(0)
    control = [rng.normal(size=(60 + 10 * k, 2)) for k in range(3)]
    nets = {
        "grn_no_interact": from_arrays(control, times=[0.0, 1.0, 2.0]),
        "grn_attract": from_arrays(control, times=[0.0, 1.0, 2.0]),
        "grn_LJ": from_arrays([x + np.array([1.0, 0.0]) for x in control], times=[0.0, 1.0, 2.0]),
    }
    monkeypatch.setattr(bench, "load", lambda name: (nets[name], None))
    assert bench.main(["--signal", "--seeds", "0", "1"]) == 0
    rows = json.loads((tmp_path / "growth_signal.json").read_text())["rows"]
    assert [r["time"] for r in rows] == [0.0, 1.0, 2.0]
    assert all(r["w1_attract_vs_control"] == pytest.approx(0.0, abs=1e-9) for r in rows)
    assert all(r["w1_LJ_vs_control"] == pytest.approx(1.0, abs=0.05) for r in rows)
    assert all(r[f"floor_{n}"][0] > 0 for r in rows for n in ("attract", "LJ", "no_interact"))
    assert "attract vs control" in (tmp_path / "growth_signal.md").read_text()


def test_set_overrides_reach_every_model_config_and_bad_ones_are_one_line(bench, capsys, tmp_path, monkeypatch):
    cfg = bench.config("scimf_growth", 2, seed=0, budget=30.0, overrides={"train.starts": "every"})
    assert (cfg.train.starts, cfg.model.growth.name) == ("every", "mlp")
    assert bench.config("scimf_growth", 2, seed=0, budget=30.0).train.starts == "first"
    monkeypatch.setattr(bench._common, "RESULTS_DIR", tmp_path)
    with pytest.raises(SystemExit) as exc:
        bench.main(["--set", "train.starts"])
    assert exc.value.code == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]
    assert len(err) == 1 and "train.starts" in err[0]
