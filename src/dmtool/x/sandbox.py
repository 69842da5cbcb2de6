"""A fake X at the HTTP level, for `dmtool demo`, tests and benchmarks.

`SandboxAdapter` is a requests transport adapter mounted on tweepy's own
session, so the real tweepy client builds the requests and parses the answers:
only the network is replaced. It answers the endpoints dmtool uses with the
shapes, status codes, headers and RFC 7807 problems X sends (see
shared/spec/x-api.md; checked against X's OpenAPI document in the tests).

Its state is one JSON file. Every request and every `SandboxWorld` helper
locks the file (fcntl.flock on a sibling `.lock` file), re-reads it, changes it
and writes it back atomically, so several processes (a cron sync, a send, the
test itself) can share one world.

Order and ids: ids come from a monotonically increasing snowflake-like counter,
and lists are served newest first by id, as X does. Create events in
chronological order (as `seed_demo_world` does) so ids and `created_at` agree.
Like X, the DM endpoints only return events from the last 30 days.

Time is real UTC now, unless the world has a fixed clock (`set_clock`) or
DMTOOL_NOW is set.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import requests
import requests.adapters
from requests.structures import CaseInsensitiveDict

State = dict[str, Any]

TWITTER_EPOCH_MS = 1288834974657  # snowflake epoch, so ids look like X's
DM_WINDOW_DAYS = 30
MENTIONS_CAP = 800
TWEETS_CAP = 3200
PROBLEMS = "https://api.twitter.com/2/problems/"
REQUEST_LOG_KEEP = 2000  # entries kept in the file; totals count everything


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# The values X's OpenAPI document allows; anything else is a 400, as on X.
DM_EVENT_FIELDS = _names(
    "attachments created_at dm_conversation_id entities event_type id participant_ids "
    "referenced_tweets sender_id text"
)
DM_EXPANSIONS = _names("attachments.media_keys participant_ids referenced_tweets.id sender_id")
DM_EVENT_TYPES = ("MessageCreate", "ParticipantsJoin", "ParticipantsLeave")
TWEET_FIELDS = _names(
    "article attachments author_id card_uri community_id context_annotations conversation_id "
    "created_at display_text_range edit_controls edit_history_tweet_ids entities geo id "
    "in_reply_to_user_id lang media_metadata non_public_metrics note_tweet organic_metrics "
    "possibly_sensitive promoted_metrics public_metrics referenced_tweets reply_settings scopes "
    "source suggested_source_links suggested_source_links_with_counts text withheld"
)
TWEET_EXPANSIONS = _names(
    "article.cover_media article.media_entities attachments.media_keys "
    "attachments.media_source_tweet attachments.poll_ids author_id edit_history_tweet_ids "
    "entities.mentions.username geo.place_id in_reply_to_user_id "
    "entities.note.mentions.username referenced_tweets.id "
    "referenced_tweets.id.attachments.media_keys referenced_tweets.id.author_id"
)
USER_FIELDS = _names(
    "affiliation confirmed_email connection_status created_at description entities id "
    "is_identity_verified location most_recent_tweet_id name parody pinned_tweet_id "
    "profile_banner_url profile_image_url protected public_metrics receives_your_dm "
    "subscription subscription_type url username verified verified_followers_count "
    "verified_type withheld"
)
USER_EXPANSIONS = _names("affiliation.user_id most_recent_tweet_id pinned_tweet_id")
STORED_POST_FIELDS = (
    "author_id",
    "created_at",
    "in_reply_to_user_id",
    "conversation_id",
    "referenced_tweets",
)

# Per-user limits per 15-minute window (X's published numbers, roughly). Only
# reported in headers unless the world enables enforcement.
RATE_LIMITS = {
    "users_me": 75,
    "user_by_username": 900,
    "users": 900,
    "dm_events": 15,
    "conversation_events": 15,
    "send": 15,
    "mentions": 180,
    "tweets": 900,
}

REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

USERNAME_RE = re.compile(r"^[A-Za-z0-9_]{1,15}$")
NUMERIC_RE = re.compile(r"^[0-9]{1,19}$")


# --- time and ids -------------------------------------------------------------


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _fmt(dt: datetime) -> str:
    # X's created_at always carries milliseconds; tweepy's parser needs them.
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + ".000Z"


def _as_datetime(at: datetime | str | None, now: datetime) -> datetime:
    if at is None:
        return now
    if isinstance(at, str):
        return _parse_time(at)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def conversation_id(a: str, b: str) -> str:
    """1:1 conversation ids are "{smaller}-{larger}" (numerically)."""
    lo, hi = sorted((a, b), key=int)
    return f"{lo}-{hi}"


_B32 = "0123456789ABCDEFGHIJKLMNOPQRSTUV"


def _dm_token(last_id: str) -> str:
    # Opaque base32 token like X's ("18LAA5G1SL0NR5OG0G00ZZZZ"), at least 16 chars.
    n, out = int(last_id), ""
    while n:
        n, r = divmod(n, 32)
        out = _B32[r] + out
    return out.rjust(16, "0") + "ZZZZ"


def _dm_token_id(token: str) -> int | None:
    body = token.rstrip("Z")
    if len(token) < 16 or not body or any(c not in _B32 for c in body):
        return None
    n = 0
    for c in body:
        n = n * 32 + _B32.index(c)
    return n


def _post_token(last_id: str) -> str:
    n, out = int(last_id), ""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out.rjust(24, "0")


def _post_token_id(token: str) -> int | None:
    try:
        return int(token, 36) if token else None
    except ValueError:
        return None


# --- state file --------------------------------------------------------------


def _empty_state() -> State:
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


def _read(path: Path) -> State:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _empty_state()
    if not text.strip():
        return _empty_state()
    state = json.loads(text)
    for key, value in _empty_state().items():
        state.setdefault(key, value)
    return state


def _write(path: Path, state: State) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


@contextmanager
def _flock(path: Path, exclusive: bool) -> Iterator[None]:
    lock_path = path.with_name(path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _now(state: State) -> datetime:
    # The world's fixed clock first; else DMTOOL_NOW, which pins dmtool's own
    # clock (so both sides agree in tests and demos); else real UTC time.
    clock = state.get("clock") or os.environ.get("DMTOOL_NOW")
    return _parse_time(clock) if clock else datetime.now(UTC)


def _new_id(state: State, at: datetime) -> str:
    snow = (int(at.timestamp() * 1000) - TWITTER_EPOCH_MS) << 22
    new = max(int(state["last_id"]) + 1, snow)
    state["last_id"] = new
    return str(new)


# --- the world: state plus helpers ----------------------------------------------


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
            state.update(_empty_state())
            if clock is not None:
                state["clock"] = _fmt(_as_datetime(clock, datetime.now(UTC)))
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
        with _flock(self.path, exclusive=True):
            state = _read(self.path)
            self._state, self._depth = state, 1
            try:
                yield state
                _write(self.path, state)
            finally:
                self._state, self._depth = None, 0

    def snapshot(self) -> State:
        """A copy of the current state (read under a shared lock)."""
        if self._state is not None:
            return json.loads(json.dumps(self._state))
        with _flock(self.path, exclusive=False):
            return _read(self.path)

    def save(self) -> None:
        """Make sure the file exists (helpers already save as they go)."""
        with self.transaction():
            pass

    # clock

    def now(self) -> datetime:
        return _now(self.snapshot())

    def set_clock(self, at: datetime | str | None) -> None:
        """Freeze the sandbox clock at `at` (None: back to real UTC time)."""
        with self.transaction() as state:
            state["clock"] = None if at is None else _fmt(_as_datetime(at, datetime.now(UTC)))

    def advance_clock(self, seconds: float) -> None:
        with self.transaction() as state:
            state["clock"] = _fmt(_now(state) + timedelta(seconds=seconds))

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
            existing = _user_by_username(state, username)
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
        other = _user_by_username(state, username)
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
            _require_user(state, user_id)["dms_closed"] = closed

    # DMs

    def incoming_dm(self, from_user_id: str, text: str, at: datetime | str | None = None) -> str:
        with self.transaction() as state:
            return self._dm(state, sender=from_user_id, other=from_user_id, text=text, at=at)

    def outgoing_dm(self, to_user_id: str, text: str, at: datetime | str | None = None) -> str:
        with self.transaction() as state:
            return self._dm(state, sender=_require_me(state), other=to_user_id, text=text, at=at)

    def _dm(self, state: State, *, sender: str, other: str, text: str, at: datetime | str | None) -> str:
        me = _require_me(state)
        _require_user(state, other)
        when = _as_datetime(at, _now(state))
        event_id = _new_id(state, when)
        state["dm_events"].append(
            {
                "id": event_id,
                "event_type": "MessageCreate",
                "text": text,
                "sender_id": sender,
                "dm_conversation_id": conversation_id(me, other),
                "created_at": _fmt(when),
            }
        )
        return event_id

    def dms_with(self, user_id: str) -> list[dict[str, Any]]:
        """The stored events of the 1:1 conversation with `user_id`, oldest first."""
        state = self.snapshot()
        conv = conversation_id(_require_me(state), user_id)
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
            _require_user(state, author_id)
            when = _as_datetime(at, _now(state))
            post_id = _new_id(state, when)
            post: dict[str, Any] = {
                "id": post_id,
                "text": text,
                "author_id": author_id,
                "created_at": _fmt(when),
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


def _user_by_username(state: State, username: str) -> dict[str, Any] | None:
    low = username.lower()
    for user in state["users"].values():
        if str(user["username"]).lower() == low:
            return user  # type: ignore[no-any-return]
    return None


def _require_me(state: State) -> str:
    if state.get("me") is None:
        raise ValueError("the sandbox has no account yet: call set_me() first")
    return str(state["me"])


def _require_user(state: State, user_id: str) -> dict[str, Any]:
    user = state["users"].get(user_id)
    if user is None:
        raise ValueError(f"no sandbox user {user_id}: add_user() first")
    return user  # type: ignore[no-any-return]


# --- HTTP ------------------------------------------------------------------------


class _Reply:
    """One answer: status, JSON body, extra headers, what it cost, and what to do after."""

    def __init__(
        self,
        status: int,
        body: dict[str, Any] | None,
        *,
        problem: bool = False,
        headers: dict[str, str] | None = None,
        dm_events: int = 0,
        posts: int = 0,
        after: tuple[str, float] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.problem = problem
        self.headers = headers or {}
        self.dm_events = dm_events
        self.posts = posts
        self.after = after


class _BadRequest(Exception):
    def __init__(self, parameter: str, value: str, message: str) -> None:
        super().__init__(message)
        self.parameter, self.value, self.message = parameter, value, message


def _problem(status: int, title: str, detail: str, type_: str = "about:blank", **extra: Any) -> _Reply:
    body: dict[str, Any] = {"title": title, "type": type_, "status": status, "detail": detail}
    body.update(extra)
    return _Reply(status, body, problem=True)


def _invalid(exc: _BadRequest) -> _Reply:
    return _Reply(
        400,
        {
            "errors": [{"parameters": {exc.parameter: [exc.value]}, "message": exc.message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": PROBLEMS + "invalid-request",
        },
        problem=True,
    )


def _fault_reply(fault: dict[str, Any], now: datetime) -> _Reply:
    status = int(fault["status"])
    detail = fault.get("detail")
    if status == 429 and fault.get("usage_capped"):
        # Real usage-cap answers carry no `status` member.
        return _Reply(
            429,
            {
                "title": "UsageCapExceeded",
                "type": PROBLEMS + "usage-capped",
                "period": "Monthly",
                "scope": "Product",
                "detail": detail or "Usage cap exceeded: Monthly product cap",
            },
            problem=True,
        )
    if status == 429:
        reply = _problem(429, "Too Many Requests", detail or "Too Many Requests")
        reply.headers["x-rate-limit-remaining"] = "0"
        reply.headers["x-rate-limit-reset"] = str(int(now.timestamp()) + int(fault["reset_in"]))
        return reply
    if status == 402:
        return _Reply(
            402,
            {
                "title": "CreditsDepleted",
                "type": PROBLEMS + "credits",
                "detail": detail
                or ("Your enrolled account does not have any credits to fulfill this request."),
            },
            problem=True,
        )
    titles = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found Error", 400: "Invalid Request"}
    title = titles.get(status, REASONS.get(status, "Error"))
    if status == 403 and detail is None:
        detail = "You are not permitted to perform this action."
    return _problem(status, title, detail or title)


def _csv(query: dict[str, str], name: str, allowed: frozenset[str]) -> list[str]:
    raw = query.get(name)
    if raw is None:
        return []
    values = [v for v in raw.split(",") if v]
    for value in values:
        if value not in allowed:
            raise _BadRequest(
                name,
                raw,
                f"The `{name}` query parameter value [{value}] is not one of [{','.join(sorted(allowed))}]",
            )
    return values


def _int_param(query: dict[str, str], name: str, lo: int, hi: int, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _BadRequest(
            name, raw, f"The `{name}` query parameter value [{raw}] is not a valid number"
        ) from None
    if not lo <= value <= hi:
        raise _BadRequest(
            name, raw, f"The `{name}` query parameter value [{raw}] is not between {lo} and {hi}"
        )
    return value


def _check_params(query: dict[str, str], allowed: set[str]) -> None:
    for name in query:
        if name not in allowed:
            raise _BadRequest(
                name,
                query[name],
                f"The query parameter [{name}] is not one of [{','.join(sorted(allowed))}]",
            )


def _id_param(name: str, value: str) -> str:
    if not NUMERIC_RE.match(value):
        raise _BadRequest(
            name,
            value,
            f"The `{name}` query parameter value [{value}] does not match ^[0-9]{{1,19}}$",
        )
    return value


def _after_token(items: list[dict[str, Any]], query: dict[str, str],
                 decode: Callable[[str], int | None]) -> list[dict[str, Any]]:
    """Items (newest first) past the query's pagination_token; X's 400 for a bad one."""
    token = query.get("pagination_token")
    if token is None:
        return items
    before = decode(token)
    if before is None:
        raise _BadRequest("pagination_token", token,
                          f"The `pagination_token` query parameter value [{token}] is not valid")
    return [i for i in items if int(i["id"]) < before]


def _user_json(user: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    out = {"id": user["id"], "name": user["name"], "username": user["username"]}
    if "receives_your_dm" in fields:
        out["receives_your_dm"] = not user.get("dms_closed", False)
    return out


def _not_found_user(parameter: str, value: str) -> dict[str, Any]:
    what = {"username": "username", "ids": "ids", "id": "id"}[parameter]
    return {
        "value": value,
        "detail": f"Could not find user with {what}: [{value}].",
        "title": "Not Found Error",
        "resource_type": "user",
        "parameter": parameter,
        "resource_id": value,
        "type": PROBLEMS + "resource-not-found",
    }


class _Server:
    """Routes one request against a locked state."""

    ROUTES: list[tuple[str, re.Pattern[str], str]] = [
        ("GET", re.compile(r"^/2/users/me$"), "users_me"),
        ("GET", re.compile(r"^/2/users/by/username/([^/]+)$"), "user_by_username"),
        ("GET", re.compile(r"^/2/users$"), "users"),
        ("GET", re.compile(r"^/2/dm_events$"), "dm_events"),
        ("GET", re.compile(r"^/2/dm_conversations/with/([^/]+)/dm_events$"), "conversation_events"),
        ("POST", re.compile(r"^/2/dm_conversations/with/([^/]+)/messages$"), "send"),
        ("GET", re.compile(r"^/2/users/([^/]+)/mentions$"), "mentions"),
        ("GET", re.compile(r"^/2/users/([^/]+)/tweets$"), "tweets"),
    ]

    def __init__(self, state: State) -> None:
        self.state = state
        self.now = _now(state)

    def handle(
        self, method: str, path: str, query: dict[str, str], body: bytes, authorization: str | None
    ) -> _Reply:
        if method == "POST" and path == "/2/oauth2/token":
            fault = self._take_fault(method, path, token_endpoint=True)
            return _fault_reply(fault, self.now) if fault else self._token(body)
        if not authorization:
            return _problem(401, "Unauthorized", "Unauthorized")
        route = self._route(method, path)
        fault = self._take_fault(method, path, token_endpoint=False)
        if fault is not None:
            reply = _fault_reply(fault, self.now)
            if route is not None:
                # X sends its rate headers on errors too; a 429 fault sets its own reset.
                reply.headers = {**self._rate_headers(route[0]), **reply.headers}
            return reply
        if route is None:
            return _problem(404, "Not Found Error", "Sorry, that page does not exist")
        name, args = route
        limited = self._rate(name)
        if limited is not None:
            return limited
        try:
            reply = getattr(self, "_" + name)(query, body, *args)
        except _BadRequest as exc:
            reply = _invalid(exc)
        reply.headers.update(self._rate_headers(name))
        return reply

    def _route(self, method: str, path: str) -> tuple[str, list[str]] | None:
        for route_method, pattern, name in self.ROUTES:
            match = pattern.match(path)
            if match is not None and route_method == method:
                return name, [unquote(g) for g in match.groups()]
        return None

    # faults and limits

    def _take_fault(self, method: str, path: str, *, token_endpoint: bool) -> dict[str, Any] | None:
        for fault in self.state["faults"]:
            if fault["method"] and fault["method"] != method:
                continue
            contains = fault.get("path_contains")
            if contains and contains not in path:
                continue
            if token_endpoint and not contains:
                continue
            fault["count"] -= 1
            if fault["count"] <= 0:
                self.state["faults"].remove(fault)
            return dict(fault)
        return None

    def _window(self, key: str) -> dict[str, Any]:
        windows = self.state["rate_windows"]
        now = int(self.now.timestamp())
        window = windows.get(key)
        if window is None or window["reset"] <= now:
            window = {"reset": now + 900, "used": 0}
            windows[key] = window
        return window  # type: ignore[no-any-return]

    def _rate(self, key: str) -> _Reply | None:
        window = self._window(key)
        if self.state.get("enforce_rate_limits") and window["used"] >= RATE_LIMITS[key]:
            reply = _problem(429, "Too Many Requests", "Too Many Requests")
            reply.headers.update(self._rate_headers(key))
            return reply
        window["used"] += 1
        return None

    def _rate_headers(self, key: str) -> dict[str, str]:
        window = self._window(key)
        limit = RATE_LIMITS[key]
        return {
            "x-rate-limit-limit": str(limit),
            "x-rate-limit-remaining": str(max(limit - window["used"], 0)),
            "x-rate-limit-reset": str(window["reset"]),
        }

    # users

    def _me_user(self) -> dict[str, Any] | None:
        me = self.state.get("me")
        return self.state["users"].get(me) if me else None

    def _users_me(self, query: dict[str, str], body: bytes) -> _Reply:
        _check_params(query, {"user.fields", "expansions", "tweet.fields"})
        fields = _csv(query, "user.fields", USER_FIELDS)
        _csv(query, "expansions", USER_EXPANSIONS)
        _csv(query, "tweet.fields", TWEET_FIELDS)
        me = self._me_user()
        if me is None:
            return _problem(401, "Unauthorized", "Unauthorized")
        return _Reply(200, {"data": _user_json(me, fields)})

    def _user_by_username(self, query: dict[str, str], body: bytes, username: str) -> _Reply:
        _check_params(query, {"user.fields", "expansions", "tweet.fields"})
        fields = _csv(query, "user.fields", USER_FIELDS)
        _csv(query, "expansions", USER_EXPANSIONS)
        _csv(query, "tweet.fields", TWEET_FIELDS)
        if not USERNAME_RE.match(username):
            raise _BadRequest(
                "username",
                username,
                f"The `username` query parameter value [{username}] does not match ^[A-Za-z0-9_]{{1,15}}$",
            )
        user = _user_by_username(self.state, username)
        if user is None:
            # X answers a missing user with 200 and only `errors`.
            return _Reply(200, {"errors": [_not_found_user("username", username)]})
        return _Reply(200, {"data": _user_json(user, fields)})

    def _users(self, query: dict[str, str], body: bytes) -> _Reply:
        _check_params(query, {"ids", "user.fields", "expansions", "tweet.fields"})
        fields = _csv(query, "user.fields", USER_FIELDS)
        _csv(query, "expansions", USER_EXPANSIONS)
        _csv(query, "tweet.fields", TWEET_FIELDS)
        raw = query.get("ids")
        if not raw:
            raise _BadRequest("ids", raw or "", "The `ids` query parameter can not be empty")
        ids = raw.split(",")
        if len(ids) > 100:
            raise _BadRequest(
                "ids",
                raw,
                "The number of values in the `ids` query parameter "
                f"list [{len(ids)}] is not between 1 and 100",
            )
        data, errors = [], []
        for user_id in ids:
            _id_param("ids", user_id)
            user = self.state["users"].get(user_id)
            if user is None:
                errors.append(_not_found_user("ids", user_id))
            else:
                data.append(_user_json(user, fields))
        out: dict[str, Any] = {}
        if data:
            out["data"] = data
        if errors:
            out["errors"] = errors
        return _Reply(200, out)

    # DMs

    DM_PARAMS = {
        "dm_event.fields",
        "event_types",
        "expansions",
        "max_results",
        "media.fields",
        "pagination_token",
        "tweet.fields",
        "user.fields",
    }

    def _dm_page(self, query: dict[str, str], events: list[dict[str, Any]]) -> _Reply:
        _check_params(query, self.DM_PARAMS)
        fields = set(_csv(query, "dm_event.fields", DM_EVENT_FIELDS))
        expansions = _csv(query, "expansions", DM_EXPANSIONS)
        user_fields = _csv(query, "user.fields", USER_FIELDS)
        _csv(query, "tweet.fields", TWEET_FIELDS)
        types = _csv(query, "event_types", frozenset(DM_EVENT_TYPES)) or list(DM_EVENT_TYPES)
        max_results = _int_param(query, "max_results", 1, 100, 100)

        oldest = self.now - timedelta(days=DM_WINDOW_DAYS)
        visible = [e for e in events if e["event_type"] in types and _parse_time(e["created_at"]) >= oldest]
        visible.sort(key=lambda e: int(e["id"]), reverse=True)
        visible = _after_token(visible, query, _dm_token_id)
        page = visible[:max_results]
        if not page:
            return _Reply(200, {"meta": {"result_count": 0}})

        # Like X: default fields are id, event_type and (for messages) text.
        keep = fields | {"id", "event_type", "text"}
        data = [{k: v for k, v in e.items() if k in keep} for e in page]
        out: dict[str, Any] = {"data": data}
        user_ids: list[str] = []
        for e in page:
            if "sender_id" in expansions and e.get("sender_id"):
                user_ids.append(e["sender_id"])
            if "participant_ids" in expansions:
                user_ids.extend(e.get("participant_ids", []))
        users = self._users_for(user_ids, user_fields)
        if users:
            out["includes"] = {"users": users}
        meta: dict[str, Any] = {"result_count": len(page)}
        if len(page) == max_results:
            # X cannot tell a full last page from a middle one: it hands out a
            # token whose page may be empty. dmtool must cope, so we do the same.
            meta["next_token"] = _dm_token(page[-1]["id"])
        if query.get("pagination_token") is not None:
            meta["previous_token"] = _dm_token(page[0]["id"])
        out["meta"] = meta
        return _Reply(200, out, dm_events=len(page))

    def _users_for(self, ids: list[str], fields: list[str]) -> list[dict[str, Any]]:
        seen: list[str] = []
        for user_id in ids:
            if user_id not in seen and user_id in self.state["users"]:
                seen.append(user_id)
        return [_user_json(self.state["users"][u], fields) for u in seen]

    def _dm_events(self, query: dict[str, str], body: bytes) -> _Reply:
        return self._dm_page(query, self.state["dm_events"])

    def _conversation_events(self, query: dict[str, str], body: bytes, participant_id: str) -> _Reply:
        _id_param("participant_id", participant_id)
        me = _require_me(self.state)
        conv = conversation_id(me, participant_id)
        return self._dm_page(
            query, [e for e in self.state["dm_events"] if e.get("dm_conversation_id") == conv]
        )

    def _send(self, query: dict[str, str], body: bytes, participant_id: str) -> _Reply:
        _check_params(query, set())
        _id_param("participant_id", participant_id)
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return _invalid(_BadRequest("body", "", "The request body is not valid JSON"))
        text = payload.get("text") if isinstance(payload, dict) else None
        if not isinstance(text, str) or not text.strip():
            return _invalid(_BadRequest("text", "", "The `text` field is required"))
        if len(text) > 10000:
            return _invalid(_BadRequest("text", "", "The `text` field is longer than 10000"))
        me = _require_me(self.state)
        if participant_id == me:
            return _invalid(
                _BadRequest("participant_id", participant_id, "You cannot send a Direct Message to yourself")
            )
        user = self.state["users"].get(participant_id)
        if user is None:
            return _invalid(
                _BadRequest("participant_id", participant_id, f"[{participant_id}] is not a valid user")
            )
        if user.get("dms_closed"):
            return _problem(403, "Forbidden", "You are not permitted to perform this action.")
        event_id = _new_id(self.state, self.now)
        conv = conversation_id(me, participant_id)
        self.state["dm_events"].append(
            {
                "id": event_id,
                "event_type": "MessageCreate",
                "text": text,
                "sender_id": me,
                "dm_conversation_id": conv,
                "created_at": _fmt(self.now),
            }
        )
        after: tuple[str, float] | None = None
        if self.state["send_timeouts"] > 0:
            self.state["send_timeouts"] -= 1
            after = ("timeout", 0.0)
        elif self.state["send_hangs"]:
            after = ("hang", float(self.state["send_hangs"].pop(0)))
        return _Reply(201, {"data": {"dm_conversation_id": conv, "dm_event_id": event_id}}, after=after)

    # posts

    POST_PARAMS = {
        "since_id",
        "until_id",
        "max_results",
        "pagination_token",
        "start_time",
        "end_time",
        "tweet.fields",
        "expansions",
        "media.fields",
        "poll.fields",
        "user.fields",
        "place.fields",
    }

    def _post_page(
        self,
        query: dict[str, str],
        posts: list[dict[str, Any]],
        cap: int,
        extra: frozenset[str] = frozenset(),
    ) -> _Reply:
        _check_params(query, self.POST_PARAMS | extra)
        fields = set(_csv(query, "tweet.fields", TWEET_FIELDS))
        expansions = _csv(query, "expansions", TWEET_EXPANSIONS)
        user_fields = _csv(query, "user.fields", USER_FIELDS)
        max_results = _int_param(query, "max_results", 5, 100, 10)
        posts = sorted(posts, key=lambda p: int(p["id"]), reverse=True)[:cap]
        if "since_id" in query:
            since = int(_id_param("since_id", query["since_id"]))
            posts = [p for p in posts if int(p["id"]) > since]
        if "until_id" in query:
            until = int(_id_param("until_id", query["until_id"]))
            posts = [p for p in posts if int(p["id"]) < until]
        posts = _after_token(posts, query, _post_token_id)
        page = posts[:max_results]
        if not page:
            return _Reply(200, {"meta": {"result_count": 0}})
        data = []
        for p in page:
            item = {"id": p["id"], "text": p["text"], "edit_history_tweet_ids": [p["id"]]}
            item.update({k: p[k] for k in STORED_POST_FIELDS if k in fields and k in p})
            data.append(item)
        out: dict[str, Any] = {"data": data}
        user_ids: list[str] = []
        for p in page:
            if "author_id" in expansions:
                user_ids.append(p["author_id"])
            if "in_reply_to_user_id" in expansions and p.get("in_reply_to_user_id"):
                user_ids.append(p["in_reply_to_user_id"])
        users = self._users_for(user_ids, user_fields)
        if users:
            out["includes"] = {"users": users}
        meta: dict[str, Any] = {
            "result_count": len(page),
            "newest_id": page[0]["id"],
            "oldest_id": page[-1]["id"],
        }
        if len(page) == max_results and len(posts) > max_results:
            meta["next_token"] = _post_token(page[-1]["id"])
        out["meta"] = meta
        return _Reply(200, out, posts=len(page))

    def _timeline_user(self, user_id: str) -> dict[str, Any] | None:
        _id_param("id", user_id)
        return self.state["users"].get(user_id)  # type: ignore[no-any-return]

    def _mentions(self, query: dict[str, str], body: bytes, user_id: str) -> _Reply:
        user = self._timeline_user(user_id)
        if user is None:
            return _Reply(200, {"errors": [_not_found_user("id", user_id)]})
        handle = re.compile(
            rf"(?<![A-Za-z0-9_])@{re.escape(user['username'])}(?![A-Za-z0-9_])", re.IGNORECASE
        )
        posts = [
            p
            for p in self.state["posts"]
            if p["author_id"] != user_id
            and (handle.search(p["text"]) or p.get("in_reply_to_user_id") == user_id)
        ]
        return self._post_page(query, posts, MENTIONS_CAP)

    def _tweets(self, query: dict[str, str], body: bytes, user_id: str) -> _Reply:
        user = self._timeline_user(user_id)
        if user is None:
            return _Reply(200, {"errors": [_not_found_user("id", user_id)]})
        exclude = _csv(query, "exclude", frozenset({"replies", "retweets"}))
        posts = [
            p
            for p in self.state["posts"]
            if p["author_id"] == user_id and not ("replies" in exclude and p.get("in_reply_to_user_id"))
        ]
        return self._post_page(query, posts, TWEETS_CAP, frozenset({"exclude"}))

    # OAuth 2.0 token endpoint (refresh only), so the client's refresh path runs offline

    def _token(self, body: bytes) -> _Reply:
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "refresh_token" or not form.get("refresh_token"):
            return _Reply(
                400,
                {
                    "error": "invalid_request",
                    "error_description": "Value passed for the token was invalid.",
                },
            )
        self.state["tokens_issued"] += 1
        n = self.state["tokens_issued"]
        return _Reply(
            200,
            {
                "token_type": "bearer",
                "expires_in": 7200,
                "access_token": f"sandbox-access-{n}",
                "scope": "dm.read dm.write tweet.read users.read offline.access",
                "refresh_token": f"sandbox-refresh-{n}",
            },
        )


class SandboxAdapter(requests.adapters.BaseAdapter):
    """A requests transport that answers X's endpoints from a SandboxWorld file."""

    def __init__(self, state_path: Path | str, *, sleep: Any = time.sleep) -> None:
        super().__init__()
        self.world = SandboxWorld(state_path)
        self._sleep = sleep

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        url = urlsplit(request.url or "")
        method = (request.method or "GET").upper()
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        raw_body = request.body
        if isinstance(raw_body, str):
            body = raw_body.encode("utf-8")
        else:
            body = raw_body if isinstance(raw_body, bytes) else b""
        auth_header = request.headers.get("Authorization")
        authorization = auth_header.decode() if isinstance(auth_header, bytes) else auth_header

        with self.world.transaction() as state:
            server = _Server(state)
            reply = server.handle(method, url.path, query, body, authorization)
            state["requests"].append(
                {
                    "method": method,
                    "path": url.path,
                    # the token endpoint's body is never logged; queries hold no secrets
                    "query": query,
                    "status": reply.status,
                    "dm_events": reply.dm_events,
                    "posts": reply.posts,
                    "at": _fmt(server.now),
                }
            )
            del state["requests"][:-REQUEST_LOG_KEEP]
            totals = state["totals"]
            totals["requests"] += 1
            totals["dm_events"] += reply.dm_events
            totals["posts"] += reply.posts
        # The lock is released before any timeout or hang, so the DM is on disk
        # even if the process is killed while "waiting for X".
        if reply.after is not None:
            kind, seconds = reply.after
            if kind == "timeout":
                raise requests.exceptions.ReadTimeout(
                    "sandbox: the DM was recorded but no answer came back", request=request
                )
            self._sleep(seconds)
        return self._response(request, reply)

    @staticmethod
    def _response(request: requests.PreparedRequest, reply: _Reply) -> requests.Response:
        content = b"" if reply.body is None else json.dumps(reply.body).encode("utf-8")
        json_type = "application/json; charset=utf-8"
        content_type = "application/problem+json" if reply.problem else json_type
        headers = CaseInsensitiveDict(
            {
                "content-type": content_type,
                "content-length": str(len(content)),
                "api-version": "2.159",
                "cache-control": "no-cache, no-store, max-age=0",
            }
        )
        headers.update(reply.headers)
        response = requests.Response()
        response.status_code = reply.status
        response.reason = REASONS.get(reply.status, "Error")
        response.headers = headers
        response._content = content
        response._content_consumed = True  # type: ignore[attr-defined]
        response.raw = io.BytesIO(content)
        response.encoding = "utf-8"
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


def mount_sandbox(session: requests.Session, state_path: Path | str) -> SandboxAdapter:
    """Mount a SandboxAdapter for both of X's API hosts on `session`."""
    adapter = SandboxAdapter(state_path)
    for prefix in ("https://api.twitter.com/", "https://api.x.com/"):
        session.mount(prefix, adapter)
    return adapter


# --- the cast -------------------------------------------------------------------------------

# The account a new sandbox profile logs in as (dmtool.appstate.ensure_sandbox_world).
SANDBOX_ME = ("1000000000000000001", "you", "You (sandbox)")

DEMO_ME = {"user_id": "1490000000000000001", "username": "dmtool_demo", "name": "Demo Studio"}

# key -> person. Keys are what the demo refers to; handles are labels.
DEMO_CAST: dict[str, dict[str, Any]] = {
    "customer": {
        "user_id": "1490000000000000101",
        "username": "maya_builds",
        "name": "Maya Okafor",
    },
    "exchange": {
        "user_id": "1490000000000000102",
        "username": "theo_writes",
        "name": "Theo Lindqvist",
    },
    "follower": {
        "user_id": "1490000000000000103",
        "username": "quiet_quinn",
        "name": "Quinn Park",
        "follows_me": True,
    },
    "stop": {"user_id": "1490000000000000104", "username": "sam_stops", "name": "Sam Reyes"},
    "closed": {
        "user_id": "1490000000000000105",
        "username": "closed_carla",
        "name": "Carla Mendes",
        "dms_closed": True,
    },
}

# (hours ago, what, who, text). "mention"/"reply" are public posts; a reply
# answers the latest post in the script by that person.
DEMO_SCRIPT: list[tuple[float, str, str, str]] = [
    (20 * 24, "dm_in", "customer", "Hi! Is the spring workshop still open for sign-ups?"),
    (20 * 24 - 2, "dm_out", "customer", "It is! I'll send the schedule once it's final."),
    (9 * 24, "dm_in", "stop", "Thanks for the workshop info last month."),
    (
        6 * 24,
        "mention",
        "exchange",
        "@dmtool_demo your thread on pricing small workshops was really useful, thank you",
    ),
    (
        6 * 24 - 3,
        "reply",
        "exchange",
        "@theo_writes glad it helped! Happy to share the numbers behind it.",
    ),
    (4 * 24, "mention", "closed", "@dmtool_demo is there a recording of the last session?"),
    (4 * 24 - 1, "reply", "closed", "@closed_carla yes, I can send you the link."),
    (3 * 24, "dm_in", "stop", "STOP"),
    (26, "dm_in", "customer", "Hi again, do you ship the printed workbook to Canada?"),
    (5, "dm_in", "customer", "Also, is there a group discount for three people?"),
]


def seed_demo_world(path: Path | str, *, now: datetime | None = None) -> SandboxWorld:
    """Reset `path` to the demo world: you, five people, a few DMs and public posts."""
    world = SandboxWorld.create(path)
    base = now or datetime.now(UTC)
    with world.transaction():
        world.set_me(DEMO_ME["user_id"], DEMO_ME["username"], DEMO_ME["name"])
        for person in DEMO_CAST.values():
            world.add_user(
                person["username"],
                person["name"],
                user_id=person["user_id"],
                dms_closed=person.get("dms_closed", False),
                follows_me=person.get("follows_me", False),
            )
        last_post: dict[str, str] = {}
        for hours_ago, what, who, text in sorted(DEMO_SCRIPT, key=lambda s: -s[0]):
            at = base - timedelta(hours=hours_ago)
            other = DEMO_CAST[who]["user_id"]
            if what == "dm_in":
                world.incoming_dm(other, text, at=at)
            elif what == "dm_out":
                world.outgoing_dm(other, text, at=at)
            elif what == "mention":
                last_post[who] = world.add_post(other, text, at=at)
            elif what == "reply":
                world.add_post(
                    DEMO_ME["user_id"],
                    text,
                    at=at,
                    in_reply_to_user_id=other,
                    reply_to_post_id=last_post.get(who),
                )
            else:  # pragma: no cover - a typo in DEMO_SCRIPT
                raise ValueError(f"unknown demo step {what!r}")
    with contextlib.suppress(OSError):
        os.chmod(world.path, 0o600)
    return world
