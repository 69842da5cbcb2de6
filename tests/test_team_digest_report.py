"""Per person in the digest and the report (issue 15 point 8): `digest --mine`,
digest checkpoints per operator (`unread` stays shared), and `report
--by-operator` in the chart, the text and --json. Plus the schema upgrade
that brings authors, approvals bound to their text and claims."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dmtool.store import contacts as cstore
from dmtool.store import messages as mstore
from dmtool.store import open_store, traffic
from dmtool.store.migrations import APPROVALS_MIGRATION
from dmtool.x.sandbox import SandboxWorld
from tests.test_drafts import set_state
from tests.test_team_approvals import Person
from tests.xworld import ALICE, BOB, CAROL, Cli, Clock, sync


@pytest.fixture
def kim(cli: Cli) -> Person:
    return Person(cli, "kim")


@pytest.fixture
def sam(cli: Cli) -> Person:
    return Person(cli, "sam")


def digest(person: Person, *args: str) -> dict[str, Any]:
    r = person("digest", "--json", *args)
    assert r.exit_code == 0, r
    return r.json()  # type: ignore[no-any-return]


def three_wrote(cli: Cli, world: SandboxWorld, clock: Clock) -> None:
    for uid, text, minutes in ((ALICE, "Hi, a question about Saturday", 40),
                               (BOB, "Hello, is the shop open?", 30),
                               (CAROL, "Good morning!", 20)):
        world.incoming_dm(uid, text, at=clock.ago(minutes=minutes))
    sync(cli)


def test_digest_mine_is_what_i_claimed_or_drafted(cli: Cli, kim: Person, sam: Person,
                                                  world: SandboxWorld, clock: Clock) -> None:
    three_wrote(cli, world, clock)
    assert kim("claim", "alice").exit_code == 0
    did = kim.draft("bob", "Hi Bob, yes: 9 to 5 today.")
    text = kim("digest", "--mine", "--peek").stdout
    assert "Claimed by you\n  @alice until 2026-03-02 12:30" in text
    assert f'draft {did} to @bob: waiting for approval: "Hi Bob, yes: 9 to 5 today."' in text
    assert "@carol" not in text
    assert "Hi Bob, yes" not in kim("digest", "--mine", "--peek", "--no-text").stdout
    mine = digest(kim, "--mine")
    assert {i["handle"] for i in mine["inbound"]} == {"alice", "bob"}
    assert {w["handle"] for w in mine["waiting"]} == {"alice", "bob"}
    assert mine["mine"]["operator"] == "kim"
    assert mine["mine"]["claimed"] == [{"handle": "alice", "until": "2026-03-02T12:30:00.000Z"}]
    assert [(d["id"], d["handle"], d["status"]) for d in mine["mine"]["drafts"]] == [
        (did, "bob", "draft")]
    assert digest(sam, "--mine")["inbound"] == []  # Sam has nothing of his own
    # the full digest is everyone's, and has no "mine"
    full = digest(sam)
    assert {i["handle"] for i in full["inbound"]} == {"alice", "bob", "carol"}
    assert "mine" not in full



def test_each_person_has_a_digest_checkpoint_and_unread_is_shared(
        cli: Cli, kim: Person, sam: Person, world: SandboxWorld, clock: Clock) -> None:
    three_wrote(cli, world, clock)
    assert digest(kim)["window"] == "first_digest"
    clock.advance(minutes=10)
    again = digest(kim)
    assert (again["window"], again["inbound"]) == ("last_digest", [])
    # Kim's digests did not eat Sam's news, nor his own --mine's
    sams = digest(sam)
    assert sams["window"] == "first_digest" and len(sams["inbound"]) == 3
    assert digest(kim, "--mine")["window"] == "first_digest"
    assert digest(kim, "--mine")["window"] == "last_digest"
    # unread is the conversation's, not a person's: Kim reading it reads it for all
    assert kim("thread", "alice").exit_code == 0
    unread = {r["handle"]: r["unread"] for r in sam("inbox", "--json").json()}
    assert unread == {"alice": 0, "bob": 1, "carol": 1}


def test_the_one_checkpoint_of_before_goes_to_the_first_to_run_a_digest(
        cli: Cli, kim: Person, sam: Person, world: SandboxWorld, clock: Clock) -> None:
    three_wrote(cli, world, clock)
    set_state("digest_at", "2026-03-02T11:35:00.000Z")  # as earlier versions kept it
    first = digest(kim)
    assert (first["window"], first["since"]) == ("last_digest", "2026-03-02T11:35:00.000Z")
    assert {i["handle"] for i in first["inbound"]} == {"alice", "bob", "carol"}
    assert digest(sam)["window"] == "first_digest"  # it was Kim's to take
    peeked = digest(kim, "--peek")
    assert peeked["window"] == "last_digest" and peeked["since"] == "2026-03-02T12:00:00.000Z"


def test_report_by_operator(cli: Cli, kim: Person, sam: Person, world: SandboxWorld,
                            clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    sync(cli)
    world.incoming_dm(ALICE, "When does it start?", at=clock.ago(minutes=30))
    world.incoming_dm(BOB, "Is the shop open?", at=clock.ago(minutes=10))
    world.incoming_dm(CAROL, "Good morning!", at=clock.ago(minutes=60))
    sync(cli)
    # Kim answers Alice after 30 minutes and Carol after an hour (reply: drafts,
    # approves and sends); Sam writes to Bob, Kim approves, Sam sends: 10 minutes.
    assert kim("reply", "alice", "At 10, Alice.", "--yes").exit_code == 0
    assert kim("reply", "carol", "Good morning Carol!", "--yes").exit_code == 0
    did = sam.draft("bob", "Yes Bob, until 5.")
    assert kim.approve(did).exit_code == 0
    assert sam.send(did).exit_code == 0

    r = cli("report", "--days", "1", "--by-operator", "--json")
    assert r.exit_code == 0, r
    rows = {o["operator"]: o for o in r.json()["by_operator"]}
    assert rows == {
        "kim": {"operator": "kim", "sent": 2, "approved": 3,
                "first_reply": {"answered": 2, "median_seconds": 2700.0}},
        "sam": {"operator": "sam", "sent": 1, "approved": 0,
                "first_reply": {"answered": 1, "median_seconds": 600.0}},
    }
    assert "by_operator" not in cli("report", "--days", "1", "--json").json()
    plain = cli("report", "--days", "1", "--by-operator").stdout.splitlines()
    assert "operator\tkim\t2\t3\t2\t2700" in plain and "operator\tsam\t1\t0\t1\t600" in plain
    assert not any(line.startswith("operator") for line in cli("report", "--days", "1").stdout
                   .splitlines())
    monkeypatch.setattr("dmtool.output.stdout_is_tty", lambda: True)
    chart = cli("report", "--days", "1", "--by-operator").stdout
    assert "By operator" in chart
    kim_line = next(line for line in chart.splitlines() if line.startswith("kim"))
    assert kim_line.split()[:2] == ["kim", "2"] and kim_line.split()[-1] == "45m"


# --- the schema upgrade ---------------------------------------------------------------------


def test_a_store_from_before_the_team_migration_upgrades(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = open_store(path, migrate_to=APPROVALS_MIGRATION - 1)
    with old.tx() as conn:
        c, _ = cstore.upsert_x_user(conn, "500", "ann", "Ann", now="2026-03-01T10:00:00.000Z")
        mstore.add_message(conn, event_id="e1", conversation_id="500-1000", contact_id=c.id,
                           direction="in", text="hello", at="2026-03-01T10:00:00.000Z",
                           source="sync", now="2026-03-01T10:00:00.000Z")
        for did, status, approved in ((1, "approved", "2026-03-01T11:00:00.000Z"),
                                      (2, "draft", None)):
            conn.execute("INSERT INTO drafts (id, contact_id, text, status, created_at, "
                         "updated_at, approved_at, approved_text) VALUES (?, ?, 'hi Ann', ?, "
                         "'2026-03-01T10:30:00.000Z', '2026-03-01T10:30:00.000Z', ?, ?)",
                         (did, c.id, status, approved, approved and "hi Ann"))
        for at, action, did, who in (("2026-03-01T10:30:00.000Z", "drafted", 1, "kim"),
                                     ("2026-03-01T11:00:00.000Z", "approved", 1, "sam"),
                                     ("2026-03-01T10:30:00.000Z", "drafted", 2, "sam")):
            conn.execute("INSERT INTO audit (at, action, handle, draft_id, actor) "
                         "VALUES (?, ?, 'ann', ?, ?)", (at, action, did, who))
    old.close()

    new = open_store(path)
    assert new.conn.execute("PRAGMA user_version").fetchone()[0] >= APPROVALS_MIGRATION
    rows = new.conn.execute("SELECT id, author, approved_by, sent_by, approved_message_mark "
                            "FROM drafts ORDER BY id").fetchall()
    assert [tuple(r) for r in rows] == [(1, "kim", "sam", None, 1), (2, "sam", None, None, None)]
    assert new.conn.execute("SELECT count(*) FROM claims").fetchone()[0] == 0
    # the approval given before the upgrade: what came after it moves the conversation
    assert traffic.since_approval(new.conn, 1) == []
    with new.tx() as conn:
        mstore.add_message(conn, event_id="e2", conversation_id="500-1000", contact_id=c.id,
                           direction="in", text="still there?", at="2026-03-01T10:50:00.000Z",
                           source="sync", now="2026-03-01T12:00:00.000Z")
    [moved] = traffic.since_approval(new.conn, 1)
    assert (moved.kind, moved.text) == ("inbound", "still there?")
    new.close()
