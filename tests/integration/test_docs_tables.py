"""The tables in the README and the docs are the benchmarks' rendered results, not typed by hand
(benchmarks/docs_tables.py fills the marked blocks; here its --check must pass)."""

from __future__ import annotations

from conftest import load_benchmark


def _tool():
    return load_benchmark("docs_tables", "docs_tables")


def test_the_docs_tables_are_the_committed_results(capsys):
    assert _tool().main(["--check"]) == 0, capsys.readouterr().out


def test_a_hand_edited_table_is_found_and_regenerated(tmp_path, monkeypatch):
    tool = _tool()
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "docs").mkdir()
    (tmp_path / "benchmarks" / "results" / "r.md").write_text(
        "# Table\n\n| a | b | c |\n|---|---|---|\n| 1 | 2 | 3 |\n"
    )
    page = tmp_path / "docs" / "p.md"
    page.write_text(
        "text\n<!-- table: r.md#table | columns 0,2 -->\n| a | c |\n|---|---|\n| 1 | 9 |\n<!-- /table -->\n"
    )
    (tmp_path / "README.md").write_text("nothing generated\n")
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    monkeypatch.setattr(tool, "RESULTS", tmp_path / "benchmarks" / "results")
    assert tool.main(["--check"]) == 1
    assert tool.main([]) == 0
    assert "| 1 | 3 |" in page.read_text() and tool.main(["--check"]) == 0
