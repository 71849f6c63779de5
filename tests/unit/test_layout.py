"""The package's layout promises: layers by responsibility (import-linter contracts in
pyproject.toml: a module imports only from the layers below its own), every module importable
first, a small top level, every name exported from one place, implementation modules private,
and every registry filled by its decorator."""

from __future__ import annotations

import ast
import importlib
import os
import pkgutil
import subprocess
import sys

import pytest
from conftest import REPO

import mfsde

ROOT = REPO
#: the public namespaces (packages and the few public modules); everything else is ``_private``
PUBLIC = {
    "mfsde",
    "mfsde.cli",
    "mfsde.config",
    "mfsde.data",
    "mfsde.datasets",
    "mfsde.drifts",
    "mfsde.evaluation",
    "mfsde.explain",
    "mfsde.interactions",
    "mfsde.losses",
    "mfsde.model",
    "mfsde.pl",
    "mfsde.pp",
    "mfsde.registry",
    "mfsde.solvers",
    "mfsde.systems",
    "mfsde.testing",
    "mfsde.testing.strategies",
    "mfsde.tl",
    "mfsde.training",
    "mfsde.__main__",
}


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(mfsde.__path__, "mfsde."))


def test_the_layers_hold():
    importlinter = pytest.importorskip("importlinter", reason="import-linter is in the dev extra")
    from importlinter.cli import lint_imports

    assert importlinter and lint_imports(config_filename=str(ROOT / "pyproject.toml")) == 0


def test_a_module_that_imports_upwards_breaks_the_layers(tmp_path):
    pytest.importorskip("importlinter", reason="import-linter is in the dev extra")
    from importlinter.cli import lint_imports

    text = (ROOT / "pyproject.toml").read_text()
    # the same contracts, with one import that the layers forbid declared as allowed... and not ignored
    broken = text.replace('"mfsde.training._trainer -> mfsde.evaluation._evaluate",\n', "")
    cfg = tmp_path / "pyproject.toml"
    cfg.write_text(broken)
    assert lint_imports(config_filename=str(cfg)) == 1


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
        "print(f'{len(names)} modules')\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert int(lines[-1].split()[0]) > 50 and lines[:-1] == []


def test_the_top_level_is_small():
    assert len(mfsde.__all__) <= 15
    for name in mfsde.__all__:
        assert hasattr(mfsde, name), name


def test_implementation_modules_are_private():
    public = [m for m in _modules() if not any(p.startswith("_") for p in m.split(".")[1:])]
    assert sorted(set(public) - PUBLIC) == []


def test_every_name_is_exported_from_one_place():
    homes: dict[int, list[str]] = {}
    names = {}
    for mod in sorted(PUBLIC - {"mfsde.__main__"}):
        m = importlib.import_module(mod)
        for name in getattr(m, "__all__", []):
            obj = getattr(m, name)
            if isinstance(obj, (int, float, str, tuple, bool)) or obj is None:
                continue  # constants compare by value, not identity
            homes.setdefault(id(obj), []).append(f"{mod}.{name}")
            names[id(obj)] = obj
    twice = {k: v for k, v in homes.items() if len(v) > 1}
    assert twice == {}, sorted(twice.values())


@pytest.mark.parametrize(
    "package, registry",
    [
        ("interactions", "INTERACTIONS"),
        ("drifts", "INTRA_DRIFTS"),
        ("losses", "LOSSES"),
        ("solvers", "SOLVERS"),
        ("solvers", "NOISES"),
        ("config", "PRESETS"),
        ("systems", "SYSTEMS"),
        ("systems", "POPULATION_FAMILIES"),
    ],
)
def test_every_registry_is_filled_by_its_decorator(package, registry):
    """No registry is built from a table: each entry is added by ``@REGISTRY.register(...)`` (or
    ``REGISTRY.register(name, obj)``) beside its definition."""
    reg = getattr(importlib.import_module(f"mfsde.{package}"), registry)
    assert len(reg.names()) >= 2
    for path in (ROOT / "mfsde").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Registry":
                assert len(node.args) <= 1 and not node.keywords, f"{path}: a Registry built from a table"


def test_an_in_tree_kernel_is_one_new_file(tmp_path):
    """A kernel module dropped into mfsde/interactions/ (and nothing else changed) is registered
    and built by name: the package imports every module in its folder."""
    import shutil

    copy = tmp_path / "mfsde"
    shutil.copytree(ROOT / "mfsde", copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "interactions" / "_mine.py").write_text(
        "from mfsde.interactions._base import INTERACTIONS\n"
        "from mfsde.interactions._pairwise import PairwiseInteraction\n\n\n"
        '@INTERACTIONS.register("mine")\n'
        "class Mine(PairwiseInteraction):\n"
        "    def phi(self, x_i, dx):\n"
        "        return dx\n"
    )
    script = (
        "import mfsde, torch\n"
        f"assert mfsde.__file__.startswith({str(copy)!r}), mfsde.__file__\n"
        "k = mfsde.interactions.build_interaction('mine', dim=2)\n"
        "print(type(k).__name__, tuple(k(torch.randn(5, 2)).shape))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["Mine", "(5,", "2)"]
