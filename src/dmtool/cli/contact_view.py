"""A contact as commands show it: the JSON contract's contact object and the
policy decision behind its status (`thread`, `contacts show`, `contacts list`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dmtool.appstate import AppState


def contact_object(*, handle: str, user_id: str | None, name: str | None, tags: list[str],
                   status: str, can_dm: bool, last_in: str | None,
                   last_out: str | None) -> dict[str, Any]:
    """The contact object of the JSON contract (cli.md), wherever a contact is shown."""
    return {"handle": handle, "user_id": user_id, "name": name, "tags": tags, "status": status,
            "can_dm": can_dm, "last_inbound_at": last_in, "last_outbound_at": last_out}


def opt_out_text(at: str, words: str | None, reason: str | None) -> str:
    """An opt-out for people: when, what they wrote, the reason you gave."""
    parts = [f'wrote "{" ".join(words.split())}"' if words else "",
             f"reason: {reason}" if reason else ""]
    said = "; ".join(p for p in parts if p)
    return at[:16].replace("T", " ") + (f" ({said})" if said else "")


def contact_view(st: AppState, c: Any) -> tuple[dict[str, Any], Any]:
    """One contact's contract object, and the policy decision behind it."""
    from dmtool.services import consent
    from dmtool.store import contacts as cstore

    conn = st.store.conn
    from dmtool.timeutil import now

    d = consent.decide(conn, c, None, st.config.policy(), now())
    last_in, last_out = cstore.last_message_times(conn, c.id)
    obj = contact_object(handle=c.handle, user_id=c.user_id, name=c.name, tags=list(c.tags),
                         status=consent.status(c, d), can_dm=d.allowed, last_in=last_in,
                         last_out=last_out)
    return obj, d
