"""Two dmtool processes on one machine hold the same expiring OAuth 2.0 token
and both need X at once. X rotates refresh tokens (a used one is refused), so
only one may refresh: the other waits on the profile's refresh lock, finds the
new tokens saved, and uses them. Both go on; X sees one rotation."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dmtool.credentials import Credentials, load_credentials, save_credentials
from dmtool.x.sandbox import SandboxWorld
from tests.conftest import REPO
from tests.xnet import subprocess_env

RACER = """
import sys, time
from pathlib import Path
from dmtool.credentials import load_credentials, save_credentials
from dmtool.x.client import TweepyClient
from dmtool.x.sandbox import SandboxAdapter

path, world, ready, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
creds = load_credentials(path, {})  # both hold the same expiring token in memory
ready.touch()
while not go.exists():
    time.sleep(0.005)
client = TweepyClient(creds, adapter=SandboxAdapter(world), retry_backoff=0,
                      save_credentials=lambda c: save_credentials(path, c), credentials_path=path)
print(client.me().username, client.credentials.access_token == load_credentials(path, {}).access_token)
"""


@pytest.fixture(params=["file", "keyring"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "keyring":
        import keyring
        from keyring.backends import fail

        from tests.keyring_backend import FileKeyring

        monkeypatch.setenv("DMTOOL_TEST_KEYRING", str(tmp_path / "keyring.json"))
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "tests.keyring_backend.FileKeyring")
        keyring.set_keyring(FileKeyring())
        yield "keyring"
        keyring.set_keyring(fail.Keyring())
    else:
        yield "file"


def test_two_processes_refresh_once_and_both_go_on(tmp_path: Path, store: str) -> None:
    world = SandboxWorld.create(tmp_path / "x.json")
    world.set_me("1700000000000000001", "real_me", "Real Me")
    pair = world.issue_tokens("app")
    path = tmp_path / "profile" / "credentials.toml"
    save_credentials(path, Credentials(kind="oauth2", client_id="app", access_token=pair["access_token"],
                                       refresh_token=pair["refresh_token"],
                                       expires_at=int(time.time()) + 60), store)  # type: ignore[arg-type]
    go = tmp_path / "go"
    racers = []
    for n in (1, 2):
        ready = tmp_path / f"ready-{n}"
        racers.append((ready, subprocess.Popen(
            [sys.executable, "-c", RACER, str(path), str(world.path), str(ready), str(go)],
            cwd=REPO, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    deadline = time.monotonic() + 60
    while not all(ready.exists() for ready, _ in racers):
        assert time.monotonic() < deadline, [p.communicate() for _, p in racers]
        time.sleep(0.01)
    go.touch()  # both loaded the stale token; now both need X
    results = [p.communicate(timeout=120) for _, p in racers]
    for (_, p), (out, err) in zip(racers, results, strict=True):
        assert p.returncode == 0, err
        assert out.split() == ["real_me", "True"]  # went on, with the tokens saved last

    oauth = world.oauth()
    assert oauth["grants"]["refresh_token"] == 1  # one rotation, not two
    assert oauth["refresh_tokens"][pair["refresh_token"]]["used"]
    [live] = world.live_refresh_tokens()
    saved = load_credentials(path, {})
    assert saved is not None and saved.refresh_token == live and saved.source == store
    statuses = [(r["path"], r["status"]) for r in world.requests_log()]
    assert statuses.count(("/2/oauth2/token", 200)) == 1
    assert ("/2/oauth2/token", 400) not in statuses  # nobody spent the old token again
