"""Opening the store: WAL, busy timeout, foreign keys, migrations, private files.

SQLite is the default (one file per profile); a PostgreSQL URL opens the same
store API on store/pg.py, which is imported only then.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dmtool.errors import Busy, ConfigError, DmtoolError
from dmtool.locks import file_lock
from dmtool.store.migrations import MIGRATIONS, sqlite_text
from dmtool.store.sql import Conn
from dmtool.store.url import StoreLocation

BUSY_TIMEOUT_MS = 15_000
LOCK_NAMES = ("send", "sync", "digest")


def state_value(conn: Conn, key: str) -> str | None:
    """One value from sync_state (cursors, checkpoints, the rate-limit pause)."""
    row = conn.execute("SELECT value FROM sync_state WHERE key = ?", (key,)).fetchone()
    return None if row is None else row[0]


class SqliteConnection(sqlite3.Connection):
    """sqlite3's connection, saying which engine it is."""

    engine = "sqlite"


class Store:
    """One profile's store. Use `tx()` around every multi-row change.

    This class is the SQLite store; store/pg.py's PgStore gives the same
    methods their PostgreSQL meaning. Locks (`lock`) are named: "send" (one
    send at a time, held from `sending` to the recorded outcome), "sync" and
    "digest"; each is freed when its holder dies."""

    engine = "sqlite"

    def __init__(self, conn: Any, path: Path, *, lock_dir: Path | None = None,
                 location: StoreLocation | None = None) -> None:
        self.conn: Conn = conn
        self.path = path
        self.location = location or StoreLocation("sqlite", path=path)
        self.lock_dir = lock_dir or path.parent
        self._held: set[str] = set()

    @contextlib.contextmanager
    def tx(self) -> Iterator[Conn]:
        """An IMMEDIATE transaction: takes the write lock up front, so two
        writers queue on busy_timeout instead of failing on lock upgrade."""
        if self.conn.in_transaction:  # nested: join the outer transaction
            yield self.conn
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    @contextlib.contextmanager
    def lock(self, name: str, timeout: float | None = None) -> Iterator[None]:
        """Hold one of the store's named locks (a file beside the store: the
        kernel frees it when the process dies). Raises locks.LockTimeout."""
        self.lock_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with file_lock(self.lock_dir / f"{name}.lock", timeout=timeout):
            self._held.add(name)
            try:
                yield
            finally:
                self._held.discard(name)

    def lock_held(self, name: str) -> bool:
        """Whether this store still holds the lock (a file lock cannot be lost)."""
        return name in self._held

    def execute(self, sql: str, params: tuple | dict = ()) -> Any:  # type: ignore[type-arg]
        return self.conn.execute(sql, params)

    def get_state(self, key: str) -> str | None:
        return state_value(self.conn, key)

    def set_state(self, key: str, value: str | None) -> None:
        self.conn.execute(
            "INSERT INTO sync_state (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Conn]:
        """A read transaction: every read inside sees the same moment."""
        self.conn.execute("BEGIN")
        try:
            yield self.conn
        finally:
            self.conn.execute("COMMIT")

    # Bulk copies (store/copy.py): inside tx(), between bulk_begin and bulk_end.
    def bulk_begin(self, tables: list[str]) -> None:
        pass

    def bulk_insert(self, table: str, cols: list[str], rows: list[tuple[Any, ...]]) -> None:
        self.conn.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES "
                              f"({', '.join('?' * len(cols))})", rows)

    def bulk_end(self, tables: list[str]) -> None:
        pass

    def problems(self) -> list[str]:
        """Everything `db check` reports."""
        return problems_of(self.conn)  # type: ignore[arg-type]

    def backup(self, dest: Path) -> None:
        """A consistent copy of the store in `dest` (safe while others write)."""
        old = os.umask(0o077)
        try:
            target = sqlite3.connect(dest)
            with target:
                self.conn.backup(target)  # type: ignore[attr-defined]
            target.close()
        except sqlite3.Error as e:
            raise DmtoolError(f"backup failed: {e}") from None
        finally:
            os.umask(old)

    def close(self) -> None:
        self.conn.close()


def _private(path: Path) -> None:
    """Owner-only files: the store holds private conversations."""
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(p, 0o600)


def migrate(conn: sqlite3.Connection, target: int | None = None) -> int:
    """Apply pending migrations, each in its own transaction. Safe when two
    processes open a new store at once: the version is re-read under the lock."""
    target = len(MIGRATIONS) if target is None else target
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > len(MIGRATIONS):
                raise ConfigError(
                    f"the store was written by a newer dmtool (schema {version})",
                    hint="upgrade dmtool",
                )
            if version >= target:
                conn.execute("COMMIT")
                return version
            for stmt in split_statements(sqlite_text(MIGRATIONS[version])):
                conn.execute(stmt)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def missing_schema(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """Tables and indexes the migrations create that this store lacks."""
    fresh = sqlite3.connect(":memory:", isolation_level=None)
    try:
        migrate(fresh)
        want = set(fresh.execute("SELECT type, name FROM sqlite_master WHERE type IN "
                                 "('table', 'index') AND name NOT LIKE 'sqlite_%'"))
    finally:
        fresh.close()
    have = {(r[0], r[1]) for r in conn.execute("SELECT type, name FROM sqlite_master")}
    return sorted(want - have)


def problems_of(conn: sqlite3.Connection) -> list[str]:
    """Everything `db check` reports: integrity, foreign keys, missing schema."""
    problems = [r[0] for r in conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
    problems += [f"foreign key: {tuple(r)}" for r in conn.execute("PRAGMA foreign_key_check")]
    problems += [f"missing {kind}: {name}" for kind, name in missing_schema(conn)]
    return problems


def split_statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit implicitly)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


_statements = split_statements  # the name earlier code used


def store_error(e: BaseException) -> DmtoolError | None:
    """A SQLite error that escaped a command, as the error a person can act on."""
    if isinstance(e, sqlite3.OperationalError):
        if "locked" in str(e):
            return Busy("the store is busy in another dmtool process", hint="try again in a moment")
        return DmtoolError(f"store error: {e}", hint="run `dmtool db check`")
    return None


def open_store(where: Path | str | StoreLocation, *, migrate_to: int | None = None,
               lock_dir: Path | None = None, readonly: bool = False) -> Store:
    """Open (and bring up to date) the store at a path, a URL or a location."""
    if isinstance(where, str):
        from dmtool.store.url import parse

        where = parse(where)
    if isinstance(where, StoreLocation):
        if where.is_postgres:
            from dmtool.store.pg import open_pg_store

            return open_pg_store(where, migrate_to=migrate_to, readonly=readonly)
        assert where.path is not None
        where = where.path
    path = where
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    old_umask = os.umask(0o077)
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False, factory=SqliteConnection)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        migrate(conn, migrate_to)
    except sqlite3.DatabaseError as e:
        raise DmtoolError(f"cannot open the store {path}: {e}",
                          hint="the file may be damaged: restore a copy made with `dmtool db backup`, "
                               "or move it aside to start a new store") from None
    finally:
        os.umask(old_umask)
    _private(path)
    return Store(conn, path, lock_dir=lock_dir)
