"""The store's concurrency promises, across separate processes, each with its
own connection: on SQLite (file locks, BEGIN IMMEDIATE) and on PostgreSQL
(advisory locks held by the connection, across machines). Every test counts
what the sandbox X holds afterwards.
"""

from __future__ import annotations

import json
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dmtool.x.sandbox import SandboxWorld
from tests.conftest import profile_store
from tests.test_archive import conversation, dm, folder, js
from tests.test_send import approved_draft, draft, outbound, sandbox_world, spawn, talking_contact

SENDERS = 8


@pytest.fixture
def world() -> SandboxWorld:
    return sandbox_world()


def finish(procs: list[subprocess.Popen[str]], timeout: float = 120) -> list[tuple[int, str, str]]:
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=timeout)
        out.append((p.returncode, stdout, stderr))
    return out


def code_of(stderr: str) -> str:
    return str(json.loads(stderr.strip().splitlines()[-1])["error"]["code"])


def test_eight_senders_of_one_draft_send_one_dm(cli, world):
    uid = talking_contact(world, "alice", "Alice Smith")
    did = approved_draft(cli, "alice", "Thanks Alice, the dates are below.")
    procs = [spawn("send", did, "--yes", "--json") for _ in range(SENDERS)]
    results = finish(procs)
    winners = [r for r in results if r[0] == 0]
    assert len(winners) == 1, results
    losers = [code_of(err) for code, _, err in results if code != 0]
    # With 8 senders on 2 cores a loser may wait past the lock timeout: E_BUSY.
    assert set(losers) <= {"E_ALREADY_SENT", "E_BUSY"}, results
    assert len(outbound(world, uid)) == 1
    assert draft(cli, did)["status"] == "sent"


def test_a_killed_sender_frees_the_lock_and_the_next_send_reconciles(cli, run, world):
    uid = talking_contact(world, "alice", "Alice Smith")
    did = approved_draft(cli, "alice", "Thanks Alice, the workbook ships on Monday.")
    world.hang_after_send(60)
    p = spawn("send", did, "--yes")
    try:
        deadline = time.monotonic() + 30
        while not outbound(world, uid):
            assert time.monotonic() < deadline and p.poll() is None
            time.sleep(0.05)
        other = profile_store()
        with pytest.raises(Exception, match="send"), other.lock("send", timeout=0.2):
            pass  # held by the sender, in flight
    finally:
        p.kill()  # SIGKILL: no cleanup runs in the sender
        p.wait(timeout=10)
    with other.lock("send", timeout=10):  # the kernel (or the server) freed it
        pass
    other.close()
    r = run("send", did, "--yes", "--json")
    assert r.exit_code == 0, r
    assert r.json()["reconciled"] is True
    assert len(outbound(world, uid)) == 1


def test_a_sync_and_a_send_at_once(cli, world):
    uid = talking_contact(world, "alice", "Alice Smith")
    for n in range(5):
        bob = world.add_user(f"bob{n}", f"Bob {n}")
        world.incoming_dm(bob, f"hello {n}", at=world.now() - timedelta(minutes=30 - n))
    did = approved_draft(cli, "alice", "Thanks Alice, talk soon.")
    results = finish([spawn("sync", "--json"), spawn("send", did, "--yes", "--json")])
    assert [r[0] for r in results] == [0, 0], results
    assert len(outbound(world, uid)) == 1
    assert draft(cli, did)["status"] == "sent"
    handles = {c["handle"] for c in cli("contacts", "list", "--json").json()}
    assert {f"bob{n}" for n in range(5)} <= handles
    # the DM the send recorded and the one sync may have read are one message
    thread = cli("contacts", "show", "alice", "--json").json()["messages"]
    assert [m["id"] for m in thread].count(outbound(world, uid)[0]["id"]) == 1


def test_two_syncs_at_once(cli, world, db):
    """Since 0.4.0 a sync that meets another one exits 0 at once with the
    `skipped` document (docs/cron.md), never E_BUSY; or, if it came after the
    first had finished, it is a sync of its own that finds nothing new."""
    import socket

    for n in range(12):
        uid = world.add_user(f"p{n}", f"Person {n}")
        world.incoming_dm(uid, f"hi {n}", at=world.now() - timedelta(minutes=60 - n))
    results = finish([spawn("sync", "--json") for _ in range(2)])
    assert [r[0] for r in results] == [0, 0], results
    synced, skipped = [], []
    for _, out, _ in results:
        doc = json.loads(out)
        (skipped if "skipped" in doc else synced).append(doc)
    assert synced, results  # one of them did the work
    for doc in synced:
        assert {"dm_events_new", "dm_events_read", "mentions_new"} <= set(doc), doc
    assert sum(doc["dm_events_new"] for doc in synced) == 12, results
    for doc in skipped:
        assert set(doc) == {"skipped", "holder"} and doc["skipped"] == "sync_running", doc
        holder = doc["holder"]
        assert set(holder) == {"operator", "host", "since"}, doc
        # null only if it looked in the moment between the lock and its record
        if holder["host"] is not None:
            assert holder["host"] == socket.gethostname(), doc
            assert datetime.fromisoformat(holder["since"].replace("Z", "+00:00")).tzinfo, doc
    events = [r[0] for r in db("SELECT event_id FROM messages")]
    assert len(events) == len(set(events)) == 12
    assert db("SELECT count(*) FROM contacts")[0][0] == 12
    assert len(cli("inbox", "--json").json()) == 12  # every conversation waits for a reply


def test_an_archive_import_and_the_inbox_at_once(cli, tmp_path: Path, world):
    me = world.me()
    people = [str(1600000000000000000 + n) for n in range(150)]
    convs = [conversation(me, p, *(dm(f"{9000 + i * 10 + k}", p, me, f"message {k}",
                                      f"2021-07-{1 + k:02d}T10:00:00.000Z") for k in range(4)))
             for i, p in enumerate(people)]
    arc = folder(tmp_path / "arc", {
        "account.js": js("account", [{"account": {"accountId": me, "username": "you",
                                                  "createdAt": "2010-01-01T00:00:00.000Z"}}]),
        "direct-messages.js": js("direct_messages", convs)})
    importer = spawn("import", "archive", str(arc), "--json")
    readers: list[tuple[int, str, str]] = []
    while importer.poll() is None:
        readers += finish([spawn("inbox", "--json")])
    out: Any = finish([importer])[0]
    assert out[0] == 0, out
    assert readers and all(code == 0 for code, _, _ in readers), readers
    assert len(cli("inbox", "--all", "--json", "--limit", "500").json()) == 150


def test_a_digest_waits_for_another_digest(cli, world, monkeypatch):
    """Two cron hosts: the checkpoint is read and moved under the digest lock."""
    from dmtool.services import conversations

    monkeypatch.setattr(conversations, "DIGEST_LOCK_WAIT_S", 0.3)
    assert cli("digest", "--json").exit_code == 0  # the store exists
    other = profile_store()
    with other.lock("digest"):
        r = cli("digest", "--json")
        assert r.exit_code == 5 and code_of(r.stderr) == "E_BUSY", r
        assert cli("digest", "--peek", "--json").exit_code == 0  # moves nothing: no lock
    other.close()
    assert cli("digest", "--json").exit_code == 0
