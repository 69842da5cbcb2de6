"""Closed standard streams (issue 11 point 7): with stdin, stdout or stderr
closed, a command works as when that stream is piped to /dev/null.

Real closed descriptors, in a subprocess started by a POSIX shell (`>&-`,
`<&-`, `2>&-`): the way cron jobs, daemons and careless scripts start dmtool.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

from tests.conftest import dmtool_command


def shell(args: list[str], redirect: str, *, module: bool = False) -> subprocess.CompletedProcess[str]:
    """Run dmtool under `sh -c` with `redirect` applied (e.g. '>&-'). Streams
    left open are captured: stdout into the result, stderr too."""
    cmd = [sys.executable, "-m", "dmtool"] if module else dmtool_command()
    line = " ".join(shlex.quote(a) for a in cmd + args) + " " + redirect
    return subprocess.run(["sh", "-c", line], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ))


def contacts(run) -> list[str]:
    r = run("contacts", "list", "--json")
    assert r.exit_code == 0, r
    return [c["handle"] for c in json.loads(r.stdout)]


def test_closed_stdout_read_command(run):
    p = shell(["db", "check"], ">&-")
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr and "NoneType" not in p.stderr


def test_closed_stdout_write_commands_do_their_work(run):
    for module in (False, True):  # the console entry point and `python -m dmtool`
        handle = "viamodule" if module else "viascript"
        p = shell(["contacts", "add", handle, "--json"], ">&-", module=module)
        assert p.returncode == 0, p.stderr
        assert "Traceback" not in p.stderr
    p = shell(["contacts", "tag", "viascript", "vip"], ">&- 2>&-")
    assert p.returncode == 0
    assert sorted(contacts(run)) == ["viamodule", "viascript"]
    assert json.loads(run("contacts", "show", "viascript", "--json").stdout)["tags"] == ["vip"]
    check = run("db", "check", "--json")  # the store was never written through "stdout"
    assert check.exit_code == 0, check


def test_closed_stderr_loses_only_the_messages(run):
    run("contacts", "add", "alice")
    p = shell(["contacts", "list"], "2>&-")
    assert p.returncode == 0
    assert p.stdout.split("\t")[0] == "@alice"
    missing = shell(["contacts", "show", "nobody"], "2>&-")
    assert missing.returncode == 1 and missing.stdout == ""
    usage = shell(["contacts", "list", "--no-such-flag"], "2>&-")
    assert usage.returncode == 2


def test_closed_stdin_is_an_empty_stdin(run):
    run("contacts", "add", "alice")
    for args in (["draft", "alice"], ["draft", "alice", "--file", "-"],
                 ["contacts", "import", "-", "--format", "csv"]):
        closed = shell(args, "<&-")
        null = shell(args, "</dev/null")
        assert "Traceback" not in closed.stderr and "E_INTERNAL" not in closed.stderr, closed.stderr
        assert "unexpected" not in closed.stderr, closed.stderr
        assert (closed.returncode, closed.stdout, closed.stderr) == \
               (null.returncode, null.stdout, null.stderr), args


def test_all_three_closed(run):
    p = shell(["contacts", "add", "zed"], "<&- >&- 2>&-")
    assert p.returncode == 0
    assert contacts(run) == ["zed"]
