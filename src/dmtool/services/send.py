"""Sending one approved draft: the state machine of x-api.md "Sending safely".

    approved -> sending (committed before the request) -> sent | failed | unknown

X has no idempotency key for DMs, so a DM must never be sent twice:

- the store's send lock (a file lock beside a SQLite store, an advisory lock
  held by the connection on PostgreSQL) is held from the change to `sending`
  until the outcome is recorded; the kernel (or the server) drops it if we
  die, so a draft found `sending` with the lock free is a crashed attempt.
  Before an outcome is recorded the lock is checked to be still ours: if it
  was lost (a dropped connection, a transaction pooler), the outcome is
  recorded as `unknown` and the next send reconciles;
- `sending` and `unknown` drafts are reconciled by reading the conversation
  before anything else; only a confirmed absence makes the draft `failed`, and
  only a new approval by the user lets it be sent again;
- the policy and the lint run again right before the request, under the lock.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from dmtool import actor, policy
from dmtool.errors import (
    AuthError,
    BudgetExceeded,
    Busy,
    DMClosed,
    DmtoolError,
    InputError,
    PolicyRefused,
    RateLimited,
    StoreUnavailable,
    Unavailable,
    UsageError,
)
from dmtool.lint import lint
from dmtool.services import claims, consent, drafting, identity, ratelimits, traffic
from dmtool.services.drafting import DraftView
from dmtool.store import contacts as cstore
from dmtool.store import drafts as dstore
from dmtool.store import messages as mstore
from dmtool.timeutil import fmt, parse, parse_opt
from dmtool.timeutil import now as clock
from dmtool.x.errors import SendOutcomeUnknown

if TYPE_CHECKING:

    from dmtool.appstate import AppState
    from dmtool.models import Contact
    from dmtool.store.sql import Conn, Locks
    from dmtool.x.types import DMEvent

LOCK_TIMEOUT_S = 10.0
# X's clock and ours may disagree a little; an outbound event with the same text
# this much before send_started_at still counts as our send. Safe to be generous:
# the same text to the same person within 24 hours is refused anyway (E_DUPLICATE).
RECONCILE_SKEW = timedelta(seconds=30)
# Every DM event read is billed: start with a small page (our DM is usually the
# newest event) and grow only while the search has not reached the send's start.
RECONCILE_PAGE_SIZES = (5, 25, 100)
NOT_DELIVERED = "not delivered (confirmed absent)"

Confirm = Callable[[DraftView], bool]


@dataclass(frozen=True)
class SendResult:
    draft: dstore.Draft
    first_contact: bool
    dry_run: bool = False
    reconciled: bool = False  # an earlier attempt turned out delivered; nothing new was sent
    sandbox: bool = False
    needs_confirmation: bool = False  # dry run: a real send would ask on a terminal
    declined: bool = False  # you answered no at the prompt: nothing was sent, the draft stays
    # `reply` under team.approval: the draft waits for another person's approval.
    waiting_for_approval: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = self.draft
        return {"id": d.id, "handle": d.handle, "status": d.status, "dm_event_id": d.dm_event_id,
                "dm_conversation_id": d.dm_conversation_id, "first_contact": self.first_contact,
                "dry_run": self.dry_run, "reconciled": self.reconciled, "sandbox": self.sandbox,
                "declined": self.declined, "waiting_for_approval": self.waiting_for_approval}


def _on(st: AppState) -> str:
    return " on the sandbox" if st.sandbox else ""


# --- the lock ----------------------------------------------------------------------


@contextlib.contextmanager
def send_lock(st: AppState, timeout: float = LOCK_TIMEOUT_S, *,
              locks: Locks | None = None) -> Iterator[None]:
    """The store's send lock; wait up to `timeout` seconds, else Busy (exit 5).
    `locks` takes it without opening the store (a restore: store.db.FileLocks)."""
    from dmtool.locks import LockTimeout

    held = contextlib.ExitStack()
    try:
        held.enter_context((locks or st.store).lock("send", timeout))
    except LockTimeout:
        raise Busy("another dmtool send is in progress for this store",
                   hint="try again in a moment") from None
    with held:
        yield


def _lock_lost(st: AppState, d: dstore.Draft, contact: Contact) -> SendOutcomeUnknown | None:
    """Before an outcome is recorded: if the send lock is no longer ours, another
    process may already be reconciling this draft. Record `unknown` instead."""
    if st.store.lock_held("send"):
        return None
    _settle_unknown(st, d, contact, "the send lock was lost before the outcome was recorded")
    return SendOutcomeUnknown(
        f"draft {d.id}: the connection to the store lost its send lock during the send{_on(st)}; "
        "the DM may or may not have been delivered",
        hint=f"the next `dmtool send {d.id}` will check X before anything else (docs/team.md: "
             "transaction poolers)")


# --- reconciliation ----------------------------------------------------------------


def _same_text(a: str, b: str) -> bool:
    """X may rewrap links (t.co), normalise line ends and trim: compare what survives."""
    def norm(s: str) -> str:
        s = unicodedata.normalize("NFC", s.replace("\r\n", "\n"))
        return " ".join(re.sub(r"https?://\S+", "<link>", s).split())
    return norm(a) == norm(b)


def _record_sent(st: AppState, d: dstore.Draft, contact: Contact, *, event_id: str,
                 conversation_id: str | None, at: datetime, first_contact: bool,
                 reconciled: bool) -> None:
    now = fmt(clock()) or ""
    stamp = fmt(at) or now
    with st.store.tx() as conn:
        if not dstore.mark_sent(conn, d.id, dm_event_id=event_id,
                                dm_conversation_id=conversation_id or None, sent_at=stamp, now=now):
            raise DmtoolError(f"draft {d.id} changed state while it was being sent",
                              code="E_STATE", hint=f"see `dmtool drafts show {d.id}`")
        source = "autoack" if d.template == "autoack" else "send"
        if not mstore.add_message(conn, event_id=event_id, conversation_id=conversation_id or None,
                                  contact_id=contact.id, direction="out", text=d.text, at=stamp,
                                  source=source, now=now, first_contact=first_contact):
            mstore.mark_own_send(conn, event_id, source=source, first_contact=first_contact)
        mstore.record_send(conn, user_id=contact.user_id or f"local:{contact.id}", at=stamp,
                           text=d.text, first_contact=first_contact, kind=source, draft_id=d.id,
                           event_id=event_id)
        detail: dict[str, Any] = {"event_id": event_id, "first_contact": first_contact,
                                  "sandbox": st.sandbox, "sha256": dstore.text_hash(d.text)}
        if reconciled:
            detail["reconciled"] = True
            _ledger().settle_send(st, conn, d.id, delivered=True)
        cstore.audit(conn, "sent", now=now, contact=contact, draft_id=d.id, **detail)
        _unapprove_others(conn, d, contact, sent_at=stamp, now=now)


def _unapprove_others(conn: Conn, d: dstore.Draft, contact: Contact, *,
                      sent_at: str, now: str) -> None:
    """Two approved drafts waiting for one person: once one is sent, the other
    goes back to review with a note (the traffic cop would refuse it at send,
    and its approver should read what was just sent first). The note is kept
    for everyone: its time is UTC, and nothing here can fail on a setting
    after the DM has left."""
    for other in dstore.approved_for(conn, contact.id, other_than=d.id):
        note = (f"draft {d.id} was sent to @{contact.handle} at "
                f"{sent_at[:16].replace('T', ' ')} UTC after this one was approved: read the "
                "conversation, then approve this one again if it still fits")
        if dstore.return_to_review(conn, other, note, now=now):
            cstore.audit(conn, "returned_to_review", now=now, contact=contact, draft_id=other,
                         after_draft=d.id)


def _find_in_store(st: AppState, d: dstore.Draft, since: datetime) -> tuple[str, str | None,
                                                                            datetime] | None:
    """A sync may already have brought the outbound event home. The oldest
    match not claimed by another draft: ours was the first to leave."""
    for m in cstore.messages(st.store.conn, d.contact_id, limit=50):  # oldest first
        if (m.direction == "out" and m.event_id and parse(m.at) >= since
                and _same_text(m.text, d.text)
                and not dstore.event_claimed(st.store.conn, m.event_id, other_than=d.id)):
            conv = mstore.conversation_of(st.store.conn, d.contact_id)
            return m.event_id, conv["id"] if conv else None, parse(m.at)
    return None


def _find_on_x(st: AppState, d: dstore.Draft, participant_id: str,
               since: datetime) -> tuple[DMEvent | None, bool]:
    """(our event, whether the search covered everything since `since`): the
    oldest unclaimed match after the attempt began."""
    client = _ledger().client(st)  # these reads cost money too: a budget may refuse them
    token: str | None = None
    oldest: DMEvent | None = None
    for size in RECONCILE_PAGE_SIZES:
        page = client.conversation_events(participant_id, size, token)
        for e in page.events:  # newest first
            if e.created_at is not None and e.created_at < since:
                return oldest, True
            if (e.event_type == "MessageCreate" and e.sender_id != participant_id
                    and e.text is not None and _same_text(e.text, d.text)
                    and not dstore.event_claimed(st.store.conn, e.id, other_than=d.id)):
                oldest = e
        token = page.next_token
        if not page.events or token is None:
            return oldest, True
    return oldest, oldest is not None


def _reconcile(st: AppState, d: dstore.Draft) -> dstore.Draft:
    """Settle a `sending` (crashed) or `unknown` draft by looking for it on X.
    Call with the send lock held."""
    now = fmt(clock()) or ""
    if d.status == "sending":
        with st.store.tx() as conn:  # the attempt died: from now on its outcome is unknown
            dstore.mark_unknown(conn, d.id, now=now)
    contact = cstore.by_id(st.store.conn, d.contact_id)
    started = parse_opt(d.send_started_at)
    since = (started or datetime.min.replace(tzinfo=UTC)) - RECONCILE_SKEW
    found = _find_in_store(st, d, since)
    covered = True
    if found is None and contact.user_id and started is not None:
        what = (f"could not check whether draft {d.id} reached @{contact.handle}{_on(st)} "
                "(nothing was sent)")
        hint = f"run `dmtool send {d.id}` after that time: it checks X first"
        with ratelimits.guarded(st.store, "dm_read", what, hint=hint):
            event, covered = _find_on_x(st, d, contact.user_id, since)
        if event is not None:
            found = (event.id, event.conversation_id, event.created_at or clock())
    if found is not None:
        event_id, conv, at = found
        _record_sent(st, d, contact, event_id=event_id, conversation_id=conv, at=at,
                     first_contact=bool(d.first_contact), reconciled=True)
    elif not covered:
        raise Unavailable(
            f"could not confirm whether draft {d.id} reached @{contact.handle}{_on(st)}: "
            "the conversation is longer than dmtool reads in one go",
            code="E_SEND_UNKNOWN",
            hint="check the conversation on X; run `dmtool sync` and `dmtool send` again")
    else:
        # Not on X: but without the send lock another process may be settling
        # it (or have found it) now. Leave it `unknown` for the next reconcile.
        lost = _lock_lost(st, d, contact)
        if lost is not None:
            raise lost
        with st.store.tx() as conn:
            dstore.mark_failed(conn, d.id, NOT_DELIVERED, now=now)
            _ledger().settle_send(st, conn, d.id, delivered=False)
            cstore.audit(conn, "send_failed", now=now, contact=contact, draft_id=d.id,
                         reason=NOT_DELIVERED, sandbox=st.sandbox)
    return dstore.get(st.store.conn, d.id)


# --- checks ------------------------------------------------------------------------


def _not_sendable(st: AppState, d: dstore.Draft) -> DmtoolError:
    if d.status == "sent":
        return InputError(f"draft {d.id} was already sent{_on(st)} ({d.sent_at}, event "
                          f"{d.dm_event_id})", code="E_ALREADY_SENT", hint="nothing was sent again")
    if d.status == "failed":
        return InputError(f"draft {d.id} was not delivered{_on(st)}: {d.reason}",
                          code="E_NOT_APPROVED",
                          hint=f"approve it again to retry: `dmtool review {d.id} --approve`")
    why = f": {d.reason}" if d.status == "draft" and d.reason else ""  # sent back to review
    return InputError(f"draft {d.id} is not approved (it is {d.status}{why}); nothing was "
                      f"sent{_on(st)}", code="E_NOT_APPROVED",
                      hint=f"review it first: `dmtool review {d.id} --approve`")


def _gate_error(st: AppState, v: DraftView) -> DmtoolError | None:
    """The refusal for this view at send time, audited; None when it may go."""
    d = v.draft
    if d.approved_text != d.text or (d.approved_sha256 is not None
                                     and d.approved_sha256 != dstore.text_hash(d.text)):
        return PolicyRefused(f"not sent{_on(st)}: draft {d.id} changed after it was approved",
                             code="E_NOT_APPROVED",
                             hint=f"review it again: `dmtool review {d.id} --approve`")
    blocking = v.blocking(ignore_transient=False)
    if blocking:
        # Another process may have sent this very draft since it was read: then
        # its own DM is no reason to refuse it; say it was sent.
        current = dstore.get(st.store.conn, d.id)
        if current.status != "approved":
            return _not_sendable(st, current)
        if v.decision.temporary:
            until = consent.rate_limited_until(st.store.conn)
            return RateLimited(f"not sent{_on(st)}: {blocking[0].message}",
                               reset_at=int(until.timestamp()) if until else None,
                               family="dm_send")
        return drafting.refuse(st, v.contact, blocking, command="send", draft_id=d.id,
                               what=f"not sent{_on(st)}")
    new = sorted(v.warning_codes - d.acknowledged_codes)
    if new:
        return _refused(
            st, v, "E_UNACKNOWLEDGED",
            f"not sent{_on(st)}: draft {d.id} has warnings that were not acknowledged at approval: "
            f"{', '.join(new)}",
            hint=f"read them with `dmtool drafts show {d.id}`, then "
                 f"`dmtool review {d.id} --approve --ack-warnings`")
    return None


def _refused(st: AppState, v: DraftView, code: str, message: str, *, hint: str) -> PolicyRefused:
    """A send-time refusal that is not one of the policy's reasons, audited like them."""
    with st.store.tx() as conn:
        cstore.audit(conn, "refused", now=fmt(clock()) or "", contact=v.contact,
                     draft_id=v.draft.id, codes=[code], command="send")
    return PolicyRefused(message, code=code, hint=hint,
                         reasons=[{"code": code, "message": message}])


def _ask(st: AppState, v: DraftView, confirm: Confirm | None, yes: bool) -> bool:
    """A human confirms: always on a terminal for a first contact, else --yes will
    do. False when they answered no (not an error: nothing is sent)."""
    if v.first_contact:
        if confirm is None:
            raise _refused(
                st, v, "E_FIRST_CONTACT_CONFIRM",
                f"not sent{_on(st)}: draft {v.draft.id} is a first message to @{v.contact.handle}, and first "
                "messages need your own confirmation on a terminal; --yes is not enough",
                hint=f"run `dmtool send {v.draft.id}` in a terminal")
    elif yes:
        return True
    elif confirm is None:
        raise UsageError(f"sending draft {v.draft.id}{_on(st)} needs confirmation",
                         hint="add --yes (this terminal cannot ask)")
    return confirm(v)


# --- the send ----------------------------------------------------------------------


def send_draft(st: AppState, draft_id: int, *, confirm: Confirm | None, yes: bool,
               dry_run: bool, force: bool = False) -> SendResult:
    """Send exactly one approved draft, or settle an earlier attempt. Never twice.
    `force` goes past someone else's claim on the contact (audited)."""
    from dmtool.services import roles

    roles.require(st, "send")
    d = dstore.get(st.store.conn, draft_id)
    if d.status in dstore.UNSETTLED:
        if dry_run:
            raise InputError(
                f"the outcome of draft {d.id}'s last send is not known yet",
                code="E_SEND_UNKNOWN",
                hint=f"run `dmtool send {d.id}` (without --dry-run): it checks X first")
        # 1. An earlier attempt that crashed or timed out is settled before anything else.
        # Under the lock: `sending` may also be a send in flight in another process.
        with send_lock(st):
            d = dstore.get(st.store.conn, draft_id)
            if d.status in dstore.UNSETTLED:
                d = _reconcile(st, d)
                if d.status == "sent":
                    return SendResult(d, bool(d.first_contact), reconciled=True,
                                      sandbox=st.sandbox)
                raise DmtoolError(
                    f"draft {d.id} was not delivered{_on(st)}: X shows no such DM after the "
                    "attempt", code="E_NOT_DELIVERED",
                    hint=f"to try again, approve it again (`dmtool review {d.id} --approve`) "
                         f"and run `dmtool send {d.id}`")
    if d.status != "approved":
        raise _not_sendable(st, d)

    # 2. Check and confirm without the lock: a person may take their time at the prompt.
    v = drafting.view(st.store.conn, st, d)
    claims.guard(st, v.contact, command="send", force=force, what=f"not sent{_on(st)}",
                 author=d.author, draft_id=d.id)
    moved = traffic.stop_if_moved(st, d, v.contact, v.blocking(ignore_transient=True))
    if moved is not None:
        raise moved
    err = _gate_error(st, v)
    if err is not None:
        raise err
    if not v.contact.user_id:
        # The id can bring back a suppression kept by user id: check again with it.
        # A handle X does not know is refused here, and audited (issue 12).
        identity.resolve_user_id(st, v.contact, what=f"not sent{_on(st)}", command="send",
                                 draft_id=d.id)
        v = drafting.view(st.store.conn, st, d)
        err = _gate_error(st, v)
        if err is not None:
            raise err
    contact = v.contact
    if dry_run:
        needs = v.first_contact or not yes
        return SendResult(d, v.first_contact, dry_run=True, sandbox=st.sandbox,
                          needs_confirmation=needs)
    _within_budget(st, d, contact)  # no one is asked to confirm a send the budget forbids
    if not _ask(st, v, confirm, yes):
        return SendResult(d, v.first_contact, sandbox=st.sandbox, declined=True)

    # 3. Under the lock: the same draft, the same text, the gate again, then one request.
    with send_lock(st):
        return _send_approved(st, d.id, confirmed_text=d.text, contact_id=contact.id,
                              force=force)


def _send_approved(st: AppState, draft_id: int, *, confirmed_text: str,
                   contact_id: int, force: bool = False, autoack: bool = False) -> SendResult:
    """The only place a DM leaves dmtool. Call with the send lock held."""
    conn = st.store.conn
    d = dstore.get(conn, draft_id)
    if d.status != "approved":
        raise _not_sendable(st, d)
    if d.text != confirmed_text or d.contact_id != contact_id:
        raise InputError(f"draft {d.id} changed while you were confirming it",
                         hint=f"see `dmtool drafts show {d.id}`")
    contact = cstore.by_id(conn, d.contact_id)
    # Claims are between people: an acknowledgement never waits for one.
    override = None if autoack else claims.guard(
        st, contact, command="send", force=force, what=f"not sent{_on(st)}", author=d.author,
        draft_id=d.id)
    findings = drafting.lint_for(conn, st, contact, d.text, template=drafting.from_template(d))
    now = clock()
    decision = consent.decide(conn, contact, d.text, st.config.policy(), now, findings,
                              draft_id=d.id)
    checked = DraftView(d, contact, tuple(findings), decision)
    # The traffic cop: nothing may have moved in the conversation since the approval.
    moved = traffic.stop_if_moved(st, d, contact, checked.blocking(ignore_transient=True))
    if moved is not None:
        raise moved
    err = _gate_error(st, checked)
    if err is not None:
        raise err
    if not contact.user_id:  # resolved before the lock; a forget/re-add could undo it
        raise InputError(f"@{contact.handle} has no X user id yet", hint="run the send again")

    # Credentials problems show up before anything is committed; so does the
    # budget: a send it forbids is never started (the draft stays approved).
    client = _ledger().client(st)
    _within_budget(st, d, contact)
    stamp = fmt(now) or ""
    with st.store.tx() as tx:
        if not dstore.start_send(tx, d.id, text=d.text, first_contact=decision.first_contact,
                                 now=stamp, sent_by=actor.current()):
            raise _not_sendable(st, dstore.get(tx, d.id))
        claims.overridden(tx, override, contact, command="send", now=stamp, draft_id=d.id)
    # `sending` is committed: from here a crash leaves a draft the next send reconciles.
    try:
        sent = client.send_dm(contact.user_id, d.text)
    except DMClosed:
        _settle_failed(st, d, contact, "X refused the DM (403): they do not accept your DMs",
                       code="E_DM_CLOSED", dm_closed=True)
        raise DMClosed(f"X refused the DM to @{contact.handle}{_on(st)} (403): they do not "
                       "accept DMs from you; draft marked failed",
                       hint="reply publicly, or wait until they message you") from None
    except RateLimited as e:
        _back_to_approved(st, d, contact, "rate_limited", limit=e)
        raise RateLimited(f"not sent{_on(st)}: {e.message}; the draft stays approved",
                          reset_at=e.reset_at, hint=e.hint, family=e.family or "dm_send") from None
    except BudgetExceeded:
        # Refused before it left (another process spent the rest meanwhile).
        _back_to_approved(st, d, contact, "send_not_attempted", error="E_BUDGET")
        raise
    except SendOutcomeUnknown as e:
        _ledger().of(st).unknown_send(d.id)  # counts one send until reconciled
        _settle_unknown(st, d, contact, e.message)
        raise SendOutcomeUnknown(
            f"no clear answer from X{_on(st)} for draft {d.id}: the DM may or may not have "
            "been delivered",
            hint=f"the next `dmtool send {d.id}` will check X before anything else") from None
    except (Unavailable, AuthError) as e:
        # Raised before X acted (no connection, refused credentials): nothing was sent.
        _back_to_approved(st, d, contact, "send_not_attempted", error=e.code)
        raise
    except DmtoolError as e:
        # X answered with an error (400, 404, ...): it did not deliver the DM.
        _settle_failed(st, d, contact, f"X refused the DM: {e.message}", code=e.code)
        raise
    except BaseException:
        # Interrupted or broken mid-request: the DM may have left. Reconcile later.
        _ledger().of(st).unknown_send(d.id)
        with contextlib.suppress(Exception):
            _settle_unknown(st, d, contact, "interrupted")
        raise
    lost = _lock_lost(st, d, contact)
    if lost is not None:
        raise lost
    try:
        _record_sent(st, d, contact, event_id=sent.dm_event_id,
                     conversation_id=sent.dm_conversation_id, at=now,
                     first_contact=decision.first_contact, reconciled=False)
    except (Busy, StoreUnavailable) as e:
        # X accepted the DM; only writing it down failed (a lock held too long, a
        # deadlock, a lost connection), and "try again" must not read as "nothing
        # happened". The draft stays `sending`: the next send reconciles it from X.
        raise SendOutcomeUnknown(
            f"draft {d.id}: X accepted the DM{_on(st)}, but the store could not record it "
            f"({e.message})",
            hint=f"`dmtool send {d.id}` records it from X before anything else") from e
    return SendResult(dstore.get(conn, d.id), decision.first_contact, sandbox=st.sandbox)


def _ledger() -> Any:
    from dmtool.services import ledger  # loaded by commands that ask X only

    return ledger


def _within_budget(st: AppState, d: dstore.Draft, contact: Contact) -> None:
    """BudgetExceeded (audited, nothing changed) unless one more send fits the
    budgets; a send whose outcome is unknown already counts as one."""
    try:
        _ledger().of(st).gate(_send_plan(contact))
    except BudgetExceeded as e:
        if d.template == drafting.AUTOACK:
            raise  # send_autoack defers it (audited there)
        with st.store.tx() as conn:
            cstore.audit(conn, "send_not_attempted", now=fmt(clock()) or "", contact=contact,
                         draft_id=d.id, codes=[e.code], budget=e.budget, spent=e.spent,
                         limit=e.limit, sandbox=st.sandbox)
        raise BudgetExceeded(f"not sent{_on(st)}: {e.message}; draft {d.id} stays approved",
                             budget=e.budget, spent=e.spent, limit=e.limit, hint=e.hint) from None


def _send_plan(contact: Contact) -> Any:
    from dmtool.x.observe import RequestPlan

    return RequestPlan("POST", f"/2/dm_conversations/with/{contact.user_id}/messages", "dm_send")


def _defer_ack(st: AppState, contact: Contact, e: BudgetExceeded,
               draft_id: int | None = None) -> BudgetExceeded:
    """An acknowledgement the budget holds back: audited, and the approved ack
    (if one was made) discarded; the sync keeps it for later (never dropped)."""
    now = fmt(clock()) or ""
    with st.store.tx() as tx:
        if draft_id is not None:
            dstore.discard(tx, draft_id, now=now)
        cstore.audit(tx, "autoack_deferred", now=now, contact=contact, codes=[e.code],
                     budget=e.budget, spent=e.spent, limit=e.limit)
    return e


def _settle_failed(st: AppState, d: dstore.Draft, contact: Contact, reason: str, *, code: str,
                   dm_closed: bool = False) -> None:
    lost = _lock_lost(st, d, contact)
    if lost is not None:
        raise lost
    now = fmt(clock()) or ""
    with st.store.tx() as conn:
        dstore.mark_failed(conn, d.id, reason, now=now)
        if dm_closed:
            cstore.set_dm_closed(conn, contact.id, now)
        cstore.audit(conn, "send_failed", now=now, contact=contact, draft_id=d.id, codes=[code],
                     reason=reason, sandbox=st.sandbox)


def _settle_unknown(st: AppState, d: dstore.Draft, contact: Contact, why: str) -> None:
    now = fmt(clock()) or ""
    with st.store.tx() as conn:
        dstore.mark_unknown(conn, d.id, now=now)
        cstore.audit(conn, "send_unknown", now=now, contact=contact, draft_id=d.id,
                     codes=["E_SEND_UNKNOWN"], reason=why, sandbox=st.sandbox)


def _back_to_approved(st: AppState, d: dstore.Draft, contact: Contact, action: str, *,
                      limit: RateLimited | None = None, error: str | None = None) -> None:
    lost = _lock_lost(st, d, contact)
    if lost is not None:
        raise lost
    now = clock()
    with st.store.tx() as conn:
        dstore.back_to_approved(conn, d.id, now=fmt(now) or "")
        detail: dict[str, Any] = {"sandbox": st.sandbox}
        codes: list[str] = []
        if limit is not None:
            detail["until"] = fmt(ratelimits.record(st.store, limit, now, family="dm_send"))
            codes = ["E_RATE_LIMITED"]
        elif error:
            codes = [error]
        cstore.audit(conn, action, now=fmt(now) or "", contact=contact, draft_id=d.id,
                     codes=codes, **detail)



# --- auto-acknowledgement (policy.md §6) ------------------------------------------


def send_autoack(st: AppState, contact_id: int, inbound_at: datetime) -> SendResult | None:
    """Acknowledge a DM that opened a new conversation, when the policy allows.

    The acknowledgement goes through the same state machine as every send: an
    approved draft (template "autoack"), the gate again, `sending` committed
    before the request. Returns None when the policy says no (audited).
    """
    text = str(st.config.get("autoack.text")).strip()
    if not text:
        return None
    with send_lock(st):
        conn = st.store.conn
        contact = cstore.by_id(conn, contact_id)
        now = clock()
        findings = lint(text, drafting.lint_context(st, contact, False), st.config.lint())
        decision = policy.decide_autoack(
            consent.snapshot(conn, contact), inbound_at, consent.recent_sends(conn, now),
            st.config.policy(), text, now, findings,
            rate_limited_until=consent.rate_limited_until(conn))
        stamp = fmt(now) or ""
        if not decision.allowed:
            with st.store.tx() as tx:
                cstore.audit(tx, "autoack_skipped", now=stamp, contact=contact,
                             codes=[r.code for r in decision.blocking])
            return None
        try:  # before any draft is made: a held-back ack leaves none behind
            _ledger().of(st).gate(_send_plan(contact))
        except BudgetExceeded as e:
            raise _defer_ack(st, contact, e) from None
        # The text is fixed by design: that it resembles earlier acks (W_SIMILAR)
        # is expected, not a warning for anyone to read.
        acknowledged = [f.code for f in findings] + ["W_SIMILAR"]
        with st.store.tx() as tx:
            d = dstore.create(tx, contact.id, text, now=stamp, template="autoack",
                              author=actor.current())
            dstore.approve(tx, d.id, text=text, acknowledged=acknowledged, now=stamp,
                           approved_by=actor.current())
            cstore.audit(tx, "approved", now=stamp, contact=contact, draft_id=d.id, by="autoack")
        try:
            return _send_approved(st, d.id, confirmed_text=text, contact_id=contact.id,
                                  autoack=True)
        except BudgetExceeded as e:  # spent meanwhile by another process
            raise _defer_ack(st, contact, e, d.id) from None
        except (PolicyRefused, RateLimited) as e:
            # Refused at the gate, or X's sending limit: nothing was sent. No
            # approved ack may linger for someone to send by hand later.
            with st.store.tx() as tx:
                dstore.discard(tx, d.id, now=fmt(clock()) or "")
            if isinstance(e, RateLimited):
                raise
            return None
        except (DMClosed, SendOutcomeUnknown):
            return None  # settled and audited; the digest lists failed sends


def settle_autoacks(st: AppState) -> None:
    """Reconcile acknowledgements whose send was cut short (a sync killed
    mid-request), so they are recorded as sent or failed, not left pending."""
    pending = [d for d in dstore.list_drafts(st.store.conn, dstore.UNSETTLED)
               if d.template == "autoack"]
    if not pending:
        return
    with send_lock(st):
        for d in pending:
            d = dstore.get(st.store.conn, d.id)
            if d.status in dstore.UNSETTLED:
                # Try again at the next sync (a dm_read limit is recorded, and the
                # sync itself then says when it can read again).
                with contextlib.suppress(Unavailable, RateLimited, BudgetExceeded):
                    _reconcile(st, d)
