"""File locks that the operating system frees when the holder dies.

One module for every lock file dmtool takes (the SQLite store's send and
sync locks, the sandbox world, the credentials refresh), so that no other
module imports `fcntl`: on Windows dmtool must at least import and run
`demo`. POSIX uses flock(2); where there is no fcntl (Windows) the file's
first byte is locked with msvcrt, which also keeps other handles from reading
or writing that byte (services/poller.py writes the sync lock's holder after
it). Both are tied to the open file, so a crashed process holds nothing.

It sits below store/ and x/ and imports nothing of dmtool's.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

POLL_S = 0.05


class LockTimeout(Exception):
    """Another process holds the lock and did not let go in time."""


@functools.cache  # looked up once: a waiting lock asks every POLL_S
def _fcntl() -> ModuleType | None:
    """fcntl, or None where there is none (Windows: msvcrt locks instead)."""
    try:
        import fcntl
    except ImportError:
        return None
    return fcntl


def _try_lock(fd: int, shared: bool) -> bool:
    """One attempt, never blocking. True when the lock is ours."""
    fcntl = _fcntl()
    if fcntl is None:  # Windows (tests/windows_like stands in for it)
        import msvcrt

        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]  # exclusive only
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _block(fd: int, shared: bool) -> None:
    fcntl = _fcntl()
    if fcntl is None:
        while not _try_lock(fd, shared):
            time.sleep(POLL_S)
        return
    fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)


@contextlib.contextmanager
def file_lock(path: Path, *, shared: bool = False, timeout: float | None = None) -> Iterator[None]:
    """Hold a lock on `path` (created 0600 if missing) for the block.

    timeout None waits as long as it takes; 0 tries once; otherwise polls
    until the deadline. Raises LockTimeout when it cannot have it, OSError when
    the file cannot be opened. A shared lock needs no write access: where the
    file cannot be opened for writing (a reader in a folder not its own), an
    existing one is opened read-only."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        if not shared or e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        fd = os.open(path, os.O_RDONLY)
    try:
        if timeout is None:
            _block(fd, shared)
        else:
            deadline = time.monotonic() + timeout
            while not _try_lock(fd, shared):
                if time.monotonic() >= deadline:
                    raise LockTimeout(str(path))
                time.sleep(POLL_S)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
