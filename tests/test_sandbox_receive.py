"""`dmtool sandbox receive`: someone on a sandbox profile's X DMs you, and the
next sync reads it like any other DM (issue 12, point 7)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.xworld import ALICE, BOB, Cli, Clock, sync


def test_a_received_dm_is_read_by_the_next_sync(cli: Cli, world: Any, clock: Clock) -> None:
    r = cli("sandbox", "receive", "@alice", "Hi! Is the workshop still open?")
    assert r.exit_code == 0, r
    assert r.stdout == "" and "`dmtool sync` reads it" in r.stderr
    assert cli("inbox", "--json").json() == []  # nothing in the record until a sync
    data = sync(cli)
    assert data["dm_events_new"] == 1 and data["contacts_new"] == 1
    [item] = cli("inbox", "--json").json()
    assert (item["handle"], item["last_text"], item["needs_reply"]) == (
        "alice", "Hi! Is the workshop still open?", True)
    assert [m["at"] for m in cli("thread", "alice", "--json").json()["messages"]] == [
        "2026-03-02T12:00:00.000Z"]  # now, on the pinned clock


def test_stop_opts_out_and_a_stop_request_goes_to_review(cli: Cli, world: Any) -> None:
    assert cli("sandbox", "receive", "alice", "Hello!", "--at", "2026-03-02T10:00Z").exit_code == 0
    assert cli("sandbox", "receive", "alice", "STOP").exit_code == 0
    assert cli("sandbox", "receive", "bob", "please stop messaging me").exit_code == 0
    assert sync(cli)["opted_out"] == ["alice"]
    r = cli("check", "alice", "--json")
    assert r.exit_code == 3 and "E_OPTED_OUT" in [x["code"] for x in r.json()["reasons"]]
    r = cli("check", "bob", "--json")
    assert r.exit_code == 3 and "E_OPTOUT_REVIEW" in [x["code"] for x in r.json()["reasons"]]
    assert [e["sender_id"] for e in world.dms_with(ALICE)] == [ALICE, ALICE]
    assert [e["sender_id"] for e in world.dms_with(BOB)] == [BOB]


@pytest.fixture
def tokyo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The local zone is Asia/Tokyo (UTC+9), as TZ sets it for a new process."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_at_is_local_time_unless_it_has_an_offset(cli: Cli, world: Any, tokyo: None) -> None:
    r = cli("sandbox", "receive", "alice", "From Tokyo", "--at", "2026-03-02T18:30")
    assert r.exit_code == 0, r
    r = cli("sandbox", "receive", "alice", "With an offset", "--at", "2026-03-02T10:45:00+01:00")
    assert r.exit_code == 0, r
    assert [(e["text"], e["created_at"]) for e in world.dms_with(ALICE)] == [
        ("From Tokyo", "2026-03-02T09:30:00.000Z"), ("With an offset", "2026-03-02T09:45:00.000Z")]
    r = cli("sandbox", "receive", "alice", "Tomorrow", "--at", "2026-03-03T12:00Z")
    assert r.exit_code == 1 and "future" in r.stderr
    r = cli("sandbox", "receive", "alice", "Whenever", "--at", "next week")
    assert r.exit_code == 1 and "ISO 8601" in r.stderr
    r = cli("sandbox", "receive", "alice", "Long ago", "--at", "2026-01-01T12:00Z")
    assert r.exit_code == 0 and "sync will not see it" in r.stderr


def test_who_can_write(cli: Cli, world: Any) -> None:
    r = cli("sandbox", "receive", "@nobody_yet", "hello")
    assert r.exit_code == 1
    assert "no @nobody_yet" in r.stderr and "@alice" in r.stderr and "--new" in r.stderr
    r = cli("sandbox", "receive", "@nobody_yet", "hello", "--new")
    assert r.exit_code == 0 and "new on this sandbox X" in r.stderr
    assert sync(cli)["contacts_new"] == 1
    assert "nobody_yet" in [c["handle"] for c in cli("contacts", "list", "--json").json()]
    assert cli("sandbox", "receive", "you", "talking to myself").exit_code == 1
    assert cli("sandbox", "receive", "alice", "   ").exit_code == 1


def test_a_contact_known_only_by_id(cli: Cli, world: Any) -> None:
    """Found by the property test over every command: `user_<id>`, dmtool's name
    for a contact known only by id, is that sandbox user; with --new it is no
    handle a new user can have (it was "unexpected ValueError")."""
    r = cli("sandbox", "receive", f"user_{ALICE}", "Hi, it's Alice")
    assert r.exit_code == 0 and "@alice sent you a DM" in r.stderr, r
    assert [e["text"] for e in world.dms_with(ALICE)] == ["Hi, it's Alice"]
    for extra in ([], ["--new"]):
        r = cli("sandbox", "receive", "user_1500000000000000099", "hello", *extra)
        assert r.exit_code == 1 and "no @user_1500000000000000099" in r.stderr, r
        assert "unexpected" not in r.stderr, r
    assert "needs an X handle" in r.stderr
    r = cli("sandbox", "receive", "user_123", "hello", "--new")  # a handle X allows
    assert r.exit_code == 0 and "new on this sandbox X" in r.stderr, r


def test_refused_on_a_profile_that_talks_to_the_real_x(cli: Cli) -> None:
    r = cli("sandbox", "receive", "alice", "STOP")
    assert r.exit_code == 1 and "real X" in r.stderr
    r = cli("--profile", "work", "sandbox", "receive", "alice", "STOP")
    assert r.exit_code == 1
