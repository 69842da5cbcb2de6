"""Never print `None` to a person (issue 11 point 2): every command's human
output, piped and on a terminal, over a record with every optional field
missing somewhere (no name, no reason, no words, no template, no user id)."""

from __future__ import annotations

import re

import pytest

from dmtool import output
from tests.test_json_everywhere import ARGS, COMMANDS, REPORTING, populated  # noqa: F401
from tests.xworld import SAM, sync

NONE = re.compile(r"\bNone\b|\(None\)|\bnull\b")


def sparse(cli, world, clock) -> list[list[str]]:
    """Contacts and drafts with fields left empty; the commands that show them."""
    world.incoming_dm(SAM, "please stop messaging me", at=clock.ago(minutes=30))  # review
    sync(cli)
    assert cli("contacts", "add", "zed").exit_code == 0  # no name, no user id
    assert cli("contacts", "add", "quiet").exit_code == 0
    assert cli("contacts", "optout", "quiet", "--yes").exit_code == 0  # no words, no reason
    assert cli("contacts", "add", "blocky").exit_code == 0
    assert cli("contacts", "block", "blocky").exit_code == 0
    rejected = cli("draft", "alice", "Thanks Alice, a short note.", "--json").json()["id"]
    assert cli("review", str(rejected), "--reject").exit_code == 0  # no reason
    shows = [["drafts", "show", str(rejected)], ["drafts", "list"], ["drafts", "list", "--status",
                                                                         "rejected"]]
    for h in ("zed", "quiet", "blocky", "sam", "alice", "bob"):
        shows += [["contacts", "show", h], ["check", h], ["thread", h, "--peek"]]
    return shows + [["log", "-n", "0"], ["inbox", "--all"], ["digest", "--since", "3650d", "--peek"],
                    ["contacts", "list"], ["report"], ["profiles", "list"], ["config", "show"]]


@pytest.mark.parametrize("tty", [False, True])
def test_no_command_prints_none(cli, world, clock, populated, monkeypatch, tty):  # noqa: F811
    runs = [[*path.split(), *ARGS.get(path, lambda p: [])(populated)] for path in REPORTING
            if path not in ("contacts import", "import archive", "send", "review", "drafts edit",
                            "drafts discard", "contacts add")]
    runs += sparse(cli, world, clock)
    if tty:  # the terminal renderings (tables, fields), without prompts
        monkeypatch.setattr(output, "stdout_is_tty", lambda: True)
    seen = 0
    for args in runs:
        r = cli(*args)
        assert "Traceback" not in r.stderr, (args, r)
        found = NONE.search(r.stdout + r.stderr)
        assert found is None, f"`dmtool {' '.join(args)}` printed {found.group(0)!r}: {r}"
        seen += bool(r.stdout.strip() or r.stderr.strip())
    assert seen > 30 and set(COMMANDS)  # the sweep really ran
