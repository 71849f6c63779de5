"""Runs that survive: kill -9 at random moments, SIGINT/SIGTERM, corrupt or unsafe checkpoints."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mfsde.cli import main
from mfsde.training import CheckpointError, load_checkpoint

ITERATIONS = 60
FIT = [
    "--task",
    "interpolate:1",
    "--preset",
    "ito",
    "--iterations",
    str(ITERATIONS),
    "--n-particles",
    "16",
    "--set",
    "model.intra.width=8",
    "--set",
    "train.n_targets=20",
    "--set",
    "train.checkpoint_every=1",
    "--set",
    "eval.n_particles=20",
    "--quiet",
    "--no-eval",
]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> list[str]:
    d = tmp_path_factory.mktemp("survive")
    rng = np.random.default_rng(0)
    files = []
    for k in range(3):
        files.append(str(d / f"t{k}.npy"))
        np.save(files[-1], (rng.normal(size=(30, 2)) + k).astype(np.float32))
    return files


# `mfsde fit` in a subprocess, one thread, with torch.save slowed down (chunks of 2 kB, 1 ms apart)
# so that a good share of random kills land in the middle of a checkpoint write
_SLOW_SAVE = """
import io, sys, time, torch
_save = torch.save
def _slow_save(obj, f, *a, **k):
    buf = io.BytesIO(); _save(obj, buf, *a, **k); data = buf.getvalue()
    fh = f if hasattr(f, "write") else open(f, "wb")
    for i in range(0, len(data), 2048):
        fh.write(data[i:i + 2048]); fh.flush(); time.sleep(0.001)
    if fh is not f:
        fh.close()
torch.save = _slow_save
torch.set_num_threads(1)
from mfsde.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", _SLOW_SAVE, *args]


def _params(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run)["model"]


def _strip(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("seconds", "cpu_seconds", "eval_seconds")} for r in history]


WALL: dict[str, float] = {}


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("ref") / "run"
    t0 = time.perf_counter()
    subprocess.run(_cli("fit", "--data", *data, "--out", str(run), *FIT), check=True, timeout=120)
    WALL["reference"] = time.perf_counter() - t0  # start-up + training, on this machine now
    return run


def test_kill_9_at_random_moments_then_resume_is_bit_identical(data, reference, tmp_path):
    """kill -9 a real `mfsde fit` at random moments (checkpoints are written every iteration, so
    many kills land inside a write), resume with `--resume DIR` alone, repeat; the final model and
    history equal those of an uninterrupted run."""
    run = tmp_path / "run"
    import shutil

    seed = int(time.time())
    rng = np.random.default_rng(seed)
    first = _cli("fit", "--data", *data, "--out", str(run), *FIT)
    cmd, kills, at_kill = first, 0, []
    for _attempt in range(12):  # three kills at random moments of start-up, training or a write
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if kills < 3:
            time.sleep(float(rng.uniform(0.2, 0.9)) * WALL["reference"])
            if proc.poll() is None:
                proc.kill()  # SIGKILL: no handler, no cleanup
                kills += 1
            elif proc.returncode == 0:  # finished before the kill (the machine got faster): again
                shutil.rmtree(run)
                cmd = first
                continue
        _, err = proc.communicate(timeout=120)
        ckpt = run / "checkpoint.pt"
        at_kill.append(load_checkpoint(run)["iteration"] if ckpt.is_file() else None)
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, err
        # killed before the run directory existed: start again; else resume with the directory alone
        cmd = _cli("fit", "--resume", str(run), "--quiet", "--no-eval") if (run / "config.json").is_file() else first
    assert proc.returncode == 0 and kills == 3, (seed, kills, at_kill)
    ref, got = load_checkpoint(reference), load_checkpoint(run)
    assert got["iteration"] == ITERATIONS
    assert all(torch.equal(ref["model"][k], got["model"][k]) for k in ref["model"])
    assert _strip(got["history"]) == _strip(ref["history"])
    lines = [json.loads(x) for x in (run / "history.jsonl").read_text().splitlines()]
    assert _strip(lines) == _strip(ref["history"])  # the log holds exactly the iterations behind the model


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigint_and_sigterm_checkpoint_before_exit(data, reference, tmp_path, sig, code):
    run = tmp_path / "run"
    args = [a if a != str(ITERATIONS) else "100000" for a in FIT]
    args[args.index("train.checkpoint_every=1")] = "train.checkpoint_every=100000"  # only the signal saves
    proc = subprocess.Popen(_cli("fit", "--data", *data, "--out", str(run), *args), stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        hist = run / "history.jsonl"
        if hist.is_file() and len(hist.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "checkpoint saved at iteration" in err and "--resume" in err
    ckpt = load_checkpoint(run)
    n_lines = len((run / "history.jsonl").read_text().splitlines())
    assert ckpt["iteration"] >= 3 and ckpt["iteration"] == n_lines  # nothing trained is lost


def test_resume_errors_and_messages(data, reference, tmp_path, capsys):
    assert main(["fit", "--resume", str(reference), "--preset", "scimf"]) == 2
    assert "--preset cannot change the run being resumed" in capsys.readouterr().err
    assert main(["fit", "--resume", str(reference), "--iterations", "5", "--out", str(tmp_path / "x")]) == 2
    assert f"it has done {ITERATIONS} iterations, more than train.iterations = 5" in capsys.readouterr().err
    assert main(["fit", "--resume", str(reference), "--out", str(tmp_path / "y"), "--quiet", "--no-eval"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert main(["fit", "--resume", str(tmp_path)]) == 2
    assert "is not a run directory" in capsys.readouterr().err
    # evaluate / explain need no --data: data.json is written before the first iteration
    assert main(["evaluate", "--run", str(reference), "--n-particles", "20", "--no-baselines"]) == 0


def test_a_run_from_before_a_preset_changed_resumes_as_it_was(data, tmp_path, capsys):
    """A run's config.json is a complete dump, read as it stands: a field added to mfsde after the run
    (here train.random_batch, which the pairwise_mlp preset has set since) takes its dataclass default,
    as the checkpoint's copy does, not the preset's new value, so the run resumes as it was trained."""
    run = tmp_path / "run"
    fit = ["--data", *data, "--out", str(run), *FIT[:-2], "--no-eval"]
    fit[fit.index("ito")] = "pairwise_mlp"
    fit[fit.index("model.intra.width=8")] = "model.inter.width=8"
    assert main(["fit", *fit, "--iterations", "2", "--set", "train.random_batch=null"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["preset"] == "pairwise_mlp" and cfg["train"].pop("random_batch") is None
    (run / "config.json").write_text(json.dumps(cfg))  # as written before the field existed
    ckpt = torch.load(run / "checkpoint.pt", weights_only=False)
    del ckpt["config"]["train"]["random_batch"]
    torch.save(ckpt, run / "checkpoint.pt")
    from mfsde.training import RunDir

    assert RunDir(run).read_config().train.random_batch is None
    assert main(["fit", "--resume", str(run), "--iterations", "3", "--quiet", "--no-eval"]) == 0
    assert load_checkpoint(run)["iteration"] == 3
    (run / "config.json").write_text("{not json")
    assert main(["fit", "--resume", str(run), "--iterations", "4", "--quiet", "--no-eval"]) == 2
    assert "config.json' is not valid JSON" in capsys.readouterr().err


def test_resume_before_the_first_checkpoint_starts_over(data, reference, tmp_path, capsys):
    run = tmp_path / "run"
    # a run killed right after writing its config: no checkpoint yet
    assert main(["fit", "--data", *data, "--out", str(run), *FIT[:-2], "--iterations", "1", "--no-eval"]) == 0
    (run / "checkpoint.pt").unlink()
    assert main(["fit", "--resume", str(run), "--iterations", str(ITERATIONS), "--quiet", "--no-eval"]) == 0
    assert "starting it from iteration 0" in capsys.readouterr().out
    assert load_checkpoint(run)["iteration"] == ITERATIONS


@pytest.mark.parametrize("content", [b"", b"\x00garbage" * 10, "truncate"], ids=["empty", "random", "truncated"])
def test_corrupt_checkpoint_is_one_line_exit_2(reference, tmp_path, capsys, content):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.json", "data.json", "meta.json"):
        (run / name).write_bytes((reference / name).read_bytes())
    raw = (reference / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(raw[: len(raw) // 2] if content == "truncate" else content)
    for argv in (
        ["evaluate", "--run", str(run)],
        ["explain", "--run", str(run), "--no-figures"],
        ["fit", "--resume", str(run)],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "checkpoint.pt" in err and ("refit" in err or "not an mfsde" in err), err


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {_Payload.marker}",))


def test_a_pickle_payload_is_refused_without_running(tmp_path):
    _Payload.marker = str(tmp_path / "pwned")
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": {}, "config": {}, "iteration": 0, "evil": _Payload()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()
    with open(tmp_path / "plain.pkl", "wb") as fh:  # and pickle itself would have run it
        pickle.dump(_Payload(), fh)
    assert not (tmp_path / "pwned").exists()


def test_checkpoints_load_with_weights_only(reference):
    ckpt = torch.load(reference / "checkpoint.pt", weights_only=True)  # raises if anything is pickled
    assert ckpt["iteration"] == ITERATIONS and isinstance(ckpt["rng"]["numpy"]["keys"], torch.Tensor)


# -- one-line errors instead of tracebacks or silence -------------------------------------------------
def test_explain_bad_time_index_and_clusters(reference, capsys):
    assert main(["explain", "--run", str(reference), "--time-index", "9", "--no-figures"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "time index 9 out of range for 3 time points (valid: 0..2)" in err
    with pytest.raises(SystemExit) as e:
        main(["explain", "--run", str(reference), "--clusters", "0"])
    assert e.value.code == 2 and "expected a positive integer, got '0'" in capsys.readouterr().err


def test_set_with_a_wrong_type_names_the_key(data, tmp_path, capsys):
    assert main(["fit", "--data", *data, "--out", str(tmp_path / "r"), "--set", "train.lr=fast"]) == 2
    assert "config key train.lr expects a number, got 'fast'" in capsys.readouterr().err


def test_csv_with_a_barcode_column(tmp_path, capsys):
    rows = ["barcode,samples,x1,x2,cell_type"]
    rng = np.random.default_rng(0)
    for t in range(3):
        for i in range(20):
            x = rng.normal(size=2) + t
            rows.append(f"AC{t}{i:03d}G,{t},{x[0]:.4f},{x[1]:.4f},{'A' if i % 2 else 'B'}")
    csv = tmp_path / "cells.csv"
    csv.write_text("\n".join(rows) + "\n")
    base = [
        "fit",
        "--data",
        str(csv),
        "--label-col",
        "cell_type",
        "--preset",
        "ito",
        "--iterations",
        "1",
        "--n-particles",
        "8",
        "--set",
        "model.intra.width=8",
        "--quiet",
        "--no-eval",
    ]
    assert main(base + ["--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "non-numeric feature column(s) ['barcode']" in err and "--drop-cols" in err
    assert main(base + ["--out", str(tmp_path / "b"), "--drop-cols", "barcode"]) == 0
    assert main(base + ["--out", str(tmp_path / "c"), "--features", "x1", "x2"]) == 0
    assert json.loads((tmp_path / "b" / "data.json").read_text())["drop_cols"] == ["barcode"]
    assert main(["evaluate", "--run", str(tmp_path / "b"), "--n-particles", "10", "--no-baselines"]) == 0
    assert main(base + ["--out", str(tmp_path / "d"), "--drop-cols", "nope"]) == 2
    assert "column(s) to drop ['nope'] not found" in capsys.readouterr().err


def test_object_npy_stack_needs_allow_pickle(tmp_path, capsys):
    stack = np.empty((1, 3), dtype=object)
    rng = np.random.default_rng(0)
    for k in range(3):
        stack[0, k] = (rng.normal(size=(15, 2)) + k).astype(np.float32)
    np.save(tmp_path / "stack.npy", stack, allow_pickle=True)
    base = [
        "fit",
        "--data",
        str(tmp_path / "stack.npy"),
        "--preset",
        "ito",
        "--iterations",
        "1",
        "--n-particles",
        "8",
        "--set",
        "model.intra.width=8",
        "--quiet",
        "--no-eval",
    ]
    assert main(base + ["--out", str(tmp_path / "a")]) == 2
    assert "pickled Python objects" in capsys.readouterr().err
    assert main(base + ["--out", str(tmp_path / "b"), "--allow-pickle"]) == 0


def test_threads_default_from_affinity_and_flag(monkeypatch, data, tmp_path):
    from mfsde.training import _runs as runs

    monkeypatch.setattr(runs.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert runs.default_threads() == 4
    monkeypatch.setattr(runs.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert runs.default_threads() == 1
    before = torch.get_num_threads()
    try:
        args = [
            "--data",
            *data,
            "--preset",
            "ito",
            "--iterations",
            "1",
            "--n-particles",
            "8",
            "--set",
            "model.intra.width=8",
            "--quiet",
            "--no-eval",
        ]
        assert main(["fit", *args, "--out", str(tmp_path / "a"), "--threads", "3"]) == 0
        assert torch.get_num_threads() == 3
        assert main(["fit", *args, "--out", str(tmp_path / "b")]) == 0
        assert torch.get_num_threads() == 1  # the default for the (patched) 2 usable cores
        assert json.loads((tmp_path / "b" / "meta.json").read_text())["torch_threads"] == 1
    finally:
        torch.set_num_threads(before)


def test_toml_without_tomllib_uses_tomli(monkeypatch):
    """Python 3.10 has no tomllib: configs and --set values go through tomli there."""
    pytest.importorskip("tomli")
    from mfsde.cli import parse_value
    from mfsde.config._validate import toml_loads

    monkeypatch.setitem(sys.modules, "tomllib", None)  # `import tomllib` now fails as on 3.10
    assert toml_loads('a = 1\n[b]\nc = "x"') == {"a": 1, "b": {"c": "x"}}
    assert parse_value("3e-4") == 3e-4 and parse_value('{name = "rbf"}') == {"name": "rbf"}


def test_fit_help_names_the_default_task(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    assert "a new fit: interpolate at the middle time point" in " ".join(capsys.readouterr().out.split())
