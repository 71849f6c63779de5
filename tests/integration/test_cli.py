"""The command line: help texts, a tiny fit → evaluate → explain round trip, error exits."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import mfsde
from mfsde.cli import main, parse_value

SUBCOMMANDS = ["fit", "evaluate", "compare", "explain", "demo"]


def _write_csv(path, n=36, times=(0, 1, 2, 3), seed=0, labelled=True):
    rng = np.random.default_rng(seed)
    lines = ["samples,x1,x2" + (",cell_type" if labelled else "")]
    for t in times:
        for i in range(n):
            kind = "A" if i % 3 else "B"
            x = rng.normal(size=2) + (0.4 * t if kind == "A" else -0.3 * t)
            lines.append(f"{t},{x[0]:.5f},{x[1]:.5f}" + (f",{kind}" if labelled else ""))
    path.write_text("\n".join(lines) + "\n")
    return path


TINY = [
    "--iterations",
    "2",
    "--n-particles",
    "24",
    "--set",
    "eval.n_particles=40",
    "--set",
    "model.intra.width=16",
    "--set",
    "train.n_targets=null",
    "--seed",
    "0",
]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    csv = _write_csv(tmp / "cells.csv")
    run = tmp / "run"
    code = main(
        [
            "fit",
            "--data",
            str(csv),
            "--label-col",
            "cell_type",
            "--task",
            "interpolate:2",
            "--preset",
            "scimf",
            "--out",
            str(run),
            "--quiet",
            *TINY,
        ]
    )
    assert code == 0
    return csv, run


def test_main_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in SUBCOMMANDS:
        assert cmd in out
    assert "examples:" in out and "presets:" in out


@pytest.mark.parametrize("cmd", SUBCOMMANDS)
def test_subcommand_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: mfsde {cmd}" in out and "examples:" in out and f"mfsde {cmd}" in out.split("examples:")[1]


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "commands" in capsys.readouterr().out


def test_python_dash_m():
    proc = subprocess.run([sys.executable, "-m", "mfsde", "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("mfsde ")


def test_parse_value():
    assert parse_value("3") == 3 and parse_value("1e-3") == 1e-3 and parse_value("true") is True
    assert parse_value("[1, 2]") == [1, 2] and parse_value('{name = "rbf"}') == {"name": "rbf"}
    assert parse_value("null") is None and parse_value("rbf") == "rbf"


def test_populations_flag_is_a_config_shortcut():
    from mfsde.cli import build_config, build_parser

    args = build_parser().parse_args(["fit", "--data", "x.csv", "--replicas", "4", "--preset", "ito"])
    assert build_config(args, dim=3).train.replicas == 4
    args = build_parser().parse_args(["fit", "--data", "x.csv", "--set", "train.replicas=2"])
    assert build_config(args, dim=3).train.replicas == 2
    assert build_config(build_parser().parse_args(["fit", "--data", "x.csv"]), dim=3).train.replicas == 1


def test_fit_writes_a_run_directory(fitted, capsys):
    _, run = fitted
    for name in ("config.json", "meta.json", "history.jsonl", "checkpoint.pt", "data.json", "eval.json"):
        assert (run / name).is_file(), name
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["dim"] == 2 and cfg["train"]["iterations"] == 2 and cfg["model"]["intra"]["width"] == 16
    assert cfg["train"]["n_targets"] is None
    spec = json.loads((run / "data.json").read_text())
    assert spec["label_col"] == "cell_type" and spec["task"] == "interpolate:2"


def test_evaluate_round_trip(fitted, capsys, tmp_path):
    _, run = fitted
    out = tmp_path / "ev.json"
    assert main(["evaluate", "--run", str(run), "--n-particles", "30", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    ev = json.loads(out.read_text())
    assert [r["index"] for r in ev["per_time"]] == [2] and ev["n_particles"] == 30
    assert np.isfinite(ev["w1"]) and np.isfinite(ev["w2"]) and "| mean |" in printed
    assert main(["evaluate", "--run", str(run), "--at", "1", "3", "--out", str(out)]) == 0
    assert [r["index"] for r in json.loads(out.read_text())["per_time"]] == [1, 3]


def test_explain_round_trip(fitted, capsys):
    pytest.importorskip("matplotlib")
    _, run = fitted
    assert main(["explain", "--run", str(run), "--time-index", "0", "--n-cells", "20", "--n-particles", "30"]) == 0
    out = capsys.readouterr().out
    assert "cell-type matrix" in out and "asymmetry" in out
    folder = run / "explain"
    for name in (
        "weights_t0.npz",
        "velocities.npz",
        "summary.json",
        "weights_cells_t0.png",
        "weights_labels_t0.png",
        "weights_graph_t0.png",
        "velocities.png",
        "loss.png",
    ):
        assert (folder / name).is_file() and (folder / name).stat().st_size > 0, name
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["weights"][0]["label_names"] == ["A", "B"]


def test_compare_prints_a_table(tmp_path, capsys):
    csv = _write_csv(tmp_path / "c.csv", n=20, times=(0, 1, 2))
    out = tmp_path / "cmp"
    assert (
        main(
            [
                "compare",
                "--data",
                str(csv),
                "--label-col",
                "cell_type",
                "--task",
                "interpolate:1",
                "--presets",
                "scimf",
                "ito",
                "--seeds",
                "0",
                "--out",
                str(out),
                "--quiet",
                "--iterations",
                "1",
                "--n-particles",
                "16",
                "--set",
                "eval.n_particles=20",
                "--set",
                "model.intra.width=8",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "| task | start | preset | n_seeds | W1 | W2 |" in printed and "| interpolate:1 | t0 | ito |" in printed
    for baseline in ("previous", "mccann", "floor"):  # beside the models, on the same cells
        assert f"| interpolate:1 | t0 | {baseline} |" in printed
    for name in ("results.csv", "summary.csv", "summary.md"):
        assert (out / name).is_file()
    assert (out / "scimf-seed0" / "checkpoint.pt").is_file()


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["fit", "--data", "no/such/file.csv", "--out", "{tmp}/r"], "does not exist"),
        (["fit", "--data", "{csv}", "--preset", "nope", "--out", "{tmp}/r"], "unknown preset 'nope'"),
        (["fit", "--data", "{csv}", "--task", "sideways:3", "--out", "{tmp}/r"], "unknown task"),
        (["fit", "--data", "{csv}", "--set", "train.nope=1", "--out", "{tmp}/r"], "unknown key"),
        (["fit", "--data", "{csv}", "--set", "novalue", "--out", "{tmp}/r"], "KEY=VALUE"),
        (["fit", "--data", "{csv}", "--config", "{tmp}/missing.toml", "--out", "{tmp}/r"], "does not exist"),
        (["fit", "--data", "{csv}", "--time-col", "day", "--out", "{tmp}/r"], "day"),
        (["evaluate", "--run", "{tmp}/no_run"], "does not exist"),
        (["explain", "--run", "{tmp}"], "not a run directory"),
        (["compare", "--data", "{csv}", "--presets", "scimf", "bogus", "--out", "{tmp}/c"], "unknown preset 'bogus'"),
    ],
)
def test_errors_exit_2_with_one_line(argv, needle, tmp_path, capsys):
    csv = _write_csv(tmp_path / "e.csv", n=8, labelled=False)
    argv = [a.format(tmp=tmp_path, csv=csv) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("mfsde ") and needle in err, err
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_config_file_takes_the_data_dimension(tmp_path, capsys):
    csv = _write_csv(tmp_path / "d.csv", n=12, times=(0, 1, 2), labelled=False)
    cfg = tmp_path / "c.toml"
    cfg.write_text('preset = "ito"\n[train]\nlr = 0.002\n[model.intra]\nname = "mlp"\nwidth = 8\n')
    run = tmp_path / "r"
    assert (
        main(
            [
                "fit",
                "--data",
                str(csv),
                "--config",
                str(cfg),
                "--iterations",
                "1",
                "--n-particles",
                "8",
                "--out",
                str(run),
                "--quiet",
                "--no-eval",
            ]
        )
        == 0
    )
    saved = json.loads((run / "config.json").read_text())
    assert saved["model"]["dim"] == 2 and saved["train"]["lr"] == 0.002 and saved["model"]["inter"]["name"] == "none"
    with pytest.raises(SystemExit) as e:  # --preset and --config exclude each other (argparse: exit 2)
        main(["fit", "--data", str(csv), "--preset", "ito", "--config", str(cfg)])
    assert e.value.code == 2


def test_demo_runs_end_to_end_with_one_iteration(tmp_path, capsys):
    assert main(["demo", "--iterations", "1", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "| scimf |" in out and "| ito |" in out and "the true system, simulated and scored the same way" in out
    assert "*copy the previous time point*" in out and "*McCann interpolation" in out and "*sampling floor" in out
    assert "a reference, not a bound" in out
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["baselines"]) == {"previous", "mccann", "floor"} and "true_system" in results
    assert [r["preset"] for r in results["rows"]] == ["scimf", "ito"]
    assert all(np.isfinite(r["w1"]) and np.isfinite(r["w2"]) for r in results["rows"])
    assert (tmp_path / "scimf" / "explain" / "velocities.png").is_file()
    # the demo records its data, so its runs can be re-evaluated without --data
    assert main(["evaluate", "--run", str(tmp_path / "ito"), "--n-particles", "50"]) == 0


def test_config_file_naming_a_preset_is_built_for_the_data_dimension(tmp_path):
    from mfsde.config import Config

    path = tmp_path / "c.json"
    path.write_text('{"preset": "scimf"}')
    cfg = Config.load(path, dim=3)
    ref = mfsde.preset("scimf", dim=3)
    assert cfg.model.dim == 3 and cfg.model.inter.options == ref.model.inter.options  # 1 head, no LayerNorm


def test_allow_pickle_outside_a_single_npy_is_refused(tmp_path, capsys):
    csv = tmp_path / "d.csv"
    csv.write_text("t,x\n0,1\n1,2\n2,3\n")
    assert main(["fit", "--data", str(csv), "--time-col", "t", "--allow-pickle", "--iterations", "1"]) == 2
    assert "--allow-pickle applies to a single stacked .npy file only" in capsys.readouterr().err


def test_fit_mass_counts_fits_the_size_and_evaluate_reports_tmv(tmp_path, capsys):
    # a population that doubles: 20, 30, 40 cells at times 0, 1, 2
    rng = np.random.default_rng(0)
    lines = ["samples,x1,x2"]
    for t, n in ((0, 20), (1, 30), (2, 40)):
        lines += [f"{t},{x[0]:.5f},{x[1]:.5f}" for x in rng.normal(size=(n, 2)) + 0.3 * t]
    csv = tmp_path / "grow.csv"
    csv.write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    code = main(
        ["fit", "--data", str(csv), "--task", "loo:1", "--preset", "ito", "--mass", "counts", "--out", str(run), *TINY]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "| TMV |" in out and "mass (observed)" in out
    saved = json.loads((run / "config.json").read_text())
    assert saved["data"]["mass"] == "counts" and saved["model"]["growth"]["name"] == "mlp"
    code = main(["evaluate", "--run", str(run), "--no-baselines"])
    assert code == 0
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| model | 1 |")][0]
    assert "(1.500)" in row  # the observed mass at time 1: 30 / 20
    with pytest.raises(SystemExit) as e:
        main(["fit", "--data", str(csv), "--mass", "sizes"])
    assert e.value.code == 2
