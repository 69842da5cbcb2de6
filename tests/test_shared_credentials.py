"""Shared credentials on a team store (issue 15 point 7): the OAuth 2.0 tokens
live in the store, encrypted with the team key (DMTOOL_TEAM_KEY or the OS
keyring); only owners log in there; a member without the key, or with a
wrong one, gets exit 4 and a hint; two members refreshing at once rotate the
refresh token once and both go on. The key and the tokens never show."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dmtool.paths import Paths
from dmtool.x.sandbox import SandboxWorld
from tests.conftest import REPO, Result, profile_store
from tests.xnet import approve, route_x_to_sandbox, subprocess_env

Cli = Callable[..., Result]
ME = ("1700000000000000001", "real_me", "Real Me")
APP = "team-app"


@pytest.fixture
def xworld(tmp_path: Path) -> SandboxWorld:
    w = SandboxWorld.create(tmp_path / "x.json")
    w.set_me(*ME)
    w.register_app(APP)
    return w


@pytest.fixture
def routed(xworld: SandboxWorld) -> Iterator[SandboxWorld]:
    """X's hosts answered by the world, in this process."""
    undo = route_x_to_sandbox(xworld.path)
    yield xworld
    undo()


class Team:
    """Ana (owner, this DMTOOL_HOME), Ben (approver) and Cleo (drafter), each
    with a home of their own on the one store; the key Ana made."""

    def __init__(self, cli: Cli, tmp_path: Path) -> None:
        self.cli = cli
        self.homes = {"ana": Path(os.environ["DMTOOL_HOME"])}
        assert cli("team", "add", "ana", "--role", "owner", env=self.env("ana")).exit_code == 0
        for name, role in (("ben", "approver"), ("cleo", "drafter")):
            assert cli("team", "add", name, "--role", role, env=self.env("ana")).exit_code == 0
            home = tmp_path / f"{name}-home"
            (home / "data").mkdir(parents=True)
            (home / "data" / "default").symlink_to(self.homes["ana"] / "data" / "default")
            self.homes[name] = home
        r = cli("team", "key", "new", "--json", env=self.env("ana"))
        assert r.exit_code == 0, r
        self.key = r.json()["key"]

    def env(self, who: str, key: str | None = None, **extra: str) -> dict[str, str]:
        env = {"DMTOOL_OPERATOR": who, "DMTOOL_HOME": str(self.homes.get(who, self.homes["ana"]))}
        if key:
            env["DMTOOL_TEAM_KEY"] = key
        env.update(extra)
        return env

    def run(self, who: str, *args: str, key: str | None = "team", **kw: Any) -> Result:
        return self.cli(*args, env=self.env(who, self.key if key == "team" else key), **kw)

    def login(self, who: str = "ana") -> Result:
        r = self.run(who, "auth", "login", "--client-id", APP, "--print-url")
        if r.exit_code != 0:
            return r
        world = Path(os.environ["DMTOOL_TEST_WORLD"])
        return self.run(who, "auth", "login", "--redirect-url", approve(world, r.stdout.strip()))


@pytest.fixture
def team(cli: Cli, tmp_path: Path, routed: SandboxWorld, monkeypatch: pytest.MonkeyPatch) -> Team:
    monkeypatch.setenv("DMTOOL_TEST_WORLD", str(routed.path))
    return Team(cli, tmp_path)


def stored_blob() -> str | None:
    store = profile_store()
    try:
        return store.get_state("team_credentials")  # type: ignore[no-any-return]
    finally:
        store.close()


def test_the_owner_logs_in_to_the_store_encrypted(team: Team, routed: SandboxWorld,
                                                  store_engine: str) -> None:
    r = team.login()
    assert r.exit_code == 0, r
    assert "team store" in r.stderr
    [refresh] = routed.live_refresh_tokens()
    [access] = routed.oauth()["access_tokens"]
    assert not Paths.resolve("default").credentials_file.exists()  # nothing on this machine
    blob = stored_blob()
    assert blob and refresh not in blob and access not in blob
    if store_engine == "sqlite":  # the file itself holds neither
        raw = Paths.resolve("default").db_file.read_bytes()
        assert refresh.encode() not in raw and team.key.encode() not in raw

    for who in ("ana", "ben"):  # ben: another home, the same store, the key
        r = team.run(who, "auth", "status", "--json")
        assert r.exit_code == 0, r
        data = r.json()
        assert (data["source"], data["username"], data["kind"]) == ("team", "real_me", "oauth2")
        assert "DMTOOL_TEAM_KEY" in data["location"]
        assert data["refresh_token"] == "****" + refresh[-4:]
        for secret in (refresh, access, team.key):
            assert secret not in r.stdout + r.stderr
    text = team.run("ben", "auth", "status").stdout
    assert "the team store" in text and team.key not in text


def test_only_owners_log_in_on_a_team_store(team: Team, routed: SandboxWorld) -> None:
    r = team.run("ben", "auth", "login", "--client-id", APP, "--print-url")
    assert r.exit_code == 3, r
    assert "managing the team" in r.stderr and "owner" in r.stderr
    assert r.stdout == ""
    r = team.run("ana", "auth", "login", "--client-id", APP, "--print-url", "--store", "file")
    assert r.exit_code == 2 and "team store" in r.stderr


def test_an_owner_without_the_key_is_told_before_the_browser(team: Team) -> None:
    r = team.run("ana", "auth", "login", "--client-id", APP, "--print-url", key=None)
    assert r.exit_code == 4, r
    assert "no team key" in r.stderr and "dmtool team key set" in r.stderr
    assert r.stdout == ""  # no authorize address: nobody approves for nothing


def test_a_member_without_the_key_gets_exit_4_and_a_hint(team: Team) -> None:
    assert team.login().exit_code == 0
    for args in (("auth", "status", "--json"), ("sync", "--json")):
        r = team.run("ben", *args, key=None)
        assert r.exit_code == 4, (args, r)
        err = json.loads(r.stderr)["error"]
        assert err["code"] == "E_TEAM_KEY"
        assert "no team key" in err["message"]
        assert "dmtool team key set" in err["hint"] and "DMTOOL_TEAM_KEY" in err["hint"]


def test_a_wrong_key_is_one_clear_line(team: Team) -> None:
    from dmtool.team_credentials import new_key

    assert team.login().exit_code == 0
    wrong = new_key()
    r = team.run("ben", "sync", key=wrong)
    assert r.exit_code == 4, r
    assert "does not open this store's X credentials" in r.stderr
    assert "Traceback" not in r.stderr and wrong not in r.stderr and team.key not in r.stderr
    r = team.run("ben", "auth", "status", key="not-a-key")
    assert r.exit_code == 4 and "is not a team key" in r.stderr and "not-a-key" not in r.stderr


def test_a_member_syncs_with_the_team_credentials_and_a_refresh_goes_back(
        team: Team, routed: SandboxWorld) -> None:
    """Ben's sync finds the access token expiring: it refreshes once and the
    rotated tokens go back to the store, where Cleo's next command finds them."""
    assert team.login().exit_code == 0
    _expire_soon(team.key)
    [old_refresh] = routed.live_refresh_tokens()
    r = team.run("ben", "sync", "--json")
    assert r.exit_code == 0, r
    assert routed.oauth()["grants"]["refresh_token"] == 1
    [live] = routed.live_refresh_tokens()
    assert live != old_refresh
    assert _stored(team.key).refresh_token == live  # written back, encrypted
    assert team.run("cleo", "auth", "status", "--json").json()["refresh_token"] == "****" + live[-4:]


def _stored(key: str) -> Any:
    from dmtool import team_credentials

    store = profile_store()
    try:
        return team_credentials.load(store, team_credentials.TeamKey(key, "test"))
    finally:
        store.close()


def _expire_soon(key: str) -> None:
    """The stored access token expires in a minute: the next X call refreshes."""
    from dataclasses import replace

    from dmtool import team_credentials

    store = profile_store()
    try:
        k = team_credentials.TeamKey(key, "test")
        creds = team_credentials.load(store, k)
        assert creds is not None
        team_credentials.save(store, replace(creds, expires_at=int(time.time()) + 60), k)
    finally:
        store.close()


RACER = """
import sys, time
from pathlib import Path
from tests.xnet import route_x_to_sandbox
route_x_to_sandbox(sys.argv[1])
from dmtool.appstate import AppState, connect
ready, go = Path(sys.argv[2]), Path(sys.argv[3])
st = AppState()
client = connect(st)  # both hold the same expiring token in memory
ready.touch()
while not go.exists():
    time.sleep(0.005)
print(client.me().username)
st.close()
"""


def test_two_members_refreshing_at_once_rotate_once_and_both_go_on(
        team: Team, routed: SandboxWorld, tmp_path: Path) -> None:
    assert team.login().exit_code == 0
    _expire_soon(team.key)
    [old_refresh] = routed.live_refresh_tokens()
    go = tmp_path / "go"
    racers = []
    for who in ("ana", "ben"):
        ready = tmp_path / f"ready-{who}"
        env = subprocess_env(**team.env(who, team.key))
        racers.append((ready, subprocess.Popen(
            [sys.executable, "-c", RACER, str(routed.path), str(ready), str(go)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    deadline = time.monotonic() + 60
    while not all(ready.exists() for ready, _ in racers):
        assert time.monotonic() < deadline, [p.communicate() for _, p in racers]
        time.sleep(0.01)
    go.touch()
    for _, p in racers:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert out.split() == ["real_me"]
    oauth = routed.oauth()
    assert oauth["grants"]["refresh_token"] == 1  # one rotation, not two
    assert oauth["refresh_tokens"][old_refresh]["used"]
    [live] = routed.live_refresh_tokens()
    assert _stored(team.key).refresh_token == live
    statuses = [(r["path"], r["status"]) for r in routed.requests_log()]
    assert statuses.count(("/2/oauth2/token", 200)) == 2  # the login's code and one refresh
    assert ("/2/oauth2/token", 400) not in statuses  # nobody spent the old token again


def test_a_new_key_re_encrypts_and_the_old_one_stops(team: Team) -> None:
    assert team.login().exit_code == 0
    old = team.key
    r = team.run("ana", "team", "key", "new", "--json")
    assert r.exit_code == 0, r
    assert r.json()["rotated"] is True
    team.key = r.json()["key"]
    assert team.run("ben", "auth", "status", "--json").json()["username"] == "real_me"
    r = team.run("ben", "auth", "status", key=old)
    assert r.exit_code == 4 and "does not open" in r.stderr


def test_a_new_key_without_the_old_one_needs_replace(team: Team) -> None:
    assert team.login().exit_code == 0
    r = team.run("ana", "team", "key", "new", key=None)
    assert r.exit_code == 4 and "--replace" in r.stderr
    assert stored_blob() is not None  # nothing thrown away
    r = team.run("ana", "team", "key", "new", "--replace", "--json", key=None)
    assert r.exit_code == 0, r
    assert r.json()["dropped"] is True and not stored_blob()
    r = team.run("ben", "auth", "status", key=r.json()["key"])
    assert r.exit_code == 4  # nothing to open: an owner logs in again


def test_only_owners_make_a_key(team: Team) -> None:
    r = team.run("ben", "team", "key", "new", "--json")
    assert r.exit_code == 3 and json.loads(r.stderr)["error"]["code"] == "E_ROLE"
    assert r.stdout == ""


@pytest.fixture
def file_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import keyring
    from keyring.backends import fail

    from tests.keyring_backend import FileKeyring

    monkeypatch.setenv("DMTOOL_TEST_KEYRING", str(tmp_path / "keyring.json"))
    keyring.set_keyring(FileKeyring())
    yield
    keyring.set_keyring(fail.Keyring())


def test_a_member_keeps_the_key_in_the_keyring(team: Team, file_keyring: None,
                                                 tmp_path: Path) -> None:
    assert team.login().exit_code == 0
    from dmtool.team_credentials import new_key

    r = team.run("ben", "team", "key", "set", key=None, input=new_key() + "\n")
    assert r.exit_code == 4 and "does not open" in r.stderr  # a wrong key is not kept
    r = team.run("ben", "team", "key", "set", key=None, input=team.key + "\n")
    assert r.exit_code == 0, r
    assert r.stdout == "" and team.key not in r.stderr
    r = team.run("ben", "auth", "status", "--json", key=None)
    assert r.exit_code == 0, r
    assert r.json()["location"].endswith("the OS keyring")
    assert team.key not in r.stdout


def test_a_store_without_a_team_keeps_credentials_on_the_machine(cli: Cli) -> None:
    r = cli("team", "key", "new", "--json")
    assert r.exit_code == 0  # made for later; nothing in the store uses it yet
    assert stored_blob() is None
    assert "no team yet" in r.stderr


@pytest.mark.sqlite_only(reason="db restore replaces a SQLite file; PostgreSQL is restored with "
                                "pg_restore, outside dmtool")
def test_a_restore_keeps_the_tokens_x_still_accepts(team: Team, routed: SandboxWorld,
                                                    tmp_path: Path) -> None:
    """A backup holds a refresh token X has retired since: the restored store
    keeps the current one, so the team is not logged out by a restore."""
    assert team.login().exit_code == 0
    backup = tmp_path / "before.db"
    assert team.run("ana", "db", "backup", str(backup)).exit_code == 0
    _expire_soon(team.key)
    assert team.run("ben", "sync").exit_code == 0  # refreshes: the backup's token is retired
    [live] = routed.live_refresh_tokens()
    r = team.run("ana", "db", "restore", str(backup), "--yes")
    assert r.exit_code == 0, r
    assert _stored(team.key).refresh_token == live
    assert team.run("ben", "sync").exit_code == 0


def test_the_key_and_tokens_stay_out_of_verbose_logs(team: Team, routed: SandboxWorld) -> None:
    assert team.login().exit_code == 0
    _expire_soon(team.key)
    import logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        r = team.run("ben", "-v", "sync", "--json")  # a refresh, logged at DEBUG
    finally:  # -v points the root logger at this run's stderr: give it back
        root.handlers[:], root.level = handlers, level
    assert r.exit_code == 0, r
    assert routed.oauth()["grants"]["refresh_token"] == 1
    [live] = routed.live_refresh_tokens()
    out = r.stdout + r.stderr
    assert "refreshed" in r.stderr  # the log is on
    for secret in (team.key, live, *routed.oauth()["access_tokens"]):
        assert secret not in out


def test_a_new_key_waits_for_a_refresh_in_progress(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    """A change of key holds the credentials lock: a member's refresh cannot
    write tokens under the old key after they were re-encrypted."""
    from dmtool import team_credentials

    assert team.login().exit_code == 0
    before = stored_blob()
    monkeypatch.setattr(team_credentials, "LOCK_WAIT_S", 0.3)
    other = profile_store()
    with team_credentials.locked(other):  # a refresh in progress elsewhere
        r = team.run("ana", "team", "key", "new", "--json")
    other.close()
    assert r.exit_code == 5 and json.loads(r.stderr)["error"]["code"] == "E_BUSY"
    assert stored_blob() == before  # nothing re-encrypted meanwhile
    assert team.run("ana", "team", "key", "new", "--json").exit_code == 0  # free again
