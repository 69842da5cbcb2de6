"""`dmtool db restore FILE` (issue 11, point 3): going back to a backup never
brings back someone who opted out and never lets a DM go twice."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from dmtool.paths import Paths
from dmtool.store import open_store
from dmtool.store.db import migrate
from dmtool.store.migrations import MIGRATIONS
from tests.damage import corrupt_page, table_pages
from tests.xworld import ALICE, BOB, CAROL, ERIN, ME, Cli, Clock, sync

# db restore swaps SQLite files; on PostgreSQL it refuses, saying how to use
# pg_restore (tests/test_pg_faults.py).
pytestmark = pytest.mark.sqlite_only(reason="db restore swaps SQLite files; PostgreSQL is "
                                                 "restored with pg_restore")


def db_file() -> Path:
    return Paths.resolve("default").db_file


def outbound(world: Any, uid: str) -> list[dict[str, Any]]:
    return [e for e in world.dms_with(uid) if e["sender_id"] == ME]


def approved(cli: Cli, handle: str, text: str) -> str:
    r = cli("draft", handle, text, "--json")
    assert r.exit_code == 0, r
    did = str(r.json()["id"])
    assert cli("review", did, "--approve").exit_code == 0
    return did


def status_of(cli: Cli, did: str) -> str:
    return str(cli("drafts", "show", did, "--json").json()["status"])


def codes(cli: Cli, handle: str) -> set[str]:
    return {x["code"] for x in cli("check", handle, "--json").json()["reasons"]}


@pytest.fixture
def talking(cli: Cli, world: Any, clock: Clock) -> Any:
    """Alice, Bob, Carol and Erin DMed you; the store knows them."""
    for uid, text in ((ALICE, "Hi! Tell me about the beta?"), (BOB, "Is there a student price?"),
                      (CAROL, "Hello there"), (ERIN, "Hey, quick question")):
        world.incoming_dm(uid, text, at=clock.ago(hours=3))
    sync(cli)
    return world


def test_restore_keeps_what_protects_people_and_sends_nothing_twice(
        cli: Cli, talking: Any, clock: Clock, tmp_path: Path) -> None:
    world = talking
    to_alice = approved(cli, "alice", "Thanks Alice, the beta opens on Monday.")
    to_bob = approved(cli, "bob", "Hi Bob, yes: students get half price.")
    backup = tmp_path / "before.db"
    assert cli("db", "backup", str(backup)).exit_code == 0

    # After the backup: Alice's DM goes out, Bob says STOP, Carol is blocked,
    # Erin's "please stop" waits for review.
    clock.advance(minutes=10)
    assert cli("send", to_alice, "--yes").exit_code == 0
    world.incoming_dm(BOB, "STOP", at=clock.ago(minutes=5))
    world.incoming_dm(ERIN, "please stop messaging me", at=clock.ago(minutes=4))
    sync(cli)
    assert cli("contacts", "block", "carol").exit_code == 0
    assert len(outbound(world, ALICE)) == 1

    clock.advance(minutes=10)
    r = cli("db", "restore", str(backup), "--yes")
    assert r.exit_code == 0, r
    assert r.stdout == ""
    assert "kept at" in r.stderr and "dmtool sync" in r.stderr
    assert f"now unknown ({to_alice}, {to_bob})" in r.stderr
    aside = next(db_file().parent.glob("dmtool.db.before-restore-*"))
    assert not list(db_file().parent.glob("*restoring*"))
    assert sqlite3.connect(aside).execute("SELECT count(*) FROM sends").fetchone()[0] == 1

    state = dict(sqlite3.connect(db_file()).execute("SELECT key, value FROM sync_state"))
    assert "dm_hwm" not in state and "dm_hwm_at" not in state  # the sync starts over
    assert state["me_id"] == ME
    # Nobody who said no can be messaged: the backup knew nothing of it.
    assert "E_OPTED_OUT" in codes(cli, "bob")
    assert "E_BLOCKED" in codes(cli, "carol")
    assert "E_OPTOUT_REVIEW" in codes(cli, "erin")
    # Both approved drafts may have gone out: send asks X first.
    assert status_of(cli, to_alice) == status_of(cli, to_bob) == "unknown"
    r = cli("send", to_alice, "--yes")
    assert r.exit_code == 0 and "already reached" in r.stdout, r
    assert status_of(cli, to_alice) == "sent"
    assert len(outbound(world, ALICE)) == 1  # exactly one DM at X
    r = cli("send", to_bob, "--yes", "--json")
    assert r.exit_code == 1 and json.loads(r.stderr)["error"]["code"] == "E_NOT_DELIVERED"
    assert outbound(world, BOB) == []
    # The ledger knows Alice's send (caps, duplicates); the sync starts over.
    assert sync(cli)["dm_events_new"] >= 2  # Bob's STOP and Erin's message come back
    log = cli("log", "--json").json()
    restored = next(e for e in log if e["action"] == "restored")
    assert restored["detail"]["kept"]["opted_out"] == 1
    assert restored["detail"]["drafts_unknown"] == [int(to_alice), int(to_bob)]
    assert cli("db", "check").exit_code == 0


def test_a_draft_the_ledger_shows_as_sent_is_unknown_after_restore(
        cli: Cli, talking: Any, clock: Clock, tmp_path: Path) -> None:
    """Drafted before the backup, approved and sent after it: the backup holds
    it as a plain draft; the ledger says it went out, so it becomes unknown."""
    r = cli("draft", "alice", "Thanks Alice, the invite follows.", "--json")
    did = str(r.json()["id"])
    backup = tmp_path / "before.db"
    assert cli("db", "backup", str(backup)).exit_code == 0
    assert cli("review", did, "--approve").exit_code == 0
    assert cli("send", did, "--yes").exit_code == 0
    assert cli("db", "restore", str(backup), "--yes").exit_code == 0
    assert status_of(cli, did) == "unknown"
    assert cli("send", did, "--yes").exit_code == 0
    assert status_of(cli, did) == "sent"
    assert len(outbound(talking, ALICE)) == 1


def test_restore_needs_confirmation_off_a_terminal(cli: Cli, talking: Any, tmp_path: Path) -> None:
    backup = tmp_path / "b.db"
    assert cli("db", "backup", str(backup)).exit_code == 0
    before = db_file().read_bytes()
    r = cli("db", "restore", str(backup))
    assert r.exit_code == 2 and "--yes" in r.stderr, r
    assert db_file().read_bytes() == before
    assert not list(db_file().parent.glob("*.before-restore-*"))


def test_restore_checks_the_file_first(cli: Cli, talking: Any, tmp_path: Path) -> None:
    good = tmp_path / "good.db"
    assert cli("db", "backup", str(good)).exit_code == 0
    not_a_store = tmp_path / "notes.txt"
    not_a_store.write_text("hello", encoding="utf-8")
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(good.read_bytes())
    corrupt_page(damaged, table_pages(damaged, "contacts")[0])
    other = tmp_path / "other.db"
    other.write_bytes(good.read_bytes())
    with sqlite3.connect(other) as conn:
        conn.execute("UPDATE sync_state SET value = '42' WHERE key = 'me_id'")
    newer = tmp_path / "newer.db"
    newer.write_bytes(good.read_bytes())
    with sqlite3.connect(newer) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    for f, code, words in ((tmp_path / "missing.db", 1, "no such file"),
                           (not_a_store, 1, "not a dmtool store"),
                           (empty, 1, "not a dmtool store"),
                           (damaged, 1, "is damaged"),
                           (other, 1, "another X account"),
                           (newer, 4, "newer dmtool"),
                           (db_file(), 1, "own store")):
        before = db_file().read_bytes()
        r = cli("db", "restore", str(f), "--yes")
        assert r.exit_code == code and words in r.stderr, (f, r)
        assert db_file().read_bytes() == before
    assert cli("db", "restore", str(good), "--yes").exit_code == 0


def test_restore_waits_for_no_sync(cli: Cli, talking: Any, tmp_path: Path) -> None:
    backup = tmp_path / "b.db"
    assert cli("db", "backup", str(backup)).exit_code == 0
    lock = Paths.resolve("default").sync_lock_file
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        r = cli("db", "restore", str(backup), "--yes")
    finally:
        os.close(fd)
    assert r.exit_code == 5 and "another dmtool sync" in r.stderr, r
    assert not list(db_file().parent.glob("*.before-restore-*"))


def test_restore_waits_for_no_send(cli: Cli, talking: Any, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A send holds the send lock from its last check to the recorded result:
    a store swapped in meanwhile would lose that result (and the DM could go
    twice), so a restore waits for it, and gives up as a send would (exit 5)."""
    import functools

    from dmtool.services import send

    backup = tmp_path / "b.db"
    assert cli("db", "backup", str(backup)).exit_code == 0
    monkeypatch.setattr(send, "send_lock", functools.partial(send.send_lock, timeout=0.3))
    before = db_file().read_bytes()
    lock = Paths.resolve("default").send_lock_file
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a send in progress
        r = cli("db", "restore", str(backup), "--yes")
    finally:
        os.close(fd)
    assert r.exit_code == 5 and "another dmtool send" in r.stderr, r
    assert db_file().read_bytes() == before
    assert not list(db_file().parent.glob("*.before-restore-*"))
    assert cli("db", "restore", str(backup), "--yes").exit_code == 0  # once it is done


def test_restore_salvages_what_a_damaged_store_can_still_give(
        cli: Cli, talking: Any, clock: Clock, tmp_path: Path) -> None:
    backup = tmp_path / "b.db"
    assert cli("db", "backup", str(backup)).exit_code == 0
    # After the backup: Bob opts out, and the ledger grows over many pages.
    talking.incoming_dm(BOB, "STOP", at=clock.ago(minutes=5))
    sync(cli)
    total = 3000
    store = open_store(db_file())
    with store.tx() as conn:
        conn.executemany(
            "INSERT INTO sends (user_id, at, text, first_contact, kind, event_id) "
            "VALUES (?, ?, ?, 0, 'send', ?)",
            ((f"9{i}", f"2026-03-0{1 + i % 2}T00:00:00.000Z", f"a message of the ledger {i}",
              f"ev{i}") for i in range(total)))
    store.close()
    assert cli("db", "check").exit_code == 0
    _, leaves = table_pages(db_file(), "sends")
    assert len(leaves) > 4
    corrupt_page(db_file(), leaves[len(leaves) // 2])
    assert cli("db", "check").exit_code == 1

    r = cli("db", "restore", str(backup), "--yes")
    assert r.exit_code == 0, r
    assert "could not read" in r.stderr and "sends" in r.stderr
    kept = next(e for e in cli("log", "--json").json() if e["action"] == "restored")["detail"]
    assert total - 200 < kept["kept"]["sends"] < total  # all but one page of the ledger
    assert kept["unreadable"]
    assert "E_OPTED_OUT" in codes(cli, "bob")
    restored = sqlite3.connect(db_file())
    assert restored.execute("SELECT count(*) FROM sends WHERE event_id = 'ev0'").fetchone()[0] == 1
    assert restored.execute(f"SELECT count(*) FROM sends WHERE event_id = 'ev{total - 1}'"
                            ).fetchone()[0] == 1
    assert cli("db", "check").exit_code == 0


def test_an_older_backup_is_brought_up_to_date(cli: Cli, tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old, isolation_level=None)
    migrate(conn, len(MIGRATIONS) - 1)  # a backup from the version before this one
    conn.execute("INSERT INTO contacts (user_id, handle, created_at, updated_at) "
                 "VALUES ('7', 'olga', 't', 't')")
    conn.close()
    assert cli("contacts", "add", "zoe").exit_code == 0
    assert cli("contacts", "block", "zoe").exit_code == 0
    r = cli("db", "restore", str(old), "--yes")
    assert r.exit_code == 0, r
    assert cli("db", "check", "--json").json()["schema_version"] == len(MIGRATIONS)
    assert [c["handle"] for c in cli("contacts", "list", "--json").json()] == ["olga"]
    # Zoe is not in the backup, but her block is kept: she is blocked when she comes back.
    assert cli("contacts", "add", "zoe").exit_code == 0
    assert cli("contacts", "show", "zoe", "--json").json()["status"] == "blocked"


def test_restore_on_a_new_machine(cli: Cli, talking: Any, tmp_path: Path) -> None:
    backup = tmp_path / "b.db"
    assert cli("db", "backup", str(backup)).exit_code == 0
    elsewhere = {"DMTOOL_HOME": str(tmp_path / "new-home")}
    r = cli("db", "restore", str(backup), "--yes", env=elsewhere)
    assert r.exit_code == 0, r
    assert "kept at" not in r.stderr
    names = {c["handle"] for c in cli("contacts", "list", "--json", env=elsewhere).json()}
    assert names == {"alice", "bob", "carol", "erin"}
