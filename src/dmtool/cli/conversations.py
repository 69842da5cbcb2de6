"""`dmtool inbox`, `thread`, `done`, `reopen` and `digest`: local reads, no X calls."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from dmtool import output
from dmtool.cli.context import state
from dmtool.cli.params import HandleArg, JsonOpt
from dmtool.errors import InputError, UsageError


def _preview(text: str, tty: bool) -> str:
    """Shortened on a terminal only: piped output is never truncated (cli.md)."""
    return text[:60] + "…" if tty and len(text) > 60 else text


def inbox_cmd(
    ctx: typer.Context,
    json_: JsonOpt = False,
    all_: Annotated[bool, typer.Option("--all", help="Include conversations marked done.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 50,
) -> None:
    """Conversations by last activity, open ones first; marks which need a reply."""
    from dmtool.services.conversations import inbox

    items = inbox(state(ctx).store.conn, include_done=all_, limit=limit)
    if json_:
        output.print_json(items)
        return
    output.print_table(
        ["", "handle", "name", "last", "unread", "last message"],
        [["reply" if i["needs_reply"] else ("done" if i["status"] == "done" else ""),
          "@" + i["handle"], i["name"], (i["last_at"] or "")[:16].replace("T", " "), i["unread"],
          ("<- " if i["last_direction"] == "in" else "-> ")
          + _preview(i["last_text"] or "", output.stdout_is_tty())]
         for i in items],
        empty="no conversations yet: run `dmtool sync`")


def thread_cmd(
    ctx: typer.Context,
    handle: HandleArg,
    json_: JsonOpt = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="The last N messages.")] = 50,
    peek: Annotated[bool, typer.Option("--peek", help="Do not mark as read.")] = False,
) -> None:
    """The conversation with one contact, oldest first. Marks it read unless --peek."""
    from dmtool.cli.contacts import contact_view
    from dmtool.store import contacts as cstore
    from dmtool.store.conversations import mark_read
    from dmtool.timeutil import fmt, now

    st = state(ctx)
    conn = st.store.conn
    c = cstore.get(conn, handle)  # a read: local only, no X (check asks X)
    msgs = cstore.messages(conn, c.id, limit=limit)
    if not peek:
        with st.store.tx() as tx:
            mark_read(tx, c.id, fmt(now()) or "")
    if json_:
        contact, _ = contact_view(st, c)
        output.print_json({"contact": contact, "messages": [m.to_dict() for m in msgs]})
        return
    if not msgs:
        output.info(f"no messages with @{c.handle} yet")
    if not output.stdout_is_tty():  # piped: one tab-separated record a line
        output.print_table(["at", "direction", "text"], [[m.at, m.direction, m.text] for m in msgs])
        return
    for m in msgs:
        who = f"@{c.handle}" if m.direction == "in" else "you"
        output.print_text(f"{m.at[:16].replace('T', ' ')}  {who}: {m.text}")


def _set_state(ctx: typer.Context, handle: str, new: str) -> None:
    from dmtool.store import contacts as cstore
    from dmtool.store.conversations import set_state

    with state(ctx).store.tx() as conn:
        c = cstore.get(conn, handle)
        if set_state(conn, c.id, new) == 0:
            raise InputError(f"no conversation with @{c.handle} yet")
    output.info(f"@{c.handle}: {'done' if new == 'done' else 'reopened'}")


def done_cmd(ctx: typer.Context, handle: HandleArg) -> None:
    """Mark a conversation done (it reopens when they write again)."""
    _set_state(ctx, handle, "done")


def reopen_cmd(ctx: typer.Context, handle: HandleArg) -> None:
    """Reopen a conversation marked done."""
    _set_state(ctx, handle, "open")


def digest_cmd(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(
        "--since", help="Look back this far (30m, 24h, 7d) instead of since the last digest.")]
    = None,
    fmt_: Annotated[str | None, typer.Option(
        "--format", help="text (the default), markdown or json.")] = None,
    no_text: Annotated[bool, typer.Option("--no-text", help="Hide message bodies.")] = False,
    peek: Annotated[bool, typer.Option("--peek", help="Do not advance the checkpoint.")] = False,
    json_: Annotated[bool, typer.Option(
        "--json", help="Print one JSON document on stdout (the same as --format json).")] = False,
) -> None:
    """What came in since the last digest: new messages, conversations waiting
    for a reply, opt-outs, failed sends. Prints nothing when nothing is new
    (so cron mails only news), unless --json."""
    from dmtool.cli.reporting import with_json
    from dmtool.services.conversations import (
        build_digest,
        default_since,
        digest_lock,
        render_digest,
    )
    from dmtool.timeutil import fmt, now, parse_duration

    fmt_ = with_json(fmt_, json_, "text")
    if fmt_ not in ("text", "markdown", "json"):
        raise UsageError("--format must be text, markdown or json")
    st = state(ctx)
    store = st.store
    with digest_lock(store, peek):
        t = now()
        if since is not None:
            try:
                start = t - parse_duration(since)
            except ValueError as e:
                raise UsageError(str(e)) from None
        else:
            start = default_since(store.get_state("digest_at"), t)
        d = build_digest(store.conn, start, t)
        if fmt_ == "json":
            output.print_json(d.to_dict(with_text=not no_text))
        elif not d.empty:
            sys.stdout.write(output.safe(render_digest(d, markdown=fmt_ == "markdown",
                                                      with_text=not no_text)))
        if not peek:
            with store.tx():
                store.set_state("digest_at", fmt(t))


def register(app: typer.Typer) -> None:
    app.command("inbox")(inbox_cmd)
    app.command("thread")(thread_cmd)
    app.command("done")(done_cmd)
    app.command("reopen")(reopen_cmd)
    app.command("digest")(digest_cmd)
