"""Credentials: file safety, environment override, masking, refresh and PKCE login (offline)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import traceback
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import requests.adapters
from requests.structures import CaseInsensitiveDict

from dmtool.credentials import (
    ENV_OAUTH1,
    SCOPES,
    Credentials,
    delete_credentials,
    load_credentials,
    mask,
    refresh_if_needed,
    save_credentials,
)
from dmtool.errors import AuthError, ConfigError, Unavailable
from dmtool.oauth_login import code_from, exchange, start

ACCESS = "AAAA-access-token-very-secret-0001"
REFRESH = "RRRR-refresh-token-very-secret-0002"
CLIENT_SECRET = "CCCC-client-secret-very-secret-0003"
SECRETS = (ACCESS, REFRESH, CLIENT_SECRET)


def oauth2(**kw: Any) -> Credentials:
    values: dict[str, Any] = {
        "kind": "oauth2",
        "client_id": "client-123",
        "client_secret": CLIENT_SECRET,
        "access_token": ACCESS,
        "refresh_token": REFRESH,
        "expires_at": 1_900_000_000,
        "user_id": "42",
        "username": "me_account",
    }
    values.update(kw)
    return Credentials(**values)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- file ------------------------------------------------------------------------------------


def test_save_creates_0600_file_in_0700_dir_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "profiles" / "default" / "credentials.toml"
    old_umask = os.umask(0)  # even a permissive umask must not widen the file
    try:
        save_credentials(path, oauth2())
    finally:
        os.umask(old_umask)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert load_credentials(path, {}) == oauth2()
    assert not [p for p in path.parent.iterdir() if p.name != path.name]  # no temp files left


def test_save_on_a_full_disk_says_disk_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As every write of dmtool's (issue 11 point 6): "disk full", nothing left behind."""
    import errno

    from dmtool.errors import DiskFull

    path = tmp_path / "credentials.toml"
    save_credentials(path, oauth2())
    before = path.read_bytes()

    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(DiskFull, match="disk full"):
        save_credentials(path, oauth2(access_token="new-token-after-refresh-0004"))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["credentials.toml"]


def test_the_refresh_lock_says_where_it_cannot_write(tmp_path: Path) -> None:
    from dmtool.credentials import credentials_lock
    from dmtool.errors import StoreError

    blocker = tmp_path / "config"
    blocker.write_text("a file where the profile's folder should be")
    with pytest.raises(StoreError, match="cannot write to"), \
            credentials_lock(blocker / "credentials.toml"):
        pass


def test_save_replaces_a_too_open_file(tmp_path: Path) -> None:
    path = tmp_path / "credentials.toml"
    path.write_text("old")
    path.chmod(0o644)
    save_credentials(path, oauth2())
    assert mode(path) == 0o600
    assert load_credentials(path, {}) == oauth2()


def test_missing_file_is_none_and_delete(tmp_path: Path) -> None:
    path = tmp_path / "credentials.toml"
    assert load_credentials(path, {}) is None
    assert delete_credentials(path) == []
    save_credentials(path, oauth2())
    assert delete_credentials(path) == ["file"]
    assert not path.exists()


def test_env_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "credentials.toml"
    path.write_text("this is not toml = = =")  # ignored when the environment is complete
    env = {name: f"value-of-{name.lower()}" for name in ENV_OAUTH1}
    creds = load_credentials(path, env)
    assert creds is not None
    assert creds.kind == "oauth1" and creds.source == "env"
    assert creds.api_key == "value-of-x_api_key"
    assert creds.access_token_secret == "value-of-x_access_token_secret"


def test_partial_env_is_a_config_error_without_values(tmp_path: Path) -> None:
    env = {"X_API_KEY": "k-secret-value", "X_API_SECRET": "s-secret-value"}
    with pytest.raises(ConfigError) as info:
        load_credentials(tmp_path / "none.toml", env)
    assert "X_ACCESS_TOKEN" in info.value.message
    assert "secret-value" not in info.value.message + (info.value.hint or "")
    assert info.value.exit_code == 4


def test_client_id_from_env_fills_an_oauth2_file(tmp_path: Path) -> None:
    path = tmp_path / "credentials.toml"
    save_credentials(path, oauth2(client_id=None, client_secret=None))
    creds = load_credentials(path, {"X_CLIENT_ID": "from-env", "X_CLIENT_SECRET": "cs"})
    assert creds is not None and creds.client_id == "from-env" and creds.client_secret == "cs"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (f'kind = "oauth2"\naccess_token = "{ACCESS}\n', "not valid TOML"),
        (f'kind = "magic"\naccess_token = "{ACCESS}"\n', "'kind'"),
        ('kind = "oauth2"\n', "missing access_token"),
        (f'kind = "oauth1"\napi_key = "{ACCESS}"\n', "missing api_secret"),
        (f'kind = "oauth2"\naccess_token = ["{ACCESS}"]\n', "'access_token' must be a string"),
        (f'kind = "oauth2"\naccess_token = "{ACCESS}"\nexpires_at = "soon"\n', "expires_at"),
        (b"\xff\xfe binary", "not UTF-8"),
    ],
)
def test_malformed_file_is_config_error_naming_file_not_contents(
    tmp_path: Path, content: str | bytes, expected: str
) -> None:
    path = tmp_path / "credentials.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_credentials(path, {})
    err = info.value
    assert str(path) in err.message
    assert expected in err.message
    assert err.exit_code == 4
    shown = err.message + (err.hint or "") + "".join(traceback.format_exception(err))
    assert ACCESS not in shown


# --- masking ---------------------------------------------------------------------------------


def test_mask() -> None:
    assert mask(None) == ""
    assert mask("short") == "****"
    assert mask("abcdefghijklmnopqrstuvwxyz") == "****wxyz"


def test_repr_str_and_describe_never_show_secrets() -> None:
    creds = oauth2()
    oauth1 = Credentials(
        kind="oauth1",
        api_key="KKKK-api-key-very-secret-0004",
        api_secret="SSSS-api-secret-very-secret-0005",
        access_token=ACCESS,
        access_token_secret="TTTT-token-secret-very-secret-06",
    )
    for c in (creds, oauth1):
        shown = repr(c) + str(c) + f"{c}" + json.dumps(c.describe())
        for secret in (*SECRETS, oauth1.api_key, oauth1.api_secret, oauth1.access_token_secret):
            assert secret is not None and secret not in shown
    assert "me_account" in repr(creds) and "client-123" in repr(creds)
    described = creds.describe()
    assert described["expires_at"] == "2030-03-17T17:46:40Z"
    assert described["access_token"] == mask(ACCESS)


# --- refresh ---------------------------------------------------------------------------------


class TokenEndpoint(requests.adapters.BaseAdapter):
    """A fake X token endpoint: records each request and answers from a queue."""

    def __init__(self, *answers: tuple[int, dict[str, Any]]) -> None:
        super().__init__()
        self.answers = list(answers)
        self.requests: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        self.requests.append(request)
        status, body = self.answers.pop(0)
        response = requests.Response()
        response.status_code = status
        response.headers = CaseInsensitiveDict({"content-type": "application/json"})
        response._content = json.dumps(body).encode()
        response.url = request.url or ""
        response.request = request
        response.reason = "OK" if status == 200 else "Error"
        return response

    def close(self) -> None:
        pass

    def form(self, i: int = -1) -> dict[str, str]:
        body = self.requests[i].body
        text = body.decode() if isinstance(body, bytes) else str(body)
        return {k: v[0] for k, v in parse_qs(text).items()}


NEW_TOKEN = {
    "token_type": "bearer",
    "expires_in": 7200,
    "access_token": "new-access-token-0000000000",
    "refresh_token": "new-refresh-token-000000000",
    "scope": " ".join(SCOPES),
}


def test_no_refresh_when_far_from_expiry() -> None:
    endpoint = TokenEndpoint()
    creds = oauth2(expires_at=10_000)
    assert refresh_if_needed(creds, 10_000 - 301, None, adapter=endpoint) is creds
    assert endpoint.requests == []
    oauth1 = Credentials(kind="oauth1", api_key="a", api_secret="b", access_token="c")
    assert refresh_if_needed(oauth1, 0, None, force=True, adapter=endpoint) is oauth1


def test_refresh_within_five_minutes_saves_new_tokens() -> None:
    endpoint = TokenEndpoint((200, NEW_TOKEN))
    saved: list[Credentials] = []
    creds = oauth2(expires_at=10_000)
    fresh = refresh_if_needed(creds, 10_000 - 299, saved.append, adapter=endpoint)
    assert fresh.access_token == NEW_TOKEN["access_token"]
    assert fresh.refresh_token == NEW_TOKEN["refresh_token"]
    assert fresh.expires_at == 10_000 - 299 + 7200
    assert fresh.user_id == "42" and fresh.client_id == "client-123"
    assert saved == [fresh]
    [request] = endpoint.requests
    assert request.url == "https://api.x.com/2/oauth2/token"
    form = endpoint.form()
    assert form["grant_type"] == "refresh_token"
    assert form["refresh_token"] == REFRESH
    assert form["client_id"] == "client-123"
    # confidential client: HTTP Basic with id and secret
    expected = base64.b64encode(f"client-123:{CLIENT_SECRET}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"


def test_public_client_refresh_and_kept_refresh_token() -> None:
    token = {k: v for k, v in NEW_TOKEN.items() if k != "refresh_token"}
    endpoint = TokenEndpoint((200, token))
    creds = oauth2(client_secret=None)
    fresh = refresh_if_needed(creds, 0, None, force=True, adapter=endpoint)
    assert fresh.refresh_token == REFRESH
    assert "Authorization" not in endpoint.requests[0].headers


def test_env_credentials_are_refreshed_but_not_saved() -> None:
    endpoint = TokenEndpoint((200, NEW_TOKEN))
    saved: list[Credentials] = []
    fresh = refresh_if_needed(oauth2(source="env"), 0, saved.append, force=True, adapter=endpoint)
    assert fresh.access_token == NEW_TOKEN["access_token"] and saved == []


def test_refresh_refused_is_auth_error_without_secrets() -> None:
    endpoint = TokenEndpoint(
        (400, {"error": "invalid_request", "error_description": "Value passed was invalid."})
    )
    with pytest.raises(AuthError) as info:
        refresh_if_needed(oauth2(), 0, None, force=True, adapter=endpoint)
    err = info.value
    assert "invalid_request" in err.message
    assert "dmtool auth login" in (err.hint or "")
    shown = repr(err) + str(err) + "".join(traceback.format_exception(err))
    assert all(s not in shown for s in SECRETS)


def test_refresh_server_error_is_unavailable() -> None:
    endpoint = TokenEndpoint((503, {"title": "Service Unavailable"}))
    with pytest.raises(Unavailable):
        refresh_if_needed(oauth2(), 0, None, force=True, adapter=endpoint)


def test_refresh_without_refresh_token_or_client_id() -> None:
    with pytest.raises(AuthError, match="no refresh token"):
        refresh_if_needed(oauth2(refresh_token=None), 0, None, force=True)
    with pytest.raises(AuthError, match="client id"):
        refresh_if_needed(oauth2(client_id=None), 0, None, force=True)


# --- PKCE login -------------------------------------------------------------------------------


def finish(login: Any, redirected_to: str, endpoint: TokenEndpoint, now: float | None = None) -> Credentials:
    return exchange(login, code_from(login, redirected_to), adapter=endpoint, now=now)


def test_pkce_login_round_trip() -> None:
    redirect = "http://127.0.0.1:8765/callback"
    login = start("client-123", None, redirect)
    url = login.url
    assert url.startswith("https://x.com/i/oauth2/authorize?")
    query = parse_qs(urlsplit(url).query)
    assert query["client_id"] == ["client-123"]
    assert query["redirect_uri"] == [redirect]
    assert query["code_challenge_method"] == ["S256"]
    expected = base64.urlsafe_b64encode(hashlib.sha256(login.code_verifier.encode()).digest())
    assert query["code_challenge"] == [expected.rstrip(b"=").decode()]
    assert set(query["scope"][0].split()) == set(SCOPES)
    state = query["state"][0]
    assert login.code_verifier not in url and login.code_verifier not in repr(login)

    endpoint = TokenEndpoint((200, NEW_TOKEN))
    creds = finish(login, f"{redirect}?state={state}&code=the-code", endpoint, now=1000)
    assert creds.kind == "oauth2" and creds.client_id == "client-123"
    assert creds.access_token == NEW_TOKEN["access_token"]
    assert creds.refresh_token == NEW_TOKEN["refresh_token"]
    assert creds.expires_at == 1000 + 7200
    form = endpoint.form()
    assert form["grant_type"] == "authorization_code"
    assert form["code"] == "the-code"
    assert form["redirect_uri"] == redirect
    assert form["code_verifier"] == login.code_verifier and 43 <= len(login.code_verifier) <= 128
    assert "Authorization" not in endpoint.requests[0].headers  # a public client


def test_pkce_login_confidential_client_keeps_secret() -> None:
    login = start("client-123", CLIENT_SECRET, "https://example.com/cb")
    endpoint = TokenEndpoint((200, NEW_TOKEN))
    creds = finish(login, f"https://example.com/cb?code=c&state={login.state}", endpoint)
    assert creds.client_secret == CLIENT_SECRET
    expected = base64.b64encode(f"client-123:{CLIENT_SECRET}".encode()).decode()
    assert endpoint.requests[0].headers["Authorization"] == f"Basic {expected}"


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        ("http://127.0.0.1/cb?error=access_denied&state=STATE", "did not authorise"),
        ("http://127.0.0.1/cb?state=STATE", "no authorisation code"),
        ("http://127.0.0.1/cb?code=abc&state=wrong-state", "another login attempt"),
        ("http://127.0.0.1/cb?code=abc", "no state"),
    ],
)
def test_pkce_login_failures(answer: str, match: str) -> None:
    login = start("client-123", None, "http://127.0.0.1/cb")
    endpoint = TokenEndpoint((200, NEW_TOKEN))
    with pytest.raises(AuthError, match=match):
        finish(login, answer.replace("STATE", login.state), endpoint)
    assert endpoint.requests == []  # refused before anything was sent to X


def test_pkce_login_refused_by_x_names_the_error_only() -> None:
    login = start("client-123", None, "http://127.0.0.1/cb")
    endpoint = TokenEndpoint((400, {"error": "invalid_request",
                                    "error_description": "Value passed was invalid."}))
    with pytest.raises(AuthError, match=r"refused the login \(invalid_request\)"):
        finish(login, f"http://127.0.0.1/cb?code=abc&state={login.state}", endpoint)


def test_pkce_login_missing_scope_is_refused() -> None:
    login = start("client-123", None, "http://127.0.0.1/cb")
    endpoint = TokenEndpoint((200, {**NEW_TOKEN, "scope": "tweet.read users.read"}))
    with pytest.raises(AuthError, match="dm.read"):
        finish(login, f"http://127.0.0.1/cb?code=c&state={login.state}", endpoint)


def test_a_refresh_done_by_another_process_is_reused_not_repeated(tmp_path: Path) -> None:
    """Found in review: two processes with the same expired token both refreshed;
    X retires a refresh token once used, so the second got 'run dmtool auth login'."""
    path = tmp_path / "credentials.toml"
    stale = oauth2(expires_at=10_000)
    save_credentials(path, stale)
    # process A refreshes and saves
    first = TokenEndpoint((200, NEW_TOKEN))
    fresh = refresh_if_needed(stale, 10_000 - 10, lambda c: save_credentials(path, c),
                              adapter=first, path=path)
    assert fresh.access_token == NEW_TOKEN["access_token"]
    # process B still holds the stale token in memory: it takes A's, asks X nothing
    second = TokenEndpoint()  # any request would fail: no answers queued
    again = refresh_if_needed(stale, 10_000 - 5, lambda c: save_credentials(path, c),
                              adapter=second, path=path)
    assert again.access_token == NEW_TOKEN["access_token"] and second.requests == []
