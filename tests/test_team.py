"""A team on one store (issue 15): members, the last owner, team settings read
from the store, who made each record, notes with an author.

Several people on one SQLite store: two DMTOOL_OPERATORs on one DMTOOL_HOME,
or (where each needs a config.toml of their own) two DMTOOL_HOMEs whose data
folder is the same.
"""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dmtool.appstate import AppState
from dmtool.paths import Paths
from dmtool.store import open_store
from dmtool.store.migrations import MIGRATIONS, TEAM_MIGRATION
from dmtool.x.sandbox import SandboxWorld
from tests.conftest import Result
from tests.xworld import ALICE, BOB, CAROL, SAM, Cli, Clock, sync


def as_(cli: Cli, who: str, *args: str, home: Path | None = None) -> Result:
    env = {"DMTOOL_OPERATOR": who}
    if home is not None:
        env["DMTOOL_HOME"] = str(home)
    return cli(*args, env=env)


def members(cli: Cli, who: str = "ana") -> list[tuple[str, str]]:
    r = as_(cli, who, "team", "list", "--json")
    assert r.exit_code == 0, r
    return [(m["name"], m["role"]) for m in r.json()]


# --- no team: as before ---------------------------------------------------------------------


def test_without_members_everybody_acts_as_owner(cli: Cli) -> None:
    assert cli("team", "list", "--json").json() == []
    me = as_(cli, "zoe", "team", "whoami", "--json").json()
    assert me == {"operator": "zoe", "source": "DMTOOL_OPERATOR", "team": False,
                  "member": False, "role": "owner"}
    for who, args in (("zoe", ["contacts", "add", "ann"]), ("yan", ["contacts", "block", "ann"]),
                      ("xu", ["config", "set", "policy.daily_sends", "5"]),
                      ("wil", ["contacts", "forget", "ann", "--yes"])):
        assert as_(cli, who, *args).exit_code == 0, args
    assert "daily_sends = 5" in Paths.resolve("default").config_file.read_text()


# --- members ----------------------------------------------------------------------------------


def test_the_first_add_makes_its_caller_the_owner(cli: Cli) -> None:
    r = as_(cli, "ana", "team", "add", "ben", "--role", "drafter")
    assert r.exit_code == 0 and r.stdout == "", r
    assert "ana is its owner" in r.stderr and "added ben as drafter" in r.stderr
    assert members(cli) == [("ana", "owner"), ("ben", "drafter")]
    log = as_(cli, "ana", "log", "--json").json()
    assert [(e["action"], e["detail"]["member"], e["actor"]) for e in reversed(log)] == [
        ("team_member_added", "ana", "ana"), ("team_member_added", "ben", "ana")]
    # Only owners manage the team from now on.
    r = as_(cli, "ben", "team", "add", "cat", "--role", "viewer")
    assert r.exit_code == 3 and "needs the owner role" in r.stderr
    assert as_(cli, "ana", "team", "add", "cat", "--role", "viewer").exit_code == 0
    assert as_(cli, "ana", "team", "whoami", "--json").json()["role"] == "owner"
    assert as_(cli, "BEN", "team", "whoami", "--json").json()["role"] == "drafter"  # any case


def test_starting_a_team_as_yourself_with_another_role_is_refused(cli: Cli) -> None:
    r = as_(cli, "ana", "team", "add", "ana", "--role", "viewer")
    assert r.exit_code == 2 and "as its owner" in r.stderr, r
    assert members(cli) == []
    r = as_(cli, "ana", "team", "add", "Ana", "--role", "owner")
    assert r.exit_code == 0, r
    assert members(cli) == [("ana", "owner")]


def test_the_last_owner_is_kept(cli: Cli) -> None:
    assert as_(cli, "ana", "team", "add", "ben", "--role", "approver").exit_code == 0
    for args in (["team", "remove", "ana"], ["team", "add", "ana", "--role", "approver"]):
        r = as_(cli, "ana", *args)
        assert r.exit_code == 3 and "last owner" in r.stderr, (args, r)
    assert members(cli) == [("ana", "owner"), ("ben", "approver")]
    assert as_(cli, "ana", "team", "add", "ben", "--role", "owner").exit_code == 0
    r = as_(cli, "ana", "team", "remove", "ana")
    assert r.exit_code == 0 and "removed ana (owner)" in r.stderr, r
    assert members(cli, "ben") == [("ben", "owner")]
    assert as_(cli, "ana", "inbox").exit_code == 4  # no longer a member
    assert as_(cli, "ben", "team", "remove", "nobody").exit_code == 1


def test_member_names_and_roles_are_checked(cli: Cli) -> None:
    assert as_(cli, "ana", "team", "add", "ben", "--role", "boss").exit_code == 2
    for bad in ("sync", "AutoAck", "[ben]", "ben\nbob", "  "):
        r = as_(cli, "ana", "team", "add", bad, "--role", "viewer")
        assert r.exit_code == 1, (bad, r)
    assert members(cli) == []


def test_without_a_name_nobody_starts_a_team(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    import getpass

    for var in ("LOGNAME", "USER", "LNAME", "USERNAME", "DMTOOL_OPERATOR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(getpass, "getuser", lambda: (_ for _ in ()).throw(KeyError("uid")))
    r = cli("team", "add", "ben", "--role", "drafter")
    assert r.exit_code == 2 and "cannot tell who you are" in r.stderr, r


# --- team settings ----------------------------------------------------------------------------


@pytest.fixture
def second_home(tmp_path: Path, dmtool_home: Path) -> Path:
    """Another member's DMTOOL_HOME (their own config.toml) on the same store."""
    mine = Paths.resolve("default").data_dir
    mine.mkdir(parents=True, exist_ok=True)
    home = tmp_path / "ben-home"
    (home / "data").mkdir(parents=True)
    (home / "data" / "default").symlink_to(mine, target_is_directory=True)
    return home


def test_team_settings_are_read_from_the_store(cli: Cli, world: SandboxWorld, clock: Clock,
                                               second_home: Path, db: Any) -> None:
    world.incoming_dm(ALICE, "Hi, tell me more", at=clock.ago(hours=1))
    sync(cli)
    assert cli("config", "set", "lint.shouting_ratio", "0.8").exit_code == 0
    r = as_(cli, "ana", "team", "add", "ben", "--role", "drafter")
    assert "lint.shouting_ratio" in r.stderr  # the owner's settings became the team's
    # Ben's own config.toml (from before he joined) says 20 a day; the team will say none.
    ben_config = second_home / "config" / "default" / "config.toml"
    ben_config.parent.mkdir(parents=True)
    ben_config.write_text('backend = "sandbox"\n[policy]\ndaily_sends = 20\n')
    assert as_(cli, "ben", "config", "set", "display.timezone", "Asia/Tokyo",
               home=second_home).exit_code == 0  # his own key: his to set
    assert as_(cli, "ben", "check", "alice", home=second_home).exit_code == 0
    r = as_(cli, "ben", "config", "set", "policy.daily_sends", "0", home=second_home)
    assert r.exit_code == 3 and "needs the owner role" in r.stderr, r  # ben is a drafter
    r = as_(cli, "ana", "config", "set", "policy.daily_sends", "0")
    assert r.exit_code == 0 and "the team's setting" in r.stderr, r
    r = as_(cli, "ben", "check", "alice", "--json", home=second_home)
    assert r.exit_code == 3 and "E_DAILY_CAP" in {x["code"] for x in r.json()["reasons"]}, r
    assert as_(cli, "ben", "config", "get", "policy.daily_sends", home=second_home).stdout \
        == "0\n"
    # Ben's own keys stay his; config show says which of his values the team overrides.
    r = as_(cli, "ben", "config", "show", home=second_home)
    rows = {line.split("\t")[0]: line.split("\t") for line in r.stdout.splitlines()}
    assert rows["policy.daily_sends"][1:3] == ["0", "team"]
    assert rows["display.timezone"][1:3] == ['"Asia/Tokyo"', "set"]
    assert rows["lint.shouting_ratio"][1:3] == ["0.8", "team"]
    assert "config.toml's policy.daily_sends is ignored" in r.stderr
    shown = as_(cli, "ben", "config", "show", "--json", home=second_home).json()
    assert shown["policy.daily_sends"] == 0 and shown["display.timezone"] == "Asia/Tokyo"
    sources = as_(cli, "ben", "config", "show", "--sources", "--json", home=second_home).json()
    assert sources["policy.daily_sends"] == {"value": 0, "source": "team",
                                             "set_at": "2026-03-02T12:00:00.000Z",
                                             "set_by": "ana", "ignored_local": 20}
    assert sources["display.timezone"]["source"] == "config.toml"
    assert sources["policy.consent_days"] == {"value": 90, "source": "default", "set_at": None,
                                              "set_by": None, "ignored_local": None}
    text = as_(cli, "ben", "config", "show", "--sources", home=second_home).stdout
    assert "team store (set by ana on 2026-03-02); config.toml's 20 is ignored" in text
    # Reading the settings says nothing: cron mails what is on stderr.
    for args in (["inbox"], ["digest", "--peek"], ["contacts", "list"]):
        r = as_(cli, "ben", *args, home=second_home)
        assert r.exit_code == 0 and r.stderr == "", (args, r)
    # The owner's `config set` on a team store writes the store, not config.toml.
    before = Paths.resolve("default").config_file.read_text()
    assert as_(cli, "ana", "config", "set", "autoack.text", "Thanks, we read every DM.").exit_code == 0
    assert Paths.resolve("default").config_file.read_text() == before
    assert db("SELECT value, set_by FROM team_settings WHERE key = 'autoack.text'") == [
        ('"Thanks, we read every DM."', "ana")]


def test_a_bad_value_in_the_store_names_the_store_and_the_key(cli: Cli, db: Any) -> None:
    assert as_(cli, "ana", "team", "add", "ben", "--role", "viewer").exit_code == 0
    assert as_(cli, "ana", "config", "set", "policy.daily_sends", "3").exit_code == 0
    db("UPDATE team_settings SET value = '500' WHERE key = 'policy.daily_sends'")
    r = as_(cli, "ben", "contacts", "list", "--json")
    assert r.exit_code == 4, r
    err = json.loads(r.stderr)["error"]
    assert err["code"] == "E_CONFIG"
    assert AppState().store_location().shown in err["message"]
    assert "policy.daily_sends" in err["message"] and "ceiling" in err["message"]
    db("UPDATE team_settings SET value = '{nope' WHERE key = 'policy.daily_sends'")
    r = as_(cli, "ben", "config", "get", "policy.daily_sends")
    assert r.exit_code == 4 and "policy.daily_sends" in r.stderr, r
    db("INSERT INTO team_settings VALUES ('policy.no_such_key', '1', 'x', 'ana')")
    db("DELETE FROM team_settings WHERE key = 'policy.daily_sends'")
    r = as_(cli, "ben", "inbox")
    assert r.exit_code == 4 and "policy.no_such_key" in r.stderr, r


def test_machine_keys_are_never_read_from_the_store(cli: Cli, tmp_path: Path, db: Any) -> None:
    assert as_(cli, "ana", "team", "add", "ben", "--role", "viewer").exit_code == 0
    planted = tmp_path / "ran"
    for key, value in (("hooks.on_inbound", f"touch {planted}"), ("operator.name", "mallory"),
                       ("display.timezone", "Asia/Tokyo"), ("identity.names", ["Mallory"]),
                       ("store.url", "postgresql://evil/db")):
        db("INSERT INTO team_settings VALUES (?, ?, 'x', 'ana')", (key, json.dumps(value)))
    shown = as_(cli, "ben", "config", "show", "--json").json()
    assert (shown["hooks.on_inbound"], shown["operator.name"], shown["display.timezone"],
            shown["identity.names"]) == ("", "", "", [])
    assert cli("team", "whoami", "--json").json()["operator"] != "mallory"


def test_trust_db_user_makes_the_operator_the_account(cli: Cli, store_engine: str,
                                                      db: Any) -> None:
    """SQLite: the OS account that runs dmtool; PostgreSQL: the role the
    server authenticated (current_user), whatever DMTOOL_OPERATOR says."""
    import pwd

    account = (db("SELECT current_user")[0][0] if store_engine == "pg"
               else pwd.getpwuid(os.geteuid()).pw_name)
    assert as_(cli, "ana", "team", "add", "ben", "--role", "drafter").exit_code == 0
    r = as_(cli, "ana", "config", "set", "team.trust_db_user", "true")
    assert r.exit_code == 3 and "not an owner" in r.stderr, r  # nobody could switch it off
    assert as_(cli, "ana", "team", "add", account, "--role", "owner").exit_code == 0
    assert as_(cli, "ana", "config", "set", "team.trust_db_user", "true").exit_code == 0
    me = as_(cli, "ben", "team", "whoami", "--json").json()  # DMTOOL_OPERATOR says ben: ignored
    assert (me["operator"], me["source"], me["role"]) == (
        account, "database user (team.trust_db_user)", "owner")
    assert as_(cli, "ben", "contacts", "add", "ann").exit_code == 0
    assert as_(cli, "ana", "log", "--json").json()[0]["actor"] == account


# --- who made each record ---------------------------------------------------------------------


def test_consent_opt_outs_and_blocks_say_who_made_them(cli: Cli, world: SandboxWorld,
                                                       clock: Clock) -> None:
    world.incoming_dm(ALICE, "Hi, tell me more", at=clock.ago(hours=2))
    world.incoming_dm(SAM, "STOP", at=clock.ago(hours=1))
    world.incoming_dm(BOB, "please don't message me again", at=clock.ago(hours=1))
    sync(cli)
    assert as_(cli, "ana", "team", "add", "ben", "--role", "drafter").exit_code == 0
    assert as_(cli, "ana", "contacts", "engage", "carol", "--evidence",
               "asked at the booth").exit_code == 0
    assert as_(cli, "ana", "contacts", "block", "alice").exit_code == 0
    assert as_(cli, "ana", "contacts", "optout", "carol", "--yes").exit_code == 0
    assert as_(cli, "ana", "contacts", "optout", "bob", "--dismiss", "--reason",
               "a joke").exit_code == 0
    carol = as_(cli, "ben", "contacts", "show", "carol", "--json").json()
    assert [(e["kind"], e["recorded_by"]) for e in carol["evidence"]] == [("request", "ana")]
    assert carol["opted_out_by"] == "ana"
    alice = as_(cli, "ben", "contacts", "show", "alice", "--json").json()
    assert alice["blocked_by"] == "ana" and alice["evidence"][0]["recorded_by"] == "sync"
    assert as_(cli, "ben", "contacts", "show", "sam", "--json").json()["opted_out_by"] == "sync"
    text = as_(cli, "ben", "contacts", "show", "alice").stdout
    assert "blocked by:" in text and "ana" in text and "(by sync)" in text
    done = {e["action"] for e in as_(cli, "ben", "log", "--actor", "ana", "--json").json()}
    assert {"consent_recorded", "blocked", "opted_out", "optout_dismissed"} <= done


# --- notes -----------------------------------------------------------------------------------


def test_notes_have_an_author_and_show_everywhere(cli: Cli, world: SandboxWorld,
                                                  clock: Clock) -> None:
    world.incoming_dm(ALICE, "Hi! Could you tell me more about the beta?", at=clock.ago(hours=2))
    sync(cli)
    assert as_(cli, "ana", "team", "add", "ben", "--role", "drafter").exit_code == 0
    clock.advance(minutes=30)
    assert as_(cli, "ben", "contacts", "note", "alice", "wants the\nApril dates").exit_code == 0
    note = {"at": "2026-03-02T12:30:00.000Z", "author": "ben", "text": "wants the\nApril dates"}
    assert as_(cli, "ana", "contacts", "show", "alice", "--json").json()["notes"] == [note]
    assert "note by ben: wants the" in as_(cli, "ana", "contacts", "show", "alice").stdout
    thread = as_(cli, "ana", "thread", "alice", "--json", "--peek").json()
    assert thread["notes"] == [note]
    rows = as_(cli, "ana", "thread", "alice", "--peek").stdout.splitlines()
    assert [r.split("\t")[1] for r in rows] == ["in", "note"]  # by time, among the messages
    assert rows[1].endswith("ben: wants the April dates")
    # The review screen shows it.
    r = as_(cli, "ben", "draft", "alice", "Hi Alice, the beta opens in April.", "--json")
    assert r.exit_code == 0, r
    assert "note by ben: wants the" in review_screen(int(r.json()["id"]))
    # A note is never sent.
    assert as_(cli, "ana", "review", str(r.json()["id"]), "--approve").exit_code == 0
    assert as_(cli, "ana", "send", str(r.json()["id"]), "--yes").exit_code == 0
    sent = [e["text"] for e in world.dms_with(ALICE) if e["sender_id"] != ALICE]
    assert sent == ["Hi Alice, the beta opens in April."]


def review_screen(draft_id: int) -> str:
    from rich.console import Console

    from dmtool.appstate import AppState
    from dmtool.cli.drafts import _render_review
    from dmtool.services import drafting

    st = AppState(environ=dict(os.environ, DMTOOL_OPERATOR="ana"))
    out = io.StringIO()
    try:
        _render_review(st, Console(file=out, width=200, no_color=True), drafting.show(st, draft_id),
                       "(1 of 1)")
    finally:
        st.close()
    return out.getvalue()


def test_exported_notes_keep_their_author(cli: Cli, tmp_path: Path) -> None:
    assert as_(cli, "ana", "contacts", "add", "ann").exit_code == 0
    assert as_(cli, "ana", "contacts", "note", "ann", "met at the fair").exit_code == 0
    assert as_(cli, "ben", "contacts", "note", "ann", "wants the [pro] plan\nin May").exit_code == 0
    exported = cli("contacts", "export", "--json").json()[0]["notes"]
    assert [(n["author"], n["text"]) for n in exported] == [
        ("ana", "met at the fair"), ("ben", "wants the [pro] plan\nin May")]
    for n in exported:  # exactly these three, `at` an RFC 3339 UTC time as everywhere in JSON
        assert set(n) == {"at", "author", "text"}, n
        assert isinstance(n["at"], str) and n["at"].endswith("Z"), n
        assert datetime.fromisoformat(n["at"]).utcoffset() == timedelta(0), n
    text = cli("contacts", "export").stdout
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert row["notes"] == "met at the fair [by ana]\nwants the [pro] plan\n\tin May [by ben]"
    f = tmp_path / "export.csv"
    f.write_text(text, encoding="utf-8")
    assert cli("profiles", "add", "copy").exit_code == 0
    assert as_(cli, "cy", "--profile", "copy", "contacts", "import", str(f)).exit_code == 0
    copied = cli("--profile", "copy", "contacts", "show", "ann", "--json").json()["notes"]
    assert [(n["author"], n["text"]) for n in copied] == [
        ("ana", "met at the fair"), ("ben", "wants the [pro] plan\nin May")]
    # A hand-made file's notes are by whoever imports them.
    f.write_text("handle,notes\nbea,called her [twice]\n", encoding="utf-8")
    assert as_(cli, "cy", "contacts", "import", str(f)).exit_code == 0
    assert cli("contacts", "show", "bea", "--json").json()["notes"][0]["author"] == "cy"


def test_a_store_from_before_the_team_migration_upgrades(new_store: Any) -> None:
    old = new_store(migrate_to=TEAM_MIGRATION - 1)
    with old.tx() as conn:
        conn.execute("INSERT INTO contacts (user_id, handle, created_at, updated_at) VALUES "
                     "(?, 'carol', 'x', 'x')", (CAROL,))
        conn.execute("INSERT INTO notes (contact_id, at, text) VALUES (1, 'x', 'old note')")
        conn.execute("INSERT INTO evidence (contact_id, kind, at, ref, text, recorded_at) "
                     "VALUES (1, 'request', 'x', 'manual:1', 'asked', 'x')")
    old.close()
    new = open_store(old.location)
    try:
        assert new.schema_version() == len(MIGRATIONS) >= TEAM_MIGRATION
        from dmtool.store import contacts as cstore
        from dmtool.store import team

        assert cstore.notes(new.conn, 1) == [{"at": "x", "author": None, "text": "old note"}]
        assert cstore.evidence(new.conn, 1)[0].recorded_by is None
        assert not team.has_members(new.conn) and team.settings(new.conn) == []
    finally:
        new.close()


@pytest.mark.sqlite_only(reason="db restore replaces a SQLite store's file; a PostgreSQL "
                         "store is restored with pg_restore (docs/team.md)")
def test_a_restore_keeps_the_team_as_it_is(cli: Cli, tmp_path: Path) -> None:
    """A backup from before the team (or before a role changed) brings back the
    record, not last week's roles: nobody becomes owner by a restore."""
    assert cli("contacts", "add", "ann").exit_code == 0
    assert cli("db", "backup", str(tmp_path / "before.db")).exit_code == 0
    assert as_(cli, "ana", "team", "add", "ben", "--role", "drafter").exit_code == 0
    assert as_(cli, "ana", "config", "set", "policy.daily_sends", "3").exit_code == 0
    r = as_(cli, "ben", "db", "restore", str(tmp_path / "before.db"), "--yes")
    assert r.exit_code == 3, r  # restoring is the owners'
    r = as_(cli, "ana", "db", "restore", str(tmp_path / "before.db"), "--yes")
    assert r.exit_code == 0 and "the team stays as it was: 2 members" in r.stderr, r
    assert members(cli) == [("ana", "owner"), ("ben", "drafter")]
    assert as_(cli, "ben", "config", "get", "policy.daily_sends").stdout == "3\n"
    assert as_(cli, "ben", "contacts", "forget", "ann", "--yes").exit_code == 3


def test_only_config_reads_the_local_file_raw() -> None:
    """A setting read from `config.values` is config.toml's, which a team store
    overrides for the team keys (team.approval was once read that way, so the
    team's value was ignored): outside config.py, settings are read through
    `get`/`in_force`/the typed settings. The two readers allowed want the local
    file on purpose."""
    import re

    import dmtool

    allowed = {
        "services/team.py",    # the first `team add` copies the local team keys into the store
        "cli/config_cmd.py",   # says which local value the store's overrides
    }
    root = Path(dmtool.__file__).parent
    readers = {p.relative_to(root).as_posix() for p in root.rglob("*.py")
               if re.search(r"\bconfig\.values\b", p.read_text(encoding="utf-8"))}
    assert readers - {"config.py"} <= allowed, readers - allowed
