"""The queue of inbound DMs whose hook has not run yet (migration 7's hook_queue)."""

from __future__ import annotations

from typing import Any

from dmtool.store.sql import Conn


def queue(conn: Conn, event_id: str, hook: str, *, now: str) -> None:
    """Queue a stored message for `hook`, in the transaction that stored it."""
    conn.execute("INSERT OR IGNORE INTO hook_queue (message_id, hook, queued_at) "
                 "SELECT id, ?, ? FROM messages WHERE event_id = ?", (hook, now, event_id))


def pending(conn: Conn, hook: str) -> list[int]:
    """Message ids waiting for `hook`, oldest message first."""
    return [r[0] for r in conn.execute(
        "SELECT q.message_id FROM hook_queue q JOIN messages m ON m.id = q.message_id "
        "WHERE q.hook = ? ORDER BY m.at, m.id", (hook,))]


def claim(conn: Conn, message_id: int) -> bool:
    """Take one message off the queue before its hook runs: True for the one
    process that got it (a hook runs at most once, even with two syncs)."""
    return conn.execute("DELETE FROM hook_queue WHERE message_id = ?", (message_id,)).rowcount == 1


def drop(conn: Conn, hook: str) -> int:
    """Forget what waits for a hook that is no longer configured."""
    return conn.execute("DELETE FROM hook_queue WHERE hook = ?", (hook,)).rowcount


def message(conn: Conn, message_id: int) -> dict[str, Any] | None:
    """What a hook is told about one message: the message, its contact's row
    and whose turn it is in the conversation (the newest message that is not
    an autoack, as the inbox reads it)."""
    cur = conn.execute(
        "SELECT m.event_id, m.text, m.at, c.id AS contact_id, c.handle, c.user_id, c.name, "
        "c.blocked_at, c.opted_out_at, c.optout_review_at, c.dm_closed_at, "
        "(SELECT v.human_direction FROM conversations v WHERE v.contact_id = c.id "
        " ORDER BY v.human_at DESC LIMIT 1) AS human_direction "
        "FROM messages m JOIN contacts c ON c.id = m.contact_id WHERE m.id = ?",
        (message_id,))
    row = cur.fetchone()
    return None if row is None else dict(zip([d[0] for d in cur.description], row, strict=True))
