"""The time zone people read times in, and the one helper every renderer uses.

The store and JSON keep RFC 3339 UTC; text output shows local time: the
`display.timezone` setting, else `TZ`, else the system's zone. zoneinfo is
imported only when a zone other than UTC is resolved, and only by commands
that print times (`--json` never asks for a zone), so start-up stays light.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path

from dmtool.timeutil import parse, parse_when

# Names that mean UTC itself: no zoneinfo needed to show them.
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu",
                        "UCT", "Etc/UCT", "GMT", "Etc/GMT", "Etc/GMT0", "Etc/GMT+0", "Etc/GMT-0",
                        "GMT0", "GMT+0", "GMT-0", "Etc/Greenwich", "Greenwich"})
_SYSTEM_LINK = Path("/etc/localtime")
_SYSTEM_NAME = Path("/etc/timezone")  # Debian's name for a copied /etc/localtime


class UnknownZone(ValueError):
    pass


class DisplayZone:
    """A zone and its name, as said in output ("Asia/Tokyo", "UTC"). A plain
    class: a dataclass costs milliseconds to build at every start."""

    __slots__ = ("name", "tz")

    def __init__(self, name: str, tz: tzinfo) -> None:
        self.name = name
        self.tz = tz

    def __repr__(self) -> str:
        return f"DisplayZone({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DisplayZone) and (self.name, self.tz) == (other.name, other.tz)

    def __hash__(self) -> int:
        return hash(self.name)

    def local(self, at: str | datetime) -> datetime:
        return (parse(at) if isinstance(at, str) else at).astimezone(self.tz)

    def show(self, at: str | datetime | None, *, seconds: bool = False) -> str:
        """'2026-11-28 21:43' (with seconds: '2026-11-28 21:43:05') in this zone; '' for None."""
        if at is None or at == "":
            return ""
        return self.local(at).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")

    def show_date(self, at: str | datetime | None) -> str:
        return "" if at is None or at == "" else self.local(at).strftime("%Y-%m-%d")

    def stamp(self, at: str | datetime) -> str:
        """ISO 8601 with the offset, for piped output that scripts parse: 2026-11-28T21:43:05+09:00."""
        return self.local(at).isoformat(timespec="seconds")

    def today(self, now: datetime) -> date:
        return self.local(now).date()

    def midnight(self, day: date) -> datetime:
        """The instant (UTC) a day starts in this zone (DST-aware)."""
        return datetime(day.year, day.month, day.day, tzinfo=self.tz).astimezone(UTC)

    def parse_typed(self, text: str) -> datetime:
        """A time a person typed (ISO 8601), read in this zone unless it has an offset."""
        return parse_when(text, self.tz)


UTC_ZONE = DisplayZone("UTC", UTC)


def _zoneinfo(name: str) -> tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    # Only names of files under the zone folders: no absolute or parent paths.
    if (not name or name.startswith("/") or ".." in name.split("/") or "//" in name
            or not all(ch.isascii() and (ch.isalnum() or ch in "_+-/") for ch in name)):
        raise UnknownZone(f"not a time zone name: {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UnknownZone(f"unknown time zone {name!r}") from None


def named(name: str) -> DisplayZone:
    """The zone of an IANA name (Asia/Tokyo, Europe/Paris, UTC). Raises UnknownZone."""
    if name in _UTC_NAMES:
        return UTC_ZONE
    return DisplayZone(name, _zoneinfo(name))


def check_zone_name(name: str) -> str:
    """A real zone name, or UnknownZone (for `config set display.timezone`)."""
    named(name)
    return name


def _from_file(path: str, name: str) -> DisplayZone:
    from zoneinfo import ZoneInfo

    with open(path, "rb") as f:
        return DisplayZone(name, ZoneInfo.from_file(f, key=name))


def _c_local(label: str | None = None) -> DisplayZone:
    """The C library's idea of local time (a POSIX TZ string such as JST-9, or
    a system without tz files): its offset now, as a fixed zone."""
    import time

    if hasattr(time, "tzset"):  # Windows has none: its C library reads TZ at start
        time.tzset()
    here = datetime.now(UTC).astimezone()
    return DisplayZone(label or here.tzname() or "local", here.tzinfo or UTC)


def _system() -> DisplayZone:
    """The system's zone: /etc/localtime (a link into the zone files names it)."""
    try:
        target = os.readlink(_SYSTEM_LINK)
    except OSError:
        target = None
    if target is not None:
        _, sep, key = target.partition("zoneinfo/")
        if sep and key:
            try:
                return named(key)
            except UnknownZone:
                pass
    if _SYSTEM_LINK.is_file():  # a copy of a zone file: its offsets, /etc/timezone's name
        try:
            name = _SYSTEM_NAME.read_text(encoding="utf-8").strip() or "localtime"
        except OSError:
            name = "localtime"
        try:
            return _from_file(str(_SYSTEM_LINK), name)
        except (OSError, ValueError):
            pass
    if os.name == "posix" and not _SYSTEM_LINK.exists():
        return UTC_ZONE  # what the C library assumes too
    return _c_local()


def resolve(configured: str | None, environ: Mapping[str, str]) -> DisplayZone:
    """display.timezone if set, else TZ, else the system's zone. A bad
    configured name raises UnknownZone; a TZ that is not a zone name falls back
    to what the C library makes of it (a POSIX rule like JST-9)."""
    if configured:
        return named(configured)
    tz = environ.get("TZ")
    if tz is None:
        return _system()
    tz = tz.removeprefix(":")
    if tz == "":
        return UTC_ZONE  # an empty TZ is UTC, as for the C library
    if tz.startswith("/"):
        try:
            return _from_file(tz, tz.partition("zoneinfo/")[2] or tz)
        except (OSError, ValueError):
            return _c_local(tz)
    try:
        return named(tz)
    except UnknownZone:
        return _c_local()

