"""`dmtool contacts ...`.

No `from __future__ import annotations` in command modules: Typer reads each
parameter's annotation, and string annotations would be compiled (twice) for
every command of the group at every start.
"""

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from dmtool import output
from dmtool.appstate import AppState
from dmtool.cli.contact_view import contact_object, contact_view, opt_out_text
from dmtool.cli.context import state
from dmtool.cli.params import HandleArg, JsonOpt, file_argument
from dmtool.errors import InputError, UsageError

STATUSES = ("can-dm", "needs-consent", "opted-out", "blocked", "review", "import-incomplete")
# Not a status but a filter: can-dm contacts that nothing holds back right now
# (a contact may be can-dm and still have to wait: pace, daily caps, a rate limit).
CAN_DM_NOW = "can-dm-now"
_SHOWN_ROWS = 50  # bad import rows listed on stderr; --json carries them all

contacts_app = typer.Typer(help="Your contact record: people, tags, notes and consent.",
                           no_args_is_help=True)


def _now() -> Any:
    from dmtool.timeutil import now

    return now()


def _stamp() -> str:
    """Now, as the store writes times."""
    from dmtool.timeutil import fmt

    return fmt(_now()) or ""


@contacts_app.command("list")
def contacts_list(
    ctx: typer.Context,
    json_: JsonOpt = False,
    tag: Annotated[str | None, typer.Option("--tag", help="Only contacts with this tag.")] = None,
    status_: Annotated[str | None, typer.Option(
        "--status", help="can-dm (consent to DM, though pace or a cap may make you wait), "
                         "can-dm-now (may be DMed right now), needs-consent, opted-out, blocked, "
                         "review or import-incomplete.")] = None,
) -> None:
    """List contacts with their consent status, and whether you may DM them right
    now: `can-dm` means they consented; "can DM now" says `wait` when pace, a
    daily cap or X's rate limit holds the next DM back."""
    from dmtool.services.consent import listing
    from dmtool.store import contacts as cstore

    if status_ is not None and status_ not in (*STATUSES, CAN_DM_NOW):
        raise UsageError(f"--status must be one of {', '.join((*STATUSES, CAN_DM_NOW))}")
    st = state(ctx)
    # One contact at a time, from the store to stdout: 50,000 contacts take no
    # more memory than ten (issue 16).
    handle, user_id, name, tags, last_in, last_out = map(cstore.LISTED.index, (
        "handle", "user_id", "name", "tag_list", "last_inbound_at", "last_outbound_at"))
    items = (contact_object(handle=r[handle], user_id=r[user_id], name=r[name],
                            tags=cstore.tags_from(r[tags]), status=s.status, can_dm=s.allowed,
                            last_in=r[last_in], last_out=r[last_out])
             for r, s in listing(st.store.conn, st.config.policy(), _now(), tag)
             if (s.allowed if status_ == CAN_DM_NOW else status_ in (None, s.status)))
    if json_:
        output.print_json_list(items)
        return
    zone = st.zone
    output.print_table(
        ["handle", "name", "status", "tags", "last in", "last out", "can DM now"],
        (["@" + i["handle"], i["name"], i["status"], i["tags"], zone.show(i["last_inbound_at"]),
          zone.show(i["last_outbound_at"]), _now_cell(i["status"], i["can_dm"])]
         for i in items),
        empty="no contacts yet: `dmtool sync`, `dmtool contacts add` or `dmtool contacts import`")


def _now_cell(status: str, can_dm: bool) -> str:
    """Whether a DM could go right now: `yes`, `wait` (consent, but pace, a cap
    or a rate limit holds it back) or nothing (no consent at all)."""
    if can_dm:
        return "yes"
    return "wait" if status == "can-dm" else ""


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
    from dmtool.models import clean_handle, clean_name, clean_note
    from dmtool.store import contacts as cstore

    handle = clean_handle(handle)  # before the store is opened: a new handle follows X's rule
    name = clean_name(name)
    note = clean_note(note) if note is not None else None
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
    from dmtool.store.audit import latest_actor

    conn = st.store.conn
    c = cstore.get(conn, handle)  # a read: local only (check asks X)
    obj, d = contact_view(st, c)
    msgs = cstore.messages(conn, c.id, limit=5)
    obj.update({
        "first_contact": d.first_contact,
        "reasons": [r.to_dict() for r in d.reasons],
        "evidence": [e.to_dict() for e in cstore.evidence(conn, c.id)],
        "opted_out_at": c.opted_out_at, "opt_out_words": c.opt_out_words,
        "opt_out_reason": c.opt_out_reason,
        "opted_out_by": latest_actor(conn, c.user_id, c.handle, "opted_out")
        if c.opted_out_at else None,
        "optout_review": c.optout_review_text, "blocked_at": c.blocked_at,
        "blocked_by": latest_actor(conn, c.user_id, c.handle, "blocked") if c.blocked_at else None,
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
    fields = [
        ("handle", "@" + data["handle"]), ("name", data["name"]), ("user id", data["user_id"]),
        ("tags", data["tags"]), ("status", data["status"]),
        ("can DM now", _can_dm_now_text(data)),
        ("opted out", opt_out_text(zone.show(data["opted_out_at"]), data["opt_out_words"],
                                   data["opt_out_reason"]) if data["opted_out_at"] else None),
    ]
    # Who made the decisions that stop DMs (the audit log's actor).
    for what, key in (("opted out by", "opted_out_by"), ("blocked by", "blocked_by")):
        if data[key]:
            fields.append((what, data[key]))
    output.print_fields(fields)
    output.print_text("consent evidence:" if data["evidence"] else "consent evidence: none")
    for e in data["evidence"]:
        output.print_text(f"  {zone.show(e['at'])}  {e['kind']}  {e['text'] or e['ref']}"
                          f"{_by(e['recorded_by'])}")
    for r in data["reasons"]:
        output.print_text(f"  {r['code']}: {r['message']}")
    if data["notes"]:
        output.print_text("notes:")
        for n in data["notes"]:
            output.print_text(note_line(zone.show(n["at"]), n))


def _by(who: str | None) -> str:
    """" (by NAME)" after a record, when it says who made it."""
    return f" (by {who})" if who else ""


def note_line(at: str, note: dict[str, Any]) -> str:
    """One note for people: when, who wrote it, the text (its lines indented)."""
    who = f"note by {note['author']}" if note.get("author") else "note"
    text = str(note["text"]).replace("\n", "\n    ")
    return f"  {at}  {who}: {text}"


def _can_dm_now_text(data: dict[str, Any]) -> str:
    """`yes`, or `no` with what holds it back (the reasons are listed below)."""
    if data["can_dm"]:
        return "yes"
    codes = [r["code"] for r in data["reasons"] if r.get("severity", "block") == "block"]
    wait = " (consent is fine: it only has to wait)" if data["status"] == "can-dm" else ""
    return f"no: {', '.join(codes)}{wait}" if codes else "no"


@contacts_app.command("note")
def contacts_note(ctx: typer.Context, handle: HandleArg,
                  text: Annotated[str, typer.Argument(help="The note.")]) -> None:
    """Add a note to a contact."""
    from dmtool.models import clean_note
    from dmtool.store import contacts as cstore

    text = clean_note(text)
    if not text:
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

    clean = list(dict.fromkeys(cstore.check_tag(t) for t in tags))
    with state(ctx).store.tx() as conn:
        c = cstore.get(conn, handle)
        had = set(c.tags)
        if remove:
            cstore.remove_tags(conn, c.id, clean)
        else:
            cstore.add_tags(conn, c.id, clean)
    # Say what happened to each tag: a tag it did not have is not "removed".
    changed = [t for t in clean if (t in had) == remove]
    same = [t for t in clean if (t in had) != remove]
    if changed:
        output.info(f"{'removed from' if remove else 'tagged'} @{c.handle}: {', '.join(changed)}")
    if same:
        output.info(f"{'not tagged' if remove else 'already tagged'}, nothing changed: "
                    f"@{c.handle} {'had no' if remove else 'has'} "
                    f"{'tag' if len(same) == 1 else 'tags'} {', '.join(same)}")


def _format_for(file: str, fmt: str | None, data: str) -> str:
    """--format, else the suffix (.csv, .json), else what the text looks like."""
    if fmt is not None:
        if fmt not in ("csv", "json"):
            raise UsageError("--format must be csv or json")
        return fmt
    suffix = Path(file).suffix.lower() if file != "-" else ""
    if suffix in (".csv", ".json"):
        return suffix[1:]
    from dmtool.services.contacts_io import sniff

    return sniff(data)


@contacts_app.command("import")
def contacts_import(
    ctx: typer.Context,
    file: Annotated[str, file_argument("A CSV or JSON file ('-' for stdin).")],
    fmt: Annotated[str | None, typer.Option(
        "--format", help="csv or json (default: by suffix, else by content).")] = None,
    skip_invalid: Annotated[bool, typer.Option(
        "--skip-invalid", help="Import the valid rows and list the others.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Import contacts. A file with bad rows is refused whole unless --skip-invalid.
    An import never records consent; an `opted_out_at` column (as `contacts
    export` writes it) adds an opt-out, never removes one."""
    from dmtool.cli.textfile import read_text
    from dmtool.services import contacts_io
    from dmtool.store import contacts as cstore
    from dmtool.timeutil import fmt as tfmt

    if fmt is not None and fmt not in ("csv", "json"):
        raise UsageError("--format must be csv or json")
    data = read_text(file, limit=contacts_io.MAX_IMPORT_BYTES, what="a contacts import")
    kind = _format_for(file, fmt, data)
    parsed = contacts_io.parse(data, kind)
    unit = "item" if kind == "json" else "line"
    name = "stdin" if file == "-" else file
    if parsed.bad and not skip_invalid:
        if not json_:  # with --json the rows travel in the error's details
            for n, reason in parsed.bad[:_SHOWN_ROWS]:
                output.info(f"{name}:{n}: {reason}")
            if len(parsed.bad) > _SHOWN_ROWS:
                output.info(f"... and {len(parsed.bad) - _SHOWN_ROWS:,} more")
        raise InputError(
            f"{len(parsed.bad):,} invalid {unit}{'s' if len(parsed.bad) != 1 else ''} in {name}; "
            "nothing imported", hint="fix them, or add --skip-invalid to import the valid rows",
            details=[{unit: n, "reason": reason} for n, reason in parsed.bad])
    st = state(ctx)
    now = tfmt(_now()) or ""
    with st.store.tx() as conn:
        res = contacts_io.apply(conn, parsed.rows, now)
        res.skipped = parsed.bad
        cstore.audit(conn, "contacts_imported", now=now, file=name, created=res.created,
                     updated=res.updated, skipped=len(res.skipped),
                     opted_out=len(res.opted_out))
    if json_:
        output.print_json(res.to_dict())
        return
    for n, reason in res.skipped:
        output.info(f"skipped {unit} {n}: {reason}")
    if res.opted_out:
        output.info(f"opted out (from the file's opted_out_at): "
                    f"{', '.join('@' + h for h in res.opted_out)}")
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
    """Write all contacts to stdout: handle, user_id, name, tags, consent status,
    opt-out date, last message in and out, and notes (in CSV one per line)."""
    from dmtool.cli.reporting import with_json
    from dmtool.services import contacts_io

    fmt = with_json(fmt_, json_, "csv")
    if fmt not in ("csv", "json"):
        raise UsageError("--format must be csv or json")
    st = state(ctx)
    records = contacts_io.export_records(st.store.conn, st.config.policy(), _now())
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
        if not c.blocked_at:
            output.info(f"@{c.handle} is not blocked: nothing changed")
            return
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
    """Record consent you obtained: they asked to be DMed, or opted in off X.
    Someone not yet a contact becomes one, after X confirms the handle (as
    `check` looks it up)."""
    from dmtool.services.identity import contact_to_engage
    from dmtool.store import contacts as cstore

    if kind not in ("request", "offline"):
        raise UsageError("--kind must be request or offline")
    from dmtool.models import MAX_EVIDENCE_LENGTH
    from dmtool.textnorm import typed

    evidence = typed(evidence, "--evidence", max_length=MAX_EVIDENCE_LENGTH)
    if not evidence:
        raise InputError("--evidence must say what happened", hint='e.g. --evidence "asked at '
                         'the booth to be DMed the beta link"')
    st = state(ctx)
    found, created, unverified = contact_to_engage(st, handle)  # before the transaction: it may ask X
    if created:
        output.info(f"added @{found.handle} as a contact"
                    + (f" (not verified on X: {unverified})" if unverified else
                       f" (X user {found.user_id})"))
    now = _stamp()
    with st.store.tx() as conn:
        c = cstore.by_id(conn, found.id)
        # Each record is its own: two at the same instant (a script, a pinned
        # clock) must not collide on (kind, ref) and be dropped in silence.
        import secrets  # not at the top: it loads hashlib and random for every contacts command

        ref = f"manual:{kind}:{now}:{secrets.token_hex(4)}"
        cstore.add_evidence(conn, c.id, kind, now, ref, evidence, now=now)
        cstore.audit(conn, "consent_recorded", now=now, contact=c, kind=kind, evidence=evidence)
    output.info(f"recorded {kind} consent for @{c.handle}")
    # Consent does not outweigh a stop: say so rather than let "recorded" suggest
    # they may now be DMed.
    if c.opted_out_at:
        output.info(f"note: this changes nothing for now: @{c.handle} opted out on "
                    f"{c.opted_out_at[:10]}, and only a START from them lifts it")
    elif c.blocked_at:
        output.info(f"note: this changes nothing for now: @{c.handle} is blocked "
                    f"(`dmtool contacts unblock @{c.handle}` first)")
    elif c.optout_review_text:
        output.info(f"note: this changes nothing for now: @{c.handle} is in opt-out review "
                    f"(settle it with `dmtool contacts optout @{c.handle}` or --dismiss)")


@contacts_app.command("optout")
def contacts_optout(
    ctx: typer.Context, handle: HandleArg,
    dismiss: Annotated[bool, typer.Option(
        "--dismiss", help="It was not a request to stop (needs --reason).")] = False,
    reason: Annotated[str | None, typer.Option(
        "--reason", help="Why: kept and shown with the opt-out (or the dismissal).")] = None,
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="Do not ask (needed off a terminal for someone not in review).")]
    = False,
) -> None:
    """Opt a contact out, or settle an opt-out review.

    In review (they wrote something that may mean stop): `optout HANDLE`
    confirms it, `--dismiss --reason TEXT` dismisses it. Anyone else: records
    that they asked you to stop some other way (by phone, by email), after a
    confirmation (`--yes` off a terminal). Only a START from them lifts an
    opt-out; `--reason` is kept and shown wherever the opt-out is shown."""
    from dmtool.models import MAX_REASON_LENGTH
    from dmtool.store import contacts as cstore
    from dmtool.textnorm import typed

    why = None if reason is None else typed(reason, "--reason", max_length=MAX_REASON_LENGTH)
    if reason is not None and not why:
        raise UsageError("--reason is empty", hint='say why, e.g. --reason "asked by phone to stop"')
    st = state(ctx)
    now = _stamp()
    if dismiss:
        if why is None:
            raise UsageError("--dismiss needs --reason TEXT", hint="say why it was not a stop")
        with st.store.tx() as conn:
            c = cstore.get(conn, handle)
            if not c.optout_review_text:
                raise InputError(f"@{c.handle} is not in opt-out review: nothing to dismiss")
            cstore.set_review(conn, c, None, None)
            cstore.audit(conn, "optout_dismissed", now=now, contact=c, codes=["E_OPTOUT_REVIEW"],
                         reason=why, text=c.optout_review_text)
        output.info(f"dismissed the opt-out review of @{c.handle}")
        return
    c = cstore.get(st.store.conn, handle)
    if c.opted_out_at:
        output.info(f"@{c.handle} is already opted out (since {c.opted_out_at[:10]}): "
                    "nothing changed")
        return
    if not c.optout_review_text and not yes:
        # No message of theirs asked for it: an opt-out by hand cannot be undone by
        # any dmtool command, so it is confirmed, like `contacts forget`.
        if not output.interactive():
            raise UsageError(f"opting out @{c.handle} needs confirmation: they are not in "
                             "opt-out review, and only a START from them lifts an opt-out",
                             hint="add --yes (and --reason TEXT to say why)")
        if not typer.confirm(f"Opt out @{c.handle}? Only a START from them can lift it."):
            output.info(f"nothing changed: @{c.handle} is not opted out")
            return
    with st.store.tx() as conn:
        c = cstore.get(conn, handle)
        if c.opted_out_at:  # another process was quicker: the same result
            output.info(f"@{c.handle} is already opted out: nothing changed")
            return
        words = c.optout_review_text  # what they wrote, if a message put them in review
        cstore.set_opted_out(conn, c, now, words, why)
        cstore.audit(conn, "opted_out", now=now, contact=c, codes=["E_OPTED_OUT"],
                     words=words or "", by="user", reason=why or "")
    because = f" ({why})" if why else ""
    output.info(f"@{c.handle} is opted out{because}; only a START from them lifts it")


def register(app: typer.Typer) -> None:
    app.add_typer(contacts_app, name="contacts")
