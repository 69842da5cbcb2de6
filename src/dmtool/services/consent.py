"""Building policy snapshots from the store, and asking the policy."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from dmtool import policy
from dmtool.models import Contact, EvidenceRow
from dmtool.record import Record
from dmtool.services import ratelimits
from dmtool.store import contacts as cstore
from dmtool.store import imports
from dmtool.store import messages as mstore
from dmtool.store.db import state_value
from dmtool.store.sql import Conn
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


class Standing(Record):
    """A contact's text-free answer, as lists show it."""

    __slots__ = ("allowed", "status", "codes")
    allowed: bool  # may be DMed right now
    status: str  # see status()
    codes: tuple[str, ...]  # the reasons' codes, blocking and warnings

    def __init__(self, allowed: bool, status: str, codes: tuple[str, ...]) -> None:
        self.allowed = allowed
        self.status = status
        self.codes = codes


# Where the listing's extra values sit in its rows (store/contacts.listing).
_LISTED = len(cstore.LISTED)
_NEWEST = slice(_LISTED, _LISTED + len(_NEWEST_DECIDES))
_COUNTED, _UNANSWERED, _PENDING = _NEWEST.stop, _NEWEST.stop + 1, _NEWEST.stop + 2
(_ID, _USER_ID, _BLOCKED, _OPTED_OUT, _WORDS, _REVIEW, _DM_CLOSED, _LAST_IN,
 _LAST_OUT) = map(cstore.LISTED.index, ("id", "user_id", "blocked_at", "opted_out_at",
                                        "opt_out_words", "optout_review_text", "dm_closed_at",
                                        "last_inbound_at", "last_outbound_at"))


def listing(conn: Conn, settings: policy.PolicySettings, now: datetime,
            tag: str | None = None) -> Iterator[tuple[tuple[Any, ...], Standing]]:
    """Every contact (with `tag`), by handle, with the policy's text-free
    answer: streamed, one contact at a time (`contacts list`, `contacts
    export`). Each row starts with the columns of cstore.LISTED.

    The snapshot here carries only what text-free rules read: the newest
    evidence of each automatic kind and every manual record, the last inbound
    message and the outbound messages since (for E_AWAIT_REPLY). A decision
    reads a contact's times only by comparing them with one another and with
    `policy.horizons` (the start of the consent window, the caps' 24 hours),
    so contacts whose facts agree but for times that fall in the same order
    share one evaluation (`_order`); names and handles only change the wording
    of reasons, never allowed or status. tests/test_read_models.py compares
    every answer with a plain evaluation of the contact's whole record.

    Times are ordered as the store keeps them (RFC 3339 UTC text with
    milliseconds, which sorts as time does), so `now` is taken to the
    millisecond: the horizons are then such texts too."""
    now = now.replace(microsecond=now.microsecond - now.microsecond % 1000)
    rows = cstore.listing(conn, tag, newest_of=_NEWEST_DECIDES,
                          count_of=sorted(policy.MANUAL_KINDS), unanswered=True,
                          pending_imports=imports.any_pending(conn))
    sent = mstore.send_rows(conn, since=fmt(now - timedelta(days=30)) or "")
    sends = _sends(sent)
    # A text-free decision reads everyone's sends of the last day (the caps) and
    # the contact's own (unanswered runs): split once, not once per contact.
    today = [s for s in sends if s.at > now - policy.DAY]
    theirs: dict[str, tuple[list[policy.Send], list[str]]] = {}
    for s, (at, *_) in zip(sends, sent, strict=True):
        own_sends, own_times = theirs.setdefault(s.user_id, ([], []))
        own_sends.append(s)
        own_times.append(at)
    limited = rate_limited_until(conn)
    horizons = [fmt(h) or "" for h in policy.horizons(now, settings)]
    memo: dict[tuple[object, ...], Standing] = {}
    for r in rows:
        n_out = r[_UNANSWERED]
        manual = [e for e in cstore.evidence(conn, r[_ID]) if e.kind in policy.MANUAL_KINDS] \
            if r[_COUNTED] else []
        own, own_times = theirs.get(r[_USER_ID] or "", ([], []))
        # Every time the decision may compare, in a fixed order: which are
        # there, and how they lie among one another and the horizons; then the
        # facts that are not times, as they are.
        stamps = (*r[_NEWEST], r[_LAST_IN], r[_LAST_OUT] if n_out else None, r[_DM_CLOSED],
                  *(e.at for e in manual))
        key = (_order([*filter(None, stamps), *own_times], horizons), tuple(map(bool, stamps)),
               tuple((e.kind, e.text) for e in manual), len(own), n_out, bool(r[_BLOCKED]),
               r[_OPTED_OUT], r[_WORDS], r[_REVIEW], r[_PENDING])
        hit = memo.get(key)
        if hit is None:
            c = Contact(*r[:len(cstore.CONTACT_COLUMNS)])  # the listing leads with them
            last_in, last_out = r[_LAST_IN], r[_LAST_OUT] if n_out else None
            msgs: list[policy.Msg] = []
            if last_in:
                msgs.append(policy.Msg(at=parse(last_in), direction="in", text=""))
            out_at = parse(last_out) if last_out else now
            msgs += [policy.Msg(at=out_at, direction="out", text="")] * n_out
            evidence: list[tuple[str, str, str, str | None]] = [
                (kind, at, "", None) for kind, at in zip(_NEWEST_DECIDES, r[_NEWEST], strict=True)
                if at]
            evidence += [(e.kind, e.at, e.ref, e.text) for e in manual]
            snap = policy.ContactSnapshot(
                user_id=c.user_id or "", handle=c.handle, name=c.name,
                evidence=tuple(policy.Evidence(kind=k, at=parse(at), ref=ref, text=text)
                               for k, at, ref, text in sorted(evidence, key=lambda e: e[1])),
                messages=tuple(msgs),
                opted_out_at=parse_opt(c.opted_out_at), opt_out_words=c.opt_out_words,
                opt_out_reason=c.opt_out_reason,
                optout_review=c.optout_review_text, blocked=bool(c.blocked_at),
                dm_closed_at=parse_opt(c.dm_closed_at), import_pending=r[_PENDING])
            relevant = today + [s for s in own if not s.at > now - policy.DAY]
            d = policy.decide(snap, None, relevant, settings, now, rate_limited_until=limited)
            hit = memo[key] = Standing(d.allowed, status(c, d), tuple(x.code for x in d.reasons))
        yield r, hit


def _order(times: list[str], fixed: list[str]) -> tuple[int, ...]:
    """How `times` and `fixed` lie among one another: the first place each
    value takes in them all, sorted. Two lists of times with the same answer
    compare alike with one another and with each of `fixed` (earlier, equal
    or later), one by one, whatever the times themselves are."""
    if not times:
        return ()
    every = times + fixed
    merged = sorted(every)
    return tuple(map(merged.index, every))
