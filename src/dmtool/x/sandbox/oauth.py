"""X's OAuth 2.0 as the sandbox plays it: the authorize redirect, the token
endpoint (authorization_code and refresh_token grants), and the check of the
access tokens it issued.

As X does: an app has a client id, its exact callback addresses and, for a
confidential client, a secret sent with HTTP Basic; an authorization code is
good once, for 30 seconds, and only with the PKCE verifier of its challenge;
a refresh token is good once: each refresh retires it and issues a new pair
(rotation), so a second use of the same one is refused. The "user" of the
authorize page approves unless the world says to deny.

Access tokens it issued (`sandbox-access-...`) are checked on every API call
(unknown or expired: 401); any other bearer token or OAuth 1.0a signature is
taken as before, so worlds that never log in are unchanged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from dmtool.x.sandbox.replies import Reply, problem
from dmtool.x.sandbox.state import State

AUTHORIZE_PATH = "/i/oauth2/authorize"
TOKEN_PATH = "/2/oauth2/token"
CODE_TTL_S = 30
ACCESS_TTL_S = 7200
ACCESS_PREFIX = "sandbox-access-"
DEFAULT_SCOPES = ("dm.read", "dm.write", "tweet.read", "users.read", "offline.access")
KNOWN_SCOPES = frozenset({
    "tweet.read", "tweet.write", "tweet.moderate.write", "users.read", "follows.read",
    "follows.write", "offline.access", "space.read", "mute.read", "mute.write", "like.read",
    "like.write", "list.read", "list.write", "block.read", "block.write", "bookmark.read",
    "bookmark.write", "dm.read", "dm.write", "media.write", "users.email",
})


def empty_oauth() -> dict[str, Any]:
    return {
        "apps": {},  # client_id -> {"redirect_uris": [...], "client_secret": str | None}
        "decision": "approve",  # what the user answers on the authorize page
        "codes": {},  # code -> {client_id, redirect_uri, challenge, method, scope, issued, used}
        "access_tokens": {},  # token -> {client_id, scope, expires}
        "refresh_tokens": {},  # token -> {client_id, scope, used}
        "grants": {"authorization_code": 0, "refresh_token": 0},
    }


def oauth_state(state: State) -> dict[str, Any]:
    section: dict[str, Any] = state.setdefault("oauth", empty_oauth())
    for key, value in empty_oauth().items():
        section.setdefault(key, value)
    return section


def _epoch(now: datetime) -> int:
    return int(now.timestamp())


def _oauth_error(status: int, error: str, description: str) -> Reply:
    return Reply(status, {"error": error, "error_description": description})


def _challenge(verifier: str, method: str) -> str:
    if method == "plain":
        return verifier
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _with_query(uri: str, params: dict[str, str]) -> str:
    return uri + ("&" if urlsplit(uri).query else "?") + urlencode(params)


# --- the authorize page -------------------------------------------------------------


def authorize(state: State, query: dict[str, str], now: datetime) -> Reply:
    """GET https://x.com/i/oauth2/authorize: as if the user approved (or denied) at once.

    A bad client or callback address gets an error page and no redirect: X never
    sends a code to an address the app did not register.
    """
    oauth = oauth_state(state)
    client_id = query.get("client_id", "")
    app = oauth["apps"].get(client_id)
    if app is None:
        return _oauth_error(400, "invalid_request", "Something went wrong: unknown client_id")
    redirect_uri = query.get("redirect_uri", "")
    if redirect_uri not in app["redirect_uris"]:
        return _oauth_error(400, "invalid_request",
                            "Something went wrong: redirect_uri does not match the app's callback URLs")
    app_state = query.get("state")
    scope = query.get("scope", "").split()
    method = query.get("code_challenge_method", "plain")
    problems = []
    if query.get("response_type") != "code":
        problems.append("response_type must be code")
    if not app_state:
        problems.append("state is required")
    if not query.get("code_challenge") or method not in ("S256", "plain"):
        problems.append("a PKCE code_challenge (S256 or plain) is required")
    if not scope or not set(scope) <= KNOWN_SCOPES:
        problems.append("scope must list known scopes")
    if problems:
        params = {"error": "invalid_request", "error_description": "; ".join(problems)}
        if app_state:
            params["state"] = app_state
        return Reply(302, None, headers={"location": _with_query(redirect_uri, params)})
    if oauth["decision"] != "approve":
        return Reply(302, None, headers={"location": _with_query(
            redirect_uri, {"error": "access_denied", "state": str(app_state)})})
    code = "sandbox-code-" + secrets.token_urlsafe(24)
    oauth["codes"][code] = {
        "client_id": client_id, "redirect_uri": redirect_uri,
        "challenge": query["code_challenge"], "method": method, "scope": " ".join(scope),
        "issued": _epoch(now), "used": False,
    }
    return Reply(302, None, headers={"location": _with_query(
        redirect_uri, {"state": str(app_state), "code": code})})


# --- the token endpoint ---------------------------------------------------------------


def _client(oauth: dict[str, Any], form: dict[str, str], authorization: str | None) -> str | None:
    """The authenticated client id: Basic id:secret for a confidential app, else the
    form's client_id for a public one; None when neither holds."""
    if authorization and authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:].strip()).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        client_id, _, secret = decoded.partition(":")
        app = oauth["apps"].get(client_id)
        if app is None or not app.get("client_secret") or app["client_secret"] != secret:
            return None
        return client_id
    client_id = form.get("client_id", "")
    app = oauth["apps"].get(client_id)
    if app is None or app.get("client_secret"):
        return None  # unknown, or confidential without its secret
    return client_id


def issue(state: State, client_id: str, scope: str, now: datetime) -> dict[str, Any]:
    """A new token pair (a refresh token only with offline.access), recorded as live."""
    oauth = oauth_state(state)
    state["tokens_issued"] = state.get("tokens_issued", 0) + 1
    n = state["tokens_issued"]
    access = f"{ACCESS_PREFIX}{n}-{secrets.token_urlsafe(18)}"
    oauth["access_tokens"][access] = {"client_id": client_id, "scope": scope,
                                      "expires": _epoch(now) + ACCESS_TTL_S}
    body: dict[str, Any] = {"token_type": "bearer", "expires_in": ACCESS_TTL_S,
                            "access_token": access, "scope": scope}
    if "offline.access" in scope.split():
        refresh = f"sandbox-refresh-{n}-{secrets.token_urlsafe(18)}"
        oauth["refresh_tokens"][refresh] = {"client_id": client_id, "scope": scope, "used": False}
        body["refresh_token"] = refresh
    return body


def token(state: State, body: bytes, authorization: str | None, now: datetime) -> Reply:
    """POST https://api.x.com/2/oauth2/token."""
    oauth = oauth_state(state)
    form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    client_id = _client(oauth, form, authorization)
    if client_id is None:
        return _oauth_error(401, "unauthorized_client", "Missing valid authorization header")
    grant = form.get("grant_type")
    if grant == "authorization_code":
        return _code_grant(state, oauth, form, client_id, now)
    if grant == "refresh_token":
        return _refresh_grant(state, oauth, form, client_id, now)
    return _oauth_error(400, "invalid_request", "Value passed for the grant_type was invalid.")


def _code_grant(state: State, oauth: dict[str, Any], form: dict[str, str], client_id: str,
                now: datetime) -> Reply:
    code = oauth["codes"].get(form.get("code", ""))
    invalid = _oauth_error(400, "invalid_request",
                           "Value passed for the authorization code was invalid.")
    if code is None or code["used"] or code["client_id"] != client_id:
        return invalid
    if _epoch(now) - code["issued"] > CODE_TTL_S:
        return invalid
    if form.get("redirect_uri") != code["redirect_uri"]:
        return invalid
    verifier = form.get("code_verifier", "")
    if not verifier or _challenge(verifier, code["method"]) != code["challenge"]:
        return _oauth_error(400, "invalid_request", "Value passed for the code_verifier was invalid.")
    code["used"] = True
    oauth["grants"]["authorization_code"] += 1
    return Reply(200, issue(state, client_id, code["scope"], now))


def _refresh_grant(state: State, oauth: dict[str, Any], form: dict[str, str], client_id: str,
                   now: datetime) -> Reply:
    held = oauth["refresh_tokens"].get(form.get("refresh_token", ""))
    if held is None or held["used"] or held["client_id"] != client_id:
        return _oauth_error(400, "invalid_request", "Value passed for the token was invalid.")
    held["used"] = True  # rotation: this refresh token is spent
    oauth["grants"]["refresh_token"] += 1
    return Reply(200, issue(state, client_id, held["scope"], now))


# --- access tokens on API calls ------------------------------------------------------------


def check_bearer(state: State, authorization: str, now: datetime) -> Reply | None:
    """401 for an access token this sandbox issued that is unknown or expired; None otherwise."""
    if not authorization.startswith("Bearer " + ACCESS_PREFIX):
        return None
    held = oauth_state(state)["access_tokens"].get(authorization[len("Bearer "):].strip())
    if held is None or held["expires"] <= _epoch(now):
        return problem(401, "Unauthorized", "Unauthorized")
    return None
