"""Every Python code block in README.md and docs/*.md runs as written.

The blocks of one page run in order in one fresh interpreter (a page reads like a notebook: later
blocks may use names from earlier ones), in a temporary working directory, with
``MFSDE_DATA_DIR`` pointing at ``../shared/data`` when it is there. A block that cannot run here
says so in the page itself: an HTML comment ``<!-- not run: reason -->`` on the line before its
fence (e.g. a multi-GPU launch); the reason is reported as the skip's. A page whose blocks need
``../shared/data`` is skipped with that reason when the folder is absent.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import REPO

ROOT = REPO
SHARED = ROOT.parent / "shared" / "data"
PAGES = [p for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))] if "```python" in p.read_text()]
FENCE = re.compile(r"^```(\w*)\s*$")
NOT_RUN = re.compile(r"<!--\s*not run:\s*(.+?)\s*-->")


def python_blocks(text: str) -> tuple[list[tuple[int, str]], list[str]]:
    """``([(first line, code)], [skip reasons])`` of the page's ``python`` blocks."""
    lines = text.splitlines()
    blocks, skipped, i = [], [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        lang, start = m.group(1), i + 1
        j = start
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        if lang == "python":
            before = lines[i - 1] if i > 0 else ""
            reason = NOT_RUN.search(before)
            if reason:
                skipped.append(f"line {start}: {reason.group(1)}")
            else:
                blocks.append((start, "\n".join(lines[start:j])))
        i = j + 1
    return blocks, skipped


def test_the_block_finder_reads_fences_and_skip_marks():
    text = "x\n```python\na = 1\n```\n<!-- not run: needs 8 GPUs -->\n```python\nb = 2\n```\n```bash\nls\n```\n"
    blocks, skipped = python_blocks(text)
    assert blocks == [(2, "a = 1")] and skipped == ["line 6: needs 8 GPUs"]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_python_block_runs(page, tmp_path):
    text = page.read_text()
    blocks, skipped = python_blocks(text)
    if not blocks:
        pytest.skip(f"{page.name}: no Python blocks to run" + (f" ({'; '.join(skipped)})" if skipped else ""))
    if (
        ("shared/data" in text or "MFSDE_DATA_DIR" in text or "mfsde.datasets." in text)
        and not SHARED.is_dir()
        and any("datasets." in code or "shared/data" in code for _, code in blocks)
    ):
        pytest.skip(f"{page.name}: its blocks read the published data sets and {SHARED} is absent")
    script = []
    for start, code in blocks:  # each block tagged, so a failure names its line in the page
        script.append(f"print('--- block at line {start}', flush=True)\n{code}\n")
    (tmp_path / "page.py").write_text("\n".join(script))
    env = {**os.environ, "MPLBACKEND": "Agg", "MFSDE_CACHE_DIR": str(tmp_path / "cache")}
    if SHARED.is_dir():
        env["MFSDE_DATA_DIR"] = str(SHARED)
    proc = subprocess.run(
        [sys.executable, "page.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    last = [ln for ln in proc.stdout.splitlines() if ln.startswith("--- block at line")]
    assert proc.returncode == 0, (
        f"{page.relative_to(ROOT)}: the block at {last[-1][len('--- block at ') :] if last else '?'} failed:\n"
        f"{proc.stderr[-3000:]}"
    )


LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize(
    "page", [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))], ids=lambda p: str(p.relative_to(ROOT))
)
def test_every_relative_link_resolves(page):
    """The site build (mkdocs) cannot see files outside docs/: links to the README, benchmarks and
    examples are checked here."""
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        if not path.exists():
            broken.append(target)
    assert broken == []
