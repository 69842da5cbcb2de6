"""`dmtool inbox`, `thread`, `done`, `reopen`, `snooze`, `unsnooze` and `digest`:
local reads and marks, no X calls."""


import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dmtool import output
from dmtool.cli.context import state
from dmtool.cli.params import (
    LIMIT_MAX,
    HandleArg,
    JsonOpt,
    limit_option,
    resolve_since,
    since_option,
)
from dmtool.errors import InputError, UsageError

if TYPE_CHECKING:
    from datetime import datetime

    from dmtool.appstate import AppState
    from dmtool.store.conversations import InboxQuery


def _preview(text: str, tty: bool) -> str:
    """Shortened on a terminal only: piped output is never truncated (cli.md)."""
    return text[:60] + "…" if tty and len(text) > 60 else text


STATES = ("open", "opted-out", "review-optout", "dm-closed", "blocked")
SORTS = ("waiting", "activity")


def inbox_cmd(
    ctx: typer.Context,
    json_: JsonOpt = False,
    all_: Annotated[bool, typer.Option("--all", help="Include conversations marked done.")] = False,
    limit: Annotated[int, limit_option("At most this many (0: all).")] = 50,
    waiting: Annotated[bool, typer.Option(
        "--waiting", help="Only those waiting for your reply.")] = False,
    unread: Annotated[bool, typer.Option("--unread", help="Only those with unread messages.")]
    = False,
    tag: Annotated[str | None, typer.Option("--tag", help="Only contacts with this tag.")] = None,
    state_: Annotated[str | None, typer.Option(
        "--state", metavar="STATE",
        help="Only contacts in this state: open, opted-out, review-optout, dm-closed, blocked.")]
    = None,
    snoozed: Annotated[bool, typer.Option(
        "--snoozed", help="The snoozed conversations (hidden otherwise) instead.")] = False,
    sort: Annotated[str, typer.Option(
        "--sort", metavar="ORDER",
        help="waiting: those waiting for your reply first, then by last activity; activity: "
             "by last activity only.")] = "waiting",
    mine: Annotated[bool, typer.Option(
        "--mine", help="Only the conversations you have claimed (`dmtool claim`).")] = False,
    unclaimed: Annotated[bool, typer.Option(
        "--unclaimed", help="Only the conversations nobody has claimed.")] = False,
) -> None:
    """Conversations, the ones waiting for your reply first, then by last
    activity; marks which need a reply and the contact's state. Filters combine."""
    from dmtool.services.conversations import inbox
    from dmtool.store.conversations import InboxQuery
    from dmtool.timeutil import now

    if state_ is not None and state_ not in STATES:
        raise UsageError(f"--state must be one of {', '.join(STATES)}, not {state_!r}")
    if sort not in SORTS:
        raise UsageError(f"--sort must be waiting or activity, not {sort!r}")
    if mine and unclaimed:
        raise UsageError("--mine and --unclaimed exclude each other")
    if tag is not None:
        from dmtool.store.contacts import check_tag

        tag = check_tag(tag)
    st = state(ctx)
    me = None
    if mine:
        from dmtool.services.claims import me as operator

        me = operator()
    query = InboxQuery(include_done=all_, waiting=waiting, unread=unread, tag=tag, state=state_,
                       snoozed=snoozed, waiting_first=sort == "waiting", mine=me,
                       unclaimed=unclaimed)
    items = inbox(st.store.conn, query, now=now(), limit=limit or LIMIT_MAX)
    if json_:
        output.print_json(items)
        return
    zone = st.zone
    tty = output.stdout_is_tty()
    columns = ["", "handle", "name", "last", "unread", "last message"]
    if snoozed:
        columns.append("snoozed until")
    # Claims are a team's: the column shows once someone has claimed one of these.
    claimed = mine or any(i["claimed_by"] for i in items)
    if claimed:
        columns.append("claimed by")
    rows = []
    for i in items:
        row = [_marks(i), "@" + i["handle"], i["name"], zone.show(i["last_at"]), i["unread"],
               ("<- " if i["last_direction"] == "in" else "-> ")
               + _preview(i["last_text"] or "", tty)]
        if snoozed:
            row.append(zone.show(i["snoozed_until"]))
        if claimed:
            row.append(f"{i['claimed_by']} until {zone.show(i['claimed_until'])}"
                       if i["claimed_by"] else "")
        rows.append(row)
    output.print_table(columns, rows, empty=_empty_inbox(query))


def _marks(item: dict[str, Any]) -> str:
    """reply (they wait for you), the contact's state unless open, done."""
    marks = ["reply"] if item["needs_reply"] else []
    if item["state"] != "open":
        marks.append(item["state"])
    if item["status"] == "done":
        marks.append("done")
    return ",".join(marks)


def _empty_inbox(q: "InboxQuery") -> str:
    if q.snoozed:
        return "no snoozed conversations"
    if q.mine is not None:
        return "you have claimed no conversation" + (
            "" if q.include_done else " that is open (`--all` adds those done)")
    if q.waiting or q.unread or q.tag is not None or q.state is not None or q.unclaimed:
        return "no conversations match" + ("" if q.include_done else " (`--all` adds those done)")
    if q.include_done:
        return "no conversations yet: run `dmtool sync`"
    return "no open conversations: `dmtool sync` fetches new DMs, `--all` adds those done"


def thread_cmd(
    ctx: typer.Context,
    handle: HandleArg,
    json_: JsonOpt = False,
    limit: Annotated[int, limit_option("The last N messages (0: all).")] = 50,
    peek: Annotated[bool, typer.Option("--peek", help="Do not mark as read.")] = False,
) -> None:
    """The conversation with one contact, oldest first. Marks it read unless --peek.

    The contact's notes show among the messages, with who wrote them (a note
    is never sent)."""
    from dmtool.cli.contact_view import contact_view
    from dmtool.store import contacts as cstore
    from dmtool.store.conversations import mark_read
    from dmtool.store.messages import senders
    from dmtool.timeutil import fmt, now

    st = state(ctx)
    conn = st.store.conn
    c = cstore.get(conn, handle)  # a read: local only, no X (check asks X)
    msgs = cstore.messages(conn, c.id, limit=limit or None)
    sent_by = senders(conn, c.id)  # who sent each of dmtool's DMs (None: not through dmtool)
    if not peek and not st.store.read_only:  # a read-only store: as --peek
        with st.store.tx() as tx:
            mark_read(tx, c.id, fmt(now()) or "")
    notes = cstore.notes(conn, c.id)
    if limit and len(msgs) == limit:  # the thread starts later: so do its notes
        notes = [n for n in notes if str(n["at"]) >= msgs[0].at]
    if json_:
        contact, _ = contact_view(st, c)
        output.print_json({"contact": contact, "messages": [
            m.to_dict() | {"sent_by": sent_by.get(m.event_id or "") if m.direction == "out"
                           else None} for m in msgs], "notes": notes})
        return
    if not msgs:
        output.info(f"no messages with @{c.handle} yet")
    zone = st.zone
    # Notes (never sent: the team's own record) among the messages, by time.
    events: list[tuple[str, int, Any]] = sorted(
        [(m.at, 0, m) for m in msgs] + [(str(n["at"]), 1, n) for n in notes],
        key=lambda e: (e[0], e[1]))
    if not output.stdout_is_tty():  # piped: one tab-separated record a line
        output.print_table(["at", "direction", "text"], [
            [zone.stamp(at), "note", f"{e['author'] or ''}: {e['text']}"] if kind
            else [zone.stamp(at), e.direction, e.text] for at, kind, e in events])
    else:
        from dmtool import actor
        from dmtool.cli.contacts import note_line

        me = actor.current()
        for at, kind, e in events:
            if kind:
                output.print_text(note_line(zone.show(at), e).strip())
            else:
                who = (f"@{c.handle}" if e.direction == "in"
                       else _sender(sent_by.get(e.event_id or ""), me))
                output.print_text(f"{zone.show(at)}  {who}: {e.text}")
    if c.opted_out_at:  # on stderr: piped records stay records
        from dmtool.cli.contact_view import opt_out_text

        output.info(f"@{c.handle} opted out on "
                    f"{opt_out_text(zone.show(c.opted_out_at), c.opt_out_words, c.opt_out_reason)}: "
                    "do not DM them")


def _sender(name: str | None, me: str | None) -> str:
    """Who sent one of your account's DMs, as the thread shows it: you, or the
    teammate who did (automatic acknowledgements and DMs sent outside dmtool
    are the account's: you)."""
    from dmtool import actor

    if name is None or name == actor.AUTOACK or actor.same_person(name, me):
        return "you"
    return name


def _set_state(ctx: typer.Context, handle: str, new: str) -> None:
    from dmtool.store import contacts as cstore
    from dmtool.store.conversations import conversation_state, set_state

    with state(ctx).store.tx() as conn:
        c = cstore.get(conn, handle)
        was = conversation_state(conn, c.id)
        if was is None:
            raise InputError(f"no conversation with @{c.handle} yet")
        if was == new:
            output.info(f"@{c.handle}: the conversation is {new} already; nothing changed")
            return
        set_state(conn, c.id, new)
    output.info(f"@{c.handle}: {'done' if new == 'done' else 'reopened'}")


def done_cmd(ctx: typer.Context, handle: HandleArg) -> None:
    """Mark a conversation done (it reopens when they write again)."""
    _set_state(ctx, handle, "done")


def reopen_cmd(ctx: typer.Context, handle: HandleArg) -> None:
    """Reopen a conversation marked done."""
    _set_state(ctx, handle, "open")


def digest_cmd(
    ctx: typer.Context,
    since: Annotated[str | None, since_option(
        "Messages sent in this window instead of those recorded since the last digest: a "
        "duration (30m, 24h, 7d) or a date (2026-11-01, 2026-11-01T09:00; your time zone "
        "unless it has an offset).")] = None,
    fmt_: Annotated[str | None, typer.Option(
        "--format", help="text (the default), markdown or json.")] = None,
    no_text: Annotated[bool, typer.Option("--no-text", help="Hide message bodies.")] = False,
    peek: Annotated[bool, typer.Option("--peek", help="Do not advance the checkpoint.")] = False,
    mine: Annotated[bool, typer.Option(
        "--mine", help="Only your conversations: those you claimed, and those with a draft of "
                       "yours still to approve, send or look at.")] = False,
    json_: Annotated[bool, typer.Option(
        "--json", help="Print one JSON document on stdout (the same as --format json).")] = False,
) -> None:
    """What came in since the last digest: new messages, opt-out reviews,
    conversations waiting for a reply, opt-outs, failed sends. Prints nothing
    when nothing is new (so cron mails only news), unless --json.

    Each person (DMTOOL_OPERATOR, operator.name or the login name) has a
    checkpoint of their own, and so has `--mine`."""
    from dmtool import actor
    from dmtool.cli.reporting import with_json
    from dmtool.services.conversations import (
        LEGACY_CHECKPOINT,
        build_digest,
        checkpoint_key,
        default_since,
        digest_lock,
        render_digest,
    )
    from dmtool.timeutil import fmt, now

    fmt_ = with_json(fmt_, json_, "text")
    if fmt_ not in ("text", "markdown", "json"):
        raise UsageError("--format must be text, markdown or json")
    st = state(ctx)
    store = st.store
    who: str | None
    if mine:
        from dmtool.services.claims import me

        who = me()
    else:
        who = actor.current()
    key = checkpoint_key(who, mine=mine)
    read_only = peek or store.read_only  # a read-only store: as --peek
    with digest_lock(store, read_only):
        t = now()
        checkpoint = store.get_state(key)
        inherited = checkpoint is None and not mine and key != LEGACY_CHECKPOINT
        if inherited:  # the one checkpoint of earlier versions
            checkpoint = store.get_state(LEGACY_CHECKPOINT)
        if since is not None:
            start, window = resolve_since(st, since, t), "since"
        else:
            start, window = default_since(checkpoint, t)
        d = build_digest(store.conn, start, t, window=window, mine=who if mine else None)
        spending, news = _budget_line(st)
        if fmt_ == "json":
            output.print_json({**d.to_dict(with_text=not no_text), "budget_warning": spending})
        elif not d.empty or news:
            markdown = fmt_ == "markdown"
            text = "" if d.empty else render_digest(d, st.zone, markdown=markdown,
                                                     with_text=not no_text)
            if spending:  # headed and indented as render_digest's sections
                text += ("\n" if text else "") + ("## " if markdown else "") + "X spending\n" \
                    + ("- " if markdown else "  ") + spending + "\n"
            sys.stdout.write(output.safe(text))
        if not read_only:
            with store.tx():
                store.set_state(key, fmt(t))
                if inherited:
                    store.set_state(LEGACY_CHECKPOINT, None)
                if news:
                    from dmtool.services.budget import K_DIGESTED, utc_day

                    store.set_state(K_DIGESTED, utc_day(t))


def _budget_line(st: "AppState") -> tuple[str | None, bool]:
    """The digest's line at 80% of an X budget (None below it, or without a
    budget), and whether it is news: the first digest to say it this UTC day
    (then a digest with nothing else new still prints it)."""
    if st.config.get("x.budget.day_usd") is None and st.config.get("x.budget.month_usd") is None:
        return None, False  # no budget: nothing more is loaded
    from dmtool import timeutil
    from dmtool.services import budget

    line = budget.warning(budget.state(st))
    if line is None:
        return None, False
    return line, st.store.get_state(budget.K_DIGESTED) != budget.utc_day(timeutil.now())


def _parse_until(st: "AppState", words: list[str], now: "datetime") -> "datetime":
    """`snooze` WHEN: a duration (3d) or `until DATE [TIME]` in the display zone."""
    from dmtool.timeutil import parse_duration

    if words and words[0] == "until":
        text = " ".join(words[1:])
        if not text:
            raise UsageError("`until` needs a date", hint="e.g. until 2026-12-01 or "
                             "until 2026-12-01T09:00")
        try:
            at = st.zone.parse_typed(text)
        except ValueError as e:
            raise UsageError(str(e)) from None
        if at <= now:
            raise UsageError(f"{text} is not in the future ({st.zone.show(now)} now, "
                             f"{st.zone.name})")
        return at
    if len(words) != 1:
        raise UsageError("give a duration (3d, 1w) or `until DATE`",
                         hint="e.g. dmtool snooze @alice 1w, or until 2026-12-01")
    try:
        until = now + parse_duration(words[0])
    except ValueError as e:
        raise UsageError(str(e), hint="or `until 2026-12-01`") from None
    if until <= now:
        raise UsageError(f"snooze for how long? {words[0]} is no time at all")
    return until


def snooze_cmd(
    ctx: typer.Context,
    handle: HandleArg,
    when: Annotated[list[str], typer.Argument(
        metavar="DURATION|until DATE",
        help="How long (3d, 1w), or `until 2026-12-01` (or 2026-12-01T09:00; your time zone "
             "unless it has an offset).")],
) -> None:
    """Hide a conversation from the inbox and the digest's waiting list until
    then, or until they write again. `inbox --snoozed` lists them."""
    from dmtool.store import contacts as cstore
    from dmtool.store.conversations import set_snooze
    from dmtool.timeutil import fmt, now

    st = state(ctx)
    t = now()
    until = _parse_until(st, when, t)
    with st.store.tx() as conn:
        c = cstore.get(conn, handle)
        if set_snooze(conn, c.id, fmt(until), fmt(t) or "") == 0:
            raise InputError(f"no conversation with @{c.handle} yet")
    output.info(f"@{c.handle}: snoozed until {st.zone.show(until)} ({st.zone.name}), or until "
                "they write")


def unsnooze_cmd(ctx: typer.Context, handle: HandleArg) -> None:
    """Show a snoozed conversation in the inbox again."""
    from dmtool.store import contacts as cstore
    from dmtool.store.conversations import set_snooze, snoozed_until
    from dmtool.timeutil import fmt, now

    st = state(ctx)
    with st.store.tx() as conn:
        c = cstore.get(conn, handle)
        was = snoozed_until(conn, c.id, fmt(now()) or "")
        if set_snooze(conn, c.id, None, "") == 0:
            raise InputError(f"no conversation with @{c.handle} yet")
    output.info(f"@{c.handle}: " + ("back in the inbox" if was else "was not snoozed"))


def register(app: typer.Typer) -> None:
    app.command("inbox")(inbox_cmd)
    app.command("thread")(thread_cmd)
    app.command("done")(done_cmd)
    app.command("reopen")(reopen_cmd)
    app.command("digest")(digest_cmd)
    app.command("snooze")(snooze_cmd)
    app.command("unsnooze")(unsnooze_cmd)
