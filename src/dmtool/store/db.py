"""Opening the store: WAL, busy timeout, foreign keys, migrations, private files."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from dmtool.errors import ConfigError, DmtoolError
from dmtool.store.migrations import MIGRATIONS, SEARCH_INDEX

BUSY_TIMEOUT_MS = 15_000


def state_value(conn: sqlite3.Connection, key: str) -> str | None:
    """One value from sync_state (cursors, checkpoints, the rate-limit pause)."""
    row = conn.execute("SELECT value FROM sync_state WHERE key = ?", (key,)).fetchone()
    return None if row is None else row[0]


class Store:
    """One profile's SQLite database. Use `tx()` around every multi-row change."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
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

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:  # type: ignore[type-arg]
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

    def close(self) -> None:
        self.conn.close()


def _private(path: Path) -> None:
    """Owner-only files: the store holds private conversations."""
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(p, 0o600)


def migrate(conn: sqlite3.Connection, target: int | None = None,
            progress: Callable[[str], None] | None = None) -> int:
    """Apply pending migrations, each in its own transaction. Safe when two
    processes open a new store at once: the version is re-read under the lock.
    `progress` hears about a migration that takes a while (see _Upgrade)."""
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
            script = MIGRATIONS[version]
            what = "upgrading the store"
            if SEARCH_INDEX in script:
                from dmtool.store.search import fts_trigram_available

                if fts_trigram_available():
                    what = "upgrading the store: building the search index"
                else:  # this SQLite lacks FTS5 or its trigram tokenizer: search scans instead
                    script = script.replace(SEARCH_INDEX, "")
            with _Upgrade(conn, f"{what} (schema {version + 1}, once)", progress):
                for stmt in _statements(script):
                    conn.execute(stmt)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


class _Upgrade:
    """Says, once a migration has run for a second, that it is still working
    (a million messages take a while to index), then how long it took."""

    EVERY = 200_000  # SQLite VM steps between looks at the clock

    def __init__(self, conn: sqlite3.Connection, what: str,
                 progress: Callable[[str], None] | None) -> None:
        self.conn, self.what, self.progress = conn, what, progress
        self.start = self.shown = 0.0

    def __enter__(self) -> None:
        if self.progress is not None:
            self.start = time.monotonic()
            self.conn.set_progress_handler(self._tick, self.EVERY)

    def _tick(self) -> int:
        now = time.monotonic()
        if now - self.start >= 1.0 and now - self.shown >= 1.0 and self.progress is not None:
            self.shown = now
            self.progress(f"{self.what}: {now - self.start:.0f} s")
        return 0  # go on

    def __exit__(self, *exc: object) -> None:
        if self.progress is None:
            return
        self.conn.set_progress_handler(None, 0)
        if self.shown:
            self.progress(f"{self.what}: done in {time.monotonic() - self.start:.0f} s\n")


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


def _statements(script: str) -> list[str]:
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


def open_store(path: Path, *, migrate_to: int | None = None,
               progress: Callable[[str], None] | None = None) -> Store:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    old_umask = os.umask(0o077)
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        migrate(conn, migrate_to, progress)
    except sqlite3.DatabaseError as e:
        raise DmtoolError(f"cannot open the store {path}: {e}",
                          hint="the file may be damaged: restore a copy made with `dmtool db backup`, "
                               "or move it aside to start a new store") from None
    finally:
        os.umask(old_umask)
    _private(path)
    return Store(conn, path)
