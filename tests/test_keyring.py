"""Secrets in the OS keyring: through the `keyring` package, with a test
backend (tests/keyring_backend.py) standing in for the Secret Service, shared
by every process of a test. Where they go, how they are read back (here and in
another process), what status says, logout, a locked keyring, a cron job with
no keyring session."""

from __future__ import annotations

import json
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dmtool.credentials import Credentials, keyring_account, load_credentials, save_credentials
from dmtool.errors import AuthError
from dmtool.paths import Paths
from dmtool.x.sandbox import SandboxAdapter, SandboxWorld
from tests.conftest import REPO, Result, dmtool_command
from tests.keyring_backend import FileKeyring, attempts_while_locked, entries
from tests.xnet import subprocess_env

Cli = Callable[..., Result]
ME = ("1700000000000000001", "real_me", "Real Me")
ENV = {
    "X_API_KEY": "apikey-Q2h8sLkq93JdZ0aa",
    "X_API_SECRET": "apisecret-Vb81nd92kdlA0s9dk3LmQpz",
    "X_ACCESS_TOKEN": "1700000000000000001-accesstokenXyZ123abc",
    "X_ACCESS_TOKEN_SECRET": "tokensecret-9sd8f7g6h5j4k3l2",
}


@pytest.fixture
def test_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A usable keyring for this test, in this process and in its subprocesses."""
    import keyring
    from keyring.backends import fail

    path = tmp_path / "keyring.json"
    monkeypatch.setenv("DMTOOL_TEST_KEYRING", str(path))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "tests.keyring_backend.FileKeyring")
    keyring.set_keyring(FileKeyring())
    yield path
    keyring.set_keyring(fail.Keyring())


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SandboxWorld:
    from dmtool.cli import auth
    from dmtool.x.client import TweepyClient

    w = SandboxWorld.create(tmp_path / "x.json")
    w.set_me(*ME)
    monkeypatch.setattr(auth, "open_client", lambda creds: TweepyClient(
        creds, adapter=SandboxAdapter(w.path), retry_backoff=0))
    return w


def creds_file() -> Path:
    return Paths.resolve("default").credentials_file


def login_oauth1(cli: Cli, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    r = cli("auth", "login", "--oauth1", *args)
    for k in ENV:
        monkeypatch.delenv(k)
    return r


def run(*args: str) -> Result:
    p = subprocess.run([*dmtool_command(), *args], cwd=REPO, capture_output=True, text=True,
                       env=subprocess_env(), stdin=subprocess.DEVNULL, timeout=60)
    return Result(p.returncode, p.stdout, p.stderr)


def lock(keyring_path: Path) -> None:
    keyring_path.with_name(keyring_path.name + ".locked").touch()


def test_store_keyring_keeps_the_secrets_out_of_the_file(cli: Cli, world: SandboxWorld,
                                                        test_keyring: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    r = login_oauth1(cli, monkeypatch, "--store", "keyring")
    assert r.exit_code == 0, r
    assert "saved to the OS keyring" in r.stderr

    account = keyring_account(creds_file())
    stored = json.loads(entries(test_keyring)["dmtool"][account])
    assert stored == {"api_key": ENV["X_API_KEY"], "api_secret": ENV["X_API_SECRET"],
                      "access_token": ENV["X_ACCESS_TOKEN"],
                      "access_token_secret": ENV["X_ACCESS_TOKEN_SECRET"]}
    text = creds_file().read_text()
    assert 'store = "keyring"' in text and f'username = "{ME[1]}"' in text
    assert not any(secret in text for secret in ENV.values())
    assert stat.S_IMODE(creds_file().stat().st_mode) == 0o600

    data = cli("auth", "status", "--json").json()
    assert data["source"] == "keyring" and data["username"] == ME[1]
    assert account in data["location"] and "'dmtool'" in data["location"]
    assert data["api_key"] == "****Z0aa"
    assert "OS keyring" in cli("auth", "status").stdout

    # Another process reads them back from the same keyring.
    r = run("auth", "status", "--json")
    assert r.exit_code == 0, r
    assert json.loads(r.stdout)["source"] == "keyring"
    assert not any(secret in r.stdout + r.stderr for secret in ENV.values())


def test_logout_removes_them_from_the_keyring_and_the_file(cli: Cli, world: SandboxWorld,
                                                          test_keyring: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    assert login_oauth1(cli, monkeypatch, "--store", "keyring").exit_code == 0
    r = cli("auth", "logout")
    assert r.exit_code == 0, r
    assert "from the OS keyring and " + str(creds_file()) in r.stderr
    assert entries(test_keyring)["dmtool"] == {} and not creds_file().exists()
    assert cli("auth", "status").exit_code == 4


def test_a_file_login_clears_a_keyring_entry_an_earlier_login_left(
        cli: Cli, world: SandboxWorld, test_keyring: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert login_oauth1(cli, monkeypatch, "--store", "keyring").exit_code == 0
    assert login_oauth1(cli, monkeypatch, "--store", "file").exit_code == 0
    assert entries(test_keyring)["dmtool"] == {}
    assert ENV["X_API_SECRET"] in creds_file().read_text()
    assert cli("auth", "status", "--json").json()["source"] == "file"


def test_the_default_is_the_keyring_on_a_terminal_and_the_file_off_one(
        cli: Cli, world: SandboxWorld, test_keyring: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dmtool import output

    assert login_oauth1(cli, monkeypatch).exit_code == 0  # CliRunner: not a terminal
    assert cli("auth", "status", "--json").json()["source"] == "file"
    monkeypatch.setattr(output, "interactive", lambda: True)
    assert login_oauth1(cli, monkeypatch).exit_code == 0
    assert cli("auth", "status", "--json").json()["source"] == "keyring"
    # On a terminal with a locked keyring: a note, and the file.
    lock(test_keyring)
    r = login_oauth1(cli, monkeypatch)
    assert r.exit_code == 0 and "note: the OS keyring is locked" in r.stderr


def test_on_a_terminal_without_a_usable_keyring_the_file_it_is(cli: Cli, world: SandboxWorld,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from dmtool import output

    monkeypatch.setattr(output, "interactive", lambda: True)
    assert login_oauth1(cli, monkeypatch).exit_code == 0  # conftest: only the "fail" keyring
    assert cli("auth", "status", "--json").json()["source"] == "file"
    r = login_oauth1(cli, monkeypatch, "--store", "keyring")
    assert r.exit_code == 4 and "no usable OS keyring" in r.stderr
    assert "--store file" in r.stderr


def test_a_locked_keyring_fails_fast_before_the_login_starts(cli: Cli, world: SandboxWorld,
                                                             test_keyring: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    lock(test_keyring)
    r = login_oauth1(cli, monkeypatch, "--store", "keyring")
    assert r.exit_code == 4, r
    assert r.stderr.startswith("error: the OS keyring is locked")
    assert "--store file" in r.stderr
    assert world.requests_log() == []  # nothing asked of X
    r = cli("auth", "login", "--print-url", "--client-id", "app", "--store", "keyring")
    assert r.exit_code == 4 and r.stderr.startswith("error: the OS keyring is locked")
    assert r.stdout == ""  # no address to open: the login would fail at step two


def test_reading_from_a_locked_keyring_is_exit_4_not_a_prompt(cli: Cli, world: SandboxWorld,
                                                              test_keyring: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    assert login_oauth1(cli, monkeypatch, "--store", "keyring").exit_code == 0
    lock(test_keyring)
    r = run("auth", "status")
    assert r.exit_code == 4, r
    assert "in the OS keyring: the OS keyring is locked" in r.stderr
    assert attempts_while_locked(test_keyring) == 1  # one refused read, and no waiting


def test_a_job_without_a_keyring_session(cli: Cli, world: SandboxWorld, test_keyring: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """cron has no desktop session: secrets in the file keep working (and -v says
    where they came from); secrets in the keyring are a clear exit 4."""
    assert login_oauth1(cli, monkeypatch, "--store", "file").exit_code == 0
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    r = run("-v", "auth", "status", "--json")
    assert r.exit_code == 0, r
    assert json.loads(r.stdout)["source"] == "file"
    assert "secrets kept in the file, not the keyring" in r.stderr

    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "tests.keyring_backend.FileKeyring")
    assert login_oauth1(cli, monkeypatch, "--store", "keyring").exit_code == 0
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    r = run("auth", "status")
    assert r.exit_code == 4
    assert "are in the OS keyring: no usable OS keyring in this session" in r.stderr
    assert "hint: log in with `dmtool auth login --store file`" in r.stderr


def test_a_refresh_saves_the_rotated_tokens_in_the_keyring(test_keyring: Path, tmp_path: Path) -> None:
    import time

    from dmtool.x.client import TweepyClient

    w = SandboxWorld.create(tmp_path / "x.json")
    w.set_me(*ME)
    pair = w.issue_tokens("app")
    path = tmp_path / "credentials.toml"
    save_credentials(path, Credentials(kind="oauth2", client_id="app", access_token=pair["access_token"],
                                       refresh_token=pair["refresh_token"],
                                       expires_at=int(time.time()) + 60), "keyring")
    creds = load_credentials(path, {})
    assert creds is not None and creds.source == "keyring"
    client = TweepyClient(creds, adapter=SandboxAdapter(w.path), retry_backoff=0,
                          save_credentials=lambda c: save_credentials(path, c), credentials_path=path)
    assert client.me().username == ME[1]
    [rotated] = w.live_refresh_tokens()
    stored = json.loads(entries(test_keyring)["dmtool"][keyring_account(path)])
    assert stored["refresh_token"] == rotated and rotated not in path.read_text()
    again = load_credentials(path, {})
    assert again is not None and again.access_token == client.credentials.access_token


class _Collection:
    def __init__(self, locked: bool) -> None:
        self.locked = locked
        self.unlocks = 0

    def is_locked(self) -> bool:
        return self.locked

    def unlock(self) -> None:  # what would pop the dialog
        self.unlocks += 1


@pytest.mark.parametrize("locked", [True, False])
def test_a_locked_secret_service_is_refused_without_unlocking(monkeypatch: pytest.MonkeyPatch,
                                                              locked: bool) -> None:
    """keyring's Secret Service backend unlocks a locked collection, which shows a
    dialog and waits; dmtool asks whether it is locked first, and stops."""
    import secretstorage
    from keyring.backends import SecretService

    from dmtool import keyring_store

    coll = _Collection(locked)
    closed: list[bool] = []

    class Conn:
        def close(self) -> None:
            closed.append(True)

    monkeypatch.setattr(secretstorage, "dbus_init", lambda: Conn())
    monkeypatch.setattr(secretstorage, "get_default_collection", lambda conn: coll)
    backend: Any = SecretService.Keyring()
    if locked:
        with pytest.raises(AuthError) as info:
            keyring_store._refuse_if_locked(backend, "Secret Service")
        assert info.value.code == "E_KEYRING_LOCKED" and info.value.exit_code == 4
    else:
        keyring_store._refuse_if_locked(backend, "Secret Service")
    assert coll.unlocks == 0 and closed == [True]


def test_an_oauth2_login_in_two_processes_into_the_keyring(test_keyring: Path, tmp_path: Path) -> None:
    """--store keyring given at step one holds at step two (another process)."""
    from tests.xnet import approve, on_sandbox_command

    w = SandboxWorld.create(tmp_path / "x.json", clock="2030-01-01T12:00:00Z")
    w.set_me(*ME)
    w.register_app("app")

    def on_x(*args: str) -> Result:
        p = subprocess.run([*on_sandbox_command(w.path), *args], cwd=REPO, capture_output=True,
                           text=True, env=subprocess_env(), stdin=subprocess.DEVNULL, timeout=120)
        return Result(p.returncode, p.stdout, p.stderr)

    first = on_x("auth", "login", "--print-url", "--client-id", "app", "--store", "keyring")
    assert first.exit_code == 0, first
    second = on_x("auth", "login", "--redirect-url", approve(w.path, first.stdout.strip()))
    assert second.exit_code == 0, second
    [refresh] = w.live_refresh_tokens()
    stored = json.loads(entries(test_keyring)["dmtool"][keyring_account(creds_file())])
    assert stored["refresh_token"] == refresh and refresh not in creds_file().read_text()
    assert json.loads(on_x("auth", "status", "--json").stdout)["source"] == "keyring"
