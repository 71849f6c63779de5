"""One writer per run directory: an exclusive lock on ``<run>/.lock``.

The lock is an OS advisory lock (``fcntl.flock``) on the file, which also records who holds it
(pid, host, start time, command line). The operating system releases it when its process ends,
however it ends (``kill -9`` included), so a run that was killed can be resumed; a lock *file* left
behind by a process that ended without removing it is detected (its flock is free) and reported
with a warning naming that process before it is taken over. A second writer while the holder is
alive gets :class:`RunLocked`, one line naming the holder. Within one process the lock is
re-entrant (``mfsde fit`` locks and then calls :func:`mfsde.fit`, which locks again).

Advisory locks are reliable on local file systems; on network file systems two hosts may not see
each other's locks (the host is recorded so that a message can say which one holds a run).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
import sys
import warnings
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX: the lock records its holder but cannot enforce
    fcntl = None

LOCK_FILE = ".lock"
_HELD: dict[str, list] = {}  # lock path → [open file, depth] held by this process


class RunLocked(RuntimeError):
    """Another live process holds the run directory's lock (one line, naming it)."""


def _holder(text: str) -> dict:
    try:
        info = json.loads(text)
        return info if isinstance(info, dict) else {}
    except json.JSONDecodeError:
        return {}


def _describe(info: dict) -> str:
    if not info:
        return "another process"
    return f"pid {info.get('pid')} on host {info.get('host')} since {info.get('since')}" + (
        f" ({info['command']})" if info.get("command") else ""
    )


class RunLock:
    """``with RunLock(run_dir): ...`` holds the run directory's write lock (module docstring)."""

    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / LOCK_FILE

    def acquire(self) -> RunLock:
        key = str(self.path.resolve())
        if key in _HELD:
            _HELD[key][1] += 1
            return self
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise NotADirectoryError(f"run directory {str(self.path.parent)!r} is a file, not a folder") from None
        while True:
            fh = open(self.path, "a+")
            if fcntl is not None:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    fh.seek(0)
                    info = _holder(fh.read())
                    fh.close()
                    raise RunLocked(
                        f"run directory {str(self.path.parent)!r} is in use by {_describe(info)}; "
                        f"one writer per run: wait for it, or use another --out"
                    ) from None
            try:  # the file may have been removed and re-created between open and flock: lock that one
                same = os.fstat(fh.fileno()).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            fh.close()
        fh.seek(0)
        left = _holder(fh.read())
        if left and left.get("pid") != os.getpid():
            warnings.warn(
                f"{self.path}: taking over the lock left by {_describe(left)}, which ended without releasing it",
                RuntimeWarning,
                stacklevel=2,
            )
        fh.seek(0)
        fh.truncate()
        fh.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                    "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv)),
                }
            )
        )
        fh.flush()
        _HELD[key] = [fh, 1]
        return self

    def release(self) -> None:
        key = str(self.path.resolve())
        held = _HELD.get(key)
        if held is None:
            return
        held[1] -= 1
        if held[1] > 0:
            return
        del _HELD[key]
        fh = held[0]
        try:
            self.path.unlink(missing_ok=True)  # while still locked: nobody can take the old file meanwhile
        finally:
            fh.close()  # releases the flock

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
