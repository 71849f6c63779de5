"""The benchmarks' shared helpers (``benchmarks/_common.py``): mean ± spread over seeds, a
``--shard``'s share of the jobs, and the row log (a fresh or resumed run, appended rows, rows read
back from a result's JSON where its log is not kept). Nothing trains."""

from __future__ import annotations

import json
import math

import pytest
from conftest import REPO, load_benchmark

PATH = REPO / "benchmarks" / "_common.py"


@pytest.fixture(scope="module")
def common():
    return load_benchmark("_common")


def test_mean_pm_is_mean_and_sample_std_and_one_value_has_no_spread(common):
    assert common.mean_pm([0.30, 0.31, 0.29]) == "0.300 ± 0.010"
    assert common.mean_pm([0.3], 2) == "0.30"
    assert common.mean_pm([120, 130], 0) == "125 ± 7"
    assert common.mean_std([1.0]) == (1.0, pytest.approx(math.nan, nan_ok=True))
    assert common.pm(39.5, 0.09, 2) == "39.50 ± 0.09" and common.pm(39.5, None, 2) == "39.50"


def test_an_undefined_value_is_a_dash_or_left_out(common):
    assert common.mean_pm([]) == "–"
    assert common.mean_pm([0.3, None]) == "–" and common.mean_pm([0.3, math.nan]) == "–"
    assert common.mean_pm([0.3, None, math.nan, math.inf, 0.5], drop_undefined=True) == "0.400 ± 0.141"
    assert common.mean_pm([None], drop_undefined=True) == "–"


def test_a_shard_takes_every_nth_job_starting_at_its_own(common):
    jobs = list("abcdefg")
    assert common.share(jobs, (1, 2)) == list("aceg") and common.share(jobs, (2, 2)) == list("bdf")
    assert sorted(common.share(jobs, (1, 3)) + common.share(jobs, (2, 3)) + common.share(jobs, (3, 3))) == jobs
    assert common.shard("2/3") == (2, 3)


def test_the_row_log_starts_fresh_resumes_and_appends(common, tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path / "results")
    log = common.rows_log("run")
    assert common.start_log(log, resume=True) == ([], log) and log.parent.is_dir()
    common.append_rows(log, [{"a": 1}, {"a": 2}], **common.run_fields("abc1234", threads=1))
    rows = common.read_rows(log)
    assert [r["a"] for r in rows] == [1, 2]
    assert {k for k in rows[0]} == {"a", "loadavg_1", "threads", "git_commit"} and rows[0]["git_commit"] == "abc1234"
    assert "threads" not in common.run_fields("abc1234")
    assert common.start_log(log, resume=True, shard=(1, 2))[0] == rows  # resuming keeps them
    assert common.start_log(log, resume=False) == ([], log) and not log.exists()  # a fresh run starts over


def test_shards_write_their_own_logs_so_none_deletes_another_shards_rows(common, tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path / "results")
    log = common.rows_log("run")
    common.start_log(log, resume=False)
    common.append_rows(log, [{"run": "earlier"}])  # an earlier single run's rows
    # shard 2 starts first and writes a row before shard 1 starts: shard 1 must not delete it
    rows, out2 = common.start_log(log, resume=False, shard=(2, 2))
    assert rows == [] and out2 == common.shard_log(log, (2, 2))  # the file this shard appends to
    common.append_rows(out2, [{"job": "b"}])
    rows, out1 = common.start_log(log, resume=False, shard=(1, 2))
    assert rows == [] and out1 == common.shard_log(log, (1, 2))
    common.append_rows(out1, [{"job": "a"}])
    assert sorted(r["job"] for r in common.read_rows(log)) == ["a", "b"]  # the earlier run's row is gone
    assert common.shard_log(log, (1, 2)).name == "run.shard-1-of-2.rows.jsonl" and common.shard_log(log) == log
    assert common.load_rows("run")[0] == common.read_rows(log)
    # a resumed shard sees every shard's rows; a later 3-way run replaces the 2-way run's files
    rows, out = common.start_log(log, resume=True, shard=(2, 2))
    assert len(rows) == 2 and out == out2  # and it appends to its own file again
    common.start_log(log, resume=False, shard=(3, 3))
    assert common.read_rows(log) == []


def test_load_rows_reads_the_log_else_the_rows_of_the_result_json(common, tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    assert common.load_rows("none") == ([], tmp_path / "none.rows.jsonl")
    common.write_json("named", {"environment": {"git_commit": "abc1234"}, "rows": [{"a": 1}]})
    assert common.load_rows("named") == ([{"a": 1}], tmp_path / "named.json")
    common.append_rows(common.rows_log("named"), [{"a": 2}])
    assert common.load_rows("named") == ([{"a": 2}], tmp_path / "named.rows.jsonl")  # the log wins
    (tmp_path / "other.json").write_text(json.dumps({"benchmark": "other", "runs": []}))
    assert common.load_rows("other")[0] == []  # a result without stored rows


def test_the_commit_mark_is_dirty_for_changed_code_not_for_the_runs_own_results(common, tmp_path, monkeypatch):
    import subprocess

    def git(*args):
        cmd = ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args]
        subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True)

    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    (tmp_path / "code.py").write_text("x = 1\n")
    (results / "run.rows.jsonl").write_text("{}\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "init")
    monkeypatch.setattr(common, "REPO_ROOT", tmp_path)
    clean = common._git_commit()
    assert clean and not clean.endswith("+dirty")
    (results / "run.rows.jsonl").unlink()  # a fresh run removes its committed row log
    assert common._git_commit() == clean
    (tmp_path / "code.py").write_text("x = 2\n")  # changed code is marked
    assert common._git_commit() == clean + "+dirty"
