"""dmtool/locks.py: the one module that takes OS file locks; nothing else may
need fcntl (on Windows there is none, and dmtool must still import and run).
And `dmtool demo` runs where the POSIX-only parts of Python are missing, as on
Windows (tests/windows_like)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import dmtool
from dmtool.locks import LockTimeout, file_lock

SRC = Path(dmtool.__file__).resolve().parent
# On PYTHONPATH, it makes every Python process started as if on Windows: no
# fcntl, pwd, termios..., no os.pwrite, os.getuid, time.tzset, signal.SIGKILL...,
# and a stand-in msvcrt that locks (and refuses reads of locked bytes) as Windows does.
WINDOWS_LIKE = Path(__file__).resolve().parent / "windows_like"


def windows_like(**extra: str) -> dict[str, str]:
    """The environment for a process (and its children) run as if on Windows."""
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(WINDOWS_LIKE), env.get("PYTHONPATH")) if p)
    return env


def run_as_if_on_windows(code: str) -> str:
    """Run Python code as if on Windows; its stdout (it must exit 0)."""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=windows_like(), timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_every_module_imports_without_fcntl() -> None:
    code = (
        "import sys, pkgutil, importlib\n"
        "sys.modules['fcntl'] = None  # import fcntl -> ImportError, as on Windows\n"
        "import dmtool\n"
        "names = [m.name for m in pkgutil.walk_packages(dmtool.__path__, 'dmtool.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(len(names))\n"
        "from dmtool.cli.app import app\n"
        "from typer.testing import CliRunner\n"
        "r = CliRunner().invoke(app, ['contacts', 'list', '--json'])\n"
        "assert r.exit_code == 0, r.output\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.split()[0]) > 50


def test_the_windows_stand_in_takes_effect(tmp_path: Path) -> None:
    code = ("import os, sys, time, signal\n"
            "assert not any(hasattr(os, n) for n in ('pwrite', 'pread', 'getuid', 'killpg'))\n"
            "assert not hasattr(time, 'tzset') and not hasattr(signal, 'SIGKILL')\n"
            "for name in ('fcntl', 'pwd', 'termios', 'msvcrt'):  # msvcrt: for dmtool only\n"
            "    try:\n"
            "        __import__(name)\n"
            "    except ImportError:\n"
            "        continue\n"
            "    raise SystemExit(name + ' imports')\n"
            "from pathlib import Path\n"
            "from dmtool.locks import LockTimeout, file_lock\n"
            f"path = Path({str(tmp_path / 'x.lock')!r})\n"
            "with file_lock(path):\n"
            "    try:\n"
            "        with file_lock(path, timeout=0):\n"
            "            raise SystemExit('locked twice')\n"
            "    except LockTimeout:\n"
            "        pass\n"
            "    try:\n"
            "        os.read(os.open(path, os.O_RDONLY), 1)\n"
            "    except PermissionError:\n"
            "        pass\n"
            "    else:\n"
            "        raise SystemExit('read the locked byte')\n"
            "print(sys.modules['msvcrt'].__file__)\n")
    assert Path(run_as_if_on_windows(code).strip()) == WINDOWS_LIKE / "msvcrt_standin.py"


def test_the_demo_runs_as_if_on_windows(run) -> None:
    # TZ not a zone name: times are shown through the C library's zone
    # (localtime._c_local), whose time.tzset Windows lacks.
    r = run("demo", env=windows_like(TZ="JST-9"), timeout=300)
    assert r.exit_code == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "Traceback" not in r.stderr and "unexpected" not in r.stderr
    assert "$ dmtool --profile demo usage --days 1" in r.stdout
    assert r.stdout.rstrip().endswith("and `dmtool demo` again resets it.")


def test_the_sync_lock_holder_is_readable_under_the_windows_lock(tmp_path: Path) -> None:
    # Windows refuses any other handle (the holder's own too) the locked first
    # byte of the lock file: the holder is written, and read, after it.
    code = ("from pathlib import Path\n"
            "from dmtool.services import poller\n"
            "from dmtool.store.db import FileLocks\n"
            f"locks = FileLocks(Path({str(tmp_path)!r}))\n"
            "me = poller.Holder('alice', 'host-a', '2026-03-02T11:58:00Z', 'sync')\n"
            "with locks.lock('sync'):\n"
            "    poller.record(locks, poller.Holder('someone', 'h', '2026-03-02T11:00:00Z', 'x' * 300))\n"
            "    poller.record(locks, me)  # shorter than the last one\n"
            "    assert poller.recorded(locks) == me, poller.recorded(locks)\n"
            "assert poller.recorded(locks) == me\n"
            "print('ok')\n")
    assert run_as_if_on_windows(code).split() == ["ok"]


def test_without_statvfs_a_full_disk_is_still_seen(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    from collections import namedtuple

    from dmtool.store import faults

    monkeypatch.delattr(os, "statvfs")  # Windows
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(1 << 30, 1 << 30, 4096))
    assert faults.disk_full(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(1 << 40, 0, 1 << 40))
    assert not faults.disk_full(tmp_path)


def test_without_killpg_a_hook_that_hangs_is_still_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    from dmtool.services import hooks

    monkeypatch.delattr(os, "killpg")  # Windows
    failure = hooks.run_command("exec sleep 30", "", 0.5, dict(os.environ))
    assert failure is not None and failure.startswith("timed out")


def test_only_the_lock_module_names_fcntl() -> None:
    users = []
    for p in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import) and any(a.name in ("fcntl", "msvcrt") for a in node.names):
                users.append(p.relative_to(SRC).as_posix())
    assert set(users) == {"locks.py"}


def test_an_exclusive_lock_excludes_and_a_shared_one_shares(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with file_lock(path):
        with pytest.raises(LockTimeout), file_lock(path, timeout=0.1):
            pass
        with pytest.raises(LockTimeout), file_lock(path, shared=True, timeout=0):
            pass
    with file_lock(path, shared=True), file_lock(path, shared=True, timeout=0), \
            pytest.raises(LockTimeout), file_lock(path, timeout=0):
        pass
    with file_lock(path, timeout=0):  # all released
        pass
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_dead_holder_holds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time\nfrom dmtool.locks import file_lock\n"
                               f"with file_lock(__import__('pathlib').Path({str(path)!r})):\n"
                               "    print('held', flush=True); time.sleep(60)\n"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with pytest.raises(LockTimeout), file_lock(path, timeout=0.1):
        pass
    holder.kill()
    holder.wait(timeout=10)
    with file_lock(path, timeout=5):
        pass
