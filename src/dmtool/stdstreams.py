"""Closed standard streams, made harmless at start-up.

Started with descriptor 0, 1 or 2 closed (`dmtool ... >&-`, `<&-`, `2>&-`,
some daemons), the process would hand that number to the next file it opens:
the store or a lock file could become "stdout", and a result written there
would land in the database. Python also leaves `sys.stdout` (etc.) as None,
which breaks every write. So, before any file is opened, each closed standard
descriptor is reopened on /dev/null: the command then behaves exactly as when
that stream is piped to /dev/null (a closed stderr loses only the messages).
"""

from __future__ import annotations

import io
import os
import sys

_NAMES = ("stdin", "stdout", "stderr")


def _closed(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


def reopen_closed_std_streams() -> None:
    """Reopen each closed descriptor 0-2 on /dev/null, and give Python a
    stream object for it where it has none. Cheap when nothing is closed."""
    for fd, name in enumerate(_NAMES):
        if _closed(fd):
            null = os.open(os.devnull, os.O_RDONLY if fd == 0 else os.O_WRONLY)
            if null != fd:  # the lowest free number, so fd itself unless lower ones are taken
                os.dup2(null, fd)
                os.close(null)
        if getattr(sys, name) is None:
            raw = io.FileIO(fd, "r" if fd == 0 else "w", closefd=False)
            stream: io.TextIOWrapper = io.TextIOWrapper(
                io.BufferedReader(raw) if fd == 0 else io.BufferedWriter(raw),
                encoding="utf-8", errors="surrogateescape" if fd < 2 else "backslashreplace",
                line_buffering=fd == 2)
            setattr(sys, name, stream)
            setattr(sys, f"__{name}__", stream)
