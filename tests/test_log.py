"""Who did it (`actor` on every audit entry) and `log`'s filters (issue 12 point 8)."""

from __future__ import annotations

import getpass
import os
from typing import Any

import pytest

from dmtool import actor
from dmtool.store import open_store
from dmtool.store.migrations import SEARCH_MIGRATION
from dmtool.x.sandbox import SandboxWorld
from tests.test_autoack import enable
from tests.xworld import ALICE, BOB, Cli, Clock, sync


def log(cli: Cli, *args: str) -> list[dict[str, Any]]:
    r = cli("log", "--json", *args)
    assert r.exit_code == 0, r
    return r.json()  # type: ignore[no-any-return]


def test_the_operator_is_the_env_else_the_config_else_the_login_name(
        cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_getlogin() -> str:  # what os.getlogin does under cron
        raise OSError("no controlling terminal")

    monkeypatch.setattr(os, "getlogin", failing_getlogin)
    monkeypatch.delenv(actor.ENV, raising=False)
    monkeypatch.setenv("LOGNAME", "cronuser")
    assert cli("contacts", "add", "ann").exit_code == 0
    assert cli("config", "set", "operator.name", "Sam Lee").exit_code == 0
    assert cli("contacts", "add", "ben").exit_code == 0
    monkeypatch.setenv(actor.ENV, "kim")
    assert cli("contacts", "add", "cat").exit_code == 0
    assert [(e["handle"], e["actor"]) for e in log(cli)] == [
        ("cat", "kim"), ("ben", "Sam Lee"), ("ann", "cronuser")]
    assert getpass.getuser() == "cronuser"  # getpass reads LOGNAME: no terminal needed


def test_what_sync_does_is_sync_and_autoack(cli: Cli, world: SandboxWorld, clock: Clock,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(actor.ENV, "kim")
    enable(cli)
    sync(cli)
    clock.advance(minutes=15)
    world.incoming_dm(ALICE, "hello, question about pricing", at=clock.ago(minutes=5))
    world.incoming_dm(BOB, "STOP", at=clock.ago(minutes=4))
    sync(cli)
    by_action = {(e["action"], e["handle"]): e["actor"] for e in log(cli)}
    assert by_action[("opted_out", "bob")] == "sync"
    assert by_action[("approved", "alice")] == "autoack"
    assert by_action[("sent", "alice")] == "autoack"
    assert by_action[("autoack_skipped", "bob")] == "autoack"
    assert cli("contacts", "block", "bob").exit_code == 0
    assert log(cli, "--limit", "1")[0]["actor"] == "kim"
    assert actor.current() != "sync"  # nothing leaks out of the sync


def test_entries_from_before_have_no_actor(new_store: Any) -> None:
    old = new_store(migrate_to=SEARCH_MIGRATION - 1)
    old.execute("INSERT INTO audit (at, action, handle) VALUES ('2026-01-01T00:00:00.000Z', "
                "'contact_added', 'ann')")
    old.close()
    store = open_store(old.location)
    assert [tuple(r) for r in store.execute("SELECT action, actor FROM audit")] == [
        ("contact_added", None)]
    store.close()


@pytest.fixture
def history(cli: Cli, world: SandboxWorld, clock: Clock,
            monkeypatch: pytest.MonkeyPatch) -> SandboxWorld:
    """Kim adds and blocks people on day one; Sam records consent on day three;
    Bob wrote STOP (sync) in between."""
    monkeypatch.setenv(actor.ENV, "kim")
    world.incoming_dm(ALICE, "hi", at=clock.ago(minutes=30))
    sync(cli)
    assert cli("contacts", "add", "carol").exit_code == 0
    assert cli("contacts", "block", "carol").exit_code == 0
    clock.advance(days=1)
    world.incoming_dm(BOB, "stop", at=clock.ago(minutes=5))
    sync(cli)
    clock.advance(days=1)
    monkeypatch.setenv(actor.ENV, "sam")
    assert cli("contacts", "engage", "alice", "--kind", "request",
               "--evidence", "asked at the meetup").exit_code == 0
    assert cli("contacts", "block", "alice").exit_code == 0
    return world


def test_log_filters_combine(cli: Cli, history: SandboxWorld, clock: Clock) -> None:
    def seen(*args: str) -> list[tuple[str, str | None, str | None]]:
        return [(e["action"], e["handle"], e["actor"]) for e in log(cli, *args)]

    assert seen("--actor", "kim") == [("blocked", "carol", "kim"), ("contact_added", "carol", "kim")]
    assert seen("--actor", "KIM") == seen("--actor", "kim")  # names are not case-sensitive
    assert seen("--actor", "sync") == [("opted_out", "bob", "sync")]
    assert seen("--contact", "@alice") == [("blocked", "alice", "sam"),
                                           ("consent_recorded", "alice", "sam")]
    assert seen("--action", "blocked") == [("blocked", "alice", "sam"), ("blocked", "carol", "kim")]
    assert seen("--action", "blocked", "--action", "opted_out") == [
        ("blocked", "alice", "sam"), ("opted_out", "bob", "sync"), ("blocked", "carol", "kim")]
    assert seen("--action", "blocked", "--actor", "kim") == [("blocked", "carol", "kim")]
    assert seen("--since", "23h") == [("blocked", "alice", "sam"), ("consent_recorded", "alice", "sam")]
    assert seen("--since", "36h", "--contact", "bob") == [("opted_out", "bob", "sync")]
    day_two = clock.ago(days=1, hours=12).strftime("%Y-%m-%dT%H:%M+00:00")
    assert seen("--since", day_two, "--actor", "sync") == [("opted_out", "bob", "sync")]
    assert seen("--contact", "carol", "--actor", "sam") == []
    assert seen("--actor", "nobody") == []


def test_log_contact_follows_the_user_id_and_outlives_forget(cli: Cli, history: SandboxWorld,
                                                             world: SandboxWorld) -> None:
    # Alice renames herself on X: her entries under the old handle are still hers.
    with world.transaction() as state:
        state["users"][ALICE]["username"] = "alicia"
    assert cli("check", "alicia").exit_code == 3  # looked up on X: the contact follows
    assert [e["action"] for e in log(cli, "--contact", "alicia")][-2:] == [
        "blocked", "consent_recorded"]
    # By the old handle (no contact has it now): what was written under it.
    assert [e["action"] for e in log(cli, "--contact", "alice")] == ["blocked", "consent_recorded"]
    assert cli("contacts", "forget", "carol", "--yes").exit_code == 0
    assert [e["action"] for e in log(cli, "--contact", "carol")] == [
        "forgotten", "blocked", "contact_added"]


def test_log_text_output_and_hints(cli: Cli, history: SandboxWorld) -> None:
    r = cli("log", "--actor", "sync")
    assert r.exit_code == 0
    (line,) = r.stdout.splitlines()
    cells = line.split("\t")
    assert cells[1:3] == ["opted_out", "@bob"] and cells[-1] == "sync"
    r = cli("log", "--action", "sned")
    assert r.exit_code == 0 and r.stdout == ""
    assert "the log has no action sned; it has:" in r.stderr and "blocked" in r.stderr
    r = cli("log", "--since", "yesterday-ish")
    assert r.exit_code == 2 and "--since" in r.stderr  # a usage error
    assert cli("log", "--contact", "not a handle").exit_code == 1


def test_without_login_variables_the_password_database_names_the_user(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import pwd

    for var in ("LOGNAME", "USER", "LNAME", "USERNAME", actor.ENV):
        monkeypatch.delenv(var, raising=False)
    assert actor.operator_name({}, "") == pwd.getpwuid(os.getuid()).pw_name
    assert actor.operator_name({"USER": "ann"}, "  ") == "ann"  # a blank name is no name
