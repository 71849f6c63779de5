"""runs.RunDir owns the files of a run: what fit, the CLI and compare write is found through it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mfsde
from mfsde.cli import main as cli_main
from mfsde.training import RunDir


def _snaps():
    rng = np.random.default_rng(0)
    return mfsde.Snapshots([0.0, 1.0, 2.0], [rng.normal(size=(30, 2)) + k for k in range(3)])


def test_fit_writes_every_file_of_its_run_dir(tmp_path):
    cfg = mfsde.preset("ito", dim=2).override(**{"train.iterations": 3, "train.n_particles": 16})
    res = mfsde.fit(cfg, _snaps(), "loo:1", out_dir=tmp_path / "r", progress=False)
    run = RunDir(tmp_path / "r")
    assert run.has_config and run.has_checkpoint and run.meta.is_file() and run.history.is_file()
    assert run.read_meta()["task"]["heldout"] == [1] and len(run.read_history()) == 3
    assert run.read_config().to_dict() == cfg.to_dict()
    model, config = run.load()
    x = torch.zeros(5, 2)
    torch.testing.assert_close(model.velocity(x), res.model.velocity(x))
    assert run.load_checkpoint()["iteration"] == 3
    path = run.write_eval({"w1": 1.0}, "previous")
    assert path.name == "eval-previous.json" and run.eval_file().name == "eval.json"


def test_missing_run_and_checkpoint_are_clear(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        RunDir(tmp_path / "nope").require_checkpoint()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="is not a run directory \\(no checkpoint.pt"):
        RunDir(tmp_path / "empty").require_checkpoint()
    assert RunDir(tmp_path / "empty").read_meta() == {} and RunDir(tmp_path / "empty").read_data_spec() == {}
    assert cli_main(["evaluate", "--run", str(tmp_path / "empty")]) == 2
    assert "is not a run directory (no checkpoint.pt" in capsys.readouterr().err
