"""Read models for `dmtool report`.

Every scan is bounded: messages are read through the (contact_id, at) index
one contact at a time (a skip-scan over contacts, so the cost follows the
messages in the period, not the whole history), the audit through its `at`
index, and open conversations with a few index seeks each.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dmtool.store.conversations import STATE_SQL
from dmtool.store.sql import Conn, Row

_CHUNK = 500  # ids per IN (...): well under SQLite's variable limit


def has_messages(conn: Conn) -> bool:
    return conn.execute("SELECT EXISTS (SELECT 1 FROM messages)").fetchone()[0] == 1


def messages_between(conn: Conn, since: str, until: str
                     ) -> Iterable[tuple[int, str, str, str]]:
    """(contact_id, direction, at, source) of every message with since <= at <
    until, by contact, then in time order (ties by id, the order they were stored)."""
    # CROSS JOIN keeps contacts as the outer loop: one index range per contact.
    return conn.execute(
        "SELECT m.contact_id, m.direction, m.at, m.source "
        "FROM contacts c CROSS JOIN messages m ON m.contact_id = c.id "
        "WHERE m.at >= ? AND m.at < ? ORDER BY m.contact_id, m.at, m.id", (since, until))


def last_human_direction_before(conn: Conn, contact_ids: Sequence[int],
                                before: str) -> dict[int, str | None]:
    """contact id -> direction of their last message before `before`, autoacks
    aside (None when there is none)."""
    out: dict[int, str | None] = {}
    for start in range(0, len(contact_ids), _CHUNK):
        chunk = list(contact_ids[start:start + _CHUNK])
        marks = ",".join("?" * len(chunk))
        out.update(conn.execute(
            f"""SELECT c.id, (SELECT p.direction FROM messages p WHERE p.contact_id = c.id
                              AND p.source != 'autoack' AND p.at < ?
                              ORDER BY p.at DESC, p.id DESC LIMIT 1)
                FROM contacts c WHERE c.id IN ({marks})""", (before, *chunk)).fetchall())
    return out


def open_contact_ids(conn: Conn, contact_ids: Sequence[int]) -> set[int]:
    """Those of these contacts with an open conversation whose state is open
    (not opted out, in opt-out review, blocked or closed to DMs): the ones the
    inbox says are waiting when they wrote last."""
    found: set[int] = set()
    for start in range(0, len(contact_ids), _CHUNK):
        chunk = list(contact_ids[start:start + _CHUNK])
        marks = ",".join("?" * len(chunk))
        # Driven from the contacts' own conversation rows (conversations_contact):
        # a correlated EXISTS on `state` lets SQLite pick the (state, ...) index
        # and scan every open conversation once per contact.
        found.update(r[0] for r in conn.execute(
            f"""SELECT DISTINCT cv.contact_id FROM conversations cv INDEXED BY conversations_contact
                JOIN contacts c ON c.id = cv.contact_id
                WHERE cv.contact_id IN ({marks}) AND cv.state = 'open'
                  AND ({STATE_SQL}) = 'open'""", chunk))
    return found


def open_conversation_tails(conn: Conn) -> list[Row]:
    """One row per contact with an open conversation whose state is open:
    last_direction and last_at of the last message (autoacks aside), and
    wait_at, when they wrote last, the first of their messages since your last
    reply (when they started waiting). The conversation rows keep the contact's
    last message apart from autoacks (human_*, migration 6)."""
    return conn.execute(
        f"""
        SELECT t.contact_id, t.human_direction AS last_direction, t.human_at AS last_at,
          CASE WHEN t.human_direction = 'in' THEN (
            SELECT min(i.at) FROM messages i WHERE i.contact_id = t.contact_id
              AND i.direction = 'in'
              AND i.at >= COALESCE((SELECT o.at FROM messages o WHERE o.contact_id = t.contact_id
                                    AND o.direction = 'out' AND o.source != 'autoack'
                                    ORDER BY o.at DESC, o.id DESC LIMIT 1), '')
          ) END AS wait_at
        FROM (SELECT DISTINCT contact_id, human_direction, human_at FROM conversations
              WHERE state = 'open' AND human_id IS NOT NULL) t
        JOIN contacts c ON c.id = t.contact_id
        WHERE ({STATE_SQL}) = 'open'
        """).fetchall()


def opt_outs_recorded_since(conn: Conn, since: str) -> list[Row]:
    """'opted_out' audit entries recorded at or after `since`: at, detail,
    user_id, handle. An opt-out is recorded when dmtool learns of it, never
    before it happened, so this bounds the opt-outs that happened since then."""
    return conn.execute(
        "SELECT at, detail, user_id, handle FROM audit WHERE at >= ? AND action = 'opted_out' "
        "ORDER BY at", (since,)).fetchall()
