"""One record per HTTP request to X, for whoever wants to watch, and what X
bills for it.

The X client's session makes a `RequestRecord` for every request it sends
(each retry and each page is its own) and hands it to its observers: `-v`
logs it (`log_request`), and the cost ledger (services/ledger.py) stores it
with what X bills for it (`billed`). Before a request leaves, the session
shows its gates a `RequestPlan`, whose `worst` is the most X could bill for
it: a budget gate refuses it by raising. No query string, header or body is
kept: they carry tokens (pagination tokens are noise, OAuth headers are
secrets); only the page size and the number of ids asked for are read from
the query, and from the answer the ids of what it returned (the same-day rule
needs them). This module knows nothing of the store.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

log = logging.getLogger("dmtool.x")

TOKEN_PATH = "/2/oauth2/token"

# What X bills, per kind of unit (its pricing page; x-api.md "Limits and cost"):
# each DM event, user and post an answer returns, and each DM sent. X bills a
# resource once per UTC day however often it is read (the same-day rule), so
# reads carry the ids returned; a send is billed per request.
KINDS = ("dm_events", "users", "posts", "sends")

# Paths with an id or a handle in them, as the endpoint X documents.
_TEMPLATES = (
    (re.compile(r"^/2/dm_conversations/with/[^/]+/dm_events$"),
     "/2/dm_conversations/with/:participant_id/dm_events"),
    (re.compile(r"^/2/dm_conversations/with/[^/]+/messages$"),
     "/2/dm_conversations/with/:participant_id/messages"),
    (re.compile(r"^/2/dm_conversations/[^/]+/dm_events$"),
     "/2/dm_conversations/:dm_conversation_id/dm_events"),
    (re.compile(r"^/2/users/by/username/[^/]+$"), "/2/users/by/username/:username"),
    (re.compile(r"^/2/users/(?!me$)[^/]+/mentions$"), "/2/users/:id/mentions"),
    (re.compile(r"^/2/users/(?!me$)[^/]+/tweets$"), "/2/users/:id/tweets"),
)
_SEND = "/2/dm_conversations/with/:participant_id/messages"
_DM_READS = ("/2/dm_events", "/2/dm_conversations/with/:participant_id/dm_events",
             "/2/dm_conversations/:dm_conversation_id/dm_events")
_POST_READS = ("/2/users/:id/mentions", "/2/users/:id/tweets")
_USER_READS = ("/2/users", "/2/users/me", "/2/users/by/username/:username")


def endpoint(path: str) -> str:
    """The endpoint a path calls, as X documents it: `/2/users/:id/mentions`
    (no ids or handles: the ledger keeps the endpoint, not whom it was about)."""
    for pattern, name in _TEMPLATES:
        if pattern.match(path):
            return name
    return path


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str  # without the query
    family: str | None  # errors.RATE_FAMILIES key; None outside them (the token endpoint)
    page_size: int | None  # the max_results asked for, if any
    results: int | None  # items in the answer's `data`; None without a successful JSON answer
    status: int | None  # None when no answer came back (a connection error)
    error: str | None  # the exception's class when no answer came back
    seconds: float
    ids: tuple[str, ...] = ()  # the ids of the items in `data`, in order
    user_ids: tuple[str, ...] = ()  # the users in `includes` (billed as user reads too)

    @property
    def endpoint(self) -> str:
        return endpoint(self.path)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def billed(self) -> dict[str, tuple[str, ...]]:
        """What X bills for this request, per kind (KINDS), before the same-day
        rule: the ids of the events, users and posts it returned (users in
        `includes` count as user reads, to be safe). A send is one unit (its
        event id) when X accepted it. A request that failed (429, 5xx, no
        answer) and the token endpoint bill nothing; a send whose outcome is
        unknown is counted by the send service until it is reconciled."""
        out: dict[str, tuple[str, ...]] = {}
        if not self.ok:
            return out
        name = self.endpoint
        if self.method == "POST" and name == _SEND:
            out["sends"] = self.ids[:1] or ("",)
            return out
        if name in _DM_READS:
            out["dm_events"] = self.ids
        elif name in _POST_READS:
            out["posts"] = self.ids
        elif name in _USER_READS:
            out["users"] = self.ids
        else:
            return out
        users = tuple(dict.fromkeys(out.get("users", ()) + self.user_ids))
        if users:
            out["users"] = users
        return {k: v for k, v in out.items() if v}

    def describe(self) -> str:
        """One line: `GET /2/dm_events [dm_read] max_results=5 -> 200, 3 results, 41 ms`."""
        parts = [self.method, self.path]
        if self.family:
            parts.append(f"[{self.family}]")
        if self.page_size is not None:
            parts.append(f"max_results={self.page_size}")
        outcome = str(self.status) if self.status is not None else (self.error or "no answer")
        if self.results is not None:
            outcome += f", {self.results} result{'' if self.results == 1 else 's'}"
        return f"{' '.join(parts)} -> {outcome}, {self.seconds * 1000:.0f} ms"


@dataclass(frozen=True)
class RequestPlan:
    """A request about to leave: enough to know the most X could bill for it."""

    method: str
    path: str
    family: str | None
    page_size: int | None = None  # max_results
    ids_asked: int = 0  # ids in a users lookup

    @property
    def endpoint(self) -> str:
        return endpoint(self.path)

    def worst(self) -> dict[str, int]:
        """The most units of each kind X could bill: a full page (X's default
        page when none is asked), every user it could name (a DM page names
        each event's other person and you; a mention, its author), one send,
        the users asked for. The same-day rule may make it less, never more."""
        name = self.endpoint
        if self.method == "POST":
            return {"sends": 1} if name == _SEND else {}
        if name in _DM_READS:
            size = self.page_size or 100
            return {"dm_events": size, "users": size + 1}
        if name == "/2/users/:id/mentions":
            size = self.page_size or 10
            return {"posts": size, "users": size}
        if name == "/2/users/:id/tweets":
            return {"posts": self.page_size or 10, "users": 1}  # the author: the user asked about
        if name == "/2/users":
            return {"users": self.ids_asked}
        if name in _USER_READS:
            return {"users": 1}
        return {}


RequestObserver = Callable[[RequestRecord], None]
RequestGate = Callable[[RequestPlan], None]  # raises to stop the request before it leaves


def log_request(record: RequestRecord) -> None:
    """The `-v` observer: one debug line per request."""
    log.debug("X %s", record.describe())


def page_size(params: Any, query: str) -> int | None:
    """max_results, from the request's parameters (tweepy passes them apart)
    or its query string."""
    value = _param(params, query, "max_results")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def ids_asked(params: Any, query: str) -> int:
    """How many ids a users lookup asks for (`ids=1,2,3`)."""
    value = _param(params, query, "ids")
    if value is None:
        return 0
    if isinstance(value, list | tuple):
        return len(value)
    return len([v for v in str(value).split(",") if v])


def _param(params: Any, query: str, name: str) -> Any:
    value = params.get(name) if isinstance(params, dict) else None
    if value is None:
        found = parse_qs(query).get(name)
        value = found[0] if found else None
    return value


@dataclass(frozen=True)
class Answer:
    """What a successful JSON answer returned: how many items, their ids, and
    the users its `includes` name."""

    results: int | None
    ids: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = ()


def answer(response: Any) -> Answer:
    """Read an answer's items: `data` as a list (or one object, e.g. a send's
    `dm_event_id`), and `includes.users`. Answer(None) when it is not JSON."""
    try:
        body = response.json()
    except ValueError:
        return Answer(None)
    if not isinstance(body, dict):
        return Answer(None)
    data = body.get("data")
    items = data if isinstance(data, list) else [] if data is None else [data]
    ids = tuple(str(i) for i in (_item_id(x) for x in items) if i is not None)
    includes = body.get("includes")
    users = includes.get("users") if isinstance(includes, dict) else None
    user_ids = tuple(str(i) for i in (_item_id(u) for u in users or ()) if i is not None) \
        if isinstance(users, list) else ()
    return Answer(len(items), ids, user_ids)


def _item_id(item: Any) -> Any:
    if not isinstance(item, dict):
        return None
    return item.get("id", item.get("dm_event_id"))


def result_count(response: Any) -> int | None:
    """How many items an answer holds: the length of `data` when it is a list,
    1 for a single object, 0 when there is none; None when it is not JSON."""
    return answer(response).results


class TokenWatch:
    """One request to the token endpoint, which OAuth libraries send on their
    own sessions: observed like the client's requests (0 units). Register
    `hook(then)` as the library's only compliance hook for the token answer
    (requests-oauthlib keeps them in a set, in no order): it notes the status,
    then runs `then`, which may raise. Call `done` after the request."""

    def __init__(self, observers: Sequence[RequestObserver]) -> None:
        self._observers = observers
        self._status: int | None = None
        self._started = time.perf_counter()

    def hook(self, then: Callable[[Any], Any] | None = None) -> Callable[[Any], Any]:
        def seen(response: Any) -> Any:
            self._status = getattr(response, "status_code", None)
            return then(response) if then is not None else response
        return seen

    def done(self, error: BaseException | None) -> None:
        record = RequestRecord(
            method="POST", path=TOKEN_PATH, family=None, page_size=None, results=None,
            status=self._status,
            error=type(error).__name__ if error is not None and self._status is None else None,
            seconds=time.perf_counter() - self._started)
        log_request(record)
        for watch in self._observers:
            watch(record)


def wanted(observers: list[RequestObserver]) -> bool:
    """Whether anyone looks: building a record reads the body once more."""
    return bool(observers) or log.isEnabledFor(logging.DEBUG)
