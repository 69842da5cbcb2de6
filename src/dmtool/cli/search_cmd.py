"""`dmtool search`."""


import re
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dmtool import output
from dmtool.cli.completion import complete_handle
from dmtool.cli.context import state
from dmtool.cli.params import LIMIT_MAX, JsonOpt, limit_option, resolve_since, since_option

if TYPE_CHECKING:
    from rich.text import Text

SNIPPET = 200  # characters of a long message shown around its first match on a terminal


def search_cmd(
    ctx: typer.Context,
    query: Annotated[list[str], typer.Argument(
        help='Words that must all occur (case is ignored for A-Z), or "a phrase" in quotes.',
        metavar="QUERY", show_default=False)],
    contact: Annotated[str | None, typer.Option(
        "--contact", metavar="HANDLE", help="Only this contact: their messages, notes and record.",
        autocompletion=complete_handle)] = None,
    since: Annotated[str | None, since_option(
        "Only since then: a duration back (30m, 24h, 7d) or a date or time "
        "(2026-11-01, 2026-11-01T09:00; local unless it has an offset).")] = None,
    limit: Annotated[int, limit_option("At most this many hits (0: all).", "--limit", "-n")] = 50,
    json_: JsonOpt = False,
) -> None:
    """Search message text, notes, and contacts' names and handles, newest first.

    Every word must occur, anywhere in the text: Japanese needs no spaces
    (`dmtool search 配信停止`). On a terminal the matches are highlighted;
    piped, each hit is one tab-separated line: local time, kind (in, out,
    note, contact), handle, text. Words of 3 characters or more use the search
    index; shorter ones read every message, which takes longer on a big store.
    """
    from dmtool import timeutil
    from dmtool.services.search import search, terms_of

    st = state(ctx)
    text = " ".join(query)
    start = timeutil.fmt(resolve_since(st, since, timeutil.now())) if since is not None else None
    limit = limit or LIMIT_MAX
    result = search(st.store.conn, text, handle=contact, since=start, limit=limit)
    if json_:
        output.print_json(result.to_dict())
        return
    rows = [[st.zone.show(h["at"]), _kind(h), "@" + h["contact"]["handle"], _text(h)]
            for h in result.hits]
    if not output.stdout_is_tty():
        output.print_table(["at", "kind", "contact", "text"], rows)
        return
    if not rows:
        output.info(f"no matches for {text}")
        return
    _show(rows, terms_of(text))
    if result.truncated:
        output.info(f"showing the newest {limit}; more with --limit, or narrow it down with "
                    "--contact or --since")


def _kind(hit: dict[str, Any]) -> str:
    return str(hit["direction"]) if hit["kind"] == "message" else str(hit["kind"])


def _text(hit: dict[str, Any]) -> str:
    if hit["kind"] == "contact":
        name = hit["contact"]["name"]
        return f"@{hit['contact']['handle']}" + (f" ({name})" if name else "")
    return str(hit["text"])


def _show(rows: list[list[str]], terms: tuple[str, ...]) -> None:
    """A table with each term highlighted (rich, on a terminal only)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(show_edge=False, header_style="bold")
    for name in ("when", "contact", "", "text"):
        table.add_column(name, overflow="fold")
    for at, kind, handle, text in rows:
        table.add_row(at, output.safe(handle), kind, highlighted(text, terms))
    import os

    Console(no_color=bool(os.environ.get("NO_COLOR")), highlight=False).print(table)


def highlighted(text: str, terms: tuple[str, ...], width: int = SNIPPET) -> "Text":
    """The text (around its first match when long), every term marked. Case
    is ignored for A-Z, as the search does."""
    from rich.text import Text

    pattern = re.compile("|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)),
                         re.IGNORECASE | re.ASCII)
    text = output.safe(text).replace("\n", " ")
    if len(text) > width:
        first = pattern.search(text)
        begin = max(0, min((first.start() if first else 0) - width // 4, len(text) - width))
        text = ("…" if begin else "") + text[begin:begin + width] + \
            ("…" if begin + width < len(text) else "")
    out = Text(text)
    for m in pattern.finditer(text):
        out.stylize("bold reverse", m.start(), m.end())
    return out


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("search")(search_cmd)
