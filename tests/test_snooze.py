"""`dmtool snooze` and `unsnooze` (issue 12, point 5): "they said they'd get
back to me next week"."""

from __future__ import annotations

from typing import Any

from dmtool.store import contacts as cstore
from dmtool.store import open_store
from dmtool.store.migrations import SNOOZE_MIGRATION
from dmtool.x.sandbox import SandboxWorld
from tests.xworld import ALICE, BOB, Cli, Clock, sync


def inbox(cli: Cli, *args: str) -> list[dict[str, Any]]:
    r = cli("inbox", "--json", *args)
    assert r.exit_code == 0, r
    return r.json()  # type: ignore[no-any-return]


def handles(items: list[dict[str, Any]]) -> list[str]:
    return [i["handle"] for i in items]


def waiting(cli: Cli) -> list[str]:
    return [w["handle"] for w in cli("digest", "--json", "--peek").json()["waiting"]]


def two_waiting(world: SandboxWorld, clock: Clock, cli: Cli) -> None:
    world.incoming_dm(ALICE, "let me ask my team and get back to you next week",
                      at=clock.ago(hours=2))
    world.incoming_dm(BOB, "question about pricing", at=clock.ago(hours=1))
    sync(cli)


def test_snooze_hides_until_then(cli: Cli, world: SandboxWorld, clock: Clock) -> None:
    two_waiting(world, clock, cli)
    r = cli("snooze", "@alice", "1w")
    assert r.exit_code == 0 and r.stdout == "", r
    assert "@alice: snoozed until 2026-03-09 12:00 (UTC), or until they write" in r.stderr
    assert handles(inbox(cli)) == ["bob"]
    assert handles(inbox(cli, "--all")) == ["bob"]
    assert waiting(cli) == ["bob"]
    [s] = inbox(cli, "--snoozed")
    assert (s["handle"], s["snoozed_until"], s["needs_reply"]) == (
        "alice", "2026-03-09T12:00:00.000Z", True)
    assert "2026-03-09 12:00" in cli("inbox", "--snoozed").stdout
    assert [i["snoozed_until"] for i in inbox(cli)] == [None]
    clock.advance(days=7, seconds=1)  # the week is over: back, and waiting again
    assert handles(inbox(cli)) == ["bob", "alice"]
    assert waiting(cli) == ["alice", "bob"]
    assert inbox(cli, "--snoozed") == [] and inbox(cli)[0]["snoozed_until"] is None


def test_they_write_again_and_the_snooze_ends(cli: Cli, world: SandboxWorld,
                                              clock: Clock) -> None:
    two_waiting(world, clock, cli)
    assert cli("snooze", "alice", "until", "2026-03-20").exit_code == 0
    clock.advance(hours=1)
    # a DM sent before the snooze, delivered late, does not end it ...
    world.incoming_dm(ALICE, "(sent before you snoozed)", at=clock.ago(hours=2))
    sync(cli)
    assert handles(inbox(cli)) == ["bob"]
    # ... a new one does
    world.incoming_dm(ALICE, "we're in! can we talk tomorrow?", at=clock.ago(minutes=1))
    sync(cli)
    assert handles(inbox(cli)) == ["alice", "bob"] and inbox(cli, "--snoozed") == []
    assert "alice" in waiting(cli)


def test_unsnooze(cli: Cli, world: SandboxWorld, clock: Clock) -> None:
    two_waiting(world, clock, cli)
    assert cli("snooze", "alice", "3d").exit_code == 0
    r = cli("unsnooze", "alice")
    assert r.exit_code == 0 and r.stdout == "" and "back in the inbox" in r.stderr
    assert handles(inbox(cli)) == ["bob", "alice"]
    r = cli("unsnooze", "alice")
    assert r.exit_code == 0 and "was not snoozed" in r.stderr


def test_until_a_date_is_read_in_the_display_zone(cli: Cli, world: SandboxWorld, clock: Clock,
                                                  monkeypatch: Any) -> None:
    two_waiting(world, clock, cli)
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    r = cli("snooze", "alice", "until", "2026-03-10")
    assert "until 2026-03-10 00:00 (Asia/Tokyo)" in r.stderr, r
    assert inbox(cli, "--snoozed")[0]["snoozed_until"] == "2026-03-09T15:00:00.000Z"
    assert cli("snooze", "alice", "until", "2026-03-10", "09:30").exit_code == 0
    assert inbox(cli, "--snoozed")[0]["snoozed_until"] == "2026-03-10T00:30:00.000Z"
    assert cli("snooze", "alice", "until", "2026-03-10T09:30Z").exit_code == 0
    assert inbox(cli, "--snoozed")[0]["snoozed_until"] == "2026-03-10T09:30:00.000Z"


def test_bad_snoozes_are_refused_and_change_nothing(cli: Cli, world: SandboxWorld,
                                                    clock: Clock) -> None:
    two_waiting(world, clock, cli)
    assert cli("contacts", "add", "zoe").exit_code == 0
    for args, code in ((["alice", "until", "2026-03-01"], 2),  # the past
                       (["alice", "until"], 2), (["alice", "soon"], 2), (["alice", "0m"], 2),
                       (["alice", "3d", "4h"], 2), (["alice", "until", "someday"], 2),
                       (["nobody", "3d"], 1),
                       (["zoe", "3d"], 1)):  # a contact, but no conversation yet
        r = cli("snooze", *args)
        assert r.exit_code == code and r.stderr.startswith("error: "), (args, r)
    assert inbox(cli, "--snoozed") == []


def test_a_store_from_before_the_snooze_migration_upgrades(new_store: Any) -> None:
    old = new_store(migrate_to=SNOOZE_MIGRATION - 1)
    with old.tx() as conn:
        c, _ = cstore.upsert_x_user(conn, "500", "ann", "Ann", now="2026-03-01T10:00:00.000Z")
        # as the release before wrote them (add_message knows the new columns)
        conn.execute("INSERT INTO messages (event_id, conversation_id, contact_id, direction, "
                     "text, at, source, recorded_at) VALUES ('e1', '500-1000', ?, 'in', 'hello', "
                     "'2026-03-01T10:00:00.000Z', 'sync', '2026-03-01T10:00:00.000Z')", (c.id,))
        conn.execute("INSERT INTO conversations (id, contact_id) VALUES ('500-1000', ?)", (c.id,))
    old.close()
    new = open_store(old.location)
    assert new.schema_version() >= SNOOZE_MIGRATION
    row = new.conn.execute("SELECT snoozed_until, snoozed_at FROM conversations").fetchone()
    assert tuple(row) == (None, None)
    assert new.problems() == []  # every index there (conversations_human, _snoozed, contacts_review)
    from dmtool.store.conversations import InboxQuery, inbox_rows

    [r] = inbox_rows(new.conn, InboxQuery(), now="2026-03-02T00:00:00.000Z", limit=10)
    assert (r["handle"], r["waiting"], r["last_text"]) == ("ann", 1, "hello")
