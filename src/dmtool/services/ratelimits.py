"""X's rate limits, one pause per endpoint family (x-api.md "Limits and cost").

X counts DM reads, DM sends, timelines and user lookups in separate windows,
so a 429 pauses only the family that answered it: a limit on sending never
stops a sync, and a limit met while syncing never stops a send. Each pause is
the sync_state key `rate_limited_until.<family>` (RFC 3339); dmtool makes no
request of that family before it, so cron never hammers X while it is paused.
A 429 without a reset time pauses its family for DEFAULT_PAUSE.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from dmtool import timeutil
from dmtool.errors import RATE_FAMILIES, RateLimited
from dmtool.store.db import state_value
from dmtool.timeutil import fmt, parse_opt

if TYPE_CHECKING:
    from dmtool.store import Store
    from dmtool.store.sql import Conn

FAMILIES = tuple(RATE_FAMILIES)
DEFAULT_PAUSE = timedelta(minutes=15)


def key(family: str) -> str:
    if family not in RATE_FAMILIES:
        raise ValueError(f"unknown rate-limit family {family!r}")
    return f"rate_limited_until.{family}"


def label(family: str) -> str:
    """The family in words, for messages: "reading DMs", "sending DMs", ..."""
    return RATE_FAMILIES[family]


def local_time(at: datetime) -> str:
    """A reset time as people read it: local HH:MM (and the date when not
    today), then the exact RFC 3339 time."""
    local = at.astimezone()
    text = f"{local:%H:%M}"
    if local.date() != datetime.now().astimezone().date():
        text += f" on {local:%Y-%m-%d}"
    return f"{text} ({fmt(at)})"


def paused_until(conn: Conn, family: str, now: datetime) -> datetime | None:
    """When `family` may be called again, if that is still ahead of `now`."""
    until = parse_opt(state_value(conn, key(family)))
    return until if until is not None and until > now else None


def active(conn: Conn, now: datetime) -> dict[str, datetime | None]:
    """Every family with its reset time when still ahead, else None."""
    return {f: paused_until(conn, f, now) for f in FAMILIES}


def record(store: Store, e: RateLimited, now: datetime, *, family: str) -> datetime:
    """Store the pause a 429 asks for; returns its end.

    `family` is used only when the error does not carry one (the X client
    always sets it)."""
    until = (datetime.fromtimestamp(e.reset_at, UTC) if e.reset_at is not None
             else now + DEFAULT_PAUSE)
    with store.tx():
        store.set_state(key(e.family or family), fmt(until))
    return until


def refusal(family: str, until: datetime, what: str, *, hint: str) -> RateLimited:
    """The local refusal before `family`'s reset: no request is made."""
    return RateLimited(f"{what}: X rate limit on {label(family)} until {local_time(until)}",
                       reset_at=int(until.timestamp()), hint=hint, family=family)


@contextlib.contextmanager
def guarded(store: Store, family: str, what: str, *, hint: str) -> Iterator[None]:
    """Around calls of one family: refused locally before its reset (no request
    is made), and a 429 met inside pauses the family; either way the error
    says `what` could not be done and until when."""
    until = paused_until(store.conn, family, timeutil.now())
    if until is not None:
        raise refusal(family, until, what, hint=hint)
    try:
        yield
    except RateLimited as e:
        until = record(store, e, timeutil.now(), family=family)
        raise refusal(e.family or family, until, what, hint=hint) from None


def clear(store: Store, family: str) -> None:
    with store.tx():
        store.set_state(key(family), None)
