"""Building policy snapshots from the store, and asking the policy."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from dmtool import policy
from dmtool.models import Contact, EvidenceRow
from dmtool.services import ratelimits
from dmtool.store import contacts as cstore
from dmtool.store import imports
from dmtool.store import messages as mstore
from dmtool.store.db import state_value
from dmtool.store.sql import Conn, Row
from dmtool.timeutil import fmt, parse, parse_opt

if TYPE_CHECKING:
    from dmtool.lint import Finding

# Enough history for every rule: unanswered runs, 24h duplicates, 30-day autoack.
_SNAPSHOT_MESSAGES = 200

CONSENT_CODES = {"E_NO_CONSENT", "E_MENTION_ONLY", "E_CONSENT_EXPIRED"}

# The policy reads evidence of these kinds only through their newest time (is
# there any, the latest engagement, the latest inbound DM); manual evidence
# counts only with its text, so every manual row is read.
_NEWEST_DECIDES = sorted(policy.EVIDENCE_KINDS - policy.MANUAL_KINDS)


def _evidence(rows: Sequence[EvidenceRow]) -> tuple[policy.Evidence, ...]:
    return tuple(policy.Evidence(kind=e.kind, at=parse(e.at), ref=e.ref, text=e.text) for e in rows)


def snapshot(conn: Conn, contact: Contact) -> policy.ContactSnapshot:
    """What the policy needs to know about one contact. Its evidence is what
    decides (see `cstore.deciding_evidence`), so a decision's `evidence` holds
    the newest row of each kind; `contacts show` lists them all."""
    msgs = cstore.messages(conn, contact.id, limit=_SNAPSHOT_MESSAGES)
    evidence = cstore.deciding_evidence(conn, contact.id, newest_of=_NEWEST_DECIDES,
                                        all_of=policy.MANUAL_KINDS)
    return policy.ContactSnapshot(
        user_id=contact.user_id or "",
        handle=contact.handle,
        name=contact.name,
        evidence=_evidence(evidence),
        messages=tuple(policy.Msg(at=parse(m.at), direction=m.direction,  # type: ignore[arg-type]
                                  text=m.text) for m in msgs),
        opted_out_at=parse_opt(contact.opted_out_at),
        opt_out_words=contact.opt_out_words, opt_out_reason=contact.opt_out_reason,
        optout_review=contact.optout_review_text,
        blocked=bool(contact.blocked_at),
        dm_closed_at=parse_opt(contact.dm_closed_at),
        import_pending=imports.pending_archive(conn, contact.user_id),
    )


def evidence_total(conn: Conn, contact: Contact, decision: policy.Decision) -> int:
    """How many records stand behind the decision's evidence: all the rows of
    the kinds it shows. A decision shows the newest record of each automatic
    kind (a chatty contact has one inbound_dm record per DM: tens of
    thousands), so `check` can say how many more there are."""
    return cstore.count_evidence(conn, contact.id, sorted({e.kind for e in decision.evidence}))


def recent_sends(conn: Conn, now: datetime, *,
                 except_draft: int | None = None) -> list[policy.Send]:
    """dmtool's own sends (and autoacks) of the last 30 days, across all contacts:
    the send ledger (it survives `contacts forget`), plus attempts whose outcome
    is not settled yet (`sending`, `unknown`): each may have gone out, so until
    it is reconciled it counts for the caps and the duplicate check. Judging a
    draft, its own send is left out: it is no duplicate of itself."""
    return _sends(mstore.send_rows(conn, since=fmt(now - timedelta(days=30)) or "",
                                   except_draft=except_draft))


def _sends(rows: Sequence[tuple[str, str, str | None, int]]) -> list[policy.Send]:
    return [policy.Send(at=parse(at), user_id=uid, text=text or "", first_contact=bool(fc))
            for at, uid, text, fc in rows]


def sends_deciding(conn: Conn, contact: Contact, now: datetime) -> list[policy.Send]:
    """The recent sends a decision without a text reads: those to this contact
    (unanswered runs) and everyone's of the last day (the caps). The others
    only matter for comparing a text, so they are not read and parsed. The
    bound is a minute wide of the day: the policy draws the exact line."""
    since = fmt(now - timedelta(days=30)) or ""
    day = fmt(now - policy.DAY - timedelta(minutes=1)) or ""
    return _sends(mstore.send_rows(conn, since=since, user_id=contact.user_id, everyone_since=day))


def rate_limited_until(conn: Conn) -> datetime | None:
    """The pause on sending DMs (policy E_RATE_LIMITED): only the dm_send family
    stops a send; a limit on reading or lookups does not."""
    return parse_opt(state_value(conn, ratelimits.key("dm_send")))


def decide(conn: Conn, contact: Contact, text: str | None,
           settings: policy.PolicySettings, now: datetime,
           findings: Sequence[Finding] = (), *, draft_id: int | None = None) -> policy.Decision:
    """The policy's answer for `text` to `contact` now (`draft_id`: the draft
    being judged, whose own send never counts against it)."""
    sends = (recent_sends(conn, now, except_draft=draft_id) if text is not None
             else sends_deciding(conn, contact, now))
    return policy.decide(snapshot(conn, contact), text, sends, settings, now,
                         findings=findings, rate_limited_until=rate_limited_until(conn))


def status(contact: Contact, decision: policy.Decision) -> str:
    """One word for lists: blocked, opted-out, review, import-incomplete,
    needs-consent or can-dm."""
    codes = {r.code for r in decision.blocking}
    if "E_BLOCKED" in codes:
        return "blocked"
    if contact.opted_out_at:
        return "opted-out"
    if contact.optout_review_text:
        return "review"
    if "E_IMPORT_INCOMPLETE" in codes:
        return "import-incomplete"
    if codes & CONSENT_CODES:
        return "needs-consent"
    return "can-dm"


def list_statuses(conn: Conn, rows: Sequence[Row],
                  settings: policy.PolicySettings, now: datetime
                  ) -> list[tuple[policy.Decision, str]]:
    """(decision, status) for each summaries() record, with a constant number of
    queries.

    The snapshot here carries only what text-free rules read: evidence, the
    last inbound message and the outbound messages since (for E_AWAIT_REPLY).
    Decision and status are pure functions of those facts, so contacts with the
    same facts (typically: none at all) share one policy evaluation; the handle
    and name only change the wording of reasons, never allowed or status.
    """
    # Evidence as a decision reads it (see snapshot): each automatic kind by its
    # newest time only, every manual row with its text. One row per inbound DM
    # would be hundreds of thousands of objects on a big store.
    newest = cstore.newest_evidence_times(conn, _NEWEST_DECIDES)
    manual = cstore.all_evidence(conn, kinds=policy.MANUAL_KINDS)
    unanswered = mstore.unanswered_counts(conn)
    sends = recent_sends(conn, now)
    # A text-free decision reads everyone's sends of the last day (the caps) and
    # the contact's own (unanswered runs): split once, not once per contact.
    today = [s for s in sends if s.at > now - policy.DAY]
    theirs: dict[str, list[policy.Send]] = {}
    for s in sends:
        theirs.setdefault(s.user_id, []).append(s)
    limited = rate_limited_until(conn)
    held = imports.pending_by_user(conn)  # people an incomplete archive import holds back
    memo: dict[tuple[object, ...], tuple[policy.Decision, str]] = {}
    out = []
    for r in rows:
        cid = r["id"]
        blocked = bool(r["blocked_at"])
        evidence = tuple(sorted([(kind, at, "", None) for kind, at in newest.get(cid, ())]
                                + [(e.kind, e.at, e.ref, e.text) for e in manual.get(cid, ())],
                                key=lambda e: e[1]))
        own = theirs.get(r["user_id"] or "", [])
        n_out = unanswered.get(cid, 0)
        pending = held.get(r["user_id"]) if r["user_id"] else None
        key = (evidence, r["last_inbound_at"], n_out, r["last_outbound_at"] if n_out else None,
               r["opted_out_at"], r["opt_out_words"], r["optout_review_text"], blocked,
               r["dm_closed_at"], tuple(s.at for s in own), pending)
        hit = memo.get(key)
        if hit is None:
            c = Contact(*r[:len(cstore.CONTACT_COLUMNS)])  # summaries() leads with them
            msgs: list[policy.Msg] = []
            if r["last_inbound_at"]:
                msgs.append(policy.Msg(at=parse(r["last_inbound_at"]), direction="in", text=""))
            out_at = parse(r["last_outbound_at"]) if r["last_outbound_at"] else now
            msgs += [policy.Msg(at=out_at, direction="out", text="")] * n_out
            snap = policy.ContactSnapshot(
                user_id=c.user_id or "", handle=c.handle, name=c.name,
                evidence=tuple(policy.Evidence(kind=k, at=parse(at), ref=ref, text=text)
                               for k, at, ref, text in evidence), messages=tuple(msgs),
                opted_out_at=parse_opt(c.opted_out_at), opt_out_words=c.opt_out_words,
                opt_out_reason=c.opt_out_reason,
                optout_review=c.optout_review_text, blocked=blocked,
                dm_closed_at=parse_opt(c.dm_closed_at), import_pending=pending)
            relevant = today + [s for s in own if not s.at > now - policy.DAY]
            d = policy.decide(snap, None, relevant, settings, now, rate_limited_until=limited)
            hit = memo[key] = (d, status(c, d))
        out.append(hit)
    return out
