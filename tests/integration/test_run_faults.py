"""Runs cannot be corrupted: one writer per run directory (a second writer is refused in one line
naming the holder; a lock left by a process that died is reported and taken over; the lock goes
with the run's last write); damaged run files and filesystem faults are one line naming the path;
conflicting command-line settings are refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest

import mfsde
from mfsde.cli import main
from mfsde.data import from_arrays
from mfsde.training import RunLock, RunLocked
from mfsde.training._runlock import LOCK_FILE

HOLD = (
    "import sys, time; from mfsde.training import RunLock; RunLock(sys.argv[1]).acquire(); "
    "print('held', flush=True); time.sleep(60)"
)


def cells_csv(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["t,x1,x2"] + [f"{t},{x[0] + t},{x[1]}" for t in range(3) for x in rng.normal(size=(30, 2))]
    path = tmp_path / "cells.csv"
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def two_snapshots(n):
    rng = np.random.default_rng(1)
    return from_arrays(
        [rng.normal(size=(n, 2)).astype(np.float32), 1 + rng.normal(size=(n, 2)).astype(np.float32)], times=[0.0, 1.0]
    )


def fit_argv(csv, out):
    return [
        "fit",
        "--data",
        csv,
        "--time-col",
        "t",
        "--preset",
        "ito",
        "--iterations",
        "2",
        "--n-particles",
        "16",
        "--set",
        "model.intra.width=8",
        "--set",
        "train.n_targets=20",
        "--no-eval",
        "--out",
        str(out),
    ]


@pytest.fixture
def holder(tmp_path):
    """Another live process holding the lock of ``tmp_path / "run"``."""
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield run, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_a_second_writer_gets_one_line_naming_the_holder(holder, tmp_path, capsys):
    run, proc = holder
    csv = cells_csv(tmp_path)
    assert main(fit_argv(csv, run)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"is in use by pid {proc.pid} on host" in err[0] and "one writer per run" in err[0]
    assert not (run / "history.jsonl").exists()  # nothing written by the refused writer
    with pytest.raises(RunLocked):
        mfsde.fit(
            mfsde.preset("ito", dim=2).override(**{"train.iterations": 1}),
            two_snapshots(5),
            "all",
            out_dir=run,
            progress=False,
        )


def test_a_lock_left_by_a_killed_process_is_reported_and_taken_over(holder, tmp_path):
    run, proc = holder
    proc.send_signal(signal.SIGKILL)  # as kill -9: the OS drops its lock, the file stays
    proc.wait()
    assert (run / LOCK_FILE).is_file()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(fit_argv(cells_csv(tmp_path), run)) == 0
    assert any(f"taking over the lock left by pid {proc.pid}" in str(w.message) for w in caught)
    assert not (run / LOCK_FILE).exists() and (run / "checkpoint.pt").is_file()


def test_the_lock_is_reentrant_in_one_process_and_released_after_a_fit(tmp_path):
    run = tmp_path / "run"
    snaps = two_snapshots(8)
    cfg = mfsde.preset("ito", dim=2).override(**{"train.iterations": 1, "model.intra.width": 8, "train.n_particles": 8})
    with RunLock(run):
        mfsde.fit(cfg, snaps, "all", out_dir=run, progress=False)
        assert (run / LOCK_FILE).is_file()  # still ours: the outer lock
        info = (run / LOCK_FILE).read_text()
        assert f'"pid": {os.getpid()}' in info
    assert not (run / LOCK_FILE).exists()
    mfsde.fit(cfg, snaps, "all", out_dir=run, progress=False)
    assert not (run / LOCK_FILE).exists()


def test_evaluate_into_a_run_that_is_being_written_is_refused(holder, tmp_path, capsys):
    run, proc = holder
    csv = cells_csv(tmp_path)
    proc.kill()
    proc.wait()
    with pytest.warns(RuntimeWarning, match="taking over the lock left by pid"):
        assert main(fit_argv(csv, run)) == 0
    again = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert again.stdout.readline().strip() == "held"
        capsys.readouterr()
        assert main(["evaluate", "--run", str(run), "--at", "1", "--n-particles", "10"]) == 2
        assert "is in use by pid" in capsys.readouterr().err
        out = tmp_path / "elsewhere.json"  # writing elsewhere needs no lock on the run
        assert main(["evaluate", "--run", str(run), "--at", "1", "--n-particles", "10", "--out", str(out)]) == 0
    finally:
        again.kill()
        again.wait()


def test_an_out_path_that_is_a_file_is_one_line(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(fit_argv(cells_csv(tmp_path), target)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a file, not a folder" in err[0] and str(target) in err[0]


def test_an_interleaved_history_is_named_with_its_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(fit_argv(cells_csv(tmp_path), run)) == 0
    lines = (run / "history.jsonl").read_text().splitlines()
    (run / "history.jsonl").write_text(lines[0] + "\n" + lines[1][:9] + lines[0] + "\n")  # two writers' bytes mixed
    with pytest.raises(ValueError, match=r"history.jsonl' is not valid JSON at line 2 .*two processes at once"):
        mfsde.training.read_history(run)
    capsys.readouterr()
    assert main(["explain", "--run", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "history.jsonl' is not valid JSON at line 2" in err[-1]


def test_a_filesystem_fault_is_one_line_naming_the_path(tmp_path, capsys, monkeypatch):
    def full(*a, **k):
        raise OSError(28, "No space left on device", str(tmp_path / "run" / "config.json"))

    monkeypatch.setattr(mfsde.training.RunDir, "write_config", full)
    assert main(fit_argv(cells_csv(tmp_path), tmp_path / "run")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0] and str(tmp_path / "run" / "config.json") in err[0]


def test_a_shortcut_and_a_conflicting_set_are_refused(tmp_path, capsys):
    argv = fit_argv(cells_csv(tmp_path), tmp_path / "run") + ["--n-particles", "12", "--set", "train.n_particles=20"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["mfsde fit: error: --n-particles 12 and --set train.n_particles=20 disagree; give one of them"]
    assert not (tmp_path / "run").exists()


def test_degenerate_training_data_is_refused_or_warned():
    rng = np.random.default_rng(0)
    cfg = mfsde.preset("ito", dim=2).override(**{"train.iterations": 1, "model.intra.width": 8, "train.n_particles": 8})
    one = from_arrays([rng.normal(size=(6, 2)), rng.normal(size=(1, 2)), rng.normal(size=(6, 2))], times=[0, 1, 2])
    with pytest.raises(ValueError, match=r"time point 1 \(t = 1\) has 1 cell: training needs at least 2 cells"):
        mfsde.fit(cfg, one, "all", progress=False)
    mfsde.fit(cfg, one, "loo:1", progress=False)  # a held-out time of one cell is only scored, not fitted
    a = rng.normal(size=(6, 2))
    flat = from_arrays([a, np.ones((6, 2)), a + 1], times=[0, 1, 2])
    with pytest.warns(UserWarning, match=r"time point 1 \(t = 1\): all 6 cells are identical"):
        mfsde.fit(cfg, flat, "all", progress=False)
    dup = from_arrays([a, a[::-1].copy(), a + 1], times=[0, 1, 2])
    with pytest.warns(UserWarning, match="time points 0 and 1 hold the same cells"):
        mfsde.fit(cfg, dup, "all", progress=False)


WRITE_LIMITED = """
import resource, sys
from mfsde.cli import main
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
sys.exit(main(sys.argv[2:]))
"""


def test_a_checkpoint_write_over_the_file_size_limit_is_one_line_and_the_last_checkpoint_survives(tmp_path):
    run = tmp_path / "run"
    argv = fit_argv(cells_csv(tmp_path), run)
    assert main(argv) == 0
    before = (run / "checkpoint.pt").read_bytes()
    limit = len(before) // 2  # the other run files are far smaller than a checkpoint
    resume = ["fit", "--resume", str(run), "--iterations", "4", "--quiet"]
    proc = subprocess.run(
        [sys.executable, "-c", WRITE_LIMITED, str(limit), *resume], capture_output=True, text=True, timeout=120
    )
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(err) == 1 and "File too large" in err[0] and str(run / "checkpoint.pt") in err[0], proc.stderr
    assert (run / "checkpoint.pt").read_bytes() == before
    assert mfsde.training.load_checkpoint(run)["iteration"] == 2
    assert not list(run.glob(".*.tmp"))


def test_an_unwritable_run_directory_is_one_line_naming_the_file(tmp_path, capsys, monkeypatch):
    real_open = open

    def read_only(path, mode="r", *a, **k):  # what a read-only folder does to a non-root writer
        if any(c in mode for c in "wax+") and str(path).startswith(str(tmp_path / "run")):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, mode, *a, **k)

    monkeypatch.setattr(mfsde._io, "open", read_only, raising=False)
    assert main(fit_argv(cells_csv(tmp_path), tmp_path / "run")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Permission denied" in err[0] and str(tmp_path / "run") in err[0], err


def test_torchs_wrapped_write_error_becomes_an_oserror_naming_the_checkpoint(tmp_path, monkeypatch):
    def save(obj, fh):  # what torch's zip writer raises when the file under it refuses a write
        try:
            raise OSError(27, "File too large")
        except OSError as e:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0") from e

    monkeypatch.setattr(mfsde.training._runs.torch, "save", save)
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"previous")
    with pytest.raises(OSError, match="could not write the checkpoint") as info:
        mfsde.training.save_checkpoint(path, iteration=1)
    assert info.value.filename == str(path) and path.read_bytes() == b"previous"
