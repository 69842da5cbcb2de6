"""A damaged store, a full disk, a read-only or foreign home (issue 11, points 3 and 6).

Damage is made by overwriting pages of a real store file (tests/damage.py). A
full disk is fault injection: `PRAGMA max_page_count`, an injected ENOSPC, a
WAL write stopped by RLIMIT_FSIZE. A read-only or foreign home is a real
one: a subprocess of a user who owns nothing here (uid 65534 via setpriv when
the tests run as root, where chmod proves nothing; chmod otherwise).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import resource
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dmtool.errors import DiskFull, StoreDamaged, StoreError
from dmtool.paths import Paths
from dmtool.store import faults, open_store
from tests.conftest import Result, dmtool_command
from tests.damage import corrupt_header, corrupt_page, table_pages
from tests.xworld import ALICE, BOB, Cli, Clock, sync

DAMAGE_HINT = "store damaged: restore a backup"


# SQLite's files: damaged pages, a full WAL, max_page_count, read-only folders and
# files (PostgreSQL's faults: tests/test_pg_faults.py).
pytestmark = pytest.mark.sqlite_only(reason="damaged pages, WAL and file modes are SQLite's "
                                                 "(PostgreSQL's faults: test_pg_faults.py)")


def db_file() -> Path:
    return Paths.resolve("default").db_file


def synced(cli: Cli, world: Any, clock: Clock) -> None:
    world.incoming_dm(ALICE, "Hi! Tell me about the beta?", at=clock.ago(hours=3))
    world.incoming_dm(BOB, "Hello, is there a student price?", at=clock.ago(hours=2))
    sync(cli)
    assert cli("db", "check").exit_code == 0  # and the store is closed cleanly


def error_of(r: Result) -> dict[str, Any]:
    return json.loads(r.stderr)["error"]  # type: ignore[no-any-return]


# --- a damaged store (point 3) -----------------------------------------------------------


def test_a_damaged_page_gives_the_restore_hint_everywhere(cli: Cli, world: Any,
                                                          clock: Clock) -> None:
    synced(cli, world, clock)
    root, _ = table_pages(db_file(), "contacts")
    corrupt_page(db_file(), root)
    for args in (["contacts", "list"], ["inbox"], ["thread", "alice"], ["digest"],
                 ["draft", "alice", "Thanks Alice!"], ["check", "alice"]):
        r = cli(*args)
        assert r.exit_code == 4, (args, r)
        assert "is damaged" in r.stderr and DAMAGE_HINT in r.stderr, (args, r)
        assert "unexpected" not in r.stderr and "please report" not in r.stderr
        err = error_of(cli(*args, "--json")) if args[0] in ("contacts", "inbox", "thread") else None
        assert err is None or err["code"] == "E_STORE_DAMAGED"


def test_db_check_lists_the_problems(cli: Cli, world: Any, clock: Clock) -> None:
    synced(cli, world, clock)
    _, leaves = table_pages(db_file(), "messages")
    corrupt_page(db_file(), leaves[-1])
    r = cli("db", "check", "--json")
    assert r.exit_code == 1, r
    out = r.json()
    assert out["ok"] is False and out["problems"] and out["schema_version"] is not None
    r = cli("db", "check")
    assert r.exit_code == 1 and r.stdout.strip() and "db restore" in r.stderr


def test_db_check_of_a_file_that_is_no_longer_a_store(cli: Cli) -> None:
    assert cli("contacts", "add", "alice").exit_code == 0
    corrupt_header(db_file())
    r = cli("db", "check", "--json")
    assert r.exit_code == 1, r
    assert r.json()["ok"] is False and r.json()["schema_version"] is None
    assert "is damaged" in r.json()["problems"][0]
    r = cli("inbox")
    assert r.exit_code == 4 and DAMAGE_HINT in r.stderr


def test_backup_refuses_to_copy_the_damage(cli: Cli, world: Any, clock: Clock,
                                           tmp_path: Path) -> None:
    synced(cli, world, clock)
    _, leaves = table_pages(db_file(), "messages")
    corrupt_page(db_file(), leaves[0])
    dest = tmp_path / "copy.db"
    r = cli("db", "backup", str(dest))
    assert r.exit_code == 4, r
    assert "damaged" in r.stderr and "nothing written" in r.stderr
    assert not dest.exists() and not list(tmp_path.glob("copy.db*"))


def test_a_backup_is_one_checked_file(cli: Cli, world: Any, clock: Clock, tmp_path: Path) -> None:
    synced(cli, world, clock)
    dest = tmp_path / "copy.db"
    r = cli("db", "backup", str(dest))
    assert r.exit_code == 0 and r.stdout == "", r
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("copy")) == ["copy.db"]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    conn = sqlite3.connect(dest)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 2


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm", "-journal"])
def test_backup_refuses_the_store_and_its_side_files(cli: Cli, suffix: str) -> None:
    assert cli("contacts", "add", "alice").exit_code == 0
    target = cli("db", "path").stdout.strip() + suffix
    r = cli("db", "backup", target)
    assert r.exit_code == 1, r
    assert "this profile's store or one of SQLite's files" in r.stderr, r  # not just "exists"
    assert cli("db", "check").exit_code == 0
    assert cli("contacts", "list", "--json").json()[0]["handle"] == "alice"
    if suffix:
        assert not Path(target).exists() or suffix == "-wal"


def test_backup_refuses_a_side_file_name_of_another_store(cli: Cli, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (a)").connection.close()
    r = cli("db", "backup", f"{other}-wal")
    assert r.exit_code == 1 and "SQLite uses" in r.stderr, r
    assert not Path(f"{other}-wal").exists()


# --- store errors come from store/ ----------------------------------------------------------


def _sqlite_error(code: int, text: str) -> sqlite3.Error:
    e = sqlite3.OperationalError(text)
    e.sqlite_errorcode = code  # type: ignore[attr-defined]
    return e


def test_errors_are_decided_by_code_and_free_space_not_by_text(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "dmtool.db"
    full = os.statvfs_result((4096, 4096, 1000, 0, 0, 1000, 10, 10, 0, 255))
    room = os.statvfs_result((4096, 4096, 10**7, 10**6, 10**6, 1000, 10, 10, 0, 255))
    io = sqlite3.SQLITE_IOERR_WRITE  # a WAL that cannot grow says "disk I/O error"
    monkeypatch.setattr(faults.os, "statvfs", lambda p: full)
    assert isinstance(faults.translate(_sqlite_error(io, "disk I/O error"), path), DiskFull)
    monkeypatch.setattr(faults.os, "statvfs", lambda p: room)
    err = faults.translate(_sqlite_error(io, "database or disk is full"), path)
    assert type(err) is StoreError and "disk full" not in err.message
    assert isinstance(faults.translate(_sqlite_error(sqlite3.SQLITE_FULL, "x"), path), DiskFull)
    assert isinstance(faults.translate(_sqlite_error(sqlite3.SQLITE_CORRUPT, "x"), path),
                      StoreDamaged)
    busy = faults.translate(_sqlite_error(sqlite3.SQLITE_BUSY, "database is locked"), path)
    assert busy is not None and busy.exit_code == 5 and busy.code == "E_BUSY"
    assert faults.translate(sqlite3.OperationalError("no such table: x"), path) is None


def test_a_full_wal_is_a_full_disk_not_damage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real WAL write that fails (RLIMIT_FSIZE stops it: Python ignores SIGXFSZ),
    on a filesystem statvfs says is full: DiskFull, nothing about damage."""
    store = open_store(tmp_path / "dmtool.db")
    wal = Path(f"{store.path}-wal")
    full = os.statvfs_result((4096, 4096, 1000, 0, 0, 1000, 10, 10, 0, 255))
    monkeypatch.setattr(faults.os, "statvfs", lambda p: full)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (wal.stat().st_size + 4096, hard))
    try:
        with pytest.raises(DiskFull) as caught, store.tx() as conn:
            conn.execute("INSERT INTO sync_state (key, value) VALUES ('big', zeroblob(400000))")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert "disk full" in caught.value.message and "damage" not in str(caught.value.hint)
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    assert caught.value.__cause__.sqlite_errorcode & 0xFF == sqlite3.SQLITE_IOERR
    store.close()


# --- a full disk (point 6) -------------------------------------------------------------------


def limit_pages(mp: pytest.MonkeyPatch, pages: int) -> None:
    """Every store opened may grow to `pages` pages: SQLite's own "disk full"."""
    import dmtool.store as store_pkg
    from dmtool.store import db as dbmod

    real = dbmod.open_store

    def small(path: Path, **kw: Any) -> Any:
        s = real(path, **kw)
        s.conn.execute(f"PRAGMA max_page_count = {pages}")
        return s

    mp.setattr(store_pkg, "open_store", small)


def test_contacts_import_on_a_full_disk_says_disk_full(cli: Cli, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("contacts", "add", "alice").exit_code == 0
    pages = sqlite3.connect(db_file()).execute("PRAGMA page_count").fetchone()[0]
    csv = tmp_path / "people.csv"
    csv.write_text("handle,name\n" + "".join(f"p{i},Person number {i} {'x' * 60}\n"
                                             for i in range(3000)), encoding="utf-8")
    with monkeypatch.context() as mp:
        limit_pages(mp, pages + 2)
        r = cli("contacts", "import", str(csv), "--json")
    assert r.exit_code == 4, r
    err = error_of(r)
    assert err["code"] == "E_DISK_FULL" and "disk full" in err["message"]
    assert "rollback" not in r.stderr and "damaged" not in r.stderr
    assert cli("db", "check").exit_code == 0
    assert [c["handle"] for c in cli("contacts", "list", "--json").json()] == ["alice"]


def test_a_transaction_that_sqlite_already_rolled_back_keeps_its_real_error(
        tmp_path: Path) -> None:
    """SQLite ends the transaction itself on some errors (a full disk): the
    store's ROLLBACK must not replace that error with "cannot rollback"."""
    store = open_store(tmp_path / "dmtool.db")
    with pytest.raises(DiskFull), store.tx() as conn:
        conn.execute("ROLLBACK")  # as SQLite does after SQLITE_FULL
        raise DiskFull("disk full: cannot write to the store")
    assert not store.conn.in_transaction
    store.close()


def test_config_set_on_a_full_disk(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("config", "set", "policy.daily_sends", "10").exit_code == 0
    path = Paths.resolve("default").config_file
    before = path.read_bytes()
    import tomli_w

    def dump(obj: Any, f: Any) -> None:
        f.write(b"[policy]\n")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tomli_w, "dump", dump)
    r = cli("config", "set", "policy.daily_sends", "12")
    assert r.exit_code == 4, r
    assert "config not saved: disk full" in r.stderr and "damage" not in r.stderr
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.toml"]


def test_opening_on_a_full_disk_says_disk_full(monkeypatch: pytest.MonkeyPatch,
                                               cli: Cli) -> None:
    """The store cannot make its -shm file: "disk I/O error" from SQLite, a
    full disk to dmtool (statvfs), and no advice to move the store aside."""
    assert cli("contacts", "add", "alice").exit_code == 0
    full = os.statvfs_result((4096, 4096, 1000, 0, 0, 1000, 10, 10, 0, 255))
    monkeypatch.setattr(faults.os, "statvfs", lambda p: full)
    real = sqlite3.connect

    def failing(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        raise _sqlite_error(sqlite3.SQLITE_IOERR_SHMSIZE, "disk I/O error")

    monkeypatch.setattr(sqlite3, "connect", failing)
    try:
        r = cli("inbox", "--json")
    finally:
        monkeypatch.setattr(sqlite3, "connect", real)
    assert r.exit_code == 4, r
    assert error_of(r)["code"] == "E_DISK_FULL"
    assert "move it aside" not in r.stderr and "damaged" not in r.stderr


# --- a read-only or foreign home (point 6) -------------------------------------------------


def nobody() -> list[str]:
    """The prefix that runs a command as a user who owns nothing here: when the
    tests run as root (which chmod cannot stop), uid 65534 via setpriv. The
    interpreter may live where that user cannot read (under /root): then it
    gets CAP_DAC_READ_SEARCH, which lets it read and search, never write."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to run as another user"
    prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = subprocess.run([*prefix, sys.executable, "-c", "import dmtool"], capture_output=True,
                           stdin=subprocess.DEVNULL)
    if probe.returncode != 0:
        prefix += ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
    return prefix


@pytest.fixture
def foreign_home(cli: Cli, world: Any, clock: Clock) -> Iterator[Path]:
    """A home with a synced store that the process running dmtool may read but
    not write: owned by root when root runs the tests, else made read-only."""
    synced(cli, world, clock)
    src = Path(os.environ["DMTOOL_HOME"])
    home = Path(tempfile.mkdtemp(prefix="dmtool-foreign-")) / "home"
    shutil.copytree(src, home)
    for p in [home.parent, *home.rglob("*"), home]:
        if p.is_dir():
            p.chmod(0o755 if os.geteuid() == 0 else 0o555)
        elif p.is_file():
            p.chmod(0o644 if os.geteuid() == 0 else 0o444)
    try:
        yield home
    finally:
        for p in [home, *home.rglob("*")]:
            if p.is_dir():
                p.chmod(0o755)
        shutil.rmtree(home.parent)


def run_as_nobody(home: Path, *args: str) -> Result:
    env = {**os.environ, "DMTOOL_HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"}
    p = subprocess.run([*nobody(), *dmtool_command(), *args], capture_output=True, text=True,
                       env=env, stdin=subprocess.DEVNULL, timeout=120)
    return Result(p.returncode, p.stdout, p.stderr)


def tree_state(home: Path) -> dict[str, tuple[int, str]]:
    """Every path's mode and (for files) content digest."""
    out = {}
    for p in sorted(home.rglob("*")):
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
        out[str(p.relative_to(home))] = (stat.S_IMODE(p.stat().st_mode), digest)
    return out


def test_reads_work_in_a_home_that_is_not_ours(foreign_home: Path) -> None:
    before = tree_state(foreign_home)
    for args in (["inbox", "--json"], ["log", "--json"], ["db", "check", "--json"],
                 ["contacts", "list", "--json"], ["contacts", "show", "alice", "--json"],
                 ["thread", "alice", "--json"], ["digest", "--json"], ["report", "--json"],
                 ["drafts", "list", "--json"], ["check", "alice", "--json"], ["paths", "--json"]):
        r = run_as_nobody(foreign_home, *args)
        assert r.exit_code == 0, (args, r)
        json.loads(r.stdout)
        assert "unexpected" not in r.stderr
    # thread and digest acted as --peek; nothing at all was written or chmodded.
    assert tree_state(foreign_home) == before
    inbox = json.loads(run_as_nobody(foreign_home, "inbox", "--json").stdout)
    assert any(c["unread"] for c in inbox)


def test_writes_say_where_they_cannot_write(foreign_home: Path) -> None:
    before = tree_state(foreign_home)
    data = foreign_home / "data" / "default"
    for args, where in ((["done", "alice"], str(data / "dmtool.db")),
                        (["contacts", "add", "zoe"], str(data / "dmtool.db")),
                        (["config", "set", "policy.daily_sends", "10"], "config.toml"),
                        (["sync"], "sync.lock")):
        r = run_as_nobody(foreign_home, *args)
        assert r.exit_code == 4, (args, r)
        assert "cannot write to" in r.stderr and where in r.stderr, (args, r)
        assert "unexpected" not in r.stderr
        if args[0] in ("contacts", "sync"):  # the ones that take --json: the code, by errno
            r = run_as_nobody(foreign_home, *args, "--json")
            assert json.loads(r.stderr)["error"]["code"] == "E_READ_ONLY", (args, r)
    assert tree_state(foreign_home) == before


def test_the_sandbox_x_says_where_it_cannot_write(foreign_home: Path) -> None:
    """The sandbox world is a file of the profile too (found by the property test
    over every command): its lock and its state are dmtool's writes, with the
    same errors, not "unexpected PermissionError"."""
    before = tree_state(foreign_home)
    for args in (["sandbox", "receive", "alice", "Hello again"], ["check", "newperson"]):
        r = run_as_nobody(foreign_home, *args)
        assert r.exit_code == 4, (args, r)
        assert "cannot write to" in r.stderr and "sandbox.json" in r.stderr, (args, r)
        assert "unexpected" not in r.stderr, (args, r)
    assert tree_state(foreign_home) == before


def test_the_sandbox_x_on_a_full_disk(cli: Cli, world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    path = Paths.resolve("default").sandbox_file
    before = path.read_bytes()
    real = Path.write_text

    def write_text(self: Path, data: str, *args: Any, **kwargs: Any) -> int:
        if self.name.endswith(".tmp"):
            real(self, data[:100], *args, **kwargs)  # part of it, then no space
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, data, *args, **kwargs)

    with monkeypatch.context() as mp:
        mp.setattr(Path, "write_text", write_text)
        r = cli("sandbox", "receive", "alice", "Hello")
    assert r.exit_code == 4, r
    assert "disk full" in r.stderr and "sandbox.json" in r.stderr and "unexpected" not in r.stderr
    assert path.read_bytes() == before
    assert not [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_folders_that_exist_keep_their_permissions(cli: Cli) -> None:
    assert cli("contacts", "add", "alice").exit_code == 0
    paths = Paths.resolve("default")
    for d, mode in ((paths.data_dir, 0o500), (paths.config_dir, 0o750), (paths.state_dir, 0o711)):
        d.chmod(mode)
    try:
        assert cli("inbox").exit_code == 0
        assert cli("contacts", "list").exit_code == 0
        assert stat.S_IMODE(paths.data_dir.stat().st_mode) == 0o500
        assert stat.S_IMODE(paths.config_dir.stat().st_mode) == 0o750
        assert stat.S_IMODE(paths.state_dir.stat().st_mode) == 0o711
    finally:
        paths.data_dir.chmod(0o700)


def test_new_folders_are_private(cli: Cli) -> None:
    assert cli("contacts", "add", "alice").exit_code == 0
    paths = Paths.resolve("default")
    for d in (paths.data_dir, paths.config_dir, paths.state_dir):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700


def test_the_cli_maps_only_dmtool_errors() -> None:
    source = (Path(__file__).parent.parent / "src" / "dmtool" / "cli" / "app.py").read_text()
    assert "sqlite3" not in source


def test_only_store_catches_a_drivers_errors() -> None:
    """Issue 11's precision: store/ turns the engine's errors into StoreDamaged,
    DiskFull, StoreReadOnly, StoreBusy; nothing above it catches a driver's
    exception (so a second engine needs no change above store/)."""
    import re

    src = Path(__file__).parent.parent / "src" / "dmtool"
    catching = re.compile(r"except\b[^:\n]*\b(sqlite3|psycopg)\b")
    found = [f"{p.relative_to(src)}:{n}" for p in sorted(src.rglob("*.py"))
             if p.relative_to(src).parts[0] != "store"
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if catching.search(line)]
    assert not found, f"a driver's exception caught above store/: {found}"


Check = Callable[..., Result]
