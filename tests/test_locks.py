"""dmtool/locks.py: the one module that takes OS file locks; nothing else may
need fcntl (on Windows there is none, and dmtool must still import and run)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import dmtool
from dmtool.locks import LockTimeout, file_lock

SRC = Path(dmtool.__file__).resolve().parent


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
