"""A PostgreSQL store's failures are the same dmtool errors as SQLite's
(store/pgfaults.py): decided by the SQLSTATE, one line, the same exit code,
and the store left as it was. tests/test_store_faults.py is SQLite's side."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from dmtool.errors import DiskFull, StoreBusy, StoreDamaged, StoreReadOnly, StoreUnavailable
from dmtool.store import open_store, pgfaults
from dmtool.store.url import parse
from tests import pgserver
from tests.conftest import pg_raw, profile_store

pytestmark = pytest.mark.pg_only


def err(r: Any) -> dict[str, Any]:
    return dict(json.loads(r.stderr.strip().splitlines()[-1])["error"])


def _dbname() -> str:
    return os.environ["DMTOOL_DATABASE_URL"].split("/")[3].split("?")[0]


def _server_error(code: str) -> Exception:
    """A real psycopg2 error carrying `code`, raised by the server, whose message
    says nothing about it (the decision must read the code)."""
    import psycopg2

    conn = pgserver.server().connect(_dbname())
    try:
        conn.cursor().execute("DO $$ BEGIN RAISE EXCEPTION 'something went wrong' "
                              f"USING ERRCODE = '{code}'; END $$")
    except psycopg2.Error as e:
        return e
    finally:
        conn.close()
    raise AssertionError("the server raised nothing")


@pytest.mark.parametrize(("code", "kind"), [
    ("53100", DiskFull), ("25006", StoreReadOnly), ("55P03", StoreBusy), ("40P01", StoreBusy),
    ("40001", StoreBusy), ("XX001", StoreDamaged), ("XX002", StoreDamaged),
    ("57P01", StoreUnavailable), ("53300", StoreUnavailable), ("08006", StoreUnavailable),
])
def test_errors_are_decided_by_their_sqlstate(code: str, kind: type, pg_url: str) -> None:
    got = pgfaults.translate(_server_error(code), parse(pg_url))
    assert type(got) is kind, (code, got)


def test_a_bug_stays_a_bug(pg_url: str) -> None:
    """A bad query or a broken constraint is not a store fault: the CLI reports it as internal."""
    for code in ("42601", "23505", "42703"):
        e = _server_error(code)
        assert pgfaults.translate(e, parse(pg_url)) is e


def test_a_full_disk_on_the_server_is_disk_full_and_writes_nothing(cli, db) -> None:
    assert cli("contacts", "add", "alice").exit_code == 0
    pg_raw("CREATE FUNCTION full_disk() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
           "RAISE EXCEPTION 'could not extend file' USING ERRCODE = 'disk_full'; END $$; "
           "CREATE TRIGGER full_disk BEFORE INSERT ON notes FOR EACH ROW "
           "EXECUTE FUNCTION full_disk()")
    r = cli("contacts", "note", "alice", "met at the fair")
    assert r.exit_code == 4, r
    assert r.stderr.startswith("error: disk full: the PostgreSQL server") and "Traceback" not in r.stderr
    assert db("SELECT count(*) FROM notes") == [(0,)]
    assert db("SELECT count(*) FROM audit WHERE action = 'note_added'") == [(0,)]


def test_a_read_only_server_refuses_writes_and_still_reads(cli) -> None:
    assert cli("contacts", "add", "alice").exit_code == 0
    pg_raw(f"ALTER DATABASE {_dbname()} SET default_transaction_read_only = on")
    try:
        r = cli("contacts", "add", "bob", "--json")
        assert r.exit_code == 4 and err(r)["code"] == "E_READ_ONLY", r
        assert "primary" in err(r)["hint"]
        r = cli("contacts", "list", "--json")
        assert r.exit_code == 0 and [c["handle"] for c in r.json()] == ["alice"]
    finally:
        admin = pgserver.server().connect()  # from another database: this one is read-only now
        admin.cursor().execute(f"ALTER DATABASE {_dbname()} SET default_transaction_read_only = off")
        admin.close()


def test_a_writer_held_up_too_long_is_busy_exit_5(cli, monkeypatch) -> None:
    """Another connection holds the store's write lock past lock_timeout."""
    from dmtool.store import pg

    assert cli("contacts", "add", "alice").exit_code == 0
    monkeypatch.setattr(pg, "LOCK_TIMEOUT_MS", 300)
    other = profile_store()
    with other.tx():  # holds the store-wide write lock (pg_advisory_xact_lock)
        r = cli("contacts", "add", "bob", "--json")
    other.close()
    assert r.exit_code == 5 and err(r)["code"] == "E_BUSY", r
    assert cli("contacts", "add", "bob").exit_code == 0  # and then it goes through


def test_a_lost_connection_is_unavailable_exit_5(pg_url: str) -> None:
    store = open_store(pg_url)
    pid = store.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    admin = pgserver.server().connect(_dbname())
    admin.cursor().execute("SELECT pg_terminate_backend(%s)", (pid,))
    admin.close()
    with pytest.raises(StoreUnavailable) as caught:
        store.conn.execute("SELECT count(*) FROM contacts").fetchone()
    assert caught.value.exit_code == 5
    store.close()


def test_a_missing_table_is_damage(cli) -> None:
    assert cli("contacts", "add", "alice").exit_code == 0
    pg_raw("DROP TABLE notes")
    r = cli("contacts", "note", "alice", "hello")
    assert r.exit_code == 4, r
    assert "damaged: it has no table notes" in r.stderr
    r = cli("db", "check", "--json")
    assert r.exit_code == 1 and "missing table: notes" in r.json()["problems"]


def test_restore_is_refused_with_the_way_to_do_it(cli, tmp_path) -> None:
    """db restore swaps SQLite files; a PostgreSQL store is restored with pg_restore."""
    assert cli("contacts", "add", "alice").exit_code == 0
    dump = tmp_path / "b.dump"
    dump.write_bytes(b"PGDMP")
    r = cli("db", "restore", str(dump), "--yes")
    assert r.exit_code == 4, r
    assert r.stderr.startswith("error: db restore replaces a SQLite store's file")
    assert "pg_restore --clean" in r.stderr and str(dump) in r.stderr
    assert [c["handle"] for c in cli("contacts", "list", "--json").json()] == ["alice"]


def test_a_deadlock_after_x_accepted_the_dm_is_not_a_plain_try_again(cli) -> None:
    """A deadlock (or a lock held too long) rolls back the transaction that records
    a sent DM: the DM is out. The error says so, and the next send reconciles
    from X and sends nothing new."""
    from tests.test_send import approved_draft, draft, outbound, sandbox_world, talking_contact

    world = sandbox_world()
    uid = talking_contact(world, "alice", "Alice Smith")
    did = approved_draft(cli, "alice", "Thanks Alice, the schedule follows.")
    pg_raw("CREATE FUNCTION deadlock() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
           "IF NEW.status = 'sent' THEN RAISE EXCEPTION 'deadlock detected' "
           "USING ERRCODE = 'deadlock_detected'; END IF; RETURN NEW; END $$; "
           "CREATE TRIGGER deadlock BEFORE UPDATE ON drafts FOR EACH ROW "
           "EXECUTE FUNCTION deadlock()")
    r = cli("send", did, "--yes", "--json")
    assert r.exit_code == 5 and err(r)["code"] == "E_SEND_UNKNOWN", r
    assert "X accepted the DM" in err(r)["message"] and f"dmtool send {did}" in err(r)["hint"]
    assert len(outbound(world, uid)) == 1 and draft(cli, did)["status"] == "sending"
    pg_raw("DROP TRIGGER deadlock ON drafts")
    r = cli("send", did, "--yes", "--json")
    assert r.exit_code == 0 and r.json()["reconciled"] is True, r
    assert len(outbound(world, uid)) == 1 and draft(cli, did)["status"] == "sent"
