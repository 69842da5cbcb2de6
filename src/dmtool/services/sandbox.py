"""Playing the other side on the sandbox X: `dmtool sandbox receive`.

Learning the opt-out flow needs someone to write STOP. On a sandbox profile
this puts a DM from one of the sandbox's people into its world, exactly as X
would hold it; nothing touches the local record: the next `dmtool sync` reads
it like any other DM (opt-out words, review, autoack and all).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from dmtool.errors import InputError, NotFound

if TYPE_CHECKING:
    from dmtool.appstate import AppState

MAX_TEXT = 10_000  # X's limit for one DM
DM_WINDOW = timedelta(days=30)  # X returns DM events of the last 30 days only


@dataclass(frozen=True)
class Received:
    event_id: str
    user_id: str
    handle: str
    at: datetime
    added: bool  # a new sandbox user was made for it (--new)
    outside_window: bool  # older than X's 30 days: sync will not see it


def parse_time(st: AppState, text: str) -> datetime:
    """ISO 8601, in the local zone unless it carries an offset: read as every
    time a person types (timeutil.parse_when), so out of range is an error too."""
    try:
        return st.zone.parse_typed(text)
    except ValueError as e:
        raise InputError(f"--at: {e}", hint="use ISO 8601, e.g. 2026-03-02T14:30 (local time) "
                                            "or 2026-03-02T05:30Z") from None


def receive(st: AppState, handle: str, text: str, at: datetime | None = None, *,
            new: bool = False) -> Received:
    """Put one DM from `handle` to you into the profile's sandbox world."""
    from dmtool.appstate import ensure_sandbox_world
    from dmtool.models import clean_handle, is_x_handle, placeholder_id
    from dmtool.x.sandbox import SandboxWorld

    if not st.sandbox:
        raise InputError(f"profile {st.profile!r} talks to the real X: only a sandbox profile "
                         "can receive a made-up DM", code="E_NOT_SANDBOX",
                         hint="run `dmtool demo` once, then `dmtool --profile demo sandbox receive "
                              "@sam_stops STOP`")
    h = clean_handle(handle)
    if not text.strip():
        raise InputError("the message is empty")
    if len(text) > MAX_TEXT:
        raise InputError(f"the message is {len(text)} characters; X allows {MAX_TEXT}")
    ensure_sandbox_world(st)
    world = SandboxWorld(st.paths.sandbox_file)
    with world.transaction() as state:
        me = state.get("me")
        users = state["users"]
        user = next((u for u in users.values() if str(u["username"]).lower() == h.lower()), None)
        if user is None and placeholder_id(h):  # dmtool's name for someone known by id only
            user = users.get(placeholder_id(h))
        if user is not None and user["id"] == me:
            raise InputError(f"@{h} is you on this sandbox: pick someone else to write to you")
        added = False
        if user is None:
            if not new or not is_x_handle(h):
                people = sorted(f"@{u['username']}" for u in users.values() if u["id"] != me)
                make = (f"add --new to make @{h} a new sandbox user" if is_x_handle(h) else
                        "a new sandbox user needs an X handle (1 to 15 letters, digits and '_')")
                raise NotFound(f"no @{h} on this profile's sandbox X",
                               hint=(f"its people: {', '.join(people)}; " if people else "") + make)
            world.add_user(h, h)
            user = next(u for u in users.values() if str(u["username"]).lower() == h.lower())
            added = True
        now = world.now()
        when = at or now
        if when > now:
            raise InputError(f"--at is in the future ({when:%Y-%m-%d %H:%M} UTC): a DM arrives "
                             "now or earlier")
        event_id = world.incoming_dm(user["id"], text, at=when)
    return Received(event_id, user["id"], user["username"], when, added,
                    outside_window=when < now - DM_WINDOW)
