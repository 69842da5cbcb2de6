"""`auth login` end to end: a real dmtool process listens on a loopback port,
a real HTTP request (the "browser", after the sandbox X's authorize page)
reaches it, the code is exchanged at the sandbox's token endpoint, and the
credentials are saved. Also the two-step form across two processes, the paste
fallback, the timeout, and what never ends the wait."""

from __future__ import annotations

import json
import queue
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from dmtool.paths import Paths
from dmtool.x.sandbox import SandboxWorld
from tests.conftest import REPO, Result
from tests.xnet import approve, browser, on_sandbox_command, route_x_to_sandbox, subprocess_env

ME = ("1700000000000000001", "real_me", "Real Me")
APP = "test-app-client-id"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def callback() -> str:
    return f"http://127.0.0.1:{free_port()}/callback"


@pytest.fixture
def xworld(tmp_path: Path, callback: str) -> SandboxWorld:
    """A sandbox X with your account and a registered public app (PKCE)."""
    w = SandboxWorld.create(tmp_path / "x.json", clock="2030-01-01T12:00:00Z")
    w.set_me(*ME)
    w.register_app(APP, [callback, "http://127.0.0.1:8765/callback"])
    return w


def creds_file() -> Path:
    return Paths.resolve("default").credentials_file


def saved() -> str:
    return creds_file().read_text()


class LoginProcess:
    """`dmtool auth login ...` running on the sandbox X, its stderr read as it comes."""

    def __init__(self, world: SandboxWorld, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [*on_sandbox_command(world.path), *args], cwd=REPO, env=env or subprocess_env(),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.err: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err.append(line)
            self.lines.put(line)

    def authorize_url(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1).strip()
            except queue.Empty:
                assert self.proc.poll() is None, "".join(self.err)
                continue
            if line.startswith("https://x.com/i/oauth2/authorize?"):
                return line
        raise AssertionError("no authorize address: " + "".join(self.err))

    def waiting(self) -> bool:
        time.sleep(0.2)
        return self.proc.poll() is None

    def result(self, timeout: float = 60) -> Result:
        try:
            self.proc.wait(timeout=timeout)  # stdout is a line at most: no pipe fills up
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        assert self.proc.stdout is not None
        out = self.proc.stdout.read()
        self._reader.join(10)  # the last lines of stderr
        return Result(self.proc.returncode, out, "".join(self.err))


@pytest.fixture
def login_process() -> Iterator[Callable[..., LoginProcess]]:
    started: list[LoginProcess] = []

    def start(world: SandboxWorld, *args: str, env: dict[str, str] | None = None) -> LoginProcess:
        p = LoginProcess(world, *args, env=env)
        started.append(p)
        return p

    yield start
    for p in started:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()


def tokens_of(world: SandboxWorld) -> list[str]:
    oauth = world.oauth()
    return [*oauth["access_tokens"], *oauth["refresh_tokens"]]


def assert_no_token(world: SandboxWorld, *texts: str) -> None:
    for t in tokens_of(world):
        for text in texts:
            assert t not in text


def test_the_browser_comes_back_to_the_listener_and_the_login_finishes(
        xworld: SandboxWorld, callback: str, login_process: Callable[..., LoginProcess],
        loopback: None) -> None:
    p = login_process(xworld, "-v", "auth", "login", "--client-id", APP, "--redirect-uri", callback)
    url = p.authorize_url()
    query = parse_qs(urlsplit(url).query)
    assert query["redirect_uri"] == [callback] and query["code_challenge_method"] == ["S256"]
    assert set(query["scope"][0].split()) == {"dm.read", "dm.write", "tweet.read", "users.read",
                                              "offline.access"}

    # The browser approves on X and is sent to the listener over a real socket.
    with browser(xworld.path) as session:
        page = session.get(url, timeout=60)
    assert page.status_code == 200, page.text
    assert page.url.startswith(callback + "?state=")
    assert "logged in as @real_me" in page.text
    assert page.headers["Cache-Control"] == "no-store"
    r = p.result()
    assert r.exit_code == 0, r
    assert r.stdout == ""
    assert "logged in as @real_me" in r.stderr

    text = saved()
    assert 'kind = "oauth2"' in text and f'client_id = "{APP}"' in text
    live = xworld.live_refresh_tokens()
    assert len(live) == 1 and live[0] in text  # the tokens X issued, saved (0600)
    assert stat.S_IMODE(creds_file().stat().st_mode) == 0o600
    assert xworld.oauth()["grants"]["authorization_code"] == 1
    assert [q["path"] for q in xworld.requests_log()] == [
        "/i/oauth2/authorize", "/2/oauth2/token", "/2/users/me"]
    assert_no_token(xworld, r.stdout, r.stderr, page.text)
    code = parse_qs(urlsplit(page.url).query)["code"][0]
    assert "login listener: GET /callback" in r.stderr  # -v logs the path,
    assert code not in r.stderr  # never the one-time code


def test_favicons_prefetches_and_stale_tabs_do_not_end_the_wait(
        xworld: SandboxWorld, callback: str, login_process: Callable[..., LoginProcess],
        loopback: None) -> None:
    p = login_process(xworld, "auth", "login", "--client-id", APP, "--redirect-uri", callback)
    url = p.authorize_url()
    base = callback.rsplit("/", 1)[0]
    answer = approve(xworld.path, url)  # the address X sends the browser to (code and state)
    with requests.Session() as s:
        s.trust_env = False
        assert s.get(base + "/favicon.ico").status_code == 404
        assert s.head(answer).status_code == 204
        assert s.get(answer, headers={"Sec-Purpose": "prefetch"}).status_code == 204
        assert s.get(answer, headers={"Purpose": "prefetch"}).status_code == 204
        stale = s.get(callback + "?state=an-earlier-attempt&code=old")
        assert stale.status_code == 400 and "Not this login" in stale.text
        assert s.get(callback).status_code == 400
        assert p.waiting()
        assert xworld.oauth()["grants"]["authorization_code"] == 0  # nothing exchanged yet
        page = s.get(answer, timeout=60)
    assert page.status_code == 200 and "@real_me" in page.text
    assert p.result().exit_code == 0


def test_a_denied_login_says_so_on_the_page_and_exits_4(
        xworld: SandboxWorld, callback: str, login_process: Callable[..., LoginProcess],
        loopback: None) -> None:
    xworld.set_oauth_decision("deny")
    p = login_process(xworld, "auth", "login", "--client-id", APP, "--redirect-uri", callback)
    with browser(xworld.path) as session:
        page = session.get(p.authorize_url(), timeout=60)
    assert page.status_code == 400 and "did not authorise dmtool (access_denied)" in page.text
    r = p.result()
    assert r.exit_code == 4 and "error: X did not authorise dmtool" in r.stderr
    assert not creds_file().exists()


def test_python_webbrowser_opens_the_browser_named_in_BROWSER(
        xworld: SandboxWorld, callback: str, login_process: Callable[..., LoginProcess],
        tmp_path: Path) -> None:
    """No request from the test at all: dmtool opens the "browser" (the stdlib's
    webbrowser runs $BROWSER), which approves on X and lands on the listener."""
    page_file = tmp_path / "page.txt"
    env = subprocess_env(BROWSER=f"{sys.executable} {REPO / 'tests' / 'fake_browser.py'} %s",
                         DMTOOL_TEST_WORLD=str(xworld.path), DMTOOL_TEST_BROWSER_PAGE=str(page_file))
    p = login_process(xworld, "auth", "login", "--client-id", APP, "--redirect-uri", callback, env=env)
    r = p.result()
    assert r.exit_code == 0, r
    assert "(opening your browser)" in r.stderr
    status, page = page_file.read_text().split("\n", 1)
    assert status == "200" and "logged in as @real_me" in page
    assert xworld.live_refresh_tokens()[0] in saved()


def test_no_answer_in_time_exits_4_with_the_paste_hint(cli: Callable[..., Result], callback: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from dmtool import login_listener

    monkeypatch.setattr(login_listener, "WAIT_S", 0.3)
    r = cli("auth", "login", "--client-id", APP, "--redirect-uri", callback)
    assert r.exit_code == 4, r
    assert "error: no answer from X within 1 minute\n" in r.stderr
    assert "--no-browser" in r.stderr and "--print-url" in r.stderr
    with socket.socket() as s:  # the port is free again
        s.bind(("127.0.0.1", int(urlsplit(callback).port or 0)))


def test_a_taken_port_off_a_terminal_is_exit_4_naming_the_ways_out(cli: Callable[..., Result],
                                                                   callback: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(urlsplit(callback).port or 0)))
        taken.listen()
        r = cli("auth", "login", "--client-id", APP, "--redirect-uri", callback)
    assert r.exit_code == 4, r
    assert "cannot listen on 127.0.0.1" in r.stderr
    assert "--print-url" in r.stderr and "--redirect-uri" in r.stderr


def test_no_browser_off_a_terminal_points_to_the_two_step_form(cli: Callable[..., Result]) -> None:
    r = cli("auth", "login", "--client-id", APP, "--no-browser")
    assert r.exit_code == 2
    assert "--print-url" in r.stderr and "--redirect-url" in r.stderr


@pytest.mark.parametrize("args", [
    ["--print-url", "--redirect-url", "http://127.0.0.1:8765/callback?code=c&state=s"],
    ["--print-url", "--no-browser"],
    ["--oauth1", "--print-url"],
    ["--redirect-url", "http://127.0.0.1:8765/callback?code=c&state=s", "--client-id", "x"],
    ["--store", "vault"],
])
def test_options_that_do_not_go_together(cli: Callable[..., Result], args: list[str]) -> None:
    r = cli("auth", "login", *args)
    assert r.exit_code == 2, r
    assert r.stderr.startswith("error: ")


# --- the two-step form -----------------------------------------------------------------------


def run_on(world: SandboxWorld, *args: str, env: dict[str, str] | None = None) -> Result:
    p = subprocess.run([*on_sandbox_command(world.path), *args], cwd=REPO, capture_output=True,
                       text=True, env=env or subprocess_env(), stdin=subprocess.DEVNULL, timeout=120)
    return Result(p.returncode, p.stdout, p.stderr)


def test_print_url_then_redirect_url_in_two_processes(xworld: SandboxWorld) -> None:
    first = run_on(xworld, "auth", "login", "--print-url", "--client-id", APP)
    assert first.exit_code == 0, first
    url = first.stdout.strip()
    assert url.startswith("https://x.com/i/oauth2/authorize?") and "\n" not in url
    assert "--redirect-url" in first.stderr
    pending = creds_file().parent / "login-pending.toml"
    assert stat.S_IMODE(pending.stat().st_mode) == 0o600
    assert parse_qs(urlsplit(url).query)["state"][0] in pending.read_text()
    assert not creds_file().exists()

    # An address from another attempt is refused plainly, and the login still waits.
    r = run_on(xworld, "auth", "login", "--redirect-url",
               "http://127.0.0.1:8765/callback?state=another&code=c")
    assert r.exit_code == 4 and "another login attempt" in r.stderr
    assert pending.exists()

    answer = approve(xworld.path, url)
    second = run_on(xworld, "auth", "login", "--redirect-url", answer)
    assert second.exit_code == 0, second
    assert "logged in as @real_me" in second.stderr
    assert xworld.live_refresh_tokens()[0] in saved()
    assert not pending.exists()
    assert_no_token(xworld, first.stdout, first.stderr, second.stdout, second.stderr)

    status = run_on(xworld, "auth", "status", "--json")
    data = json.loads(status.stdout)
    assert data["source"] == "file" and data["username"] == "real_me"
    assert data["location"] == str(creds_file())

    again = run_on(xworld, "auth", "login", "--redirect-url", answer)
    assert again.exit_code == 4 and "no login is waiting" in again.stderr


def test_a_waiting_login_lapses_after_an_hour(cli: Callable[..., Result], xworld: SandboxWorld,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from dmtool import oauth_login

    assert cli("auth", "login", "--print-url", "--client-id", APP).exit_code == 0
    monkeypatch.setattr(oauth_login, "PENDING_TTL_S", -1)
    r = cli("auth", "login", "--redirect-url", "http://127.0.0.1:8765/callback?state=s&code=c")
    assert r.exit_code == 4 and "more than an hour old" in r.stderr
    assert not (creds_file().parent / "login-pending.toml").exists()


def test_in_process_two_step_with_a_confidential_client(
        cli: Callable[..., Result], xworld: SandboxWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """X_CLIENT_SECRET at step one is kept (0600) for step two: the token
    endpoint wants HTTP Basic from a confidential client."""
    xworld.register_app("web-app", ["http://127.0.0.1:8765/callback"], client_secret="web-secret-42")
    monkeypatch.setattr("dmtool.cli.auth.open_client", _sandbox_client(xworld))
    undo = route_x_to_sandbox(xworld.path)
    try:
        monkeypatch.setenv("X_CLIENT_SECRET", "web-secret-42")
        r = cli("auth", "login", "--print-url", "--client-id", "web-app")
        assert r.exit_code == 0, r
        monkeypatch.delenv("X_CLIENT_SECRET")
        r = cli("auth", "login", "--redirect-url", approve(xworld.path, r.stdout.strip()))
    finally:
        undo()
    assert r.exit_code == 0, r
    assert 'client_secret = "web-secret-42"' in saved()


def _sandbox_client(world: SandboxWorld) -> Any:
    from dmtool.x.client import TweepyClient
    from dmtool.x.sandbox import SandboxAdapter

    return lambda creds: TweepyClient(creds, adapter=SandboxAdapter(world.path), retry_backoff=0)


def test_a_second_login_right_after_the_first_can_listen_again(
        xworld: SandboxWorld, callback: str, login_process: Callable[..., LoginProcess],
        loopback: None) -> None:
    """The first login's connection lingers in TIME_WAIT; the port is still usable."""
    for _ in range(2):
        p = login_process(xworld, "auth", "login", "--client-id", APP, "--redirect-uri", callback)
        with browser(xworld.path) as session:
            assert session.get(p.authorize_url(), timeout=60).status_code == 200
        r = p.result()
        assert r.exit_code == 0, r
        assert "paste the address instead" not in r.stderr
