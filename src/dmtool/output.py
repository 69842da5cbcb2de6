"""Rendering results: JSON with --json, rich tables on a terminal, TSV when piped.

rich is imported only when a terminal will see it: scripts and cron pay nothing.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from itertools import islice
from typing import Any

_CONTROL = {c: None for c in range(0x20) if c not in (0x09, 0x0A)}
_CONTROL.update({0x7F: None, **{c: None for c in range(0x80, 0xA0)}})


def safe(text: str) -> str:
    """Text from other people, made harmless for a terminal: control characters
    (escape sequences could retitle the window, erase lines or fake output) are
    dropped; tabs and line breaks stay."""
    return text.translate(_CONTROL)


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()


def interactive() -> bool:
    """Prompts are allowed only when both ends are a terminal."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, no_color=bool(os.environ.get("NO_COLOR")), highlight=False)


def print_json(data: Any) -> None:
    # Indented for people; compact for pipes, where the C encoder is ~10x faster.
    # Without the check for circular references (what we print is built fresh,
    # a tree): it keeps a set of every list and dict, and halves the encoder's
    # speed on a digest's thousands of small dicts.
    indent = 2 if stdout_is_tty() else None
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=indent, check_circular=False)
                     + "\n")
    sys.stdout.flush()


def print_json_list(items: Iterable[Any], batch: int = 500) -> None:
    """A JSON array written as its items come: the same text as
    print_json(list(items)), in constant memory however long the list. Items
    are encoded a batch at a time, each batch as one array (its brackets cut),
    so the C encoder does the work."""
    indent = 2 if stdout_is_tty() else None
    encode = json.JSONEncoder(ensure_ascii=False, indent=indent, check_circular=False).encode
    # A batch's text between its brackets; batches are joined as items are.
    cut, sep = (slice(2, -2), ",\n") if indent else (slice(1, -1), ", ")
    out = sys.stdout
    written = False
    it = iter(items)
    while True:
        chunk = list(islice(it, batch))
        if not chunk:
            break
        out.write((sep if written else "[\n" if indent else "[") + encode(chunk)[cut])
        written = True
    out.write(("\n]\n" if indent else "]\n") if written else "[]\n")
    out.flush()


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, list | tuple):
        return safe(",".join(str(x) for x in v))
    return safe(str(v))


def _tsv(v: Any) -> str:
    return _cell(v).replace("\t", " ").replace("\r", " ").replace("\n", " ")


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
                title: str | None = None, empty: str | None = None) -> None:
    """A table on a terminal; tab-separated lines, no header, when piped (as
    the rows come: an iterator is never held whole)."""
    if not stdout_is_tty():
        out = sys.stdout
        for r in rows:
            out.write("\t".join(_tsv(v) for v in r) + "\n")
        return
    rows = list(rows)
    if not rows:
        if empty:
            info(empty)
        return
    from rich.table import Table

    table = Table(title=title, show_edge=False, header_style="bold")
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*(_cell(v) for v in r))
    _console().print(table)


def print_fields(pairs: Sequence[tuple[str, Any]]) -> None:
    """'key: value' lines for one record (show commands)."""
    width = max((len(k) for k, _ in pairs), default=0)
    for k, v in pairs:
        sys.stdout.write(f"{k + ':':<{width + 1}} {_cell(v)}\n")


def print_path(path: object, json_: bool) -> None:
    """One file path: the bare path, or {"path": ...} with --json."""
    if json_:
        print_json({"path": str(path)})
    else:
        print_text(str(path))


def print_text(text: str = "") -> None:
    sys.stdout.write(safe(text) + "\n")


def info(message: str) -> None:
    """Progress and notes: stderr, so stdout stays clean for pipes and --json."""
    sys.stderr.write(safe(message) + "\n")
    sys.stderr.flush()


def error_line(message: str, hint: str | None = None) -> None:
    sys.stderr.write(f"error: {safe(message)}\n")
    if hint:
        sys.stderr.write(f"hint: {safe(hint)}\n")
    sys.stderr.flush()


def error_json(code: str, message: str, hint: str | None = None, **extra: Any) -> None:
    err: dict[str, Any] = {"code": code, "message": message}
    if hint:
        err["hint"] = hint
    err.update(extra)
    sys.stderr.write(json.dumps({"error": err}, ensure_ascii=False) + "\n")
    sys.stderr.flush()
