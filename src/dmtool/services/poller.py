"""One poller (issue 15 point 6): who holds the sync lock, and since when.

Only one `sync` runs at a time for the store. The holder writes who it is
(operator, host, start time, and the command: a restore or an archive import
holds the same lock) where the next one can read it: on SQLite into the lock
file itself, which the kernel unlocks if the holder dies; on PostgreSQL, whose
lock is an advisory lock the server frees when the holder's connection goes,
into a row of the store that each holder overwrites. A second `sync`
then exits 0 at once, saying who holds it (a running sync means the work is
being done; cron should not mail it), while an import or a restore that meets
the lock is still `E_BUSY`.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import TYPE_CHECKING, Any, NamedTuple

from dmtool import timeutil
from dmtool.errors import Busy

if TYPE_CHECKING:
    from pathlib import Path

    from dmtool.appstate import AppState
    from dmtool.store.sql import Locks

HOLDER_KEY = "sync_holder"  # sync_state row (PostgreSQL): the last holder of the sync lock
HOLDER_MAX = 4096  # bytes read back: a holder line is ~150; anything longer is not ours
# Where the holder starts in the lock file: after its first byte, which the
# Windows lock covers (locks.py), and which no other handle may read or write
# there, not even one of the holder's own.
HOLDER_AT = 1
_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation


class Holder(NamedTuple):
    operator: str | None
    host: str
    since: str  # RFC 3339 UTC
    command: str

    def to_dict(self) -> dict[str, Any]:
        return {"operator": self.operator, "host": self.host, "since": self.since,
                "command": self.command}

    def describe(self, show: Any) -> str:
        """'alice on host-1 since 2026-12-03 22:10' (`show` renders a time)."""
        who = self.operator or "someone"
        return f"{who} on {self.host or 'an unknown host'} since {show(self.since) or '?'}"


class SyncRunning(Busy):
    """The sync lock is held: by another sync (which `sync` skips, exit 0) or
    by an import or a restore (exit 5 for them, as before)."""

    def __init__(self, message: str, holder: Holder | None, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.holder = holder


def me(st: AppState, command: str) -> Holder:
    """This process as a holder: the acting operator, the host, now."""
    import socket

    from dmtool import actor

    if command == "sync":  # its role was checked: the operator is known already
        try:
            operator = st.operator()
        except Exception:  # noqa: BLE001 - who holds a lock is a courtesy; never fail on it
            operator = None
    else:  # a restore must not open the store it replaces to learn a name
        operator = actor.operator_name(st.environ)
    return Holder(operator, socket.gethostname(), timeutil.fmt(timeutil.now()) or "", command)


def _lock_file(locks: Locks) -> Path | None:
    """The sync lock's file (SQLite, or the FileLocks of a restore), else None."""
    from dmtool.store.db import FileLocks

    files = locks if isinstance(locks, FileLocks) else getattr(locks, "locks", None)
    if isinstance(files, FileLocks) and getattr(locks, "engine", "sqlite") == "sqlite":
        return files.path("sync")
    return None


def record(locks: Locks, holder: Holder) -> None:
    """Record the holder of the sync lock `locks` has just given us."""
    path = _lock_file(locks)
    if path is not None:
        with contextlib.suppress(OSError):  # the lock holds all the same
            fd = os.open(path, os.O_WRONLY | _BINARY)
            try:
                write_into(fd, holder)
            finally:
                os.close(fd)
        return
    store: Any = locks
    with store.tx():
        store.set_state(HOLDER_KEY, json.dumps(holder.to_dict(), ensure_ascii=False))


def recorded(locks: Locks) -> Holder | None:
    """Who holds the sync lock, as its holder recorded it (None: not known)."""
    path = _lock_file(locks)
    if path is not None:
        return read_from(path)
    store: Any = locks
    try:
        return parse(store.get_state(HOLDER_KEY))
    except Exception:  # noqa: BLE001 - who holds it is a courtesy; the skip stands
        return None


def write_into(fd: int, holder: Holder) -> None:
    """Record the holder in the lock file we hold (replacing the last one's),
    from HOLDER_AT on. Seek and write, not os.pwrite: Windows has none."""
    data = json.dumps(holder.to_dict(), ensure_ascii=False).encode("utf-8")
    with contextlib.suppress(OSError):  # a full disk: the lock holds all the same
        os.lseek(fd, HOLDER_AT, os.SEEK_SET)
        while data:
            data = data[os.write(fd, data):]
        os.ftruncate(fd, os.lseek(fd, 0, os.SEEK_CUR))  # the end of a longer last one


def read_from(path: Path) -> Holder | None:
    """The holder recorded in a lock file, or None (not written yet, being
    written, not ours, or not readable: Windows refuses a read that meets a
    locked byte, which is why it starts after the first)."""
    try:
        fd = os.open(path, os.O_RDONLY | _BINARY)
    except OSError:
        return None
    try:
        os.lseek(fd, HOLDER_AT, os.SEEK_SET)
        raw = os.read(fd, HOLDER_MAX)
    except OSError:
        return None
    finally:
        os.close(fd)
    return parse(raw)


def parse(raw: bytes | str | None) -> Holder | None:
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    text = {k: data.get(k) if isinstance(data.get(k), str) else None
            for k in ("operator", "host", "since", "command")}
    return Holder(text["operator"], text["host"] or "", text["since"] or "",
                  text["command"] or "sync")
