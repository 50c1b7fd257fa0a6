"""One writer at a time: an exclusive lock on a file, held while a run writes, released when the
process ends however it ends (an operating-system lock — flock on POSIX, msvcrt.locking on
Windows — through filelock)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout


class Busy(RuntimeError):
    """Another process holds the lock."""


@contextmanager
def exclusive(path: Path, busy_message: str, busy: type[Busy] = Busy):
    """Hold an exclusive lock on `path` (created if needed) without waiting; `busy(busy_message)` if taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise busy(busy_message) from None
    try:
        yield
    finally:
        lock.release()
