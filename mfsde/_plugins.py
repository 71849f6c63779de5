"""Components from outside the package: plugin modules and the ``mfsde.plugins`` entry points.

A plugin is any module that registers components when imported, e.g. a kernel with
``@INTERACTIONS.register("alignment")`` (see :mod:`mfsde.interactions`). The CLI imports
``--plugin MODULE`` (a dotted module name or a ``.py`` file; repeatable) and every entry point
of the group ``mfsde.plugins`` of the installed packages before it reads a config, so plugin
names work by name in ``--set model.inter.name=…`` and config files:

.. code-block:: toml

    # pyproject.toml of a package that ships kernels
    [project.entry-points."mfsde.plugins"]
    my_kernels = "my_package.kernels"
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

ENTRY_POINT_GROUP = "mfsde.plugins"


def _import(spec: str):
    path = Path(spec)
    if spec.endswith(".py"):
        if not path.is_file():
            raise ImportError(f"plugin file {spec!r} does not exist")
        name = f"mfsde_plugin_{path.stem}"
        mod_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[name] = module
        mod_spec.loader.exec_module(module)
        return module
    return importlib.import_module(spec)


def load_plugins(modules: Sequence[str] = (), entry_points: bool = True) -> list[str]:
    """Import the entry points of :data:`ENTRY_POINT_GROUP` (if ``entry_points``) and ``modules``
    (dotted names or ``.py`` paths); returns what was loaded. A module that cannot be imported
    raises ``ImportError`` naming it."""
    loaded = []
    if entry_points:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                ep.load()
            except Exception as e:
                raise ImportError(
                    f"entry point {ep.name!r} ({ep.value}) of group {ENTRY_POINT_GROUP!r} failed to "
                    f"load: {type(e).__name__}: {e}"
                ) from e
            loaded.append(ep.value)
    for m in modules:
        try:
            _import(m)
        except ImportError:
            raise
        except Exception as e:
            raise ImportError(f"plugin {m!r} failed to import: {type(e).__name__}: {e}") from e
        loaded.append(m)
    return loaded
