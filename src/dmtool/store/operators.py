"""Read models for `report --by-operator`: who sent, approved and answered.

Bounded like the rest of the report: sends through drafts' status index,
approvals through the audit's `at` index, and for each of dmtool's sends in
the period a few seeks on messages_contact_at.
"""

from __future__ import annotations

from dmtool.store.sql import Conn, Row


def sends_by(conn: Conn, since: str, until: str) -> dict[str | None, int]:
    """sender -> drafts sent in [since, until) (None: not recorded)."""
    return dict(conn.execute(
        "SELECT sent_by, count(*) FROM drafts WHERE status = 'sent' AND sent_at >= ? "
        "AND sent_at < ? GROUP BY sent_by", (since, until)).fetchall())


def approvals_by(conn: Conn, since: str, until: str) -> dict[str | None, int]:
    """approver -> approvals given in [since, until), voided ones included."""
    return dict(conn.execute(
        "SELECT actor, count(*) FROM audit WHERE at >= ? AND at < ? AND action = 'approved' "
        "GROUP BY actor", (since, until)).fetchall())


def replies(conn: Conn, since: str, until: str) -> list[Row]:
    """dmtool's sends in [since, until) that are not autoacks: sent_by, reply_at,
    prev (the direction of the contact's message before it, autoacks aside)
    and wait_at (their first message since your last one before it: when they
    began waiting). A first reply is one whose prev is 'in'."""
    return conn.execute(
        """
        SELECT r.sent_by, r.reply_at, r.prev,
          (SELECT min(i.at) FROM messages i WHERE i.contact_id = r.contact_id
             AND i.direction = 'in' AND i.at >= COALESCE(r.last_out, '')
             AND i.at <= r.reply_at) AS wait_at
        FROM (
          SELECT d.sent_by, m.contact_id, m.at AS reply_at,
            (SELECT p.direction FROM messages p WHERE p.contact_id = m.contact_id
               AND p.source != 'autoack' AND p.at <= m.at
               AND (p.at < m.at OR p.id < m.id)
               ORDER BY p.at DESC, p.id DESC LIMIT 1) AS prev,
            (SELECT max(o.at) FROM messages o WHERE o.contact_id = m.contact_id
               AND o.direction = 'out' AND o.source != 'autoack' AND o.at <= m.at
               AND (o.at < m.at OR o.id < m.id)) AS last_out
          FROM drafts d JOIN messages m ON m.event_id = d.dm_event_id
          WHERE d.status = 'sent' AND d.sent_at >= ? AND d.sent_at < ?
            AND m.direction = 'out' AND m.source != 'autoack'
        ) r
        """, (since, until)).fetchall()
