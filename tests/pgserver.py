"""A real PostgreSQL server for the test session, started and stopped by it.

The server binaries come from the `pgserver` wheel (PostgreSQL 16, a test
dependency, so a fresh clone needs nothing installed by hand), else from a
system installation (pg_ctl on PATH, or /usr/lib/postgresql/*/bin), or from
DMTOOL_TEST_PG_BINDIR. Without any, the tests that need the server fail with
that reason: they never skip.

One server per session, in a short temporary folder (a Unix socket path may
not exceed 107 bytes; pytest's tmp_path is longer). It listens on its socket
only, trusts local connections, and skips fsync: a test database is thrown
away. Each test gets its own database, copied from a template that already
holds the migrated schema (`CREATE DATABASE ... TEMPLATE`), so running a
test on PostgreSQL costs a copy, not the migrations. A thread keeps a few
copies ready and drops used ones, on the second core while tests run.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import importlib.util
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

TEMPLATE = "dmtool_template"
READY = 3  # databases kept ready for the next tests


class ServerError(RuntimeError):
    pass


def find_bindir() -> Path:
    forced = os.environ.get("DMTOOL_TEST_PG_BINDIR")
    if forced:
        return Path(forced)
    # Only where the wheel is: importing pgserver would start its own machinery.
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.submodule_search_locations:
        bindir = Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"
        if (bindir / "pg_ctl").exists():
            return bindir
    exe = shutil.which("pg_ctl")
    if exe and shutil.which("initdb"):
        return Path(os.path.realpath(exe)).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    raise ServerError("no PostgreSQL server for the tests: the test dependency `pgserver` is not "
                      "installed (pip install -e '.[test]'; it has wheels for Python 3.9-3.12), "
                      "and no initdb/pg_ctl was found on PATH or in /usr/lib/postgresql")


def _run_as() -> dict[str, Any]:
    """PostgreSQL refuses to run as root: run it as an unprivileged user then."""
    if os.name != "posix" or os.geteuid() != 0:
        return {}
    import pwd

    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pw = pwd.getpwnam(name)
            return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
    raise ServerError("running as root, and there is no 'postgres' or 'nobody' user to run "
                      "PostgreSQL as")


class Server:
    def __init__(self) -> None:
        self.bindir = find_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="dmpg", dir="/tmp" if os.path.isdir("/tmp")
                                          else None))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.sock = self.root
        self.as_user = _run_as()
        self._admin: Any = None
        self._ready: queue.Queue[str] = queue.Queue()
        self._drops: queue.Queue[str] = queue.Queue()
        self._stopping = threading.Event()
        self._counter = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # --- life -----------------------------------------------------------------------

    def _pg(self, tool: str, *args: str, timeout: float = 120) -> None:
        p = subprocess.run([str(self.bindir / tool), *args], capture_output=True, text=True,
                           timeout=timeout, cwd=self.root, **self.as_user)
        if p.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise ServerError(f"{tool} failed ({self.bindir}): {p.stderr.strip()[-2000:]}\n{log}")

    def _reachable_binaries(self) -> None:
        """Running as another user, the binaries may sit in a folder that user
        cannot enter (a checkout under /root): then run a copy (PostgreSQL finds
        its lib and share folders beside its bin folder)."""
        if not self.as_user:
            return
        try:
            subprocess.run([str(self.bindir / "initdb"), "--version"], capture_output=True,
                           cwd=self.root, check=True, **self.as_user)
            return
        except (OSError, subprocess.CalledProcessError):
            pass
        # The pgserver wheel's binaries find their libraries at $ORIGIN/../../../pgserver.libs:
        # keep that layout (a system installation has no such folder).
        install = self.bindir.parent
        copy = self.root / "pg"
        shutil.copytree(install, copy / install.parent.name / install.name, symlinks=True)
        libs = install.parent.parent / f"{install.parent.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, copy / libs.name, symlinks=True)
        for dirpath, _, names in os.walk(copy):
            os.chmod(dirpath, 0o755)
            for n in names:
                with contextlib.suppress(OSError):
                    os.chmod(os.path.join(dirpath, n), 0o755)
        self.bindir = copy / install.parent.name / install.name / "bin"

    def start(self) -> Server:
        if self.as_user:
            os.chown(self.root, self.as_user["user"], self.as_user["group"])
        os.chmod(self.root, 0o700)
        self._reachable_binaries()
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                 "--locale=C", "-N")
        # The superuser is trusted; any other role needs its password (the tests
        # of a refused password create one).
        (self.data / "pg_hba.conf").write_text("local all postgres trust\n"
                                               "local all all scram-sha-256\n")
        opts = (f"-c listen_addresses='' -k {self.sock} -c fsync=off -c full_page_writes=off "
                "-c synchronous_commit=off -c max_connections=150 -c shared_buffers=32MB "
                "-c log_min_messages=warning")
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60",
                 "start")
        atexit.register(self.stop)
        self._make_template()
        self._thread = threading.Thread(target=self._worker, name="pg-databases", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._stopping.set()
            self._thread.join(timeout=30)
            self._thread = None
        with contextlib.suppress(Exception):
            self._pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)

    # --- databases ------------------------------------------------------------------

    def url(self, dbname: str, **params: str) -> str:
        query = "&".join([f"host={self.sock}", *(f"{k}={v}" for k, v in params.items())])
        return f"postgresql://postgres@/{dbname}?{query}"

    def connect(self, dbname: str = "postgres") -> Any:
        import psycopg2

        conn = psycopg2.connect(host=str(self.sock), user="postgres", dbname=dbname)
        conn.autocommit = True
        return conn

    def _make_template(self) -> None:
        from dmtool.store import open_store

        admin = self.connect()
        admin.cursor().execute(f"CREATE DATABASE {TEMPLATE}")
        admin.close()
        open_store(self.url(TEMPLATE)).close()

    def _worker(self) -> None:
        """Keep READY copies of the template ready; drop used databases when
        there is nothing to create (a test waits for a copy, never for a drop)."""
        admin = self.connect()
        cur = admin.cursor()
        while not self._stopping.is_set():
            try:
                if self._ready.qsize() < READY:
                    with self._lock:
                        self._counter += 1
                        name = f"t{self._counter}"
                    cur.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
                    self._ready.put(name)
                    continue
                try:
                    used = self._drops.get(timeout=0.05)
                except queue.Empty:
                    continue
                cur.execute(f"DROP DATABASE IF EXISTS {used} WITH (FORCE)")
            except BaseException as e:  # surfaced to the test waiting for a database
                self._error = e
                self._ready.put("")
                self._stopping.wait(1)
        admin.close()

    def take(self) -> str:
        """A fresh database with the current schema; give it back with `release`."""
        name = self._ready.get(timeout=120)
        if not name:
            raise ServerError(f"could not create a test database: {self._error}")
        return name

    def release(self, name: str) -> None:
        self._drops.put(name)


_server: Server | None = None
_failure: BaseException | None = None


def server() -> Server:
    """The session's server, started on first use; a start failure is kept and
    raised again for every test that needs it (they fail, with the reason)."""
    global _server, _failure
    if _failure is not None:
        raise ServerError(f"the PostgreSQL test server did not start: {_failure}")
    if _server is None:
        try:
            _server = Server().start()
        except BaseException as e:
            _failure = e
            raise
    return _server


def stop() -> None:
    global _server
    if _server is not None:
        _server.stop()
        _server = None
