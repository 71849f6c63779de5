"""Data-parallel training (mfsde.training.distributed, Trainer under DDP): two gloo processes on the CPU
train exactly what one process simulating both populations trains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

import mfsde
from mfsde.data import from_arrays
from mfsde.training import Trainer, fit, load_checkpoint, load_run, read_history
from mfsde.training import _distributed as distributed

D = 2
ITERATIONS = 10
TASK = "interpolate:2"
RTOL = 1e-5

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="torch.distributed with the gloo backend is not available in this torch build",
)


def small_config(**overrides):
    """A tiny scimf model with attention dropout on (0.1): each population has its own RNG."""
    base = {
        "model.inter.dropout": 0.1,
        "model.intra.width": 16,
        "model.inter.heads": 1,
        "model.dt": 0.25,
        "loss.fit.blur": 0.3,
        "train.n_particles": 24,
        "train.n_targets": 32,
        "train.iterations": ITERATIONS,
        "train.lr": 1e-2,
        "train.clip_grad_norm": 1.0,
        "train.replicas": 2,
    }
    base.update(overrides)
    return mfsde.preset("scimf", dim=D).override(**base)


def small_snapshots():
    rng = np.random.default_rng(0)
    arrays = [(0.3 * rng.normal(size=(60 + 5 * k, D)) + np.array([1.5 * k, 0.0])).astype(np.float32) for k in range(4)]
    return from_arrays(arrays, times=[0.0, 1.0, 2.0, 3.0])


def losses(history) -> np.ndarray:
    return np.array([h["loss"] for h in history])


def max_rel(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.abs(b)))


# -- the two-process job (this file is also the worker script torchrun launches) -----------------
def cli_data(tmp: Path) -> list[str]:
    """Three .npy snapshots for the `mfsde fit` run (written once, before the ranks start)."""
    rng = np.random.default_rng(1)
    paths = []
    for k in range(3):
        paths.append(str(tmp / f"t{k}.npy"))
        np.save(paths[-1], (0.3 * rng.normal(size=(40, D)) + k).astype(np.float32))
    return paths


def worker(tmp: Path) -> None:
    """One rank of `torchrun --nproc_per_node=2 tests/integration/test_distributed.py --worker TMP`: join the
    group from torchrun's environment, check the divisibility error, fit 5 iterations, resume to
    ITERATIONS (DDP checkpoint and resume), fit 2 iterations with 4 populations (2 per rank), run
    `mfsde fit` in-process, save what it saw."""
    import contextlib
    import io

    from mfsde import cli

    torch.set_num_threads(1)
    assert distributed.init_from_env(timeout=120) and dist.get_backend() == "gloo"
    rank = distributed.rank()
    try:
        assert distributed.world_size() == 2 and rank == int(os.environ["RANK"])
        snaps, cfg = small_snapshots(), small_config()
        try:
            Trainer(cfg.override(**{"train.replicas": 3}), snaps, TASK)
        except ValueError as err:
            assert "train.replicas = 3 is not divisible by the world size 2" in str(err), err
        else:
            raise AssertionError("populations=3 on 2 ranks did not raise")
        # rank 0 cannot write its run directory (a file is in the way): every rank must raise,
        # none may wait in the next collective until the timeout
        blocker = tmp / "blocker"
        blocker.write_text("not a directory")
        try:
            fit(cfg.override(**{"train.iterations": 2}), snaps, TASK, out_dir=blocker / "run", progress=False)
        except (OSError, RuntimeError) as err:
            expected = OSError if rank == 0 else RuntimeError
            assert isinstance(err, expected), (rank, err)
            assert rank == 0 or "rank 0 failed while writing the run directory" in str(err), err
        else:
            raise AssertionError("fit into an unwritable run directory did not raise")
        run = tmp / "ddp"
        t0 = time.perf_counter()
        fit(cfg.override(**{"train.iterations": 5}), snaps, TASK, out_dir=run, progress=False)
        res = fit(cfg, snaps, TASK, resume=run, progress=False)
        seconds = time.perf_counter() - t0
        four = fit(cfg.override(**{"train.replicas": 4, "train.iterations": 2}), snaps, TASK, progress=False)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            data = sorted(str(p) for p in tmp.glob("t*.npy"))
            status = cli.main(
                [
                    "fit",
                    "--data",
                    *data,
                    "--task",
                    "interpolate:1",
                    "--iterations",
                    "2",
                    "--n-particles",
                    "16",
                    "--replicas",
                    "2",
                    "--set",
                    "model.intra.width=8",
                    "--set",
                    "model.inter.heads=1",
                    "--set",
                    "train.n_targets=16",
                    "--quiet",
                    "--no-eval",
                    "--out",
                    str(tmp / "cli"),
                ]
            )
        assert distributed.is_distributed()  # mfsde fit keeps a group it did not create
        torch.save(
            {
                "history": res.history,
                "params": res.model.state_dict(),
                "pid": os.getpid(),
                "four": four.history,
                "seconds": seconds,
                "cli_status": status,
                "cli_stdout": out.getvalue(),
            },
            tmp / f"rank{rank}.pt",
        )
    finally:
        distributed.cleanup()


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """`torchrun --standalone --nproc_per_node=2` on this file: two gloo processes, populations=2."""
    tmp = tmp_path_factory.mktemp("ddp")
    cli_data(tmp)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        __file__,
        "--worker",
        str(tmp),
    ]
    # CPU processes with gloo even on a GPU machine (more ranks than GPUs would break NCCL)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "MFSDE_DIST_BACKEND": "gloo"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-6000:])
    ranks = [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(2)]
    return {"dir": tmp / "ddp", "cli": tmp / "cli", "ranks": ranks, "wall": wall}


@pytest.fixture(scope="module")
def single_run(tmp_path_factory):
    """One process simulating both populations, with a run directory."""
    out = tmp_path_factory.mktemp("single")
    t0 = time.perf_counter()
    res = fit(small_config(), small_snapshots(), TASK, out_dir=out, progress=False)
    return {"result": res, "wall": time.perf_counter() - t0, "dir": out}


def test_two_processes_match_one_process_with_two_populations(ddp_run, single_run):
    ref = single_run["result"].history
    r0, r1 = ddp_run["ranks"]
    assert len(r0["history"]) == ITERATIONS
    # every rank logs the same all-reduced numbers
    for key in ("loss", "fit", "energy", "fit@1", "fit@3", "grad_norm", "lr"):
        assert [h[key] for h in r0["history"]] == [h[key] for h in r1["history"]], key
    rel = max_rel(losses(r0["history"]), losses(ref))
    print(
        f"\nmax relative loss difference over {ITERATIONS} steps, 2 gloo processes vs 1 process: {rel:.3g}; "
        f"wall: torchrun job {ddp_run['wall']:.1f} s (fit {r0['seconds']:.1f} s for "
        f"5 + resume 5 iterations), 1 process {single_run['wall']:.1f} s ({ITERATIONS} iterations)"
    )
    assert rel < RTOL
    for key in ("fit", "energy", "grad_norm"):
        assert max_rel([h[key] for h in r0["history"]], [h[key] for h in ref]) < RTOL, key
    for name, value in single_run["result"].model.state_dict().items():
        assert torch.allclose(r0["params"][name], value, rtol=1e-4, atol=1e-6), name
        assert torch.equal(r0["params"][name], r1["params"][name]), name  # DDP keeps ranks in sync


def test_two_populations_per_rank(ddp_run):
    """populations=4 on 2 ranks: each rank accumulates two populations (under no_sync) before
    DDP averages; the same losses as one process with 4 populations, up to summation order."""
    ref = fit(small_config(**{"train.replicas": 4, "train.iterations": 2}), small_snapshots(), TASK, progress=False)
    r0, r1 = ddp_run["ranks"]
    assert [h["loss"] for h in r0["four"]] == [h["loss"] for h in r1["four"]]
    assert max_rel(losses(r0["four"]), losses(ref.history)) < RTOL


def test_rank_zero_writes_a_run_directory_that_loads_in_one_process(ddp_run):
    run, (r0, r1) = ddp_run["dir"], ddp_run["ranks"]
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt", "config.json", "history.jsonl", "meta.json"]
    meta = json.loads((run / "meta.json").read_text())
    assert meta["pid"] == r0["pid"] != r1["pid"] and meta["world_size"] == 2
    assert [r["world_size"] for r in meta["resumes"]] == [2]
    hist = read_history(run)
    assert [h["iteration"] for h in hist] == list(range(1, ITERATIONS + 1))
    assert [h["loss"] for h in hist] == [h["loss"] for h in r0["history"]]
    model, config = load_run(run)  # a plain state_dict: no "module." prefixes
    assert config.train.replicas == 2
    for name, value in model.state_dict().items():
        assert torch.equal(value, r0["params"][name]), name
    ckpt = load_checkpoint(run)
    assert len(ckpt["rng"]["replicas"]) == 2
    assert ckpt["iteration"] == ITERATIONS


def test_one_process_resumes_a_two_process_checkpoint(ddp_run, single_run, tmp_path):
    """The checkpoint holds the streams of both populations (gathered from both ranks): one
    process continues the two-process run as if it had run both populations all along."""
    cfg = small_config(**{"train.iterations": ITERATIONS + 2})
    snaps = small_snapshots()
    res = fit(cfg, snaps, TASK, resume=ddp_run["dir"] / "checkpoint.pt", out_dir=tmp_path, progress=False)
    ref = fit(cfg, snaps, TASK, resume=single_run["dir"], out_dir=tmp_path / "ref", progress=False)
    assert [h["iteration"] for h in res.history] == list(range(1, ITERATIONS + 3))
    assert max_rel(losses(res.history[ITERATIONS:]), losses(ref.history[ITERATIONS:])) < RTOL


def test_replica_zero_uses_the_single_replica_streams():
    snaps = small_snapshots()
    one = Trainer(small_config(**{"train.replicas": 1}), snaps, TASK)
    two = Trainer(small_config(), snaps, TASK)
    assert [p.index for p in two.replicas] == [0, 1] and two.generator is two.replicas[0].generator
    assert torch.equal(one.generator.get_state(), two.replicas[0].generator.get_state())
    assert torch.equal(one.replicas[0].torch_rng["cpu"], two.replicas[0].torch_rng["cpu"])
    assert not torch.equal(two.replicas[0].generator.get_state(), two.replicas[1].generator.get_state())
    assert not torch.equal(two.replicas[0].torch_rng["cpu"], two.replicas[1].torch_rng["cpu"])


def test_populations_average_the_population_losses():
    """With P populations the record is the mean of the per-population losses."""
    snaps, cfg = small_snapshots(), small_config(**{"train.replicas": 3})
    tr = Trainer(cfg, snaps, TASK)
    parts = [tr.population_loss(p) for p in tr.replicas]
    fresh = Trainer(cfg, snaps, TASK)
    rec = fresh.step()
    assert rec["loss"] == pytest.approx(sum(p[0].item() for p in parts) / 3, rel=1e-6)
    assert rec["fit@1"] == pytest.approx(sum(p[3][0].item() for p in parts) / 3, rel=1e-6)


def test_local_replicas_and_errors():
    assert distributed.local_replicas(4, 0, 2) == [0, 2]
    assert distributed.local_replicas(4, 1, 2) == [1, 3]
    assert distributed.local_replicas(1) == [0]
    with pytest.raises(ValueError, match=r"train.replicas = 3 is not divisible by the world size 2"):
        distributed.local_replicas(3, 0, 2)
    with pytest.raises(ValueError, match=r"train.replicas must be a positive int, got 0"):
        distributed.local_replicas(0)
    with pytest.raises(ValueError, match=r"train.replicas must be a positive int, got 0"):
        small_config(**{"train.replicas": 0})


def test_helpers_without_a_process_group(monkeypatch):
    assert not distributed.is_distributed()
    assert distributed.rank() == 0 and distributed.world_size() == 1 and distributed.is_main()
    x = torch.ones(3)
    assert distributed.all_reduce_sum(x) is x
    assert distributed.all_gather_objects({"a": 1}) == [{"a": 1}]
    assert distributed.broadcast_object(5) == 5 and distributed.any_rank(True) and not distributed.any_rank(False)
    distributed.barrier()
    distributed.cleanup()
    assert distributed.default_device() == torch.device("cpu")
    for var in distributed.ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    assert distributed.init_from_env() is False  # not under torchrun: a single process
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert distributed.init_from_env() is False
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match=r"\['RANK', 'MASTER_ADDR', 'MASTER_PORT'\] are not set; launch with"):
        distributed.init_from_env()
    monkeypatch.setenv(distributed.BACKEND_ENV, "gloo")
    assert distributed.default_backend() == "gloo"
    monkeypatch.delenv(distributed.BACKEND_ENV)
    assert distributed.default_backend() == ("nccl" if torch.cuda.is_available() else "gloo")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE must be an integer, got 'two'"):
        distributed.init_from_env()
    assert not distributed.is_distributed()


def test_cli_fit_under_torchrun(ddp_run):
    """`mfsde fit --replicas 2` on both ranks: rank 0 prints and writes the run directory."""
    r0, r1 = ddp_run["ranks"]
    assert r0["cli_status"] == r1["cli_status"] == 0
    assert r0["cli_stdout"].count("fitting scimf") == 1 and r0["cli_stdout"].count("done in") == 1, r0["cli_stdout"]
    assert r1["cli_stdout"] == ""
    out = ddp_run["cli"]
    assert json.loads((out / "meta.json").read_text())["world_size"] == 2
    assert [h["iteration"] for h in read_history(out)] == [1, 2]
    model, config = load_run(out)
    assert config.train.replicas == 2 and (out / "data.json").is_file()


if __name__ == "__main__":  # the worker torchrun launches (see ddp_run)
    if len(sys.argv) != 3 or sys.argv[1] != "--worker":
        sys.exit(f"usage: torchrun --nproc_per_node=2 {sys.argv[0]} --worker TMP_DIR")
    worker(Path(sys.argv[2]))
