"""Drafting and review: create, fill, lint, edit, approve, reject, discard.

A draft is where a human decides. Creating one refuses early when the contact
may not be DMed at all; approval needs a clean lint, no blocking policy
reason and an explicit acknowledgement of every warning; editing clears the
approval (policy.md §5, §7).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dmtool import actor, policy
from dmtool.errors import InputError, PolicyRefused, UsageError
from dmtool.lint import Finding, LintContext, lint, template_leftovers
from dmtool.models import MAX_REASON_LENGTH, Contact
from dmtool.services import approvals, claims, consent, identity, roles
from dmtool.store import contacts as cstore
from dmtool.store import drafts as dstore
from dmtool.store.sql import Conn
from dmtool.textnorm import cut, line_ends, typed
from dmtool.timeutil import fmt
from dmtool.timeutil import now as clock

if TYPE_CHECKING:
    from dmtool.appstate import AppState

# What only has to wait: the caps and X's rate limit lift with time, and an
# unanswered run ends when they reply. A draft (and its approval) may be
# prepared meanwhile, with a warning; send checks them again and refuses
# until the wait is over. Every other reason refuses the draft itself.
TRANSIENT_CODES = frozenset({"E_AWAIT_REPLY", "E_DAILY_CAP", "E_FIRST_CONTACT_CAP",
                             "E_RATE_LIMITED"})

# `{name}` but not `{{name}}`: double braces are left alone, so lint reports them (L001).
_VARIABLE = re.compile(r"(?<!\{)\{\s*(\w+)\s*\}(?!\})")
_VAR_NAME = re.compile(r"^\w+$")
AUTOACK = "autoack"  # the template name of auto-acknowledgement drafts


@dataclass(frozen=True)
class DraftView:
    """A draft with what a reviewer must see: its contact, lint findings and the
    policy's answer for this text now."""

    draft: dstore.Draft
    contact: Contact
    findings: tuple[Finding, ...]
    decision: policy.Decision

    @property
    def first_contact(self) -> bool:
        return self.decision.first_contact

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    def blocking(self, *, ignore_transient: bool) -> list[policy.Reason]:
        """Blocking policy reasons (lint errors arrive here as E_LINT)."""
        return [r for r in self.decision.blocking
                if not (ignore_transient and r.code in TRANSIENT_CODES)]

    @property
    def warnings(self) -> list[tuple[str, str]]:
        """(code, message) of everything that needs an acknowledgement to approve."""
        out = [(f.code, f.message) for f in self.findings if f.severity == "warning"]
        out += [(r.code, r.message) for r in self.decision.warnings]
        return out

    @property
    def warning_codes(self) -> frozenset[str]:
        return frozenset(code for code, _ in self.warnings)

    def to_dict(self) -> dict[str, Any]:
        d = self.draft
        return {
            "id": d.id, "handle": d.handle, "status": d.status, "text": d.text,
            "findings": [f.to_dict() for f in self.findings],
            "first_contact": self.first_contact,
            "reasons": [{**r.to_dict(), "severity": r.severity} for r in self.decision.reasons],
            "template": d.template, "created_at": d.created_at, "updated_at": d.updated_at,
            "approved_at": d.approved_at,
            "acknowledged": sorted(d.acknowledged_codes), "reason": d.reason,
            "sent_at": d.sent_at, "dm_event_id": d.dm_event_id,
            "dm_conversation_id": d.dm_conversation_id,
            "author": d.author, "approved_by": d.approved_by,
            "approved_sha256": d.approved_sha256, "sent_by": d.sent_by,
        }


def draft_summary(d: dstore.Draft) -> dict[str, Any]:
    """The list form of a draft (no lint or policy work per row)."""
    return {"id": d.id, "handle": d.handle, "status": d.status, "text": d.text,
            "created_at": d.created_at, "updated_at": d.updated_at, "reason": d.reason,
            "dm_event_id": d.dm_event_id, "author": d.author, "approved_by": d.approved_by,
            "sent_by": d.sent_by}


# --- shared checks -------------------------------------------------------------------


def lint_context(st: AppState, contact: Contact, first_contact: bool, *,
                 template: bool = False) -> LintContext:
    names = tuple(str(n) for n in st.config.get("identity.names") or ())
    return LintContext(first_contact=first_contact, name=contact.name, handle=contact.handle,
                       sender_names=names, template=template)


def from_template(draft: dstore.Draft) -> bool:
    """Whether the draft is a template's output, linted for leftover braces
    (the autoack's fixed text is typed text, not a template)."""
    return draft.template is not None and draft.template != AUTOACK


def lint_for(conn: Conn, st: AppState, contact: Contact, text: str, *,
             template: bool = False) -> list[Finding]:
    """Lint `text` for this contact (first contact or not, as the store says now)."""
    first = policy.is_first_contact(consent.snapshot(conn, contact))
    return lint(text, lint_context(st, contact, first, template=template), st.config.lint())


def evaluate(conn: Conn, st: AppState, contact: Contact, text: str,
             now: datetime, draft_id: int | None = None, *,
             template: bool = False) -> tuple[list[Finding], policy.Decision]:
    findings = lint_for(conn, st, contact, text, template=template)
    decision = consent.decide(conn, contact, text, st.config.policy(), now, findings,
                              draft_id=draft_id)
    return findings, decision


def view(conn: Conn, st: AppState, draft: dstore.Draft,
         now: datetime | None = None) -> DraftView:
    contact = cstore.by_id(conn, draft.contact_id)
    findings, decision = evaluate(conn, st, contact, draft.text, now or clock(), draft.id,
                                  template=from_template(draft))
    return DraftView(draft, contact, tuple(findings), decision)


def reasons_payload(reasons: Sequence[policy.Reason]) -> list[dict[str, str]]:
    return [r.to_dict() for r in reasons]


def refuse(st: AppState, contact: Contact, reasons: Sequence[policy.Reason], *, command: str,
           draft_id: int | None = None, what: str | None = None) -> PolicyRefused:
    """Audit a refusal (committed on its own) and return the error to raise."""
    codes = [r.code for r in reasons]
    with st.store.tx() as conn:
        cstore.audit(conn, "refused", now=fmt(clock()) or "", contact=contact, draft_id=draft_id,
                     codes=codes, command=command)
    first = reasons[0].message if reasons else ""
    more = ""
    if len(reasons) > 1:  # `check --draft` shows the text's lint findings too
        more = f" Run `dmtool check {contact.handle}" + (
            f" --draft {draft_id}" if draft_id is not None else "") + "` for every reason."
    return PolicyRefused(f"{what or 'refused'}: @{contact.handle} ({', '.join(codes)})",
                         code=codes[0] if len(set(codes)) == 1 else "E_POLICY",
                         hint=(first + more).strip() or None,
                         reasons=reasons_payload(reasons))


# --- templates -----------------------------------------------------------------------


def fill(text: str, contact: Contact, variables: Mapping[str, str]) -> str:
    """Replace `{name}`, `{first_name}`, `{handle}` and `--var` keys. Anything else
    stays as written for lint's L001: an unknown variable, a name the contact
    does not have, and any other brace (`{name[0]}`, `{}`, `{name:>9}`, a lone
    `{`). Never str.format: it would index, pad and fail on such text."""
    values: dict[str, str] = {"handle": contact.handle}
    if contact.name and contact.name.strip():
        values["name"] = contact.name.strip()
        values["first_name"] = contact.name.split()[0]
    values.update(variables)

    def sub(m: re.Match[str]) -> str:
        return values.get(m.group(1), m.group(0))

    return _VARIABLE.sub(sub, text)


def parse_vars(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not _VAR_NAME.match(key):
            raise UsageError(f"--var must look like KEY=VALUE, not {cut(pair)}",
                             hint='e.g. --var event="the Osaka meetup"')
        typed(value, f"--var {key}")  # refused as any typed text is; kept as written
        out[key] = line_ends(value)
    return out


def check_template(text: str) -> str:
    """A template as a person typed it, or InputError: besides the checks of any
    typed text, every brace must belong to a variable, since whatever else
    braces hold could never be filled (and L001 would block every draft)."""
    body = typed(text, "the template")
    if not body:
        raise InputError("the template is empty")
    groups, stray = template_leftovers(unicodedata.normalize("NFKC", _VARIABLE.sub("", body)))
    if groups or stray:
        what = [cut(g, 30) for g in dict.fromkeys(groups)][:3]
        what += [f"an unmatched {cut(b)}" for b in dict.fromkeys(stray)]
        raise InputError(f"the template has {' and '.join(what)}: no variable fills it",
                         hint="variables look like {name}, {first_name}, {handle} or {KEY} for "
                              "`draft --var KEY=VALUE`; a template cannot keep other braces")
    return body


def add_template(st: AppState, name: str, text: str, *, replace: bool = False) -> bool:
    dstore.check_template_name(name)
    text = check_template(text)
    with st.store.tx() as conn:
        return dstore.save_template(conn, name, text, now=fmt(clock()) or "", replace=replace)


# --- drafts --------------------------------------------------------------------------


def clean_text(text: str, what: str = "the draft") -> str:
    """A DM text as a person typed it (textnorm.typed: line ends, control
    characters, surrounding whitespace); "" when it shows nothing."""
    return typed(text, what)


def check_can_draft(st: AppState, handle: str, now: datetime | None = None, *,
                    command: str = "draft", force: bool = False) -> Contact:
    """The contact, or a refusal (audited) when they may not be DMed at all, or
    when someone else has claimed the conversation (unless `force`)."""
    roles.require(st, "draft")
    contact = identity.contact_for(st, handle)  # a handle not in the record: one X lookup
    conn = st.store.conn
    gate = consent.decide(conn, contact, None, st.config.policy(), now or clock())
    blocking = [r for r in gate.blocking if r.code not in TRANSIENT_CODES]
    if blocking:
        raise refuse(st, contact, blocking, command=command, what="not drafted")
    claims.guard(st, contact, command=command, force=force, what="not drafted")
    return contact


def compose(conn: Conn, contact: Contact, text: str | None, *,
            template: str | None = None, variables: Mapping[str, str] | None = None) -> str:
    """The text of a new draft: as given, or the template filled for `contact`."""
    if text is not None and template is not None:
        raise UsageError("give the text or --template, not both")
    if variables and template is None:
        raise UsageError("--var fills a template: add --template NAME")
    if template is not None:
        text = fill(dstore.get_template(conn, template).text, contact, variables or {})
    body = clean_text(text or "")
    if not body:
        raise _empty_draft()
    return body


def _empty_draft() -> InputError:
    return InputError("the draft is empty", hint="write the message as TEXT, --file F or in the editor")


def create_draft(st: AppState, handle: str, text: str | None, *, template: str | None = None,
                 variables: Mapping[str, str] | None = None, command: str = "draft",
                 force: bool = False) -> DraftView:
    """A new draft for `handle`, refused (exit 3, audited) when the contact may
    not be DMed at all, or someone else claimed the conversation (unless
    `force`: recorded). Lint findings come back in the view; they do not stop a
    draft, and neither does a reason that only has to wait (TRANSIENT_CODES).
    The draft names its author; it renews the author's claim on the contact."""
    if text is not None and template is not None:
        raise UsageError("give the text or --template, not both")
    if variables and template is None:
        raise UsageError("--var fills a template: add --template NAME")
    if template is None and not clean_text(text or ""):
        raise _empty_draft()  # judged before anything is asked of the store or X
    now = clock()
    contact = check_can_draft(st, handle, now, command=command, force=force)
    override = claims.guard(st, contact, command=command, force=force, what="not drafted")
    body = compose(st.store.conn, contact, text, template=template, variables=variables)
    stamp = fmt(now) or ""
    with st.store.tx() as conn:
        d = dstore.create(conn, contact.id, body, now=stamp, template=template,
                          author=actor.current())
        cstore.audit(conn, "drafted", now=stamp, contact=contact, draft_id=d.id, command=command,
                     **({"template": template} if template else {}))
        claims.overridden(conn, override, contact, command=command, now=stamp, draft_id=d.id)
        claims.renew(conn, contact.id, stamp)
    return view(conn, st, d, now)


def show(st: AppState, draft_id: int) -> DraftView:
    conn = st.store.conn
    return view(conn, st, dstore.get(conn, draft_id))


def list_drafts(st: AppState, status: str | None = None) -> list[dstore.Draft]:
    if status is not None and status not in dstore.STATUSES:
        raise UsageError(f"--status must be one of {', '.join(dstore.STATUSES)}")
    return dstore.list_drafts(st.store.conn, [status] if status else None)


def _cannot(d: dstore.Draft, verb: str) -> InputError:
    hints = {
        "sent": "it was sent; write a new draft",
        "sending": "a send is in progress or was interrupted; run `dmtool send "
                   f"{d.id}` to check X",
        "unknown": f"its send has an unknown outcome; run `dmtool send {d.id}` to check X first",
        "discarded": "it was discarded; write a new draft",
    }
    return InputError(f"cannot {verb} draft {d.id}: it is {d.status}", hint=hints.get(d.status))


def edit_draft(st: AppState, draft_id: int, text: str) -> tuple[DraftView, bool]:
    """New text for a draft. Returns (view, whether an approval was cleared)."""
    body = clean_text(text, "the new text")
    if not body:
        raise InputError("the new text is empty", hint="to drop the draft use `dmtool drafts discard`")
    now = clock()
    stamp = fmt(now) or ""
    with st.store.tx() as conn:
        d = dstore.get(conn, draft_id)
        if not dstore.set_text(conn, draft_id, body, now=stamp):
            raise _cannot(d, "edit")
        new = dstore.get(conn, draft_id)
        # Who changed what someone approved matters on a team: the log says so.
        cstore.audit(conn, "edited", now=stamp, contact=cstore.by_id(conn, d.contact_id),
                     draft_id=d.id, approval_cleared=d.status == "approved")
    return view(st.store.conn, st, new, now), d.status == "approved"


def discard(st: AppState, draft_id: int) -> dstore.Draft:
    with st.store.tx() as conn:
        d = dstore.get(conn, draft_id)
        if not dstore.discard(conn, draft_id, now=fmt(clock()) or ""):
            raise _cannot(d, "discard")
        return dstore.get(conn, draft_id)


def approve(st: AppState, draft_id: int, *, ack_warnings: bool) -> DraftView:
    """Approve the draft's current text. Lint errors or a blocking policy reason
    refuse (exit 3, audited); unacknowledged warnings need --ack-warnings (exit 2)."""
    roles.require(st, "approve")
    now = clock()
    conn = st.store.conn
    d = dstore.get(conn, draft_id)
    if d.status not in dstore.APPROVABLE:
        raise _cannot(d, "approve")
    v = view(conn, st, d, now)
    blocking = v.blocking(ignore_transient=True)
    if blocking:
        raise refuse(st, v.contact, blocking, command="review", draft_id=d.id, what="not approved")
    approvals.check_approver(st, d, v.contact, first_contact=v.first_contact)
    codes = sorted(v.warning_codes)
    if codes and not ack_warnings:
        raise UsageError(f"draft {d.id} has warnings you must acknowledge: {', '.join(codes)}",
                         hint=f"read them with `dmtool drafts show {d.id}`, then add --ack-warnings")
    stamp = fmt(now) or ""
    with st.store.tx() as conn:
        if not dstore.approve(conn, d.id, text=d.text, acknowledged=codes, now=stamp,
                              approved_by=actor.current()):
            current = dstore.get(conn, d.id)
            if current.text != d.text:
                raise InputError(f"draft {d.id} changed while it was checked",
                                 hint="review it again")
            raise _cannot(current, "approve")
        cstore.audit(conn, "approved", now=stamp, contact=v.contact, draft_id=d.id, codes=codes,
                     text=d.text, first_contact=v.first_contact, sha256=dstore.text_hash(d.text),
                     **({"author": d.author} if d.author else {}))
        approved = dstore.get(conn, d.id)
    return DraftView(approved, v.contact, v.findings, v.decision)


def reject(st: AppState, draft_id: int, reason: str | None) -> dstore.Draft:
    why = typed(reason or "", "the reason", max_length=MAX_REASON_LENGTH) or None
    now = fmt(clock()) or ""
    with st.store.tx() as conn:
        d = dstore.get(conn, draft_id)
        if not dstore.reject(conn, draft_id, why, now=now):
            raise _cannot(d, "reject")
        contact = cstore.by_id(conn, d.contact_id)
        cstore.audit(conn, "rejected", now=now, contact=contact, draft_id=d.id,
                     **({"reason": why} if why else {}))
        return dstore.get(conn, draft_id)


def review_queue(st: AppState) -> list[dstore.Draft]:
    """What waits for a decision, oldest first: new drafts and failed sends."""
    return dstore.list_drafts(st.store.conn, ["draft", "failed"], oldest_first=True)
