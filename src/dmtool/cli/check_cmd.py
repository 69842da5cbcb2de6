"""`dmtool check`: may I DM this person now?

Its own module, so that a check builds and imports only itself, not the
whole contacts group (no `from __future__ import annotations`: Typer reads
the annotations, and strings would be compiled at every start)."""

from typing import Annotated, Any

import typer

from dmtool import output
from dmtool.cli import completion
from dmtool.cli.context import state
from dmtool.cli.params import HandleArg, JsonOpt, draft_id
from dmtool.errors import UsageError


def check_cmd(
    ctx: typer.Context, handle: HandleArg,
    draft: Annotated[int | None, typer.Option(
        "--draft", parser=draft_id, metavar="DRAFT_ID", autocompletion=completion.complete_draft,
        help="Check this draft of theirs as well: its lint findings, duplicates and every "
             "reason the policy gives for its text.")] = None,
    json_: JsonOpt = False,
) -> None:
    """May I DM this person now? Exit 0 yes, 3 no, with the reasons.

    A handle not in your record is looked up on X once, to find a contact
    known only by user id (as an archive import leaves them); anyone else is
    not found (exit 1). A check never adds a contact. A contact added by hand
    is looked up on X too: a handle X does not know is refused (exit 1), and
    when X cannot be asked the answer says "not verified on X"."""
    from dmtool.services import consent
    from dmtool.services.identity import contact_for, verify
    from dmtool.store import contacts as cstore
    from dmtool.timeutil import fmt

    st = state(ctx)
    found = contact_for(st, handle)  # before the transaction: it may ask X
    found, unverified = verify(st, found, command="check")
    from dmtool.timeutil import now as clock

    now = clock()
    findings: list[Any] = []
    if draft is not None:  # lint and the draft machinery load only for --draft
        from dmtool.services import drafting
        from dmtool.store import drafts as dstore

        d = dstore.get(st.store.conn, draft)
        if d.contact_id != found.id:
            raise UsageError(f"draft {d.id} is for @{d.handle}, not @{found.handle}",
                             hint=f"dmtool check {d.handle} --draft {d.id}")
        findings, decision = drafting.evaluate(st.store.conn, st, found, d.text, now, d.id)
    with st.store.tx() as conn:
        c = cstore.by_id(conn, found.id)
        if draft is None:
            decision = consent.decide(conn, c, None, st.config.policy(), now)
        if not decision.allowed and not st.store.read_only:  # a read-only store answers, unaudited
            cstore.audit(conn, "refused", now=fmt(now) or "", contact=c, draft_id=draft,
                         codes=[r.code for r in decision.blocking], command="check")
        total = consent.evidence_total(conn, c, decision)
    data: dict[str, Any] = {
        "handle": c.handle, "user_id": c.user_id, "allowed": decision.allowed,
        "first_contact": decision.first_contact, "reasons": [r.to_dict() for r in decision.reasons],
        "evidence": [{"kind": e.kind, "at": fmt(e.at), "ref": e.ref} for e in decision.evidence],
        "evidence_total": total, "verified": unverified is None}
    if draft is not None:
        data.update({"draft_id": draft, "findings": [f.to_dict() for f in findings]})
    if json_:
        output.print_json(data)
    else:
        if decision.allowed:
            first = " (a first contact: confirm it yourself, no links)" if decision.first_contact else ""
            what = f"draft {draft} to" if draft is not None else "DM"
            output.print_text(f"yes: you may {what} @{c.handle}{first}")
        else:
            output.print_text(f"no: do not DM @{c.handle}" if draft is None
                              else f"no: draft {draft} may not go to @{c.handle}")
        if unverified:
            output.print_text(f"  not verified on X ({unverified}): `dmtool send` looks "
                              f"@{c.handle} up before sending")
        for f in findings:
            output.print_text(f"  {f.severity} {f.code}: {f.message}")
        for r in decision.reasons:
            if r.code != "E_LINT":  # lint errors are listed above already
                output.print_text(f"  {r.code}: {r.message}")
        for e in decision.evidence:
            output.print_text(f"  evidence: {e.kind} on {st.zone.show(e.at)} ({e.text or e.ref})")
        more = total - len(decision.evidence)
        if more > 0:
            output.print_text(f"  ({more} earlier record{'' if more == 1 else 's'} of the same "
                              f"kinds: `dmtool contacts show @{c.handle}` lists them all)")
    if not decision.allowed:
        raise typer.Exit(5 if decision.temporary else 3)


def register(app: typer.Typer) -> None:
    app.command("check")(check_cmd)
