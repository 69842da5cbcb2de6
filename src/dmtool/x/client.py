"""TweepyClient: dmtool's XClient on top of tweepy.Client.

tweepy builds the requests and parses the answers; this module picks the
fields, retries what is safe to retry, counts requests, and turns every
failure into a dmtool error whose message never carries a secret. tweepy (and
requests) are imported lazily so that importing dmtool stays fast.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from dmtool.credentials import Credentials, SharedPlace, quiet_secret_loggers, refresh_if_needed
from dmtool.errors import (
    RATE_FAMILIES,
    AuthError,
    DMClosed,
    DmtoolError,
    InputError,
    NotFound,
    RateLimited,
    Unavailable,
)
from dmtool.x import observe
from dmtool.x.errors import SendOutcomeUnknown
from dmtool.x.observe import RequestGate, RequestObserver
from dmtool.x.types import (
    POSTS_PAGE_MAX,
    POSTS_PAGE_MIN,
    DMEvent,
    DMPage,
    Post,
    PostPage,
    SentDM,
    XClient,
    XUser,
)

if TYPE_CHECKING:
    import requests
    import requests.adapters

log = logging.getLogger("dmtool.x")

DM_EVENT_FIELDS = [
    "id",
    "text",
    "event_type",
    "created_at",
    "dm_conversation_id",
    "sender_id",
    "participant_ids",
    "referenced_tweets",
    "attachments",
]
DM_EXPANSIONS = ["sender_id", "participant_ids"]
USER_FIELDS = ["username", "name"]
TWEET_FIELDS = [
    "author_id",
    "created_at",
    "in_reply_to_user_id",
    "conversation_id",
    "referenced_tweets",
]
POST_EXPANSIONS = ["author_id"]

X_HOSTS = ("https://api.twitter.com/", "https://api.x.com/")
MAX_ATTEMPTS = 3  # GET only; a send is never retried
BACKOFF_CAP_S = 8.0
TIMEOUT = (10.0, 30.0)  # connect, read: tweepy sets none, and cron must never hang

_HANDLE_RE = re.compile(r"^[A-Za-z0-9_]{1,15}$")
_ID_RE = re.compile(r"^[0-9]{1,19}$")


@functools.cache
def _session_class() -> Any:
    import requests

    class CountingSession(requests.Session):
        """tweepy's session, plus a default timeout, a request counter, gates
        that may stop a request before it leaves (the budget) and an observer
        per request (x/observe.py: -v logs each one, without secrets; the
        ledger stores it).

        trust_env stays on: HTTPS_PROXY, NO_PROXY and REQUESTS_CA_BUNDLE work.
        """

        def __init__(self, on_request: Callable[[], None], timeout: Any,
                     observers: list[RequestObserver], gates: list[RequestGate]) -> None:
            super().__init__()
            self._on_request = on_request
            self._timeout = timeout
            self._observers = observers
            self._gates = gates
            self.family: str | None = None  # set by TweepyClient._call for each call

        def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = self._timeout
            if self._gates:  # before anything is counted: a refused request never leaves
                parts = urlsplit(_text(url))
                params = kwargs.get("params")
                plan = observe.RequestPlan(
                    method=_text(method), path=parts.path, family=self.family,
                    page_size=observe.page_size(params, parts.query),
                    ids_asked=observe.ids_asked(params, parts.query))
                for gate in self._gates:
                    gate(plan)
            self._on_request()
            started = time.perf_counter()
            try:
                response = super().request(method, url, *args, **kwargs)
            except requests.RequestException as exc:
                self._observe(method, url, kwargs.get("params"), None, type(exc).__name__,
                              started)
                raise
            self._observe(method, url, kwargs.get("params"), response, None, started)
            return response

        def _observe(self, method: Any, url: Any, params: Any, response: Any,
                     error: str | None, started: float) -> None:
            if not observe.wanted(self._observers):
                return
            parts = urlsplit(_text(url))
            # An error's problem body holds no results.
            got = observe.answer(response) if response is not None and response.ok \
                else observe.Answer(None)
            record = observe.RequestRecord(
                method=_text(method), path=parts.path, family=self.family,
                page_size=observe.page_size(params, parts.query), results=got.results,
                status=response.status_code if response is not None else None, error=error,
                seconds=time.perf_counter() - started, ids=got.ids, user_ids=got.user_ids)
            observe.log_request(record)
            for watch in self._observers:
                watch(record)

    return CountingSession


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _clean(text: object, limit: int = 200) -> str:
    """X's own wording for a message: one line, bounded."""
    flat = re.sub(r"\s+", " ", str(text)).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _problem_of(exc: Any) -> dict[str, Any]:
    response = getattr(exc, "response", None)
    try:
        body = response.json() if response is not None else None
    except ValueError:
        body = None
    return body if isinstance(body, dict) else {}


def _detail(problem: dict[str, Any], fallback: str) -> str:
    errors = problem.get("errors")
    if isinstance(errors, list):
        messages = [
            str(e.get("message") or e.get("detail"))
            for e in errors
            if isinstance(e, dict) and (e.get("message") or e.get("detail"))
        ]
        if messages:
            return _clean("; ".join(messages))
    for key in ("detail", "title"):
        if problem.get(key):
            return _clean(problem[key])
    return fallback


def _reset_text(reset_at: int) -> str:
    reset = datetime.fromtimestamp(reset_at)  # local time: what the user's clock shows
    text = f"until {reset:%H:%M}"
    if reset.date() != datetime.now().date():
        text += f" on {reset:%Y-%m-%d}"
    return text


def _not_sent(exc: BaseException) -> bool:
    """True when a connection error happened before the request could reach X."""
    import requests
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    if isinstance(
        exc,
        requests.exceptions.ConnectTimeout | requests.exceptions.ProxyError | requests.exceptions.SSLError,
    ):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3 MaxRetryError wraps the cause
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def _get_users(client: Any, **kwargs: Any) -> Any:
    return client.get_users(**kwargs)


class TweepyClient:
    """XClient over tweepy.Client. Errors are dmtool errors; nothing waits on rate limits."""

    requests_made: int

    def __init__(
        self,
        credentials: Credentials,
        *,
        adapter: requests.adapters.BaseAdapter | None = None,
        retry_backoff: float = 0.5,
        save_credentials: Callable[[Credentials], None] | None = None,
        credentials_path: Path | None = None,
        shared_credentials: SharedPlace | None = None,
        timeout: Any = TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        quiet_secret_loggers()
        self.requests_made = 0
        self._observers: list[RequestObserver] = []
        self._gates: list[RequestGate] = []
        self._creds = credentials
        self._adapter = adapter
        self._retry_backoff = retry_backoff
        self._save = save_credentials
        self._credentials_path = credentials_path
        self._shared = shared_credentials
        self._timeout = timeout
        self._sleep = sleep
        self._refreshed_after_401 = False
        self._client = self._build()

    @property
    def credentials(self) -> Credentials:
        """The credentials in use (after any refresh)."""
        return self._creds

    def _count(self) -> None:
        self.requests_made += 1

    def observe(self, observer: RequestObserver) -> None:
        """Call `observer` with a RequestRecord after every HTTP request to X."""
        self._observers.append(observer)

    def gate(self, gate: RequestGate) -> None:
        """Call `gate` with a RequestPlan before every HTTP request to X; what it
        raises stops the request (nothing is sent, nothing counted)."""
        self._gates.append(gate)

    def _build(self) -> Any:
        import tweepy

        creds = self._creds
        if creds.kind == "oauth1":
            client = tweepy.Client(
                consumer_key=creds.api_key,
                consumer_secret=creds.api_secret,
                access_token=creds.access_token,
                access_token_secret=creds.access_token_secret,
                wait_on_rate_limit=False,
            )
        else:
            if not creds.access_token:
                raise AuthError("no X access token", hint="run dmtool auth login")
            client = tweepy.Client(bearer_token=creds.access_token, wait_on_rate_limit=False)
        client.session.close()
        session = _session_class()(self._count, self._timeout, self._observers, self._gates)
        if self._adapter is not None:
            for prefix in X_HOSTS:
                session.mount(prefix, self._adapter)
        client.session = session
        return client

    @property
    def _user_auth(self) -> bool:
        # OAuth 1.0a signs each request; OAuth 2.0 user tokens go as a bearer.
        return self._creds.kind == "oauth1"

    def close(self) -> None:
        self._client.session.close()

    # --- plumbing ------------------------------------------------------------------

    def _ensure_fresh(self, family: str, force: bool = False) -> None:
        if self._creds.kind != "oauth2":
            return
        try:
            fresh = refresh_if_needed(self._creds, time.time(), self._save, force=force,
                                      adapter=self._adapter, path=self._credentials_path,
                                      observers=self._observers, shared=self._shared)
        except RateLimited as exc:
            # The token endpoint has no family of its own: pause the one that needed it.
            exc.family = exc.family or family
            raise
        if fresh is not self._creds:
            self._creds = fresh
            self._client.bearer_token = fresh.access_token

    def _backoff(self, attempt: int) -> None:
        delay = min(self._retry_backoff * 2 ** (attempt - 1), BACKOFF_CAP_S)
        if delay > 0:
            self._sleep(delay)

    def _call(self, method: str, what: str, family: str, fn: Callable[[Any], Any]) -> Any:
        """Run one tweepy call with retries (GET only) and dmtool error mapping.

        `what` names the operation in messages (no secrets ever go in it);
        `family` is the endpoint's rate-limit family (errors.RATE_FAMILIES),
        carried by the RateLimited a 429 becomes.
        """
        import requests
        import tweepy

        attempts = 1 if method == "POST" else MAX_ATTEMPTS
        attempt = 0
        while True:
            attempt += 1
            self._ensure_fresh(family)
            self._client.session.family = family
            try:
                return fn(self._client)
            except tweepy.TooManyRequests as exc:
                raise self._rate_limited(exc, family) from None
            except tweepy.Unauthorized:
                if self._can_refresh():
                    # An expired or revoked token: refresh once and try again. X
                    # did not act on a 401, so this is safe for a send too.
                    self._refreshed_after_401 = True
                    self._ensure_fresh(family, force=True)
                    attempt -= 1
                    continue
                raise AuthError(
                    "X rejected the credentials (401 Unauthorized)",
                    hint="run dmtool auth login",
                ) from None
            except tweepy.TwitterServerError as exc:
                status = exc.response.status_code
                if method == "POST":
                    raise SendOutcomeUnknown(
                        f"X failed while sending (HTTP {status}); the DM may or may not have been delivered",
                        hint="dmtool checks the conversation before any new attempt",
                    ) from None
                if attempt >= attempts:
                    raise Unavailable(
                        f"X is having trouble (HTTP {status}) with {what}",
                        hint="try again later",
                    ) from None
                log.debug("X %s: HTTP %d, retrying (attempt %d)", what, status, attempt)
            except tweepy.HTTPException as exc:
                raise self._http_error(exc, method, what) from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                if method == "POST":
                    if _not_sent(exc):
                        raise Unavailable(
                            "cannot reach X; the DM was not sent", hint="try again later"
                        ) from None
                    raise SendOutcomeUnknown(
                        "no answer from X after sending; the DM may or may not have been delivered",
                        hint="dmtool checks the conversation before any new attempt",
                    ) from None
                if attempt >= attempts:
                    raise Unavailable(
                        f"cannot reach X for {what} ({type(exc).__name__})",
                        hint="check the network or proxy settings, then try again",
                    ) from None
                log.debug("X %s: %s, retrying (attempt %d)", what, type(exc).__name__, attempt)
            except requests.RequestException as exc:
                if method == "POST" and not _not_sent(exc):
                    # e.g. a broken response body: X may have acted on the request.
                    raise SendOutcomeUnknown(
                        f"the answer from X for {what} was cut off ({type(exc).__name__}); "
                        "the DM may have been delivered") from None
                raise Unavailable(f"cannot talk to X for {what} ({type(exc).__name__})") from None
            self._backoff(attempt)

    def _can_refresh(self) -> bool:
        return (
            self._creds.kind == "oauth2" and bool(self._creds.refresh_token) and not self._refreshed_after_401
        )

    def _rate_limited(self, exc: Any, family: str) -> DmtoolError:
        problem = _problem_of(exc)
        if str(problem.get("type", "")).endswith("usage-capped"):  # account-wide, not a family
            return AuthError(
                f"X usage cap reached: {_detail(problem, 'usage capped')}",
                code="E_USAGE_CAP",
                hint="the cap resets with its period; check your X developer console",
            )
        reset_at: int | None = getattr(exc, "reset_time", None)
        if reset_at is None:
            try:
                reset_at = int(exc.response.headers["x-rate-limit-reset"])
            except (AttributeError, KeyError, TypeError, ValueError):
                reset_at = None
        label = RATE_FAMILIES[family]
        if reset_at is None:
            return RateLimited(f"X rate limit reached for {label}; try again in 15 minutes",
                               family=family)
        when = _reset_text(reset_at)
        return RateLimited(
            f"X rate limit reached for {label}: paused {when}",
            reset_at=reset_at,
            hint=f"try again after {datetime.fromtimestamp(reset_at):%H:%M}",
            family=family,
        )

    def _http_error(self, exc: Any, method: str, what: str) -> DmtoolError:
        status = exc.response.status_code
        problem = _problem_of(exc)
        detail = _detail(problem, f"HTTP {status}")
        if status == 402:
            return AuthError(
                f"X wants payment before {what}: {detail}",
                code="E_PAYMENT",
                hint="add credits in your X developer console",
            )
        if status == 403:
            if method == "POST":  # the only POST is a send: 403 means DMs are closed
                return DMClosed(
                    f"X refused the DM ({what}): the recipient does not accept your DMs",
                    hint="reply publicly or wait until they message you",
                )
            return AuthError(
                f"X refused access for {what}: {detail}",
                hint="give the app 'Read, write, and Direct Messages' permission, then run dmtool auth login",
            )
        if status == 404:
            return NotFound(f"X found nothing for {what}: {detail}")
        if status == 400:
            return InputError(f"X rejected the request for {what}: {detail}")
        return DmtoolError(f"X answered HTTP {status} for {what}: {detail}", code="E_X_HTTP")

    # --- conversions ----------------------------------------------------------------

    @staticmethod
    def _users(response: Any) -> dict[str, XUser]:
        users: dict[str, XUser] = {}
        for user in (response.includes or {}).get("users", []):
            data = user.data
            users[str(data["id"])] = XUser(str(data["id"]), data["username"], data.get("name"))
        return users

    @staticmethod
    def _dm_event(event: Any) -> DMEvent:
        data = event.data
        sender = data.get("sender_id")
        return DMEvent(
            id=str(data["id"]),
            event_type=data["event_type"],
            text=data.get("text"),
            sender_id=str(sender) if sender is not None else None,
            conversation_id=data.get("dm_conversation_id"),
            created_at=event.created_at,
            participant_ids=tuple(str(p) for p in data.get("participant_ids") or ()),
        )

    @staticmethod
    def _post(tweet: Any) -> Post:
        data = tweet.data
        replied_to = next(
            (str(r["id"]) for r in data.get("referenced_tweets") or () if r.get("type") == "replied_to"),
            None,
        )
        author = data.get("author_id")
        reply_user = data.get("in_reply_to_user_id")
        conv = data.get("conversation_id")
        return Post(
            id=str(data["id"]),
            text=data["text"],
            author_id=str(author) if author is not None else None,
            created_at=tweet.created_at,
            in_reply_to_user_id=str(reply_user) if reply_user is not None else None,
            conversation_id=str(conv) if conv is not None else None,
            replied_to_id=replied_to,
        )

    def _dm_page(self, response: Any) -> DMPage:
        events = [self._dm_event(e) for e in response.data or []]
        return DMPage(
            events=events,
            users=self._users(response),
            next_token=(response.meta or {}).get("next_token"),
        )

    def _post_page(self, response: Any) -> PostPage:
        meta = response.meta or {}
        return PostPage(
            posts=[self._post(t) for t in response.data or []],
            users=self._users(response),
            newest_id=meta.get("newest_id"),
            next_token=meta.get("next_token"),
        )

    # --- XClient ------------------------------------------------------------------------

    def me(self) -> XUser:
        response = self._call(
            "GET",
            "your account",
            "users",
            lambda c: c.get_me(user_fields=USER_FIELDS, user_auth=self._user_auth),
        )
        if response.data is None:
            raise AuthError(
                "X did not say which account these credentials belong to",
                hint="run dmtool auth login",
            )
        data = response.data.data
        return XUser(str(data["id"]), data["username"], data.get("name"))

    def user_by_handle(self, handle: str) -> XUser:
        name = handle.strip().removeprefix("@")
        if not _HANDLE_RE.match(name):
            raise InputError(f"not a valid X handle: {_clean(handle, 40)!r}")
        response = self._call(
            "GET",
            f"user @{name}",
            "users",
            lambda c: c.get_user(username=name, user_fields=USER_FIELDS, user_auth=self._user_auth),
        )
        if response.data is None:
            # X answers a missing (or suspended) user with 200 and only `errors`;
            # its wording only repeats the message, so it goes to -v, not to the user.
            log.debug("X user @%s: %s", name, _detail({"errors": response.errors}, "no data"))
            raise NotFound(f"no X user @{name}")
        data = response.data.data
        return XUser(str(data["id"]), data["username"], data.get("name"))

    def users_by_ids(self, ids: list[str]) -> list[XUser]:
        wanted = list(dict.fromkeys(str(i) for i in ids))
        for user_id in wanted:
            if not _ID_RE.match(user_id):
                raise InputError(f"not an X user id: {_clean(user_id, 40)!r}")
        found: list[XUser] = []
        for start in range(0, len(wanted), 100):
            chunk = wanted[start : start + 100]
            response = self._call(
                "GET",
                "user lookup",
                "users",
                functools.partial(_get_users, ids=chunk, user_fields=USER_FIELDS, user_auth=self._user_auth),
            )
            for user in response.data or []:
                data = user.data
                found.append(XUser(str(data["id"]), data["username"], data.get("name")))
        return found

    def dm_events(self, max_results: int, pagination_token: str | None = None) -> DMPage:
        if not 1 <= max_results <= 100:
            raise ValueError("max_results must be between 1 and 100")
        return self._dm_events("DM events", max_results, pagination_token)

    def conversation_events(
        self, participant_id: str, max_results: int, pagination_token: str | None = None
    ) -> DMPage:
        if not 1 <= max_results <= 100:
            raise ValueError("max_results must be between 1 and 100")
        if not _ID_RE.match(participant_id):
            raise InputError(f"not an X user id: {_clean(participant_id, 40)!r}")
        return self._dm_events(f"the conversation with user {participant_id}", max_results,
                               pagination_token, participant_id=participant_id)

    def _dm_events(self, what: str, max_results: int, pagination_token: str | None,
                   **scope: str) -> DMPage:
        """One page of DM events (all, or one conversation's), naming the senders."""
        response = self._call(
            "GET",
            what,
            "dm_read",
            lambda c: c.get_direct_message_events(
                **scope,
                dm_event_fields=DM_EVENT_FIELDS,
                expansions=DM_EXPANSIONS,
                user_fields=USER_FIELDS,
                max_results=max_results,
                pagination_token=pagination_token,
                user_auth=self._user_auth,
            ),
        )
        return self._dm_page(response)

    def send_dm(self, participant_id: str, text: str) -> SentDM:
        if not _ID_RE.match(participant_id):
            raise InputError(f"not an X user id: {_clean(participant_id, 40)!r}")
        response = self._call(
            "POST",
            f"send to user {participant_id}",
            "dm_send",
            lambda c: c.create_direct_message(
                participant_id=participant_id, text=text, user_auth=self._user_auth
            ),
        )
        data = response.data or {}
        if not data.get("dm_event_id"):
            raise SendOutcomeUnknown("X accepted the send but did not return the DM's id")
        return SentDM(
            dm_event_id=str(data["dm_event_id"]),
            dm_conversation_id=str(data.get("dm_conversation_id", "")),
        )

    # Mentions and own posts use since_id, so a full page (the default) costs
    # no more than what is new; a budget may ask for less (never under 5).
    def mentions(
        self, user_id: str, since_id: str | None = None, pagination_token: str | None = None,
        max_results: int = POSTS_PAGE_MAX,
    ) -> PostPage:
        return self._posts("mentions", "get_users_mentions", user_id, since_id, pagination_token,
                           max_results)

    def own_posts(
        self, user_id: str, since_id: str | None = None, pagination_token: str | None = None,
        max_results: int = POSTS_PAGE_MAX,
    ) -> PostPage:
        # Retweets are never consent evidence; skip them so they cost nothing.
        return self._posts("your posts", "get_users_tweets", user_id, since_id, pagination_token,
                           max_results, exclude=["retweets"])

    def _posts(self, what: str, method: str, user_id: str, since_id: str | None,
               pagination_token: str | None, max_results: int, **extra: Any) -> PostPage:
        """One page of a user's timeline (mentions or own posts), naming the authors."""
        if not POSTS_PAGE_MIN <= max_results <= POSTS_PAGE_MAX:
            raise ValueError(f"max_results must be between {POSTS_PAGE_MIN} and {POSTS_PAGE_MAX}")
        response = self._call(
            "GET",
            what,
            "timelines",
            lambda c: getattr(c, method)(
                user_id,
                since_id=since_id,
                pagination_token=pagination_token,
                max_results=max_results,
                tweet_fields=TWEET_FIELDS,
                expansions=POST_EXPANSIONS,
                user_fields=USER_FIELDS,
                user_auth=self._user_auth,
                **extra,
            ),
        )
        return self._post_page(response)


SANDBOX_CREDENTIALS = Credentials(kind="sandbox", access_token="sandbox-token", user_id=None, username=None)


def open_client(
    credentials: Credentials | None,
    sandbox_state: Path | None,
    retry_backoff: float = 0.5,
    *,
    save_credentials: Callable[[Credentials], None] | None = None,
    credentials_path: Path | None = None,
    shared_credentials: SharedPlace | None = None,
) -> XClient:
    """The client a network command uses: the sandbox when a state file is given, else X."""
    if sandbox_state is not None:
        from dmtool.x.sandbox import SandboxAdapter

        return TweepyClient(
            SANDBOX_CREDENTIALS, adapter=SandboxAdapter(sandbox_state), retry_backoff=retry_backoff
        )
    if credentials is None:
        raise AuthError("no X credentials for this profile", hint="run `dmtool auth login`")
    return TweepyClient(credentials, retry_backoff=retry_backoff, save_credentials=save_credentials,
                        credentials_path=credentials_path, shared_credentials=shared_credentials)
