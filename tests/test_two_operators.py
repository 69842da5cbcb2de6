"""Two operators, two machines, one store (issue 15's end-to-end tests).

Ana (the owner) and Ben (a drafter), and Vic (a viewer), each have a
DMTOOL_HOME of their own: their own config.toml and state folder. What they
share is what a team shares: one store (a SQLite file outside every home, or
the test's PostgreSQL database) and one sandbox X (DMTOOL_SANDBOX_FILE). The
team is set up in-process; every act under test is the installed dmtool in a
subprocess, and two of them run at the same moment where it matters (both
claim one conversation; Ben edits while Ana approves; two owners remove each
other). Each test asserts the exit codes, the `--json` error codes, the audit
log's `actor` as another member's home reads it, and what X received.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dmtool.x.sandbox import SANDBOX_ME, SandboxWorld
from tests.conftest import Result, dmtool_command
from tests.xworld import ALICE, BOB, ME, Cli, Clock

THANKS = "Thanks Alice, the workshop starts at 10 on Saturday."
EDITED = "Thanks Alice, the workshop starts at 10 on Saturday. Bring a laptop!"


class Member:
    """One person at their own machine: their home, their operator name."""

    def __init__(self, name: str, home: Path) -> None:
        self.name, self.home = name, home

    def env(self) -> dict[str, str]:
        env = dict(os.environ)  # the pinned clock, the shared store and X
        env.update({"DMTOOL_HOME": str(self.home), "DMTOOL_OPERATOR": self.name})
        return env

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(dmtool_command() + list(args), env=self.env(), text=True,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    def __call__(self, *args: str) -> Result:
        return finish(self.start(*args))

    def draft(self, handle: str, text: str, *extra: str) -> int:
        r = self("draft", handle, text, "--json", *extra)
        assert r.exit_code == 0, r
        return int(r.json()["id"])

    def show(self, draft_id: int) -> dict[str, Any]:
        r = self("drafts", "show", str(draft_id), "--json")
        assert r.exit_code == 0, r
        return r.json()  # type: ignore[no-any-return]

    def log(self, *args: str) -> list[dict[str, Any]]:
        r = self("log", "--json", *args)
        assert r.exit_code == 0, r
        return r.json()  # type: ignore[no-any-return]


def finish(p: subprocess.Popen[str]) -> Result:
    out, err = p.communicate(timeout=120)
    return Result(p.returncode, out, err)


def at_once(*calls: tuple[Member, tuple[str, ...]]) -> list[Result]:
    """Start every command before waiting for any: they meet at the store."""
    started = [member.start(*args) for member, args in calls]
    return [finish(p) for p in started]


def error(r: Result) -> dict[str, Any]:
    return json.loads(r.stderr.strip().splitlines()[-1])["error"]  # type: ignore[no-any-return]


def refused(r: Result, exit_code: int, code: str) -> dict[str, Any]:
    assert (r.exit_code, r.stdout) == (exit_code, ""), r
    e = error(r)
    assert e["code"] == code, r
    return e


def refused_plain(r: Result, exit_code: int, says: str) -> None:
    """A refusal of a command without --json (claim, team): one line for a person."""
    assert (r.exit_code, r.stdout) == (exit_code, ""), r
    assert r.stderr.startswith("error: ") and says in r.stderr.splitlines()[0], r


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Team:
    def __init__(self, world: SandboxWorld, **members: Member) -> None:
        self.world = world
        self.ana, self.ben, self.vic = members["ana"], members["ben"], members["vic"]

    def sent_to(self, user_id: str) -> list[str]:
        """The DMs the sandbox X received from the account."""
        return [e["text"] for e in self.world.dms_with(user_id) if e.get("sender_id") == ME]


@pytest.fixture
def team(cli: Cli, run: Any, clock: Clock, tmp_path: Path, store_engine: str,
         monkeypatch: pytest.MonkeyPatch) -> Team:
    """Ana's, Ben's and Vic's homes on one store and one sandbox X; Alice wrote
    half an hour ago and Ana's sync brought it in."""
    world_file = tmp_path / "shared" / "x-world.json"
    world_file.parent.mkdir()
    monkeypatch.setenv("DMTOOL_SANDBOX_FILE", str(world_file))
    if store_engine == "sqlite":  # one file outside every home (on PostgreSQL: the test's database)
        monkeypatch.setenv("DMTOOL_SANDBOX_DATABASE_URL", str(tmp_path / "shared" / "team.db"))
    world = SandboxWorld.create(world_file)
    with world.transaction():
        world.set_me(*SANDBOX_ME)
        world.add_user("alice", "Alice A", user_id=ALICE)
        world.add_user("bob", "Bob B", user_id=BOB)
    members = {name: Member(name, tmp_path / f"{name}-home") for name in ("ana", "ben", "vic")}
    for m in members.values():
        r = cli("config", "set", "backend", "sandbox", env={"DMTOOL_HOME": str(m.home)})
        assert r.exit_code == 0, r
    as_ana = {"DMTOOL_HOME": str(members["ana"].home), "DMTOOL_OPERATOR": "ana"}
    for name, role in (("ben", "drafter"), ("vic", "viewer")):
        assert cli("team", "add", name, "--role", role, env=as_ana).exit_code == 0
    world.incoming_dm(ALICE, "Hi! When does the workshop start?", at=clock.ago(minutes=30))
    r = cli("sync", "--json", env=as_ana)
    assert r.exit_code == 0 and r.json()["dm_events_new"] == 1, r
    for m in members.values():  # nothing of the store in anyone's home
        assert not list(m.home.rglob("*.db"))
    return Team(world, **members)


# --- a second pair of eyes --------------------------------------------------------------------


def test_self_approval_is_refused_and_the_other_home_sees_it(team: Team, cli: Cli) -> None:
    ana, ben = team.ana, team.ben
    r = ana("config", "set", "team.approval", "all")
    assert r.exit_code == 0, r
    mine = ana.draft("alice", THANKS)
    e = refused(ana("review", str(mine), "--approve", "--json"), 3, "E_SELF_APPROVAL")
    assert "you wrote it" in e["message"]
    d = ben.show(mine)  # Ben's home reads the same store
    assert (d["author"], d["status"], d["approved_by"]) == ("ana", "draft", None)
    refused(ana("send", str(mine), "--yes", "--json"), 1, "E_NOT_APPROVED")
    [entry, *_] = ben.log("--actor", "ana")
    assert (entry["action"], entry["codes"], entry["actor"], entry["draft_id"]) == (
        "refused", ["E_SELF_APPROVAL"], "ana", mine)
    # the other way round it goes: Ben writes, Ana approves and sends
    his = ben.draft("alice", EDITED)
    assert ana("review", str(his), "--approve", "--json").exit_code == 0
    r = ana("send", str(his), "--yes", "--json")
    assert r.exit_code == 0, r
    assert team.sent_to(ALICE) == [EDITED]
    d = ben.show(his)
    assert (d["author"], d["approved_by"], d["status"]) == ("ben", "ana", "sent")


def test_an_edit_in_one_home_voids_the_approval_given_in_the_other(team: Team) -> None:
    ana, ben, vic = team.ana, team.ben, team.vic
    did = ben.draft("alice", THANKS)
    assert ana("review", str(did), "--approve", "--json").exit_code == 0
    assert ben.show(did)["approved_sha256"] == sha(THANKS)
    r = ben("drafts", "edit", str(did), EDITED, "--json")
    assert r.exit_code == 0, r
    d = ana.show(did)
    assert (d["text"], d["status"], d["approved_by"], d["approved_sha256"]) == (
        EDITED, "draft", None, None)
    refused(ana("send", str(did), "--yes", "--json"), 1, "E_NOT_APPROVED")
    assert team.sent_to(ALICE) == []
    edited = next(e for e in vic.log() if e["action"] == "edited")
    assert (edited["actor"], edited["draft_id"], edited["detail"]["approval_cleared"]) == (
        "ben", did, True)


def test_ben_edits_while_ana_approves_never_sends_unapproved_text(team: Team) -> None:
    """Whichever lands first, the approval and the text it names agree: either
    the edited text is approved (and that is what X receives) or the approval
    is void (and nothing goes)."""
    ana, ben = team.ana, team.ben
    did = ben.draft("alice", THANKS)
    edit, approve = at_once((ben, ("drafts", "edit", str(did), EDITED, "--json")),
                            (ana, ("review", str(did), "--approve", "--json")))
    assert edit.exit_code == 0, edit
    if approve.exit_code:  # the edit landed while the approval checked the text: refused
        e = refused(approve, 1, "E_INPUT")
        assert e["message"] == f"draft {did} changed while it was checked", e
    d = ana.show(did)
    assert d["text"] == EDITED
    r = ana("send", str(did), "--yes", "--json")
    if d["status"] == "approved":  # the approval came after the edit: it is the edit's
        assert (d["approved_by"], d["approved_sha256"]) == ("ana", sha(EDITED))
        assert r.exit_code == 0, r
        assert team.sent_to(ALICE) == [EDITED]
        sent = next(e for e in ben.log() if e["action"] == "sent")
        assert (sent["actor"], sent["detail"]["sha256"]) == ("ana", sha(EDITED))
    else:  # the edit came after: the approval is void
        assert (d["status"], d["approved_by"], d["approved_sha256"]) == ("draft", None, None)
        refused(r, 1, "E_NOT_APPROVED")
        assert team.sent_to(ALICE) == []


def test_a_members_own_config_does_not_switch_approvals_off(team: Team, cli: Cli) -> None:
    """team.approval is the team's: Ana's config.toml saying "none" is ignored,
    and a first message (the default once there are members) still needs
    another person."""
    ana = team.ana
    config = ana.home / "config" / "default" / "config.toml"
    config.write_text(config.read_text() + '\n[team]\napproval = "none"\n')
    as_ana = {"DMTOOL_HOME": str(ana.home), "DMTOOL_OPERATOR": "ana"}
    assert cli("config", "set", "identity.names", "Ana", env=as_ana).exit_code == 0
    r = ana("contacts", "engage", "bob", "--evidence", "asked at the booth to be DMed")
    assert r.exit_code == 0, r
    first = ana.draft("bob", "Hi Bob, it's Ana from the booth: here are the slides you asked for.")
    refused(ana("review", str(first), "--approve", "--json"), 3, "E_SELF_APPROVAL")
    assert team.ben.show(first)["status"] == "draft"


# --- claims -----------------------------------------------------------------------------------


def test_both_claim_at_once_one_wins_and_force_is_logged(team: Team) -> None:
    ana, ben, vic = team.ana, team.ben, team.vic
    results = at_once((ana, ("claim", "alice")), (ben, ("claim", "alice")))
    won = [m for m, r in zip((ana, ben), results, strict=True) if r.exit_code == 0]
    assert len(won) == 1, results
    winner = won[0]
    loser, lost = (ben, results[1]) if winner is ana else (ana, results[0])
    refused_plain(lost, 3, f"@alice is claimed by {winner.name} until 2026-03-02 12:30 (UTC)")
    assert "--force" in lost.stderr
    [row] = vic("inbox", "--json").json()  # the viewer's home sees who holds it
    assert (row["claimed_by"], row["claimed_until"]) == (winner.name, "2026-03-02T12:30:00.000Z")

    e = refused(loser("draft", "alice", THANKS, "--json"), 3, "E_CLAIMED")
    assert winner.name in e["message"] and "--force" in e["hint"]
    did = loser.draft("alice", THANKS, "--force")
    overrides = [x for x in winner.log() if x["action"] == "claim_overridden"]
    assert [(x["actor"], x["detail"]["command"], x["detail"]["holder"], x["draft_id"])
            for x in overrides] == [(loser.name, "draft", winner.name, did)]
    assert team.sent_to(ALICE) == []


# --- the traffic cop ----------------------------------------------------------------------------


def test_a_message_after_the_approval_stops_the_send_from_the_other_home(
        team: Team, clock: Clock) -> None:
    ana, ben = team.ana, team.ben
    did = ben.draft("alice", THANKS)
    assert ana("review", str(did), "--approve", "--json").exit_code == 0
    clock.advance(minutes=10)
    team.world.incoming_dm(ALICE, "Actually, is it still on? I heard it moved.",
                           at=clock.ago(minutes=1))
    r = ana("sync", "--json")
    assert r.exit_code == 0 and r.json()["dm_events_new"] == 1, r
    e = refused(ana("send", str(did), "--yes", "--json"), 3, "E_CONVERSATION_MOVED")
    assert "Actually, is it still on?" in e["message"] and "back in review" in e["message"]
    assert team.sent_to(ALICE) == []
    d = ben.show(did)  # Ben sees his draft back in review, and why
    assert (d["status"], d["approved_by"]) == ("draft", None)
    assert d["reason"].startswith("the conversation moved after the approval")
    [entry, *_] = ben.log("--actor", "ana")
    assert (entry["action"], entry["codes"], entry["draft_id"]) == (
        "refused", ["E_CONVERSATION_MOVED"], did)


# --- roles ------------------------------------------------------------------------------------


def test_a_viewers_writes_are_refused_and_leave_nothing(team: Team) -> None:
    ana, ben, vic = team.ana, team.ben, team.vic
    did = ben.draft("alice", THANKS)
    assert ana("review", str(did), "--approve", "--json").exit_code == 0
    assert vic("inbox", "--json").exit_code == 0  # a member: reading is the viewer's
    for args in (("draft", "alice", "Hi Alice, Vic here.", "--json"),
                 ("send", str(did), "--yes", "--json")):
        e = refused(vic(*args), 3, "E_ROLE")
        assert "viewer" in e["message"], e
    assert [d["id"] for d in ana("drafts", "list", "--json").json()] == [did]
    assert ana.show(did)["status"] == "approved"
    assert ana.log("--actor", "vic") == []  # a refusal writes nothing, not even to the log
    assert team.sent_to(ALICE) == []


def test_the_last_owner_is_kept_across_homes(team: Team) -> None:
    ana, ben, vic = team.ana, team.ben, team.vic
    refused_plain(ana("team", "remove", "ana"), 3, "last owner")
    refused_plain(ana("team", "add", "ana", "--role", "approver"), 3, "last owner")
    refused_plain(ben("team", "remove", "ana"), 3, "needs the owner role")
    assert ana("team", "add", "ben", "--role", "owner").exit_code == 0
    # two owners, each removing the other at the same moment: one of them stays
    results = at_once((ana, ("team", "remove", "ben")), (ben, ("team", "remove", "ana")))
    assert sorted(r.exit_code for r in results) in ([0, 3], [0, 4]), results
    [lost] = [r for r in results if r.exit_code]
    assert "last owner" in lost.stderr or "not a member" in lost.stderr, lost
    r = vic("team", "list", "--json")
    assert r.exit_code == 0, r
    owners = [m["name"] for m in r.json() if m["role"] == "owner"]
    assert len(owners) == 1 and owners[0] in ("ana", "ben"), r.json()
