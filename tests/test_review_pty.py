"""The interactive parts, driven in a pseudo-terminal: the review queue, the
send confirmation of a first contact, and the editor."""

from __future__ import annotations

import json
import os
import stat
from datetime import timedelta
from pathlib import Path

import pexpect
import pytest

from tests.conftest import dmtool_command
from tests.test_drafts import add_talking_contact
from tests.test_send import outbound, sandbox_world, talking_contact


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
    child.expect_exact(f"not sent; kept as draft {did} (approved)")  # an answer, not an error
    assert finish(child) == 0
    assert outbound(world, uid) == []
    assert cli("drafts", "show", str(did), "--json").json()["status"] == "approved"

    child = spawn("send", str(did))
    child.expect_exact("[y/N]")
    child.sendline("y")
    child.expect_exact(f"sent draft {did} to @bob (sandbox)")
    assert finish(child) == 0
    assert [e["text"] for e in outbound(world, uid)] == [
        "Hi Bob, I'm Ann from the meetup. The slides are ready."]


# --- reply ---------------------------------------------------------------------------------


def test_reply_asks_once_and_no_keeps_the_draft(cli):
    world = sandbox_world()
    uid = talking_contact(world, "alice", "Alice Smith")
    child = spawn("reply", "alice", "Thanks Alice, see you on Saturday.")
    child.expect_exact("Thanks Alice, see you on Saturday.")  # the exact text, before the question
    child.expect_exact("Send? [y/N]")
    child.sendline("n")
    child.expect_exact("not sent; kept as draft 1")
    assert finish(child) == 0  # declining is not an error
    assert cli("drafts", "show", "1", "--json").json()["status"] == "draft"
    assert outbound(world, uid) == []

    child = spawn("reply", "alice", "Thanks Alice!!! See you on Saturday!!!")
    child.expect_exact("warning L011")  # the findings are shown before the question
    child.expect_exact("Send? [y/N]")
    child.sendline("y")  # on a terminal, yes acknowledges the warnings shown
    child.expect_exact("sent draft 2 to @alice (sandbox)")
    assert finish(child) == 0
    assert [e["text"] for e in outbound(world, uid)] == ["Thanks Alice!!! See you on Saturday!!!"]
    log = cli("log", "--json").json()
    assert [e["action"] for e in reversed(log) if e["draft_id"] == 2] == [
        "drafted", "approved", "sent"]
    assert cli("drafts", "show", "2", "--json").json()["acknowledged"] == ["L011"]


def test_reply_opens_the_editor_on_the_thread_and_strips_the_comments(cli, tmp_path):
    world = sandbox_world()
    uid = talking_contact(world, "alice", "Alice Smith")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    seen = tmp_path / "seen.txt"
    script = bin_dir / "editor"  # no $VISUAL or $EDITOR: git's fallback, `editor`, opens
    script.write_text(f"#!/bin/sh\ncp \"$1\" {seen}\n"
                      f"{{ printf 'Sure, see you Friday.   \\n\\n\\n# my own note\\n'; cat {seen}; }}"
                      " > \"$1\"\n")
    script.chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    child = spawn("reply", "alice", env=env)
    child.expect_exact("opening `editor`")  # it says which editor opened
    child.expect_exact("Sure, see you Friday.")
    child.expect_exact("Send? [y/N]")
    child.sendline("y")
    child.expect_exact("sent draft 1 to @alice")
    assert finish(child) == 0
    assert [e["text"] for e in outbound(world, uid)] == ["Sure, see you Friday."]
    opened = seen.read_text(encoding="utf-8")
    assert opened.startswith("\n# Your reply to @alice (Alice Smith)")
    assert "@alice: Hi! Could you tell me more?" in opened  # the last messages, quoted
    assert "# Checks" in opened and "L011" in opened  # and the lint rules
    assert all(line.startswith("#") for line in opened.strip().splitlines())

    # An editor that saves nothing but the comments cancels: nothing drafted, exit 0.
    # X keeps whole seconds: make their new DM later than our reply for sure
    world.incoming_dm(uid, "One more thing: parking?", at=world.now() + timedelta(seconds=1))
    assert cli("sync").exit_code == 0
    script.write_text("#!/bin/sh\nexit 0\n")
    child = spawn("reply", "alice", env=env)
    child.expect_exact("nothing drafted, nothing sent")
    assert finish(child) == 0
    assert len(cli("drafts", "list", "--json").json()) == 1


# --- demo ----------------------------------------------------------------------------------


def test_demo_asks_before_wiping_your_work_and_a_no_at_send_ends_politely(run):
    assert run("demo", timeout=120).exit_code == 0
    mine = "Hi Theo, Alex here: thanks for the kind words on the pricing thread."
    assert run("--profile", "demo", "draft", "@theo_writes", mine).exit_code == 0

    child = spawn("demo")
    child.expect_exact("(1 draft)")
    child.expect_exact("Wipe it and start the demo again? [y/N]")
    child.sendline("n")
    child.expect_exact("Nothing was changed")
    assert finish(child) == 0
    drafts = run("--profile", "demo", "drafts", "list", "--json")
    assert mine in [d["text"] for d in json.loads(drafts.stdout)]

    child = spawn("demo")
    child.expect_exact("[y/N]")
    child.sendline("y")
    child.expect_exact("Answer y to send.")
    child.expect_exact("[y/N]", timeout=90)
    child.sendline("n")
    child.expect_exact("Nothing was sent: you said no")
    child.expect(pexpect.EOF)
    assert "failed" not in child.before and "error" not in child.before
    child.close()
    assert child.exitstatus == 0
    drafts = json.loads(run("--profile", "demo", "drafts", "list", "--json").stdout)
    assert [d["status"] for d in drafts] == ["approved"]  # yours was wiped; the demo's waits
