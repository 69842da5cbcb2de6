"""Search queries over message text, notes and contacts' handles and names.

What matches: a row matches when every term occurs in it as a substring,
ignoring the case of A-Z (SQL LIKE; other letters match as written). Each way
of finding rows gives exactly that answer; they differ only in speed:
- the FTS5 trigram index of migration 7 (SEARCH_INDEX) gives candidates for
  terms of 3 characters or more (trigrams cannot find anything shorter), and
  LIKE checks each one;
- the newest messages first (index messages_at_kind), for a term so common that
  its newest matches are among the newest few thousand messages;
- a scan with LIKE, for shorter terms (most Japanese words are two
  characters, `停止`), on a SQLite without FTS5's trigram tokenizer (the
  store has no index then) and on PostgreSQL (migration 7 builds no index
  there: pg_trgm is not on every server). LIKE is ILIKE there, which on the
  store's COLLATE "C" text folds A-Z only, as SQLite's LIKE does.
"""

from __future__ import annotations

import functools
import sqlite3
from typing import NamedTuple

from dmtool.store.sql import Conn

MIN_INDEXED = 3  # the trigram tokenizer's shortest findable piece
CANDIDATES = 2_000  # the index's candidates checked and sorted at once (messages)
WINDOW = 10_000  # newest messages read for a common term (messages)


@functools.cache
def fts_trigram_available() -> bool:
    """Whether this process's SQLite has FTS5 with the trigram tokenizer (3.34+,
    built with FTS5): Python 3.11 uses the system's SQLite on Linux, which may
    be older or built without it."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='trigram')")
        return True
    except sqlite3.OperationalError:  # no such module: fts5 / no such tokenizer: trigram
        return False
    finally:
        conn.close()


def _sqlite(conn: Conn) -> bool:
    return getattr(conn, "engine", "sqlite") == "sqlite"


def index_available(conn: Conn) -> bool:
    """The store has the search index, and this SQLite can read it (never on
    PostgreSQL: there search scans)."""
    if not _sqlite(conn):
        return False
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = "
                       "'messages_fts'").fetchone()
    return row is not None and fts_trigram_available()


class Query(NamedTuple):
    terms: tuple[str, ...]  # each non-empty
    contact_id: int | None = None
    since: str | None = None  # RFC 3339: only hits at or after it
    limit: int = 50
    use_index: bool = True  # False: never the trigram index (a store without one)
    use_window: bool = True  # False: never the newest-first shortcut (tests compare)


class Hit(NamedTuple):
    kind: str  # message, note, contact
    id: int  # the row id in its table
    at: str
    contact_id: int
    text: str | None  # None for a contact
    direction: str | None = None  # messages only
    event_id: str | None = None  # messages only


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _trigrams(terms: tuple[str, ...]) -> str:
    """An FTS5 query for the rows holding every trigram of every term: all the
    rows that match, and some that do not (the trigrams in another order),
    which LIKE then leaves out. Cheaper than the index's own LIKE, which
    reads each candidate's text."""
    grams = sorted({t[i:i + MIN_INDEXED] for t in terms for i in range(len(t) - MIN_INDEXED + 1)})
    return " AND ".join('"' + g.replace('"', '""') + '"' for g in grams)


def _where(q: Query, columns: tuple[str, ...], at: str, contact: str,
           fts: tuple[str, str] | None) -> tuple[str, list[object]]:
    """The WHERE clause shared by every kind: every term in one of `columns`,
    the contact and since filters, and with `fts` = (table, rowid column) the
    trigram index's candidates."""
    parts: list[str] = []
    params: list[object] = []
    if fts is not None:
        table, rowid = fts
        parts.append(f"{rowid} IN (SELECT rowid FROM {table} WHERE {table} MATCH ?)")
        params.append(_trigrams(q.terms))
    for term in q.terms:
        parts.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in columns) + ")")
        params += [_like(term)] * len(columns)
    if q.contact_id is not None:
        parts.append(f"{contact} = ?")
        params.append(q.contact_id)
    if q.since is not None:
        parts.append(f"{at} >= ?")
        params.append(q.since)
    return " AND ".join(parts), params


def uses_index(q: Query) -> bool:
    """Whether the trigram index narrows this query down (else it scans)."""
    return q.use_index and any(len(t) >= MIN_INDEXED for t in q.terms)


def _on_index(conn: Conn, q: Query) -> bool:
    """uses_index, on a store that can have the index (a SQLite one)."""
    return uses_index(q) and _sqlite(conn)


_MESSAGE_COLS = "m.id, m.at, m.contact_id, m.text, m.direction, m.event_id"


def messages(conn: Conn, q: Query) -> list[Hit]:
    """The newest `q.limit` matching messages, newest first, by the cheapest
    way that still gives the exact answer:
    1. the newest WINDOW/10 messages: if they hold `limit` matches (a common
       term), those are the newest of all;
    2. the index finds at most CANDIDATES rows: check and sort those;
    3. the newest WINDOW messages, as in 1;
    4. every candidate of the index, or every row.
    One contact's messages are read through its own index, newest first."""
    def found(where: str, params: list[object], table: str = "messages m") -> list[Hit]:
        rows = conn.execute(f"SELECT {_MESSAGE_COLS} FROM {table} WHERE {where} "
                            "ORDER BY m.at DESC, m.id DESC LIMIT ?", (*params, q.limit))
        return [Hit("message", r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    def newest(size: int) -> list[Hit] | None:
        if not q.use_window or q.contact_id is not None:
            return None
        since = "WHERE at >= ? " if q.since is not None else ""
        where, params = _where(q._replace(since=None), ("m.text",), "m.at", "m.contact_id", None)
        window = (f"(SELECT id, at, contact_id, text, direction, event_id FROM messages {since}"
                  "ORDER BY at DESC, id DESC LIMIT ?) m")
        hits = found(where, [*([q.since] if q.since is not None else []), size, *params], window)
        return hits if len(hits) >= q.limit else None

    indexed = _where(q, ("m.text",), "m.at", "m.contact_id", ("messages_fts", "m.id")) \
        if _on_index(conn, q) else None
    if (hits := newest(WINDOW // 10)) is not None:
        return hits
    if indexed is not None and _few_candidates(conn, "messages_fts", q):
        return found(*indexed)
    if q.contact_id is not None:  # its own index reads it newest first and stops at `limit`
        return found(*_where(q, ("m.text",), "m.at", "m.contact_id", None))
    if (hits := newest(WINDOW)) is not None:
        return hits
    if indexed is not None:
        return found(*indexed)
    # Reading every message in table order is faster than in time order.
    return found(*_where(q, ("m.text",), "m.at", "m.contact_id", None), "messages m NOT INDEXED")


def _few_candidates(conn: Conn, table: str, q: Query) -> bool:
    """Whether the index finds at most CANDIDATES rows for the query."""
    n = conn.execute(f"SELECT count(*) FROM (SELECT rowid FROM {table} WHERE {table} MATCH ? "
                     "LIMIT ?)", (_trigrams(q.terms), CANDIDATES + 1)).fetchone()[0]
    return int(n) <= CANDIDATES


def notes(conn: Conn, q: Query) -> list[Hit]:
    fts = ("notes_fts", "n.id") if _on_index(conn, q) else None
    where, params = _where(q, ("n.text",), "n.at", "n.contact_id", fts)
    rows = conn.execute(f"SELECT n.id, n.at, n.contact_id, n.text FROM notes n WHERE {where} "
                        "ORDER BY n.at DESC, n.id DESC LIMIT ?", (*params, q.limit)).fetchall()
    return [Hit("note", r[0], r[1], r[2], r[3]) for r in rows]


# A contact's time in the results: its latest message, else when it was added.
_CONTACT_AT = ("COALESCE((SELECT max(v.latest_at) FROM conversations v "
               "WHERE v.contact_id = c.id), c.created_at)")


def contacts(conn: Conn, q: Query) -> list[Hit]:
    """Contacts whose handle or name holds every term (a leading @ is ignored:
    people type handles with it), by their latest message, newest first."""
    q = q._replace(terms=tuple(t.removeprefix("@") or t for t in q.terms))
    fts = ("contacts_fts", "c.id") if _on_index(conn, q) else None
    where, params = _where(q, ("c.handle", "c.name"), "c.at", "c.id", fts)
    rows = conn.execute(
        f"SELECT c.id, c.at FROM (SELECT id, handle, name, {_CONTACT_AT} AS at FROM contacts c) c "
        f"WHERE {where} ORDER BY c.at DESC, c.id DESC LIMIT ?", (*params, q.limit)).fetchall()
    return [Hit("contact", r[0], r[1], r[0], None) for r in rows]


def contact_labels(conn: Conn,
                   ids: set[int]) -> dict[int, tuple[str, str | None, str | None]]:
    """contact id -> (handle, user id, name), for the contacts of some hits."""
    out: dict[int, tuple[str, str | None, str | None]] = {}
    chunk = sorted(ids)
    for start in range(0, len(chunk), 500):
        part = chunk[start:start + 500]
        for r in conn.execute(f"SELECT id, handle, user_id, name FROM contacts WHERE id IN "
                              f"({','.join('?' * len(part))})", part):
            out[r[0]] = (r[1], r[2], r[3])
    return out
