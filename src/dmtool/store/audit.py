"""Reading the audit log (store/contacts.audit writes it), with `log`'s filters."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from dmtool.store.sql import Conn


class Filter(NamedTuple):
    user_id: str | None = None  # with handle: the contact's entries, under either
    handle: str | None = None
    since: str | None = None  # RFC 3339
    actions: tuple[str, ...] = ()
    actor: str | None = None


def entries(conn: Conn, f: Filter, limit: int | None = None) -> list[dict[str, Any]]:
    """Matching entries, newest first. A contact's entries are those under its
    user id, and those under its handle that were written before X named it
    (no user id): handles change hands; user ids do not."""
    where: list[str] = []
    params: list[Any] = []
    if f.user_id is not None:
        where.append("(user_id = ? OR (user_id IS NULL AND handle = ? COLLATE NOCASE))")
        params += [f.user_id, f.handle]
    elif f.handle is not None:
        where.append("handle = ? COLLATE NOCASE")
        params.append(f.handle)
    if f.since is not None:
        where.append("at >= ?")
        params.append(f.since)
    if f.actions:
        where.append(f"action IN ({','.join('?' * len(f.actions))})")
        params += f.actions
    if f.actor is not None:
        where.append("actor = ? COLLATE NOCASE")
        params.append(f.actor)
    sql = ("SELECT id, at, action, user_id, handle, draft_id, codes, detail, actor FROM audit"
           + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC")
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [{"id": r[0], "at": r[1], "action": r[2], "user_id": r[3], "handle": r[4],
             "draft_id": r[5], "codes": (r[6] or "").split(),
             "detail": json.loads(r[7]) if r[7] else {}, "actor": r[8]}
            for r in conn.execute(sql, params)]


def actions(conn: Conn) -> list[str]:
    """The actions the log holds, for a hint when a filter finds none."""
    return [r[0] for r in conn.execute("SELECT DISTINCT action FROM audit ORDER BY action")]


def latest_actor(conn: Conn, user_id: str | None, handle: str,
                 action: str) -> str | None:
    """Who wrote the newest `action` entry about a contact (under its user id,
    or its handle before X named it): who blocked them, who recorded their
    opt-out (`sync` when their own message did). None when no entry says."""
    row = conn.execute(
        "SELECT actor FROM audit WHERE action = ? AND (user_id = ? OR "
        "(user_id IS NULL AND handle = ? COLLATE NOCASE)) ORDER BY id DESC LIMIT 1",
        (action, user_id, handle)).fetchone()
    return None if row is None else row[0]
