"""`dmtool report`: activity over the last N days, from the local record only.

What is measured (docs/guide.md says the same in plain words):

- The period is N whole days ending today, in the display time zone
  (display.timezone, else TZ, else the system's): from midnight N-1 days ago
  to now. Messages are counted on the local day of their `at` time (a day
  with a DST change is 23 or 25 hours long).
- Messages in and out per day. "out" is everything sent from your account,
  automatic acknowledgements included (they are also counted on their own).
- Time to first reply. A *wait* starts with a message from them that follows
  one of yours (autoacks do not count as yours) or opens the conversation; it
  ends with your next message that is not an autoack. Only waits that started
  in the period are measured. Answered waits give the median and the 90th
  percentile (linear interpolation between ranks, as spreadsheets' PERCENTILE.INC
  does); unanswered ones are counted apart: still open (the inbox shows them as
  needing a reply) or closed (marked done, or they opted out).
- Open conversations, now, by age: those waiting for you are aged from the
  first message of theirs you have not answered (how long they have waited,
  not since their latest nudge); those waiting for them from your last message.
  Only contacts whose state is open count (as in the inbox): not those who
  opted out or are in opt-out review, nor those blocked or closed to your DMs.
- Opt-outs that happened in the period (from the audit log, by the time of the
  STOP or of your confirmation, not of the sync that found it).
- What dmtool's requests to X cost in the period, and per conversation
  answered (one with at least one message of yours in it): an estimate from
  the request ledger (services/budget.py `period_cost`), which begins at the
  upgrade that brought it (`cost.since`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import sub
from typing import TYPE_CHECKING, Any

from dmtool.localtime import UTC_ZONE, DisplayZone
from dmtool.store import report as rstore
from dmtool.store.sql import Conn
from dmtool.timeutil import fmt, parse

if TYPE_CHECKING:
    from dmtool.services.budget import Cost
    from dmtool.services.report_by_operator import OperatorStats

# (since, until) -> what the period's requests to X cost (services/budget.py).
CostOf = Callable[[datetime, datetime], "Cost"]

DAY = 86400

# (label, lower bound in days, upper bound in days or None). Chosen to match
# how people think about a reply they owe: today, this week, this month, lost.
AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("<1d", 0, 1), ("1d-3d", 1, 3), ("3d-7d", 3, 7), ("7d-30d", 7, 30), ("30d+", 30, None))

MAX_DAYS = 3650  # ten years: the command line refuses more (cli/params.py DAYS_MAX)


@dataclass
class DayCount:
    date: str  # YYYY-MM-DD, in the report's zone
    inbound: int = 0
    outbound: int = 0
    autoack: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"date": self.date, "in": self.inbound, "out": self.outbound,
                "autoack": self.autoack}


@dataclass
class FirstReply:
    answered_seconds: list[float] = field(default_factory=list)  # sorted
    unanswered_open: int = 0
    unanswered_closed: int = 0

    @property
    def waits(self) -> int:
        return len(self.answered_seconds) + self.unanswered

    @property
    def unanswered(self) -> int:
        return self.unanswered_open + self.unanswered_closed

    @property
    def median(self) -> float | None:
        return percentile(self.answered_seconds, 0.5)

    @property
    def p90(self) -> float | None:
        return percentile(self.answered_seconds, 0.9)

    def to_dict(self) -> dict[str, Any]:
        return {"waits": self.waits, "answered": len(self.answered_seconds),
                "unanswered": self.unanswered, "unanswered_open": self.unanswered_open,
                "unanswered_closed": self.unanswered_closed,
                "median_seconds": _seconds(self.median), "p90_seconds": _seconds(self.p90)}


@dataclass
class AgeBucket:
    label: str
    min_seconds: int
    max_seconds: int | None  # exclusive; None: no upper bound
    waiting_for_you: int = 0
    waiting_for_them: int = 0

    def holds(self, seconds: float) -> bool:
        return seconds >= self.min_seconds and (self.max_seconds is None
                                                or seconds < self.max_seconds)

    def to_dict(self) -> dict[str, Any]:
        return {"age": self.label, "min_seconds": self.min_seconds,
                "max_seconds": self.max_seconds, "waiting_for_you": self.waiting_for_you,
                "waiting_for_them": self.waiting_for_them}


@dataclass
class Report:
    days: int
    since: datetime
    until: datetime
    by_day: list[DayCount]
    first_reply: FirstReply
    open_by_age: list[AgeBucket]
    opt_outs: int
    has_messages: bool
    timezone: str = "UTC"  # the zone of the day buckets
    by_operator: list[OperatorStats] | None = None  # --by-operator (report_by_operator.py)
    cost: Cost | None = None

    @property
    def empty(self) -> bool:
        """Nothing recorded at all (not merely a quiet period)."""
        return not self.has_messages and self.opt_outs == 0

    def totals(self) -> DayCount:
        return DayCount("total", sum(d.inbound for d in self.by_day),
                        sum(d.outbound for d in self.by_day), sum(d.autoack for d in self.by_day))

    def to_dict(self) -> dict[str, Any]:
        t = self.totals()
        return {
            "days": self.days, "since": fmt(self.since), "until": fmt(self.until),
            "timezone": self.timezone,
            "messages": {"in": t.inbound, "out": t.outbound, "autoack": t.autoack,
                         "by_day": [d.to_dict() for d in self.by_day]},
            "first_reply": self.first_reply.to_dict(),
            "open_conversations": {
                "waiting_for_you": sum(b.waiting_for_you for b in self.open_by_age),
                "waiting_for_them": sum(b.waiting_for_them for b in self.open_by_age),
                "by_age": [b.to_dict() for b in self.open_by_age]},
            "opt_outs": self.opt_outs,
            "cost": self.cost.to_dict() if self.cost is not None else None,
        } | ({} if self.by_operator is None else
             {"by_operator": [o.to_dict() for o in self.by_operator]})


def percentile(sorted_values: list[float], p: float) -> float | None:
    """The p-quantile (0..1) with linear interpolation between ranks; None when empty."""
    if not sorted_values:
        return None
    rank = p * (len(sorted_values) - 1)
    lo = int(rank)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (rank - lo)


def _seconds(value: float | None) -> float | None:
    """Durations in JSON: seconds, to the millisecond the store keeps."""
    return None if value is None else round(value, 3)


def period(days: int, now: datetime, zone: DisplayZone = UTC_ZONE
           ) -> tuple[list[str], list[datetime]]:
    """The period's dates (YYYY-MM-DD, the last `days` days in `zone`, today
    included) and the days+1 instants (UTC) they start and end at: midnight
    in `zone`, DST included."""
    today = zone.today(now)
    days_ = [today - timedelta(days=days - 1 - i) for i in range(days + 1)]
    return [d.isoformat() for d in days_[:-1]], [zone.midnight(d) for d in days_]


def build_report(conn: Conn, days: int, now: datetime,
                 zone: DisplayZone = UTC_ZONE, *, by_operator: bool = False,
                 cost_of: CostOf | None = None) -> Report:
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be 1..{MAX_DAYS}")
    dates, bounds = period(days, now, zone)
    s, e = fmt(bounds[0]) or "", fmt(bounds[-1]) or ""
    by_day = {d: DayCount(d) for d in dates}
    first_reply = _count_messages_and_waits(conn, s, e, list(by_day.values()),
                                            [fmt(b) or "" for b in bounds])
    report = Report(days=days, since=bounds[0], until=now, by_day=list(by_day.values()),
                    first_reply=first_reply, open_by_age=_open_by_age(conn, now),
                    opt_outs=_opt_outs(conn, s, e), has_messages=rstore.has_messages(conn),
                    timezone=zone.name,
                    cost=cost_of(bounds[0], now) if cost_of is not None else None)
    if by_operator:
        from dmtool.services.report_by_operator import by_operator as per_operator

        report.by_operator = per_operator(conn, s, e)
    return report


# One wait in a contact's sequence (store/report.sequences): the first of a
# run of their messages, then your next one if there is one (autoacks are not
# in the sequence: whoever was waiting still is). Compiled when first used.
_WAIT = r"in([^a-z]+)(?:in[^a-z]+)*(?:out([^a-z]+))?"


def _count_messages_and_waits(conn: Conn, since: str, until: str,
                              by_day: list[DayCount], bounds: list[str]) -> FirstReply:
    """The daily counts, and the waits. `bounds` are the days' starts (and the
    last one's end) as stored times. The database counts each day's messages
    and hands each contact's messages as one text of directions and times;
    the waits are read from it by one regular expression (SQLite's window
    functions, tried, took longer than the row-by-row pass they would replace)."""
    for day, start, stop in zip(by_day, bounds, bounds[1:], strict=False):
        total, day.inbound, day.autoack = rstore.day_counts(conn, start, stop)
        day.outbound = total - day.inbound
    waits: list[tuple[str, str]] = []  # (their first message, your reply or "")
    unanswered: dict[int, int] = {}  # contact -> their last wait, when it has no reply
    opening: dict[int, int] = {}  # contact -> their first wait, when it opens the period
    for contact_id, seq in rstore.sequences(conn, since, until):
        if seq.startswith("in"):
            opening[contact_id] = len(waits)
        found = re.findall(_WAIT, seq)
        waits += found
        if found and not found[-1][1]:
            unanswered[contact_id] = len(waits) - 1
    # A first message in the period that follows one of theirs before it
    # continues a wait that started earlier: not this period's.
    before = rstore.last_human_direction_before(conn, list(opening), since) if opening else {}
    for contact_id, i in opening.items():
        if before.get(contact_id) == "in":
            waits[i] = ("", "")
            if unanswered.get(contact_id) == i:
                del unanswered[contact_id]

    result = FirstReply()
    # Stored times are RFC 3339 text that fromisoformat reads as is (3.11+);
    # timeutil.parse's normalising costs more than the rest of a long period.
    answered = [w for w in waits if w[1]]
    if answered:
        at, reply = zip(*answered, strict=True)
        instant = datetime.fromisoformat
        result.answered_seconds = sorted(map(timedelta.total_seconds,
                                             map(sub, map(instant, reply), map(instant, at))))
    still_open = rstore.open_contact_ids(conn, list(unanswered)) if unanswered else set()
    result.unanswered_open = sum(1 for c in unanswered if c in still_open)
    result.unanswered_closed = len(unanswered) - result.unanswered_open
    return result


def _open_by_age(conn: Conn, now: datetime) -> list[AgeBucket]:
    buckets = [AgeBucket(label, lo * DAY, None if hi is None else hi * DAY)
               for label, lo, hi in AGE_BUCKETS]
    for r in rstore.open_conversation_tails(conn):
        waiting_for_you = r["last_direction"] == "in"
        since = r["wait_at"] if waiting_for_you and r["wait_at"] else r["last_at"]
        age = max(0.0, (now - parse(since)).total_seconds())
        bucket = next(b for b in buckets if b.holds(age))
        if waiting_for_you:
            bucket.waiting_for_you += 1
        else:
            bucket.waiting_for_them += 1
    return buckets


def _opt_outs(conn: Conn, since: str, until: str) -> int:
    """People who opted out in the period: one each, however many times they
    wrote STOP (each STOP read is its own audit entry)."""
    people: set[str] = set()
    for r in rstore.opt_outs_recorded_since(conn, since):
        detail = json.loads(r["detail"]) if r["detail"] else {}
        # When they opted out; the entry's own time is when dmtool learnt it
        # (an archive import can bring in a STOP from years ago).
        at = detail.get("at") or r["at"]
        if since <= at < until:
            people.add(r["user_id"] or f"@{(r['handle'] or '').lower()}")
    return len(people)
