"""The package's layout promises: no import cycle between its modules (function-level imports
included, and the packages a submodule import runs) and every module importable first. Modules are
as long as their one job needs: there is no line-count rule."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "mfsde"


def _modules() -> dict[str, tuple[Path, list[str]]]:
    mods = {}
    for p in ROOT.rglob("*.py"):
        parts = list(p.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
            pkg = parts
        else:
            pkg = parts[:-1]
        mods[".".join(parts)] = (p, pkg)
    return mods


def import_graph() -> dict[str, set[str]]:
    """Module → the package modules it imports anywhere in its body (relative imports resolved)."""
    mods = _modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, (p, pkg) in mods.items():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
                target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
                names = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            # importing a.b.c runs the packages a and a.b first: their __init__ files are imported too
            names = {".".join(n.split(".")[:k]) for n in names for k in range(1, n.count(".") + 2)}
            edges[m] |= {n for n in names if n in mods and n != m and not m.startswith(n + ".")}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_every_module_can_be_imported_first():
    """In a fresh interpreter each module of the package is imported on its own (the package's
    modules removed from sys.modules in between), as a spawned worker or a user's first line does."""
    script = (
        "import importlib, pkgutil, sys\n"
        "import mfsde\n"
        "names = sorted(m.name for m in pkgutil.walk_packages(mfsde.__path__, 'mfsde.'))\n"
        "for n in names:\n"
        "    for k in [k for k in sys.modules if k == 'mfsde' or k.startswith('mfsde.')]:\n"
        "        del sys.modules[k]\n"
        "    try:\n"
        "        importlib.import_module(n)\n"
        "    except Exception as e:\n"
        "        print(f'{n}: {type(e).__name__}: {e}')\n"
        "print(f'{len(names)} modules')\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert int(lines[-1].split()[0]) > 50 and lines[:-1] == []


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]

