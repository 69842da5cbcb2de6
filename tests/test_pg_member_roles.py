"""docs/team.md's PostgreSQL set-ups, run as written on the test server: "Create
the role and the database" (dmtool owns the schema `brand`), then "The
stronger set-up: one PostgreSQL role per member" (a role per member, with
`team.trust_db_user`). The SQL is read from the docs, so the test breaks
when they drift.

What it shows: the store is created (and later upgraded) by the owning role;
a member's newer dmtool cannot upgrade it and says so; once upgraded, a
member connects as their own role, is who the server says whatever
DMTOOL_OPERATOR says, drafts, and uses the tables the upgrade added; a
member is no superuser and can neither drop tables nor change the audit log.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from dmtool.store import open_store
from dmtool.store.migrations import LEDGER_MIGRATION, MIGRATIONS
from tests import pgserver
from tests.conftest import REPO, Result
from tests.xworld import Cli

pytestmark = pytest.mark.pg_only

DOCS = REPO / "docs" / "team.md"
ROLES = ("ana", "ben", "brand_team", "dmtool")


def sql_block(heading: str) -> str:
    """The first ```sql block after a heading of docs/team.md."""
    text = DOCS.read_text(encoding="utf-8")
    m = re.search(rf"^#+ {re.escape(heading)}\n(.*?)```sql\n(.*?)```", text, re.S | re.M)
    assert m, f"docs/team.md has no SQL under {heading!r}"
    return m.group(2)


def statements(sql: str) -> list[tuple[str | None, str]]:
    """(database to connect to, statement) in order: psql's `\\c DB` switches
    database; comments go; each statement runs on its own (CREATE DATABASE
    may not run in a transaction)."""
    out: list[tuple[str | None, str]] = []
    database: str | None = None
    parts = re.split(r"^\\c\s+(\w+)\s*$", sql, flags=re.M)  # text, database, text, ...
    for i, part in enumerate(parts):
        if i % 2:
            database = part
            continue
        chunk = re.sub(r"--[^\n]*", "", part)
        out.extend((database, s.strip()) for s in chunk.split(";") if s.strip())
    return out


def run_as_admin(sql: str) -> None:
    srv = pgserver.server()
    conns: dict[str, Any] = {}
    try:
        for database, stmt in statements(sql):
            name = database or "postgres"
            if name not in conns:
                conns[name] = srv.connect(name)
            conns[name].cursor().execute(stmt)
    finally:
        for c in conns.values():
            c.close()


def passwords(*blocks: str) -> dict[str, str]:
    return {m[0]: m[1] for b in blocks
            for m in re.findall(r"CREATE ROLE (\w+) LOGIN PASSWORD '([^']*)'", b)}


@pytest.fixture
def docs_server(pg_url: str) -> Iterator[dict[str, str]]:
    """The docs' database `dmtool` and its roles on the session's server,
    dropped afterwards (roles are the whole server's)."""
    setup, members = (sql_block("2. Create the role and the database"),
                      sql_block("The stronger set-up: one PostgreSQL role per member"))
    srv = pgserver.server()
    yield {"setup": setup, "members": members, **passwords(setup, members)}
    admin = srv.connect()
    cur = admin.cursor()
    cur.execute("DROP DATABASE IF EXISTS dmtool WITH (FORCE)")
    for role in ROLES:
        cur.execute(f"DROP ROLE IF EXISTS {role}")
    admin.close()


def url(role: str, password: str) -> str:
    sock = pgserver.server().sock
    return f"postgresql://{role}:{password}@/dmtool?host={sock}"


def connect(role: str, password: str) -> Any:
    import psycopg2

    conn = psycopg2.connect(host=str(pgserver.server().sock), user=role, password=password,
                            dbname="dmtool")
    conn.autocommit = True
    return conn


def err(r: Result) -> dict[str, Any]:
    return json.loads(r.stderr.strip().splitlines()[-1])["error"]  # type: ignore[no-any-return]


def test_the_docs_statements_are_split_as_psql_would() -> None:
    assert statements("CREATE ROLE a; -- x; y\nCREATE DATABASE d;\n\\c d\nCREATE SCHEMA s;\n") == [
        (None, "CREATE ROLE a"), (None, "CREATE DATABASE d"), ("d", "CREATE SCHEMA s")]


def test_one_role_per_member_as_the_docs_set_it_up(cli: Cli, docs_server: dict[str, str],
                                                   tmp_path: Any) -> None:
    import psycopg2

    run_as_admin(docs_server["setup"])
    owner = url("dmtool", docs_server["dmtool"])
    # dmtool, as the schema's owner, creates the store: here one version before
    # the request ledger, so that an upgrade adds tables after the grants
    store = open_store(owner, migrate_to=LEDGER_MIGRATION - 1)
    assert store.schema == "brand" and store.db_user() == "dmtool"
    store.close()
    run_as_admin(docs_server["members"])
    ana = {"DMTOOL_DATABASE_URL": url("ana", docs_server["ana"]), "DMTOOL_OPERATOR": "ana"}
    # Ben says he is Ana: with team.trust_db_user the server's word wins
    ben = {"DMTOOL_DATABASE_URL": url("ben", docs_server["ben"]), "DMTOOL_OPERATOR": "ana",
           "DMTOOL_HOME": str(tmp_path / "ben-home")}

    # A member's newer dmtool cannot upgrade a store it does not own: exit 4, nothing changed
    r = cli("team", "list", "--json", env=ben)
    assert (r.exit_code, err(r)["code"]) == (4, "E_STORE_PRIVILEGE"), r
    # the owning role upgrades it (docs: `dmtool db check` as dmtool)
    r = cli("db", "check", "--json", env={"DMTOOL_DATABASE_URL": owner})
    assert r.exit_code == 0 and r.json() == {"ok": True, "problems": [],
                                             "schema_version": len(MIGRATIONS)}, r

    # Ana starts the team as her own role and trusts the database user
    assert cli("team", "add", "ben", "--role", "drafter", env=ana).exit_code == 0
    r = cli("config", "set", "team.trust_db_user", "true", env=ana)
    assert r.exit_code == 0, r
    assert cli("contacts", "add", "alice", "--name", "Alice A", env=ana).exit_code == 0
    assert cli("contacts", "engage", "alice", "--evidence", "asked at the booth",
               env=ana).exit_code == 0

    me = cli("team", "whoami", "--json", env=ben).json()
    assert (me["operator"], me["role"]) == ("ben", "drafter")
    assert cli("config", "set", "identity.names", "Ben", env=ben).exit_code == 0  # his machine's
    r = cli("draft", "alice", "Hi Alice, it's Ben from the booth: the slides.", "--json", env=ben)
    assert r.exit_code == 0, r
    did = str(r.json()["id"])
    assert cli("drafts", "show", did, "--json", env=ana).json()["author"] == "ben"
    r = cli("review", did, "--approve", "--json", env=ben)
    assert (r.exit_code, err(r)["code"]) == (3, "E_ROLE"), r  # a drafter, whatever he says
    assert cli("log", "--json", env=ana).json()[0]["actor"] == "ben"
    # the upgrade's tables (the request ledger) are the members' too
    r = cli("usage", "--json", env=ben)
    assert r.exit_code == 0, r

    # what the server lets Ben do without dmtool
    conn = connect("ben", docs_server["ben"])
    cur = conn.cursor()
    cur.execute("SELECT rolsuper, current_setting('search_path') FROM pg_roles "
                "WHERE rolname = current_user")
    assert cur.fetchone() == (False, "brand")
    for stmt in ("DROP TABLE drafts", "UPDATE audit SET action = 'x'", "DELETE FROM audit",
                 "CREATE TABLE mine (x integer)", "ALTER TABLE drafts ADD COLUMN y integer"):
        with pytest.raises(psycopg2.Error) as caught:
            cur.execute(stmt)
        assert caught.value.pgcode == "42501", (stmt, caught.value)  # insufficient privilege
    cur.execute("SELECT count(*) FROM audit")
    assert cur.fetchone()[0] > 0

    # a table the owner adds later (as a future upgrade would): Ben may use it
    owner_conn = connect("dmtool", docs_server["dmtool"])
    owner_conn.cursor().execute(
        "CREATE TABLE later (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, note text)")
    owner_conn.close()
    cur.execute("INSERT INTO later (note) VALUES ('hello') RETURNING id")
    assert cur.fetchone() == (1,)
    cur.execute("UPDATE later SET note = 'hi'")
    cur.execute("SELECT note FROM later")
    assert cur.fetchall() == [("hi",)]
    conn.close()
