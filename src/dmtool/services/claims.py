"""Claims (issue 15 point 4): "I am answering this one", for a while.

A claim is a soft lock on a conversation: while it lasts, other people's
drafts and replies to the contact, and sends of drafts someone other than
the holder wrote, are refused (exit 3, E_CLAIMED) unless they add --force,
which the audit log records under their name. The holder's own draft may be
approved and sent by an approver. Drafting to the contact renews the
holder's claim; a claim past its end is no claim.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from dmtool import actor
from dmtool.errors import ConfigError, PolicyRefused
from dmtool.store import claims as kstore
from dmtool.store import contacts as cstore
from dmtool.timeutil import fmt, parse
from dmtool.timeutil import now as clock

if TYPE_CHECKING:
    from dmtool.appstate import AppState
    from dmtool.models import Contact
    from dmtool.store.sql import Conn

DEFAULT_MINUTES = 30
MAX_MINUTES = 24 * 60  # a claim is for a sitting; drafting renews it


def me() -> str:
    """Who is claiming: a claim needs a name."""
    name = actor.current()
    if name is None:
        raise ConfigError("dmtool cannot tell who you are, so it cannot claim for you",
                          hint="set DMTOOL_OPERATOR, or `dmtool config set operator.name NAME`")
    return name


def _until(st: AppState, claim: kstore.Claim) -> str:
    return f"{st.zone.show(claim.until)} ({st.zone.name})"


def claimed_error(st: AppState, contact: Contact, claim: kstore.Claim, what: str, *,
                  command: str, draft_id: int | None = None) -> PolicyRefused:
    """E_CLAIMED (exit 3), audited: by whom and until when."""
    message = (f"{what}: @{contact.handle} is claimed by {claim.operator} until "
               f"{_until(st, claim)}")
    with st.store.tx() as conn:
        cstore.audit(conn, "refused", now=fmt(clock()) or "", contact=contact, draft_id=draft_id,
                     codes=["E_CLAIMED"], command=command, holder=claim.operator,
                     until=claim.until)
    return PolicyRefused(message, code="E_CLAIMED",
                         hint=f"ask {claim.operator} to run `dmtool release {contact.handle}`, "
                              "wait until then, or add --force (recorded under your name)",
                         reasons=[{"code": "E_CLAIMED", "message": message}])


def guard(st: AppState, contact: Contact, *, command: str, force: bool, what: str,
          author: str | None = None, draft_id: int | None = None) -> kstore.Claim | None:
    """Refuse (E_CLAIMED) when someone else holds a live claim on the contact,
    unless `force`; then return that claim (the caller records the override
    with `overridden`). A send of the holder's own draft (`author`) passes."""
    claim = kstore.current(st.store.conn, contact.id, fmt(clock()) or "")
    if claim is None or actor.same_person(claim.operator, actor.current()):
        return None
    if author is not None and actor.same_person(author, claim.operator):
        return None
    if not force:
        raise claimed_error(st, contact, claim, what, command=command, draft_id=draft_id)
    return claim


def overridden(conn: Conn, claim: kstore.Claim | None, contact: Contact, *,
               command: str, now: str, draft_id: int | None = None) -> None:
    """Record that a --force went past someone's claim (in the acting transaction)."""
    if claim is not None:
        cstore.audit(conn, "claim_overridden", now=now, contact=contact, draft_id=draft_id,
                     command=command, holder=claim.operator, until=claim.until)


def renew(conn: Conn, contact_id: int, now: str) -> None:
    """Drafting to a contact renews the drafter's live claim on it."""
    name = actor.current()
    if name is None:
        return
    claim = kstore.current(conn, contact_id, now)
    if claim is not None and actor.same_person(claim.operator, name):
        until = fmt(parse(now) + timedelta(minutes=claim.minutes)) or ""
        kstore.extend(conn, contact_id, claim.operator, now=now, until=until)


def claim(st: AppState, handle: str, *, minutes: int,
          force: bool) -> tuple[Contact, kstore.Claim]:
    """Claim the conversation with `handle` for `minutes` (again: renew it).
    Someone else's live claim is refused unless `force` (taken over, audited)."""
    from dmtool.services import roles

    roles.require(st, "claim")
    name = me()
    t = clock()
    stamp = fmt(t) or ""
    until = fmt(t + timedelta(minutes=minutes)) or ""
    with st.store.tx() as conn:
        contact = cstore.get(conn, handle)
        held = kstore.current(conn, contact.id, stamp)
        taken = held if held is not None and not actor.same_person(held.operator, name) else None
        if taken is None or force:
            kstore.put(conn, contact.id, name, now=stamp, until=until, minutes=minutes)
            cstore.audit(conn, "claimed", now=stamp, contact=contact, until=until,
                         minutes=minutes, took_over=taken.operator if taken else None)
    if taken is not None and not force:  # audited in a transaction of its own
        raise claimed_error(st, contact, taken, "not claimed", command="claim")
    return contact, kstore.Claim(contact.id, name, stamp, until, minutes)


def release(st: AppState, handle: str, *,
            force: bool) -> tuple[Contact, kstore.Claim | None]:
    """End your claim on `handle` (someone else's only with `force`, audited).
    Returns the contact and the claim ended (None when there was none)."""
    from dmtool.services import roles

    roles.require(st, "claim")
    name = actor.current()
    stamp = fmt(clock()) or ""
    with st.store.tx() as conn:
        contact = cstore.get(conn, handle)
        held = kstore.current(conn, contact.id, stamp)
        theirs = held is not None and not actor.same_person(held.operator, name)
        if held is None or not theirs or force:
            kstore.delete(conn, contact.id)  # an expired one goes quietly
        if held is not None and (not theirs or force):
            cstore.audit(conn, "released", now=stamp, contact=contact,
                         holder=held.operator if theirs else None)
    if held is not None and theirs and not force:
        raise claimed_error(st, contact, held, "not released", command="release")
    return contact, held
