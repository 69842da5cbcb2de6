"""Read models over conversations: inbox rows, read marks, digest queries."""

from __future__ import annotations

from dmtool.store.sql import Conn, Row


def inbox_rows(conn: Conn, *, include_done: bool, limit: int) -> list[Row]:
    """One row per conversation, open ones first, then by last activity. Columns:
    handle, name, state, opted_out_at, last_at, last_direction, last_text,
    last_human_direction (ignoring autoacks) and unread.

    The page is picked from the conversations_latest index first, then only its
    rows are filled in: the cost follows `limit`, not the size of the store."""
    done = """
        UNION ALL
        SELECT * FROM (SELECT rowid AS r, 1 AS grp, latest_at FROM conversations
                       WHERE state != 'open' ORDER BY latest_at DESC, rowid LIMIT :limit)"""
    return conn.execute(
        f"""
        SELECT c.handle, c.name, cv.state, c.opted_out_at, m.at AS last_at,
          m.direction AS last_direction, m.text AS last_text,
          -- An automatic acknowledgement is not a reply: they still wait for you.
          cv.human_direction AS last_human_direction,
          -- recorded_at: a message synced after you read the thread is still unread.
          (SELECT count(*) FROM messages u WHERE u.contact_id = c.id AND u.direction = 'in'
            AND u.recorded_at > COALESCE(cv.last_read_at, '')) AS unread
        FROM (SELECT * FROM (
                SELECT * FROM (SELECT rowid AS r, 0 AS grp, latest_at FROM conversations
                               WHERE state = 'open' ORDER BY latest_at DESC, rowid
                               LIMIT :limit)
                {done if include_done else ""})
              ORDER BY grp, latest_at DESC, r LIMIT :limit) page
        JOIN conversations cv ON cv.rowid = page.r
        JOIN contacts c ON c.id = cv.contact_id
        LEFT JOIN messages m ON m.id = cv.latest_id
        ORDER BY page.grp, page.latest_at DESC, page.r
        """, {"limit": limit}).fetchall()


def mark_read(conn: Conn, contact_id: int, now: str) -> None:
    conn.execute("UPDATE conversations SET last_read_at = ? WHERE contact_id = ?", (now, contact_id))


def set_state(conn: Conn, contact_id: int, state: str) -> int:
    return conn.execute("UPDATE conversations SET state = ? WHERE contact_id = ?",
                        (state, contact_id)).rowcount


def inbound_recorded_between(conn: Conn, since: str, until: str) -> list[Row]:
    """Inbound messages first recorded in (since, until]: handle, name, at, text.
    recorded_at, not at: a message synced late is news the first time we see it."""
    return conn.execute(
        "SELECT c.handle, c.name, m.at, m.text FROM messages m JOIN contacts c ON c.id = m.contact_id "
        "WHERE m.direction = 'in' AND m.recorded_at > ? AND m.recorded_at <= ? ORDER BY m.at",
        (since, until)).fetchall()


def waiting_for_reply(conn: Conn) -> list[Row]:
    """Open conversations whose last message (autoacks aside) is theirs: handle, name, at."""
    return conn.execute(
        """SELECT c.handle, c.name, cv.human_at AS at FROM conversations cv
           JOIN contacts c ON c.id = cv.contact_id
           WHERE cv.state = 'open' AND cv.human_direction = 'in' AND c.opted_out_at IS NULL
           ORDER BY cv.human_at""").fetchall()


def opt_outs_between(conn: Conn, since: str, until: str) -> list[Row]:
    return conn.execute(
        "SELECT handle, at, detail FROM audit WHERE action = 'opted_out' AND at > ? AND at <= ? "
        "ORDER BY at", (since, until)).fetchall()


def failed_sends_between(conn: Conn, since: str, until: str) -> list[Row]:
    return conn.execute(
        "SELECT d.id, c.handle, d.status, d.reason, d.updated_at FROM drafts d "
        "JOIN contacts c ON c.id = d.contact_id WHERE d.status IN ('failed', 'unknown') "
        "AND d.updated_at > ? AND d.updated_at <= ? ORDER BY d.updated_at", (since, until)).fetchall()


def conversation_ids(conn: Conn) -> set[str]:
    return {r[0] for r in conn.execute("SELECT id FROM conversations")}
