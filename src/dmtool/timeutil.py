"""Times: always aware UTC datetimes in code, RFC 3339 text in the store and JSON."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta, tzinfo


def now() -> datetime:
    """The current time. DMTOOL_NOW (RFC 3339) pins it, for tests and demos."""
    pinned = os.environ.get("DMTOOL_NOW")
    if pinned:
        return parse(pinned)
    return datetime.now(UTC)


def fmt(dt: datetime | None) -> str | None:
    """RFC 3339 UTC with milliseconds, as X writes them: 2022-10-19T20:58:00.000Z."""
    if dt is None:
        return None
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse(text: str) -> datetime:
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def parse_opt(text: str | None) -> datetime | None:
    return None if text is None else parse(text)


# What people type: a date, or a date and a time (minutes or seconds), with an
# optional offset. ISO 8601's extended form only: 20261201 is more likely a typo.
# A pattern, not a compiled regex: compiled (and cached by re) only when used.
_TYPED = (r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?"
          r"(?:Z|[+-]\d{2}:?\d{2})?)?$")
# Typed times are kept well inside datetime's years 1 to 9999, so that moving
# one to another zone, or a window or duration around it, can never overflow.
TYPED_MIN = datetime(1970, 1, 1, tzinfo=UTC)
TYPED_MAX = datetime(3000, 1, 1, tzinfo=UTC)


class OutOfRange(ValueError):
    """A date written right, but outside the years dmtool takes (TYPED_MIN, TYPED_MAX)."""


def parse_when(text: str, zone: tzinfo) -> datetime:
    """A time a person typed (`snooze until`, `--since`, `--at`): an ISO 8601
    date (its midnight) or date and time, read in `zone` unless it carries an
    offset (Z, +09:00). Returns an aware UTC datetime; raises ValueError."""
    t = text.strip()
    if not re.match(_TYPED, t, re.IGNORECASE | re.ASCII):
        raise ValueError(f"not a date: {text!r} (use e.g. 2026-12-01 or 2026-12-01T09:00)")
    try:
        dt = datetime.fromisoformat(t.upper().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a date: {text!r} (no such day or time)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zone)
    try:
        at = dt.astimezone(UTC)
    except (OverflowError, ValueError):  # 0001-01-01 east of UTC: before year 1
        at = None
    if at is None or not TYPED_MIN <= at < TYPED_MAX:
        raise OutOfRange(f"not a date dmtool can use: {text.strip()!r} (years 1970 to 2999)")
    return at


_DURATION = r"\s*([0-9]+)\s*([smhdw])\s*"  # ASCII digits, not any \d; compiled when used
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
DURATION_MIN = timedelta(minutes=1)
DURATION_MAX = timedelta(days=3650)


def parse_duration(text: str) -> timedelta:
    """'90m', '24h', '7d', '2w' -> timedelta, from 1 minute to 3650 days (the
    one duration parser of the command line). Raises ValueError otherwise,
    before any date arithmetic could overflow."""
    m = re.fullmatch(_DURATION, text)
    shown = text.strip() if len(text) <= 40 else text[:40] + "…"
    if not m:
        raise ValueError(f"not a duration: {shown!r} (use e.g. 30m, 24h, 7d)")
    digits = m.group(1).lstrip("0")
    seconds = int(digits or "0") * _UNIT_SECONDS[m.group(2)] if len(digits) <= 12 else -1
    if not DURATION_MIN.total_seconds() <= seconds <= DURATION_MAX.total_seconds():
        raise ValueError(f"a duration must be from 1m to 3650d, not {shown}")
    return timedelta(seconds=seconds)


def ago(dt: datetime, ref: datetime) -> str:
    """A short human 'how long ago': 5m, 3h, 2d."""
    secs = max(0, int((ref - dt).total_seconds()))
    if secs < 3600:
        return f"{secs // 60}m"
    if secs < 86400:
        return f"{secs // 3600}h"
    return f"{secs // 86400}d"
