"""`dmtool reply`: answer someone who wrote last, in one step."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from dmtool import output
from dmtool.cli import completion
from dmtool.cli.context import state
from dmtool.cli.drafts import FileOpt, ForceOpt, _one_source, render_send, show_dm
from dmtool.cli.params import HandleArg, JsonOpt
from dmtool.errors import UsageError

if TYPE_CHECKING:
    from dmtool.appstate import AppState
    from dmtool.services.reply import Preview


def _say_findings(p: Preview) -> None:
    for f in p.findings:
        output.info(f"  {f.severity} {f.code}: {f.message}")
    for r in p.decision.warnings:
        output.info(f"  warning {r.code}: {r.message}")


def _cancelled(st: AppState, handle: str, json_: bool) -> None:
    """An empty message in the editor: like git, nothing happens (exit 0)."""
    if json_:
        output.print_json({"id": None, "handle": handle, "status": None, "dm_event_id": None,
                           "dm_conversation_id": None, "first_contact": False, "dry_run": False,
                           "reconciled": False, "sandbox": st.sandbox, "declined": True,
                           "waiting_for_approval": False})
    output.info("the message is empty: nothing drafted, nothing sent")


def reply_cmd(
    ctx: typer.Context,
    handle: HandleArg,
    text: Annotated[str | None, typer.Argument(
        help="The reply. Without it (and without --file or --template) $VISUAL/$EDITOR opens "
             "on the last messages.")] = None,
    file: FileOpt = None,
    template: Annotated[str | None, typer.Option(
        "--template", "-t", help="Start from a template.",
        autocompletion=completion.complete_template)] = None,
    var: Annotated[list[str] | None, typer.Option(
        "--var", help="KEY=VALUE to fill {KEY} in the template (repeatable).")] = None,
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="Do not ask (needed off a terminal).")] = False,
    ack_warnings: Annotated[bool, typer.Option(
        "--ack-warnings", help="Acknowledge the reply's lint warnings (needed with --yes or off "
                               "a terminal when it has any).")] = False,
    force: ForceOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Answer someone whose message is the last one: draft, approve and send in
    one step, with the same checks and audit as `draft`, `review` and `send`.

    It shows the exact text and the lint findings and asks `Send? [y/N]` once;
    off a terminal it needs --yes (and --ack-warnings for warnings). Declining
    keeps the reply as a draft. To write first, use `dmtool draft`. Where
    team.approval asks another person to approve it, the reply stops as a
    draft waiting for their approval (exit 0)."""
    from dmtool.services import approvals, drafting, reply, roles
    from dmtool.services.send import SendResult, send_draft

    st = state(ctx)
    # A member who may draft but not approve and send (a drafter) replies as under
    # team.approval "all": the reply waits for someone who may.
    own_hands = roles.allowed(st, "approve") and roles.allowed(st, "send")
    every_draft = approvals.mode(st) == "all" or not own_hands  # nothing to confirm
    asking = output.interactive() and not yes and not every_draft
    if not asking and not yes and not every_draft:
        raise UsageError("replying off a terminal needs --yes",
                         hint="add --yes (and --ack-warnings if the reply has warnings)")
    body = _one_source(text, file)
    variables = drafting.parse_vars(var or [])
    contact = reply.target(st, handle)
    # don't write what can't go
    drafting.check_can_draft(st, contact.handle, command="reply", force=force)
    if body is None and template is None:
        from dmtool.cli.editor import edit

        body = edit(st.environ, what="the reply", comments=reply.editor_notes(st, contact))
        if not body.strip():
            _cancelled(st, contact.handle, json_)
            return
    pre = reply.preview(st, contact, body, template=template, variables=variables)
    # A second pair of eyes: the approver acknowledges the warnings, not you.
    another = (approvals.needs_another(st, first_contact=pre.decision.first_contact)
               or not own_hands)
    if pre.warning_codes and not asking and not ack_warnings and not another:
        _say_findings(pre)
        raise UsageError(f"the reply has warnings to acknowledge: {', '.join(pre.warning_codes)}; "
                         "nothing was drafted", hint="read them above, then add --ack-warnings")

    v = drafting.create_draft(st, contact.handle, body if template is None else None,
                              template=template, variables=variables, command="reply",
                              force=force)
    # a lint error, a duplicate, a wait (unless it waits for an approval anyway): kept as a draft
    reply.stop_if_blocked(st, v, waits_ok=another)
    if another:
        _say_findings(pre)
        render_send(st, SendResult(v.draft, v.first_contact, sandbox=st.sandbox,
                                   waiting_for_approval=True), json_)
        return
    if asking:
        show_dm(st, v, acknowledged=False)
        if v.warnings:
            output.info("answering y acknowledges the warnings above")
        if not typer.confirm("Send?", default=False, err=True):
            render_send(st, SendResult(v.draft, v.first_contact, sandbox=st.sandbox,
                                       declined=True), json_)
            return
    else:
        _say_findings(pre)
    drafting.approve(st, v.draft.id, ack_warnings=asking or ack_warnings)
    # You said yes above (or gave --yes): send must not ask again.
    r = send_draft(st, v.draft.id, confirm=(lambda _v: True) if asking else None, yes=True,
                   dry_run=False, force=force)
    render_send(st, r, json_)


def register(app: typer.Typer) -> None:
    app.command("reply")(reply_cmd)
