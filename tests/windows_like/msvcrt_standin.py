"""A stand-in for Windows' msvcrt.locking: what dmtool imports as msvcrt
(tests/windows_like/sitecustomize.py).

msvcrt.locking locks `nbytes` from the descriptor's position, exclusively, for
that handle: another handle, in this process or another, cannot take it, and
cannot read or write the locked bytes either (ERROR_LOCK_VIOLATION, an
OSError). Closing the handle frees it. Here flock(2) (per open file, as a
handle) stands for the lock, and os.read and os.write refuse, as Windows
does, to touch a locked region through another descriptor. (Moving the end of
the file, os.ftruncate, is not checked against byte-range locks on Windows.)"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time

LK_UNLCK, LK_LOCK, LK_NBLCK, LK_RLCK, LK_NBRLCK = 0, 1, 2, 3, 4

_regions: dict[tuple[int, int], tuple[int, int]] = {}  # (st_dev, st_ino) -> (start, end)
_mine: set[int] = set()  # descriptors whose lock this process took


def _key(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def locking(fd: int, mode: int, nbytes: int) -> None:
    start = os.lseek(fd, 0, os.SEEK_CUR)
    if mode == LK_UNLCK:
        fcntl.flock(fd, fcntl.LOCK_UN)
        _mine.discard(fd)
        return
    for attempt in range(10 if mode in (LK_LOCK, LK_RLCK) else 1):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if attempt < 9 and mode in (LK_LOCK, LK_RLCK):
                time.sleep(1)
            continue
        _mine.add(fd)
        _regions[_key(fd)] = (start, start + nbytes)
        return
    raise OSError(errno.EDEADLK, "Resource deadlock avoided")


def _locked_by_another(fd: int, start: int, end: int) -> bool:
    """Does another descriptor hold a lock on bytes [start, end) of fd's file?"""
    if fd in _mine:
        return False
    try:
        key = _key(fd)
    except OSError:
        return False
    region = _regions.get(key, (0, 1))  # another process's lock: dmtool locks byte 0
    if not (start < region[1] and region[0] < end):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # not a file flock applies to (a pipe)
        return False
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def _violation() -> OSError:
    return PermissionError(errno.EACCES, "The process cannot access the file because another "
                                         "process has locked a portion of the file")


_read, _write = os.read, os.write


def _is_file(fd: int) -> bool:
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        return False


def read(fd: int, n: int) -> bytes:
    if _is_file(fd):
        at = os.lseek(fd, 0, os.SEEK_CUR)
        if _locked_by_another(fd, at, at + n):
            raise _violation()
    return _read(fd, n)


def write(fd: int, data: bytes) -> int:
    if _is_file(fd):
        at = os.lseek(fd, 0, os.SEEK_CUR)
        if _locked_by_another(fd, at, at + len(data)):
            raise _violation()
    return _write(fd, data)


os.read, os.write = read, write
