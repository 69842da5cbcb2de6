"""Claims: soft locks on a conversation, one per contact (services/claims.py).

A claim whose `until` has passed is no claim: every read takes `now` and
ignores it; the next claim by anyone replaces the row.
"""

from __future__ import annotations

from dataclasses import dataclass

from dmtool.store.sql import Conn


@dataclass(frozen=True)
class Claim:
    contact_id: int
    operator: str
    claimed_at: str
    until: str
    minutes: int


_COLS = "contact_id, operator, claimed_at, until, minutes"


def current(conn: Conn, contact_id: int, now: str) -> Claim | None:
    """The contact's claim, unless it has expired."""
    row = conn.execute(f"SELECT {_COLS} FROM claims WHERE contact_id = ? AND until > ?",
                       (contact_id, now)).fetchone()
    return None if row is None else Claim(*row)


def put(conn: Conn, contact_id: int, operator: str, *, now: str, until: str,
        minutes: int) -> None:
    """Claim (or claim again, or take over) the contact's conversation."""
    conn.execute(
        f"INSERT INTO claims ({_COLS}) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (contact_id) DO UPDATE SET operator = excluded.operator, "
        "claimed_at = excluded.claimed_at, until = excluded.until, minutes = excluded.minutes",
        (contact_id, operator, now, until, minutes))


def extend(conn: Conn, contact_id: int, operator: str, *, now: str,
           until: str) -> bool:
    """Push back the end of this operator's live claim (a draft renews it)."""
    return conn.execute(
        "UPDATE claims SET until = ? WHERE contact_id = ? AND operator = ? COLLATE NOCASE "
        "AND until > ? AND until < ?", (until, contact_id, operator, now, until)).rowcount == 1


def delete(conn: Conn, contact_id: int) -> bool:
    return conn.execute("DELETE FROM claims WHERE contact_id = ?", (contact_id,)).rowcount == 1


def contacts_of(conn: Conn, operator: str, now: str) -> list[tuple[str, str]]:
    """(handle, until) of the live claims this operator holds, ending soonest first."""
    return [(r[0], r[1]) for r in conn.execute(
        "SELECT c.handle, k.until FROM claims k JOIN contacts c ON c.id = k.contact_id "
        "WHERE k.operator = ? COLLATE NOCASE AND k.until > ? ORDER BY k.until",
        (operator, now))]
