"""Every test runs offline, in its own DMTOOL_HOME, with no colour and a fixed width.

Tests that touch the store (those using the cli, run, world, db or new_store
fixtures) run twice: on SQLite and on PostgreSQL (a real server the session
starts: tests/pgserver.py), through the `store_engine` fixture. A module (or
a test) about SQLite's files opts out with `pytestmark =
pytest.mark.sqlite_only(reason=...)` or a name (and reason) in
SQLITE_ONLY_MODULES; new store and CLI tests run on both by default.
"""

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
                "BROWSER", "DISPLAY", "WAYLAND_DISPLAY",  # no test opens a real browser
                "DMTOOL_DATABASE_URL", "DMTOOL_SANDBOX_DATABASE_URL", "DMTOOL_SANDBOX_FILE"):
        monkeypatch.delenv(var, raising=False)
    # libpq reads PG* variables: a developer's own must never point a test anywhere
    for var in [v for v in os.environ if v.startswith("PG")]:
        monkeypatch.delenv(var, raising=False)
    # Nor touches the OS keyring: "fail" is never a usable keyring, so secrets go to
    # files unless a test installs its own backend (tests/keyring_backend.py).
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    return home


# --- both engines ---------------------------------------------------------------------

# Fixtures that mean "this test uses the store": such a test runs on both engines.
STORE_FIXTURES = frozenset({"cli", "run", "world", "db", "new_store"})
# Modules that run on SQLite only, and why: none of them is about what the
# store holds (those run on both engines).
SQLITE_ONLY_MODULES: dict[str, str] = {
    "test_help": "the command tree's help: no store",
    "test_docs": "the generated reference and the docs: no store",
    "test_startup": "SQLite's start-up is what is measured (PostgreSQL's import: test_pg.py)",
    "test_lean_start": "what a local command imports on the SQLite default",
    "test_review_pty": "a terminal's keys against review's prompt: the store is incidental",
    "test_demo": "the demo keeps its own SQLite store whatever the URLs say",
    "test_quality": "ruff and mypy: no store",
    "test_layers": "imports between modules: no store",
    "test_x_client": "the X client against the sandbox's HTTP: no store",
    "test_x_cassettes": "X's recorded answers: no store",
    "test_sandbox_openapi": "the sandbox X against X's published document: no store",
    "test_credentials": "credentials files, keyring and environment: no store",
    "test_json_everywhere": "the shape of every command's output on a populated store; "
                            "the same walk runs on both engines in test_roles.py",
    "test_locks": "the file locks of dmtool/locks.py (PostgreSQL's advisory locks: test_pg.py, "
                  "test_concurrency.py)",
    "test_pgserver": "starts its own servers",
    "test_pgsql": "the translator's text, no server",
}
ENGINES = ("sqlite", "pg")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: runs on the SQLite store only")
    config.addinivalue_line("markers", "pg_only: runs on the PostgreSQL store only")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_engine" not in metafunc.fixturenames:
        return
    module = metafunc.module.__name__.rpartition(".")[2]
    if metafunc.definition.get_closest_marker("pg_only"):
        metafunc.parametrize("store_engine", ["pg"], indirect=True)
    elif (module not in SQLITE_ONLY_MODULES
            and not metafunc.definition.get_closest_marker("sqlite_only")
            and STORE_FIXTURES & set(metafunc.fixturenames)):
        metafunc.parametrize("store_engine", ENGINES, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A parameter marked sqlite_only (pytest.param(..., marks=...)) runs on SQLite only.
    Every sqlite_only mark says why (`reason=`): a test left off PostgreSQL must
    be about something PostgreSQL does not have."""
    keep, drop = [], []
    for item in items:
        for mark in item.iter_markers("sqlite_only"):
            if not str(mark.kwargs.get("reason", "")).strip():
                raise pytest.UsageError(f"{item.nodeid}: sqlite_only needs a reason= saying "
                                        "what is SQLite's own")
        spec = getattr(item, "callspec", None)
        on_pg = spec is not None and spec.params.get("store_engine") == "pg"
        (drop if on_pg and item.get_closest_marker("sqlite_only") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(autouse=True)
def store_engine(request: pytest.FixtureRequest, dmtool_home: Path,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """"sqlite", or "pg": then this test has its own PostgreSQL database, named
    by DMTOOL_DATABASE_URL and DMTOOL_SANDBOX_DATABASE_URL (so sandbox
    profiles use it too)."""
    engine = getattr(request, "param", "sqlite")
    if engine == "sqlite":
        yield engine
        return
    from tests import pgserver

    srv = pgserver.server()
    name = srv.take()
    url = srv.url(name)
    monkeypatch.setenv("DMTOOL_DATABASE_URL", url)
    monkeypatch.setenv("DMTOOL_SANDBOX_DATABASE_URL", url)
    # The server's own client tools first (`db backup` runs pg_dump, which must
    # not be older than the server), as a team's machine would have them.
    monkeypatch.setenv("PATH", f"{srv.bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    request.node.pg_url = url
    try:
        yield engine
    finally:
        srv.release(name)


@pytest.fixture
def pg_url(store_engine: str) -> str:
    """This test's PostgreSQL database (for tests marked pg_only)."""
    assert store_engine == "pg", "pg_url needs @pytest.mark.pg_only or the pg engine"
    return os.environ["DMTOOL_DATABASE_URL"]


@pytest.fixture
def new_store(store_engine: str, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """new_store(migrate_to=None): an empty store of this test's engine, in a
    new SQLite file or a new PostgreSQL schema (the URL's search_path)."""
    from dmtool.store import open_store

    opened: list[Any] = []
    count = [0]

    def make(migrate_to: int | None = None) -> Any:
        count[0] += 1
        if store_engine == "sqlite":
            store = open_store(tmp_path / f"store{count[0]}.db", migrate_to=migrate_to)
        else:
            store = open_store(schema_url(f"s{count[0]}"), migrate_to=migrate_to)
        opened.append(store)
        return store

    yield make
    for s in opened:
        s.close()


def schema_url(schema: str) -> str:
    """This test's database with its own schema (created if missing) first on the search_path."""
    from tests import pgserver

    url = os.environ["DMTOOL_DATABASE_URL"]
    dbname = url.split("/")[3].split("?")[0]
    admin = pgserver.server().connect(dbname)
    admin.cursor().execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    admin.close()
    return f"{url}&options=-csearch_path%3D{schema}"


def default_store_at(version: int, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The default profile's store, made at schema `version` (an upgrade test
    then lets a command upgrade it): its SQLite file, or on PostgreSQL a new
    schema the profile then uses (the test's database holds the current one)."""
    from dmtool.paths import Paths
    from dmtool.store import open_store

    if "DMTOOL_DATABASE_URL" not in os.environ:
        return open_store(Paths.resolve("default").db_file, migrate_to=version)
    url = schema_url(f"at_{version}")
    monkeypatch.setenv("DMTOOL_DATABASE_URL", url)
    monkeypatch.setenv("DMTOOL_SANDBOX_DATABASE_URL", url)
    return open_store(url, migrate_to=version)


def profile_env(profile: str) -> dict[str, str]:
    """The environment for commands on another profile that needs a store of its
    own: on PostgreSQL a schema of this test's database (as its own store.url
    would give it; the test's DMTOOL_DATABASE_URL names one store for all
    profiles); nothing on SQLite, where each profile has its file."""
    if "DMTOOL_DATABASE_URL" not in os.environ:
        return {}
    url = schema_url(f"profile_{profile}")
    return {"DMTOOL_DATABASE_URL": url, "DMTOOL_SANDBOX_DATABASE_URL": url}


def pg_raw(sql: str) -> None:
    """Run PostgreSQL's own SQL (a trigger, a function: no translation) on this
    test's database, as its owner would."""
    from tests import pgserver

    dbname = os.environ["DMTOOL_DATABASE_URL"].split("/")[3].split("?")[0]
    admin = pgserver.server().connect(dbname)
    try:
        admin.cursor().execute(sql)
    finally:
        admin.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from tests import pgserver

    pgserver.stop()


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
def db(store_engine: str) -> Iterator[Callable[..., list[tuple[Any, ...]]]]:
    """Raw access to the default profile's store, on either engine: db(sql, params)
    -> rows (SQLite's dialect; store/pgsql.py translates it for PostgreSQL)."""
    import sqlite3

    from dmtool.paths import Paths

    conns: list[Any] = []

    def query(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if not conns:
            if store_engine == "sqlite":
                conns.append(sqlite3.connect(Paths.resolve("default").db_file, isolation_level=None))
            else:
                from dmtool.store.pg import connect
                from dmtool.store.url import parse

                conns.append(connect(parse(os.environ["DMTOOL_DATABASE_URL"])))
        return [tuple(r) for r in conns[0].execute(sql, params).fetchall()]

    yield query
    for c in conns:
        c.close()


def table_names(store: Any) -> list[str]:
    """The store's tables (SQLite's internal ones aside), on either engine."""
    if store.engine == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    else:
        sql = ("SELECT table_name FROM information_schema.tables WHERE table_schema = "
               "current_schema() AND table_type = 'BASE TABLE'")
    return sorted(r[0] for r in store.conn.execute(sql))


def profile_store(profile: str = "default") -> Any:
    """The profile's store as dmtool opens it, on this test's engine."""
    from dmtool.appstate import AppState
    from dmtool.store import open_store

    st = AppState(profile=profile)
    st.paths.ensure()
    return open_store(st.store_location(), lock_dir=st.paths.state_dir)
