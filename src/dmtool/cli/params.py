"""Arguments several command modules share, with their shell completion, and
the one way the command line reads a bounded whole number or a duration.

Every number a command takes goes through `whole_number` and every duration
through `duration_param` (issue 11): only ASCII digits, a range checked before
the value reaches SQLite or datetime, and a usage error (exit 2) otherwise,
never an OverflowError. Use `draft_id_argument`, `limit_option`, `days_option`
and `duration_option` for new commands too. Likewise every file or folder a
person names goes through `file_name` or `local_path` (`file_argument`,
`file_option`, `path_argument`), so a name no system could open is a usage
error and one this user may not look at is bad input, never an OSError.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dmtool.cli.completion import complete_handle, complete_template
from dmtool.errors import InputError, UsageError

if TYPE_CHECKING:
    from dmtool.appstate import AppState

# --json means the same on every command that reports: one JSON document on stdout.
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
HandleArg = Annotated[str, typer.Argument(help="X handle, with or without @.",
                                          autocompletion=complete_handle)]
TemplateArg = Annotated[str, typer.Argument(help="Template name.",
                                            autocompletion=complete_template)]

ID_MAX = 2**63 - 1  # SQLite's largest INTEGER: draft ids are 1 to this
LIMIT_MAX = 1_000_000  # --limit / -n: 0 to this
DAYS_MAX = 3650  # report --days: 1 to this (ten years)
MINUTES_MAX = 24 * 60  # claim --minutes: 1 to this (services/claims.MAX_MINUTES)
# Patterns as text: compiled (and cached by `re`) when first used, not at every start.
_WHOLE = r"-?[0-9]+"  # ASCII only: int() would take "١" (Arabic-Indic 1)


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")


def whole_number(low: int, high: int) -> Callable[[Any], int]:
    """A Typer parser for a whole number from `low` to `high`, written in
    ASCII digits; anything else is a usage error naming the range."""

    def parse(value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):  # a default
            number = value
        else:
            text = str(value)
            if not re.fullmatch(_WHOLE, text):
                raise typer.BadParameter(
                    f"must be a whole number from {low} to {high} (digits 0-9), not {_shown(text)}")
            digits = text.lstrip("-").lstrip("0")
            if len(digits) > len(str(max(abs(low), abs(high)))):  # far out: no int() of it
                raise typer.BadParameter(f"must be from {low} to {high}, not {_shown(text)}")
            number = int(text)
        if not low <= number <= high:
            raise typer.BadParameter(f"must be from {low} to {high}, not {number}")
        return number

    parse.__name__ = "integer"
    return parse


draft_id = whole_number(1, ID_MAX)
limit = whole_number(0, LIMIT_MAX)
days = whole_number(1, DAYS_MAX)
minutes = whole_number(1, MINUTES_MAX)


def duration_param(value: Any) -> timedelta:
    """A Typer parser for a duration (30m, 24h, 7d, 2w) from 1m to 3650d."""
    from dmtool.timeutil import parse_duration

    if isinstance(value, timedelta):
        return value
    try:
        return parse_duration(str(value))
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


_DURATION_SHAPED = r"\s*[0-9]+\s*[A-Za-z]+\s*"


def since_param(value: Any) -> str:
    """A Typer parser for `--since`: a duration back from now (as
    `duration_param`) or an ISO 8601 date or time. Checked here, so a bad value
    is a usage error; the command turns it into a time in its display zone."""
    from dmtool.timeutil import parse_duration

    text = str(value)
    try:
        parse_duration(text)
        return text
    except ValueError as e:
        if re.fullmatch(_DURATION_SHAPED, text):  # a duration out of range: say that
            raise typer.BadParameter(str(e)) from None
    from dmtool.timeutil import OutOfRange, parse_when

    try:
        parse_when(text, UTC)  # the grammar and range the command reads it with, in its zone
    except OutOfRange as e:
        raise typer.BadParameter(str(e)) from None
    except ValueError:
        raise typer.BadParameter(f"not a duration or a date: {_shown(text)} (use e.g. 30m, 24h, "
                                 "7d, 2026-11-01 or 2026-11-01T09:00)") from None
    return text


def resolve_since(st: AppState, text: str, now: datetime) -> datetime:
    """What a checked `--since` means: `now` minus the duration, or the date or
    time read in the display zone (unless it carries an offset)."""
    from dmtool.timeutil import parse_duration

    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        start = st.zone.parse_typed(text)
    except ValueError as e:
        raise UsageError(f"--since: {e}") from None
    if start >= now:
        raise UsageError(f"--since {text} is in the future")
    return start


# What POSIX systems allow (NAME_MAX, PATH_MAX less the final NUL): a longer
# name is refused before anything runs, whatever the disk.
NAME_BYTES_MAX = 255
PATH_BYTES_MAX = 4095


def _checked_path(text: str) -> str:
    """`text` as a name a file can have, and one this user may look at.

    A name that can never be opened (empty, a NUL, too long) is a usage error;
    one the system refuses to look up (a folder on the way this user may not
    enter, a loop of links) is bad input, said as for any file dmtool reads.
    A name that does not exist yet passes: the command says what it needs."""
    if not text:
        raise typer.BadParameter("an empty file name")
    try:
        raw = os.fsencode(text)
    except UnicodeError:
        raise typer.BadParameter(f"not a file name this system can use: {_shown(text)}") from None
    if b"\0" in raw:
        raise typer.BadParameter("a file name cannot hold a NUL character")
    if len(raw) > PATH_BYTES_MAX or any(len(n) > NAME_BYTES_MAX for n in raw.split(b"/")):
        raise typer.BadParameter(
            f"file name too long: {_shown(text)} (at most {NAME_BYTES_MAX} bytes a name, "
            f"{PATH_BYTES_MAX} in all)")
    try:
        os.stat(raw)
    except (FileNotFoundError, NotADirectoryError):
        pass
    except OSError as e:
        raise InputError(f"cannot use {_shown(text)}: {e.strerror or e}",
                         hint="check the name and that you may read the folders on its way") \
            from None
    return text


def file_name(value: Any) -> str:
    """A Typer parser for a file to read, or `-` for stdin."""
    text = str(value)
    return text if text == "-" else _checked_path(text)


def local_path(value: Any) -> Path:
    """A Typer parser for a file or folder (no stdin); `~` is the home folder."""
    if isinstance(value, Path):  # a default
        return value
    text = str(value)
    if text.startswith("~"):
        try:
            text = os.fspath(Path(text).expanduser())
        except RuntimeError:  # ~nosuchuser
            raise typer.BadParameter(f"no such home folder: {_shown(text)}") from None
    return Path(_checked_path(text))


def file_argument(help: str) -> Any:
    return typer.Argument(help=help, parser=file_name, metavar="FILE")


def file_option(help: str, *names: str) -> Any:
    return typer.Option(*(names or ("--file", "-f")), parser=file_name, metavar="FILE", help=help)


def path_argument(help: str, metavar: str = "FILE", **kw: Any) -> Any:
    return typer.Argument(help=help, parser=local_path, metavar=metavar, **kw)


def since_option(help: str) -> Any:
    return typer.Option("--since", parser=since_param, metavar="D", help=help)


def draft_id_argument(autocompletion: Callable[..., Any] | None = None, *,
                      help: str = "Draft id (see `dmtool drafts list`).") -> Any:
    return typer.Argument(help=help, parser=draft_id, metavar="DRAFT_ID",
                          autocompletion=autocompletion)


def limit_option(help: str, *names: str) -> Any:
    """--limit N (0 to 1,000,000; what 0 means is the command's to say in `help`)."""
    return typer.Option(*(names or ("--limit",)), parser=limit, metavar="N", help=help)


def days_option(help: str) -> Any:
    return typer.Option("--days", parser=days, metavar="N", help=help)


def minutes_option(help: str) -> Any:
    """--minutes N (1 to a day)."""
    return typer.Option("--minutes", parser=minutes, metavar="N", help=help)


def duration_option(name: str, help: str) -> Any:
    return typer.Option(name, parser=duration_param, metavar="DURATION", help=help)
