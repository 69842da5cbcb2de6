"""Read models over conversations: inbox rows, read marks, digest queries."""

from __future__ import annotations

import sqlite3


def inbox_rows(conn: sqlite3.Connection, *, include_done: bool, limit: int) -> list[sqlite3.Row]:
    """One row per conversation, open ones first, then by last activity. Columns:
    handle, name, state, opted_out_at, last_at, last_direction, last_text,
    last_human_direction (ignoring autoacks) and unread."""
    where = "" if include_done else "WHERE v.state = 'open'"
    return conn.execute(
        f"""
        SELECT * FROM (
          SELECT c.handle, c.name, cv.state, c.opted_out_at,
            (SELECT at FROM messages m WHERE m.contact_id = c.id ORDER BY at DESC, id DESC LIMIT 1)
              AS last_at,
            (SELECT direction FROM messages m WHERE m.contact_id = c.id ORDER BY at DESC, id DESC
              LIMIT 1) AS last_direction,
            (SELECT text FROM messages m WHERE m.contact_id = c.id ORDER BY at DESC, id DESC LIMIT 1)
              AS last_text,
            -- An automatic acknowledgement is not a reply: they still wait for you.
            (SELECT direction FROM messages m WHERE m.contact_id = c.id AND m.source != 'autoack'
              ORDER BY at DESC, id DESC LIMIT 1) AS last_human_direction,
            -- recorded_at: a message synced after you read the thread is still unread.
            (SELECT count(*) FROM messages m WHERE m.contact_id = c.id AND m.direction = 'in'
              AND m.recorded_at > COALESCE(cv.last_read_at, '')) AS unread
          FROM conversations cv JOIN contacts c ON c.id = cv.contact_id
        ) v {where}
        ORDER BY (v.state = 'open') DESC, v.last_at DESC
        LIMIT ?
        """, (limit,)).fetchall()


def mark_read(conn: sqlite3.Connection, contact_id: int, now: str) -> None:
    conn.execute("UPDATE conversations SET last_read_at = ? WHERE contact_id = ?", (now, contact_id))


def set_state(conn: sqlite3.Connection, contact_id: int, state: str) -> int:
    return conn.execute("UPDATE conversations SET state = ? WHERE contact_id = ?",
                        (state, contact_id)).rowcount


def inbound_recorded_between(conn: sqlite3.Connection, since: str, until: str) -> list[sqlite3.Row]:
    """Inbound messages first recorded in (since, until]: handle, name, at, text.
    recorded_at, not at: a message synced late is news the first time we see it."""
    return conn.execute(
        "SELECT c.handle, c.name, m.at, m.text FROM messages m JOIN contacts c ON c.id = m.contact_id "
        "WHERE m.direction = 'in' AND m.recorded_at > ? AND m.recorded_at <= ? ORDER BY m.at",
        (since, until)).fetchall()


def waiting_for_reply(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Open conversations whose last message (autoacks aside) is theirs: handle, name, at."""
    return conn.execute(
        """SELECT c.handle, c.name, m.at FROM conversations cv JOIN contacts c ON c.id = cv.contact_id
           JOIN messages m ON m.id = (SELECT id FROM messages x WHERE x.contact_id = c.id
                                       AND x.source != 'autoack' ORDER BY at DESC, id DESC LIMIT 1)
           WHERE cv.state = 'open' AND m.direction = 'in' AND c.opted_out_at IS NULL
           ORDER BY m.at""").fetchall()


def opt_outs_between(conn: sqlite3.Connection, since: str, until: str) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT handle, at, detail FROM audit WHERE action = 'opted_out' AND at > ? AND at <= ? "
        "ORDER BY at", (since, until)).fetchall()


def failed_sends_between(conn: sqlite3.Connection, since: str, until: str) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT d.id, c.handle, d.status, d.reason, d.updated_at FROM drafts d "
        "JOIN contacts c ON c.id = d.contact_id WHERE d.status IN ('failed', 'unknown') "
        "AND d.updated_at > ? AND d.updated_at <= ? ORDER BY d.updated_at", (since, until)).fetchall()


def conversation_ids(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT id FROM conversations")}
