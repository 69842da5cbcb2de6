"""Who an X user is: naming contacts known only by user id.

An archive import (and, rarely, a sync) leaves contacts named `user_<id>`:
the archive has user ids, not handles. People type handles, so this module
bridges the two:

- `name_placeholders`: one `GET /2/users?ids=` per 100 such contacts.

It never creates a contact: a contact is the record of someone you have
dealt with, and a lookup is not an exchange (policy.md §1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dmtool.store import contacts as cstore

if TYPE_CHECKING:
    from dmtool.store import Store
    from dmtool.x.types import XClient


def name_placeholders(store: Store, client: XClient, *, now: str, limit: int | None = None) -> int:
    """Ask X for the handles of contacts known only by id (`user_<id>`), up to
    `limit` of them (all by default), and record them; returns how many got
    one. X answers users it no longer knows (deleted, suspended) with only an
    `errors` entry: those stay by id. The lookup runs before the write
    transaction, so no lock is held over the network. Raises what the client
    raises (RateLimited, Unavailable, AuthError, ...); nothing is written then."""
    ids = cstore.placeholder_user_ids(store.conn, limit=limit)
    if not ids:
        return 0
    users = client.users_by_ids(ids)  # one request per 100 ids
    wanted = set(ids)
    named = 0
    with store.tx() as conn:
        for u in users:
            if u.id in wanted:
                cstore.upsert_x_user(conn, u.id, u.username, u.name, now=now)
                named += 1
    return named
