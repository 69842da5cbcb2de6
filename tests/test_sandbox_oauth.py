"""The sandbox X's OAuth 2.0: the authorize redirect and POST /2/oauth2/token
(authorization_code and refresh_token grants, rotating refresh tokens), as X
plays them, through the same requests transport tweepy uses."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from dmtool.x.sandbox import SandboxAdapter, SandboxWorld

CALLBACK = "http://127.0.0.1:8765/callback"
SCOPE = "dm.read dm.write tweet.read users.read offline.access"
VERIFIER = "v" * 50 + "-verifier-of-this-login"


def challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@pytest.fixture
def world(tmp_path: Path) -> SandboxWorld:
    w = SandboxWorld.create(tmp_path / "x.json", clock="2030-01-01T12:00:00Z")
    w.set_me("1700000000000000001", "real_me", "Real Me")
    w.register_app("public-app", [CALLBACK])
    w.register_app("web-app", [CALLBACK], client_secret="web-app-secret-123")
    return w


@pytest.fixture
def http(world: SandboxWorld) -> requests.Session:
    s = requests.Session()
    adapter = SandboxAdapter(world.path)
    for prefix in ("https://x.com/", "https://api.x.com/"):
        s.mount(prefix, adapter)
    return s


def authorize(http: requests.Session, client_id: str = "public-app", **over: str) -> requests.Response:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK,
              "scope": SCOPE, "state": "state-123", "code_challenge": challenge(VERIFIER),
              "code_challenge_method": "S256", **over}
    return http.get("https://x.com/i/oauth2/authorize?" + urlencode(params), allow_redirects=False)


def code_of(r: requests.Response) -> str:
    assert r.status_code == 302, r.text
    query = parse_qs(urlsplit(r.headers["location"]).query)
    assert query["state"] == ["state-123"]
    return query["code"][0]


def token(http: requests.Session, auth: Any = None, **form: str) -> requests.Response:
    return http.post("https://api.x.com/2/oauth2/token", data=form, auth=auth)


def exchange(http: requests.Session, code: str, verifier: str = VERIFIER,
             client_id: str = "public-app") -> requests.Response:
    return token(http, grant_type="authorization_code", code=code, redirect_uri=CALLBACK,
                 code_verifier=verifier, client_id=client_id)


def test_authorize_redirects_to_the_callback_with_state_and_code(http: requests.Session) -> None:
    r = authorize(http)
    assert r.headers["location"].startswith(CALLBACK + "?state=state-123&code=")
    assert code_of(r).startswith("sandbox-code-")


@pytest.mark.parametrize("over,why", [
    ({"client_id": "nobody"}, "unknown client_id"),
    ({"redirect_uri": "http://127.0.0.1:9999/elsewhere"}, "redirect_uri does not match"),
])
def test_authorize_never_redirects_to_an_unregistered_place(http: requests.Session, over: dict[str, str],
                                                            why: str) -> None:
    r = authorize(http, **over)
    assert r.status_code == 400 and "location" not in r.headers
    assert why in r.json()["error_description"]


def test_authorize_without_pkce_or_a_denial_redirects_an_error(http: requests.Session,
                                                               world: SandboxWorld) -> None:
    r = authorize(http, code_challenge="")
    assert "error=invalid_request" in r.headers["location"]
    world.set_oauth_decision("deny")
    r = authorize(http)
    assert r.status_code == 302
    assert parse_qs(urlsplit(r.headers["location"]).query) == {
        "error": ["access_denied"], "state": ["state-123"]}


def test_the_code_grant_checks_verifier_and_is_good_once(http: requests.Session,
                                                         world: SandboxWorld) -> None:
    code = code_of(authorize(http))
    r = exchange(http, code, verifier="w" * 60)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = exchange(http, code)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 7200
    assert set(body["scope"].split()) == set(SCOPE.split())
    assert body["access_token"].startswith("sandbox-access-")
    assert body["refresh_token"].startswith("sandbox-refresh-")
    assert exchange(http, code).status_code == 400  # a code is good once
    assert world.oauth()["grants"] == {"authorization_code": 1, "refresh_token": 0}


def test_a_code_lapses_after_30_seconds(http: requests.Session, world: SandboxWorld) -> None:
    code = code_of(authorize(http))
    world.advance_clock(31)
    assert exchange(http, code).status_code == 400


def test_a_confidential_client_must_send_its_secret(http: requests.Session) -> None:
    code = code_of(authorize(http, client_id="web-app"))
    r = exchange(http, code, client_id="web-app")
    assert r.status_code == 401 and r.json()["error"] == "unauthorized_client"
    r = token(http, auth=("web-app", "wrong"), grant_type="authorization_code", code=code,
              redirect_uri=CALLBACK, code_verifier=VERIFIER)
    assert r.status_code == 401
    r = token(http, auth=("web-app", "web-app-secret-123"), grant_type="authorization_code",
              code=code, redirect_uri=CALLBACK, code_verifier=VERIFIER)
    assert r.status_code == 200, r.text


def test_refresh_tokens_rotate_and_a_used_one_is_refused(http: requests.Session,
                                                         world: SandboxWorld) -> None:
    first = exchange(http, code_of(authorize(http))).json()
    r = token(http, grant_type="refresh_token", refresh_token=first["refresh_token"],
              client_id="public-app")
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    # X retires a refresh token once used: a second use is refused
    r = token(http, grant_type="refresh_token", refresh_token=first["refresh_token"],
              client_id="public-app")
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_request",
                        "error_description": "Value passed for the token was invalid."}
    assert world.live_refresh_tokens() == [second["refresh_token"]]
    assert world.oauth()["grants"]["refresh_token"] == 1
    # another app cannot spend it either
    r = token(http, auth=("web-app", "web-app-secret-123"), grant_type="refresh_token",
              refresh_token=second["refresh_token"])
    assert r.status_code == 400


def test_issued_access_tokens_are_checked_on_api_calls(http: requests.Session,
                                                       world: SandboxWorld) -> None:
    pair = world.issue_tokens("public-app")

    def me(bearer: str) -> int:
        return http.get("https://api.x.com/2/users/me",
                        headers={"Authorization": f"Bearer {bearer}"}).status_code

    assert me(pair["access_token"]) == 200
    assert me("sandbox-access-999-never-issued") == 401
    assert me("any-other-token") == 200  # worlds that never log in work as before
    world.advance_clock(7200)
    assert me(pair["access_token"]) == 401  # expired after two hours, as X's do
