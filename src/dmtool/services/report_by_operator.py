"""`report --by-operator` (issue 15 point 8): per person, over the report's period.

- sent: drafts they sent (whoever started the send; automatic
  acknowledgements are the `autoack` operator's);
- approved: approvals they gave (later voided ones included: the work was done);
- time to first reply: the waits that started in the period and that one of
  their sends answered (the report's own rule for a wait), their median.
  A reply sent outside dmtool has no operator and is not counted here.

Separate from the report's aggregation, which only calls `by_operator`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dmtool.store import operators as ostore
from dmtool.store.sql import Conn


@dataclass
class OperatorStats:
    operator: str | None  # None: sends from before dmtool recorded who sent them
    sent: int = 0
    approved: int = 0
    answered_seconds: list[float] = field(default_factory=list)  # sorted

    @property
    def median(self) -> float | None:
        s = self.answered_seconds
        if not s:
            return None
        mid = len(s) // 2
        return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2

    def to_dict(self) -> dict[str, Any]:
        median = self.median
        return {"operator": self.operator, "sent": self.sent, "approved": self.approved,
                "first_reply": {"answered": len(self.answered_seconds),
                                "median_seconds": None if median is None else round(median, 3)}}


def by_operator(conn: Conn, since: str, until: str) -> list[OperatorStats]:
    """One row per operator who sent, approved or answered in [since, until),
    by name (the unrecorded last)."""
    rows: dict[str | None, OperatorStats] = {}

    def row(name: str | None) -> OperatorStats:
        return rows.setdefault(name, OperatorStats(name))

    for name, n in ostore.sends_by(conn, since, until).items():
        row(name).sent = n
    for name, n in ostore.approvals_by(conn, since, until).items():
        row(name).approved = n
    instant = datetime.fromisoformat
    for r in ostore.replies(conn, since, until):
        if r["prev"] == "in" and r["wait_at"] and since <= r["wait_at"] < until:
            row(r["sent_by"]).answered_seconds.append(
                (instant(r["reply_at"]) - instant(r["wait_at"])).total_seconds())
    for stats in rows.values():
        stats.answered_seconds.sort()
    return sorted(rows.values(), key=lambda s: (s.operator is None, (s.operator or "").casefold()))
