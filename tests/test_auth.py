"""`dmtool auth login|status|logout`: the real tweepy client verifies the keys
against the sandbox X; no secret ever reaches stdout, stderr or a -v log."""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from dmtool.paths import Paths
from dmtool.x.sandbox import SandboxAdapter, SandboxWorld
from tests.conftest import Result

Cli = Callable[..., Result]
ME = ("1700000000000000001", "real_me", "Real Me")
ENV = {
    "X_API_KEY": "apikey-Q2h8sLkq93JdZ0aa",
    "X_API_SECRET": "apisecret-Vb81nd92kdlA0s9dk3LmQpz",
    "X_ACCESS_TOKEN": "1700000000000000001-accesstokenXyZ123abc",
    "X_ACCESS_TOKEN_SECRET": "tokensecret-9sd8f7g6h5j4k3l2",
}
SECRETS = list(ENV.values())


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SandboxWorld:
    """A sandbox X that answers the client `auth login` builds to verify keys."""
    from dmtool.cli import auth
    from dmtool.x.client import TweepyClient

    w = SandboxWorld.create(tmp_path / "x.json")
    w.set_me(*ME)
    monkeypatch.setattr(auth, "open_client", lambda creds: TweepyClient(
        creds, adapter=SandboxAdapter(w.path), retry_backoff=0))
    return w


def set_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)


def clear_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ENV:
        monkeypatch.delenv(k, raising=False)


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text
            assert secret[4:-4] not in text  # not even the unmasked middle


def creds_file() -> Path:
    return Paths.resolve("default").credentials_file


def test_oauth1_login_from_env_verifies_and_saves_privately(cli: Cli, world: SandboxWorld,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch)
    r = cli("auth", "login", "--oauth1")
    assert r.exit_code == 0, r
    assert "logged in as @real_me" in r.stderr
    assert_no_secret(r.stdout, r.stderr)
    assert [q["path"] for q in world.requests_log()] == ["/2/users/me"]

    path = creds_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    text = path.read_text()
    assert 'kind = "oauth1"' in text and f'user_id = "{ME[0]}"' in text
    assert ENV["X_API_SECRET"] in text  # the file is the one place the secret lives


def test_verbose_login_logs_requests_but_no_secret(cli: Cli, world: SandboxWorld,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch)
    r = cli("-v", "auth", "login", "--oauth1")
    assert r.exit_code == 0, r
    assert "/2/users/me [users] -> 200" in r.stderr  # -v really logs the X traffic
    assert_no_secret(r.stdout, r.stderr)


def test_status_masks_secrets_and_names_the_source(cli: Cli, world: SandboxWorld,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch)
    assert cli("auth", "login", "--oauth1").exit_code == 0

    # The environment overrides the file; its keys carry no account, the store remembers it.
    r = cli("auth", "status", "--json")
    assert r.exit_code == 0, r
    data = r.json()
    assert data["backend"] == "x" and data["source"] == "env" and data["kind"] == "oauth1"
    assert (data["user_id"], data["username"]) == (ME[0], ME[1])
    assert_no_secret(r.stdout, r.stderr)

    clear_env(monkeypatch)
    r = cli("auth", "status", "--json")
    data = r.json()
    assert {"backend", "user_id", "username", "kind", "source", "expires_at"} <= set(data)
    assert data["source"] == "file" and data["expires_at"] is None
    assert data["api_key"] == "****Z0aa"
    assert data["access_token_secret"] == "****k3l2"
    assert_no_secret(r.stdout, r.stderr)

    r = cli("auth", "status")
    assert r.exit_code == 0
    assert "@real_me" in r.stdout and str(creds_file()) in r.stdout
    assert_no_secret(r.stdout, r.stderr)


def test_logout_removes_the_credentials(cli: Cli, world: SandboxWorld,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch)
    assert cli("auth", "login", "--oauth1").exit_code == 0
    clear_env(monkeypatch)
    r = cli("auth", "logout")
    assert r.exit_code == 0 and "logged out" in r.stderr
    assert not creds_file().exists()
    assert cli("auth", "status").exit_code == 4
    assert "no saved credentials" in cli("auth", "logout").stderr


def test_no_credentials_exit_4_with_a_hint(cli: Cli) -> None:
    r = cli("auth", "status")
    assert r.exit_code == 4
    assert r.stderr.startswith("error: no X credentials") and "dmtool auth login" in r.stderr
    r = cli("auth", "status", "--json")
    assert r.exit_code == 4 and r.stdout == ""
    assert json.loads(r.stderr)["error"]["code"] == "E_AUTH"
    r = cli("sync")
    assert r.exit_code == 4


def test_login_off_a_terminal_needs_a_client_id(cli: Cli) -> None:
    r = cli("auth", "login")
    assert r.exit_code == 2
    assert "--client-id" in r.stderr and "X_CLIENT_ID" in r.stderr


def test_oauth1_login_off_a_terminal_names_the_missing_keys(cli: Cli,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_API_KEY", ENV["X_API_KEY"])
    r = cli("auth", "login", "--oauth1")
    assert r.exit_code == 2
    assert "X_API_SECRET" in r.stderr and "X_ACCESS_TOKEN_SECRET" in r.stderr
    assert_no_secret(r.stdout, r.stderr)


def test_refused_authorisation_exits_4(cli: Cli) -> None:
    r = cli("auth", "login", "--client-id", "abc123", "--print-url")
    assert r.exit_code == 0 and "client_id=abc123" in r.stdout  # the authorize address
    state = parse_qs(urlsplit(r.stdout.strip()).query)["state"][0]
    r = cli("auth", "login", "--redirect-url",
            f"http://127.0.0.1:8765/callback?error=access_denied&state={state}")
    assert r.exit_code == 4
    assert "did not authorise" in r.stderr
    assert r.stdout == ""


def test_oauth2_login_saves_tokens_and_status_shows_expiry(cli: Cli, world: SandboxWorld,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole OAuth 2.0 login in process, on the sandbox X: authorize,
    code exchange, who-am-I, saved; status shows expiry and masks the tokens."""
    from tests.xnet import approve, route_x_to_sandbox

    world.register_app("abc123")
    r = cli("auth", "login", "--client-id", "abc123", "--print-url")
    assert r.exit_code == 0, r
    assert "code_challenge=" in r.stdout and "redirect_uri=http" in r.stdout
    undo = route_x_to_sandbox(world.path)
    try:
        r = cli("auth", "login", "--redirect-url", approve(world.path, r.stdout.strip()))
    finally:
        undo()
    assert r.exit_code == 0, r
    [refresh] = world.live_refresh_tokens()
    [access] = world.oauth()["access_tokens"]
    assert refresh in creds_file().read_text()
    r = cli("auth", "status", "--json")
    data = r.json()
    assert data["kind"] == "oauth2" and data["client_id"] == "abc123"
    expires = datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00")).timestamp()
    assert abs(expires - (time.time() + 7200)) < 120  # X's access tokens last two hours
    assert data["user_id"] == ME[0]
    assert data["refresh_token"] == "****" + refresh[-4:]
    assert access not in r.stdout and refresh not in r.stdout
    assert "refreshed automatically" in cli("auth", "status").stdout


def test_login_refuses_a_second_account_in_one_profile(cli: Cli, world: SandboxWorld,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch)
    assert cli("auth", "login", "--oauth1").exit_code == 0
    os.remove(creds_file())
    world.set_me("1700000000000000002", "other_acct", "Other")
    r = cli("auth", "login", "--oauth1")
    assert r.exit_code == 4
    assert "@real_me" in r.stderr and "--profile" in r.stderr
    assert not creds_file().exists()


def test_sandbox_profile_says_sandbox(cli: Cli) -> None:
    assert cli("config", "set", "backend", "sandbox").exit_code == 0
    r = cli("auth", "status")
    assert r.exit_code == 0 and r.stdout.startswith("sandbox: ")
    data = cli("auth", "status", "--json").json()
    assert data["backend"] == "sandbox" and data["kind"] == "sandbox"
    assert data["username"] == "you"
    assert cli("auth", "login").stderr.startswith("sandbox: ")
    assert cli("auth", "logout").stderr.startswith("sandbox: ")


def test_status_in_a_real_process_prints_no_secret(run: Callable[..., Result]) -> None:
    r = run("auth", "status", "--json", env=ENV)
    assert r.exit_code == 0, r
    assert json.loads(r.stdout)["source"] == "env"
    assert_no_secret(r.stdout, r.stderr)


def test_oauth1_login_asks_for_missing_keys_with_hidden_input(cli: Cli, world: SandboxWorld,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from dmtool import output

    set_env(monkeypatch)
    monkeypatch.delenv("X_ACCESS_TOKEN_SECRET")
    monkeypatch.setattr(output, "interactive", lambda: True)
    r = cli("auth", "login", "--oauth1", input=ENV["X_ACCESS_TOKEN_SECRET"] + "\n")
    assert r.exit_code == 0, r
    assert "X_ACCESS_TOKEN_SECRET" in r.stdout  # the prompt, without the typed value
    assert_no_secret(r.stdout, r.stderr)
    assert ENV["X_ACCESS_TOKEN_SECRET"] in creds_file().read_text()


def test_login_honours_and_records_the_users_pause(cli: Cli, world: SandboxWorld,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Found in review: login checks the credentials with a users lookup
    (GET /2/users/me) but ignored the users pause and did not record a 429."""
    set_env(monkeypatch)
    world.fail_next(429, method="GET", path_contains="/2/users/me", reset_in=600)
    r = cli("auth", "login", "--oauth1")
    assert r.exit_code == 5 and "X rate limit" in r.stderr, r
    world.reset_requests_log()
    r = cli("auth", "login", "--oauth1")
    assert r.exit_code == 5 and "X rate limit on looking up users" in r.stderr, r
    assert world.requests_log() == [] and not creds_file().exists()
    assert "looking up users paused until" in cli("auth", "status").stdout


def test_a_folder_where_the_credentials_file_should_be_is_one_clear_line(
        cli: Cli, world: SandboxWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found in review (issue 11): `auth logout` with credentials.toml a folder
    ended in IsADirectoryError. Every auth command says what is wrong instead."""
    creds_file().mkdir(parents=True)
    r = cli("auth", "logout")
    assert r.exit_code == 4, r
    assert r.stderr.splitlines() == [
        f"error: cannot remove credentials file {creds_file()}: it is a folder",
        "hint: remove or rename it yourself, then run dmtool auth login"]
    r = cli("auth", "status")
    assert r.exit_code == 4 and r.stderr.startswith(f"error: cannot read credentials file {creds_file()}")
    set_env(monkeypatch)
    r = cli("auth", "login", "--oauth1")
    assert r.exit_code == 4 and r.stderr.startswith(f"error: cannot write {creds_file()}")
    assert "Traceback" not in r.stderr and creds_file().is_dir()
