"""Read-only lookups for shell completion.

A completion runs on every TAB, possibly while another dmtool writes the
store, so these queries are bounded (LIMIT) and walk an index, and opening
the store never writes: no migrations, no new directories, no new files.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from dmtool.store.sql import Conn
from dmtool.store.url import StoreLocation

# Above every character: `prefix + _TOP` bounds a range holding every string
# that starts with `prefix`.
_TOP = "\U0010ffff"


def open_readonly(where: Path | StoreLocation) -> Conn | None:
    """The store for reading only, or None when there is none yet.

    A PostgreSQL store: a read-only session, no migrations.

    A read-only connection to a WAL database creates the -wal and -shm files
    when they are missing, and cannot remove them again. They exist while a
    writer has the store open (read through them, with the usual locks);
    otherwise the main file holds everything, and `immutable` reads it with
    no locks and no side files.
    """
    if isinstance(where, StoreLocation):
        if where.is_postgres:
            from dmtool.store.pg import open_pg_store

            return open_pg_store(where, readonly=True).conn
        assert where.path is not None
        where = where.path
    path = where
    if not path.is_file():
        return None
    live = Path(f"{path}-wal").exists() and Path(f"{path}-shm").exists()
    uri = path.absolute().as_uri() + ("?mode=ro" if live else "?immutable=1")
    return sqlite3.connect(uri, uri=True, timeout=0.5, isolation_level=None)  # type: ignore[return-value]


def handles(conn: Conn, prefix: str, limit: int) -> list[tuple[str, str | None]]:
    """(handle, name) of contacts whose handle starts with `prefix`, ignoring
    case, in handle order: a range scan on the contacts_handle (NOCASE) index."""
    rows = conn.execute(
        "SELECT handle, name FROM contacts "
        "WHERE handle >= ? COLLATE NOCASE AND handle < ? COLLATE NOCASE "
        "ORDER BY handle COLLATE NOCASE LIMIT ?", (prefix, prefix + _TOP, limit))
    return [(r[0], r[1]) for r in rows]


def _id_ranges(prefix: str, max_id: int) -> list[tuple[int, int]]:
    """The id ranges whose decimal form starts with `prefix`: "12" is 12,
    120-129, 1200-1299, ... up to `max_id`. Each range is a rowid lookup."""
    if not prefix:
        return [(1, max_id)] if max_id >= 1 else []
    if not (prefix.isascii() and prefix.isdigit()) or prefix.startswith("0"):
        return []
    low, width, out = int(prefix), 1, []
    while low <= max_id:
        out.append((low, low + width - 1))
        low, width = low * 10, width * 10
    return out


def drafts(conn: Conn, prefix: str, statuses: Sequence[str] | None,
           limit: int) -> list[tuple[int, str, str]]:
    """(id, status, handle) of drafts whose id starts with `prefix` (and whose
    status is one of `statuses`, if given), newest first."""
    max_id = conn.execute("SELECT max(id) FROM drafts").fetchone()[0] or 0
    ranges = _id_ranges(prefix, max_id)
    if not ranges:
        return []
    where = " OR ".join("d.id BETWEEN ? AND ?" for _ in ranges)
    params: list[object] = [n for r in ranges for n in r]
    if statuses:
        where = f"({where}) AND d.status IN ({', '.join('?' * len(statuses))})"
        params += statuses
    rows = conn.execute(
        "SELECT d.id, d.status, c.handle FROM drafts d JOIN contacts c ON c.id = d.contact_id "
        f"WHERE {where} ORDER BY d.id DESC LIMIT ?", (*params, limit))
    return [(r[0], r[1], r[2]) for r in rows]


def templates(conn: Conn, prefix: str, limit: int) -> list[tuple[str, str]]:
    """(name, text) of templates whose name starts with `prefix` (names are
    exact, so case counts), by name: a range scan on the primary key."""
    rows = conn.execute(
        "SELECT name, text FROM templates WHERE name >= ? AND name < ? ORDER BY name LIMIT ?",
        (prefix, prefix + _TOP, limit))
    return [(r[0], r[1]) for r in rows]
