"""``benchmarks/growth.py``'s method names and task selection. Nothing trains."""

from __future__ import annotations

import importlib.util

import pytest
from conftest import REPO


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("_growth_benchmark", REPO / "benchmarks" / "growth.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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
