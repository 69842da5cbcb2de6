"""SQLite's failures as dmtool's errors, so nothing above store/ sees sqlite3's.

A damaged file is StoreDamaged, a full disk DiskFull, a refused write
StoreReadOnly, a lock held too long StoreBusy (errors.py). The decision reads
SQLite's result code, never the message. A full disk does not always say
SQLITE_FULL: a WAL or shared-memory file that cannot grow says SQLITE_IOERR
("disk I/O error"), so an I/O error is a full disk when the store's filesystem
has (almost) no space or inodes left (statvfs).

`Connection` and `Cursor` translate every error of the calls store code makes
(execute, fetch, iterate), at the cost of one Python call per statement and
none per row.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from dmtool.errors import DiskFull, DmtoolError, StoreBusy, StoreDamaged, StoreError, StoreReadOnly

# Below this much free space, an I/O error while writing is the disk being full:
# SQLite writes a page (4 KiB) at a time, and a transaction at most a few MiB.
LOW_SPACE = 8 << 20

DAMAGE_HINT = ("store damaged: restore a backup with `dmtool db restore FILE` "
               "(`dmtool db check` lists the problems)")


def disk_full(folder: Path) -> bool:
    """Is the filesystem holding `folder` (nearly) out of space or inodes?"""
    if not hasattr(os, "statvfs"):  # Windows: free bytes only, no inode count
        import shutil

        try:
            return shutil.disk_usage(folder).free < LOW_SPACE
        except OSError:
            return False
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    no_inodes = st.f_files > 0 and st.f_favail == 0
    return st.f_bavail * st.f_frsize < LOW_SPACE or no_inodes


def translate(e: sqlite3.Error, path: Path,
              conn: sqlite3.Connection | None = None) -> DmtoolError | None:
    """dmtool's error for an SQLite error on the store at `path`; None for
    anything else (a bug in dmtool's SQL, which the CLI reports as internal).
    With `conn`, a plain SQL error on a store that lacks part of its schema (a
    table dropped by hand) is damage too."""
    code = getattr(e, "sqlite_errorcode", None)
    if not isinstance(code, int):
        return None
    primary = code & 0xFF
    if primary == sqlite3.SQLITE_ERROR and conn is not None:
        missing = _missing_schema(conn)
        if missing:
            kind, name = missing[0]
            return StoreDamaged(f"the store {path} is damaged: it has no {kind} {name} ({e})",
                                hint=DAMAGE_HINT)
        return None
    if primary == sqlite3.SQLITE_FULL or (primary == sqlite3.SQLITE_IOERR and disk_full(path.parent)):
        return DiskFull(f"disk full: cannot write to the store {path}",
                        hint="free some space, then run the command again")
    if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return StoreDamaged(f"the store {path} is damaged ({e})", hint=DAMAGE_HINT)
    if primary in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM):
        return StoreReadOnly(f"cannot write to the store {path}: it is read-only here",
                             hint="check that the folder is yours and not on a read-only disk; "
                                  "commands that only read still work")
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StoreBusy("the store is busy in another dmtool process", hint="try again in a moment")
    if primary == sqlite3.SQLITE_CANTOPEN:
        if os.access(path, os.F_OK) and not os.access(path, os.R_OK):
            return StoreError(f"cannot read {path}: permission denied",
                              hint="check that the file is yours")
        folder = path.parent
        if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
            return StoreReadOnly(f"cannot write to {folder}",
                                 hint="check that the folder is yours and not on a read-only disk")
        return StoreError(f"cannot open the store {path}: {e}")
    if primary == sqlite3.SQLITE_IOERR:
        return StoreError(f"disk I/O error on the store {path}",
                          hint="check the disk; `dmtool db check` tells whether the store is damaged")
    return None


_looking: set[int] = set()  # connections whose schema is being looked at (no recursion)


def _missing_schema(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    from dmtool.store.db import missing_schema  # db.py builds on this module

    if id(conn) in _looking:
        return []
    _looking.add(id(conn))
    try:
        return missing_schema(conn)
    except (sqlite3.Error, DmtoolError):
        return []
    finally:
        _looking.discard(id(conn))


@contextlib.contextmanager
def translated(path: Path) -> Iterator[None]:
    """Raise dmtool's error in place of an SQLite error met inside."""
    try:
        yield
    except sqlite3.Error as e:
        err = translate(e, path)
        if err is None:
            raise
        raise err from e


class Cursor(sqlite3.Cursor):
    """A cursor whose errors are dmtool's (see the module's docstring)."""

    def _fail(self, e: sqlite3.Error) -> NoReturn:
        err = translate(e, getattr(self.connection, "dmtool_path", Path("store")), self.connection)
        if err is None:
            raise e
        raise err from e

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.Error as e:
            self._fail(e)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Cursor:
        try:
            return super().executemany(sql, seq_of_parameters)
        except sqlite3.Error as e:
            self._fail(e)

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.Error as e:
            self._fail(e)

    def fetchmany(self, size: int | None = 1) -> list[Any]:
        try:
            return super().fetchmany(size if size is not None else self.arraysize)
        except sqlite3.Error as e:
            self._fail(e)

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.Error as e:
            self._fail(e)

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except sqlite3.Error as e:
            self._fail(e)

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        # Rows in slices through fetchmany: a translated error, and no Python call per row.
        while True:
            rows = self.fetchmany(256)
            if not rows:
                return
            yield from rows


class Connection(sqlite3.Connection):
    """The store's connection: its cursors translate errors. `dmtool_path`
    names the store in the messages."""

    engine = "sqlite"  # which engine answers (store/sql.py's Conn; PostgreSQL: store/pg.py)
    dmtool_path: Path = Path("store")

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor:
        return self.cursor(Cursor).execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> Cursor:
        return self.cursor(Cursor).executemany(sql, parameters)
