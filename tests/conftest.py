"""Every test runs offline, in its own DMTOOL_HOME, with no colour and a fixed width."""

from __future__ import annotations

import _socket
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent


_REAL_CREATE_CONNECTION = socket.create_connection
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any in-process attempt to open a socket fails the test: the sandbox X
    answers at the HTTP-adapter level, so nothing legitimate needs one."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a test tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lift the guard for this machine's loopback only (a test talking to dmtool's
    own login listener); anything else still fails the test."""

    def connect(sock: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if host not in LOOPBACK_HOSTS:
            raise AssertionError(f"a test tried to reach the network ({host})")
        return _socket.socket.connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "create_connection", _REAL_CREATE_CONNECTION)


@pytest.fixture(autouse=True)
def dmtool_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "dmtool-home"
    monkeypatch.setenv("DMTOOL_HOME", str(home))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("TZ", "UTC")  # times in text output are local: the same on every machine
    for var in ("DMTOOL_PROFILE", "DMTOOL_NOW", "X_API_KEY", "X_API_SECRET", "X_ACCESS_TOKEN",
                "X_ACCESS_TOKEN_SECRET", "X_CLIENT_ID", "X_CLIENT_SECRET", "VISUAL", "EDITOR",
                "BROWSER", "DISPLAY", "WAYLAND_DISPLAY"):  # no test opens a real browser
        monkeypatch.delenv(var, raising=False)
    # Nor touches the OS keyring: "fail" is never a usable keyring, so secrets go to
    # files unless a test installs its own backend (tests/keyring_backend.py).
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    return home


class Result:
    def __init__(self, exit_code: int, stdout: str, stderr: str) -> None:
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __repr__(self) -> str:
        return f"Result(exit={self.exit_code}, stdout={self.stdout!r}, stderr={self.stderr!r})"


@pytest.fixture
def cli() -> Callable[..., Result]:
    """Run dmtool in-process (fast): cli("contacts", "list", "--json")."""
    from dmtool.cli.app import app

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        runner = CliRunner()
        r = runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)
        return Result(r.exit_code, r.stdout, r.stderr)

    return run


def dmtool_command() -> list[str]:
    exe = shutil.which("dmtool", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "dmtool"]


@pytest.fixture
def run() -> Callable[..., Result]:
    """Run the installed dmtool in a subprocess: real exit codes and streams."""

    def go(*args: str, input: str | None = None, env: dict[str, str] | None = None,
           timeout: float = 60) -> Result:
        full_env = dict(os.environ)
        full_env.update(env or {})
        p = subprocess.run(dmtool_command() + list(args), input=input, capture_output=True,
                           text=True, env=full_env, timeout=timeout, stdin=None if input else
                           subprocess.DEVNULL)
        return Result(p.returncode, p.stdout, p.stderr)

    return go


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A pinned clock (DMTOOL_NOW) shared by dmtool and the sandbox X."""
    from tests.xworld import Clock

    return Clock(monkeypatch)


@pytest.fixture
def world(cli: Callable[..., Result], clock: Any) -> Any:
    """A sandbox profile with an empty X world: you and six people."""
    from tests.xworld import make_world

    return make_world(cli, clock)


@pytest.fixture
def db() -> Iterator[Callable[..., list[tuple[Any, ...]]]]:
    """Raw read access to the default profile's store: db(sql, params) -> rows."""
    import sqlite3

    from dmtool.paths import Paths

    conns: list[sqlite3.Connection] = []

    def query(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if not conns:
            conns.append(sqlite3.connect(Paths.resolve("default").db_file))
        return conns[0].execute(sql, params).fetchall()

    yield query
    for c in conns:
        c.close()
