"""Durable file writes: a file is either its old or its complete new version, even after a crash."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | Path, write: Callable[[Any], None], what: str = "the file") -> Path:
    """Write ``path`` so that it is either the old file or the complete new one, even after a
    crash or ``kill -9``: ``write(fh)`` fills a temporary file beside it, which is flushed,
    fsynced and renamed over ``path`` (the previous version stays until the rename); the folder
    is fsynced so the rename itself is durable. An ``OSError`` names ``path`` (or the temporary
    file it failed to create); so does a writer's own exception that wraps one (torch's zip
    writer raises a ``RuntimeError`` around the ``OSError`` of a refused write): "could not write
    {what} (reason)"."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if e.filename is None:  # a failed write or flush names no file: name the one being written
            raise OSError(e.errno, e.strerror or str(e), str(path)) from e
        raise
    except Exception as e:
        cause = e.__cause__ or e.__context__
        if isinstance(cause, OSError):
            raise OSError(cause.errno, f"could not write {what} ({cause.strerror or cause})", str(path)) from e
        raise
    finally:
        if tmp.exists():
            tmp.unlink()
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:  # e.g. platforms without directory handles
        return path
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """:func:`atomic_write` of a UTF-8 text."""
    return atomic_write(path, lambda fh: fh.write(text.encode()))
