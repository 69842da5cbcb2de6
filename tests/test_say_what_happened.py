"""Actions say what happened (issue 11 point 10): a command that changes
nothing says so, instead of claiming it removed, reopened or unblocked."""

from __future__ import annotations

from tests.xworld import ALICE, sync


def actions(cli) -> list[str]:
    return [e["action"] for e in cli("log", "--json").json()]


def test_tags_that_were_not_there(cli):
    cli("contacts", "add", "bob", "--tag", "vip")
    r = cli("contacts", "tag", "bob", "nonexist", "--remove")
    assert r.exit_code == 0
    assert "removed" not in r.stderr
    assert "nothing changed" in r.stderr and "nonexist" in r.stderr
    r = cli("contacts", "tag", "bob", "vip", "nonexist", "--remove")
    assert "removed from @bob: vip" in r.stderr and "had no tag nonexist" in r.stderr
    assert cli("contacts", "show", "bob", "--json").json()["tags"] == []
    cli("contacts", "tag", "bob", "a")
    r = cli("contacts", "tag", "bob", "a", "b", "b")
    assert "tagged @bob: b" in r.stderr and "already tagged" in r.stderr and "has tag a" in r.stderr


def test_reopen_an_open_conversation_and_done_twice(cli, world, clock):
    world.incoming_dm(ALICE, "hello", at=clock.ago(minutes=5))
    sync(cli)
    r = cli("reopen", "alice")
    assert r.exit_code == 0 and "open already; nothing changed" in r.stderr
    assert "reopened" not in r.stderr
    assert "done" in cli("done", "alice").stderr
    r = cli("done", "alice")
    assert "done already; nothing changed" in r.stderr
    assert "reopened" in cli("reopen", "alice").stderr
    assert cli("reopen", "nobody").exit_code == 1


def test_unblock_someone_not_blocked(cli):
    cli("contacts", "add", "bob")
    r = cli("contacts", "unblock", "bob")
    assert r.exit_code == 0 and "not blocked: nothing changed" in r.stderr
    assert "unblocked" not in actions(cli)
    cli("contacts", "block", "bob")
    assert "unblocked @bob" in cli("contacts", "unblock", "bob").stderr
    assert "unblocked" in actions(cli)


def test_engage_on_someone_opted_out_says_it_changes_nothing(cli):
    cli("contacts", "add", "bob")
    cli("contacts", "optout", "bob", "--yes", "--reason", "asked by phone")
    r = cli("contacts", "engage", "bob", "--evidence", "asked at the booth to be DMed")
    assert r.exit_code == 0
    assert "recorded request consent" in r.stderr
    assert "changes nothing" in r.stderr and "opted out" in r.stderr and "START" in r.stderr
    assert cli("check", "bob").exit_code == 3  # and indeed it does not allow a DM
    cli("contacts", "add", "carl")
    cli("contacts", "block", "carl")
    r = cli("contacts", "engage", "carl", "--evidence", "asked at the booth to be DMed")
    assert "changes nothing" in r.stderr and "blocked" in r.stderr
    cli("contacts", "add", "dora")
    r = cli("contacts", "engage", "dora", "--evidence", "asked at the booth to be DMed")
    assert "changes nothing" not in r.stderr
    assert cli("check", "dora").exit_code == 0
