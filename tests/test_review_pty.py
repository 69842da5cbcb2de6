"""The interactive parts, driven in a pseudo-terminal: the review queue, the
send confirmation of a first contact, and the editor."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pexpect
import pytest

from tests.conftest import dmtool_command
from tests.test_drafts import add_talking_contact
from tests.test_send import outbound, sandbox_world


def spawn(*args: str, env: dict[str, str] | None = None) -> pexpect.spawn:
    cmd = dmtool_command()
    full_env = {**os.environ, "TERM": "dumb", **(env or {})}
    return pexpect.spawn(cmd[0], [*cmd[1:], *args], env=full_env, encoding="utf-8", timeout=30,
                         dimensions=(50, 120))


def finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    return int(child.exitstatus if child.exitstatus is not None else -1)


def new_draft(cli, handle: str, text: str) -> int:
    r = cli("draft", handle, text, "--json")
    assert r.exit_code == 0, r
    return int(r.json()["id"])


def test_review_queue_approve_one_reject_another(cli):
    add_talking_contact("alice", "Alice Smith", "2001", inbound="Could you send the schedule?")
    first = new_draft(cli, "alice", "Thanks Alice, the schedule is below.")
    second = new_draft(cli, "alice", "Also, want the workbook?")
    child = spawn("review")
    child.expect_exact(f"Draft {first}")
    child.expect_exact("Could you send the schedule?")  # the last messages are shown
    child.expect_exact("Thanks Alice, the schedule is below.")
    child.expect_exact("[a]pprove [e]dit [r]eject [s]kip [q]uit")
    child.sendline("a")
    child.expect_exact(f"approved draft {first}")
    child.expect_exact(f"Draft {second}")
    child.expect_exact("[a]pprove")
    child.sendline("r")
    child.expect_exact("reason")
    child.sendline("not the right moment")
    child.expect_exact(f"rejected draft {second}")
    child.expect_exact("1 approved, 1 rejected, 0 skipped")
    assert finish(child) == 0

    a = cli("drafts", "show", str(first), "--json").json()
    b = cli("drafts", "show", str(second), "--json").json()
    assert (a["status"], b["status"]) == ("approved", "rejected")
    assert b["reason"] == "not the right moment"
    assert [e["action"] for e in cli("log", "--json").json()[:2]] == ["rejected", "approved"]


def test_review_needs_an_acknowledgement_for_warnings_and_refuses_errors(cli):
    add_talking_contact("alice", "Alice Smith", "2001")
    loud = new_draft(cli, "alice", "Thanks Alice!!! Big news!!!")
    broken = new_draft(cli, "alice", "Thanks {name}")  # unfilled placeholder: L001 error
    child = spawn("review")
    child.expect_exact(f"Draft {loud}")
    child.expect_exact("warning L011")
    child.expect_exact("[a]pprove")
    child.sendline("a")
    child.expect_exact("acknowledge")
    child.sendline("n")  # not acknowledged: nothing approved, same draft again
    child.expect_exact(f"Draft {loud}")
    child.expect_exact("[a]pprove")
    child.sendline("a")
    child.expect_exact("acknowledge")
    child.sendline("y")
    child.expect_exact(f"approved draft {loud}")
    child.expect_exact(f"Draft {broken}")
    child.expect_exact("error L001")
    child.expect_exact("[a]pprove")
    child.sendline("a")
    child.expect_exact("cannot approve")
    child.expect_exact("[a]pprove")
    child.sendline("q")
    assert finish(child) == 0
    assert cli("drafts", "show", str(loud), "--json").json()["acknowledged"] == ["L011"]
    assert cli("drafts", "show", str(broken), "--json").json()["status"] == "draft"


@pytest.fixture
def editor(tmp_path: Path) -> str:
    """An $EDITOR that replaces the file with a fixed message."""
    script = tmp_path / "fake-editor"
    script.write_text("#!/bin/sh\nprintf 'Hi Bob, I am Ann from the meetup. Here you go.\\n' > \"$1\"\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_draft_opens_the_editor_on_a_terminal(cli, editor):
    cli("contacts", "add", "bob", "--name", "Bob Brown")
    cli("contacts", "engage", "bob", "--evidence", "asked for the slides")
    child = spawn("draft", "bob", env={"EDITOR": editor})
    child.expect_exact("draft 1 for @bob")
    assert finish(child) == 0
    shown = cli("drafts", "show", "1", "--json").json()
    assert shown["text"] == "Hi Bob, I am Ann from the meetup. Here you go."


def test_review_edit_goes_through_the_editor(cli, editor):
    cli("contacts", "add", "bob", "--name", "Bob Brown")
    cli("contacts", "engage", "bob", "--evidence", "asked for the slides")
    did = new_draft(cli, "bob", "hey")
    child = spawn("review", str(did), env={"VISUAL": editor})
    child.expect_exact("[a]pprove")
    child.sendline("e")
    child.expect_exact("Here you go.")
    child.expect_exact("[a]pprove")
    child.sendline("a")
    child.expect_exact(f"approved draft {did}")
    assert finish(child) == 0
    shown = cli("drafts", "show", str(did), "--json").json()
    assert (shown["status"], shown["text"]) == ("approved", "Hi Bob, I am Ann from the meetup. Here you go.")


def test_first_contact_send_asks_on_the_terminal(cli):
    world = sandbox_world()
    uid = world.add_user("bob", "Bob Brown")
    cli("contacts", "add", "bob", "--name", "Bob Brown")
    cli("contacts", "engage", "bob", "--evidence", "asked me to DM him the slides")
    did = new_draft(cli, "bob", "Hi Bob, I'm Ann from the meetup. The slides are ready.")
    assert cli("review", str(did), "--approve").exit_code == 0

    child = spawn("send", str(did), "--yes")  # --yes does not skip a first contact's question
    child.expect_exact("The slides are ready.")
    child.expect_exact("first message")
    child.expect_exact("sandbox")
    child.expect_exact("[y/N]")
    child.sendline("n")
    assert finish(child) == 1
    assert outbound(world, uid) == []

    child = spawn("send", str(did))
    child.expect_exact("[y/N]")
    child.sendline("y")
    child.expect_exact(f"sent draft {did} to @bob (sandbox)")
    assert finish(child) == 0
    assert [e["text"] for e in outbound(world, uid)] == [
        "Hi Bob, I'm Ann from the meetup. The slides are ready."]
