"""Copying one store into another, either engine to either (`db migrate-to`).

Rows go table by table in one transaction on the target, in an order the
foreign keys allow (contacts first). Columns kept by triggers (migration 6)
are copied as they are: the source's triggers kept them right. Afterwards
every table's row count and a checksum of its keys, in key order, are
compared on both sides, still inside the transaction: a difference rolls
the copy back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dmtool.store.db import Store

BATCH = 5000
# Parents before children (foreign keys are checked row by row on both
# engines): contacts first, the hook queue after its messages; messages before
# conversations, so that the conversation rows arrive last and keep the values
# copied with them. Other tables go by name, each moved after the tables its
# foreign keys name (x_requests before x_read_ids), read from the catalog.
FIRST = ("sync_state", "contacts")
LAST = ("messages", "hook_queue", "conversations")

Progress = Callable[[str, int, int], None]  # (table, rows copied, rows in all)


@dataclass(frozen=True)
class TableCheck:
    table: str
    rows: int
    checksum: str

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "rows": self.rows, "checksum": self.checksum}


def tables(store: Store) -> list[str]:
    """The store's tables, in copy order (views, FTS and shadow tables aside)."""
    if store.engine == "sqlite":
        names = [r[0] for r in store.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND sql NOT LIKE 'CREATE VIRTUAL%'")]
        virtual = [r[0] for r in store.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL%'")]
        names = [n for n in names if not any(n.startswith(v + "_") for v in virtual)]
    else:
        names = [r[0] for r in store.conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
        names = [n for n in names if n != "dmtool_schema"]
    middle = sorted(n for n in names if n not in FIRST and n not in LAST)
    order = [n for n in FIRST if n in names] + middle + [n for n in LAST if n in names]
    return _parents_first(order, {t: parents(store, t) for t in order})


def _parents_first(order: list[str], parents_of: dict[str, set[str]]) -> list[str]:
    """`order`, each table moved after the tables its foreign keys name (stable:
    otherwise as given). A cycle keeps the given order for what is left."""
    out: list[str] = []
    left = list(order)
    while left:
        ready = next((t for t in left if parents_of[t] - {t} <= set(out)), left[0])
        out.append(ready)
        left.remove(ready)
    return out


def parents(store: Store, table: str) -> set[str]:
    """The tables `table`'s foreign keys refer to."""
    if store.engine == "sqlite":
        return {r[2] for r in store.conn.execute(f"PRAGMA foreign_key_list({table})")}
    return {r[0] for r in store.conn.execute(
        "SELECT c.confrelid::regclass::text FROM pg_constraint c WHERE c.contype = 'f' AND "
        "c.conrelid = (quote_ident(current_schema()) || '.' || quote_ident(?))::regclass",
        (table,))}


def columns(store: Store, table: str) -> list[str]:
    cur = store.conn.execute(f"SELECT * FROM {table} LIMIT 0")
    return [d[0] for d in cur.description]


def key_columns(store: Store, table: str) -> list[str]:
    """The primary key's columns (every dmtool table has one)."""
    if store.engine == "sqlite":
        rows = [r for r in store.conn.execute(f"PRAGMA table_info({table})") if r[5]]
        return [r[1] for r in sorted(rows, key=lambda r: r[5])]
    return [r[0] for r in store.conn.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indisprimary AND i.indrelid = "
        "(quote_ident(current_schema()) || '.' || quote_ident(?))::regclass "
        "ORDER BY array_position(i.indkey, a.attnum)", (table,))]


def check(store: Store, table: str) -> TableCheck:
    """Row count and a SHA-256 of the keys in key order (code point order on
    both engines: PostgreSQL's text columns are COLLATE "C")."""
    keys = key_columns(store, table) or columns(store, table)
    h = hashlib.sha256()
    n = 0
    cur = store.conn.execute(f"SELECT {', '.join(keys)} FROM {table} ORDER BY {', '.join(keys)}")
    while True:
        rows = cur.fetchmany(BATCH)
        if not rows:
            break
        for r in rows:
            h.update(repr(tuple(r)).encode())
            h.update(b"\n")
        n += len(rows)
    return TableCheck(table, n, h.hexdigest()[:16])


def is_empty(store: Store) -> bool:
    """No rows but the store's own id (which every new store gets)."""
    for t in tables(store):
        where = " WHERE key != 'store_id'" if t == "sync_state" else ""
        if store.conn.execute(f"SELECT 1 FROM {t}{where} LIMIT 1").fetchone() is not None:
            return False
    return True


def _rows(source: Store, table: str, cols: list[str]) -> Iterator[list[tuple[Any, ...]]]:
    keys = key_columns(source, table) or cols
    cur = source.conn.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY {', '.join(keys)}")
    while True:
        rows = cur.fetchmany(BATCH)
        if not rows:
            return
        yield [tuple(r) for r in rows]


def copy_all(source: Store, target: Store, progress: Progress | None = None) -> list[TableCheck]:
    """Copy every row of `source` into the empty `target` (one transaction),
    then compare both sides. Returns the checks; raises on a difference."""
    from dmtool.errors import DmtoolError

    names = tables(source)
    missing = [t for t in names if t not in tables(target)]
    if missing:
        raise DmtoolError(f"the target store has no table {missing[0]}",
                          hint="both stores must come from the same dmtool version")
    totals = {t: int(source.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
              for t in names}
    with target.tx() as conn:
        conn.execute("DELETE FROM sync_state")  # its own new id: the copy keeps the source's
        target.bulk_begin(names)
        for table in names:
            cols = columns(source, table)
            done = 0
            for batch in _rows(source, table, cols):
                target.bulk_insert(table, cols, batch)
                done += len(batch)
                if progress is not None:
                    progress(table, done, totals[table])
            if progress is not None and not done:
                progress(table, 0, 0)
        target.bulk_end(names)
        checks = [check(target, t) for t in names]
        theirs = [check(source, t) for t in names]
        for mine, want in zip(checks, theirs, strict=True):
            if mine != want:
                raise DmtoolError(
                    f"the copy of {mine.table} differs ({mine.rows} rows, checksum "
                    f"{mine.checksum}; the source has {want.rows}, {want.checksum}): "
                    "nothing was committed", code="E_COPY_MISMATCH")
    return checks
