"""Read models for `dmtool report`.

Every scan is bounded and no message comes back as a row of its own: the
per-day counts are aggregates over the (at, direction, source) index, one
range per day; the waits come as one text per contact, its messages'
directions and times in order, from the (contact_id, at, id, direction,
source) index (a range per contact, read from the index alone); the audit
through its `at` index; open conversations with a few index seeks each.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from dmtool.store.conversations import STATE_SQL
from dmtool.store.sql import Conn, Row

_CHUNK = 500  # ids per IN (...): well under SQLite's variable limit


def has_messages(conn: Conn) -> bool:
    return conn.execute("SELECT EXISTS (SELECT 1 FROM messages)").fetchone()[0] == 1


def day_counts(conn: Conn, start: str, stop: str) -> tuple[int, int, int]:
    """(messages, inbound, outbound autoacks) with start <= at < stop."""
    total, inbound, autoack = conn.execute(
        "SELECT count(*), sum(CASE WHEN direction = 'in' THEN 1 ELSE 0 END), "
        "sum(CASE WHEN direction != 'in' AND source = 'autoack' THEN 1 ELSE 0 END) "
        "FROM messages INDEXED BY messages_at_kind WHERE at >= ? AND at < ?",
        (start, stop)).fetchone()
    return total, inbound or 0, autoack or 0


def sequences(conn: Conn, since: str, until: str) -> Iterator[tuple[int, str]]:
    """(contact id, sequence) for each contact with messages, autoacks aside,
    in since <= at < until: the sequence is their direction and time, one
    after the other, in time order (ties by id, the order they were stored):
    "in2026-03-01T10:00:00.000Zout2026-03-01T11:00:00.000Z...". Times hold
    no lowercase letter, so the text reads back unambiguously."""
    cur = conn.execute(
        "SELECT c.id, (SELECT group_concat(x, '') FROM ("
        "  SELECT m.direction || m.at AS x FROM messages m INDEXED BY messages_contact_at_kind"
        "  WHERE m.contact_id = c.id AND m.at >= ? AND m.at < ? AND m.source != 'autoack'"
        "  ORDER BY m.at, m.id)) AS seq "
        "FROM contacts c", (since, until))
    cur.row_factory = None  # plain tuples
    return (r for r in cur if r[1])


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
