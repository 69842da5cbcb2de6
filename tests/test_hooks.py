"""hooks.on_inbound (issue 12 point 6): a real command, run by a real sync on
the sandbox, once per new inbound DM, after the sync lock is released."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dmtool.appstate import AppState
from dmtool.x.sandbox import SandboxWorld
from tests.test_archive import account, conversation, dm, folder, js
from tests.xworld import ALICE, BOB, ME, Cli, Clock, sync

# The hook: records the message it was given, whether the message was still
# queued while it ran (it must be taken off first), whether the sync lock was
# free (hooks run after the sync released it), and writes to its stdout,
# which must not reach dmtool's.
RECORDER = r'''
import json, os, sys
from pathlib import Path
from dmtool.locks import LockTimeout
from dmtool.store import open_store
doc = json.load(sys.stdin)
out, where, lock_dir = sys.argv[1:4]
store = open_store(where, lock_dir=Path(lock_dir))  # either engine, as dmtool opens it
doc["_queued"] = store.conn.execute(
    "SELECT count(*) FROM hook_queue q JOIN messages m ON m.id = q.message_id "
    "WHERE m.event_id = ?", (doc["event_id"],)).fetchone()[0]
try:
    with store.lock("sync", timeout=0):
        doc["_lock_free"] = True
except LockTimeout:
    doc["_lock_free"] = False
store.close()
doc["_hook"] = os.environ.get("DMTOOL_HOOK")
with open(out, "a", encoding="utf-8") as f:
    f.write(json.dumps(doc, ensure_ascii=False) + "\n")
print("noise on the hook's stdout")
'''


@pytest.fixture
def recorder(cli: Cli, tmp_path: Path) -> Path:
    """Configure the recording hook; returns the file it appends to."""
    script = tmp_path / "hook.py"
    script.write_text(RECORDER, encoding="utf-8")
    out = tmp_path / "heard.jsonl"
    st = AppState(profile="default")
    location = st.store_location()  # the SQLite file, or the PostgreSQL URL
    command = " ".join(shlex.quote(str(a)) for a in (sys.executable, script, out,
                                                     location.url or location.path,
                                                     st.paths.state_dir))
    assert cli("config", "set", "hooks.on_inbound", command).exit_code == 0
    return out


def heard(out: Path) -> list[dict[str, Any]]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def test_runs_once_per_new_inbound_dm(cli: Cli, world: SandboxWorld, clock: Clock,
                                      recorder: Path) -> None:
    world.incoming_dm(ALICE, "history: before the first sync", at=clock.ago(hours=2))
    assert sync(cli)["hooks"] == {"ran": 0, "failed": 0}  # the first sync brings history, not news
    assert heard(recorder) == []

    clock.advance(minutes=15)
    world.incoming_dm(BOB, "STOP", at=clock.ago(minutes=9))
    world.outgoing_dm(ALICE, "our reply: no hook for it", at=clock.ago(minutes=8))
    world.incoming_dm(ALICE, "thanks! one more question", at=clock.ago(minutes=5))
    data = sync(cli)  # one JSON document: the hook's stdout went elsewhere
    assert data["hooks"] == {"ran": 2, "failed": 0}
    bob, alice = heard(recorder)  # oldest first
    assert alice["contact"] == {"handle": "alice", "user_id": ALICE, "name": "Alice A"}
    assert alice["text"] == "thanks! one more question"
    assert alice["at"].endswith("Z")
    assert (alice["needs_reply"], alice["state"]) == (True, "open")
    assert (bob["needs_reply"], bob["state"]) == (False, "opted-out")  # never chase a STOP
    assert bob["text"] == "STOP" and bob["profile"] == "default" and bob["event_id"]
    for doc in (alice, bob):
        assert doc["_queued"] == 0  # taken off the queue before it ran
        assert doc["_lock_free"] is True  # the sync lock was released first
        assert doc["_hook"] == "on_inbound"

    clock.advance(minutes=15)
    assert sync(cli)["hooks"]["ran"] == 0  # nothing new: nothing runs again
    assert len(heard(recorder)) == 2


def test_no_hook_for_a_dm_sent_before_the_previous_sync(cli: Cli, world: SandboxWorld,
                                                        clock: Clock, recorder: Path) -> None:
    sync(cli)
    before = clock.ago(minutes=1)
    clock.advance(minutes=15)
    world.incoming_dm(ALICE, "showed up late", at=before)  # X delivered it after that sync
    world.incoming_dm(BOB, "new", at=clock.ago(minutes=1))
    assert sync(cli)["hooks"]["ran"] == 1
    assert [d["text"] for d in heard(recorder)] == ["new"]


def test_no_hook_for_an_archive_import(cli: Cli, world: SandboxWorld, clock: Clock,
                                       recorder: Path, tmp_path: Path) -> None:
    sync(cli)
    clock.advance(minutes=15)
    at = clock.ago(minutes=5).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    archive = folder(tmp_path / "archive", {
        "account.js": account(ME, "you"),
        "direct-messages.js": js("direct_messages", [conversation(
            ME, ALICE, dm("1700000000000000001", ALICE, ME, "from the archive", at))])})
    assert cli("import", "archive", str(archive), "--json").exit_code == 0
    assert sync(cli)["hooks"]["ran"] == 0
    assert heard(recorder) == []
    assert "from the archive" in {m["text"] for m in
                                  cli("thread", "alice", "--json", "--peek").json()["messages"]}


def test_a_failure_is_logged_and_never_stops_the_sync(cli: Cli, world: SandboxWorld,
                                                      clock: Clock) -> None:
    assert cli("config", "set", "hooks.on_inbound",
               "cat >/dev/null; echo 'webhook said no' >&2; exit 7").exit_code == 0
    sync(cli)
    clock.advance(minutes=15)
    world.incoming_dm(ALICE, "first", at=clock.ago(minutes=3))
    world.incoming_dm(BOB, "second", at=clock.ago(minutes=2))
    r = cli("sync", "--json")
    assert r.exit_code == 0, r
    assert r.json()["dm_events_new"] == 2 and r.json()["hooks"] == {"ran": 2, "failed": 2}
    warnings = [line for line in r.stderr.splitlines() if "hooks.on_inbound" in line]
    assert warnings == ["warning: hooks.on_inbound failed for 2 of 2 new messages "
                        "(exit 7: webhook said no); see `dmtool log --action hook_failed`"]
    entries = cli("log", "--action", "hook_failed", "--json").json()
    assert [(e["handle"], e["actor"], e["detail"]["error"]) for e in entries] == [
        ("bob", "sync", "exit 7: webhook said no"), ("alice", "sync", "exit 7: webhook said no")]
    # the messages are stored all the same
    assert [m["text"] for m in cli("thread", "alice", "--json", "--peek").json()["messages"]] == \
        ["first"]


def test_a_hook_that_runs_too_long_is_stopped_with_what_it_started(
        cli: Cli, world: SandboxWorld, clock: Clock, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    assert cli("config", "set", "hooks.timeout_s", "1").exit_code == 0
    # A background child that keeps the hook's stderr open: it must not hold the sync up.
    assert cli("config", "set", "hooks.on_inbound",
               f"sleep 60 & echo $! > {shlex.quote(str(pidfile))}; wait").exit_code == 0
    sync(cli)
    clock.advance(minutes=15)
    world.incoming_dm(ALICE, "hello", at=clock.ago(minutes=1))
    started = time.monotonic()
    r = cli("sync", "--json")
    assert r.exit_code == 0 and r.json()["hooks"] == {"ran": 1, "failed": 1}
    assert time.monotonic() - started < 20
    (entry,) = cli("log", "--action", "hook_failed", "--json").json()
    assert entry["detail"]["error"] == "timed out after 1 s"
    pid = int(pidfile.read_text())
    for _ in range(50):  # the group was killed; a zombie waiting for its reaper is dead too
        status = Path(f"/proc/{pid}/status")
        if not status.exists() or "\nState:\tZ" in status.read_text():
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the hook's child {pid} is still running")


def test_hooks_a_killed_sync_left_run_at_the_next(cli: Cli, world: SandboxWorld, clock: Clock,
                                                  recorder: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from dmtool.services import hooks

    sync(cli)
    clock.advance(minutes=15)
    world.incoming_dm(ALICE, "while the sync died", at=clock.ago(minutes=1))

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # the sync is stopped after storing, before any hook ran

    run_pending = hooks.run_pending
    monkeypatch.setattr(hooks, "run_pending", killed)
    assert cli("sync").exit_code == 130
    assert heard(recorder) == []
    monkeypatch.setattr(hooks, "run_pending", run_pending)
    assert [m["text"] for m in cli("thread", "alice", "--json", "--peek").json()["messages"]] == \
        ["while the sync died"]  # stored, and queued with it

    clock.advance(minutes=15)
    data = sync(cli)  # nothing new from X; the pending hook runs now
    assert data["dm_events_new"] == 0 and data["hooks"]["ran"] == 1
    assert [d["text"] for d in heard(recorder)] == ["while the sync died"]


def test_pending_hooks_are_dropped_when_the_hook_is_removed(
        cli: Cli, world: SandboxWorld, clock: Clock, recorder: Path,
        monkeypatch: pytest.MonkeyPatch, db: Any) -> None:
    from dmtool.services import hooks

    sync(cli)
    clock.advance(minutes=15)
    world.incoming_dm(ALICE, "queued", at=clock.ago(minutes=1))
    run_pending = hooks.run_pending
    monkeypatch.setattr(hooks, "run_pending", lambda *a, **k: hooks.HookReport())
    sync(cli)
    monkeypatch.setattr(hooks, "run_pending", run_pending)
    assert db("SELECT count(*) FROM hook_queue") == [(1,)]
    assert cli("config", "set", "hooks.on_inbound", "").exit_code == 0
    clock.advance(minutes=15)
    sync(cli)
    assert db("SELECT count(*) FROM hook_queue") == [(0,)]
    assert heard(recorder) == []


@pytest.mark.parametrize(("value", "ok"), [("0", False), ("1", True), ("300", True),
                                           ("301", False), ("ten", False)])
def test_timeout_bounds(cli: Cli, value: str, ok: bool) -> None:
    r = cli("config", "set", "hooks.timeout_s", value)
    assert (r.exit_code == 0) is ok, r
    if not ok:
        assert "hooks.timeout_s" in r.stderr and "ceilings keep outreach" not in r.stderr
