"""The traffic cop (issue 15 point 5): no send into a conversation that moved.

An approval is given on what the approver read. If, since then, the contact
wrote (even a message sent earlier that a sync recorded only later), anybody
sent them a DM (a send, an autoack, a DM from the account outside dmtool), or
their consent state changed (opted out or back in, opt-out review, a block, X
refusing a DM), the approval no longer covers the send: `send` refuses
(exit 3, E_CONVERSATION_MOVED), says what changed, and returns the draft to
review, so that the approver reads the conversation first. It applies on
every store, one person's included. services/send.py asks it under the send
lock, beside the policy's last checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from dmtool.errors import PolicyRefused
from dmtool.store import contacts as cstore
from dmtool.store import drafts as dstore
from dmtool.store import traffic as tstore
from dmtool.timeutil import fmt
from dmtool.timeutil import now as clock

if TYPE_CHECKING:
    from dmtool import policy
    from dmtool.appstate import AppState
    from dmtool.localtime import DisplayZone
    from dmtool.models import Contact

CODE = "E_CONVERSATION_MOVED"
_PREVIEW = 60

_CONSENT = {
    "opted_out": "@{h} opted out", "opted_in": "@{h} opted back in",
    "optout_review": "@{h} was put in opt-out review",
    "optout_dismissed": "{who} dismissed @{h}'s opt-out review",
    "blocked": "{who} blocked @{h}", "unblocked": "{who} unblocked @{h}",
    "dm_closed": "X refused a DM to @{h} (they do not accept your DMs)",
}


def _preview(text: str | None) -> str:
    one = " ".join((text or "").split())
    return one if len(one) <= _PREVIEW else one[:_PREVIEW] + "…"


def describe(c: tstore.Change, handle: str, zone: DisplayZone) -> str:
    """One change, in words, with its time in `zone`."""
    at = f"{zone.show(c.at)} {zone.name}"
    if c.kind == "inbound":
        return f'@{handle} wrote at {at}: "{_preview(c.text)}"'
    if c.kind == "outbound":
        if c.source == "autoack":
            return f"an automatic acknowledgement went to @{handle} at {at}"
        if c.draft_id is not None:
            return f"{c.actor or 'someone'} sent @{handle} draft {c.draft_id} at {at}"
        return f"a DM went to @{handle} from the account outside dmtool at {at}"
    if c.kind == "unsettled":
        return (f"a send of draft {c.draft_id} to @{handle} began at {at}; whether it arrived "
                "is not known yet")
    template = _CONSENT.get(c.action or "", "@{h}'s state changed ({a})")
    return template.format(h=handle, who=c.actor or "someone", a=c.action) + f" at {at}"


def stop_if_moved(st: AppState, d: dstore.Draft, contact: Contact,
                  blocking: Sequence[policy.Reason] = ()) -> PolicyRefused | None:
    """The refusal when the conversation moved since `d` was approved, after
    returning it to review (with the reason as its note) and auditing it; None
    when nothing moved, or when the draft is no longer approved (the caller's
    state checks then say what it is). `blocking`: what the policy says now
    (an opt-out, say), listed among the reasons too."""
    conn = st.store.conn
    changes = tstore.since_approval(conn, d.id)
    if not changes:
        return None
    from dmtool.localtime import UTC_ZONE

    said = [describe(c, contact.handle, st.zone) for c in changes]
    stamp = fmt(clock()) or ""
    # The note stays with the draft for whoever reviews it next: in UTC.
    note = "the conversation moved after the approval: " + "; ".join(
        describe(c, contact.handle, UTC_ZONE) for c in changes)
    with st.store.tx() as tx:
        if not dstore.return_to_review(tx, d.id, note, now=stamp):
            return None
        cstore.audit(tx, "refused", now=stamp, contact=contact, draft_id=d.id,
                     codes=[CODE, *dict.fromkeys(r.code for r in blocking)],
                     command="send", changes=[{"kind": c.kind, "at": c.at,
                                               **({"action": c.action} if c.action else {})}
                                              for c in changes])
    message = (f"not sent{' on the sandbox' if st.sandbox else ''}: the conversation with "
               f"@{contact.handle} moved since draft {d.id} was approved: {'; '.join(said)}. "
               "The draft is back in review")
    return PolicyRefused(message, code=CODE,
                         hint=f"read it with `dmtool thread {contact.handle}`, then approve the "
                              f"draft again (`dmtool review {d.id}`) or change it",
                         reasons=[{"code": CODE, "message": s} for s in said]
                         + [r.to_dict() for r in blocking])
