"""The PostgreSQL engine: psycopg2 behind the store's one connection shape.

Imported only when a profile's store URL is PostgreSQL, so the SQLite
default never pays for the driver (tests/test_startup.py checks it).
psycopg2 was measured at about a fifth of psycopg 3's import time on this
machine (psycopg 3 pulls in asyncio, logging and ctypes), and every command
pays it.

What SQLite gives by construction is made explicit here:
- a writer's `BEGIN IMMEDIATE` is a transaction that starts with a
  transaction-level advisory lock on the store's key, so read-then-write
  paths serialise exactly as they do on SQLite (READ COMMITTED alone would
  let two of them interleave);
- the send, sync and digest locks are session-level advisory locks held by
  this connection: the server frees them when the connection dies, as the
  kernel frees a flock when a process dies. TCP keepalives make a vanished
  client's connection (and locks) go within minutes. A transaction pooler
  (pgbouncer in transaction mode, providers' pooled hosts) would hand the
  lock to some other session: known pooled hosts are refused, and a send
  checks the lock is still its own before recording the outcome;
- the schema version lives in the table dmtool_schema.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from dmtool.errors import ConfigError, DmtoolError, StoreUnavailable
from dmtool.locks import LockTimeout
from dmtool.store import pgfaults
from dmtool.store.db import Store
from dmtool.store.migrations import MIGRATIONS, Migration
from dmtool.store.pgsql import translate
from dmtool.store.url import StoreLocation, mask

INSTALL_HINT = "pip install 'dmtool[postgres]'"
LOCK_TIMEOUT_MS = 15_000  # as SQLite's busy_timeout: a writer waits this long, then Busy
CONNECT_TIMEOUT_S = "10"
KEEPALIVES = {"keepalives": "1", "keepalives_idle": "30", "keepalives_interval": "10",
              "keepalives_count": "3"}
LOCK_POLL_S = 0.05


def driver() -> Any:
    """psycopg2, or a ConfigError (exit 4) saying how to install it."""
    try:
        import psycopg2
        import psycopg2.extensions
    except ImportError:
        raise ConfigError("this store is PostgreSQL, and the PostgreSQL driver is not installed",
                          code="E_STORE_DRIVER", hint=f"install it: {INSTALL_HINT}") from None
    return psycopg2


# --- rows and cursors in sqlite3's shape ----------------------------------------------


class PgRow(tuple):  # type: ignore[type-arg]
    """A row by position and by column name, like sqlite3.Row."""

    __slots__ = ()
    _index: dict[str, int] = {}
    _names: tuple[str, ...] = ()

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


@lru_cache(maxsize=512)
def _row_class(names: tuple[str, ...]) -> type[PgRow]:
    return type("PgRow", (PgRow,), {"__slots__": (), "_names": names,
                                    "_index": {n: i for i, n in enumerate(names)}})


class PgCursor:
    def __init__(self, cur: Any, lastrowid: int | None = None) -> None:
        self._cur = cur
        self.lastrowid = lastrowid
        desc = cur.description
        self._cls = _row_class(tuple(d[0] for d in desc)) if desc else None

    @property
    def row_factory(self) -> Any:
        return self._cls

    @row_factory.setter
    def row_factory(self, factory: Any) -> None:
        """None: plain tuples, as sqlite3's `cursor.row_factory = None`."""
        if factory is not None:
            raise ValueError("only None (plain tuples) is supported")
        if self._cls is not None:
            self._cls = tuple  # type: ignore[assignment]

    @property
    def rowcount(self) -> int:
        return int(self._cur.rowcount)

    @property
    def description(self) -> Any:
        return self._cur.description

    def _wrap(self, rows: list[Any]) -> list[Any]:
        cls = self._cls
        return rows if cls is None else [cls(r) for r in rows]

    def fetchone(self) -> Any:
        if self._cls is None:
            return None
        r = self._cur.fetchone()
        return None if r is None else self._cls(r)

    def fetchall(self) -> list[Any]:
        if self._cls is None:
            return []
        return self._wrap(self._cur.fetchall())

    def fetchmany(self, size: int = 1000) -> list[Any]:
        if self._cls is None:
            return []
        return self._wrap(self._cur.fetchmany(size))

    def __iter__(self) -> Iterator[Any]:
        if self._cls is None:
            return
        cls = self._cls
        while True:
            rows = self._cur.fetchmany(2000)
            if not rows:
                return
            for r in rows:
                yield cls(r)


def _adapt(value: Any) -> Any:
    # SQLite stores booleans as 0/1, and store/ passes them where an integer goes.
    if isinstance(value, bool):
        return int(value)
    # PostgreSQL text cannot hold NUL, which SQLite stores: a NUL from X (a DM, an
    # archive) is kept as U+FFFD, as `db migrate-to` copies it, never a crash.
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


class PgConnection:
    """psycopg2 in autocommit mode with sqlite3.Connection's surface: each
    statement outside `BEGIN ... COMMIT` is its own transaction, as in SQLite
    with isolation_level=None."""

    engine = "postgresql"

    def __init__(self, raw: Any, location: StoreLocation) -> None:
        self.raw = raw
        self.location = location
        self._identity: frozenset[str] | None = None
        self._returning: dict[str, str | None] = {}

    @property
    def in_transaction(self) -> bool:
        return int(self.raw.get_transaction_status()) != 0  # TRANSACTION_STATUS_IDLE

    def schema_changed(self) -> None:
        """Forget what was read from the catalog (after a migration)."""
        self._identity = None
        self._returning.clear()

    def _identity_tables(self) -> frozenset[str]:
        """Tables with an identity `id`: an INSERT into one returns it (lastrowid)."""
        if self._identity is None:
            cur = self.raw.cursor()
            cur.execute("SELECT c.relname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                        "WHERE a.attname = 'id' AND a.attidentity <> '' "
                        "AND c.relnamespace = current_schema()::regnamespace")
            self._identity = frozenset(r[0] for r in cur.fetchall())
        return self._identity

    def _insert_target(self, sql: str) -> str | None:
        """The table of an INSERT that should report lastrowid, else None."""
        if sql not in self._returning:
            words = sql.split(None, 5)
            table = None
            if len(words) >= 3 and words[0].upper() == "INSERT" and " RETURNING " not in sql.upper():
                i = 2 if words[1].upper() == "INTO" else 4 if words[1].upper() == "OR" else 0
                if i and len(words) > i:
                    name = words[i].split("(")[0].strip('"').lower()
                    table = name if name in self._identity_tables() else None
            self._returning[sql] = table
        return self._returning[sql]

    def execute(self, sql: str, parameters: Any = ()) -> PgCursor:
        t = translate(sql)
        params: Any
        if t.named:
            params = {k: _adapt(v) for k, v in dict(parameters).items()}
        elif t.numbered:
            params = {f"p{i + 1}": _adapt(v) for i, v in enumerate(parameters)}
        else:
            params = tuple(_adapt(v) for v in parameters)
        text = t.sql
        returning = self._insert_target(sql)
        if returning:
            text = text.rstrip().rstrip(";") + " RETURNING id"
        cur = self.raw.cursor()
        try:
            cur.execute(text, params)
        except Exception as e:
            pgfaults.reraise(e, self.location)
        if returning:
            first = cur.fetchone() if cur.description else None
            return PgCursor(cur, None if first is None else int(first[0]))
        return PgCursor(cur)

    def executemany(self, sql: str, seq_of_parameters: Any) -> PgCursor:
        t = translate(sql)
        cur = self.raw.cursor()
        rows = [tuple(_adapt(v) for v in p) for p in seq_of_parameters]
        try:
            if t.named or t.numbered:
                raise DmtoolError("executemany takes positional parameters on PostgreSQL")
            cur.executemany(t.sql, rows)
        except DmtoolError:
            raise
        except Exception as e:
            pgfaults.reraise(e, self.location)
        return PgCursor(cur)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.raw.close()


# --- errors ------------------------------------------------------------------------


def connect_error(e: BaseException, location: StoreLocation) -> DmtoolError:
    """One clear line for each way a connection fails. libpq's messages are
    stable English; the server's may be translated, so the fallback quotes it."""
    text = str(e).strip()
    low = text.lower()
    where = location.shown
    line = pgfaults.first_line(e)
    if "password authentication failed" in low or "no password supplied" in low \
            or "authentication failed" in low:
        return ConfigError(f"PostgreSQL refused the password for {where}", code="E_STORE_AUTH",
                           hint="check the user and password (in the URL, PGPASSWORD or ~/.pgpass)")
    if "does not exist" in low and "database" in low:
        return ConfigError(f"the database in {where} does not exist", code="E_STORE_MISSING",
                           hint="create it first (docs/team.md): CREATE DATABASE ... OWNER ...")
    if "role" in low and "does not exist" in low:
        return ConfigError(f"the PostgreSQL user in {where} does not exist", code="E_STORE_AUTH",
                           hint="create the role first (docs/team.md)")
    if "pg_hba.conf" in low or "ssl" in low and ("required" in low or "certificate" in low
                                                  or "verify" in low):
        return ConfigError(f"PostgreSQL refused the connection to {where}: {line}",
                           code="E_STORE_REFUSED", hint="check sslmode and the server's pg_hba.conf")
    if "invalid dsn" in low or "invalid connection option" in low or "invalid uri" in low \
            or "invalid integer value" in low or "invalid sslmode" in low:
        return ConfigError(f"store.url is not a valid PostgreSQL URL: {line}", code="E_STORE_URL",
                           hint="postgresql://USER@HOST:PORT/DATABASE?sslmode=verify-full")
    return StoreUnavailable(f"cannot reach the PostgreSQL store {where}: {line}",
                            hint="check that the server runs and the host and port are right; "
                                 "run the command again")


# --- connecting ------------------------------------------------------------------------

def is_transaction_pooler(host: str, port: str) -> bool:
    """Whether host:port is a provider's transaction pooler. Neon's pooled
    hosts carry `-pooler.`; Supabase pools in transaction mode on port 6543
    (its shared `*.pooler.supabase.com` and the dedicated pooler on
    `db.<ref>.supabase.co`), in session mode on 5432, which keeps locks."""
    host = host.lower()
    if "-pooler." in host:
        return True
    if "supabase." in host:
        return port == "6543"
    return ".pooler." in host


def _refuse_poolers(params: dict[str, str], location: StoreLocation) -> None:
    """Transaction poolers break session advisory locks: refuse the hosts known
    to be one. (A self-run pgbouncer cannot be told apart: docs/team.md.)"""
    # libpq falls back to PGHOST/PGPORT for what the URL leaves out.
    host = params.get("host") or os.environ.get("PGHOST", "")
    port = params.get("port") or os.environ.get("PGPORT", "")
    hosts, ports = host.split(","), port.split(",")
    ports = ports if len(ports) == len(hosts) else ports[:1] * len(hosts)
    if any(is_transaction_pooler(h.strip(), p.strip()) for h, p in zip(hosts, ports, strict=True)):
        raise ConfigError(
            f"{location.shown} is a transaction pooler: dmtool's send lock needs a direct "
            "connection (or a session-mode pool)", code="E_STORE_POOLER",
            hint="use the provider's direct connection string (docs/team.md)")


def connect(location: StoreLocation, *, application_name: str = "dmtool") -> PgConnection:
    psycopg2 = driver()
    from psycopg2.extensions import parse_dsn

    url = location.url or ""
    try:
        params = parse_dsn(url)
    except psycopg2.ProgrammingError as e:
        raise connect_error(e, location) from None
    _refuse_poolers(params, location)
    extra = {"application_name": application_name, "connect_timeout": CONNECT_TIMEOUT_S,
             **KEEPALIVES}
    for k, v in extra.items():
        params.setdefault(k, v)
    try:
        raw = psycopg2.connect(**params)
    except psycopg2.Error as e:
        raise connect_error(e, location) from None
    raw.autocommit = True
    _register_types(psycopg2, raw)
    return PgConnection(raw, location)


def _register_types(psycopg2: Any, raw: Any) -> None:
    """numeric (sum of bigints, avg) as int or float, as SQLite answers them."""
    ext = psycopg2.extensions

    def number(value: str | None, cur: Any) -> int | float | None:
        if value is None:
            return None
        return int(value) if value.lstrip("-").isdigit() else float(value)

    ext.register_type(ext.new_type(ext.DECIMAL.values, "DMTOOL_NUMERIC", number), raw)


# --- the store ------------------------------------------------------------------------


def lock_key(schema: str, name: str) -> int:
    """A 64-bit advisory lock key for one of this store's locks. Advisory locks
    are per database; the schema tells two brands' stores in one database apart."""
    digest = hashlib.blake2b(f"dmtool/{schema}/{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PgStore(Store):
    engine = "postgresql"

    def __init__(self, conn: PgConnection, location: StoreLocation) -> None:
        super().__init__(conn, Path(), location=location)  # type: ignore[arg-type]
        self.pg = conn
        row = self.pg.raw.cursor()
        row.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}; "
                    "SELECT current_schema(), to_regclass('dmtool_schema') IS NOT NULL")
        schema, has_version = row.fetchone()
        if schema is None:
            raise ConfigError(f"{location.shown}: the schema in its search_path does not exist",
                              code="E_STORE_MISSING",
                              hint="create it first: CREATE SCHEMA name AUTHORIZATION role "
                                   "(docs/team.md)")
        self.schema = str(schema)
        self._has_version = bool(has_version)
        self._held: set[str] = set()
        self._sessions: dict[str, int] = {}  # lock name -> backend pid that took it

    def key(self, name: str) -> int:
        return lock_key(self.schema, name)

    @contextlib.contextmanager
    def tx(self) -> Iterator[Any]:
        if self.conn.in_transaction:
            yield self.conn
            return
        cur = self.pg.raw.cursor()
        try:
            cur.execute("BEGIN; SELECT pg_advisory_xact_lock(%s)", (self.key("write"),))
        except Exception as e:
            with contextlib.suppress(Exception):
                self.pg.raw.cursor().execute("ROLLBACK")
            pgfaults.reraise(e, self.location)
        hooks = list(self.commit_hooks)
        try:
            yield self.conn
            for hook in hooks:
                hook.write(self.conn)
        except BaseException:
            with contextlib.suppress(Exception):
                self.pg.raw.cursor().execute("ROLLBACK")
            raise
        try:
            cur.execute("COMMIT")
        except Exception as e:
            pgfaults.reraise(e, self.location)
        for hook in hooks:
            hook.committed()

    @contextlib.contextmanager
    def lock(self, name: str, timeout: float | None = None) -> Iterator[None]:
        """A session advisory lock: the server frees it if this connection dies."""
        key = self.key(name)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            row = self.conn.execute("SELECT pg_try_advisory_lock(?), pg_backend_pid()",
                                    (key,)).fetchone()
            if row[0]:
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise LockTimeout(name)
            time.sleep(LOCK_POLL_S)
        self._sessions[name] = int(row[1])
        self._held.add(name)
        try:
            yield
        finally:
            self._held.discard(name)
            self._sessions.pop(name, None)
            with contextlib.suppress(Exception):
                self.conn.execute("SELECT pg_advisory_unlock(?)", (key,))

    def lock_held(self, name: str) -> bool:
        """Is the lock still this connection's? Not when the connection was lost
        and made anew, nor behind a pooler that moved us to another session."""
        if name not in self._held:
            return False
        key = self.key(name) & 0xFFFF_FFFF_FFFF_FFFF
        try:
            row = self.conn.execute(
                "SELECT pg_backend_pid(), EXISTS (SELECT 1 FROM pg_locks WHERE locktype = "
                "'advisory' AND pid = pg_backend_pid() AND granted AND database = (SELECT oid "
                "FROM pg_database WHERE datname = current_database()) AND classid = ? AND "
                "objid = ? AND objsubid = 1)", (str(key >> 32), str(key & 0xFFFF_FFFF))).fetchone()
        except DmtoolError:
            return False
        return bool(row[1]) and int(row[0]) == self._sessions.get(name)

    def db_user(self) -> str | None:
        """The database role this connection logged in as (team.trust_db_user):
        one role per member, which the server authenticates (docs/team.md)."""
        return str(self.conn.execute("SELECT current_user").fetchone()[0]) or None

    def schema_version(self) -> int:
        if not self._has_version:
            return 0
        row = self.conn.execute("SELECT version FROM dmtool_schema").fetchone()
        return 0 if row is None else int(row[0])

    def migrate(self, target: int | None = None) -> int:
        """Apply pending migrations, each in its own transaction, under the write lock."""
        target = len(MIGRATIONS) if target is None else target
        if self._has_version and self.schema_version() == target:
            return target  # the common case: one query, no lock
        while True:
            with self.tx():
                self.conn.execute("CREATE TABLE IF NOT EXISTS dmtool_schema "
                                  "(version integer NOT NULL)")
                self._has_version = True
                row = self.conn.execute("SELECT version FROM dmtool_schema").fetchone()
                if row is None:
                    self.conn.execute("INSERT INTO dmtool_schema (version) VALUES (0)")
                version = 0 if row is None else int(row[0])
                if version > len(MIGRATIONS):
                    raise ConfigError(
                        f"the store was written by a newer dmtool (schema {version})",
                        hint="upgrade dmtool")
                if version >= target:
                    return version
                _apply(self.pg, MIGRATIONS[version])
                self.conn.execute("UPDATE dmtool_schema SET version = ?", (version + 1,))
                self.pg.schema_changed()

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Any]:
        self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            yield self.conn
        finally:
            self.conn.execute("COMMIT")

    def bulk_begin(self, tables: list[str]) -> None:
        """Triggers off while copying: the rows carry what the triggers would
        compute (the table's owner may do this, inside the transaction)."""
        for t in tables:
            self.conn.execute(f"ALTER TABLE {t} DISABLE TRIGGER USER")

    def bulk_insert(self, table: str, cols: list[str], rows: list[tuple[Any, ...]]) -> None:
        """COPY ... FROM STDIN: an order of magnitude faster than INSERTs."""
        import io

        buf = io.StringIO()
        for r in rows:
            buf.write("\t".join(_copy_value(v) for v in r))
            buf.write("\n")
        buf.seek(0)
        try:
            self.pg.raw.cursor().copy_expert(
                f"COPY {table} ({', '.join(cols)}) FROM STDIN", buf, size=1 << 20)
        except Exception as e:
            pgfaults.reraise(e, self.location)

    def bulk_end(self, tables: list[str]) -> None:
        for t in tables:
            self.conn.execute(f"ALTER TABLE {t} ENABLE TRIGGER USER")
        for t in sorted(self.pg._identity_tables()):
            if t in tables:
                self.conn.execute(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), "
                                  f"COALESCE(max(id), 0) + 1, false) FROM {t}")

    def problems(self) -> list[str]:
        from dmtool.store.pgcheck import problems

        return problems(self)

    def backup(self, dest: Path) -> None:
        """`pg_dump` of this store's schema, in its custom format (restore with pg_restore)."""
        exe = shutil.which("pg_dump")
        if exe is None:
            raise ConfigError(
                "db backup of a PostgreSQL store runs pg_dump, which is not on PATH",
                code="E_STORE_BACKUP",
                hint="install the PostgreSQL client tools (e.g. apt install postgresql-client), "
                     "or use your provider's snapshots")
        env = dict(os.environ)
        env.update(libpq_env(self.location))
        cmd = [exe, "--format=custom", "--no-owner", f"--schema={self.schema}",
               f"--file={dest}"]
        old = os.umask(0o077)
        try:
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
        finally:
            os.umask(old)
        if p.returncode != 0:
            with contextlib.suppress(FileNotFoundError):
                dest.unlink()
            why = mask((p.stderr.strip().splitlines() or ["failed"])[-1])
            raise DmtoolError(f"backup failed: {why}", code="E_STORE_BACKUP")

    def close(self) -> None:
        self.pg.close()


_LIBPQ_ENV = {"host": "PGHOST", "hostaddr": "PGHOSTADDR", "port": "PGPORT", "dbname": "PGDATABASE",
              "user": "PGUSER", "password": "PGPASSWORD", "passfile": "PGPASSFILE",
              "options": "PGOPTIONS", "sslmode": "PGSSLMODE", "sslcert": "PGSSLCERT",
              "sslkey": "PGSSLKEY", "sslrootcert": "PGSSLROOTCERT", "sslcrl": "PGSSLCRL",
              "service": "PGSERVICE", "connect_timeout": "PGCONNECT_TIMEOUT",
              "target_session_attrs": "PGTARGETSESSIONATTRS", "gssencmode": "PGGSSENCMODE",
              "channel_binding": "PGCHANNELBINDING", "sslnegotiation": "PGSSLNEGOTIATION"}


def libpq_env(location: StoreLocation) -> dict[str, str]:
    """The URL as libpq's environment variables: a client tool gets the password
    without it ever appearing on a command line (`ps` shows those)."""
    driver()
    from psycopg2.extensions import parse_dsn

    out = {}
    for k, v in parse_dsn(location.url or "").items():
        if k in _LIBPQ_ENV:
            out[_LIBPQ_ENV[k]] = v
    return out


def _copy_value(v: Any) -> str:
    """One field in COPY's text format. PostgreSQL text cannot hold NUL."""
    if v is None:
        return "\\N"
    if isinstance(v, str):
        return (v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                .replace("\r", "\\r").replace("\x00", "\ufffd"))
    return str(int(v) if isinstance(v, bool) else v)


def _apply(conn: PgConnection, step: str | Migration) -> None:
    """One migration: its own PostgreSQL text, or the common text translated."""
    if isinstance(step, Migration):
        if step.postgres.strip():
            cur = conn.raw.cursor()
            try:
                cur.execute(step.postgres)
            except Exception as e:
                pgfaults.reraise(e, conn.location)
        return
    from dmtool.store.db import split_statements

    for stmt in split_statements(step):
        conn.execute(stmt)


def open_pg_store(location: StoreLocation, *, migrate_to: int | None = None,
                  readonly: bool = False) -> PgStore:
    store = PgStore(connect(location), location)
    try:
        if readonly:
            store.conn.execute("SET default_transaction_read_only = on")
        else:
            store.migrate(migrate_to)
    except BaseException:
        store.close()
        raise
    return store

