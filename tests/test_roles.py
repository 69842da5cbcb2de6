"""Every command has a role (issue 15): walked over the generated command list,
so a command added later is held to it without touching this file.

Two operators on one SQLite store are two DMTOOL_OPERATORs on one DMTOOL_HOME.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dmtool.cli.access import COMMAND_ACTIONS, LOCAL_WHY, markdown
from dmtool.cli.reference import leaf_commands
from dmtool.paths import Paths
from dmtool.services.roles import ACTIONS, GRANTS, LADDER, LOCAL, OWNER, ROLES, SERVICE, roles_for
from dmtool.x.sandbox import SandboxWorld
from tests.conftest import Result, profile_store, table_names
from tests.test_json_everywhere import ARGS, Populated
from tests.xworld import ALICE, BOB, Cli, sync

COMMANDS: dict[str, Any] = dict(leaf_commands())
DOCS = Path(__file__).resolve().parent.parent / "docs" / "team.md"


def test_every_command_has_an_action() -> None:
    missing = sorted(set(COMMANDS) - set(COMMAND_ACTIONS))
    assert not missing, f"commands without a role: add them to cli/access.py: {missing}"
    assert not set(COMMAND_ACTIONS) - set(COMMANDS), "listed but not a command"
    assert set(COMMAND_ACTIONS.values()) <= set(ACTIONS)
    # Each command checks its action before it runs (cli/app.py wraps them all).
    assert {p: getattr(c.callback, "dmtool_action", None) for p, c in COMMANDS.items()} \
        == COMMAND_ACTIONS
    # A local command says why it needs no member; every other action is the owner's.
    assert set(LOCAL_WHY) == {p for p, a in COMMAND_ACTIONS.items() if a == LOCAL}
    assert all(a in GRANTS[OWNER] for a in ACTIONS if a != LOCAL)
    assert all(roles_for(a) for a in ACTIONS if a != LOCAL)
    # The ladder: each role may do all the one below it may.
    for lower, higher in zip(LADDER, LADDER[1:], strict=False):
        assert GRANTS[lower] < GRANTS[higher]
    assert GRANTS[SERVICE] == {"read", "sync"}  # the cron host: no drafting, no approving


def test_docs_team_md_shows_the_table() -> None:
    assert markdown() in DOCS.read_text(encoding="utf-8"), (
        "docs/team.md's table of commands and roles drifted: paste "
        "`python -c 'from dmtool.cli.access import markdown; print(markdown())'`")


# --- end to end --------------------------------------------------------------------------


def as_(cli: Cli, who: str, *args: str) -> Result:
    return cli(*args, env={"DMTOOL_OPERATOR": who})


def store_content() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the default profile's store."""
    store = profile_store()
    try:
        return {t: sorted((tuple(r) for r in store.conn.execute(f"SELECT * FROM {t}")), key=repr)
                for t in table_names(store) if "fts" not in t}
    finally:
        store.close()


@pytest.fixture
def team(cli, clock, world, tmp_path) -> Populated:
    """A populated sandbox store whose team is olga (owner) and one member of each role."""
    p = Populated(cli, clock, world, tmp_path)
    assert as_(cli, "olga", "db", "backup", str(tmp_path / "backup.db")).exit_code == 0
    for name, role in (("vic", "viewer"), ("dora", "drafter"), ("abe", "approver"),
                       ("cron", "service")):
        r = as_(cli, "olga", "team", "add", name, "--role", role)
        assert r.exit_code == 0, r
    return p


# What each command that changes something needs to run. A new one fails
# test_a_viewer_cannot_write until it has an entry.
WRITES: dict[str, Any] = {
    "config set": lambda p, t: ["policy.daily_sends", "10"],  # a team key on a team store
    "contacts add": lambda p, t: ["zoe"],
    "contacts block": lambda p, t: ["dave"],
    "contacts unblock": lambda p, t: ["alice"],
    "contacts engage": lambda p, t: ["carol", "--evidence", "asked at the meetup"],
    "contacts forget": lambda p, t: ["alice", "--yes"],
    "contacts import": lambda p, t: [str(p.csv)],
    "contacts note": lambda p, t: ["alice", "met at the meetup"],
    "contacts optout": lambda p, t: ["alice", "--yes"],
    "contacts tag": lambda p, t: ["alice", "vip"],
    "db restore": lambda p, t: [str(t / "backup.db"), "--yes"],
    "done": lambda p, t: ["alice"], "reopen": lambda p, t: ["alice"],
    "snooze": lambda p, t: ["alice", "3d"], "unsnooze": lambda p, t: ["alice"],
    "draft": lambda p, t: ["bob", "Hi Bob, thanks for asking."],
    "drafts discard": lambda p, t: [p.drafts["discard"]],
    "drafts edit": lambda p, t: [p.drafts["edit"], "Thanks Alice, details tomorrow."],
    "import archive": lambda p, t: [str(p.archive)],
    "claim": lambda p, t: ["alice"],
    "release": lambda p, t: ["alice"],
    "reply": lambda p, t: ["bob", "Hi Bob, the student price is on the website.", "--yes"],
    "review": lambda p, t: [p.drafts["review"], "--approve"],
    "send": lambda p, t: [p.drafts["send"], "--yes"],
    "sync": lambda p, t: [],
    "team add": lambda p, t: ["zed", "--role", "viewer"],
    "team key new": lambda p, t: [],
    "team remove": lambda p, t: ["dora"],
    "templates add": lambda p, t: ["hello", "Hello {first_name}"],
    "templates remove": lambda p, t: ["thanks"],
}


def test_a_viewer_cannot_write(cli, team, tmp_path) -> None:
    writes = {p for p, a in COMMAND_ACTIONS.items() if a not in ("read", LOCAL)} | {"config set"}
    assert set(WRITES) == writes, sorted(writes ^ set(WRITES))
    before = store_content()
    sandbox = Paths.resolve("default").sandbox_file.read_bytes()
    for path, args in WRITES.items():
        r = as_(cli, "vic", *path.split(), *args(team, tmp_path))
        assert r.exit_code == 3, (path, r)
        assert "vic is a viewer" in r.stderr and "needs the" in r.stderr, (path, r)
        assert r.stdout == ""
    assert store_content() == before  # not a row written, not even to the audit log
    assert Paths.resolve("default").sandbox_file.read_bytes() == sandbox  # nothing reached X
    # The same refusal as JSON, naming the roles that would do.
    r = as_(cli, "vic", "review", team.drafts["review"], "--approve", "--json")
    err = json.loads(r.stderr)["error"]
    assert (r.exit_code, err["code"]) == (3, "E_ROLE")
    assert err["details"] == [{"operator": "vic", "role": "viewer", "action": "approve",
                               "roles": ["approver", "owner"]}]


def test_a_viewer_reads_everything(cli, team) -> None:
    for path, action in COMMAND_ACTIONS.items():
        if action != "read":
            continue
        args = ARGS.get(path, lambda p: [])(team)
        r = as_(cli, "vic", *path.split(), *args, *(["--json"] if path != "db backup" else []))
        if path == "db backup":
            continue  # needs a file; run below
        assert r.exit_code == 0, (path, r)
    assert as_(cli, "vic", "db", "backup", str(Path(team.csv).parent / "vic.db")).exit_code == 0


def test_someone_not_on_the_team_is_refused_everywhere(cli, team, tmp_path) -> None:
    before = store_content()
    for path, action in COMMAND_ACTIONS.items():
        if action == LOCAL:
            continue
        args = (WRITES[path](team, tmp_path) if path in WRITES
                else ARGS.get(path, lambda p: [])(team))
        if path == "db backup":
            args = [str(tmp_path / "mallory.db")]
        r = as_(cli, "mallory", *path.split(), *args)
        assert r.exit_code == 4, (path, r)
        assert "mallory (from DMTOOL_OPERATOR) is not a member" in r.stderr, (path, r)
    assert store_content() == before
    r = as_(cli, "mallory", "inbox", "--json")
    assert json.loads(r.stderr)["error"]["code"] == "E_NOT_A_MEMBER"
    # The team's settings are the team's; this machine's own files stay hers.
    assert as_(cli, "mallory", "config", "get", "policy.daily_sends").exit_code == 4
    for args in (["paths", "--json"], ["config", "path"], ["db", "path"], ["profiles", "list"],
                 ["db", "check"], ["config", "set", "display.timezone", "Asia/Tokyo"],
                 ["config", "get", "display.timezone"]):
        assert as_(cli, "mallory", *args).exit_code == 0, args
    me = as_(cli, "mallory", "team", "whoami", "--json").json()
    assert me == {"operator": "mallory", "source": "DMTOOL_OPERATOR", "team": True,
                  "member": False, "role": None}


def test_each_role_does_what_it_may(cli, team, world, clock) -> None:
    # drafter: drafts, notes, tags, triage; no approving, no consent, no sending
    r = as_(cli, "dora", "draft", "bob", "Hi Bob, students get half price.", "--json")
    assert r.exit_code == 0, r
    mine = str(r.json()["id"])
    for args in (["contacts", "note", "bob", "asked twice"], ["contacts", "tag", "bob", "edu"],
                 ["done", "alice"], ["reopen", "alice"], ["contacts", "add", "zoe"]):
        assert as_(cli, "dora", *args).exit_code == 0, args
    for args, role in ((["review", mine, "--approve"], "approver"),
                       (["send", mine, "--yes"], "approver"), (["sync"], "approver"),
                       (["contacts", "block", "bob"], "owner"),
                       (["team", "add", "x", "--role", "viewer"], "owner")):
        r = as_(cli, "dora", *args)
        assert r.exit_code == 3 and f"needs the {role}" in r.stderr, (args, r)
    # approver: approves and sends; consent and the team stay the owners'
    assert as_(cli, "abe", "review", mine, "--approve").exit_code == 0
    assert as_(cli, "abe", "send", mine, "--yes").exit_code == 0
    bob = SandboxWorld.load(Paths.resolve("default").sandbox_file).dms_with(BOB)
    assert [m["text"] for m in bob if m["sender_id"] != BOB][-1] == \
        "Hi Bob, students get half price."
    for args in (["contacts", "engage", "carol", "--evidence", "asked"],
                 ["contacts", "forget", "carol", "--yes"], ["config", "set", "lint.shouting_ratio",
                                                            "0.8"]):
        r = as_(cli, "abe", *args)
        assert r.exit_code == 3 and "needs the owner role" in r.stderr, (args, r)
    # service (the cron host): sync and the digest; never drafting or approving
    world.incoming_dm(ALICE, "one more question", at=clock.ago(minutes=5))
    r = as_(cli, "cron", "sync", "--json")
    assert r.exit_code == 0, r
    assert as_(cli, "cron", "digest", "--json").exit_code == 0
    for args in (["draft", "alice", "Thanks Alice!"], ["review", mine, "--approve"],
                 ["contacts", "note", "alice", "x"]):
        assert as_(cli, "cron", *args).exit_code == 3, args
    # The log says who did what.
    log = cli("log", "--json", env={"DMTOOL_OPERATOR": "olga"}).json()
    assert {"sent", "approved"} <= {e["action"] for e in log if e["actor"] == "abe"}


def test_roles_are_listed_in_the_help() -> None:
    from dmtool.cli.team_cmd import _ROLE_HELP

    assert all(r in _ROLE_HELP for r in ROLES)


def test_sync_on_a_store_without_a_team_needs_nobody(cli, world, clock) -> None:
    """No members: everybody acts as owner, whatever their name."""
    world.incoming_dm(ALICE, "hi", at=clock.ago(minutes=5))
    assert as_(cli, "anyone", "sync").exit_code == 0
    sync(cli)
