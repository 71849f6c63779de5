"""Put the benchmarks' rendered tables into the documentation, so that no figure is typed by hand.

A docs page marks a generated block with

    <!-- table: accuracy.md#overview -->
    ...
    <!-- /table -->

and this script replaces what is between the markers with that part of
``benchmarks/results/accuracy.md``: the whole file, or, after ``#``, the section whose heading
(any level) starts with the given words, up to the next heading of the same or a higher level
(the heading itself left out); ``<!-- table: accuracy.md#overview | columns 0-6,10 -->`` keeps
those columns of its tables. ``--check`` changes nothing and exits 1, naming the blocks, when
a page differs from the committed results (the test suite runs it).

    python benchmarks/docs_tables.py            # rewrite the blocks
    python benchmarks/docs_tables.py --check    # are the docs up to date?
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
MARK = re.compile(
    r"<!-- table: (?P<src>[\w.-]+\.md)(?:#(?P<part>[^>|]+?))?(?: \| columns (?P<cols>[\d,-]+))? -->\n"
    r"(?P<body>.*?)<!-- /table -->",
    re.S,
)


def columns(body: str, spec: str | None) -> str:
    """Keep the table columns ``spec`` (0-based, e.g. ``0-6,10``) of every table row in ``body``."""
    if not spec:
        return body
    keep = []
    for part in spec.split(","):
        a, _, b = part.partition("-")
        keep += list(range(int(a), int(b) + 1)) if b else [int(a)]
    out = []
    for line in body.splitlines():
        if line.startswith("|"):
            cells = line.strip().strip("|").split("|")
            line = "|" + "|".join(cells[k] for k in keep) + "|"
        out.append(line)
    return "\n".join(out) + "\n"


def section(text: str, part: str | None, src: str) -> str:
    """The section of ``text`` whose heading starts with ``part`` (case-insensitive), or all of it."""
    if not part:
        return text.strip() + "\n"
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(#+)\s+(.*)$", line)
        if m and m.group(2).lower().startswith(part.strip().lower()):
            level, out = len(m.group(1)), []
            for nxt in lines[i + 1 :]:
                h = re.match(r"^(#+)\s", nxt)
                if h and len(h.group(1)) <= level:
                    break
                out.append(nxt)
            return "\n".join(out).strip() + "\n"
    raise KeyError(f"benchmarks/results/{src}: no heading starting with {part!r}")


def render(page: Path) -> tuple[str, list[str]]:
    """The page with every block regenerated, and the blocks that changed."""
    text, changed = page.read_text(), []

    def fill(m: re.Match) -> str:
        src = RESULTS / m.group("src")
        if not src.is_file():
            raise FileNotFoundError(
                f"{page.relative_to(ROOT)}: {m.group(0).splitlines()[0]} names a missing file {src}"
            )
        body = columns(section(src.read_text(), m.group("part"), m.group("src")), m.group("cols"))
        if body != m.group("body"):
            changed.append(
                f"{page.relative_to(ROOT)}: {m.group('src')}" + (f"#{m.group('part')}" if m.group("part") else "")
            )
        head = m.group(0).splitlines()[0]
        return f"{head}\n{body}<!-- /table -->"

    return MARK.sub(fill, text), changed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block is out of date")
    args = ap.parse_args(argv)
    stale = []
    for page in sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]:
        new, changed = render(page)
        stale += changed
        if changed and not args.check:
            page.write_text(new)
    for s in stale:
        print(("out of date: " if args.check else "rewrote: ") + s)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
