"""`dmtool contacts ...` and `dmtool check`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from dmtool import output
from dmtool.appstate import AppState
from dmtool.cli.context import state
from dmtool.cli.params import HandleArg, JsonOpt
from dmtool.errors import InputError, UsageError

STATUSES = ("can-dm", "needs-consent", "opted-out", "blocked", "review")

contacts_app = typer.Typer(help="Your contact record: people, tags, notes and consent.",
                           no_args_is_help=True)


def _now() -> Any:
    from dmtool.timeutil import now

    return now()


def _stamp() -> str:
    """Now, as the store writes times."""
    from dmtool.timeutil import fmt

    return fmt(_now()) or ""


def contact_object(*, handle: str, user_id: str | None, name: str | None, tags: list[str],
                   status: str, can_dm: bool, last_in: str | None,
                   last_out: str | None) -> dict[str, Any]:
    """The contact object of the JSON contract (cli.md), wherever a contact is shown."""
    return {"handle": handle, "user_id": user_id, "name": name, "tags": tags, "status": status,
            "can_dm": can_dm, "last_inbound_at": last_in, "last_outbound_at": last_out}


def contact_view(st: AppState, c: Any) -> tuple[dict[str, Any], Any]:
    """One contact's contract object, and the policy decision behind it."""
    from dmtool.services import consent
    from dmtool.store import contacts as cstore

    conn = st.store.conn
    d = consent.decide(conn, c, None, st.config.policy(), _now())
    last_in, last_out = cstore.last_message_times(conn, c.id)
    obj = contact_object(handle=c.handle, user_id=c.user_id, name=c.name, tags=c.tags,
                         status=consent.status(c, d), can_dm=d.allowed, last_in=last_in,
                         last_out=last_out)
    return obj, d


@contacts_app.command("list")
def contacts_list(
    ctx: typer.Context,
    json_: JsonOpt = False,
    tag: Annotated[str | None, typer.Option("--tag", help="Only contacts with this tag.")] = None,
    status_: Annotated[str | None, typer.Option(
        "--status", help="can-dm, needs-consent, opted-out, blocked or review.")] = None,
) -> None:
    """List contacts with their consent status."""
    from dmtool.services.consent import list_statuses
    from dmtool.store import contacts as cstore

    if status_ is not None and status_ not in STATUSES:
        raise UsageError(f"--status must be one of {', '.join(STATUSES)}")
    st = state(ctx)
    conn = st.store.conn
    rows = cstore.summaries(conn, tag)
    items = []
    for r, (d, s) in zip(rows, list_statuses(conn, rows, st.config.policy(), _now()), strict=True):
        if status_ and s != status_:
            continue
        items.append(contact_object(handle=r["handle"], user_id=r["user_id"], name=r["name"],
                                    tags=cstore.tags_of(r), status=s, can_dm=d.allowed,
                                    last_in=r["last_inbound_at"], last_out=r["last_outbound_at"]))
    if json_:
        output.print_json(items)
        return
    zone = st.zone
    output.print_table(
        ["handle", "name", "status", "tags", "last in", "last out"],
        [["@" + i["handle"], i["name"], i["status"], i["tags"],
          zone.show(i["last_inbound_at"]), zone.show(i["last_outbound_at"])] for i in items],
        empty="no contacts yet: `dmtool sync`, `dmtool contacts add` or `dmtool contacts import`")


@contacts_app.command("add")
def contacts_add(
    ctx: typer.Context,
    handle: Annotated[str, typer.Argument(  # a new handle: nothing to complete
        help="X handle, with or without @.")],
    name: Annotated[str | None, typer.Option("--name", help="Display name.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable).")] = None,
    note: Annotated[str | None, typer.Option("--note", help="A first note.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Add a contact. Adding someone is not consent to DM them."""
    from dmtool.store import contacts as cstore

    st = state(ctx)
    tags = [cstore.check_tag(t) for t in tag or []]
    now = _stamp()
    with st.store.tx() as conn:
        if cstore.find(conn, handle) is not None:
            raise InputError(f"@{handle.lstrip('@')} is already a contact",
                             hint="use `dmtool contacts tag` or `contacts note` to change it")
        c = cstore.create(conn, handle, now=now, name=name)
        cstore.add_tags(conn, c.id, tags)
        if note:
            cstore.add_note(conn, c.id, note, now=now)
        cstore.audit(conn, "contact_added", now=now, contact=c)
    if json_:
        output.print_json({"handle": c.handle, "user_id": c.user_id, "name": c.name, "tags": tags})
    else:
        output.info(f"added @{c.handle} (no consent recorded: adding is not consent)")


def _show_data(st: AppState, handle: str) -> dict[str, Any]:
    from dmtool.store import contacts as cstore

    conn = st.store.conn
    c = cstore.get(conn, handle)  # a read: local only (check asks X)
    obj, d = contact_view(st, c)
    msgs = cstore.messages(conn, c.id, limit=5)
    obj.update({
        "first_contact": d.first_contact,
        "reasons": [r.to_dict() for r in d.reasons],
        "evidence": [e.to_dict() for e in cstore.evidence(conn, c.id)],
        "opted_out_at": c.opted_out_at, "opt_out_words": c.opt_out_words,
        "optout_review": c.optout_review_text, "blocked_at": c.blocked_at,
        "dm_closed_at": c.dm_closed_at,
        "notes": cstore.notes(conn, c.id),
        "messages": [m.to_dict() for m in msgs],
    })
    return obj


@contacts_app.command("show")
def contacts_show(ctx: typer.Context, handle: HandleArg, json_: JsonOpt = False) -> None:
    """The contact, consent evidence, notes and the last messages."""
    st = state(ctx)
    data = _show_data(st, handle)
    if json_:
        output.print_json(data)
        return
    zone = st.zone
    output.print_fields([
        ("handle", "@" + data["handle"]), ("name", data["name"]), ("user id", data["user_id"]),
        ("tags", data["tags"]), ("status", data["status"]), ("can DM now", data["can_dm"]),
        ("opted out", f"{zone.show(data['opted_out_at'])} ({data['opt_out_words']})"
         if data["opted_out_at"] else None),
    ])
    output.print_text("consent evidence:" if data["evidence"] else "consent evidence: none")
    for e in data["evidence"]:
        output.print_text(f"  {zone.show(e['at'])}  {e['kind']}  {e['text'] or e['ref']}")
    for r in data["reasons"]:
        output.print_text(f"  {r['code']}: {r['message']}")
    if data["notes"]:
        output.print_text("notes:")
        for n in data["notes"]:
            output.print_text(f"  {zone.show(n['at'])}  {n['text']}")
    if data["messages"]:
        output.print_text("last messages:")
        for m in data["messages"]:
            arrow = "<-" if m["direction"] == "in" else "->"
            output.print_text(f"  {zone.show(m['at'])} {arrow} {m['text']}")


@contacts_app.command("note")
def contacts_note(ctx: typer.Context, handle: HandleArg,
                  text: Annotated[str, typer.Argument(help="The note.")]) -> None:
    """Add a note to a contact."""
    from dmtool.store import contacts as cstore

    if not text.strip():
        raise InputError("the note is empty")
    with state(ctx).store.tx() as conn:
        c = cstore.get(conn, handle)
        cstore.add_note(conn, c.id, text, now=_stamp())
    output.info(f"noted on @{c.handle}")


@contacts_app.command("tag")
def contacts_tag(
    ctx: typer.Context, handle: HandleArg,
    tags: Annotated[list[str], typer.Argument(help="Tags to add (or remove).")],
    remove: Annotated[bool, typer.Option("--remove", help="Remove these tags.")] = False,
) -> None:
    """Add tags to a contact, or remove them with --remove."""
    from dmtool.store import contacts as cstore

    clean = [cstore.check_tag(t) for t in tags]
    with state(ctx).store.tx() as conn:
        c = cstore.get(conn, handle)
        if remove:
            cstore.remove_tags(conn, c.id, clean)
        else:
            cstore.add_tags(conn, c.id, clean)
    output.info(f"{'removed from' if remove else 'tagged'} @{c.handle}: {', '.join(clean)}")


def _format_for(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in ("csv", "json"):
            raise UsageError("--format must be csv or json")
        return fmt
    return "json" if path.suffix.lower() == ".json" else "csv"


@contacts_app.command("import")
def contacts_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A CSV or JSON file ('-' for stdin).")],
    fmt: Annotated[str | None, typer.Option("--format", help="csv or json (default: by suffix).")]
    = None,
    skip_invalid: Annotated[bool, typer.Option(
        "--skip-invalid", help="Import the valid rows and list the others.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Import contacts. A file with bad rows is refused whole unless --skip-invalid.
    An import never records consent."""
    from dmtool.services import contacts_io
    from dmtool.store import contacts as cstore
    from dmtool.timeutil import fmt as tfmt

    kind = _format_for(file, fmt)
    try:
        data = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"no such file: {file}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read {file}: {e}") from None
    parsed = contacts_io.parse(data, kind)
    unit = "item" if kind == "json" else "line"
    if parsed.bad and not skip_invalid:
        if not json_:  # with --json the rows travel in the error's details
            for n, reason in parsed.bad:
                output.info(f"{file}:{n}: {reason}")
        raise InputError(
            f"{len(parsed.bad)} invalid {unit}{'s' if len(parsed.bad) != 1 else ''} in {file}; "
            "nothing imported", hint="fix them, or add --skip-invalid to import the valid rows",
            details=[{unit: n, "reason": reason} for n, reason in parsed.bad])
    st = state(ctx)
    now = tfmt(_now()) or ""
    with st.store.tx() as conn:
        res = contacts_io.apply(conn, parsed.rows, now)
        res.skipped = parsed.bad
        cstore.audit(conn, "contacts_imported", now=now, file=str(file), created=res.created,
                     updated=res.updated, skipped=len(res.skipped))
    if json_:
        output.print_json(res.to_dict())
        return
    for n, reason in res.skipped:
        output.info(f"skipped {unit} {n}: {reason}")
    output.info(f"imported: {res.created} new, {res.updated} updated, {res.unchanged} unchanged, "
                f"{len(res.skipped)} skipped (no consent recorded)")


@contacts_app.command("export")
def contacts_export(
    ctx: typer.Context,
    fmt_: Annotated[str | None, typer.Option("--format", help="csv (the default) or json.")]
    = None,
    json_: Annotated[bool, typer.Option(
        "--json", help="Print one JSON document on stdout (the same as --format json).")] = False,
) -> None:
    """Write all contacts (handle, user_id, name, tags, notes) to stdout."""
    from dmtool.cli.reporting import with_json
    from dmtool.services import contacts_io

    fmt = with_json(fmt_, json_, "csv")
    if fmt not in ("csv", "json"):
        raise UsageError("--format must be csv or json")
    records = contacts_io.export_records(state(ctx).store.conn)
    if fmt == "json":
        output.print_json(records)
    else:
        sys.stdout.write(contacts_io.to_csv(records))


@contacts_app.command("block")
def contacts_block(ctx: typer.Context, handle: HandleArg) -> None:
    """Put someone on your do-not-contact list (added as a contact if new)."""
    from dmtool.store import contacts as cstore

    now = _stamp()
    with state(ctx).store.tx() as conn:
        c = cstore.find(conn, handle) or cstore.create(conn, handle, now=now)
        cstore.set_blocked(conn, c, now)
        cstore.audit(conn, "blocked", now=now, contact=c, codes=["E_BLOCKED"])
    output.info(f"blocked @{c.handle}: dmtool will not DM them")


@contacts_app.command("unblock")
def contacts_unblock(ctx: typer.Context, handle: HandleArg) -> None:
    """Take a contact off your do-not-contact list."""
    from dmtool.store import contacts as cstore

    now = _stamp()
    with state(ctx).store.tx() as conn:
        c = cstore.get(conn, handle)
        kept = cstore.set_blocked(conn, c, None)
        cstore.audit(conn, "unblocked", now=now, contact=c)
    output.info(f"unblocked @{c.handle}")
    for user_id in kept:
        output.info(f"note: the block on X user {user_id}, who used @{c.handle}, stays with that "
                    f"account; it applies to @{c.handle} again if X says that is who they are")


@contacts_app.command("forget")
def contacts_forget(
    ctx: typer.Context, handle: HandleArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete a contact with its messages, drafts and notes. An opt-out or a
    block survives as a suppression entry."""
    from dmtool.store import contacts as cstore

    st = state(ctx)
    c = cstore.get(st.store.conn, handle)
    if not yes:
        if not output.interactive():
            raise UsageError(f"forgetting @{c.handle} needs confirmation", hint="add --yes")
        if not typer.confirm(f"Delete @{c.handle} with all messages, drafts and notes?"):
            raise typer.Exit(1)
    from dmtool.services.send import send_lock
    from dmtool.store import drafts as dstore

    now = _stamp()
    # Under the send lock: a DM in flight to this contact must be recorded first.
    with send_lock(st), st.store.tx() as conn:
        c = cstore.get(conn, handle)
        unsettled = dstore.unsettled_ids(conn, c.id)
        if unsettled:
            raise InputError(f"@{c.handle} has a send whose outcome is not known yet "
                             f"(draft {unsettled[0]})",
                             hint=f"run `dmtool send {unsettled[0]}` to settle it, then forget")
        kept = [k for k, v in (("blocked", c.blocked_at), ("opted_out", c.opted_out_at)) if v]
        cstore.delete(conn, c)
        cstore.audit(conn, "forgotten", now=now, contact=c, suppressions=kept)
    output.info(f"forgot @{c.handle}" + (f" (kept: {', '.join(kept)})" if kept else ""))


@contacts_app.command("engage")
def contacts_engage(
    ctx: typer.Context, handle: HandleArg,
    evidence: Annotated[str, typer.Option("--evidence", help="What happened, in your words.")],
    kind: Annotated[str, typer.Option(
        "--kind", help="request (they asked you to DM them) or offline (opted in off X).")]
    = "request",
) -> None:
    """Record consent you obtained: they asked to be DMed, or opted in off X."""
    from dmtool.services.identity import contact_for
    from dmtool.store import contacts as cstore

    if kind not in ("request", "offline"):
        raise UsageError("--kind must be request or offline")
    if not evidence.strip():
        raise InputError("--evidence must say what happened", hint='e.g. --evidence "asked at '
                         'the booth to be DMed the beta link"')
    st = state(ctx)
    found = contact_for(st, handle)  # before the transaction: it may ask X
    now = _stamp()
    with st.store.tx() as conn:
        c = cstore.by_id(conn, found.id)
        cstore.add_evidence(conn, c.id, kind, now, f"manual:{kind}:{now}", evidence.strip(), now=now)
        cstore.audit(conn, "consent_recorded", now=now, contact=c, kind=kind,
                     evidence=evidence.strip())
    output.info(f"recorded {kind} consent for @{c.handle}")


@contacts_app.command("optout")
def contacts_optout(
    ctx: typer.Context, handle: HandleArg,
    dismiss: Annotated[bool, typer.Option(
        "--dismiss", help="It was not a request to stop (needs --reason).")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why you dismiss it.")] = None,
) -> None:
    """Settle an opt-out review: confirm the opt-out, or dismiss it with a reason."""
    from dmtool.store import contacts as cstore

    now = _stamp()
    with state(ctx).store.tx() as conn:
        c = cstore.get(conn, handle)
        if dismiss:
            if not reason or not reason.strip():
                raise UsageError("--dismiss needs --reason TEXT", hint="say why it was not a stop")
            if not c.optout_review_text:
                raise InputError(f"@{c.handle} is not in opt-out review")
            cstore.set_review(conn, c, None, None)
            cstore.audit(conn, "optout_dismissed", now=now, contact=c, codes=["E_OPTOUT_REVIEW"],
                         reason=reason.strip(), text=c.optout_review_text)
            output.info(f"dismissed the opt-out review of @{c.handle}")
            return
        if reason is not None:
            raise UsageError("--reason goes with --dismiss")
        if c.opted_out_at:
            output.info(f"@{c.handle} is already opted out")
            return
        words = c.optout_review_text  # what they wrote, if a message put them in review
        cstore.set_opted_out(conn, c, now, words)
        cstore.audit(conn, "opted_out", now=now, contact=c, codes=["E_OPTED_OUT"],
                     words=words or "", by="user")
    output.info(f"@{c.handle} is opted out; only a START from them lifts it")


def check_cmd(ctx: typer.Context, handle: HandleArg, json_: JsonOpt = False) -> None:
    """May I DM this person now? Exit 0 yes, 3 no, with the reasons.

    A handle not in your record is looked up on X once, to find a contact
    known only by user id (as an archive import leaves them); anyone else is
    not found (exit 1). A check never adds a contact."""
    from dmtool.services import consent
    from dmtool.services.identity import contact_for
    from dmtool.store import contacts as cstore
    from dmtool.timeutil import fmt

    st = state(ctx)
    found = contact_for(st, handle)  # before the transaction: it may ask X
    now = _now()
    with st.store.tx() as conn:
        c = cstore.by_id(conn, found.id)
        d = consent.decide(conn, c, None, st.config.policy(), now)
        if not d.allowed:
            cstore.audit(conn, "refused", now=fmt(now) or "", contact=c,
                         codes=[r.code for r in d.blocking], command="check")
        total = consent.evidence_total(conn, c, d)
    data = {"handle": c.handle, "user_id": c.user_id, "allowed": d.allowed,
            "first_contact": d.first_contact, "reasons": [r.to_dict() for r in d.reasons],
            "evidence": [{"kind": e.kind, "at": fmt(e.at), "ref": e.ref} for e in d.evidence],
            "evidence_total": total}
    if json_:
        output.print_json(data)
    else:
        if d.allowed:
            first = " (a first contact: confirm it yourself, no links)" if d.first_contact else ""
            output.print_text(f"yes: you may DM @{c.handle}{first}")
        else:
            output.print_text(f"no: do not DM @{c.handle}")
        for r in d.reasons:
            output.print_text(f"  {r.code}: {r.message}")
        for e in d.evidence:
            output.print_text(f"  evidence: {e.kind} on {st.zone.show(e.at)} "
                              f"({e.text or e.ref})")
        if total > len(d.evidence):
            output.print_text(f"  ({total - len(d.evidence)} earlier records of the same kinds: "
                              f"`dmtool contacts show @{c.handle}` lists them all)")
    if not d.allowed:
        raise typer.Exit(5 if d.temporary else 3)


def register(app: typer.Typer) -> None:
    app.add_typer(contacts_app, name="contacts")
    app.command("check")(check_cmd)
