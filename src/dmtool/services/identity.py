"""Who an X user is: naming contacts known only by user id, and finding the
contact behind a handle the local record does not know.

An archive import (and, rarely, a sync) leaves contacts named `user_<id>`:
the archive has user ids, not handles. People type handles, so this module
bridges the two, at most one lookup per question:

- `name_placeholders`: one `GET /2/users?ids=` per 100 such contacts.
- `contact_for`: a typed handle, from the store, else one
  `GET /2/users/by/username/{u}` matched to a contact known by user id.

Neither ever creates a contact: a contact is the record of someone you have
dealt with, and a lookup is not an exchange (policy.md §1). The exception is
`contact_to_engage`: recording that someone asked you to DM them
(`contacts engage`) is exactly how such a contact starts.

`verify` and `resolve_user_id` give a contact known only by its handle (added
by hand) the X user id DMs are addressed by, so that `check` can say whether
X knows them and `send` reaches the right person.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from dmtool import timeutil
from dmtool.errors import InputError, NotFound, RateLimited, Unavailable
from dmtool.models import Contact, clean_handle
from dmtool.services import ratelimits
from dmtool.store import contacts as cstore

if TYPE_CHECKING:
    from dmtool.appstate import AppState
    from dmtool.store import Store
    from dmtool.x.types import XClient, XUser

K_NAMING_AFTER = "naming_after"  # sync_state: the contact id a limited naming call reached

# X's own rule for handles: a handle outside it cannot be on X, so never ask.
X_HANDLE = re.compile(r"[A-Za-z0-9_]{1,15}")


def _client(st: AppState) -> XClient:
    from dmtool.services import ledger  # only commands that ask X load the ledger

    return ledger.client(st)


def _stamp() -> str:
    return timeutil.fmt(timeutil.now()) or ""


NAMING_BATCH = 100  # ids per users lookup: X's maximum


def name_placeholders(store: Store, users_by_ids: Callable[[list[str]], list[XUser]], *, now: str,
                      batches: int | None = None, batch: int = NAMING_BATCH) -> int:
    """Ask X for the handles of contacts known only by id (`user_<id>`) and
    record them, one users lookup of up to 100 ids at a time, each batch
    written as soon as X answers it; returns how many got a handle. X answers
    users it no longer knows (deleted, suspended) with only an `errors` entry:
    those stay by id. No lock is held over the network. An error (RateLimited,
    Unavailable, AuthError, ...) stops the work after the batches already
    written.

    It goes on from where the last call stopped (wrapping round), so accounts
    X no longer knows cannot hold back the rest; `batches` bounds one call,
    `batch` the ids of one lookup (a budget may ask for fewer than 100)."""
    total = cstore.placeholder_count(store.conn)
    after = int(store.get_state(K_NAMING_AFTER) or 0)
    named = asked = done = 0
    while asked < total and (batches is None or done < batches):
        rows = cstore.placeholders(store.conn, after=after,
                                   limit=min(max(1, batch), NAMING_BATCH, total - asked))
        if not rows:
            if not after:
                break
            after = 0  # the end: wrap round to the start
            continue
        ids = [uid for _, uid in rows]
        users = users_by_ids(ids)  # raises before anything of this batch is written
        with store.tx() as conn:
            for u in users:
                if u.id in ids:
                    cstore.upsert_x_user(conn, u.id, u.username, u.name, now=now)
                    named += 1
            after = rows[-1][0]
            store.set_state(K_NAMING_AFTER, str(after))
        asked += len(rows)
        done += 1
    return named


def contact_for(st: AppState, handle: str) -> Contact:
    """The contact a handle typed by a user means.

    The local record first (no request). Otherwise, when dmtool can reach X,
    one handle lookup: if X's user is a contact known by user id (say an
    archive contact still named `user_<id>`, or someone who has since changed
    handle), that contact takes the handle and name X gives and is returned.
    Anyone else is not found (exit 1), whatever X knows: a lookup adds no
    record. RateLimited, Unavailable and AuthError from the lookup propagate
    with their own exit codes."""
    conn = st.store.conn
    c = cstore.find(conn, handle)
    if c is not None:
        return c
    h = clean_handle(handle)
    if not X_HANDLE.fullmatch(h):
        return cstore.get(conn, h)  # cannot be anyone's handle on X: not found, without asking
    if not st.can_reach_x():
        raise NotFound(
            f"no contact @{h} in the local record, and dmtool could not ask X who @{h} is: "
            "there are no X credentials",
            hint="run `dmtool auth login`, then try again (or `dmtool sync`, which also names "
                 "contacts known only by id)")
    try:
        with ratelimits.guarded(st.store, "users", f"no contact @{h} in the local record, and "
                                f"dmtool could not ask X who @{h} is", hint="try again after that time"):
            user = _client(st).user_by_handle(h)
    except NotFound as e:
        raise NotFound(f"no contact @{h}, and X has no user @{h}",
                       hint=e.hint or "check the spelling; `dmtool contacts list` shows your "
                                      "contacts") from None
    with st.store.tx() as conn:
        known = cstore.find_by_user_id(conn, user.id)
        if known is None:
            raise NotFound(
                f"no contact @{user.username}: X knows @{user.username} (user {user.id}), but "
                "you have no record of them, so no consent to DM them",
                hint="people become contacts when they DM or mention you (`dmtool sync`); "
                     f"if @{user.username} asked you to DM them, `dmtool contacts engage "
                     f"@{user.username} --evidence \"...\"` records them with that consent")
        c, _ = cstore.upsert_x_user(conn, user.id, user.username, user.name, now=_stamp())
    return c


def contact_to_engage(st: AppState, handle: str) -> tuple[Contact, bool, str | None]:
    """The contact `contacts engage` records consent for: (contact, created,
    why it is not verified on X or None).

    Someone already in the record is used as is. Anyone else is looked up on X
    first, as `check` does: a user X knows becomes a contact with X's user id,
    handle and name (or, when they are a contact known by id, that contact);
    a handle X does not know is refused. Without credentials nobody can be
    looked up: the contact is recorded by handle, not verified on X, as
    `contacts add` does."""
    conn = st.store.conn
    c = cstore.find(conn, handle)
    if c is not None:
        return c, False, None
    h = clean_handle(handle)
    if not X_HANDLE.fullmatch(h):
        raise InputError(f"@{h} cannot be an X handle (letters, digits and _, at most 15)")
    user: XUser | None = None
    why: str | None = None
    if st.can_reach_x():
        try:
            with ratelimits.guarded(st.store, "users", f"could not ask X who @{h} is, so "
                                    "nothing was recorded", hint="try again after that time"):
                user = _client(st).user_by_handle(h)
        except NotFound:
            raise NotFound(f"X has no user @{h}: nothing was recorded",
                           hint="check the spelling of the handle") from None
    else:
        why = "no X credentials to look them up with"
    now = _stamp()
    with st.store.tx() as conn:
        if user is not None:
            known = cstore.find_by_user_id(conn, user.id)
            if known is not None:
                c, _ = cstore.upsert_x_user(conn, user.id, user.username, user.name, now=now)
                return c, False, None
            c = cstore.create(conn, user.username, now=now, user_id=user.id, name=user.name)
        else:
            c = cstore.create(conn, h, now=now)
        cstore.audit(conn, "contact_added", now=now, contact=c, by="engage",
                     verified=user is not None)
    return c, True, why


def _lookup_failed(st: AppState, contact: Contact, command: str, draft_id: int | None) -> NotFound:
    """X has no user by the contact's handle: audited as a refusal."""
    with st.store.tx() as conn:
        cstore.audit(conn, "refused", now=_stamp(), contact=contact, draft_id=draft_id,
                     codes=["E_UNKNOWN_USER"], command=command)
    return NotFound(f"X has no user @{contact.handle}: dmtool cannot DM them",
                    code="E_UNKNOWN_USER",
                    hint="check the handle; if they changed it, `dmtool contacts forget` this one "
                         "and record the new handle")


def resolve_user_id(st: AppState, contact: Contact, *, what: str, command: str,
                    draft_id: int | None = None) -> Contact:
    """The contact with its X user id, looked up once by handle and kept
    (handles change; DMs are addressed by id). A handle X does not know is
    refused (exit 1) and audited; a rate limit or an outage propagates."""
    if contact.user_id:
        return contact
    try:
        with ratelimits.guarded(st.store, "users", f"{what}: @{contact.handle}'s X user id is not "
                                "known yet", hint="try again after that time"):
            user = _client(st).user_by_handle(contact.handle)
    except NotFound:
        raise _lookup_failed(st, contact, command, draft_id) from None
    with st.store.tx() as conn:
        other = cstore.find_by_user_id(conn, user.id)
        if other is not None and other.id != contact.id:
            raise InputError(f"@{contact.handle} is X user {user.id}, already known as "
                             f"@{other.handle}", hint="forget one of the two contacts first")
        return cstore.set_user_id(conn, contact, user.id, now=_stamp())


def verify(st: AppState, contact: Contact, *, command: str) -> tuple[Contact, str | None]:
    """For `check`: (the contact, with its user id when X could be asked; why
    it is not verified on X, or None). A handle X does not know is refused."""
    if contact.user_id:
        return contact, None
    if not st.can_reach_x():
        return contact, "no X credentials to look them up with"
    try:
        return resolve_user_id(st, contact, what="not verified on X", command=command), None
    except (RateLimited, Unavailable) as e:
        return contact, e.message
