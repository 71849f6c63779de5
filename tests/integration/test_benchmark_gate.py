"""The no-regression gate of ``benchmarks/accuracy.py``: the verdict rule on hand-made rows,
``--write-reference`` then ``--compare`` on a tiny fake rows log, the extrapolation tasks'
"–" for McCann, and ``--tasks`` parsing. Nothing trains."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest
from conftest import REPO, load_benchmark

import mfsde

PATH = REPO / "benchmarks" / "accuracy.py"


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("accuracy")


def row(
    preset: str,
    seed: int,
    w1,
    *,
    task: str = "loo:1",
    dataset: str = "emt",
    kind: str = "model",
    budget: float = 60.0,
    **extra,
) -> dict:
    """One logged row as ``run_model`` / ``run_baselines`` write it; ``w1`` a number or one per
    held-out time (then the task holds out times 2, 4, 6)."""
    per = [w1] if not isinstance(w1, (list, tuple)) else list(w1)
    idx = [1] if len(per) == 1 else [2 * (j + 1) for j in range(len(per))]
    r = {
        "dataset": dataset,
        "task": task,
        "start": "t0",
        "preset": preset,
        "kind": kind,
        "seed": seed,
        "w1": sum(per) / len(per),
        "w2": sum(per) / len(per),
        "git_commit": "abc1234",
        "per_time": [{"index": k, "time": float(k), "w1": v, "w2": v} for k, v in zip(idx, per)],
    }
    if kind == "model":
        r.update(iterations=10, train_seconds=budget, budget=budget, overrides={}, curve=None)
    return {**r, **extra}


def seeds(preset: str, values, **kw) -> list[dict]:
    return [row(preset, s, v, **kw) for s, v in enumerate(values)]


def lines(bench, ref_rows: list[dict], new_rows: list[dict]) -> dict[str, dict]:
    """The gate's lines of ``new_rows`` against a reference made of ``ref_rows``, by method."""
    g = bench.gate(new_rows, {"entries": bench.entries(ref_rows), "git_commits": ["abc1234"]})
    return {ln["method"]: ln for ln in g["lines"]}


# -- the rule ------------------------------------------------------------------------------------
def test_better_within_worse_and_not_comparable(bench):
    ref = [r for p in ("good", "same", "bad", "longer") for r in seeds(p, [1.00, 1.01, 0.99])]
    new = (
        seeds("good", [0.90, 0.91, 0.89])
        + seeds("same", [1.005, 1.015, 0.995])
        + seeds("bad", [1.10, 1.11, 1.09])
        + seeds("longer", [1.00, 1.01, 0.99], budget=120.0)
    )
    got = lines(bench, ref, new)
    assert {m: got[m]["verdict"] for m in got} == {
        "good": "better",
        "same": "within",
        "bad": "worse",
        "longer": "not comparable",
    }
    assert got["longer"]["reason"] == "budget 120 vs 60"
    assert got["bad"]["difference"] == pytest.approx(0.10)
    # tol = 2·sqrt(s_ref²/n_ref + s_new²/n_new), both sides std 0.01 over 3 seeds
    assert got["same"]["tol"] == pytest.approx(2 * math.sqrt(2 * 0.01**2 / 3))


def test_other_overrides_clock_or_method_are_not_comparable(bench):
    ref = seeds("a", [1.0, 1.0]) + seeds("b", [1.0, 1.0]) + seeds("c", [1.0, 1.0])
    new = (
        seeds("a", [1.0, 1.0], overrides={"train.lr": 0.01})
        + seeds("b", [1.0, 1.0], time_clock="cpu")
        + seeds("c", [1.0, 1.0], method="flow_matching")
    )
    got = lines(bench, ref, new)
    assert {m: got[m]["verdict"] for m in got} == dict.fromkeys("abc", "not comparable")
    assert got["a"]["reason"] == "overrides train.lr=0.01 vs none"
    assert got["b"]["reason"] == "clock cpu vs wall"
    assert got["c"]["reason"] == "training method flow_matching vs simulation"


def test_a_candidate_default_is_compared_with_the_plain_preset_and_nothing_else_is_waived(bench):
    """``--candidate``: the rows' overrides are the change under test, so they compare with the
    reference's plain preset; a reference entry that has overrides of its own, another clock or
    another method stay not comparable."""
    ref = seeds("a", [1.0, 1.01, 0.99]) + seeds("b", [1.0, 1.0], overrides={"train.lr": 0.1}) + seeds("c", [1, 1])
    new = (
        seeds("a", [0.9, 0.91, 0.89], overrides={"model.sigma_units": "spread"})
        + seeds("b", [1.0, 1.0], overrides={"train.lr": 0.01})
        + seeds("c", [1.0, 1.0], overrides={"model.sigma": 0.05}, time_clock="cpu")
    )
    g = bench.gate(new, {"entries": bench.entries(ref), "git_commits": ["abc1234"]}, candidate=True)
    got = {ln["method"]: ln for ln in g["lines"]}
    assert got["a"]["verdict"] == "better" and got["a"]["reason"] is None
    assert got["b"]["verdict"] == "not comparable" and got["b"]["reason"].startswith("overrides train.lr=0.01")
    assert got["c"]["verdict"] == "not comparable" and got["c"]["reason"] == "clock cpu vs wall"
    assert '{"model.sigma_units": "spread"}' in g["candidate"]
    assert "Candidate default under test" in bench.gate_markdown(g, lambda d: 3)
    assert lines(bench, ref, new)["a"]["verdict"] == "not comparable"  # without --candidate


def test_a_budget_that_bought_other_work_is_not_comparable(bench):
    ref = seeds("a", [1.0, 1.0]) + seeds("b", [1.0, 1.0])
    new = seeds("a", [1.3, 1.3], iterations=5) + seeds("b", [1.0, 1.0], iterations=12)  # half / 1.2× the work
    got = lines(bench, ref, new)
    assert got["a"]["verdict"] == "not comparable" and got["a"]["reason"].startswith("iterations 5 vs 10")
    assert got["b"]["verdict"] == "within"


def test_a_one_seed_side_borrows_the_other_sides_std(bench):
    # reference one seed (1.0), this run 1.02 ± 0.01 over 3 seeds: tol = 2·sqrt(0.01² + 0.01²/3) ≈ 0.0231
    ref = [row("x", 0, 1.0), row("y", 0, 1.0)]
    new = seeds("x", [1.02, 1.03, 1.01]) + seeds("y", [1.03, 1.04, 1.02])
    got = lines(bench, ref, new)
    assert got["x"]["tol"] == pytest.approx(2 * math.sqrt(0.01**2 + 0.01**2 / 3))
    assert (got["x"]["verdict"], got["y"]["verdict"]) == ("within", "worse")
    # and the other way round: this run one seed
    assert lines(bench, new, [row("x", 0, 1.0)])["x"]["verdict"] == "within"
    assert lines(bench, new, [row("y", 0, 0.99)])["y"]["verdict"] == "better"


def test_both_sides_single_use_one_percent_of_the_reference(bench):
    # s = 1 % of the reference mean on each side: tol = 2·sqrt(2)·0.01 ≈ 0.0283
    ref = [row("x", 0, 1.0), row("y", 0, 1.0)]
    got = lines(bench, ref, [row("x", 0, 1.025), row("y", 0, 1.03)])
    assert got["x"]["tol"] == pytest.approx(2 * math.sqrt(2) * 0.01)
    assert (got["x"]["verdict"], got["y"]["verdict"]) == ("within", "worse")


def test_the_tolerance_is_at_least_a_quarter_percent(bench):
    ref = seeds("x", [2.0, 2.0, 2.0]) + seeds("y", [2.0, 2.0, 2.0])  # no spread: the floor decides
    got = lines(bench, ref, seeds("x", [2.004] * 3) + seeds("y", [2.006] * 3))
    assert got["x"]["tol"] == pytest.approx(0.005)
    assert (got["x"]["verdict"], got["y"]["verdict"]) == ("within", "worse")


def test_new_missing_per_time_and_mean_lines(bench):
    ref = seeds("kept", [[1.0, 2.0, 3.0]] * 2, task="interpolate:2,4,6") + seeds("gone", [1.0, 1.0])
    new = (
        seeds("kept", [[1.0, 2.0, 3.0]] * 2, task="interpolate:2,4,6")
        + seeds("added", [1.0, 1.0])
        + seeds("other", [1.0], task="loo:2")
    )
    g = bench.gate(new, {"entries": bench.entries(ref), "git_commits": ["abc1234"]})
    by = {(ln["method"], ln["task"], ln["time"]): ln["verdict"] for ln in g["lines"]}
    assert by == {
        ("kept", "interpolate:2,4,6", "2 (t = 2)"): "within",
        ("kept", "interpolate:2,4,6", "4 (t = 4)"): "within",
        ("kept", "interpolate:2,4,6", "6 (t = 6)"): "within",
        ("kept", "interpolate:2,4,6", "mean"): "within",
        ("gone", "loo:1", "mean"): "missing",
        ("added", "loo:1", "mean"): "new",
        ("other", "loo:2", "mean"): "new",
    }
    assert g["summary"] == {"emt": {"better": 0, "within": 4, "worse": 0, "missing": 1, "new": 2}}
    assert "emt: 0 better, 4 within, 0 worse, 2 new, 1 missing." in bench.gate_markdown(
        {**g, "reference": {"git_commits": ["abc1234"], "mfsde_version": "0", "written": "today", "rows_log": "x"}},
        lambda ds: 3,
    )
    assert bench.gate(new[:2], {"entries": bench.entries(ref)})["not_in_run"] == ["emt loo:1, t0"]


# -- write the reference, then compare ------------------------------------------------------------
def fake_log(directory: Path, name: str, rows: list[dict]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


FAKE = (
    seeds("scimf", [0.30, 0.31, 0.29])
    + seeds("ito", [0.33, 0.34, 0.35])
    + [row("rbf", 0, 0.4)]
    + seeds("scimf", [[0.5, 0.6, 0.7], [0.52, 0.61, 0.69]], task="interpolate:2,4,6", dataset="bargaje")
    + [
        row(b, s, 0.3 + 0.1 * j + 0.01 * s, kind="baseline")
        for j, b in enumerate(("previous", "mccann", "floor"))
        for s in range(3)
    ]
)


@pytest.fixture
def results(bench, tmp_path, monkeypatch):
    """Results and reference under ``tmp_path``."""
    monkeypatch.setattr(bench._common, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(bench, "REFERENCE", tmp_path / "reference" / "accuracy.json")
    return tmp_path


def test_write_reference_then_compare_against_itself_is_all_within(bench, results, capsys):
    fake_log(results / "results", "fake", FAKE)
    assert bench.main(["--write-reference", "--name", "fake"]) == 0
    ref = json.loads((results / "reference" / "accuracy.json").read_text())
    assert (ref["rows_log"], ref["git_commits"], ref["mfsde_version"]) == (
        "fake.rows.jsonl",
        ["abc1234"],
        mfsde.__version__,
    )
    assert ref["written"]
    e = {(x["dataset"], x["task"], x["method"]): x for x in ref["entries"]}
    assert set(e) == {("emt", "loo:1", m) for m in ("scimf", "ito", "rbf", "previous", "mccann", "floor")} | {
        ("bargaje", "interpolate:2,4,6", "scimf")
    }
    scimf = e[("emt", "loo:1", "scimf")]
    assert (scimf["budget"], scimf["overrides"], scimf["training_method"], scimf["clock"]) == (
        60.0,
        {},
        "simulation",
        "wall",
    )
    assert scimf["seeds"] == [0, 1, 2] and scimf["mean"]["w1"]["n"] == 3
    assert scimf["mean"]["w1"]["mean"] == pytest.approx(0.30) and scimf["mean"]["w1"]["std"] == pytest.approx(0.01)
    assert e[("emt", "loo:1", "rbf")]["mean"]["w1"]["std"] is None
    assert [pt["index"] for pt in e[("bargaje", "interpolate:2,4,6", "scimf")]["per_time"]] == [2, 4, 6]
    capsys.readouterr()

    assert bench.main(["--compare", "--name", "fake"]) == 0
    out = capsys.readouterr().out
    assert "Against the reference (commit abc1234" in out and "Overview" not in out  # only the gate
    g = json.loads((results / "results" / "fake.json").read_text())["gate"]
    assert len(g["lines"]) == 6 + 4 and {ln["verdict"] for ln in g["lines"]} == {"within"}
    assert g["summary"] == {
        "emt": {"better": 0, "within": 6, "worse": 0},
        "bargaje": {"better": 0, "within": 4, "worse": 0},
    }
    md = (results / "results" / "fake.md").read_text()
    assert "Against the reference (commit abc1234" in md and "emt: 0 better, 6 within, 0 worse" in md


def test_compare_reports_worse_and_fails_only_when_asked(bench, results, capsys):
    fake_log(results / "results", "fake", FAKE)
    assert bench.main(["--write-reference", "--name", "fake"]) == 0
    fake_log(
        results / "results",
        "fake",
        [
            {**r, "per_time": [{**r["per_time"][0], "w1": r["w1"] + 0.1}], "w1": r["w1"] + 0.1}
            if r["preset"] == "ito"
            else r
            for r in FAKE
        ],
    )
    assert bench.main(["--compare", "--name", "fake"]) == 0
    assert (
        "| ito | emt loo:1, t0 | 1 (t = 1) | 0.340 ± 0.010 (3) | 0.440 ± 0.010 (3) | +0.1000 (+29.4 %)"
        in capsys.readouterr().out
    )
    assert bench.main(["--compare", "--name", "fake", "--fail-on-worse"]) == 1
    assert bench.main(["--render", "--name", "fake", "--fail-on-worse", "--reference", "none"]) == 0


def test_a_result_kept_without_its_row_log_renders_and_compares_from_its_json(bench, results, capsys):
    fake_log(results / "results", "fake", FAKE)
    assert bench.main(["--write-reference", "--name", "fake"]) == 0
    assert bench.main(["--render", "--name", "fake"]) == 0
    md = (results / "results" / "fake.md").read_text()
    (results / "results" / "fake.rows.jsonl").unlink()  # a named result is committed as JSON and table only
    assert bench.main(["--render", "--name", "fake"]) == 0
    assert (results / "results" / "fake.md").read_text() == md
    assert bench.main(["--compare", "--name", "fake", "--fail-on-worse"]) == 0
    (results / "results" / "fake.json").unlink()
    capsys.readouterr()
    assert bench.main(["--render", "--name", "fake"]) == 2 and "no rows in" in capsys.readouterr().out


def test_compare_without_a_reference_is_an_error(bench, results, capsys):
    fake_log(results / "results", "fake", FAKE)
    assert bench.main(["--compare", "--name", "fake"]) == 2
    assert "no reference at" in capsys.readouterr().out
    assert bench.main(["--render", "--name", "fake"]) == 0  # a render goes on without one
    with pytest.raises(SystemExit):
        bench.main(["--compare", "--name", "fake", "--reference", "none"])


# -- extrapolation tasks --------------------------------------------------------------------------
def test_mccann_past_the_last_training_time_shows_a_dash(bench):
    import numpy as np

    from mfsde.data import from_arrays
    from mfsde.evaluation import baseline_evaluations

    rng = np.random.default_rng(0)
    snaps = from_arrays([rng.normal(i, 1.0, (40, 2)) for i in range(4)], times=[0, 1, 2, 3], name="fake")
    assert any(
        pt.get("note") for ev in baseline_evaluations(snaps, "extrapolate:1", n_particles=50) for pt in ev["per_time"]
    )
    rows = bench.run_baselines(snaps, "emt", "extrapolate:1", ("t0",), 0)
    rows += seeds("scimf", [1.0, 1.1], task="extrapolate:1")
    rows = [{**r, "per_time": [{**pt, "index": 3} for pt in r["per_time"]]} for r in rows]

    def digits(ds):
        return 3

    mccann_line = next(ln for ln in bench.markdown(rows, digits).splitlines() if ln.startswith("| *mccann*"))
    assert mccann_line.split(" | ")[1:3] == ["–", "–"]
    # beside copying, the baseline with dynamics: the last gap's displacement carried on (cells
    # drift by (1, 1) per unit of time, so it lands near time 3 where copying time 2 is √2 off)
    ours = {r["preset"]: r["w1"] for r in rows if r["kind"] == "baseline"}
    assert ours["continuation"] < 0.6 * ours["previous"]
    assert any(ln.startswith("| *continuation*") for ln in bench.markdown(rows, digits).splitlines())
    assert {r["preset"] for r in bench.run_baselines(snaps, "emt", "loo:1", ("t0",), 0)} == {
        "previous",
        "mccann",
        "floor",
    }
    over = bench.overview(rows, digits).splitlines()[-1].split(" | ")
    assert over[2] == "–" and over[7:9] == ["–", "–"]  # McCann, scimf < McCann, best < McCann
    g = bench.gate(rows, {"entries": bench.entries(rows)})
    assert {ln["method"]: ln["verdict"] for ln in g["lines"]}["mccann"] == "not comparable"


# -- --tasks ---------------------------------------------------------------------------------------
def test_tasks_select_the_extrapolation_tasks_which_are_not_run_by_default(bench):
    assert not any("extrapolate" in t for _, t, _ in bench.TASKS)
    tasks = [bench.parse_task(x) for x in ("emt:loo:1", "bargaje:extrapolate:1", "cite:loo:2")]
    assert tasks == [
        ("emt", "loo:1", ("t0",)),
        ("bargaje", "extrapolate:1", ("t0", "previous")),
        ("cite", "loo:2", ("t0", "previous")),
    ]
    args = argparse.Namespace(
        seeds=[0], tasks=tasks, datasets=["emt", "bargaje"], presets=["scimf"], cite_presets=["ito"]
    )
    assert bench.plan(args) == [
        ("emt", "loo:1", ("t0",), "baselines", 0),
        ("emt", "loo:1", ("t0",), "scimf", 0),
        ("bargaje", "extrapolate:1", ("t0", "previous"), "baselines", 0),
        ("bargaje", "extrapolate:1", ("t0", "previous"), "scimf", 0),
    ]
    args.no_baselines = True  # --no-baselines: the presets only
    assert [j[3] for j in bench.plan(args)] == ["scimf", "scimf"]


def test_tasks_reject_an_unknown_label_in_one_line(bench, results, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--tasks", "emt:loo:1", "emt:loo:9", "--render"])
    assert exc.value.code == 2
    errors = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]
    assert len(errors) == 1 and "argument --tasks: unknown task 'emt:loo:9'; known: emt:loo:1" in errors[0]
    assert "bargaje:extrapolate:1" in errors[0]


# -- --match-iterations ----------------------------------------------------------------------------
def test_runs_matched_to_the_reference_iterations_compare_whatever_their_budget_and_clock(bench):
    ref = seeds("a", [1.0, 1.0]) + seeds("b", [1.0, 1.0]) + seeds("c", [1.0, 1.0])
    matched = {"compute": "iterations", "budget": None, "time_clock": "cpu", "train_seconds": 30.0}
    new = (
        seeds("a", [1.0, 1.0], **matched)
        + [row("b", 0, 1.0, **matched), row("b", 1, 1.0, **{**matched, "iterations": 11})]
        + seeds("c", [1.0, 1.0], **matched, overrides={"train.lr": 0.01})
    )
    got = lines(bench, ref, new)
    assert got["a"]["verdict"] == "within" and got["a"]["reason"] is None
    assert got["b"]["verdict"] == "not comparable"
    assert got["b"]["reason"] == "iterations per seed seed 1: 11 vs 10"
    assert got["c"]["reason"] == "overrides train.lr=0.01 vs none"  # matching iterations is not matching settings
    # a budget run is still held to the reference's settings
    assert lines(bench, ref, seeds("a", [1.0, 1.0], budget=120.0))["a"]["reason"] == "budget 120 vs 60"


@pytest.fixture
def tiny_emt(bench, monkeypatch):
    """``emt`` replaced by a small synthetic data set (4 times, 2-D): the benchmark trains in seconds."""
    import numpy as np

    rng = np.random.default_rng(0)
    snaps = mfsde.Snapshots([0.0, 1.0, 2.0, 3.0], [rng.normal(size=(60, 2)) + 0.5 * k for k in range(4)], name="emt")
    monkeypatch.setattr(bench, "load", lambda name: snaps if name == "emt" else None)


def test_match_iterations_trains_every_seed_for_the_reference_count(bench, results, tiny_emt, capsys):
    ref_rows = [row("ito", 0, 0.5, iterations=3), row("ito", 1, 0.6, iterations=4)]
    fake_log(results / "results", "ref", ref_rows)
    assert bench.main(["--write-reference", "--name", "ref"]) == 0
    e = json.loads((results / "reference" / "accuracy.json").read_text())["entries"][0]
    assert (e["iterations_per_seed"], e["compute"]) == ([3, 4], "budget")
    assert e["seconds_per_iteration"] == pytest.approx((60 / 3 + 60 / 4) / 2)
    args = ["--match-iterations", "--datasets", "emt", "--presets", "ito", "--tasks", "emt:loo:1", "--name", "m"]
    assert bench.main([*args, "--seeds", "0", "1"]) == 0
    rows = [json.loads(x) for x in (results / "results" / "m.rows.jsonl").read_text().splitlines()]
    models = sorted((r for r in rows if r["kind"] == "model"), key=lambda r: r["seed"])
    assert [(r["seed"], r["iterations"], r["compute"], r["budget"]) for r in models] == [
        (0, 3, "iterations", None),
        (1, 4, "iterations", None),
    ]
    g = json.loads((results / "results" / "m.json").read_text())["gate"]
    (ito,) = [ln for ln in g["lines"] if ln["method"] == "ito"]
    assert ito["verdict"] in ("better", "within", "worse") and ito["reason"] is None
    (speed,) = g["speed"]
    assert speed["reference"]["seconds_per_iteration"] == pytest.approx(17.5)
    assert speed["new"]["seconds_per_iteration"] > 0 and speed["new"]["iterations"] == 3.5
    assert "Training speed, for information" in (results / "results" / "m.md").read_text()
    capsys.readouterr()

    with pytest.raises(SystemExit) as exc:  # a seed the reference lacks: refused before anything runs
        bench.main([*args, "--seeds", "2", "--name", "m2"])
    assert exc.value.code == 2
    errors = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]
    assert len(errors) == 1 and "has no iteration count for ito on emt loo:1 seed 2" in errors[0]
    assert not (results / "results" / "m2.rows.jsonl").exists()
    with pytest.raises(SystemExit) as exc:
        bench.main([*args, "--seeds", "0", "--budget", "10"])
    assert exc.value.code == 2 and "takes neither --budget" in capsys.readouterr().err


def test_a_reference_from_uncommitted_code_is_refused_unless_allowed(bench, results, capsys):
    fake_log(results / "results", "dirty", [row("scimf", 0, 0.3, git_commit="abc1234+dirty"), row("ito", 0, 0.4)])
    assert bench.main(["--write-reference", "--name", "dirty"]) == 2
    out = capsys.readouterr().out
    assert "come from code no commit holds (abc1234+dirty)" in out and "--allow-dirty" in out
    assert not (results / "reference" / "accuracy.json").exists()
    assert bench.main(["--write-reference", "--name", "dirty", "--allow-dirty"]) == 0
    e = {x["method"]: x for x in json.loads((results / "reference" / "accuracy.json").read_text())["entries"]}
    assert (e["scimf"]["reproducible"], e["ito"]["reproducible"]) == (False, True)


def test_update_replaces_only_the_entries_the_rows_hold(bench, results, capsys):
    fake_log(results / "results", "fake", FAKE)
    assert bench.main(["--write-reference", "--name", "fake"]) == 0
    before = json.loads((results / "reference" / "accuracy.json").read_text())
    fake_log(results / "results", "redo", seeds("scimf", [0.25, 0.26, 0.24], git_commit="def5678"))
    assert bench.main(["--write-reference", "--update", "--name", "redo"]) == 0
    after = json.loads((results / "reference" / "accuracy.json").read_text())
    key = [(e["dataset"], e["task"], e["method"]) for e in before["entries"]]
    assert [(e["dataset"], e["task"], e["method"]) for e in after["entries"]] == key  # same entries, same order
    changed = [e for a, e in zip(before["entries"], after["entries"]) if a != e]
    assert [(e["dataset"], e["task"], e["method"]) for e in changed] == [("emt", "loo:1", "scimf")]
    assert changed[0]["mean"]["w1"]["mean"] == pytest.approx(0.25) and changed[0]["git_commits"] == ["def5678"]
    assert after["git_commits"] == ["abc1234", "def5678"] and after["written"] == before["written"]
    (upd,) = after["updates"]
    assert (upd["rows_log"], upd["replaced"], upd["added"]) == ("redo.rows.jsonl", 1, 0)
    with pytest.raises(SystemExit):  # --update alone does nothing: refused
        bench.main(["--update", "--name", "redo", "--render"])
    assert "--update and --allow-dirty go with --write-reference" in capsys.readouterr().err


def test_resume_does_not_mix_budget_runs_with_matched_runs(bench, results, tiny_emt, capsys):
    fake_log(results / "results", "ref", [row("ito", 0, 0.5, iterations=3)])
    assert bench.main(["--write-reference", "--name", "ref"]) == 0
    fake_log(results / "results", "m", [row("ito", 0, 0.5, iterations=3)])  # a budget run under this name
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        bench.main(
            ["--match-iterations", "--datasets", "emt", "--presets", "ito", "--seeds", "0", "--resume"]
            + ["--tasks", "emt:loo:1", "--name", "m"]
        )
    assert exc.value.code == 2
    assert "m.rows.jsonl holds runs trained by budget; this run trains by iterations" in capsys.readouterr().err
