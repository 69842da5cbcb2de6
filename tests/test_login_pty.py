"""`auth login` at a terminal (a pseudo-terminal): the paste is typed at a
visible prompt, and on a terminal the keyring is the default place for the
secrets when one is usable."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pexpect
import pytest
import requests

from dmtool.credentials import keyring_account
from dmtool.paths import Paths
from dmtool.x.sandbox import SandboxWorld
from tests.conftest import REPO
from tests.keyring_backend import entries
from tests.test_login import APP, ME, free_port
from tests.xnet import approve, subprocess_env

URL = re.compile(r"https://x\.com/i/oauth2/authorize\?\S+")


@pytest.fixture
def setup(tmp_path: Path) -> tuple[SandboxWorld, str, Path]:
    callback = f"http://127.0.0.1:{free_port()}/callback"
    w = SandboxWorld.create(tmp_path / "x.json", clock="2030-01-01T12:00:00Z")
    w.set_me(*ME)
    w.register_app(APP, [callback, "http://127.0.0.1:8765/callback"])
    return w, callback, tmp_path / "keyring.json"


def spawn(world: SandboxWorld, keyring: Path, *args: str) -> pexpect.spawn:
    env = subprocess_env(TERM="dumb", DMTOOL_TEST_KEYRING=str(keyring),
                         PYTHON_KEYRING_BACKEND="tests.keyring_backend.FileKeyring")
    return pexpect.spawn(sys.executable, ["-m", "tests.on_sandbox", str(world.path), *args],
                         cwd=str(REPO), env=env, encoding="utf-8", timeout=60, dimensions=(50, 200))


def finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    return int(child.exitstatus if child.exitstatus is not None else -1)


def stored_refresh_token(keyring: Path) -> str:
    account = keyring_account(Paths.resolve("default").credentials_file)
    return str(json.loads(entries(keyring)["dmtool"][account])["refresh_token"])


def test_no_browser_pastes_at_a_visible_prompt_and_keeps_secrets_in_the_keyring(
        setup: tuple[SandboxWorld, str, Path]) -> None:
    world, _, keyring = setup
    child = spawn(world, keyring, "auth", "login", "--no-browser", "--client-id", APP)
    child.expect(URL)
    answer = approve(world.path, child.after)
    child.expect_exact("address:")
    child.sendline(answer)
    child.expect_exact(answer)  # the terminal shows what was typed: the prompt is not hidden
    child.expect_exact("logged in as @real_me")
    child.expect_exact("saved to the OS keyring")
    assert finish(child) == 0
    assert stored_refresh_token(keyring) == world.live_refresh_tokens()[0]


def test_at_a_terminal_a_paste_and_the_listener_race(setup: tuple[SandboxWorld, str, Path]) -> None:
    """The listener waits, and the prompt takes a paste meanwhile: the first wins."""
    world, callback, keyring = setup
    child = spawn(world, keyring, "auth", "login", "--client-id", APP, "--redirect-uri", callback)
    child.expect(URL)
    answer = approve(world.path, child.after)
    child.expect_exact("paste the address it ends on here and press Enter:")
    child.sendline(answer)
    child.expect_exact("logged in as @real_me")
    assert finish(child) == 0


def test_at_a_terminal_the_browser_can_still_win(setup: tuple[SandboxWorld, str, Path],
                                                 loopback: None) -> None:
    world, callback, keyring = setup
    child = spawn(world, keyring, "auth", "login", "--client-id", APP, "--redirect-uri", callback)
    child.expect(URL)
    answer = approve(world.path, child.after)
    child.expect_exact("press Enter:")
    with requests.Session() as s:
        s.trust_env = False
        page = s.get(answer, timeout=60)
    assert page.status_code == 200 and "@real_me" in page.text
    child.expect_exact("logged in as @real_me")
    assert finish(child) == 0  # the waiting prompt does not keep the process alive
    assert stored_refresh_token(keyring) == world.live_refresh_tokens()[0]
