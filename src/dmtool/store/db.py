"""Opening the store: WAL, busy timeout, foreign keys, migrations, private files.

SQLite is the default (one file per profile); a PostgreSQL URL opens the same
store API on store/pg.py, which is imported only then.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from dmtool.errors import (
    ConfigError,
    DmtoolError,
    StoreDamaged,
    StoreError,
    StoreReadOnly,
    write_failed,
)
from dmtool.locks import file_lock
from dmtool.store import faults
from dmtool.store.migrations import MIGRATIONS, SEARCH_INDEX, sqlite_text
from dmtool.store.sql import Conn
from dmtool.store.url import StoreLocation

BUSY_TIMEOUT_MS = 15_000
LOCK_NAMES = ("send", "sync", "digest")


def state_value(conn: Conn, key: str) -> str | None:
    """One value from sync_state (cursors, checkpoints, the rate-limit pause)."""
    row = conn.execute("SELECT value FROM sync_state WHERE key = ?", (key,)).fetchone()
    return None if row is None else row[0]


class CommitHook(Protocol):
    """Rows that must go in with whatever the next transaction writes (the
    ledger's requests: recorded with what they brought). `write` runs in the
    transaction, before COMMIT; `committed` after it succeeded."""

    def write(self, conn: Conn) -> None: ...

    def committed(self) -> None: ...


# Locks that sit beside the SQLite file (FileLocks.beside), not in a home's state folder.
SHARED_LOCKS = frozenset({"send", "sync", "credentials"})


class FileLocks:
    """The SQLite store's named locks: one file each in `lock_dir`, which the
    kernel frees when the holder dies (dmtool/locks.py). They can be taken
    without opening the store (a restore replaces a damaged one)."""

    def __init__(self, lock_dir: Path, beside: Path | None = None) -> None:
        self.lock_dir = lock_dir
        # The folder of the store file: the locks every member who opens this
        # SQLite file must meet (one sender, one poller, one token refresh),
        # whichever home they open it from.
        self.beside = beside
        self._held: set[str] = set()

    def path(self, name: str) -> Path:
        folder = self.beside if self.beside is not None and name in SHARED_LOCKS else self.lock_dir
        return folder / f"{name}.lock"

    @contextlib.contextmanager
    def lock(self, name: str, timeout: float | None = None) -> Iterator[None]:
        path = self.path(name)
        with contextlib.ExitStack() as held:
            try:
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                held.enter_context(file_lock(path, timeout=timeout))
            except OSError as e:  # a folder it may not write: say so, as for the store
                raise write_failed(path, e) from None
            self._held.add(name)
            try:
                yield
            finally:
                self._held.discard(name)

    def lock_held(self, name: str) -> bool:
        return name in self._held


class Store:
    """One profile's store. Use `tx()` around every multi-row change.

    This class is the SQLite store; store/pg.py's PgStore gives the same
    methods their PostgreSQL meaning. Locks (`lock`) are named: "send" (one
    send at a time, held from `sending` to the recorded outcome), "sync" and
    "digest"; each is freed when its holder dies."""

    engine = "sqlite"

    def __init__(self, conn: Any, path: Path, *, lock_dir: Path | None = None,
                 location: StoreLocation | None = None, read_only: bool = False) -> None:
        self.conn: Conn = conn
        self.path = path
        self.location = location or StoreLocation("sqlite", path=path)
        self.lock_dir = lock_dir or path.parent
        self.locks = FileLocks(self.lock_dir, beside=path.parent)
        # Opened read-only (a read-only disk, folders of another user): reads
        # work, commands that would only mark something read act as --peek.
        # SQLite only: a PostgreSQL store is read-only when the server says so.
        self.read_only = read_only
        self.commit_hooks: list[CommitHook] = []

    @contextlib.contextmanager
    def tx(self) -> Iterator[Conn]:
        """An IMMEDIATE transaction: takes the write lock up front, so two
        writers queue on busy_timeout instead of failing on lock upgrade. On a
        read-only store, a plain one: reads in it work, a write is StoreReadOnly."""
        if self.conn.in_transaction:  # nested: join the outer transaction
            yield self.conn
            return
        self.conn.execute("BEGIN" if self.read_only else "BEGIN IMMEDIATE")
        hooks = [] if self.read_only else list(self.commit_hooks)
        try:
            yield self.conn
            for hook in hooks:
                hook.write(self.conn)
            self.conn.execute("COMMIT")
        except BaseException:
            _rollback(self.conn)
            raise
        for hook in hooks:
            hook.committed()

    def lock(self, name: str, timeout: float | None = None) -> contextlib.AbstractContextManager[None]:
        """Hold one of the store's named locks (a file beside the store: the
        kernel frees it when the process dies). Raises locks.LockTimeout."""
        return self.locks.lock(name, timeout)

    def lock_held(self, name: str) -> bool:
        """Whether this store still holds the lock (a file lock cannot be lost)."""
        return self.locks.lock_held(name)

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
        from dmtool.store.backup import copy_store

        copy_store(self, dest)

    def db_user(self) -> str | None:
        """The user the store itself knows is acting (team.trust_db_user). A
        SQLite file knows only the OS account whose process opens it (the
        file's permissions decide who may write it), so: that account's name,
        from the user database by uid, never from LOGNAME or USER, which anyone
        can set. (On PostgreSQL: `current_user`,
        store/pg.py.)"""
        try:
            import pwd
        except ImportError:  # no user database (Windows): the login name
            import getpass

            try:
                return getpass.getuser() or None
            except (OSError, ImportError):  # no USERNAME: Python 3.13 raises OSError
                return None
        try:
            return pwd.getpwuid(os.geteuid()).pw_name or None
        except KeyError:  # a uid without a passwd entry (a container)
            return None

    def close(self) -> None:
        self.conn.close()


def _rollback(conn: Conn) -> None:
    """Undo the open transaction, if there still is one: SQLite has already
    rolled back after some errors (a full disk), and a second ROLLBACK would
    replace the real error with "cannot rollback - no transaction is active"."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error, DmtoolError):
            conn.execute("ROLLBACK")


def side_files(path: Path) -> tuple[Path, ...]:
    """The files SQLite keeps beside the store; they belong to it."""
    return tuple(Path(f"{path}{suffix}") for suffix in ("-wal", "-shm", "-journal"))


def _private(path: Path) -> None:
    """Owner-only files: the store holds private conversations."""
    for p in (path, *side_files(path)):
        with contextlib.suppress(OSError):  # gone, or not ours to change
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
            script = sqlite_text(MIGRATIONS[version])
            what = "upgrading the store"
            if SEARCH_INDEX in script:
                from dmtool.store.search import fts_trigram_available

                if fts_trigram_available():
                    what = "upgrading the store: building the search index"
                else:  # this SQLite lacks FTS5 or its trigram tokenizer: search scans instead
                    script = script.replace(SEARCH_INDEX, "")
            with _Upgrade(conn, f"{what} (schema {version + 1}, once)", progress):
                for stmt in split_statements(script):
                    conn.execute(stmt)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
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


def missing_schema(conn: sqlite3.Connection, version: int | None = None) -> list[tuple[str, str]]:
    """Tables and indexes the migrations (up to `version`, else all) create
    that this store lacks."""
    fresh = sqlite3.connect(":memory:", isolation_level=None)
    try:
        migrate(fresh, version)
        want = set(fresh.execute("SELECT type, name FROM sqlite_master WHERE type IN "
                                 "('table', 'index') AND name NOT LIKE 'sqlite_%'"))
    finally:
        fresh.close()
    have = {(r[0], r[1]) for r in conn.execute("SELECT type, name FROM sqlite_master")}
    return sorted(want - have)


def problems_of(conn: sqlite3.Connection, version: int | None = None) -> list[str]:
    """Everything `db check` reports: integrity, foreign keys, missing schema
    (of the schema `version`, else the current one). A store too damaged for a
    check to run gets that as its problem instead of an error."""
    problems: list[str] = []
    checks: list[tuple[str, Callable[[], list[str]]]] = [
        ("integrity", lambda: [r[0] for r in conn.execute("PRAGMA integrity_check")
                               if r[0] != "ok"]),
        ("foreign keys", lambda: [f"foreign key: {tuple(r)}"
                                  for r in conn.execute("PRAGMA foreign_key_check")]),
        ("schema", lambda: [f"missing {kind}: {name}"
                            for kind, name in missing_schema(conn, version)]),
    ]
    for what, check in checks:
        try:
            problems += check()
        except (StoreDamaged, sqlite3.DatabaseError) as e:
            cause = e.__cause__ or e
            problems.append(f"the {what} check cannot read the store: {cause}")
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


def _writable(path: Path) -> bool:
    """Can this process write the store (and create its side files)? os.access
    also answers for a read-only filesystem, even for root."""
    folder = path.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    return all(os.access(p, os.W_OK) for p in (path, *side_files(path)) if p.exists())


def _connect(target: str | Path, path: Path, *, uri: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(target, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False, uri=uri, factory=faults.Connection)
    conn.dmtool_path = path  # type: ignore[attr-defined]
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def open_store(where: Path | str | StoreLocation, *, migrate_to: int | None = None,
               lock_dir: Path | None = None, readonly: bool = False,
               progress: Callable[[str], None] | None = None) -> Store:
    """Open (create, upgrade) the store at a path, a URL or a location. Where a
    SQLite store cannot be written, it is opened read-only, as it is: reads
    work, a write raises StoreReadOnly. `readonly` opens a PostgreSQL store in
    read-only transactions (TAB completion) without migrating it."""
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
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as e:
        raise write_failed(path.parent, e) from None
    if not _writable(path):
        return _open_read_only(path, lock_dir)
    old_umask = os.umask(0o077)
    try:
        with faults.translated(path):
            conn = _connect(path, path)
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                migrate(conn, migrate_to, progress)
            except BaseException:
                conn.close()
                raise
    except sqlite3.DatabaseError as e:  # nothing SQLite said that store/faults knows
        raise DmtoolError(f"cannot open the store {path}: {e}",
                          hint="run `dmtool db check`") from None
    finally:
        os.umask(old_umask)
    _private(path)
    return Store(conn, path, lock_dir=lock_dir)


def _first_readable(targets: list[str], path: Path) -> tuple[sqlite3.Connection, int]:
    """The first of these URIs that reads, and the schema version it reads."""
    with faults.translated(path):
        for target in targets:
            conn = _connect(target, path, uri=True)
            try:
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return conn, version
            except StoreError as e:  # read-only, can't open: try the next way
                conn.close()
                if isinstance(e, StoreDamaged):
                    raise
    raise StoreReadOnly(f"cannot read the store {path}: it was not closed cleanly, and dmtool "
                        f"cannot write to {path.parent} to finish that",
                        hint="open it once where it can be written")


def _open_read_only(path: Path, lock_dir: Path | None = None) -> Store:
    """The store where this process may not write. SQLite reads a WAL store
    read-only only while its -wal and -shm files exist; after a clean close they
    are gone and cannot be created here, so then the file (which then holds
    every commit) is opened as immutable."""
    if not path.exists():
        raise StoreReadOnly(f"cannot write to {path.parent}: there is no store yet, and dmtool "
                            "cannot create one there",
                            hint="check that the folder is yours and not on a read-only disk")
    base = path.resolve().as_uri() + "?mode=ro"
    wal = Path(f"{path}-wal")
    targets = [base]
    if not (wal.exists() and wal.stat().st_size):  # else immutable would miss the WAL's commits
        targets.append(base + "&immutable=1")
    try:
        conn, version = _first_readable(targets, path)
    except sqlite3.DatabaseError as e:
        raise DmtoolError(f"cannot open the store {path}: {e}", hint="run `dmtool db check`") from None
    if version > len(MIGRATIONS):
        conn.close()
        raise ConfigError(f"the store was written by a newer dmtool (schema {version})",
                          hint="upgrade dmtool")
    if version < len(MIGRATIONS):
        conn.close()
        raise StoreReadOnly(f"cannot write to {path}: this version of dmtool must upgrade the "
                            "store first, which needs write access",
                            hint="run dmtool once where the store can be written")
    return Store(conn, path, lock_dir=lock_dir, read_only=True)
