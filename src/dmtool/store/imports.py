"""Archive imports in progress (migration 7): who they hold back, and undoing one.

An import records itself and every participant of its archive before it
writes any message, and is complete only once every row is written. Until
then the gate refuses its participants (E_IMPORT_INCOMPLETE): the part not yet
written may hold their STOP. Rows an import adds carry its id.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dmtool.store.sql import Conn

_PENDING = "completed_at IS NULL"


def start(conn: Conn, *, fingerprint: str, archive: str, account: str, now: str,
          participants: Iterable[str]) -> int:
    """Record an import of this archive as pending, with its participants; a
    rerun of the same archive (same fingerprint) continues the pending one."""
    row = conn.execute(f"SELECT id FROM archive_imports WHERE fingerprint = ? AND {_PENDING} "
                       "ORDER BY id LIMIT 1", (fingerprint,)).fetchone()
    if row is not None:
        import_id = int(row[0])
        conn.execute("UPDATE archive_imports SET archive = ? WHERE id = ?", (archive, import_id))
    else:
        import_id = int(conn.execute(
            "INSERT INTO archive_imports (fingerprint, archive, account, started_at) "
            "VALUES (?, ?, ?, ?)", (fingerprint, archive, account, now)).lastrowid or 0)
    conn.executemany("INSERT OR IGNORE INTO import_participants (user_id, import_id) VALUES (?, ?)",
                     ((u, import_id) for u in participants))
    return import_id


def complete(conn: Conn, import_id: int, *, now: str) -> None:
    """Every row is written: its participants are no longer held back."""
    conn.execute("UPDATE archive_imports SET completed_at = ? WHERE id = ?", (now, import_id))
    conn.execute("DELETE FROM import_participants WHERE import_id = ?", (import_id,))


def pending_archive(conn: Conn, user_id: str | None) -> str | None:
    """The archive of an incomplete import this person took part in (the oldest), or None."""
    if not user_id:
        return None
    row = conn.execute(
        f"SELECT a.archive FROM import_participants p JOIN archive_imports a ON a.id = p.import_id "
        f"WHERE p.user_id = ? AND a.{_PENDING} ORDER BY a.id LIMIT 1", (user_id,)).fetchone()
    return None if row is None else str(row[0])


def pending_by_user(conn: Conn) -> dict[str, str]:
    """user id -> archive, for everyone an incomplete import holds back."""
    out: dict[str, str] = {}
    for user_id, archive in conn.execute(
            f"SELECT p.user_id, a.archive FROM import_participants p JOIN archive_imports a "
            f"ON a.id = p.import_id WHERE a.{_PENDING} ORDER BY a.id DESC"):
        out[user_id] = archive  # the oldest import wins, as in pending_archive
    return out


def pending(conn: Conn) -> list[dict[str, Any]]:
    """The incomplete imports, oldest first, with how much each holds and wrote."""
    return [{"id": r[0], "archive": r[1], "account": r[2], "started_at": r[3],
             "participants": r[4], "messages": r[5]} for r in conn.execute(
        f"SELECT a.id, a.archive, a.account, a.started_at, "
        f"(SELECT count(*) FROM import_participants p WHERE p.import_id = a.id), "
        f"(SELECT count(*) FROM messages m WHERE m.import_id = a.id) "
        f"FROM archive_imports a WHERE a.{_PENDING} ORDER BY a.id")]


def mark_contact(conn: Conn, contact_id: int, import_id: int) -> None:
    """A contact this import created (so that discarding it can remove it)."""
    conn.execute("UPDATE contacts SET import_id = ? WHERE id = ? AND import_id IS NULL",
                 (import_id, contact_id))


def adopt_message(conn: Conn, event_id: str, import_id: int) -> None:
    """A message another incomplete import wrote, which this archive holds too:
    it becomes this import's, so that discarding the other never removes it."""
    conn.execute(f"UPDATE messages SET import_id = ? WHERE event_id = ? AND import_id IN "
                 f"(SELECT id FROM archive_imports WHERE {_PENDING} AND id != ?)",
                 (import_id, event_id, import_id))


def adopt_post(conn: Conn, post_id: str, import_id: int) -> None:
    """As adopt_message, for one of your posts."""
    conn.execute(f"UPDATE posts SET import_id = ? WHERE id = ? AND import_id IN "
                 f"(SELECT id FROM archive_imports WHERE {_PENDING} AND id != ?)",
                 (import_id, post_id, import_id))


def discard(conn: Conn, import_id: int) -> dict[str, int]:
    """Remove what an incomplete import wrote: its messages and posts, the
    consent evidence they gave, the conversations and contacts it created that
    hold nothing else. What people said stays: an opt-out or review it
    recorded, and its audit entries. Then the import is forgotten."""
    conversations = [r[0] for r in conn.execute(
        "SELECT DISTINCT conversation_id FROM messages WHERE import_id = ? "
        "AND conversation_id IS NOT NULL", (import_id,))]
    evidence = conn.execute(
        "DELETE FROM evidence WHERE (kind = 'inbound_dm' AND ref IN "
        "  (SELECT event_id FROM messages WHERE import_id = ?1 AND event_id IS NOT NULL)) "
        "OR (kind = 'public_exchange' AND ref IN (SELECT id FROM posts WHERE import_id = ?1))",
        (import_id,)).rowcount
    messages = conn.execute("DELETE FROM messages WHERE import_id = ?", (import_id,)).rowcount
    posts = conn.execute("DELETE FROM posts WHERE import_id = ?", (import_id,)).rowcount
    for cid in conversations:
        conn.execute("DELETE FROM conversations WHERE id = ? AND NOT EXISTS "
                     "(SELECT 1 FROM messages WHERE conversation_id = ?)", (cid, cid))
    contacts = conn.execute(
        "DELETE FROM contacts WHERE import_id = ? AND opted_out_at IS NULL AND blocked_at IS NULL "
        "AND optout_review_text IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM messages WHERE contact_id = contacts.id) "
        "AND NOT EXISTS (SELECT 1 FROM evidence WHERE contact_id = contacts.id) "
        "AND NOT EXISTS (SELECT 1 FROM drafts WHERE contact_id = contacts.id) "
        "AND NOT EXISTS (SELECT 1 FROM notes WHERE contact_id = contacts.id) "
        "AND NOT EXISTS (SELECT 1 FROM contact_tags WHERE contact_id = contacts.id)",
        (import_id,)).rowcount
    conn.execute("DELETE FROM archive_imports WHERE id = ?", (import_id,))
    return {"messages": messages, "posts": posts, "evidence": evidence, "contacts": contacts}


def any_pending(conn: Conn) -> bool:
    """Is any archive import incomplete?"""
    return conn.execute(f"SELECT EXISTS (SELECT 1 FROM archive_imports WHERE {_PENDING})"
                        ).fetchone()[0] == 1
