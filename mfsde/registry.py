"""Name → class registries for interchangeable components.

Every family of components (interactions, intra-particle drifts, solvers, losses) keeps one
:class:`Registry`. Users add their own parts with ``@REGISTRY.register("name")`` and build
them by name from a plain config with :meth:`Registry.build`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any


class Registry:
    """A named table of components.

    >>> INTERACTIONS.register("mine")(MyKernel)       # or as a decorator
    >>> INTERACTIONS.build("mine", dim=3, width=8)

    ``entries`` registers a first table at construction: ``Registry("solver", {"em": EulerMaruyama})``.
    """

    def __init__(self, kind: str, entries: dict[str, Callable[..., Any]] | None = None):
        self.kind = kind
        self._table: dict[str, Callable[..., Any]] = {}
        for name, obj in (entries or {}).items():
            self.register(name, obj)

    def register(self, name: str, obj: Callable[..., Any] | None = None, *, overwrite: bool = False):
        """Register ``obj`` under ``name``; usable as ``@registry.register("name")``."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"{self.kind} name must be a non-empty string, got {name!r}")

        def _add(o: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._table and not overwrite and self._table[name] is not o:
                raise KeyError(
                    f"{self.kind} {name!r} is already registered ({self._table[name]!r}); "
                    "pass overwrite=True to replace it"
                )
            self._table[name] = o
            return o

        return _add(obj) if obj is not None else _add

    def get(self, name: str) -> Callable[..., Any]:
        if name not in self._table:
            raise KeyError(f"unknown {self.kind} {name!r}; available: {', '.join(sorted(self._table))}")
        return self._table[name]

    def build(self, name: str, /, **options: Any) -> Any:
        """Instantiate component ``name`` with keyword ``options``; unknown options raise."""
        cls = self.get(name)
        check_options(cls, options, f"{self.kind} {name!r}")
        return cls(**options)

    def names(self) -> list[str]:
        return sorted(self._table)

    def __contains__(self, name: object) -> bool:
        return name in self._table

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"


def check_options(fn: Callable[..., Any], options: dict, what: str) -> None:
    """Raise a clear ``TypeError`` when ``options`` holds keywords ``fn`` does not accept."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without signature
        return
    params = sig.parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    bad = sorted(set(options) - set(accepted))
    if bad:
        raise TypeError(f"{what} got unknown option(s) {bad}; accepted: {accepted}")
