"""Claims (issue 15 point 4): `claim HANDLE [--minutes N]`, `release HANDLE`, the
inbox's `claimed_by`, `--mine` and `--unclaimed`, refusals (E_CLAIMED) for
other people's drafts, replies and sends, `--force` in the log, renewal by
drafting, expiry. Kim and Sam act on one store as two DMTOOL_OPERATORs."""

from __future__ import annotations

from typing import Any

import pytest

from dmtool.x.sandbox import SandboxWorld
from tests.test_team_approvals import THANKS, Person, alice_wrote, error, log, outbound, show
from tests.xworld import ALICE, BOB, Cli, Clock, sync


@pytest.fixture
def kim(cli: Cli) -> Person:
    return Person(cli, "kim")


@pytest.fixture
def sam(cli: Cli) -> Person:
    return Person(cli, "sam")


def inbox(person: Person, *args: str) -> list[dict[str, Any]]:
    r = person("inbox", "--json", *args)
    assert r.exit_code == 0, r
    return r.json()  # type: ignore[no-any-return]


def claimed(r: Any, holder: str, until: str) -> None:
    """Refused: exit 3, E_CLAIMED, saying by whom and until when."""
    assert r.exit_code == 3 and r.stdout == "", r
    said = f"@alice is claimed by {holder} until {until} (UTC)"
    if not r.stderr.startswith("{"):  # an action (claim, release): one line for a person
        assert said in r.stderr.splitlines()[0] and "--force" in r.stderr
        return
    e = error(r)
    assert e["code"] == "E_CLAIMED"
    assert said in e["message"] and "--force" in e["hint"]


def test_a_claim_stops_other_peoples_drafts_replies_and_sends(cli: Cli, kim: Person,
                                                              sam: Person, world: SandboxWorld,
                                                              clock: Clock) -> None:
    alice_wrote(cli, world, clock)
    before = sam.draft("alice", "Hi Alice, Sam here: Saturday at 10.")  # before the claim
    assert sam.approve(before).exit_code == 0
    r = kim("claim", "alice")
    assert r.exit_code == 0 and r.stdout == ""
    assert "@alice: claimed by kim until 2026-03-02 12:30 (UTC)" in r.stderr

    claimed(sam("draft", "alice", "Hi Alice!", "--json"), "kim", "2026-03-02 12:30")
    # before any editor opens: nobody writes a DM that cannot go
    claimed(cli("draft", "alice", "--json", env={"DMTOOL_OPERATOR": "sam", "VISUAL": "false"}),
            "kim", "2026-03-02 12:30")
    claimed(sam("reply", "alice", "Hi Alice!", "--yes", "--json"), "kim", "2026-03-02 12:30")
    claimed(sam.send(before), "kim", "2026-03-02 12:30")  # a draft that is not the holder's
    assert cli("drafts", "list", "--json").json()[0]["id"] == before  # nothing drafted
    assert outbound(world, ALICE) == []
    refusals = [e for e in log(cli) if e["codes"] == ["E_CLAIMED"]]
    assert [(e["detail"]["command"], e["actor"], e["detail"]["holder"]) for e in refusals] == [
        ("send", "sam", "kim"), ("reply", "sam", "kim"), ("draft", "sam", "kim"),
        ("draft", "sam", "kim")]

    # the holder works on; an approver may approve and send the holder's own draft
    mine = kim.draft("alice", THANKS)
    assert sam.approve(mine).exit_code == 0
    assert sam.send(mine).exit_code == 0
    assert outbound(world, ALICE) == [THANKS]


def test_force_goes_past_a_claim_and_is_logged(cli: Cli, kim: Person, sam: Person,
                                               world: SandboxWorld, clock: Clock) -> None:
    alice_wrote(cli, world, clock)
    assert kim("claim", "alice", "--minutes", "60").exit_code == 0
    did = sam.draft("alice", THANKS, "--force")
    assert show(cli, did)["author"] == "sam"
    assert kim.approve(did).exit_code == 0
    claimed(sam.send(did), "kim", "2026-03-02 13:00")
    r = sam.send(did, "--force")
    assert r.exit_code == 0, r
    assert outbound(world, ALICE) == [THANKS]
    overrides = [e for e in log(cli) if e["action"] == "claim_overridden"]
    assert [(e["actor"], e["detail"]["command"], e["detail"]["holder"], e["draft_id"])
            for e in overrides] == [("sam", "send", "kim", did), ("sam", "draft", "kim", did)]
    assert all(e["detail"]["until"] == "2026-03-02T13:00:00.000Z" for e in overrides)


def test_drafting_renews_the_claim_and_an_expired_claim_is_none(cli: Cli, kim: Person,
                                                                sam: Person, world: SandboxWorld,
                                                                clock: Clock) -> None:
    alice_wrote(cli, world, clock)
    assert kim("claim", "alice", "--minutes", "10").exit_code == 0
    clock.advance(minutes=8)
    kim.draft("alice", THANKS)  # renews: ten more minutes from now
    [row] = inbox(sam)
    assert (row["claimed_by"], row["claimed_until"]) == ("kim", "2026-03-02T12:18:00.000Z")
    clock.advance(minutes=5)
    claimed(sam("draft", "alice", "Hi Alice!", "--json"), "kim", "2026-03-02 12:18")
    clock.advance(minutes=6)  # 12:19: over
    assert inbox(sam)[0]["claimed_by"] is None
    assert sam.draft("alice", "Hi Alice, Sam here.") > 0
    # a new claim by someone else replaces the expired one
    assert sam("claim", "alice").exit_code == 0
    assert inbox(kim)[0]["claimed_by"] == "sam"


def test_claim_and_release_between_two_people(cli: Cli, kim: Person, sam: Person,
                                              world: SandboxWorld, clock: Clock) -> None:
    alice_wrote(cli, world, clock)
    assert kim("claim", "alice").exit_code == 0
    claimed(sam("claim", "alice"), "kim", "2026-03-02 12:30")
    claimed(sam("release", "alice"), "kim", "2026-03-02 12:30")
    assert kim("claim", "alice", "--minutes", "45").exit_code == 0  # again: extended
    assert inbox(kim)[0]["claimed_until"] == "2026-03-02T12:45:00.000Z"
    r = kim("release", "alice")
    assert r.exit_code == 0 and "@alice: released" in r.stderr
    assert inbox(kim)[0]["claimed_by"] is None
    assert "was not claimed" in kim("release", "alice").stderr
    # taking over and releasing someone else's claim need --force, and are logged
    assert kim("claim", "alice").exit_code == 0
    assert sam("claim", "alice", "--force").exit_code == 0
    assert inbox(kim)[0]["claimed_by"] == "sam"
    assert kim("release", "alice", "--force").exit_code == 0
    entries = [(e["action"], e["actor"], e["detail"]) for e in log(cli)
               if e["action"] in ("claimed", "released")]
    assert entries[0] == ("released", "kim", {"holder": "sam"})
    assert entries[1][:2] == ("claimed", "sam") and entries[1][2]["took_over"] == "kim"


@pytest.mark.parametrize("minutes", ["0", "1441", "-5", "x", "١"])
def test_claim_minutes_are_bounded(kim: Person, world: SandboxWorld, minutes: str) -> None:
    assert kim("contacts", "add", "alice").exit_code == 0
    r = kim("claim", "alice", "--minutes", minutes)
    assert r.exit_code == 2, r
    assert "Traceback" not in r.stderr


def test_claiming_an_unknown_contact_is_an_error(kim: Person, world: SandboxWorld) -> None:
    r = kim("claim", "nobody")
    assert r.exit_code == 1 and "no contact @nobody" in r.stderr


def test_inbox_shows_who_claimed_what_and_filters(cli: Cli, kim: Person, sam: Person,
                                                  world: SandboxWorld, clock: Clock) -> None:
    world.incoming_dm(ALICE, "Hi, a question", at=clock.ago(minutes=30))
    world.incoming_dm(BOB, "Hello there", at=clock.ago(minutes=20))
    sync(cli)
    assert kim("claim", "alice").exit_code == 0
    rows = {r["handle"]: r for r in inbox(sam)}
    assert (rows["alice"]["claimed_by"], rows["bob"]["claimed_by"]) == ("kim", None)
    assert [r["handle"] for r in inbox(kim, "--mine")] == ["alice"]
    assert inbox(sam, "--mine") == []
    assert [r["handle"] for r in inbox(sam, "--unclaimed")] == ["bob"]
    assert [r["handle"] for r in inbox(kim, "--mine", "--waiting")] == ["alice"]
    r = kim("inbox", "--mine", "--unclaimed")
    assert r.exit_code == 2
    # the text view: a column once someone has claimed one of those listed
    table = sam("inbox").stdout.splitlines()
    assert any(line.startswith("reply\t@alice") and line.endswith("kim until 2026-03-02 12:30")
               for line in table), table
    nobody = cli("inbox", "--unclaimed").stdout  # the column is not shown without claims
    assert all(not line.endswith("12:30") for line in nobody.splitlines())
