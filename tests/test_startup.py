"""Local commands must start fast: they never import tweepy, requests or rich."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# A run of dmtool in a fresh interpreter; a probe appends what it reports (on stderr).
RUN = """
import sys
from dmtool.cli.app import main
sys.argv = ["dmtool", *{args!r}]
try:
    main()
except SystemExit:
    pass
"""

PROBE = RUN + """
heavy = sorted(m for m in ("tweepy", "requests", "rich", "oauthlib", "urllib3", "psycopg2")
               if m in sys.modules)
sys.stderr.write("HEAVY=" + ",".join(heavy) + "\\n")
"""


def probe(*args: str, env: dict[str, str] | None = None) -> tuple[set[str], str]:
    """The heavy modules a run of dmtool imported, and its stdout."""
    p = subprocess.run([sys.executable, "-c", PROBE.format(args=list(args))],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       env={**os.environ, **(env or {})})
    line = [x for x in p.stderr.splitlines() if x.startswith("HEAVY=")][-1]
    return set(filter(None, line[6:].split(","))), p.stdout


def loaded(*args: str) -> set[str]:
    return probe(*args)[0]


@pytest.mark.parametrize("args", [
    ["--help"],
    ["contacts", "list", "--json"],
    ["contacts", "list"],
    ["contacts", "add", "alice"],
    ["check", "alice", "--json"],
    ["config", "show", "--json"],
    ["inbox", "--json"],
    ["digest", "--format", "json"],
    ["digest", "--json"],
    ["drafts", "list", "--json"],
    ["log", "--json"],
    ["templates", "list"],
    ["db", "check", "--json"],
    ["report"],
    ["report", "--json"],
])
def test_local_commands_import_nothing_heavy(args):
    heavy = loaded(*args)
    assert "tweepy" not in heavy and "requests" not in heavy
    assert "psycopg2" not in heavy  # the PostgreSQL driver only for a PostgreSQL store
    if "--help" not in args:
        assert "rich" not in heavy  # piped output never needs rich


@pytest.mark.pg_only
def test_the_postgresql_driver_is_imported_for_a_postgresql_store_only(pg_url):
    heavy, out = probe("contacts", "list", "--json")
    assert out.strip() == "[]" and "psycopg2" in heavy
    heavy, _ = probe("contacts", "list", "--json", env={"DMTOOL_DATABASE_URL": ""})
    assert "psycopg2" not in heavy


@pytest.mark.parametrize("shell,line,offered", [
    ("bash", "dmtool thread ", "alice"),
    ("bash", "dmtool ", "contacts"),
    ("zsh", "dmtool ", "Your contact record"),  # every command, with its help
    ("zsh", "dmtool contacts show ", '"alice":"Alice"'),
    ("fish", "dmtool draft alice --template ", "hello\tHi first_name"),
])
def test_completion_imports_nothing_heavy(cli, shell, line, offered):
    """A TAB runs a whole dmtool: it must cost no more than a local command."""
    assert cli("contacts", "add", "alice", "--name", "Alice").exit_code == 0
    assert cli("templates", "add", "hello", "Hi {first_name}").exit_code == 0
    words = line.split() + [""]
    env = {"_DMTOOL_COMPLETE": f"complete_{shell}", "COMP_WORDS": "\n".join(words),
           "COMP_CWORD": str(len(words) - 1), "_TYPER_COMPLETE_ARGS": line,
           "_TYPER_COMPLETE_FISH_ACTION": "get-args"}
    heavy, out = probe(env=env)
    assert offered in out
    assert heavy == set()


# --- what each local command imports, from `python -X importtime` (issue 16) ---------

IMPORTTIME = """
import sys
from dmtool.cli.app import main
sys.argv = ["dmtool", *{args!r}]
try:
    main()
except SystemExit:
    pass
"""


def importtime(*args: str, env: dict[str, str] | None = None) -> dict[str, int]:
    """Every module a run of dmtool imports (the interpreter's own start-up
    aside), with its own import time in microseconds, as -X importtime says."""
    p = subprocess.run([sys.executable, "-X", "importtime", "-c", IMPORTTIME.format(args=list(args))],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       env={**os.environ, **(env or {})})
    found: dict[str, int] = {}
    for line in p.stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            own, _, name = line[len("import time:"):].split("|")
            found[name.strip()] = int(own)
    assert "dmtool.cli.app" in found, p.stderr[-2000:]
    return found


# (command, does it lint a text)
LOCAL_COMMANDS = [
    (["inbox", "--json"], False),
    (["thread", "alice", "--json", "--peek"], False),
    (["digest", "--format", "json", "--peek"], False),
    (["check", "alice", "--json"], False),
    (["contacts", "list", "--json"], False),
    (["contacts", "show", "alice", "--json"], False),
    (["report", "--days", "365", "--json"], False),
    (["log", "--json"], False),
    (["search", "hello", "--json"], False),
    (["config", "show", "--json"], False),
    (["db", "check", "--json"], False),
    (["snooze", "alice", "3d"], False),
    (["drafts", "show", "1", "--json"], True),
]


@pytest.fixture
def local_store(run) -> None:
    """A profile with settings in every section (a [lint] table too) and a
    contact with a conversation and a draft: the commands do their real work."""
    from dmtool.paths import Paths

    paths = Paths.resolve("default")
    paths.ensure()
    paths.config_file.write_text('[identity]\nnames = ["Sam"]\n\n[policy]\ndaily_sends = 15\n\n'
                                 '[lint]\nshouting_ratio = 0.8\n', encoding="utf-8")
    assert run("contacts", "add", "alice").exit_code == 0
    assert run("contacts", "engage", "alice", "--kind", "request",
               "--evidence", "asked me to write").exit_code == 0
    assert run("draft", "alice", "Hi Alice, Sam here: the notes you asked for.").exit_code \
        in (0, 3)


@pytest.mark.parametrize("args,lints", LOCAL_COMMANDS, ids=lambda a: " ".join(a) if isinstance(
    a, list) else "")
def test_a_local_command_imports_neither_lint_nor_x(local_store, args, lints):
    """-X importtime lists what a command imported: no tweepy, requests or
    rich; the lint module and its lexicons only for a command that lints a
    text; no tomllib for a config file as dmtool writes them."""
    found = importtime(*args)
    heavy = sorted(m for m in found if m.split(".")[0] in (
        "tweepy", "requests", "rich", "oauthlib", "urllib3", "keyring"))
    assert heavy == []
    assert ("dmtool.lint" in found) == lints
    assert "tomllib" not in found  # the config file dmtool wrote is read by dmtool.tomlread


# Modules a command does not need, which it once imported for one small helper
# or constant: each costs its class creation at every start.
NOT_IMPORTED = [
    (["thread", "alice", "--json", "--peek"], "dmtool.store.drafts"),  # for senders() only
]


@pytest.mark.parametrize("args,module", NOT_IMPORTED,
                         ids=lambda a: " ".join(a) if isinstance(a, list) else a)
def test_a_local_command_imports_only_what_it_uses(local_store, args, module):
    found = importtime(*args)
    assert module not in found


NAMEDTUPLES = RUN + """
found = sorted(f"{{name}}.{{k}}" for name, m in list(sys.modules.items()) if name.startswith("dmtool")
               for k, v in vars(m).items()
               if isinstance(v, type) and v.__module__ == name and issubclass(v, tuple))
sys.stderr.write("NAMEDTUPLES=" + ",".join(found) + "\\n")
"""


@pytest.mark.parametrize("args", [a for a, lints in LOCAL_COMMANDS if not lints][:4],
                         ids=lambda a: " ".join(a))
def test_the_records_a_local_command_reads_are_no_namedtuples(local_store, args):
    """A NamedTuple generates and compiles code when it is defined (over a
    million instructions each): the records every command reads are Records
    (dmtool/record.py)."""
    p = subprocess.run([sys.executable, "-c", NAMEDTUPLES.format(args=list(args))],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL)
    line = [x for x in p.stderr.splitlines() if x.startswith("NAMEDTUPLES=")][-1]
    assert line == "NAMEDTUPLES=", line


GC_PROBE = """
import gc, sys
import dmtool.__main__ as entry
assert not gc.isenabled()  # start-up: no cyclic collector
from dmtool.cli import app
seen = []
collect_again = app._collect_again
def spy():
    collect_again()
    seen.append(gc.isenabled())
app._collect_again = spy
sys.argv = ["dmtool", *{args!r}]
try:
    entry.main()
except SystemExit:
    pass
sys.stderr.write(f"GC={{seen}}\\n")
"""


def test_the_console_entry_collects_again_when_the_command_runs(local_store):
    """dmtool/__main__.py (the console script) turns the cyclic garbage
    collector off for start-up; the command itself runs with it on."""
    p = subprocess.run([sys.executable, "-c", GC_PROBE.format(args=["inbox", "--json"])],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert "GC=[True]" in p.stderr, p.stderr[-2000:]
    p = subprocess.run([sys.executable, "-c", "import gc, dmtool.cli.app; print(gc.isenabled())"],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert p.stdout.strip() == "True"  # imported as a library: left alone


GC_PROBE_AS_MODULE = """
import gc, runpy, sys
from dmtool.cli import app
seen = []
collect_again = app._collect_again
def spy():
    collect_again()
    seen.append(gc.isenabled())
app._collect_again = spy
sys.argv = ["dmtool", *{args!r}]
try:
    runpy.run_module("dmtool", run_name="__main__", alter_sys=True)  # python -m dmtool
except SystemExit:
    pass
sys.stderr.write(f"GC={{seen}}\\n")
"""


def test_python_m_dmtool_collects_again_when_the_command_runs(local_store):
    """`python -m dmtool` runs dmtool/__main__.py as `__main__` (no module
    `dmtool.__main__`): the collector it turned off comes back on all the same."""
    p = subprocess.run([sys.executable, "-c", GC_PROBE_AS_MODULE.format(args=["inbox", "--json"])],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert "GC=[True]" in p.stderr, p.stderr[-2000:]


def test_the_console_script_is_the_entry_that_starts_without_the_collector():
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["dmtool"] == "dmtool.__main__:main"
