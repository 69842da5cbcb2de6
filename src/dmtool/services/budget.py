"""What X charges, and the budget that stops dmtool before it spends more.

Prices are settings (`x.price.*`, US dollars a unit, X's published figures by
default). The budgets, `x.budget.day_usd` and `x.budget.month_usd`, are unset
by default; they cover the UTC day and the UTC calendar month, and belong to
the store (one X account). X bills per developer app: other profiles and
other tools using the same app spend from the same bill, which dmtool cannot
see. Spending is an estimate from dmtool's own requests (the ledger,
store/ledger.py): after X's same-day rule, a send whose outcome is unknown
counted as sent until it is reconciled.

Before each request its worst case is known (x/observe.py RequestPlan.worst);
a request whose worst case could take spending past a budget is not made
(BudgetExceeded, exit 4). At WARN_SHARE of a budget, `sync` warns once a UTC
day and `digest` adds a line.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from dmtool.errors import BudgetExceeded
from dmtool.store import ledger as lstore
from dmtool.timeutil import fmt

if TYPE_CHECKING:
    from dmtool.appstate import AppState
    from dmtool.config import Config
    from dmtool.store.sql import Conn

WARN_SHARE = 0.8
EPSILON = 1e-9  # float dust: a request that exactly reaches the budget is allowed
K_WARNED = "budget_warned_on"  # sync_state: the UTC day sync last warned at WARN_SHARE
K_DIGESTED = "budget_digested_on"  # and the day a digest last said so as news
PRICE_KEYS = {"dm_events": "x.price.dm_event_read", "users": "x.price.user_read",
              "posts": "x.price.post_read", "sends": "x.price.dm_send"}
ESTIMATE_NOTE = ("an estimate from dmtool's own requests to X; the bill is X's, and X bills per "
                 "developer app: other profiles or tools using the same app are not counted here")


# Plain classes, not dataclasses: `report` (a local command) loads this module.


class Prices:
    """US dollars per unit of each kind (store/ledger.py KINDS)."""

    __slots__ = ("per_unit",)

    def __init__(self, per_unit: Mapping[str, float]) -> None:
        self.per_unit = per_unit

    @classmethod
    def from_config(cls, config: Config) -> Prices:
        return cls({kind: float(config.get(key)) for kind, key in PRICE_KEYS.items()})

    def cost(self, units: Mapping[str, int]) -> float:
        return sum(self.per_unit[k] * n for k, n in units.items() if n)

    def to_dict(self) -> dict[str, float]:
        return {key.removeprefix("x.price."): self.per_unit[kind]
                for kind, key in PRICE_KEYS.items()}


class Limits:
    __slots__ = ("day", "month")

    def __init__(self, day: float | None, month: float | None) -> None:
        self.day = day
        self.month = month

    @classmethod
    def from_config(cls, config: Config) -> Limits:
        day, month = config.get("x.budget.day_usd"), config.get("x.budget.month_usd")
        return cls(None if day is None else float(day), None if month is None else float(month))

    @property
    def any(self) -> bool:
        return self.day is not None or self.month is not None


class Period:
    """One budget (the UTC day or month): its limit (None: no budget) and
    what is spent in it so far."""

    __slots__ = ("limit", "name", "spent", "start")

    def __init__(self, name: str, start: str, limit: float | None, spent: float) -> None:
        self.name = name  # "day" or "month"
        self.start = start  # its first UTC day, YYYY-MM-DD
        self.limit = limit
        self.spent = spent

    @property
    def left(self) -> float | None:
        return None if self.limit is None else max(0.0, self.limit - self.spent)

    @property
    def share(self) -> float | None:
        if self.limit is None:
            return None
        return 1.0 if self.limit <= 0 else self.spent / self.limit

    def to_dict(self) -> dict[str, Any]:
        return {"limit": self.limit, "spent": round(self.spent, 6),
                "left": None if self.left is None else round(self.left, 6),
                "share": None if self.share is None else round(self.share, 4),
                "since": self.start}


def utc_day(now: datetime) -> str:
    return now.date().isoformat()


def month_start(now: datetime) -> str:
    return now.date().replace(day=1).isoformat()


def next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def periods(conn: Conn, *, sandbox: bool, prices: Prices, limits: Limits,
            now: datetime, pending: Mapping[str, int] | None = None) -> list[Period]:
    """The day and the month, each with its limit and what is spent in it
    (the ledger, plus `pending`: units of requests not written yet)."""
    today = utc_day(now)
    extra = prices.cost(pending or {})
    day = lstore.units_between(conn, sandbox, today, today)
    month = lstore.units_between(conn, sandbox, month_start(now), today)
    return [Period("day", today, limits.day, prices.cost(day.billable) + extra),
            Period("month", month_start(now), limits.month, prices.cost(month.billable) + extra)]


def refusal(p: Period, worst: float, what: str = "the next request to X") -> BudgetExceeded:
    """The error for a request whose worst case would pass `p`'s limit."""
    assert p.limit is not None
    if p.name == "day":
        key, wait = "x.budget.day_usd", "the next UTC day (00:00 UTC)"
    else:
        key, wait = "x.budget.month_usd", "the next UTC month"
    return BudgetExceeded(
        f"X {p.name} budget: {what} could cost up to {usd(worst)}, and {usd(p.spent)} of "
        f"{usd(p.limit)} is spent this {'UTC day' if p.name == 'day' else 'UTC month'} "
        f"({usd(p.left or 0.0)} left); nothing was asked of X",
        budget=p.name, spent=round(p.spent, 6), limit=p.limit,
        hint=f"raise it (`dmtool config set {key} AMOUNT`) or wait for {wait}; "
             "`dmtool usage` shows the spending")


def check(ps: list[Period], worst: float, what: str = "the next request to X") -> None:
    """BudgetExceeded unless `worst` more fits every budget that is set."""
    for p in ps:
        if p.limit is not None and worst > 0 and p.spent + worst > p.limit + EPSILON:
            raise refusal(p, worst, what)


def room(ps: list[Period]) -> float | None:
    """The most any request may still cost (None: no budget is set)."""
    lefts = [p.left for p in ps if p.left is not None]
    return min(lefts) if lefts else None


def usd(amount: float) -> str:
    """Dollars as people read them: $0.42, $12.00, and fractions of a cent
    when there are any ($0.015, $0.139): prices are a cent or less a unit."""
    text = f"{round(amount, 4):,.4f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


def warning(ps: list[Period]) -> str | None:
    """The line said at WARN_SHARE of a budget (the fuller one), else None."""
    near = [p for p in ps if p.share is not None and p.share >= WARN_SHARE]
    if not near:
        return None
    p = max(near, key=lambda q: q.share or 0.0)
    assert p.limit is not None
    return (f"X spending is at {min(p.share or 0.0, 9.99):.0%} of the {p.name} budget "
            f"({usd(p.spent)} of {usd(p.limit)}, an estimate); at the budget dmtool stops "
            "calling X (exit 4, E_BUDGET)")


def summary(ps: list[Period]) -> str:
    """One line for `auth status` and `usage`: each budget and what is left."""
    parts = []
    for p in ps:
        if p.limit is None:
            parts.append(f"{p.name}: {usd(p.spent)} spent, no budget")
        else:
            parts.append(f"{p.name}: {usd(p.spent)} of {usd(p.limit)} ({p.share or 0.0:.0%}), "
                         f"{usd(p.left or 0.0)} left")
    return "; ".join(parts)


# --- cost in `report` ---------------------------------------------------------------------


class Cost:
    """What the requests of a period cost: `report`'s `cost`."""

    __slots__ = ("answered", "per_conversation_answered", "since", "usd")

    def __init__(self, usd: float, since: str | None, answered: int) -> None:
        self.usd = usd
        self.since = since  # when the figures begin: the period's start, or the ledger's if later
        self.answered = answered  # conversations with a message of yours in the period
        # None without a conversation answered, or without ledger data at all.
        self.per_conversation_answered = usd / answered if answered and since else None

    def to_dict(self) -> dict[str, Any]:
        per = self.per_conversation_answered
        return {"usd": round(self.usd, 6), "since": self.since,
                "per_conversation_answered": None if per is None else round(per, 6)}


def period_cost(conn: Conn, since: datetime, until: datetime, *, sandbox: bool,
                prices: Prices) -> Cost:
    """The estimated cost of dmtool's requests at `since` <= at < `until`, and
    per conversation answered (None when none was)."""
    s, u = fmt(since) or "", fmt(until) or ""
    usd = prices.cost(lstore.units_since(conn, sandbox, s, u).billable)
    first = lstore.first_at(conn, sandbox)
    return Cost(usd, None if first is None else max(first, s),
                lstore.answered_conversations(conn, s, u))


# --- the budget state, for `auth status`, `usage`, `digest` and sync's warning -------------


def state(st: AppState) -> list[Period]:
    """The budgets and what is spent in them (a read of the ledger: no client,
    no request; what a running command has not written yet is not in it)."""
    from dmtool import timeutil

    return periods(st.store.conn, sandbox=st.sandbox, prices=Prices.from_config(st.config),
                   limits=Limits.from_config(st.config), now=timeutil.now())


def warn_once(st: AppState, ps: list[Period], key: str = K_WARNED) -> str | None:
    """The WARN_SHARE line, the first time it is due in a UTC day (remembered
    under `key`), else None."""
    from dmtool import timeutil

    text = warning(ps)
    if text is None or st.store.read_only:
        return None
    today = utc_day(timeutil.now())
    if st.store.get_state(key) == today:
        return None
    with st.store.tx():
        st.store.set_state(key, today)
    return text
