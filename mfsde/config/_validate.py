"""Helpers of :mod:`mfsde.config`: TOML reading, type and key checks of config tables, merging."""

from __future__ import annotations

import copy
from dataclasses import fields


def toml_loads(text: str) -> dict:
    """``tomllib.loads`` (Python ≥ 3.11) or ``tomli.loads`` (3.10, installed as a dependency there)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads(text)


_TYPE_NAMES = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "None": "unset (null)",
    "list[float]": "a list of numbers",
    "bool": "true/false",
}


def _matches(value, kind: str) -> bool:
    if kind == "None":
        return value is None
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "list[float]":
        return isinstance(value, (list, tuple)) and all(_matches(v, "float") for v in value)
    return True  # components and other structured fields are checked where they are built


def _check_types(obj, prefix: str, only: tuple[str, ...] | None = None) -> None:
    """Each field of a config dataclass against its annotation (e.g. ``float | None``), so that
    ``--set train.lr=fast`` says which key expects what instead of failing later in arithmetic."""
    for f in fields(obj):
        if only is not None and f.name not in only:
            continue
        kinds = [k.strip() for k in str(f.type).split("|")]
        value = getattr(obj, f.name)
        if not any(_matches(value, k) for k in kinds):
            want = " or ".join(_TYPE_NAMES.get(k, k) for k in kinds)
            raise TypeError(f"config key {prefix}{f.name} expects {want}, got {value!r}")


def _check_keys(data: dict, cls, where: str) -> None:
    if not isinstance(data, dict):
        raise TypeError(f"{where} must be a table/dict, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    bad = sorted(set(data) - known)
    if bad:
        raise KeyError(f"{where} has unknown key(s) {bad}; known: {sorted(known)}")


def _none_paths(d: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        if v is None:
            out.append(prefix + k)
        elif isinstance(v, dict):
            out += _none_paths(v, f"{prefix}{k}.")
    return out


def _drop_none(d):
    if isinstance(d, dict):
        return {k: _drop_none(v) for k, v in d.items() if v is not None}
    return d


def merge(base: dict, update: dict) -> dict:
    """Recursive dict merge (``update`` wins); component tables are replaced when renamed."""
    out = copy.deepcopy(base)
    for k, v in update.items():
        if (
            isinstance(v, dict)
            and isinstance(out.get(k), dict)
            and v.get("name", out[k].get("name")) == out[k].get("name")
        ):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out
