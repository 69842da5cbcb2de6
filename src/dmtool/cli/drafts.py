"""`dmtool draft`, `drafts ...`, `review`, `send`, `templates ...` and `log`."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dmtool import output
from dmtool.appstate import AppState
from dmtool.cli import completion
from dmtool.cli.context import state
from dmtool.cli.params import HandleArg, JsonOpt, TemplateArg, draft_id_argument, file_option
from dmtool.errors import DmtoolError, PolicyRefused, UsageError

if TYPE_CHECKING:
    from dmtool.localtime import DisplayZone
    from dmtool.services.drafting import DraftView
    from dmtool.services.send import SendResult
    from dmtool.store.drafts import Draft

IdArg = Annotated[int, draft_id_argument(completion.complete_draft)]
EditableIdArg = Annotated[int, draft_id_argument(completion.complete_editable_draft)]
DiscardableIdArg = Annotated[int, draft_id_argument(completion.complete_discardable_draft)]
SendableIdArg = Annotated[int, draft_id_argument(completion.complete_sendable_draft)]
FileOpt = Annotated[str | None, file_option("Read the text from this file ('-' for stdin).")]
ForceOpt = Annotated[bool, typer.Option(
    "--force", help="Go past another person's claim on the conversation (recorded in the log "
                    "under your name).")]

drafts_app = typer.Typer(help="Your drafts: list, show, edit and discard them.", no_args_is_help=True)
templates_app = typer.Typer(help="Saved replies with {name}-style variables; a template only "
                            "ever makes a draft.", no_args_is_help=True)


# --- input -----------------------------------------------------------------------------


# A DM is at most 10,000 characters (lint L002); a file far larger is a wrong file.
_MAX_TEXT_FILE_BYTES = 1 << 20


def _read_file(path: str) -> str:
    from dmtool.cli.textfile import read_text

    return read_text(path, limit=_MAX_TEXT_FILE_BYTES, what="a message")


def _edit(environ: Mapping[str, str], initial: str = "", what: str = "the text") -> str:
    from dmtool.cli.editor import edit

    return edit(environ, initial, what)


def _one_source(text: str | None, file: str | None) -> str | None:
    if text is not None and file is not None:
        raise UsageError("give the text or --file, not both")
    return _read_file(file) if file is not None else text


# --- rendering -------------------------------------------------------------------------


def _sandbox(st: AppState) -> str:
    return " (sandbox)" if st.sandbox else ""


def _reason_kind(code: str, severity: str) -> str:
    """How a policy reason reads: a warning, a wait (send refuses until it is
    over) or a policy refusal."""
    from dmtool.services.drafting import TRANSIENT_CODES

    if severity == "warning":
        return "warning"
    return "wait" if code in TRANSIENT_CODES else "policy"


def _print_findings(v: DraftView, *, err: bool = False) -> None:
    say = output.info if err else output.print_text
    for f in v.findings:
        say(f"  {f.severity} {f.code}: {f.message}")
    for r in v.decision.reasons:
        if r.code != "E_LINT":  # lint errors are listed above already
            say(f"  {_reason_kind(r.code, r.severity)} {r.code}: {r.message}")


def _waits(v: DraftView) -> list[str]:
    from dmtool.services.drafting import TRANSIENT_CODES

    return [r.code for r in v.decision.blocking if r.code in TRANSIENT_CODES]


def _print_draft(v: DraftView, zone: DisplayZone) -> None:
    d = v.draft
    fields = [
        ("draft", d.id), ("contact", f"@{d.handle}" + (f" ({v.contact.name})" if v.contact.name else "")),
        ("status", d.status), ("first contact", v.first_contact), ("template", d.template),
        ("written by", d.author), ("created", zone.show(d.created_at)),
        ("updated", zone.show(d.updated_at)),
        ("approved", zone.show(d.approved_at) or None), ("approved by", d.approved_by),
        ("sent by", d.sent_by),
        ("acknowledged", sorted(d.acknowledged_codes) or None), ("reason", d.reason),
        ("sent", zone.show(d.sent_at) or None), ("event", d.dm_event_id),
    ]
    output.print_fields([(k, val) for k, val in fields if val is not None])
    output.print_text("text:")
    for line in d.text.splitlines():
        output.print_text(f"  {line}")
    if v.findings or v.decision.reasons:
        output.print_text("checks:")
        _print_findings(v)


def _summary_row(d: Draft, zone: DisplayZone) -> list[Any]:
    return [d.id, d.status, "@" + d.handle, zone.show(d.updated_at), d.author, d.approved_by,
            d.text]


# --- draft -------------------------------------------------------------------------------


def draft_cmd(
    ctx: typer.Context,
    handle: HandleArg,
    text: Annotated[str | None, typer.Argument(
        help="The message. Without it (and without --file or --template) $VISUAL/$EDITOR opens.")]
    = None,
    file: FileOpt = None,
    template: Annotated[str | None, typer.Option(
        "--template", "-t", help="Start from a template.",
        autocompletion=completion.complete_template)] = None,
    var: Annotated[list[str] | None, typer.Option(
        "--var", help="KEY=VALUE to fill {KEY} in the template (repeatable).")] = None,
    force: ForceOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Write a draft DM to one contact. Refused (exit 3) when they may not be DMed;
    lint findings are shown. Nothing is sent: review and send it next. A handle
    not in your record is looked up on X once, as `check` does."""
    from dmtool.services import drafting

    st = state(ctx)
    body = _one_source(text, file)
    variables = drafting.parse_vars(var or [])
    if body is None and template is None:
        drafting.check_can_draft(st, handle, force=force)  # don't make anyone write a DM that can't go
        body = _edit(st.environ, what="the message")
    v = drafting.create_draft(st, handle, body, template=template, variables=variables,
                              force=force)
    if json_:
        output.print_json(v.to_dict())
        return
    output.print_text(f"draft {v.draft.id} for @{v.draft.handle}: {v.draft.status}"
                      + (" (first contact)" if v.first_contact else ""))
    _print_findings(v)
    if v.errors:
        output.info(f"fix the errors with `dmtool drafts edit {v.draft.id}` before approving")
    else:
        output.info(f"next: `dmtool review {v.draft.id}` or `dmtool review {v.draft.id} --approve`")
    waits = _waits(v)
    if waits:
        output.info(f"it only has to wait ({', '.join(waits)}): you may approve it now, and "
                    "`dmtool send` refuses it until the wait is over")


# --- drafts ------------------------------------------------------------------------------


@drafts_app.command("list")
def drafts_list(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(
        "--status", help="draft, approved, rejected, sending, sent, failed, unknown or discarded.")]
    = None,
    json_: JsonOpt = False,
) -> None:
    """List drafts, newest first."""
    from dmtool.services import drafting

    st = state(ctx)
    items = drafting.list_drafts(st, status)
    if json_:
        output.print_json([drafting.draft_summary(d) for d in items])
        return
    output.print_table(["id", "status", "to", "updated", "author", "approver", "text"],
                       [_summary_row(d, st.zone) for d in items],
                       empty="no drafts: write one with `dmtool draft HANDLE`")


@drafts_app.command("show")
def drafts_show(ctx: typer.Context, draft_id: IdArg, json_: JsonOpt = False) -> None:
    """One draft with its text, status, lint findings and the policy's answer now."""
    from dmtool.services import drafting

    st = state(ctx)
    v = drafting.show(st, draft_id)
    if json_:
        output.print_json(v.to_dict())
    else:
        _print_draft(v, st.zone)


@drafts_app.command("edit")
def drafts_edit(
    ctx: typer.Context,
    draft_id: EditableIdArg,
    text: Annotated[str | None, typer.Argument(
        help="The new text. Without it (and without --file) $VISUAL/$EDITOR opens.")] = None,
    file: FileOpt = None,
    text_opt: Annotated[str | None, typer.Option(
        "--text", hidden=True, help="The new text (the same as TEXT; kept for old scripts).")]
    = None,
    json_: JsonOpt = False,
) -> None:
    """Change a draft's text: `drafts edit ID "new text"`, --file F, or the editor
    without either. An approved draft goes back to `draft`: approve it again."""
    from dmtool.services import drafting

    st = state(ctx)
    if text is not None and text_opt is not None:
        raise UsageError("give the new text once: as TEXT or with --text, not both")
    body = _one_source(text if text is not None else text_opt, file)
    if body is None:
        current = drafting.show(st, draft_id).draft.text
        body = _edit(st.environ, current, what="the new text")
        if drafting.clean_text(body) == current:
            output.info(f"draft {draft_id} unchanged")
            return
    v, cleared = drafting.edit_draft(st, draft_id, body)
    if json_:
        output.print_json(v.to_dict())
        return
    output.print_text(f"draft {v.draft.id} for @{v.draft.handle}: {v.draft.status}")
    _print_findings(v)
    if cleared:
        output.info("the approval was cleared: review it again before sending")


@drafts_app.command("discard")
def drafts_discard(ctx: typer.Context, draft_id: DiscardableIdArg, json_: JsonOpt = False) -> None:
    """Drop a draft (kept in the list as `discarded`)."""
    from dmtool.services import drafting

    d = drafting.discard(state(ctx), draft_id)
    if json_:
        output.print_json(drafting.draft_summary(d))
    else:
        output.info(f"discarded draft {d.id} for @{d.handle}")


# --- review ------------------------------------------------------------------------------


def review_cmd(
    ctx: typer.Context,
    draft_id: Annotated[int | None, draft_id_argument(
        completion.complete_reviewable_draft,
        help="Review this draft only; with --approve or --reject, decide without a prompt.")]
    = None,
    approve: Annotated[bool, typer.Option("--approve", help="Approve the draft.")] = False,
    reject: Annotated[bool, typer.Option("--reject", help="Reject the draft.")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why it is rejected.")] = None,
    ack_warnings: Annotated[bool, typer.Option(
        "--ack-warnings", help="Acknowledge the draft's warnings (needed to approve one).")] = False,
    json_: JsonOpt = False,
) -> None:
    """Review drafts: the text, the contact, the consent evidence, the last
    messages and every finding; approve, edit, reject or skip each. Scripts use
    `review ID --approve | --reject [--reason TEXT]`."""
    from dmtool.services import drafting

    st = state(ctx)
    if approve and reject:
        raise UsageError("--approve and --reject exclude each other")
    if reason is not None and not reject:
        raise UsageError("--reason goes with --reject")
    if ack_warnings and not approve:
        raise UsageError("--ack-warnings goes with --approve")
    if (approve or reject) and draft_id is None:
        raise UsageError("--approve and --reject need a draft ID", hint="dmtool review ID --approve")
    if approve:
        assert draft_id is not None
        v = drafting.approve(st, draft_id, ack_warnings=ack_warnings)
        if json_:
            output.print_json(v.to_dict())
        else:
            acked = f" (acknowledged: {', '.join(sorted(v.draft.acknowledged_codes))})" \
                if v.draft.acknowledged else ""
            output.print_text(f"approved draft {v.draft.id} for @{v.draft.handle}{acked}")
            output.info(f"send it with `dmtool send {v.draft.id}`{_sandbox(st)}")
        return
    if reject:
        assert draft_id is not None
        d = drafting.reject(st, draft_id, reason)
        if json_:
            output.print_json(drafting.draft_summary(d))
        else:
            output.print_text(f"rejected draft {d.id} for @{d.handle}")
        return
    if json_:
        raise UsageError("--json needs --approve or --reject", hint="dmtool review ID --approve --json")
    if not output.interactive():
        raise UsageError("`dmtool review` is interactive and needs a terminal",
                         hint="use `dmtool review ID --approve` or `dmtool review ID --reject "
                              "[--reason TEXT]`")
    _review_loop(st, [draft_id] if draft_id is not None else None)


def _render_review(st: AppState, console: Any, v: DraftView, position: str) -> None:
    from rich.panel import Panel
    from rich.text import Text

    from dmtool.store import contacts as cstore

    conn = st.store.conn
    c = v.contact
    head = Text(f"Draft {v.draft.id}  {position}  ", style="bold")
    head.append(f"to @{c.handle}" + (f" ({c.name})" if c.name else ""))
    if v.first_contact:
        head.append("  first contact", style="yellow")
    if v.draft.status != "draft":
        head.append(f"  [{v.draft.status}: {v.draft.reason or ''}]")
    console.print()
    console.print(head)
    d = v.draft
    console.print(Text(f"written by {d.author or 'someone (not recorded)'} on "
                       f"{st.zone.show(d.created_at)}"
                       + (f", changed {st.zone.show(d.updated_at)}"
                          if d.updated_at != d.created_at else "")
                       + (f"; approved by {d.approved_by}" if d.approved_by else "")))
    if d.status == "draft" and d.reason:  # sent back to review: say why
        console.print(Text(f"back in review: {d.reason}", style="yellow"))
    evidence = cstore.evidence(conn, c.id)
    console.print(Text("consent evidence:" + ("" if evidence else " none")))
    for e in evidence:
        by = f" (by {e.recorded_by})" if e.recorded_by else ""
        console.print(Text(f"  {st.zone.show(e.at)}  {e.kind}  {e.text or e.ref}{by}"))
    msgs = cstore.messages(conn, c.id, limit=5)
    if msgs:
        console.print(Text("last messages:"))
        for m in msgs:
            arrow = "<-" if m.direction == "in" else "->"
            console.print(Text(f"  {st.zone.show(m.at)} {arrow} {' '.join(m.text.split())}"))
    notes = cstore.notes(conn, c.id)
    if notes:  # the team's notes on them (never sent)
        from dmtool.cli.contacts import note_line

        console.print(Text("notes:"))
        for n in notes[-_REVIEW_NOTES:]:
            console.print(Text(note_line(st.zone.show(str(n["at"])), n)))
    console.print(Panel(Text(v.draft.text), title="text", title_align="left"))
    if not v.findings and not v.decision.reasons:
        console.print(Text("checks: no findings"))
    for f in v.findings:
        console.print(Text(f"  {f.severity} {f.code}: {f.message}",
                           style="red" if f.severity == "error" else "yellow"))
    for r in v.decision.reasons:
        if r.code != "E_LINT":
            kind = _reason_kind(r.code, r.severity)
            console.print(Text(f"  {kind} {r.code}: {r.message}",
                               style="red" if kind == "policy" else "yellow"))


_REVIEW_NOTES = 5  # the newest notes on the review screen (`contacts show` has them all)


def _review_loop(st: AppState, ids: list[int] | None) -> None:
    """The interactive queue: a=approve e=edit r=reject s=skip q=quit."""
    from rich.console import Console

    from dmtool.services import drafting
    from dmtool.store.drafts import APPROVABLE

    console = Console(no_color=bool(os.environ.get("NO_COLOR")), highlight=False)
    queue = ids if ids is not None else [d.id for d in drafting.review_queue(st)]
    if not queue:
        output.print_text("nothing to review: write a draft with `dmtool draft HANDLE`")
        return
    counts = {"approved": 0, "rejected": 0, "skipped": 0}
    for n, did in enumerate(queue, 1):
        while True:
            v = drafting.show(st, did)
            if v.draft.status not in APPROVABLE:
                console.print(f"draft {did} is {v.draft.status}: skipped")
                counts["skipped"] += 1
                break
            _render_review(st, console, v, f"({n} of {len(queue)})")
            key = _choose()
            if key == "q":
                _review_done(counts)
                return
            if key == "s":
                counts["skipped"] += 1
                break
            if key == "e":
                # In the interactive queue a bad edit (empty, too long, editor
                # failed) is shown and the queue goes on, instead of ending it.
                try:
                    text = _edit(st.environ, v.draft.text, what="the new text")
                    if drafting.clean_text(text) != v.draft.text:
                        drafting.edit_draft(st, did, text)
                except DmtoolError as e:
                    console.print(f"not changed: {e.message}")
                continue
            if key == "r":
                why = typer.prompt("reason (optional)", default="", show_default=False)
                drafting.reject(st, did, why)
                console.print(f"rejected draft {did}")
                counts["rejected"] += 1
                break
            # approve
            blocking = v.blocking(ignore_transient=True)
            if blocking:
                console.print("cannot approve: " + ", ".join(r.code for r in blocking)
                              + " (edit or reject it)")
                continue
            ack = False
            if v.warnings:
                codes = ", ".join(sorted(v.warning_codes))
                ack = typer.confirm(f"approve despite the warnings ({codes})? you acknowledge them",
                                    default=False)
                if not ack:
                    continue
            try:
                drafting.approve(st, did, ack_warnings=ack)
            except PolicyRefused as e:  # another person's approval is needed: say so, go on
                console.print(f"cannot approve: {e.message}")
                continue
            console.print(f"approved draft {did}: send it with `dmtool send {did}`{_sandbox(st)}")
            counts["approved"] += 1
            break
    _review_done(counts)


def _choose() -> str:
    while True:
        raw = typer.prompt("[a]pprove [e]dit [r]eject [s]kip [q]uit", default="s",
                           show_default=False)
        key = raw.strip().lower()[:1]
        if key in ("a", "e", "r", "s", "q"):
            return key
        output.print_text("press a, e, r, s or q")


def _review_done(counts: dict[str, int]) -> None:
    output.print_text(", ".join(f"{v} {k}" for k, v in counts.items()))


# --- send --------------------------------------------------------------------------------


def show_dm(st: AppState, v: DraftView, *, acknowledged: bool = True) -> None:
    """The exact text in a box on stderr (stdout stays for results), with what
    the person must know before saying yes."""
    from rich.console import Console
    from rich.panel import Panel
    from rich.text import Text

    console = Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")), highlight=False)
    where = " on the sandbox X" if st.sandbox else ""
    title = f"DM to @{v.contact.handle}" + (f" ({v.contact.name})" if v.contact.name else "")
    console.print(Panel(Text(v.draft.text), title=title + where, title_align="left"))
    if v.first_contact:
        console.print(Text(f"This is your first message to @{v.contact.handle}: "
                           "they have never DMed you.", style="yellow"))
    label = "acknowledged warning" if acknowledged else "warning"
    for code, message in v.warnings:
        console.print(Text(f"  {label} {code}: {message}", style="" if acknowledged else "yellow"))


def _confirm_send(st: AppState) -> Callable[[DraftView], bool]:
    """Show the exact text on the terminal and ask y/N (on stderr: stdout stays for results)."""

    def ask(v: DraftView) -> bool:
        show_dm(st, v)
        where = " on the sandbox X" if st.sandbox else ""
        return typer.confirm(f"Send this DM to @{v.contact.handle}{where}?", default=False, err=True)

    return ask


def send_cmd(
    ctx: typer.Context,
    draft_id: SendableIdArg,
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="Do not ask (not enough for a first contact).")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Run every check, send nothing.")] = False,
    force: ForceOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Send exactly one approved draft, after checking the policy and the lint
    again. On a terminal it shows the text and asks y/N; elsewhere it needs
    --yes; a first contact always needs your confirmation on a terminal."""
    from dmtool.services.send import send_draft

    st = state(ctx)
    confirm = _confirm_send(st) if output.interactive() else None
    r = send_draft(st, draft_id, confirm=confirm, yes=yes, dry_run=dry_run, force=force)
    render_send(st, r, json_)


def render_send(st: AppState, r: SendResult, json_: bool) -> None:
    """What `send` (and `reply`) print about a send's outcome."""
    if json_:
        output.print_json(r.to_dict())
        return
    d, box = r.draft, _sandbox(st)
    if r.waiting_for_approval:
        output.print_text(f"draft {d.id} for @{d.handle}: waiting for approval by another member")
        output.info(f"they approve it with `dmtool review {d.id} --approve`, then `dmtool send "
                    f"{d.id}` sends it{box}")
    elif r.declined:  # an answer, not an error: exit 0
        output.print_text(f"not sent; kept as draft {d.id}" + (" (approved)"
                                                               if d.status == "approved" else ""))
        if d.status == "approved":
            output.info(f"send it later with `dmtool send {d.id}`")
        else:
            output.info(f"approve and send it later (`dmtool review {d.id}`, then `dmtool send "
                        f"{d.id}`), or drop it with `dmtool drafts discard {d.id}`")
    elif r.dry_run:
        output.print_text(f"dry run: draft {d.id} to @{d.handle} passes every check; "
                          f"nothing was sent{box}")
        if r.first_contact:
            output.info("a first message: `dmtool send` will ask you to confirm it on a terminal "
                        "(--yes is not enough)")
        elif r.needs_confirmation:
            output.info("off a terminal the real send needs --yes")
    elif r.reconciled:
        output.print_text(f"draft {d.id} had already reached @{d.handle}{box} (event "
                          f"{d.dm_event_id}): the earlier attempt was delivered, nothing new was sent")
    else:
        output.print_text(f"sent draft {d.id} to @{d.handle}{box} (event {d.dm_event_id})")


# --- templates ---------------------------------------------------------------------------


def _template_dict(t: Any) -> dict[str, Any]:
    return {"name": t.name, "text": t.text, "created_at": t.created_at, "updated_at": t.updated_at}


@templates_app.command("list")
def templates_list(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Your templates."""
    from dmtool.store import drafts as dstore

    st = state(ctx)
    items = dstore.list_templates(st.store.conn)
    if json_:
        output.print_json([_template_dict(t) for t in items])
        return
    output.print_table(["name", "updated", "text"],
                       [[t.name, st.zone.show(t.updated_at), t.text] for t in items],
                       empty="no templates: add one with `dmtool templates add NAME TEXT`")


@templates_app.command("add")
def templates_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Template name (letters, digits, . _ -).")],
    text: Annotated[str | None, typer.Argument(
        help="The text, with {name}, {first_name}, {handle} or your own {variables}.")] = None,
    file: FileOpt = None,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite a template of this name.")]
    = False,
) -> None:
    """Save a template. Variables: {name}, {first_name}, {handle} (without @) and
    any {KEY} given with `draft --var KEY=VALUE`; an unfilled one blocks approval."""
    from dmtool.services import drafting
    from dmtool.store.drafts import check_template_name

    st = state(ctx)
    check_template_name(name)
    body = _one_source(text, file)
    if body is None:
        body = _edit(st.environ, what="the template text")
    new = drafting.add_template(st, name, body, replace=replace)
    output.info(f"{'added' if new else 'replaced'} template {name}")


@templates_app.command("show")
def templates_show(ctx: typer.Context, name: TemplateArg, json_: JsonOpt = False) -> None:
    """Print a template's text."""
    from dmtool.store import drafts as dstore

    t = dstore.get_template(state(ctx).store.conn, name)
    if json_:
        output.print_json(_template_dict(t))
    else:
        output.print_text(t.text)


@templates_app.command("remove")
def templates_remove(ctx: typer.Context, name: TemplateArg) -> None:
    """Delete a template (drafts made from it are unchanged)."""
    from dmtool.errors import NotFound
    from dmtool.store import drafts as dstore

    with state(ctx).store.tx() as conn:
        if not dstore.remove_template(conn, name):
            raise NotFound(f"no template {name!r}", hint="see `dmtool templates list`")
    output.info(f"removed template {name}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("draft")(draft_cmd)
    app.add_typer(drafts_app, name="drafts")
    app.command("review")(review_cmd)
    app.command("send")(send_cmd)
    app.add_typer(templates_app, name="templates")
