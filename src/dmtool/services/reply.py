"""`dmtool reply`: draft, approve and send an answer in one step (issue 12 §1).

A reply is the most common act of the day, so it gets one command, but not a
new way to send: the draft is created, approved and sent by the same
functions as `draft`, `review --approve` and `send`, so the audit log shows
all three and every check runs where it always does (the policy and the lint
once more under the send lock, right before the request).

Only a conversation where they spoke last is a reply: their newest message
that is not an automatic acknowledgement (the inbox's rule) must be the last
one. Everything else, first contacts included, goes through `draft`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dmtool.errors import PolicyRefused, RateLimited, UsageError
from dmtool.services import consent, drafting, identity
from dmtool.store import contacts as cstore
from dmtool.store import messages as mstore
from dmtool.timeutil import now as clock

if TYPE_CHECKING:
    from dmtool import policy
    from dmtool.appstate import AppState
    from dmtool.lint import Finding
    from dmtool.models import Contact

QUOTED_MESSAGES = 5  # the last messages quoted in the editor

# One line per lint rule, for the editor's comment block. A rule added to lint
# without a line here is still checked; it is only not announced.
RULE_SUMMARIES: dict[str, str] = {
    "L001": "unfilled placeholders ({name}, [NAME], <<...>>) block the send",
    "L002": "an empty message, or one over 10,000 characters, blocks the send",
    "L003": "links through URL shorteners block the send",
    "L004": "a first message may not contain links",
    "L010": "promotional language warns, or blocks when strong",
    "L011": "shouting (mostly capitals, !!!) warns",
    "L012": "a first message must address them and say who writes",
}
_FIRST_CONTACT_ONLY = frozenset({"L004", "L012"})


@dataclass(frozen=True)
class Preview:
    """What a reply would be, before anything is stored: its text, lint findings
    and the policy's answer now."""

    contact: Contact
    text: str
    findings: tuple[Finding, ...]
    decision: policy.Decision

    @property
    def warning_codes(self) -> list[str]:
        codes = {f.code for f in self.findings if f.severity == "warning"}
        codes |= {r.code for r in self.decision.warnings}
        return sorted(codes)


def target(st: AppState, handle: str) -> Contact:
    """The contact to reply to; refused (exit 2) unless their message is the
    last one, autoacks aside. A handle not in the record is looked up once, as
    `draft` does."""
    contact = identity.contact_for(st, handle)
    last = mstore.last_human_message(st.store.conn, contact.id)
    if last is None or last["direction"] != "in":
        why = ("you have no messages with them" if last is None
               else "your message is the last one in the conversation")
        raise UsageError(f"@{contact.handle} is not waiting for a reply: {why}",
                         code="E_NOT_A_REPLY",
                         hint=f"`dmtool reply` answers someone who wrote last; to write first, "
                              f"use `dmtool draft {contact.handle}`")
    return contact


def editor_notes(st: AppState, contact: Contact) -> list[str]:
    """The comment lines of the editor: who, the last messages, the lint rules."""
    conn = st.store.conn
    who = f"@{contact.handle}" + (f" ({contact.name})" if contact.name else "")
    lines = [f"Your reply to {who}. Lines starting with '#' are removed;",
             "an empty message cancels the reply.", "", "Last messages:"]
    for m in cstore.messages(conn, contact.id, limit=QUOTED_MESSAGES):
        speaker = f"@{contact.handle}" if m.direction == "in" else "you"
        if m.source == "autoack":
            speaker += " (automatic)"
        text = " ".join(m.text.split())
        lines.append(f"  {m.at[:16].replace('T', ' ')} UTC  {speaker}: {text}")
    lines += ["", "Checks (errors block the send; warnings need your yes):"]
    from dmtool.lint import RULES

    for code, _rule in RULES:  # they wrote to you: the first-contact rules do not apply
        if code in RULE_SUMMARIES and code not in _FIRST_CONTACT_ONLY:
            lines.append(f"  {code} {RULE_SUMMARIES[code]}")
    lines.append("  and never the same text twice to the same person within a day")
    return lines


def preview(st: AppState, contact: Contact, text: str | None, *, template: str | None,
            variables: Mapping[str, str]) -> Preview:
    """Lint and the policy's answer for a reply, before a draft is made."""
    conn = st.store.conn
    body = drafting.compose(conn, contact, text, template=template, variables=variables)
    findings, decision = drafting.evaluate(conn, st, contact, body, clock())
    return Preview(contact, body, tuple(findings), decision)


def stop_if_blocked(st: AppState, v: drafting.DraftView, *, waits_ok: bool = False) -> None:
    """Refuse (audited) a reply draft that cannot be sent now: a lint error, a
    duplicate, or a wait (caps, X's rate limit; not with `waits_ok`, for a
    reply that waits for an approval anyway). The draft stays, as `draft`."""
    blocking = v.blocking(ignore_transient=waits_ok)
    if not blocking:
        return
    d = v.draft
    kept = f"The reply is kept as draft {d.id}"
    if v.decision.temporary:
        until = consent.rate_limited_until(st.store.conn)
        raise RateLimited(f"not sent: {blocking[0].message}",
                          reset_at=int(until.timestamp()) if until else None, family="dm_send",
                          hint=f"{kept}: approve and send it after that time "
                               f"(`dmtool review {d.id}`, then `dmtool send {d.id}`)")
    err: PolicyRefused = drafting.refuse(st, v.contact, blocking, command="reply", draft_id=d.id,
                                         what="not sent")
    fix = (f"fix it with `dmtool drafts edit {d.id}`" if v.errors
           else f"`dmtool review {d.id}` and `dmtool send {d.id}` once that changes")
    err.hint = f"{err.hint or ''} {kept}: {fix}.".strip()
    raise err
