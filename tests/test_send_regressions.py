"""Breakages the suite once let through (issue 11 point 11), end to end through
the CLI on the sandbox X. Each test here fails with the breakage it names:

- an interrupted send settled back to `approved` instead of `unknown`
  (services/send.py, the `_settle_unknown(..., "interrupted")` branch);
- the mentions/own-posts `since_id` cursor not saved (services/sync.py);
- reconciliation taking another draft's event (`event_claimed(..., other_than=...)`);
- the opted-out gate, the last check under the send lock, and the autoack's
  refusal to answer someone who asked to stop.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from dmtool.paths import Paths
from dmtool.x.sandbox import SANDBOX_ME, SandboxWorld
from tests.conftest import profile_store
from tests.test_review_pty import finish
from tests.test_review_pty import spawn as spawn_pty
from tests.test_send import (
    approved_draft,
    draft,
    error_code,
    outbound,
    sandbox_world,
    spawn,
    talking_contact,
)
from tests.xworld import ALICE, BOB, SAM, Cli, Clock, sync


def audit(cli: Cli, draft_id: str | int) -> list[str]:
    """The audit actions about one draft, oldest first."""
    return [e["action"] for e in reversed(cli("log", "--json", "-n", "0").json())
            if e["draft_id"] == int(draft_id)]


# --- (a) Ctrl-C after the DM reached X -------------------------------------------------


def _after_interrupt(cli: Cli, run: Any, world: SandboxWorld, uid: str, did: str) -> None:
    """What must hold after a send was interrupted once its DM was on X."""
    assert len(outbound(world, uid)) == 1
    assert draft(cli, did)["status"] == "unknown"
    assert audit(cli, did)[-1] == "send_unknown"
    entry = cli("log", "--json").json()[0]
    assert (entry["action"], entry["codes"], entry["detail"]["reason"]) == \
        ("send_unknown", ["E_SEND_UNKNOWN"], "interrupted")
    r = run("send", did, "--yes", "--json")  # reconciles: the DM is found, none is sent
    assert r.exit_code == 0, r
    assert r.json()["reconciled"] is True and r.json()["status"] == "sent"
    sent = outbound(world, uid)
    assert len(sent) == 1 and draft(cli, did)["dm_event_id"] == sent[0]["id"]
    assert run("send", did, "--yes").exit_code == 1  # and never again
    assert len(outbound(world, uid)) == 1


def test_sigint_while_x_answers_leaves_the_send_unknown(cli, run):
    world = sandbox_world()
    uid = talking_contact(world, "alice", "Alice Smith")
    did = approved_draft(cli, "alice", "Thanks Alice, here are the details.")
    world.hang_after_send(60)
    p = spawn("send", did, "--yes")
    try:
        deadline = time.monotonic() + 30
        while not outbound(world, uid):  # the DM reached X; no answer has come back yet
            assert time.monotonic() < deadline, "the send never reached the sandbox"
            assert p.poll() is None, p.communicate()
            time.sleep(0.05)
        p.send_signal(signal.SIGINT)  # Ctrl-C
        rc = p.wait(timeout=30)
        _, err = p.communicate()
    finally:
        if p.poll() is None:
            p.kill()
    assert rc == 130, err
    assert "interrupted" in err and "Traceback" not in err
    _after_interrupt(cli, run, world, uid, did)


def test_keyboard_interrupt_from_the_client_after_x_accepted(cli, run, monkeypatch):
    from dmtool.x.sandbox.adapter import SandboxAdapter

    world = sandbox_world()
    uid = talking_contact(world, "alice", "Alice Smith")
    did = approved_draft(cli, "alice", "Thanks Alice, the notes are below.")
    real_send = SandboxAdapter.send

    def accepted_then_interrupted(self: SandboxAdapter, request: Any, *args: Any,
                                  **kwargs: Any) -> Any:
        response = real_send(self, request, *args, **kwargs)
        if request.method == "POST" and request.url.endswith("/messages"):
            raise KeyboardInterrupt  # the answer never reached dmtool
        return response

    monkeypatch.setattr(SandboxAdapter, "send", accepted_then_interrupted)
    r = cli("send", did, "--yes")
    assert r.exit_code == 130, r
    monkeypatch.setattr(SandboxAdapter, "send", real_send)
    _after_interrupt(cli, run, world, uid, did)


# --- (b) the public-check cursor -------------------------------------------------------


def test_the_second_public_check_asks_only_for_what_is_new(cli: Cli, world: SandboxWorld,
                                                          clock: Clock) -> None:
    me = SANDBOX_ME[1]
    first = [world.add_post(ALICE, f"@{me} loved the talk", at=clock.ago(hours=3)),
             world.add_post(BOB, f"@{me} slides please?", at=clock.ago(hours=2))]
    mine = world.add_post(SANDBOX_ME[0], "@bob here they are", at=clock.ago(hours=1),
                          reply_to_post_id=first[1])
    assert sync(cli, "--public")["mentions_new"] == 2

    clock.advance(minutes=5)
    new = world.add_post(SAM, f"@{me} me too", at=clock.ago(minutes=1))
    world.reset_requests_log()
    data = sync(cli, "--public")
    assert (data["mentions_new"], data["replies_new"]) == (1, 0)
    reads = {q["path"].rsplit("/", 1)[1]: q for q in world.requests_log()
             if q["path"].endswith(("/mentions", "/tweets"))}
    assert reads["mentions"]["query"]["since_id"] == max(first, key=int)
    assert reads["mentions"]["posts"] == 1  # only the new post was read (and paid for)
    assert reads["tweets"]["query"]["since_id"] == mine
    assert reads["tweets"]["posts"] == 0
    assert int(new) > int(max(first, key=int))


# --- (c) reconcile must not claim another draft's event --------------------------------


def test_reconcile_never_takes_the_event_of_a_draft_that_differs_only_in_a_link(cli, run):
    world = sandbox_world()
    uid = talking_contact(world, "alice", "Alice Smith")
    a = approved_draft(cli, "alice", "Thanks Alice, the slides: https://example.com/a")
    b = approved_draft(cli, "alice", "Thanks Alice, the slides: https://example.com/b")
    r = run("send", a, "--yes", "--json")
    assert r.exit_code == 0, r
    a_event = r.json()["dm_event_id"]
    # A went first: B is back in review (two approved drafts, issue 15); approved again
    assert draft(cli, b)["status"] == "draft"
    assert cli("review", b, "--approve").exit_code == 0
    world.fail_next(503, method="POST", path_contains="/messages")  # X failed before storing it
    r = run("send", b, "--yes")
    assert r.exit_code == 5, r
    assert draft(cli, b)["status"] == "unknown"

    r = run("send", b, "--yes", "--json")  # reconcile: A's DM reads the same, but it is A's
    assert r.exit_code == 1 and error_code(r.stderr) == "E_NOT_DELIVERED", r
    shown = draft(cli, b)
    assert (shown["status"], shown["dm_event_id"]) == ("failed", None)
    assert draft(cli, a)["dm_event_id"] == a_event
    assert [e["id"] for e in outbound(world, uid)] == [a_event]
    assert "sent" not in audit(cli, b)
    messages = cli("contacts", "show", "alice", "--json").json()["messages"]
    assert [m["id"] for m in messages if m["direction"] == "out"] == [a_event]


# --- the opted-out gate ------------------------------------------------------------------


def test_a_stop_between_approval_and_send_stops_everything(cli: Cli, world: SandboxWorld,
                                                          clock: Clock) -> None:
    world.incoming_dm(ALICE, "Hi! What does the pro plan cost?", at=clock.ago(hours=1))
    sync(cli)
    did = approved_draft(cli, "alice", "Thanks Alice, the pro plan is 12 a month.")
    clock.advance(minutes=5)
    world.incoming_dm(ALICE, "STOP", at=clock.ago(minutes=1))
    assert sync(cli)["opted_out"] == ["alice"]

    r = cli("send", did, "--yes", "--json")
    assert r.exit_code == 3, r
    # the traffic cop (issue 15): the STOP came after the approval
    assert error_code(r.stderr) == "E_CONVERSATION_MOVED"
    assert "E_OPTED_OUT" in {x["code"] for x in json.loads(r.stderr)["error"]["reasons"]}
    assert cli("check", "alice").exit_code == 3
    assert cli("draft", "alice", "One more thing, Alice.").exit_code == 3
    assert cli("contacts", "list", "--status", "opted-out", "--json").json()[0]["handle"] == "alice"
    assert outbound(world, ALICE) == []
    assert draft(cli, did)["status"] == "draft"  # back in review
    assert audit(cli, did)[-1] == "refused"
    assert cli("review", did, "--approve").exit_code == 3  # and the policy refuses it there

    # Only their own START lifts it; approved again, the draft may then go, once.
    clock.advance(minutes=5)
    world.incoming_dm(ALICE, "START", at=clock.ago(minutes=1))
    sync(cli)
    assert cli("review", did, "--approve").exit_code == 0
    assert cli("send", did, "--yes").exit_code == 0
    assert len(outbound(world, ALICE)) == 1


def test_a_stop_synced_while_the_sender_waits_for_the_lock(cli, run, store_engine):
    """The send passed every check, then waits for the send lock (another send
    holds it); meanwhile a sync stores their STOP. The check under the lock
    refuses: nothing is sent."""
    world = sandbox_world()
    uid = talking_contact(world, "alice", "Alice Smith")
    did = approved_draft(cli, "alice", "Thanks Alice, the invoice is attached.")
    with contextlib.ExitStack() as other_send:  # another send in flight
        if store_engine == "sqlite":
            lock = Paths.resolve("default").send_lock_file
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
            other_send.callback(os.close, fd)  # the other send is done
            fcntl.flock(fd, fcntl.LOCK_EX)
            p = spawn("send", did, "--yes", "--json")
            _wait_until_waiting_for(p, lock)
        else:  # the advisory lock, held by another connection
            held = profile_store()
            other_send.callback(held.close)
            other_send.enter_context(held.lock("send"))
            p = spawn("send", did, "--yes", "--json")
            _wait_until_polling_the_advisory_lock(p, held)
        world.incoming_dm(uid, "stop")
        assert sync(cli)["opted_out"] == ["alice"]
    rc = p.wait(timeout=60)
    out, err = p.communicate()
    assert rc == 3, err
    # the traffic cop under the lock: the STOP came after the approval (issue 15)
    assert error_code(err) == "E_CONVERSATION_MOVED"
    assert "E_OPTED_OUT" in {x["code"] for x in json.loads(err)["error"]["reasons"]}
    assert outbound(world, uid) == []
    assert draft(cli, did)["status"] == "draft"
    entry = cli("log", "--json").json()[0]
    assert (entry["action"], entry["detail"]["command"]) == ("refused", "send")


def _wait_until_waiting_for(p: subprocess.Popen[str], lock: Path) -> None:
    """Until the process holds `lock` open: `send` opens the lock file only
    after its checks, to wait for the lock. Read from /proc (Linux); elsewhere
    the send is given two seconds to get there."""
    deadline = time.monotonic() + 30
    fds = Path(f"/proc/{p.pid}/fd")
    if not Path("/proc/self/fd").is_dir():
        time.sleep(2)
        return
    while True:
        assert p.poll() is None, p.communicate()
        assert time.monotonic() < deadline, "the send never reached the lock"
        try:
            if any(os.path.realpath(f) == str(lock.resolve()) for f in fds.iterdir()):
                return
        except OSError:  # the process is still starting, or a descriptor just closed
            pass
        time.sleep(0.02)


def _wait_until_polling_the_advisory_lock(p: subprocess.Popen[str], held: Any) -> None:
    """Until another connection of the store's database last asked for an
    advisory lock: `send` asks for the send lock only after its checks."""
    own = held.conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # and not our own ask
    deadline = time.monotonic() + 30
    while True:
        assert p.poll() is None, p.communicate()
        assert time.monotonic() < deadline, "the send never reached the lock"
        n = held.conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid != ? AND query LIKE '%pg_try_advisory_lock%'", (own,)).fetchone()[0]
        if n:
            return
        time.sleep(0.02)


def test_a_stop_synced_while_you_read_the_send_prompt(cli):
    """On a terminal the checks and the y/N question come before the lock: a
    STOP synced while you read the text is caught by the check under the lock."""
    world = sandbox_world()
    uid = talking_contact(world, "alice", "Alice Smith")
    did = approved_draft(cli, "alice", "Thanks Alice, see you on Friday.")
    child = spawn_pty("send", did)
    child.expect_exact("Thanks Alice, see you on Friday.")
    child.expect_exact("Send this DM to @alice")
    world.incoming_dm(uid, "配信停止")
    assert cli("sync", "--json").json()["opted_out"] == ["alice"]
    child.sendline("y")
    child.expect_exact("@alice opted out")  # the traffic cop under the lock (issue 15)
    assert finish(child) == 3
    assert outbound(world, uid) == []
    assert draft(cli, did)["status"] == "draft"


# --- the autoack and a stop -------------------------------------------------------------

ACK = "Thanks for your message! We read every DM and will reply within a day. – Alex"


def _enable_autoack(cli: Cli) -> None:
    assert cli("config", "set", "autoack.text", ACK).exit_code == 0
    assert cli("config", "set", "autoack.enabled", "true").exit_code == 0


def _acks(world: SandboxWorld, uid: str) -> list[dict[str, Any]]:
    return [e for e in world.dms_with(uid) if e.get("sender_id") != uid]


def test_no_autoack_to_a_conversation_that_opens_with_a_stop(cli: Cli, world: SandboxWorld,
                                                             clock: Clock) -> None:
    _enable_autoack(cli)
    sync(cli)
    world.incoming_dm(ALICE, "please stop messaging me", at=clock.ago(minutes=3))  # review
    world.incoming_dm(BOB, "STOP", at=clock.ago(minutes=2))  # opt-out
    world.incoming_dm(SAM, "もう連絡しないでください", at=clock.ago(minutes=1))  # review, Japanese
    data = sync(cli)
    assert data["autoacks_sent"] == 0
    assert (_acks(world, ALICE), _acks(world, BOB), _acks(world, SAM)) == ([], [], [])
    skipped = {e["handle"]: e["codes"] for e in cli("log", "--json").json()
               if e["action"] == "autoack_skipped"}
    assert "E_OPTOUT_REVIEW" in skipped["alice"] and "E_OPTOUT_REVIEW" in skipped["sam"]
    assert "E_OPTED_OUT" in skipped["bob"]
    assert cli("drafts", "list", "--json").json() == []  # no ack left behind to send by hand


def test_no_autoack_when_the_stop_follows_in_the_same_burst(cli: Cli, world: SandboxWorld,
                                                            clock: Clock) -> None:
    _enable_autoack(cli)
    sync(cli)
    world.incoming_dm(ALICE, "hi, question about pricing", at=clock.ago(minutes=3))
    world.incoming_dm(ALICE, "Stop.", at=clock.ago(minutes=2))
    world.incoming_dm(BOB, "hello there", at=clock.ago(minutes=1))  # a control: Bob gets his ack
    data = sync(cli)
    assert data["autoacks_sent"] == 1
    assert _acks(world, ALICE) == []
    assert [e["text"] for e in _acks(world, BOB)] == [ACK]


def test_no_autoack_to_a_trigger_that_asks_to_stop_when_the_record_does_not_know(
        cli: Cli, world: SandboxWorld, clock: Clock) -> None:
    """The autoack judges the DM it would answer itself: here the record holds no
    review (a "please stop" while opted out is not reviewed, and the START right
    after lifts the opt-out), yet the DM that opened the conversation asked to stop."""
    _enable_autoack(cli)
    sync(cli)
    world.incoming_dm(ALICE, "STOP", at=clock.ago(minutes=1))
    sync(cli)
    assert cli("check", "alice").exit_code == 3
    clock.advance(days=40)  # the next DMs open a new conversation
    world.incoming_dm(ALICE, "please stop messaging me", at=clock.ago(minutes=3))
    world.incoming_dm(ALICE, "START", at=clock.ago(minutes=2))
    data = sync(cli)
    shown = cli("contacts", "show", "alice", "--json").json()
    assert (shown["opted_out_at"], shown["optout_review"]) == (None, None)
    assert data["autoacks_sent"] == 0
    assert _acks(world, ALICE) == []
    skipped = [e for e in cli("log", "--json").json() if e["action"] == "autoack_skipped"]
    assert skipped[0]["codes"] == ["E_OPTOUT_REVIEW"]  # newest first: this burst's
