"""The sandbox's state file and the helpers every part of it shares.

The state is one JSON document (`State`). Readers and writers lock a sibling
`.lock` file (dmtool.locks), re-read, change and write back atomically, so several
processes (a cron sync, a send, the test itself) can share one world.

Ids come from a monotonically increasing snowflake-like counter, so they sort
like X's and encode their time. Time is the world's fixed clock, else
DMTOOL_NOW, else real UTC now.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dmtool.errors import DmtoolError, write_failed

State = dict[str, Any]

TWITTER_EPOCH_MS = 1288834974657  # snowflake epoch, so ids look like X's

USERNAME_RE = re.compile(r"^[A-Za-z0-9_]{1,15}$")
NUMERIC_RE = re.compile(r"^[0-9]{1,19}$")


# --- time and ids -------------------------------------------------------------


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def fmt(dt: datetime) -> str:
    # X's created_at always carries milliseconds; tweepy's parser needs them.
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + ".000Z"


def as_datetime(at: datetime | str | None, now: datetime) -> datetime:
    if at is None:
        return now
    if isinstance(at, str):
        return parse_time(at)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def world_now(state: State) -> datetime:
    # The world's fixed clock first; else DMTOOL_NOW, which pins dmtool's own
    # clock (so both sides agree in tests and demos); else real UTC time.
    clock = state.get("clock") or os.environ.get("DMTOOL_NOW")
    return parse_time(clock) if clock else datetime.now(UTC)


def new_id(state: State, at: datetime) -> str:
    snow = (int(at.timestamp() * 1000) - TWITTER_EPOCH_MS) << 22
    new = max(int(state["last_id"]) + 1, snow)
    state["last_id"] = new
    return str(new)


def conversation_id(a: str, b: str) -> str:
    """1:1 conversation ids are "{smaller}-{larger}" (numerically)."""
    lo, hi = sorted((a, b), key=int)
    return f"{lo}-{hi}"


# --- the file -----------------------------------------------------------------


def empty_state() -> State:
    return {
        "version": 1,
        "me": None,
        "users": {},
        "dm_events": [],
        "posts": [],
        "last_id": 0,
        "next_user_id": 1500000000000000001,
        "requests": [],
        "totals": {"requests": 0, "dm_events": 0, "posts": 0},
        "faults": [],
        "send_timeouts": 0,
        "send_hangs": [],
        "clock": None,
        "enforce_rate_limits": False,
        "rate_windows": {},
        "tokens_issued": 0,
    }


def read_state(path: Path) -> State:
    """The world in the file (an empty one when there is none). A file that is
    not a world dmtool wrote is SandboxDamaged, naming the file and the fault."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return empty_state()
    except UnicodeDecodeError:
        raise SandboxDamaged(path, "it is not UTF-8 text") from None
    if not text.strip():
        return empty_state()
    try:
        state = json.loads(text)
    except ValueError as e:  # JSONDecodeError, or a number too long to read
        raise SandboxDamaged(path, f"it is not JSON ({e})") from None
    if not isinstance(state, dict):
        raise SandboxDamaged(path, f"it holds a JSON {type(state).__name__}, not a world")
    for key, value in empty_state().items():
        state.setdefault(key, value)
    problem = _fault(state)
    if problem:
        raise SandboxDamaged(path, problem)
    return state


class SandboxDamaged(DmtoolError):
    """The sandbox's state file cannot be read as a world (exit 1)."""

    code = "E_SANDBOX_DAMAGED"

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(f"the sandbox file {path} is damaged: {what}",
                         hint="move it aside: the next command starts an empty sandbox world "
                              "(`dmtool demo` rebuilds the demo's)")


# What each part of a world must be: the types empty_state() starts with, and
# the fields every endpoint reads from users, DM events and posts.
_EVENT_FIELDS = ("id", "event_type", "created_at")
_MESSAGE_FIELDS = ("text", "sender_id", "dm_conversation_id")  # a MessageCreate's too
_POST_FIELDS = ("id", "text", "author_id", "created_at")
_USER_FIELDS = ("id", "username")


def _fault(state: State) -> str | None:
    """The first thing in `state` that is not as dmtool writes it, or None."""
    for key, default in empty_state().items():
        value = state[key]
        if default is None:
            if value is not None and not isinstance(value, str):
                return f"{key!r} is {type(value).__name__}, not text"
        elif isinstance(value, bool) != isinstance(default, bool) or \
                not isinstance(value, type(default)):
            return f"{key!r} is {type(value).__name__}, not {type(default).__name__}"
    for uid, user in state["users"].items():
        bad = _missing(user, _USER_FIELDS)
        if bad:
            return f"user {uid!r} {bad}"
    for what, fields in (("dm_events", _EVENT_FIELDS), ("posts", _POST_FIELDS)):
        for n, item in enumerate(state[what]):
            bad = _missing(item, fields)
            if bad is None and not NUMERIC_RE.match(item["id"]):
                bad = f"has the id {item['id']!r}, not a number"
            if bad is None:
                try:
                    parse_time(item["created_at"])
                except ValueError:
                    bad = f"has the time {item['created_at']!r}"
            if bad is None and what == "dm_events" and item["event_type"] == "MessageCreate":
                bad = _missing(item, _MESSAGE_FIELDS)
            if bad:
                return f"{what}[{n}] {bad}"
    if state["me"] is not None and state["me"] not in state["users"]:
        return f"the account {state['me']!r} is not among the users"
    return None


def _missing(item: Any, fields: tuple[str, ...]) -> str | None:
    if not isinstance(item, dict):
        return f"is a {type(item).__name__}, not an object"
    for f in fields:
        if not isinstance(item.get(f), str):
            return f"has no {f!r}" if f not in item else f"has a {f!r} that is not text"
    return None


def write_state(path: Path, state: State) -> None:
    """Replace the state file in one step. A full disk or a folder this user
    may not write is dmtool's error (errors.write_failed), and leaves no
    temporary file behind."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise write_failed(path, e) from None


@contextmanager
def flock(path: Path, exclusive: bool) -> Iterator[None]:
    from dmtool.locks import file_lock

    lock_path = path.with_name(path.name + ".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if exclusive:
            raise write_failed(lock_path, e) from None
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(file_lock(lock_path, shared=not exclusive))
        except OSError as e:
            if exclusive:
                raise write_failed(lock_path, e) from None
            # A reader where it may not write, and no lock file to share: the
            # state is replaced atomically anyway.
        yield


# --- lookups ------------------------------------------------------------------


def user_by_username(state: State, username: str) -> dict[str, Any] | None:
    low = username.lower()
    for user in state["users"].values():
        if str(user["username"]).lower() == low:
            return user  # type: ignore[no-any-return]
    return None


def require_me(state: State) -> str:
    if state.get("me") is None:
        raise ValueError("the sandbox has no account yet: call set_me() first")
    return str(state["me"])


def require_user(state: State, user_id: str) -> dict[str, Any]:
    user = state["users"].get(user_id)
    if user is None:
        raise ValueError(f"no sandbox user {user_id}: add_user() first")
    return user  # type: ignore[no-any-return]

