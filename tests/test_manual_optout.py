"""`contacts optout` by hand (issue 11 point 2): for someone not in opt-out
review it needs a confirmation (a prompt on a terminal, --yes elsewhere), and
the --reason given is kept and shown wherever the opt-out is shown."""

from __future__ import annotations

import re

import pexpect

from dmtool.store import open_store
from dmtool.store.migrations import MIGRATIONS, OPT_OUT_REASON_MIGRATION
from tests.conftest import default_store_at
from tests.test_review_pty import finish, spawn
from tests.xworld import ALICE, SAM, sync

REASON = "asked me by phone to stop"


def audit_actions(cli) -> list[str]:
    return [e["action"] for e in cli("log", "--json").json()]


def no_none(text: str) -> None:
    assert not re.search(r"\bNone\b", text), text


def test_not_in_review_needs_yes_off_a_terminal(cli):
    cli("contacts", "add", "hal")
    r = cli("contacts", "optout", "hal")
    assert r.exit_code == 2
    assert "needs confirmation" in r.stderr and "--yes" in r.stderr
    assert cli("contacts", "show", "hal", "--json").json()["opted_out_at"] is None
    assert "opted_out" not in audit_actions(cli)
    r = cli("contacts", "optout", "hal", "--reason", "  ")
    assert r.exit_code == 2 and "--reason is empty" in r.stderr


def test_the_reason_is_typed_text(cli):
    """Found by the property test over every command: the reason is text a
    person typed, as a rejection's reason is (textnorm.typed, 1,000 characters)."""
    cli("contacts", "add", "hal")
    for bad, says in (("by phone\x1b[2J", "control character"), ("x" * 1001, "too long"),
                      ("\u200b\u200b", "--reason is empty")):
        for extra in ([], ["--dismiss"]):
            r = cli("contacts", "optout", "hal", "--yes", *extra, "--reason", bad)
            assert r.exit_code in (1, 2) and says in r.stderr, (bad, r)
    assert cli("contacts", "show", "hal", "--json").json()["opted_out_at"] is None
    assert "opted_out" not in audit_actions(cli)
    r = cli("contacts", "optout", "hal", "--yes", "--reason", "  asked by phone\r\nto stop ")
    assert r.exit_code == 0, r
    assert cli("contacts", "show", "hal", "--json").json()["opt_out_reason"] == \
        "asked by phone\nto stop"


def test_the_reason_is_shown_wherever_the_opt_out_is(cli, world, clock):
    world.incoming_dm(ALICE, "Hi, could you DM me the dates?", at=clock.ago(hours=2))
    sync(cli)
    assert cli("digest").exit_code == 0  # the checkpoint: what follows is news
    clock.advance(minutes=5)
    r = cli("contacts", "optout", "alice", "--yes", "--reason", REASON)
    assert r.exit_code == 0 and REASON in r.stderr and r.stdout == ""

    shown = cli("contacts", "show", "alice")
    assert REASON in shown.stdout
    no_none(shown.stdout)
    data = cli("contacts", "show", "alice", "--json").json()
    assert data["opt_out_reason"] == REASON and data["status"] == "opted-out"

    check = cli("check", "alice")
    assert check.exit_code == 3 and "E_OPTED_OUT" in check.stdout and REASON in check.stdout

    thread = cli("thread", "alice", "--peek")
    assert REASON in thread.stderr and "do not DM" in thread.stderr
    assert REASON not in thread.stdout  # piped records stay records

    entry = next(e for e in cli("log", "--json").json() if e["action"] == "opted_out")
    assert entry["detail"]["reason"] == REASON and entry["detail"]["by"] == "user"
    log = cli("log").stdout
    assert f"reason={REASON}" in log
    no_none(log)

    digest = cli("digest", "--peek")
    assert "@alice" in digest.stdout and REASON in digest.stdout
    assert cli("digest", "--json", "--peek").json()["opted_out"][0]["reason"] == REASON


def test_without_a_reason_nothing_says_none(cli):
    cli("contacts", "add", "hal")
    assert cli("contacts", "optout", "hal", "--yes").exit_code == 0
    for args in (["contacts", "show", "hal"], ["check", "hal"], ["log"], ["thread", "hal"],
                 ["contacts", "list"]):
        r = cli(*args)
        no_none(r.stdout + r.stderr)
    shown = cli("contacts", "show", "hal").stdout
    assert re.search(r"opted out: +\d{4}-\d\d-\d\d \d\d:\d\d\n", shown), shown


def test_confirming_a_review_needs_no_yes_and_keeps_what_they_wrote(cli, world, clock):
    world.incoming_dm(SAM, "please stop messaging me", at=clock.ago(hours=1))
    sync(cli)
    assert cli("contacts", "show", "sam", "--json").json()["status"] == "review"
    r = cli("contacts", "optout", "sam", "--reason", "clear enough")
    assert r.exit_code == 0, r
    shown = cli("contacts", "show", "sam").stdout
    assert 'wrote "please stop messaging me"' in shown and "reason: clear enough" in shown
    again = cli("contacts", "optout", "sam", "--yes")
    assert again.exit_code == 0 and "already opted out" in again.stderr


def test_the_reason_survives_forget(cli):
    cli("contacts", "add", "hal")
    assert cli("contacts", "optout", "hal", "--yes", "--reason", REASON).exit_code == 0
    assert cli("contacts", "forget", "hal", "--yes").exit_code == 0
    cli("contacts", "add", "hal")  # back: still opted out, for the same reason
    data = cli("contacts", "show", "hal", "--json").json()
    assert data["status"] == "opted-out" and data["opt_out_reason"] == REASON


def test_on_a_terminal_it_asks(cli):
    cli("contacts", "add", "hal")
    child = spawn("contacts", "optout", "hal", "--reason", REASON)
    child.expect_exact("Opt out @hal?")
    child.sendline("n")
    child.expect_exact("nothing changed")
    assert finish(child) == 0
    assert cli("contacts", "show", "hal", "--json").json()["opted_out_at"] is None

    child = spawn("contacts", "optout", "hal", "--reason", REASON)
    child.expect_exact("Opt out @hal?")
    child.sendline("y")
    child.expect_exact("is opted out")
    assert finish(child) == 0
    assert cli("contacts", "show", "hal", "--json").json()["opt_out_reason"] == REASON
    assert pexpect  # the pseudo-terminal is real


def test_a_store_from_before_the_reason_upgrades(cli, monkeypatch):
    old = default_store_at(OPT_OUT_REASON_MIGRATION, monkeypatch)
    with old.tx() as conn:
        conn.execute("INSERT INTO contacts (user_id, handle, created_at, updated_at, opted_out_at, "
                     "opt_out_words) VALUES ('7', 'olga', 't', 't', '2026-01-02T10:00:00.000Z', "
                     "'STOP')")
        conn.execute("INSERT INTO suppressions (user_id, handle, kind, at, detail) "
                     "VALUES ('7', 'olga', 'opted_out', '2026-01-02T10:00:00.000Z', 'STOP')")
    old.close()
    data = cli("contacts", "show", "olga", "--json").json()
    assert data["status"] == "opted-out" and data["opt_out_reason"] is None
    shown = cli("contacts", "show", "olga").stdout
    assert 'opted out:  2026-01-02 10:00 (wrote "STOP")' in shown
    no_none(shown)
    new = open_store(old.location)
    assert new.schema_version() == len(MIGRATIONS)
    assert new.conn.execute("SELECT reason FROM suppressions").fetchone()[0] is None
    new.close()
