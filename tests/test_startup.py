"""Local commands must start fast: they never import tweepy, requests or rich."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
from dmtool.cli.app import main
sys.argv = ["dmtool", *{args!r}]
try:
    main()
except SystemExit:
    pass
heavy = sorted(m for m in ("tweepy", "requests", "rich", "oauthlib", "urllib3")
               if m in sys.modules)
sys.stderr.write("HEAVY=" + ",".join(heavy) + "\\n")
"""


def loaded(*args: str) -> set[str]:
    p = subprocess.run([sys.executable, "-c", PROBE.format(args=list(args))],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL)
    line = [x for x in p.stderr.splitlines() if x.startswith("HEAVY=")][-1]
    return set(filter(None, line[6:].split(",")))


@pytest.mark.parametrize("args", [
    ["--help"],
    ["contacts", "list", "--json"],
    ["contacts", "list"],
    ["contacts", "add", "alice"],
    ["check", "alice", "--json"],
    ["config", "show", "--json"],
    ["inbox", "--json"],
    ["digest", "--format", "json"],
    ["drafts", "list", "--json"],
    ["log", "--json"],
    ["templates", "list"],
    ["db", "check", "--json"],
])
def test_local_commands_import_nothing_heavy(args):
    heavy = loaded(*args)
    assert "tweepy" not in heavy and "requests" not in heavy
    if "--help" not in args:
        assert "rich" not in heavy  # piped output never needs rich
