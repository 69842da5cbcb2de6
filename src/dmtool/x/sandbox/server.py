"""The fake X's endpoints: routing one request against a locked state, with
injected faults and 15-minute rate windows, and answering it as X does."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

from dmtool.x.sandbox import oauth
from dmtool.x.sandbox.params import (
    DM_EVENT_FIELDS,
    DM_EVENT_TYPES,
    DM_EXPANSIONS,
    TWEET_EXPANSIONS,
    TWEET_FIELDS,
    USER_EXPANSIONS,
    USER_FIELDS,
    BadRequest,
    after_token,
    check_params,
    csv_param,
    dm_token,
    dm_token_id,
    id_param,
    int_param,
    post_token,
    post_token_id,
)
from dmtool.x.sandbox.replies import Reply, fault_reply, invalid, not_found_user, problem, user_json
from dmtool.x.sandbox.state import (
    USERNAME_RE,
    State,
    conversation_id,
    fmt,
    new_id,
    parse_time,
    require_me,
    user_by_username,
    world_now,
)

DM_WINDOW_DAYS = 30  # the DM endpoints only return events this recent
MENTIONS_CAP = 800  # how far back the mentions timeline reaches
TWEETS_CAP = 3200  # and a user's own posts

# The post fields the sandbox keeps, served when tweet.fields asks for them.
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


class Server:
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
        self.now = world_now(state)

    def handle(
        self, method: str, path: str, query: dict[str, str], body: bytes, authorization: str | None
    ) -> Reply:
        if method == "GET" and path == oauth.AUTHORIZE_PATH:
            return oauth.authorize(self.state, query, self.now)
        if method == "POST" and path == oauth.TOKEN_PATH:
            fault = self._take_fault(method, path, token_endpoint=True)
            return fault_reply(fault, self.now) if fault else oauth.token(
                self.state, body, authorization, self.now)
        if not authorization:
            return problem(401, "Unauthorized", "Unauthorized")
        refused = oauth.check_bearer(self.state, authorization, self.now)
        if refused is not None:
            return refused
        route = self._route(method, path)
        fault = self._take_fault(method, path, token_endpoint=False)
        if fault is not None:
            reply = fault_reply(fault, self.now)
            if route is not None:
                # X sends its rate headers on errors too; a 429 fault sets its own reset.
                reply.headers = {**self._rate_headers(route[0]), **reply.headers}
            return reply
        if route is None:
            return problem(404, "Not Found Error", "Sorry, that page does not exist")
        name, args = route
        limited = self._rate(name)
        if limited is not None:
            return limited
        try:
            reply = getattr(self, "_" + name)(query, body, *args)
        except BadRequest as exc:
            reply = invalid(exc)
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

    def _rate(self, key: str) -> Reply | None:
        window = self._window(key)
        if self.state.get("enforce_rate_limits") and window["used"] >= RATE_LIMITS[key]:
            reply = problem(429, "Too Many Requests", "Too Many Requests")
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

    def _users_me(self, query: dict[str, str], body: bytes) -> Reply:
        check_params(query, {"user.fields", "expansions", "tweet.fields"})
        fields = csv_param(query, "user.fields", USER_FIELDS)
        csv_param(query, "expansions", USER_EXPANSIONS)
        csv_param(query, "tweet.fields", TWEET_FIELDS)
        me = self._me_user()
        if me is None:
            return problem(401, "Unauthorized", "Unauthorized")
        return Reply(200, {"data": user_json(me, fields)})

    def _user_by_username(self, query: dict[str, str], body: bytes, username: str) -> Reply:
        check_params(query, {"user.fields", "expansions", "tweet.fields"})
        fields = csv_param(query, "user.fields", USER_FIELDS)
        csv_param(query, "expansions", USER_EXPANSIONS)
        csv_param(query, "tweet.fields", TWEET_FIELDS)
        if not USERNAME_RE.match(username):
            raise BadRequest(
                "username",
                username,
                f"The `username` query parameter value [{username}] does not match ^[A-Za-z0-9_]{{1,15}}$",
            )
        user = user_by_username(self.state, username)
        if user is None:
            # X answers a missing user with 200 and only `errors`.
            return Reply(200, {"errors": [not_found_user("username", username)]})
        return Reply(200, {"data": user_json(user, fields)})

    def _users(self, query: dict[str, str], body: bytes) -> Reply:
        check_params(query, {"ids", "user.fields", "expansions", "tweet.fields"})
        fields = csv_param(query, "user.fields", USER_FIELDS)
        csv_param(query, "expansions", USER_EXPANSIONS)
        csv_param(query, "tweet.fields", TWEET_FIELDS)
        raw = query.get("ids")
        if not raw:
            raise BadRequest("ids", raw or "", "The `ids` query parameter can not be empty")
        ids = raw.split(",")
        if len(ids) > 100:
            raise BadRequest(
                "ids",
                raw,
                "The number of values in the `ids` query parameter "
                f"list [{len(ids)}] is not between 1 and 100",
            )
        data, errors = [], []
        for user_id in ids:
            id_param("ids", user_id)
            user = self.state["users"].get(user_id)
            if user is None:
                errors.append(not_found_user("ids", user_id))
            else:
                data.append(user_json(user, fields))
        out: dict[str, Any] = {}
        if data:
            out["data"] = data
        if errors:
            out["errors"] = errors
        return Reply(200, out)

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

    def _dm_page(self, query: dict[str, str], events: list[dict[str, Any]]) -> Reply:
        check_params(query, self.DM_PARAMS)
        fields = set(csv_param(query, "dm_event.fields", DM_EVENT_FIELDS))
        expansions = csv_param(query, "expansions", DM_EXPANSIONS)
        user_fields = csv_param(query, "user.fields", USER_FIELDS)
        csv_param(query, "tweet.fields", TWEET_FIELDS)
        types = csv_param(query, "event_types", frozenset(DM_EVENT_TYPES)) or list(DM_EVENT_TYPES)
        max_results = int_param(query, "max_results", 1, 100, 100)

        oldest = self.now - timedelta(days=DM_WINDOW_DAYS)
        visible = [e for e in events if e["event_type"] in types and parse_time(e["created_at"]) >= oldest]
        visible.sort(key=lambda e: int(e["id"]), reverse=True)
        visible = after_token(visible, query, dm_token_id)
        page = visible[:max_results]
        if not page:
            return Reply(200, {"meta": {"result_count": 0}})

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
            meta["next_token"] = dm_token(page[-1]["id"])
        if query.get("pagination_token") is not None:
            meta["previous_token"] = dm_token(page[0]["id"])
        out["meta"] = meta
        return Reply(200, out, dm_events=len(page))

    def _users_for(self, ids: list[str], fields: list[str]) -> list[dict[str, Any]]:
        seen: list[str] = []
        for user_id in ids:
            if user_id not in seen and user_id in self.state["users"]:
                seen.append(user_id)
        return [user_json(self.state["users"][u], fields) for u in seen]

    def _dm_events(self, query: dict[str, str], body: bytes) -> Reply:
        return self._dm_page(query, self.state["dm_events"])

    def _conversation_events(self, query: dict[str, str], body: bytes, participant_id: str) -> Reply:
        id_param("participant_id", participant_id)
        me = require_me(self.state)
        conv = conversation_id(me, participant_id)
        return self._dm_page(
            query, [e for e in self.state["dm_events"] if e.get("dm_conversation_id") == conv]
        )

    def _send(self, query: dict[str, str], body: bytes, participant_id: str) -> Reply:
        check_params(query, set())
        id_param("participant_id", participant_id)
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return invalid(BadRequest("body", "", "The request body is not valid JSON"))
        text = payload.get("text") if isinstance(payload, dict) else None
        if not isinstance(text, str) or not text.strip():
            return invalid(BadRequest("text", "", "The `text` field is required"))
        if len(text) > 10000:
            return invalid(BadRequest("text", "", "The `text` field is longer than 10000"))
        me = require_me(self.state)
        if participant_id == me:
            return invalid(
                BadRequest("participant_id", participant_id, "You cannot send a Direct Message to yourself")
            )
        user = self.state["users"].get(participant_id)
        if user is None:
            return invalid(
                BadRequest("participant_id", participant_id, f"[{participant_id}] is not a valid user")
            )
        if user.get("dms_closed"):
            return problem(403, "Forbidden", "You are not permitted to perform this action.")
        event_id = new_id(self.state, self.now)
        conv = conversation_id(me, participant_id)
        self.state["dm_events"].append(
            {
                "id": event_id,
                "event_type": "MessageCreate",
                "text": text,
                "sender_id": me,
                "dm_conversation_id": conv,
                "created_at": fmt(self.now),
            }
        )
        after: tuple[str, float] | None = None
        if self.state["send_timeouts"] > 0:
            self.state["send_timeouts"] -= 1
            after = ("timeout", 0.0)
        elif self.state["send_hangs"]:
            after = ("hang", float(self.state["send_hangs"].pop(0)))
        return Reply(201, {"data": {"dm_conversation_id": conv, "dm_event_id": event_id}}, after=after)

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
    ) -> Reply:
        check_params(query, self.POST_PARAMS | extra)
        fields = set(csv_param(query, "tweet.fields", TWEET_FIELDS))
        expansions = csv_param(query, "expansions", TWEET_EXPANSIONS)
        user_fields = csv_param(query, "user.fields", USER_FIELDS)
        max_results = int_param(query, "max_results", 5, 100, 10)
        posts = sorted(posts, key=lambda p: int(p["id"]), reverse=True)[:cap]
        if "since_id" in query:
            since = int(id_param("since_id", query["since_id"]))
            posts = [p for p in posts if int(p["id"]) > since]
        if "until_id" in query:
            until = int(id_param("until_id", query["until_id"]))
            posts = [p for p in posts if int(p["id"]) < until]
        posts = after_token(posts, query, post_token_id)
        page = posts[:max_results]
        if not page:
            return Reply(200, {"meta": {"result_count": 0}})
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
            meta["next_token"] = post_token(page[-1]["id"])
        out["meta"] = meta
        return Reply(200, out, posts=len(page))

    def _timeline_user(self, user_id: str) -> dict[str, Any] | None:
        id_param("id", user_id)
        return self.state["users"].get(user_id)  # type: ignore[no-any-return]

    def _mentions(self, query: dict[str, str], body: bytes, user_id: str) -> Reply:
        user = self._timeline_user(user_id)
        if user is None:
            return Reply(200, {"errors": [not_found_user("id", user_id)]})
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

    def _tweets(self, query: dict[str, str], body: bytes, user_id: str) -> Reply:
        user = self._timeline_user(user_id)
        if user is None:
            return Reply(200, {"errors": [not_found_user("id", user_id)]})
        exclude = csv_param(query, "exclude", frozenset({"replies", "retweets"}))
        posts = [
            p
            for p in self.state["posts"]
            if p["author_id"] == user_id and not ("replies" in exclude and p.get("in_reply_to_user_id"))
        ]
        return self._post_page(query, posts, TWEETS_CAP, frozenset({"exclude"}))
