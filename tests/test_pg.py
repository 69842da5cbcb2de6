"""What only the PostgreSQL store has: URLs, connection errors, masked
passwords, advisory locks, db check/backup there, brands in schemas, and
`db migrate-to` in both directions. (Everything else runs on both engines
through the store_engine fixture.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dmtool.store import open_store
from dmtool.store.url import mask, parse
from tests import pgserver
from tests.conftest import profile_store, schema_url

pytestmark = pytest.mark.pg_only

SECRET = "s3cr3t-pw-Zq9"


def err(r: Any) -> dict[str, Any]:
    return dict(json.loads(r.stderr.strip().splitlines()[-1])["error"])


# --- URLs and what is printed ------------------------------------------------------------


def test_mask_hides_passwords_in_urls_and_parameters() -> None:
    assert mask(f"postgresql://bob:{SECRET}@db.example:5432/dm?sslmode=verify-full") == \
        "postgresql://bob:***@db.example:5432/dm?sslmode=verify-full"
    assert SECRET not in mask(f"error: postgres://x:{SECRET}@h/d and password={SECRET}&a=1")
    assert parse("sqlite:////tmp/x.db").path == Path("/tmp/x.db")
    assert parse("/tmp/y.db").engine == "sqlite"
    assert parse("postgresql:///dm?host=/run/postgresql").is_postgres


def test_a_password_is_never_printed(cli, run, pg_url, monkeypatch) -> None:
    role_url = _role("carol", SECRET)
    monkeypatch.setenv("DMTOOL_DATABASE_URL", role_url)
    assert cli("contacts", "add", "alice").exit_code == 0
    outputs = [cli("db", "path"), cli("db", "path", "--json"), cli("paths"), cli("paths", "--json"),
               run("-v", "contacts", "list")]  # (-v sets up logging: in its own process)
    monkeypatch.delenv("DMTOOL_DATABASE_URL")
    cli("config", "set", "store.url", role_url)
    outputs += [cli("config", "show"), cli("config", "show", "--json"),
                cli("config", "get", "store.url")]
    monkeypatch.setenv("DMTOOL_DATABASE_URL", role_url.replace(SECRET, SECRET + "x"))
    outputs.append(cli("contacts", "list", "--json"))  # a refused password: the error names the URL
    for r in outputs:
        assert SECRET not in r.stdout + r.stderr, r
    assert "carol:***@" in outputs[0].stdout
    assert outputs[-1].exit_code == 4 and err(outputs[-1])["code"] == "E_STORE_AUTH"


def test_sandbox_profiles_ignore_the_team_url(cli, pg_url, monkeypatch, db) -> None:
    """A team's URL in the environment or in config.toml never receives a fake X's data."""
    monkeypatch.delenv("DMTOOL_SANDBOX_DATABASE_URL")
    assert cli("config", "set", "store.url", pg_url).exit_code == 0
    assert cli("config", "set", "backend", "sandbox").exit_code == 0
    assert cli("contacts", "add", "sandy").exit_code == 0
    assert db("SELECT count(*) FROM contacts") == [(0,)]
    assert cli("db", "path").stdout.strip().endswith("dmtool.db")
    assert not cli("demo").exit_code  # demo: its own SQLite store, whatever the environment says
    assert db("SELECT count(*) FROM contacts") == [(0,)]


# --- connecting -------------------------------------------------------------------------------


def _role(name: str, password: str) -> str:
    admin = pgserver.server().connect(os.environ["DMTOOL_DATABASE_URL"].split("/")[3].split("?")[0])
    cur = admin.cursor()
    cur.execute(f"CREATE ROLE {name} LOGIN PASSWORD %s", (password,))
    cur.execute(f"GRANT ALL ON SCHEMA public TO {name}; GRANT ALL ON ALL TABLES IN SCHEMA public "
                f"TO {name}; GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {name}")
    admin.close()
    url = os.environ["DMTOOL_DATABASE_URL"]
    return url.replace("postgresql://postgres@", f"postgresql://{name}:{password}@")


def test_connection_failures_are_one_line_each(cli, pg_url, monkeypatch) -> None:
    cases = {
        "unreachable": (pg_url.replace("host=", "host=/nonexistent"), 5, "E_STORE_UNAVAILABLE"),
        "no database": (pg_url.replace("/t", "/nosuchdb_t", 1), 4, "E_STORE_MISSING"),
        "bad password": (_role("dora", "right-pw").replace("right-pw", "wrong-pw"), 4,
                         "E_STORE_AUTH"),
        "bad URL": (pg_url + "&sslmode=sometimes", 4, "E_STORE_URL"),
        "pooler": ("postgresql://u@ep-cool-1-pooler.us-east-2.aws.neon.tech/db", 4,
                   "E_STORE_POOLER"),
        "supabase's dedicated pooler": ("postgresql://u@db.abcdefgh.supabase.co:6543/postgres",
                                        4, "E_STORE_POOLER"),
    }
    for what, (url, code, ecode) in cases.items():
        monkeypatch.setenv("DMTOOL_DATABASE_URL", url)
        r = cli("contacts", "list", "--json")
        assert (r.exit_code, err(r)["code"]) == (code, ecode), (what, r)
        plain = cli("contacts", "list")
        assert plain.stderr.startswith("error: ") and "Traceback" not in plain.stderr, (what, plain)


@pytest.mark.parametrize(("host", "port", "pooled"), [
    ("ep-cool-1-pooler.us-east-2.aws.neon.tech", "", True),
    ("ep-cool-1.us-east-2.aws.neon.tech", "", False),            # Neon's direct host
    ("aws-0-eu-west-1.pooler.supabase.com", "6543", True),      # shared pooler, transaction
    ("aws-0-eu-west-1.pooler.supabase.com", "5432", False),     # shared pooler, session mode
    ("db.abcdefgh.supabase.co", "6543", True),                  # dedicated pooler
    ("db.abcdefgh.supabase.co", "5432", False),                 # direct
    ("DB.ABCDEFGH.SUPABASE.CO", "6543", True),
    ("pg.internal.example.com", "6432", False),                 # a pgbouncer: cannot be told
    ("/tmp/dmpg123", "", False),
])
def test_transaction_poolers_are_recognised_by_host_and_port(host, port, pooled) -> None:
    from dmtool.store.pg import is_transaction_pooler

    assert is_transaction_pooler(host, port) is pooled


def test_a_pooler_named_by_pghost_and_pgport_is_refused(cli, pg_url, monkeypatch) -> None:
    monkeypatch.setenv("PGHOST", "db.abcdefgh.supabase.co")
    monkeypatch.setenv("PGPORT", "6543")
    monkeypatch.setenv("DMTOOL_DATABASE_URL", "postgresql:///postgres")
    r = cli("contacts", "list", "--json")
    assert (r.exit_code, err(r)["code"]) == (4, "E_STORE_POOLER"), r


def test_without_the_driver_exit_4_says_how_to_install(cli, pg_url, monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "psycopg2" or m.startswith("psycopg2.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "psycopg2", None)  # import psycopg2 -> ImportError
    r = cli("contacts", "list")
    assert r.exit_code == 4
    assert "pip install 'dmtool[postgres]'" in r.stderr


def test_libpq_environment_variables_work(cli, pg_url, monkeypatch) -> None:
    host = pg_url.split("host=")[1].split("&")[0]
    dbname = pg_url.split("/")[3].split("?")[0]
    monkeypatch.setenv("PGHOST", host)
    monkeypatch.setenv("PGUSER", "postgres")
    monkeypatch.setenv("DMTOOL_DATABASE_URL", f"postgresql:///{dbname}")
    assert cli("contacts", "add", "alice").exit_code == 0
    monkeypatch.setenv("DMTOOL_DATABASE_URL", pg_url)
    assert [c["handle"] for c in cli("contacts", "list", "--json").json()] == ["alice"]


def test_the_password_may_come_from_pgpass(cli, pg_url, monkeypatch, tmp_path) -> None:
    url = _role("erin", SECRET).replace(f":{SECRET}@", "@")
    monkeypatch.setenv("DMTOOL_DATABASE_URL", url)
    r = cli("contacts", "list", "--json")
    assert r.exit_code == 4 and err(r)["code"] == "E_STORE_AUTH", r  # no password: refused
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"*:*:*:erin:{SECRET}\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    r = cli("contacts", "list", "--json")
    assert r.exit_code == 0 and r.json() == [], r


# --- locks --------------------------------------------------------------------------------------


def test_advisory_locks_are_per_connection_and_freed_with_it(pg_url) -> None:
    from dmtool.locks import LockTimeout

    a, b = open_store(pg_url), open_store(pg_url)
    with a.lock("send"):
        assert a.lock_held("send") and not b.lock_held("send")
        with pytest.raises(LockTimeout), b.lock("send", timeout=0.1):
            pass
        with b.lock("sync", timeout=0):  # another lock of the same store: free
            pass
        a.conn.execute("SELECT pg_advisory_unlock_all()")  # as if a pooler moved us elsewhere
        assert not a.lock_held("send")
    c = open_store(pg_url)
    with c.lock("send", timeout=1):
        c.pg.raw.close()  # the connection dies: the server frees the lock
        with b.lock("send", timeout=5):
            pass
    for s in (a, b):
        s.close()


def lose_the_send_lock(monkeypatch: pytest.MonkeyPatch, when: Callable[[], bool]) -> None:
    """From now on, each time a send asks whether it still holds its lock and
    `when()` says so, its connection has just lost it (as through a pooler)."""
    from dmtool.store.pg import PgStore

    real = PgStore.lock_held

    def lost(self: PgStore, name: str) -> bool:
        if name == "send" and when():
            self.conn.execute("SELECT pg_advisory_unlock_all()")
        return real(self, name)

    monkeypatch.setattr(PgStore, "lock_held", lost)


def test_a_lost_send_lock_records_unknown_and_the_next_send_reconciles(cli, run, monkeypatch):
    from tests.test_send import approved_draft, draft, outbound, sandbox_world, talking_contact

    world = sandbox_world()
    uid = talking_contact(world, "alice", "Alice Smith")
    did = approved_draft(cli, "alice", "Thanks Alice, the dates follow.")
    with monkeypatch.context() as m:
        lose_the_send_lock(m, when=lambda: bool(outbound(world, uid)))  # after the POST
        r = cli("send", did, "--yes", "--json")
    assert r.exit_code == 5 and err(r)["code"] == "E_SEND_UNKNOWN", r
    assert draft(cli, did)["status"] == "unknown"
    r = run("send", did, "--yes", "--json")
    assert r.exit_code == 0 and r.json()["reconciled"] is True, r
    assert len(outbound(world, uid)) == 1


def test_a_lost_send_lock_while_reconciling_leaves_unknown_not_failed(cli, run, db, monkeypatch):
    from dmtool.timeutil import fmt
    from tests.test_send import approved_draft, draft, outbound, sandbox_world, talking_contact

    world = sandbox_world()
    uid = talking_contact(world, "alice", "Alice Smith")
    did = approved_draft(cli, "alice", "Thanks Alice, the dates follow.")
    # a send that died before its request left: `sending`, and nothing on X
    db("UPDATE drafts SET status = 'sending', send_started_at = ? WHERE id = ?",
       (fmt(world.now()), int(did)))
    with monkeypatch.context() as m:
        lose_the_send_lock(m, when=lambda: True)  # while reconciling
        r = cli("send", did, "--yes", "--json")
    # another process may be reconciling it now: no verdict without the lock
    assert r.exit_code == 5 and err(r)["code"] == "E_SEND_UNKNOWN", r
    assert draft(cli, did)["status"] == "unknown"
    assert "send_failed" not in [e["action"] for e in cli("log", "--json").json()]
    r = run("send", did, "--yes", "--json")  # the next send, holding the lock, settles it
    assert r.exit_code == 1 and err(r)["code"] == "E_NOT_DELIVERED", r
    assert draft(cli, did)["status"] == "failed"
    assert outbound(world, uid) == []


def test_two_brands_in_two_schemas_of_one_database(pg_url) -> None:
    a = open_store(schema_url("brand_a"))
    b = open_store(schema_url("brand_b"))
    from dmtool.store import contacts as cstore

    with a.tx() as c:
        cstore.create(c, "alice", now="t")
    assert b.execute("SELECT count(*) FROM contacts").fetchone()[0] == 0
    assert a.get_state("store_id") != b.get_state("store_id")
    with a.lock("send"), b.lock("send", timeout=0):  # one brand's send does not hold the other's
        pass
    a.close()
    b.close()


# --- db check and db backup ---------------------------------------------------------------------


def test_db_check_on_postgresql(cli, db) -> None:
    assert cli("contacts", "add", "alice").exit_code == 0
    r = cli("db", "check", "--json")
    assert r.exit_code == 0 and r.json() == {"ok": True, "problems": [], "schema_version":
                                             r.json()["schema_version"]}
    db("ALTER TABLE messages DISABLE TRIGGER messages_latest_insert")
    db("DROP INDEX conversations_waiting")
    db("DROP INDEX conversations_snoozed")  # migration 10's
    db("DROP TABLE hook_queue")  # migration 7's
    db("ALTER TABLE drafts ADD CONSTRAINT text_short CHECK (length(text) < 1000) NOT VALID")
    r = cli("db", "check", "--json")
    assert r.exit_code == 1
    assert r.json()["problems"] == ["missing index: conversations_snoozed",
                                    "missing index: conversations_waiting",
                                    "missing table: hook_queue",
                                    "constraint not validated: text_short on drafts",
                                    "trigger disabled: messages_latest_insert"]


def test_db_check_on_postgresql_knows_the_team_ledger_and_report_migrations(cli, db) -> None:
    """The objects of the migrations after 10 (claims, team members, the
    request ledger, the report's covering indexes) are checked too, and the
    indexes migration 14 dropped are not asked for."""
    assert cli("contacts", "add", "alice").exit_code == 0
    assert cli("db", "check", "--json").json()["problems"] == []
    assert not db("SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND "
                  "indexname IN ('messages_at', 'messages_contact_at')")
    db("DROP INDEX claims_operator")
    db("DROP TABLE team_settings")
    db("DROP TABLE x_read_ids")
    db("DROP INDEX messages_at_kind")
    r = cli("db", "check", "--json")
    assert r.exit_code == 1
    assert r.json()["problems"] == ["missing index: claims_operator",
                                    "missing index: messages_at_kind",
                                    "missing index: x_read_ids_request",  # went with its table
                                    "missing table: team_settings",
                                    "missing table: x_read_ids"]


def test_db_backup_runs_pg_dump_or_says_how(cli, tmp_path, monkeypatch) -> None:
    assert cli("contacts", "add", "alice").exit_code == 0
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    r = cli("db", "backup", str(tmp_path / "b.dump"))
    assert r.exit_code == 4 and "pg_dump" in r.stderr and "install" in r.stderr
    monkeypatch.setenv("PATH", f"{pgserver.server().bindir}{os.pathsep}/usr/bin:/bin")
    r = cli("db", "backup", str(tmp_path / "b.dump"))
    assert r.exit_code == 0, r
    assert (tmp_path / "b.dump").read_bytes().startswith(b"PGDMP")  # pg_dump's custom format
    script = subprocess.run([str(pgserver.server().bindir / "pg_restore"), "--file=-",
                             str(tmp_path / "b.dump")], capture_output=True, text=True, check=True)
    assert "alice" in script.stdout and "CREATE TABLE" in script.stdout
    assert (tmp_path / "b.dump").stat().st_mode & 0o077 == 0


# --- db migrate-to -------------------------------------------------------------------------------


def _sqlite_profile(cli, monkeypatch) -> str:
    """The default profile on its SQLite file, with a little of everything."""
    url = os.environ["DMTOOL_DATABASE_URL"]
    monkeypatch.delenv("DMTOOL_DATABASE_URL")
    monkeypatch.delenv("DMTOOL_SANDBOX_DATABASE_URL")
    from tests.test_send import approved_draft, sandbox_world, talking_contact

    world = sandbox_world()
    talking_contact(world, "alice", "Alice Smith")
    cli("contacts", "add", "bob", "--tag", "fair")
    cli("contacts", "note", "bob", "met at the fair")
    cli("templates", "add", "hello", "Hi {name}!")
    did = approved_draft(cli, "alice", "Thanks Alice, the schedule follows.")
    assert cli("send", did, "--yes").exit_code == 0
    return url


def test_migrate_to_postgresql_and_back(cli, monkeypatch, tmp_path) -> None:
    url = _sqlite_profile(cli, monkeypatch)
    before = {name: cli(*args, "--json").json() for name, args in
              (("contacts", ("contacts", "list")), ("inbox", ("inbox",)), ("log", ("log",)),
               ("drafts", ("drafts", "list")))}
    r = cli("db", "migrate-to", url, "--json")
    assert r.exit_code == 0, r
    data = r.json()
    assert not data["already_migrated"] and data["next"].startswith("dmtool config set store.url")
    rows = {t["table"]: t["rows"] for t in data["tables"]}
    assert rows["contacts"] == 2 and rows["messages"] >= 2 and rows["sends"] == 1

    again = cli("db", "migrate-to", url, "--json")
    assert again.exit_code == 0 and again.json()["already_migrated"] is True, again

    monkeypatch.setenv("DMTOOL_SANDBOX_DATABASE_URL", url)  # now on the copy
    after = {name: cli(*args, "--json").json() for name, args in
             (("contacts", ("contacts", "list")), ("inbox", ("inbox",)), ("log", ("log",)),
              ("drafts", ("drafts", "list")))}
    assert after == before
    assert cli("contacts", "add", "carol").exit_code == 0  # ids go on after the copied ones

    back = tmp_path / "back.db"
    r = cli("db", "migrate-to", str(back), "--json")
    assert r.exit_code == 0, r
    monkeypatch.delenv("DMTOOL_SANDBOX_DATABASE_URL")
    mine = open_store(back)
    assert sorted(r[0] for r in mine.execute("SELECT handle FROM contacts")) == \
        ["alice", "bob", "carol"]
    mine.close()


def dump(store: Any) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table the copy moves, in key order, by column name."""
    from dmtool.store import copy

    out = {}
    for t in copy.tables(store):
        keys = copy.key_columns(store, t) or copy.columns(store, t)
        rows = store.execute(f"SELECT * FROM {t} ORDER BY {', '.join(keys)}").fetchall()
        out[t] = [dict(zip(r.keys(), tuple(r), strict=True)) for r in rows]
    return out


def test_migrate_to_copies_every_table_row_for_row_both_ways(cli, monkeypatch, tmp_path) -> None:
    """What migrations 7-11 added travels too: audit actors, the hook queue, opt-out
    reasons, snoozes, archive imports with their participants, the store's id."""
    from dmtool.store import hooks, imports
    from dmtool.store import search as sstore

    url = _sqlite_profile(cli, monkeypatch)
    assert cli("contacts", "optout", "bob", "--reason", "asked by phone", "--yes").exit_code == 0
    assert cli("snooze", "alice", "3d").exit_code == 0
    store = profile_store()
    with store.tx() as c:
        imports.start(c, fingerprint="f1", archive="/tmp/x.zip", account="me",
                      now="2026-11-01T00:00:00.000Z", participants=["111", "222"])
        event = c.execute("SELECT event_id FROM messages WHERE direction = 'in' "
                          "AND event_id IS NOT NULL LIMIT 1").fetchone()[0]
        hooks.queue(c, event, "on_inbound", now="2026-11-01T00:00:00.000Z")
    source = dump(store)
    store.close()
    assert source["archive_imports"] and len(source["import_participants"]) == 2
    assert source["hook_queue"]
    assert any(r["key"] == "store_id" for r in source["sync_state"])
    assert any(r["actor"] for r in source["audit"])
    assert any(r["snoozed_until"] for r in source["conversations"])
    assert any(r["opt_out_reason"] for r in source["contacts"])

    r = cli("db", "migrate-to", url, "--json")
    assert r.exit_code == 0, r
    target = open_store(url)
    assert dump(target) == source
    target.close()

    monkeypatch.setenv("DMTOOL_SANDBOX_DATABASE_URL", url)  # now on the copy, and back
    back = tmp_path / "back.db"
    r = cli("db", "migrate-to", str(back), "--json")
    assert r.exit_code == 0, r
    mine = open_store(back)
    assert dump(mine) == source
    assert mine.problems() == []  # the search index was filled by its triggers as rows came
    assert [h.text for h in sstore.notes(mine.conn, sstore.Query(("fair",)))] == ["met at the fair"]
    mine.close()


def test_migrate_to_refuses_someone_elses_store(cli, monkeypatch) -> None:
    url = _sqlite_profile(cli, monkeypatch)
    other = open_store(url)
    with other.tx() as c:
        c.execute("INSERT INTO contacts (handle, created_at, updated_at) VALUES ('zed', 't', 't')")
    other.close()
    r = cli("db", "migrate-to", url, "--json")
    assert r.exit_code == 1 and err(r)["code"] == "E_TARGET_NOT_EMPTY", r


def test_migrate_to_refuses_while_a_send_is_unsettled_or_running(cli, monkeypatch) -> None:
    from dmtool.services import move

    monkeypatch.setattr(move, "LOCK_WAIT_S", 0.2)
    url = _sqlite_profile(cli, monkeypatch)
    held = profile_store()
    with held.lock("send"):
        r = cli("db", "migrate-to", url, "--json")
    held.close()
    assert r.exit_code == 5 and err(r)["code"] == "E_BUSY", r
    store = profile_store()
    with store.tx() as c:
        c.execute("UPDATE drafts SET status = 'unknown'")
    store.close()
    r = cli("db", "migrate-to", url, "--json")
    assert r.exit_code == 1 and err(r)["code"] == "E_UNSETTLED", r


def test_pg_dump_is_found_for_the_backup_test() -> None:
    assert shutil.which("pg_dump", path=str(pgserver.server().bindir))


def test_two_operators_on_one_store_see_one_fake_x(cli, tmp_path, monkeypatch) -> None:
    """Two people (two homes) on one team store, with the sandbox world in a shared file."""
    from datetime import timedelta

    from dmtool.x.sandbox import SANDBOX_ME, SandboxWorld

    monkeypatch.setenv("DMTOOL_SANDBOX_FILE", str(tmp_path / "shared-world.json"))
    homes = [tmp_path / "ann", tmp_path / "ben"]

    def as_(home: Path, *args: str) -> Any:
        monkeypatch.setenv("DMTOOL_HOME", str(home))
        return cli(*args)

    for home in homes:
        assert as_(home, "config", "set", "backend", "sandbox").exit_code == 0
    world = SandboxWorld.create(tmp_path / "shared-world.json")
    world.set_me(*SANDBOX_ME)
    uid = world.add_user("alice", "Alice Smith")
    world.incoming_dm(uid, "Hi! Could you send me the dates?", at=world.now() - timedelta(hours=1))
    assert as_(homes[0], "sync").exit_code == 0
    assert [c["handle"] for c in as_(homes[1], "inbox", "--json").json()] == ["alice"]
    did = str(as_(homes[1], "draft", "alice", "Hi Alice, the dates are below. - Ben", "--json")
              .json()["id"])
    assert as_(homes[1], "review", did, "--approve").exit_code == 0
    assert as_(homes[0], "send", did, "--yes").exit_code == 0  # Ann sends what Ben approved
    assert [e["text"] for e in world.dms_with(uid)][-1] == "Hi Alice, the dates are below. - Ben"
    assert not any(any((h / "data").rglob("sandbox.json")) for h in homes)


def test_writers_take_the_stores_write_lock(pg_url) -> None:
    """tx() begins with a transaction-level advisory lock: two writers queue as
    on SQLite (BEGIN IMMEDIATE), so read-then-write steps cannot interleave."""
    from dmtool.errors import Busy

    a, b = open_store(pg_url), open_store(pg_url)
    b.conn.execute("SET lock_timeout = 200")
    with a.tx():
        with pytest.raises(Busy), b.tx():
            pass
        b.execute("SELECT count(*) FROM contacts")  # readers do not wait
    with b.tx():  # free once a committed
        pass
    a.close()
    b.close()


def test_a_nul_from_x_is_stored_as_a_replacement_character(cli, world, clock) -> None:
    """SQLite keeps a NUL in text; PostgreSQL text cannot hold one. A DM that
    carries one is stored with U+FFFD in its place: the sync goes through."""
    from tests.xworld import ALICE, sync

    world.incoming_dm(ALICE, "hello\x00there", at=clock.ago(minutes=5))
    sync(cli)
    texts = [m["text"] for m in cli("thread", "alice", "--json", "--peek").json()["messages"]]
    assert texts == ["hello\ufffdthere"]
