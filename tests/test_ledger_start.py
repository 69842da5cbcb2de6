"""The ledger adds nothing to a local command (issue 16): it is imported and
written only by commands that call X, as `python -X importtime` shows."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from dmtool.x.sandbox import SandboxWorld
from tests.xworld import ALICE, Cli, Clock, sync

LEDGER = ("dmtool.services.ledger", "dmtool.store.ledger", "dmtool.services.budget",
          "dmtool.services.usage", "dmtool.x.observe")


def imported(*args: str) -> set[str]:
    """The modules `dmtool ARGS` imports, from -X importtime."""
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "dmtool", *args],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       env=dict(os.environ), timeout=60)
    assert p.returncode in (0, 3), p.stderr[-2000:]
    return {line.rsplit("|", 1)[-1].strip() for line in p.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


@pytest.fixture
def synced(cli: Cli, world: SandboxWorld, clock: Clock) -> None:
    world.incoming_dm(ALICE, "Hi! Do you ship to Canada?", at=clock.ago(hours=1))
    sync(cli)


@pytest.mark.parametrize("args", [
    ["inbox", "--json"],
    ["thread", "alice", "--json", "--peek"],
    ["digest", "--format", "json", "--peek"],
    ["check", "alice", "--json"],
    ["contacts", "list", "--json"],
    ["drafts", "list", "--json"],
    ["log", "--json"],
    ["search", "Canada", "--json"],
])
def test_local_commands_neither_import_nor_write_the_ledger(synced: None, db: Any,
                                                            args: list[str]) -> None:
    before = db("SELECT count(*) FROM x_requests")
    modules = imported(*args)
    assert "dmtool.cli.app" in modules  # the probe sees dmtool's own imports
    assert not modules & set(LEDGER), sorted(modules & set(LEDGER))
    assert db("SELECT count(*) FROM x_requests") == before


def test_a_command_that_calls_x_loads_it(synced: None) -> None:
    assert {"dmtool.services.ledger", "dmtool.x.observe"} <= imported("sync", "--json")


def test_digest_reads_the_budget_only_when_one_is_set(synced: None, cli: Cli) -> None:
    assert cli("config", "set", "x.budget.day_usd", "5").exit_code == 0
    for args in (["digest", "--format", "json", "--peek"], ["auth", "status", "--json"]):
        modules = imported(*args)
        # A read of the ledger's totals: not the recorder, nor the X client's modules.
        assert "dmtool.services.budget" in modules, args
        assert not modules & {"dmtool.services.ledger", "dmtool.x.observe"}, args
