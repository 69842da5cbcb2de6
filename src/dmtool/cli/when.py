"""Times people read and type, for `search` and `log` (until one display-time
helper serves every command): shown in the local zone (TZ, else the
system's); `--since` as a duration back from now or an ISO 8601 date or time,
local unless it carries an offset. JSON keeps RFC 3339 UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from dmtool.errors import InputError
from dmtool.timeutil import fmt, parse, parse_duration


def local(at: str | None) -> str:
    """'2026-11-28 21:43' in the local zone, for a table."""
    if not at:
        return ""
    return parse(at).astimezone().strftime("%Y-%m-%d %H:%M")


def since(text: str, now: datetime) -> str:
    """RFC 3339 UTC for `--since`: `30m`, `7d`, `2026-11-01` or `2026-11-01T09:00[+09:00]`."""
    try:
        return fmt(now - parse_duration(text)) or ""
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"--since: not a duration or a date: {text!r}",
                         hint="use e.g. 30m, 24h, 7d, or 2026-11-01, or 2026-11-01T09:00") from None
    if dt.tzinfo is None:
        dt = dt.astimezone()  # a time as the clock on the wall shows it
    return fmt(dt.astimezone(UTC)) or ""
