"""Files and folders named on the command line (found by the property test over
every command, tests/test_every_command.py): one parser for them all, so a
name no system could open is a usage error (exit 2) and one this user may not
look at is bad input (exit 1), never "unexpected OSError ... please report it".

Before it, `import archive` and `db backup` with a 300-character name, and
`import archive`, `db backup` and `db restore` in a folder the user may not
enter, were E_INTERNAL; `db backup '~nosuchuser/x'` too (RuntimeError).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer

from dmtool.cli import params
from dmtool.cli.reference import leaf_commands
from tests.conftest import dmtool_command
from tests.test_store_faults import nobody

LONG_NAME = "a" * 300
LONG_PATH = "/".join(["b" * 200] * 25)  # each name fine, the whole over 4095 bytes


def test_the_parser_refuses_names_no_system_can_open():
    for bad, said in (("", "empty"), ("x\0y", "NUL"), (LONG_NAME, "too long"),
                      (LONG_PATH, "too long"), ("\ud800", "cannot use")):
        for parse in (params.file_name, params.local_path):
            with pytest.raises(typer.BadParameter, match=said if said != "cannot use" else "not a"):
                parse(bad)
    assert params.file_name("-") == "-"  # stdin
    assert params.local_path("-") == Path("-")  # a file called "-": no stdin for these
    assert params.file_name("no/such/file.csv") == "no/such/file.csv"  # the command says so
    assert params.local_path("~") == Path.home()
    with pytest.raises(typer.BadParameter, match="no such home folder"):
        params.local_path("~nosuchuser-dmtool/x")
    assert params.local_path("\udcff.db") == Path("\udcff.db")  # bytes a shell may pass


def test_every_file_parameter_uses_the_parser():
    """Walk the whole tree: a file or folder a command takes goes through
    cli/params.py's file_name or local_path."""
    found = []
    for path, cmd in leaf_commands():
        for p in cmd.params:
            named = p.name in ("file", "path") or type(p.type).__name__ == "Path"
            if named:
                func = getattr(getattr(p.type, "func", None), "__name__", "")
                assert func in ("file_name", "local_path"), \
                    f"`dmtool {path}` {p.name}: use cli/params.py's file_argument/file_option/" \
                    "path_argument"
                found.append(f"{path} {p.name}")
    assert {"contacts import file", "db backup file", "db restore file", "import archive path",
            "draft file", "reply file", "drafts edit file", "templates add file"} <= set(found)


COMMANDS_WITH_FILES = [
    ["import", "archive", "{}"], ["db", "backup", "{}"], ["db", "restore", "{}", "--yes"],
    ["contacts", "import", "{}"], ["draft", "bob", "--file", "{}"],
    ["templates", "add", "t", "--file", "{}"], ["drafts", "edit", "1", "--file", "{}"],
]


@pytest.mark.parametrize("name", [LONG_NAME, LONG_PATH, ""])
def test_names_too_long_are_usage_errors_everywhere(cli, name):
    cli("contacts", "add", "bob")
    for args in COMMANDS_WITH_FILES:
        r = cli(*[a.format(name) for a in args])
        assert r.exit_code == 2, (args, r)
        assert "unexpected" not in r.stderr and "report it" not in r.stderr, (args, r)
        assert len(r.stderr) < 1000, (args, r)  # the name is cut when quoted


def test_a_home_folder_that_does_not_exist(cli):
    r = cli("db", "backup", "~nosuchuser-dmtool/copy.db")
    assert r.exit_code == 2 and "no such home folder" in r.stderr, r


def test_an_internal_error_does_not_quote_a_huge_message(cli, monkeypatch, tmp_path):
    """The last resort cuts what it quotes (an exception may carry an argument)."""
    import dmtool.services.backups as backups

    def broken(*a, **kw):
        raise ValueError("x" * 100_000)

    monkeypatch.setattr(backups, "backup", broken)
    r = cli("db", "backup", str(tmp_path / "copy.db"))
    assert r.exit_code == 1 and "E_INTERNAL" not in r.stderr  # text mode
    assert "unexpected ValueError" in r.stderr and len(r.stderr) < 1000, len(r.stderr)


# --- folders this user may not enter or read: a real other user --------------------------------


@pytest.fixture
def locked() -> Iterator[Path]:
    """A folder with a closed folder and an unreadable file and folder in it,
    and a home the user of nobody() may write."""
    root = Path(tempfile.mkdtemp(prefix="dmtool-locked-"))
    try:
        root.chmod(0o755)
        (root / "home").mkdir(mode=0o777)
        (root / "home").chmod(0o777)
        (root / "closed").mkdir(mode=0o700)
        (root / "closed" / "people.csv").write_text("handle\nbob\n", encoding="utf-8")
        (root / "open").mkdir(mode=0o755)
        (root / "open").chmod(0o755)
        unreadable = root / "open" / "copy.db"
        unreadable.write_bytes(b"SQLite format 3\0")
        unreadable.chmod(0o600)
        (root / "open" / "archive" / "data").mkdir(parents=True)
        (root / "open" / "archive").chmod(0o700)
        if os.geteuid() != 0:  # without root, make them unusable for ourselves
            (root / "closed").chmod(0o000)
            unreadable.chmod(0o000)
            (root / "open" / "archive").chmod(0o000)
        yield root
    finally:
        for d in (root / "closed", root / "open" / "archive"):
            if d.exists():
                d.chmod(0o700)
        shutil.rmtree(root, ignore_errors=True)


def as_nobody(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DMTOOL_HOME": str(root / "home")}
    return subprocess.run([*nobody(), *dmtool_command(), *args], capture_output=True, text=True,
                          env=env, timeout=60, stdin=subprocess.DEVNULL, cwd=root)


def test_a_folder_on_the_way_that_may_not_be_entered(locked):
    closed = locked / "closed"
    for args in (["import", "archive", str(closed / "archive.zip")],
                 ["db", "backup", str(closed / "copy.db")],
                 ["db", "restore", str(closed / "copy.db"), "--yes"],
                 ["contacts", "import", str(closed / "people.csv")],
                 ["draft", "bob", "--file", str(closed / "people.csv")]):
        p = as_nobody(locked, *args)
        assert p.returncode == 1, (args, p.stderr)
        assert "cannot use" in p.stderr and "Permission denied" in p.stderr, (args, p.stderr)
        assert "unexpected" not in p.stderr, (args, p.stderr)
    p = as_nobody(locked, "import", "archive", str(closed / "archive.zip"), "--json")
    assert json.loads(p.stderr)["error"]["code"] == "E_INPUT" and p.stdout == ""


def test_a_file_or_folder_that_may_not_be_read(locked):
    p = as_nobody(locked, "import", "archive", str(locked / "open" / "archive"))
    assert p.returncode == 1 and "cannot read" in p.stderr, p.stderr
    p = as_nobody(locked, "db", "restore", str(locked / "open" / "copy.db"), "--yes")
    assert p.returncode == 1, p.stderr
    assert "cannot read" in p.stderr and "not a dmtool store" not in p.stderr, p.stderr


def test_a_store_that_may_not_be_read_says_so(locked):
    """Not "cannot write to the folder": the store file itself is unreadable."""
    home = locked / "home"
    env = {**os.environ, "DMTOOL_HOME": str(home)}
    subprocess.run([*dmtool_command(), "contacts", "add", "bob"], env=env, check=True,
                   capture_output=True, stdin=subprocess.DEVNULL)
    for p in home.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    db = next(home.rglob("dmtool.db"))
    db.chmod(0o600 if os.geteuid() == 0 else 0o000)
    try:
        for args in (["contacts", "list"], ["db", "check"]):
            p = as_nobody(locked, *args)
            assert p.returncode == 4, (args, p.stderr)
            assert f"cannot read {db}" in p.stderr, (args, p.stderr)
    finally:
        db.chmod(0o600)

