"""Conversations, DM messages and public posts."""

from __future__ import annotations

from collections.abc import Iterable

from dmtool.store.sql import Conn, Row


def conversation_id_for(me_id: str, other_id: str) -> str:
    """X's id of a 1:1 conversation: the two user ids, smaller first (numerically)."""
    a, b = sorted((me_id, other_id), key=lambda s: (len(s), s))
    return f"{a}-{b}"


def senders(conn: Conn, contact_id: int) -> dict[str, str | None]:
    """DM event id -> who sent it, for this contact's drafts that went out (here,
    not in store/drafts.py: `thread` needs only this of the drafts)."""
    return {r[0]: r[1] for r in conn.execute(
        "SELECT dm_event_id, sent_by FROM drafts WHERE contact_id = ? AND dm_event_id IS NOT NULL",
        (contact_id,))}


def ensure_conversation(conn: Conn, conversation_id: str, contact_id: int) -> None:
    conn.execute("INSERT OR IGNORE INTO conversations (id, contact_id) VALUES (?, ?)",
                 (conversation_id, contact_id))


def add_message(conn: Conn, *, event_id: str | None, conversation_id: str | None,
                contact_id: int, direction: str, text: str, at: str, source: str, now: str,
                first_contact: bool = False, import_id: int | None = None) -> bool:
    """Store one DM once (keyed by X's event id). Returns True when it is new.
    `import_id`: the archive import that adds it (store/imports.py).

    A new inbound message reopens a conversation marked done and ends a snooze;
    last_at follows the newest message either way."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO messages (event_id, conversation_id, contact_id, direction, text, at, "
        "source, first_contact, recorded_at, import_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (event_id, conversation_id, contact_id, direction, text, at, source, int(first_contact), now,
         import_id))
    if cur.rowcount == 0:
        return False
    if conversation_id:
        ensure_conversation(conn, conversation_id, contact_id)
        # A new message from them reopens a conversation marked done; history
        # from an archive does not undo your choice.
        reopen = direction == "in" and source != "archive"
        conn.execute(
            "UPDATE conversations SET last_at = max(COALESCE(last_at, ''), ?), "
            "state = CASE WHEN ? THEN 'open' ELSE state END WHERE id = ?",
            (at, reopen, conversation_id))
        if reopen:
            # They wrote again: a snooze ends (not for a message sent before it).
            conn.execute("UPDATE conversations SET snoozed_until = NULL, snoozed_at = NULL "
                         "WHERE contact_id = ? AND snoozed_until IS NOT NULL AND snoozed_at <= ?",
                         (contact_id, at))
    return True


def add_post(conn: Conn, *, post_id: str, kind: str, author_id: str | None,
             text: str | None, at: str | None, in_reply_to_user_id: str | None,
             replied_to_id: str | None, conversation_id: str | None,
             import_id: int | None = None) -> bool:
    cur = conn.execute(
        "INSERT OR IGNORE INTO posts (id, kind, author_id, text, at, in_reply_to_user_id, "
        "replied_to_id, conversation_id, import_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (post_id, kind, author_id, text, at, in_reply_to_user_id, replied_to_id, conversation_id,
         import_id))
    return cur.rowcount > 0


def conversation_of(conn: Conn, contact_id: int) -> Row | None:
    return conn.execute("SELECT * FROM conversations WHERE contact_id = ? ORDER BY last_at DESC "
                        "LIMIT 1", (contact_id,)).fetchone()


def last_human_message(conn: Conn, contact_id: int) -> Row | None:
    """The contact's newest message that is not an automatic acknowledgement
    (the inbox's rule for who spoke last): direction, at, text; None if none."""
    return conn.execute(
        "SELECT direction, at, text FROM messages WHERE contact_id = ? AND source != 'autoack' "
        "ORDER BY at DESC, id DESC LIMIT 1", (contact_id,)).fetchone()


def public_exchanges(conn: Conn, user_ids: Iterable[str]) -> list[Row]:
    """Your public replies to these users that answer something they said to you:
    the reply answers their stored mention, or sits in the same thread after it.
    A reply to an unrelated post of theirs is not an exchange.

    Rows: id (your reply), at, text, user_id. `at` is THEIR side of the exchange
    (the latest mention answered): your own post must never renew their consent."""
    ids = list(dict.fromkeys(user_ids))
    rows: list[Row] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        rows += conn.execute(
            f"""SELECT o.id, max(m.at) AS at, o.text, o.in_reply_to_user_id AS user_id
                FROM posts o JOIN posts m
                  ON m.kind = 'mention' AND m.author_id = o.in_reply_to_user_id
                 AND (m.id = o.replied_to_id
                      OR (o.conversation_id IS NOT NULL AND m.conversation_id = o.conversation_id
                          AND m.at <= o.at))
                WHERE o.kind = 'own' AND o.in_reply_to_user_id IN ({marks})
                GROUP BY o.id ORDER BY at""", chunk).fetchall()
    return rows


def record_send(conn: Conn, *, user_id: str, at: str, text: str, first_contact: bool,
                kind: str, draft_id: int | None, event_id: str | None) -> None:
    """Add one of dmtool's own sends to the ledger the caps count (once per event)."""
    conn.execute(
        "INSERT OR IGNORE INTO sends (user_id, at, text, first_contact, kind, draft_id, event_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)", (user_id, at, text, int(first_contact), kind, draft_id,
                                         event_id))


def mark_own_send(conn: Conn, event_id: str, *, source: str,
                  first_contact: bool) -> None:
    """A sync may have stored our DM before the send recorded it: it is still ours."""
    conn.execute("UPDATE messages SET source = ?, first_contact = ? WHERE event_id = ?",
                 (source, int(first_contact), event_id))


def settle_old_archive_conversations(conn: Conn, *, before: str,
                                     skip: set[str], keep_waiting: bool = False) -> int:
    """Mark done the conversations an archive import just brought in (not those in
    `skip`, which existed before) that have been quiet since `before`: old
    history, not something to answer. State you set yourself is left alone.
    With `keep_waiting`, those whose last message (autoacks aside) is theirs
    stay open: `import archive --open`."""
    waiting = " AND human_direction IS NOT 'in'" if keep_waiting else ""
    rows = conn.execute("SELECT id FROM conversations WHERE state = 'open' AND last_at < ?"
                        + waiting, (before,)).fetchall()
    ids = [r[0] for r in rows if r[0] not in skip]
    for cid in ids:
        conn.execute("UPDATE conversations SET state = 'done' WHERE id = ?", (cid,))
    return len(ids)


def send_rows(conn: Conn, *, since: str, user_id: str | None = None,
              everyone_since: str | None = None,
              except_draft: int | None = None) -> list[tuple[str, str, str | None, int]]:
    """(at, user id, text, first_contact) of dmtool's sends since `since`: the
    ledger, plus drafts whose send is unsettled (they may have gone out). With
    `everyone_since`, only those to `user_id` and those since `everyone_since`.
    `except_draft`: leave out that draft's own send (a draft is never a
    duplicate of itself; another process may be sending it right now)."""
    from dmtool.models import UNSETTLED

    extra: tuple[str | None, ...] = ()
    if everyone_since is None:
        ledger, unsettled = "at >= ?", "d.send_started_at >= ?"
    else:
        ledger = "at >= ? AND (user_id = ? OR at >= ?)"
        unsettled = ("d.send_started_at >= ? AND (COALESCE(c.user_id, 'local:' || c.id) = ? "
                     "OR d.send_started_at >= ?)")
        extra = (user_id, everyone_since)
    own = -1 if except_draft is None else except_draft
    return conn.execute(
        f"SELECT at, user_id, text, first_contact FROM sends WHERE {ledger} "
        "AND draft_id IS NOT ? "
        "UNION ALL "
        "SELECT d.send_started_at, COALESCE(c.user_id, 'local:' || c.id), d.text, d.first_contact "
        "FROM drafts d JOIN contacts c ON c.id = d.contact_id "
        f"WHERE d.status IN (?, ?) AND {unsettled} AND d.id != ?",
        (since, *extra, own, *UNSETTLED, since, *extra, own)).fetchall()


def unanswered_counts(conn: Conn) -> dict[int, int]:
    """contact id -> outbound messages since their last inbound one."""
    return dict(conn.execute(
        "SELECT m.contact_id, count(*) FROM messages m WHERE m.direction = 'out' AND m.at > "
        "COALESCE((SELECT max(at) FROM messages i WHERE i.contact_id = m.contact_id "
        "AND i.direction = 'in'), '') GROUP BY m.contact_id").fetchall())
