"""SandboxWorld: set up and inspect a sandbox X (people, DMs, posts, the clock,
faults) and read what was asked of it (the request log and its totals)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dmtool.x.sandbox import oauth
from dmtool.x.sandbox.state import (
    NUMERIC_RE,
    USERNAME_RE,
    State,
    as_datetime,
    conversation_id,
    empty_state,
    flock,
    fmt,
    new_id,
    read_state,
    require_me,
    require_user,
    user_by_username,
    world_now,
    write_state,
)


class SandboxWorld:
    """The sandbox's state file plus helpers to set it up and inspect it.

    Every helper is its own locked read-modify-write; group several in
    `with world.transaction():` to make them one. Readers take a shared lock.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._state: State | None = None
        self._depth = 0

    # state access

    @classmethod
    def create(cls, path: Path | str, *, clock: datetime | str | None = None) -> SandboxWorld:
        """Start (or reset) an empty world at `path`."""
        world = cls(path)
        with world.transaction() as state:
            state.clear()
            state.update(empty_state())
            if clock is not None:
                state["clock"] = fmt(as_datetime(clock, datetime.now(UTC)))
        return world

    @classmethod
    def load(cls, path: Path | str) -> SandboxWorld:
        return cls(path)

    @contextmanager
    def transaction(self) -> Iterator[State]:
        """Lock the file, yield its state for changes, write it back on success."""
        if self._depth:
            assert self._state is not None
            self._depth += 1
            try:
                yield self._state
            finally:
                self._depth -= 1
            return
        with flock(self.path, exclusive=True):
            state = read_state(self.path)
            self._state, self._depth = state, 1
            try:
                yield state
                write_state(self.path, state)
            finally:
                self._state, self._depth = None, 0

    def snapshot(self) -> State:
        """A copy of the current state (read under a shared lock)."""
        if self._state is not None:
            return json.loads(json.dumps(self._state))
        with flock(self.path, exclusive=False):
            return read_state(self.path)

    def save(self) -> None:
        """Make sure the file exists (helpers already save as they go)."""
        with self.transaction():
            pass

    # clock

    def now(self) -> datetime:
        return world_now(self.snapshot())

    def set_clock(self, at: datetime | str | None) -> None:
        """Freeze the sandbox clock at `at` (None: back to real UTC time)."""
        with self.transaction() as state:
            state["clock"] = None if at is None else fmt(as_datetime(at, datetime.now(UTC)))

    def advance_clock(self, seconds: float) -> None:
        with self.transaction() as state:
            state["clock"] = fmt(world_now(state) + timedelta(seconds=seconds))

    # people

    def set_me(self, user_id: str, username: str, name: str | None = None) -> str:
        with self.transaction() as state:
            self._put_user(state, user_id, username, name)
            state["me"] = user_id
        return user_id

    def add_user(
        self,
        username: str,
        name: str | None = None,
        *,
        user_id: str | None = None,
        dms_closed: bool = False,
        follows_me: bool = False,
    ) -> str:
        """Add someone (or update them, matched by handle); returns their user id."""
        with self.transaction() as state:
            existing = user_by_username(state, username)
            if user_id is None:
                if existing is not None:
                    user_id = existing["id"]
                else:
                    user_id = str(state["next_user_id"])
                    state["next_user_id"] += 1
            user = self._put_user(state, user_id, username, name)
            user["dms_closed"] = dms_closed
            user["follows_me"] = follows_me
        return user_id

    @staticmethod
    def _put_user(state: State, user_id: str, username: str, name: str | None) -> dict[str, Any]:
        if not NUMERIC_RE.match(user_id):
            raise ValueError(f"user ids are numeric strings, not {user_id!r}")
        if not USERNAME_RE.match(username):
            raise ValueError(f"not a valid X handle: {username!r}")
        other = user_by_username(state, username)
        if other is not None and other["id"] != user_id:
            raise ValueError(f"@{username} already belongs to user {other['id']}")
        user = state["users"].setdefault(user_id, {"dms_closed": False, "follows_me": False})
        user.update({"id": user_id, "username": username, "name": name or username})
        return user

    def user(self, user_id: str) -> dict[str, Any] | None:
        return self.snapshot()["users"].get(user_id)

    def me(self) -> str:
        me = self.snapshot()["me"]
        if me is None:
            raise ValueError("the sandbox has no account yet: call set_me() first")
        return str(me)

    def forbid_dm_to(self, user_id: str, closed: bool = True) -> None:
        """Sends to this user answer 403, as X does when someone does not accept your DMs."""
        with self.transaction() as state:
            require_user(state, user_id)["dms_closed"] = closed

    # DMs

    def incoming_dm(self, from_user_id: str, text: str, at: datetime | str | None = None) -> str:
        with self.transaction() as state:
            return self._dm(state, sender=from_user_id, other=from_user_id, text=text, at=at)

    def outgoing_dm(self, to_user_id: str, text: str, at: datetime | str | None = None) -> str:
        with self.transaction() as state:
            return self._dm(state, sender=require_me(state), other=to_user_id, text=text, at=at)

    def _dm(self, state: State, *, sender: str, other: str, text: str, at: datetime | str | None) -> str:
        me = require_me(state)
        require_user(state, other)
        when = as_datetime(at, world_now(state))
        event_id = new_id(state, when)
        state["dm_events"].append(
            {
                "id": event_id,
                "event_type": "MessageCreate",
                "text": text,
                "sender_id": sender,
                "dm_conversation_id": conversation_id(me, other),
                "created_at": fmt(when),
            }
        )
        return event_id

    def dms_with(self, user_id: str) -> list[dict[str, Any]]:
        """The stored events of the 1:1 conversation with `user_id`, oldest first."""
        state = self.snapshot()
        conv = conversation_id(require_me(state), user_id)
        events = [e for e in state["dm_events"] if e.get("dm_conversation_id") == conv]
        return sorted(events, key=lambda e: int(e["id"]))

    # posts

    def add_post(
        self,
        author_id: str,
        text: str,
        at: datetime | str | None = None,
        in_reply_to_user_id: str | None = None,
        reply_to_post_id: str | None = None,
    ) -> str:
        """A public post. A mention is someone else's post containing @you; your
        reply is your post with in_reply_to_user_id (and reply_to_post_id)."""
        with self.transaction() as state:
            require_user(state, author_id)
            when = as_datetime(at, world_now(state))
            post_id = new_id(state, when)
            post: dict[str, Any] = {
                "id": post_id,
                "text": text,
                "author_id": author_id,
                "created_at": fmt(when),
                "conversation_id": post_id,
            }
            if reply_to_post_id is not None:
                parent = next((p for p in state["posts"] if p["id"] == reply_to_post_id), None)
                if parent is None:
                    raise ValueError(f"no post {reply_to_post_id} to reply to")
                post["conversation_id"] = parent["conversation_id"]
                post["referenced_tweets"] = [{"type": "replied_to", "id": reply_to_post_id}]
                if in_reply_to_user_id is None:
                    in_reply_to_user_id = parent["author_id"]
            if in_reply_to_user_id is not None:
                post["in_reply_to_user_id"] = in_reply_to_user_id
            state["posts"].append(post)
            return post_id

    def posts(self) -> list[dict[str, Any]]:
        return sorted(self.snapshot()["posts"], key=lambda p: int(p["id"]))

    # faults

    def fail_next(
        self,
        status: int,
        count: int = 1,
        method: str | None = None,
        path_contains: str | None = None,
        reset_in: int = 900,
        *,
        usage_capped: bool = False,
        detail: str | None = None,
    ) -> None:
        """The next `count` matching requests answer `status` with X's problem body.

        429 carries x-rate-limit-reset = now + reset_in (or, with usage_capped,
        the usage-cap problem). The token endpoint is only matched when
        path_contains names it.
        """
        with self.transaction() as state:
            state["faults"].append(
                {
                    "status": status,
                    "count": count,
                    "method": method.upper() if method else None,
                    "path_contains": path_contains,
                    "reset_in": reset_in,
                    "usage_capped": usage_capped,
                    "detail": detail,
                }
            )

    def timeout_after_send(self, count: int = 1) -> None:
        """The next `count` sends record the DM, then raise ReadTimeout (no answer reaches us)."""
        with self.transaction() as state:
            state["send_timeouts"] += count

    def hang_after_send(self, seconds: float, count: int = 1) -> None:
        """The next `count` sends record the DM, then sleep `seconds` before answering."""
        with self.transaction() as state:
            state["send_hangs"].extend([seconds] * count)

    def enforce_rate_limits(self, on: bool = True) -> None:
        """Answer 429 once a 15-minute window's limit is used up (off by default)."""
        with self.transaction() as state:
            state["enforce_rate_limits"] = on

    def clear_faults(self) -> None:
        with self.transaction() as state:
            state["faults"] = []
            state["send_timeouts"] = 0
            state["send_hangs"] = []

    # OAuth 2.0 (the authorize page and the token endpoint)

    def register_app(self, client_id: str, redirect_uris: tuple[str, ...] | list[str] = (
            "http://127.0.0.1:8765/callback",), client_secret: str | None = None) -> None:
        """An X app: its client id, its exact callback addresses, and a secret if
        it is a confidential client (then the token endpoint wants HTTP Basic)."""
        with self.transaction() as state:
            oauth.oauth_state(state)["apps"][client_id] = {
                "redirect_uris": list(redirect_uris), "client_secret": client_secret}

    def set_oauth_decision(self, decision: str) -> None:
        """What the user answers on the authorize page: "approve" or "deny"."""
        if decision not in ("approve", "deny"):
            raise ValueError("the decision is approve or deny")
        with self.transaction() as state:
            oauth.oauth_state(state)["decision"] = decision

    def issue_tokens(self, client_id: str, scope: str = " ".join(oauth.DEFAULT_SCOPES)) -> dict[str, Any]:
        """A token pair as a finished login gets it (the app is registered as a
        public client if it is not yet): for tests that start logged in."""
        with self.transaction() as state:
            apps = oauth.oauth_state(state)["apps"]
            apps.setdefault(client_id, {"redirect_uris": [], "client_secret": None})
            return oauth.issue(state, client_id, scope, world_now(state))

    def oauth(self) -> dict[str, Any]:
        """The OAuth side: apps, codes, live and spent tokens, and grants served per type."""
        state = self.snapshot()
        return oauth.oauth_state(state)

    def live_refresh_tokens(self) -> list[str]:
        return [t for t, held in self.oauth()["refresh_tokens"].items() if not held["used"]]

    # request log

    def requests_log(self) -> list[dict[str, Any]]:
        """The requests served (the latest REQUEST_LOG_KEEP): method, path, query, status,
        and how many DM events and posts each returned."""
        return list(self.snapshot()["requests"])

    def reset_requests_log(self) -> None:
        with self.transaction() as state:
            state["requests"] = []
            state["totals"] = {"requests": 0, "dm_events": 0, "posts": 0}

    def requests_count(self) -> int:
        """Requests served since the log was reset (all of them, not just those kept)."""
        return int(self.snapshot()["totals"]["requests"])

    def dm_events_read(self) -> int:
        """DM events returned since the log was reset: what X bills as DM event reads."""
        return int(self.snapshot()["totals"]["dm_events"])

    def posts_read(self) -> int:
        """Posts (mentions, own posts) returned since the log was reset."""
        return int(self.snapshot()["totals"]["posts"])

