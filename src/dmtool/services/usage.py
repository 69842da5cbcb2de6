"""`dmtool usage`: what dmtool's requests to X cost, read from the ledger
(store/ledger.py), priced with x.price.* (`report`'s cost is
budget.period_cost).

Days are UTC days and months UTC calendar months, as X counts them. The
ledger starts at the upgrade that brought it: `since` says when its data
begins. Only the profile's own backend is counted (a sandbox profile shows
its sandbox requests). It is an estimate: budget.ESTIMATE_NOTE says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from dmtool.errors import UsageError
from dmtool.services import budget
from dmtool.store import ledger as lstore

if TYPE_CHECKING:
    from dmtool.store.sql import Conn

MAX_DAYS = 3650
_MONTH = re.compile(r"(\d{4})-(\d{2})")
FAMILY_NAMES = {"dm_read": "reading DMs", "dm_send": "sending DMs",
                "timelines": "mentions and posts", "users": "user lookups",
                "auth": "token requests"}


def _units_dict(units: lstore.Units, prices: budget.Prices) -> dict[str, Any]:
    return {"requests": units.requests, "units": dict(units.raw),
            "billable": dict(units.billable), "usd": round(prices.cost(units.billable), 6)}


@dataclass
class Day:
    date: str
    families: dict[str, lstore.Units] = field(default_factory=dict)

    def total(self) -> lstore.Units:
        out = lstore.Units()
        for u in self.families.values():
            out.add(u)
        return out


@dataclass
class Usage:
    first_day: str
    last_day: str
    month: str  # YYYY-MM: the month shown (the current one unless --month)
    backend: str
    since: str | None  # when the ledger's data begins (None: no data yet)
    days: list[Day]
    month_units: lstore.Units
    periods: list[budget.Period]
    prices: budget.Prices

    def families(self) -> dict[str, lstore.Units]:
        out: dict[str, lstore.Units] = {}
        for d in self.days:
            for f, u in d.families.items():
                out.setdefault(f, lstore.Units()).add(u)
        return dict(sorted(out.items()))

    def total(self) -> lstore.Units:
        out = lstore.Units()
        for d in self.days:
            out.add(d.total())
        return out

    def to_dict(self) -> dict[str, Any]:
        p = self.prices
        return {
            "estimate": True, "note": budget.ESTIMATE_NOTE, "backend": self.backend,
            "since": self.since, "first_day": self.first_day, "last_day": self.last_day,
            "days": [{"date": d.date, **_units_dict(d.total(), p),
                      "families": [{"family": f, **_units_dict(u, p)}
                                   for f, u in sorted(d.families.items())]}
                     for d in self.days],
            "total": _units_dict(self.total(), p),
            "month": {"month": self.month, **_units_dict(self.month_units, p)},
            "budget": {q.name: q.to_dict() for q in self.periods},
            "prices": p.to_dict(),
        }


def parse_month(text: str) -> date:
    """YYYY-MM -> its first day; a usage error otherwise."""
    m = _MONTH.fullmatch(text.strip())
    if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 2006:
        raise UsageError(f"--month takes a month as YYYY-MM (e.g. 2026-03), not {text[:20]!r}")
    return date(int(m.group(1)), int(m.group(2)), 1)


def build_usage(conn: Conn, *, sandbox: bool, prices: budget.Prices,
                limits: budget.Limits, now: datetime, days: int | None = None,
                month: str | None = None) -> Usage:
    """The last `days` UTC days (today included), or the UTC month `month`
    (YYYY-MM: its days up to today), with that month's totals and the budgets."""
    today = now.date()
    if month is not None:
        first = parse_month(month)
        if first > today:
            raise UsageError(f"--month {month} has not begun (today is {today.isoformat()} UTC)")
        last = min(budget.next_month(first) - timedelta(days=1), today)
    else:
        n = 7 if days is None else days
        if not 1 <= n <= MAX_DAYS:
            raise UsageError(f"--days takes 1 to {MAX_DAYS}")
        first, last = today - timedelta(days=n - 1), today
    rows: dict[str, Day] = {}
    d = first
    while d <= last:
        rows[d.isoformat()] = Day(d.isoformat())
        d += timedelta(days=1)
    for day, family, units in lstore.by_day(conn, sandbox, first.isoformat(), last.isoformat()):
        rows[day].families[family] = units
    month_first = first.replace(day=1) if month is not None else today.replace(day=1)
    month_last = min(budget.next_month(month_first) - timedelta(days=1), today)
    return Usage(
        first_day=first.isoformat(), last_day=last.isoformat(),
        month=month_first.strftime("%Y-%m"), backend="sandbox" if sandbox else "x",
        since=lstore.first_at(conn, sandbox), days=list(rows.values()),
        month_units=lstore.units_between(conn, sandbox, month_first.isoformat(),
                                         month_last.isoformat()),
        periods=budget.periods(conn, sandbox=sandbox, prices=prices, limits=limits, now=now),
        prices=prices)
