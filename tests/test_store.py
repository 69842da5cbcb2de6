from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from dmtool.store import open_store
from dmtool.store.migrations import MIGRATIONS


@pytest.mark.sqlite_only(reason="the file, its mode and WAL are SQLite's")
def test_new_store_is_private_wal_and_current(tmp_path: Path):
    path = tmp_path / "d" / "dmtool.db"
    store = open_store(path)
    assert store.schema_version() == len(MIGRATIONS)
    assert store.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


def test_upgrade_from_migration_1_keeps_data(new_store):
    old = new_store(migrate_to=1)
    assert old.schema_version() == 1
    with old.tx() as c:
        c.execute("INSERT INTO contacts (user_id, handle, created_at, updated_at) "
                  "VALUES ('42', 'alice', 'x', 'x')")
        c.execute("INSERT INTO evidence (contact_id, kind, at, ref, recorded_at) "
                  "VALUES (1, 'request', 't', 'r1', 't')")
    assert "missing table: drafts" in old.problems()
    old.close()

    new = open_store(old.location)
    assert new.schema_version() == len(MIGRATIONS)
    assert new.execute("SELECT handle FROM contacts WHERE user_id = '42'").fetchone()[0] == "alice"
    # tables of later migrations exist and work with the old rows
    new.execute("INSERT INTO drafts (contact_id, text, created_at, updated_at) "
                "VALUES (1, 'hi', 't', 't')")
    assert new.execute("SELECT count(*) FROM drafts").fetchone()[0] == 1


def test_foreign_keys_cascade_on_forget(new_store):
    store = new_store()
    with store.tx() as c:
        c.execute("INSERT INTO contacts (user_id, handle, created_at, updated_at) "
                  "VALUES ('1', 'a', 't', 't')")
        c.execute("INSERT INTO messages (event_id, contact_id, direction, text, at, source, "
                  "recorded_at) VALUES ('e1', 1, 'in', 'hi', 't', 'sync', 't')")
        c.execute("DELETE FROM contacts WHERE id = 1")
    assert store.execute("SELECT count(*) FROM messages").fetchone()[0] == 0


def test_failed_transaction_rolls_back(new_store):
    store = new_store()
    try:
        with store.tx() as c:
            c.execute("INSERT INTO contacts (handle, created_at, updated_at) VALUES ('a', 't', 't')")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert store.execute("SELECT count(*) FROM contacts").fetchone()[0] == 0


def test_evidence_ref_unique(new_store):
    store = new_store()
    from dmtool.store import contacts as cstore

    with store.tx() as c:
        contact = cstore.create(c, "alice", now="t", user_id="1")
        assert cstore.add_evidence(c, contact.id, "inbound_dm", "t", "ev1", None, now="t")
        assert not cstore.add_evidence(c, contact.id, "inbound_dm", "t", "ev1", None, now="t")


def test_two_connections_write_without_lock_errors(new_store):
    a = new_store()
    b = open_store(a.location)
    with a.tx() as c:
        c.execute("INSERT INTO contacts (handle, created_at, updated_at) VALUES ('a', 't', 't')")
    with b.tx() as c:
        c.execute("INSERT INTO contacts (handle, created_at, updated_at) VALUES ('b', 't', 't')")
    assert a.execute("SELECT count(*) FROM contacts").fetchone()[0] == 2
    b.close()


@pytest.mark.sqlite_only(reason="the backup is a SQLite file (PostgreSQL: test_pg.py)")
def test_db_commands(cli, tmp_path: Path):
    assert cli("contacts", "add", "alice").exit_code == 0
    assert cli("db", "check", "--json").json()["ok"] is True
    dest = tmp_path / "backup.db"
    assert cli("db", "backup", str(dest)).exit_code == 0
    copy = sqlite3.connect(dest)
    assert copy.execute("SELECT handle FROM contacts").fetchall() == [("alice",)]
    assert cli("db", "backup", str(dest)).exit_code == 1  # never overwrite
    assert cli("db", "path").stdout.strip().endswith("dmtool.db")


def test_a_store_from_a_newer_dmtool_is_refused(new_store, store_engine):
    from dmtool.errors import ConfigError

    store = new_store()
    with store.tx() as c:
        c.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}" if store_engine == "sqlite" else
                  f"UPDATE dmtool_schema SET version = {len(MIGRATIONS) + 5}")
    with pytest.raises(ConfigError, match="newer dmtool"):
        open_store(store.location)


def test_db_check_reports_a_missing_table(cli, db):
    assert cli("contacts", "add", "alice").exit_code == 0
    db("DROP TABLE templates")
    r = cli("db", "check", "--json")
    assert r.exit_code == 1
    assert "missing table: templates" in r.json()["problems"]
    r = cli("templates", "list", "--json")  # the damage, not an internal error
    assert r.exit_code == 4 and "E_STORE_DAMAGED" in r.stderr and "no table templates" in r.stderr


def test_upgrade_copies_suppressions_onto_the_contact_rows(cli, store_engine, monkeypatch):
    """Before schema 4 the gate also looked blocks up in suppressions; from 4 on
    it reads only the contact row, so the upgrade copies them over and nobody
    blocked or opted out before it can be messaged after it."""
    from dmtool.paths import Paths
    from tests.conftest import schema_url

    def when(day: int) -> str:
        return f"2026-01-{day + 1:02d}T00:00:00.000Z"

    path = Paths.resolve("default").db_file
    if store_engine == "pg":  # the test's database already holds the current schema: start anew
        path = schema_url("pre4")
        monkeypatch.setenv("DMTOOL_DATABASE_URL", path)
    old = open_store(path, migrate_to=3)  # the schema before the backfill
    with old.tx() as c:
        for uid, handle, blocked_at in (("1", "ann", None), ("2", "bea", None), (None, "cat", None),
                                        ("3", "dan", None), ("5", "eve", None), ("6", "fay", when(1)),
                                        ("7", "gus", None)):
            c.execute("INSERT INTO contacts (user_id, handle, created_at, updated_at, blocked_at) "
                      "VALUES (?, ?, ?, ?, ?)", (uid, handle, when(0), when(0), blocked_at))
        for uid, handle, kind, at, detail in (
                ("1", "ann_before", "blocked", when(2), None),  # by id, under an old handle
                (None, "BEA", "blocked", when(3), None),        # by handle, id unknown then
                ("9", "cat", "blocked", when(4), None),         # by id; cat is known by handle only
                ("4", "dan", "blocked", when(5), None),         # another person who had dan's handle
                ("5", "eve", "opted_out", when(6), "stop"),
                ("6", "fay", "blocked", when(7), None)):        # the row's own block wins
            c.execute("INSERT INTO suppressions (user_id, handle, kind, at, detail) "
                      "VALUES (?, ?, ?, ?, ?)", (uid, handle, kind, at, detail))
    old.close()

    new = open_store(path)
    assert new.schema_version() == len(MIGRATIONS)
    rows = {r[0]: tuple(r[1:]) for r in new.execute(
        "SELECT handle, blocked_at, opted_out_at, opt_out_words FROM contacts")}
    new.close()
    assert rows == {"ann": (when(2), None, None), "bea": (when(3), None, None),
                    "cat": (when(4), None, None), "dan": (None, None, None),
                    "eve": (None, when(6), "stop"), "fay": (when(1), None, None),
                    "gus": (None, None, None)}
    listed = cli("contacts", "list", "--status", "blocked", "--json").json()
    assert [c["handle"] for c in listed] == ["ann", "bea", "cat", "fay"]
    for handle in ("ann", "bea", "cat"):
        r = cli("check", handle, "--json")
        assert r.exit_code == 3 and "E_BLOCKED" in {x["code"] for x in r.json()["reasons"]}
    r = cli("check", "eve", "--json")
    assert r.exit_code == 3 and "E_OPTED_OUT" in {x["code"] for x in r.json()["reasons"]}


def test_the_store_id_migration_gives_an_upgraded_store_its_own_id(new_store):
    """Migration STORE_ID_MIGRATION (`db migrate-to` tells a copy of this store from
    someone else's by it): a store from before gets a UUID, keeps its other
    state, and two stores never share one."""
    import uuid

    from dmtool.store.migrations import STORE_ID_MIGRATION

    olds = [new_store(migrate_to=STORE_ID_MIGRATION - 1) for _ in range(2)]
    for old in olds:
        with old.tx():
            old.set_state("me_id", "1500")
        assert old.get_state("store_id") is None
        old.close()
    ids = []
    for old in olds:
        new = open_store(old.location)
        assert new.schema_version() == len(MIGRATIONS) >= STORE_ID_MIGRATION
        assert new.get_state("me_id") == "1500"
        ids.append(new.get_state("store_id"))
        assert uuid.UUID(ids[-1]).version == 4
        new.close()
    assert ids[0] != ids[1]
