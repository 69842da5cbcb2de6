"""Auto-acknowledgement during sync (policy.md §6), end to end on the sandbox."""

from __future__ import annotations

from typing import Any

from dmtool.x.sandbox import SandboxWorld
from tests.xworld import ALICE, BOB, SAM, Cli, Clock, sync

ACK = "Thanks for your message! We read every DM and will reply within a day. – Alex"


def outbound(world: SandboxWorld, user_id: str) -> list[dict[str, Any]]:
    return [e for e in world.dms_with(user_id) if e.get("sender_id") != user_id]


def enable(cli: Cli, text: str = ACK) -> None:
    assert cli("config", "set", "autoack.text", text).exit_code == 0
    assert cli("config", "set", "autoack.enabled", "true").exit_code == 0


def test_off_by_default(cli: Cli, world: SandboxWorld, clock: Clock) -> None:
    world.incoming_dm(ALICE, "hello, question about pricing", at=clock.ago(minutes=5))
    assert sync(cli)["autoacks_sent"] == 0
    assert outbound(world, ALICE) == []


def test_new_conversation_gets_one_ack_once(cli: Cli, world: SandboxWorld, clock: Clock) -> None:
    enable(cli)
    sync(cli)
    world.incoming_dm(ALICE, "hello, question about pricing", at=clock.ago(minutes=5))
    data = sync(cli)
    assert data["autoacks_sent"] == 1
    sent = outbound(world, ALICE)
    assert [e["text"] for e in sent] == [ACK]
    # recorded like any send: a sent draft, an outbound message, an audit entry
    drafts = cli("drafts", "list", "--json").json()
    assert [(d["status"], d["text"]) for d in drafts] == [("sent", ACK)]
    assert "sent" in [e["action"] for e in cli("log", "--json").json()]
    # a second message in the same conversation: no second ack
    clock.advance(minutes=30)
    world.incoming_dm(ALICE, "also, do you ship to Canada?", at=clock.ago(minutes=1))
    assert sync(cli)["autoacks_sent"] == 0
    assert len(outbound(world, ALICE)) == 1


def test_existing_conversation_and_opt_out_get_none(cli: Cli, world: SandboxWorld,
                                                     clock: Clock) -> None:
    world.incoming_dm(BOB, "hi", at=clock.ago(days=3))
    world.outgoing_dm(BOB, "hello Bob", at=clock.ago(days=3, minutes=-5))
    sync(cli)
    enable(cli)
    world.incoming_dm(BOB, "follow-up question", at=clock.ago(minutes=2))
    world.incoming_dm(SAM, "STOP", at=clock.ago(minutes=1))
    assert sync(cli)["autoacks_sent"] == 0
    assert len(outbound(world, BOB)) == 1  # only the old manual reply
    assert outbound(world, SAM) == []
    skipped = [e for e in cli("log", "--json").json() if e["action"] == "autoack_skipped"]
    assert {e["handle"] for e in skipped} == {"bob", "sam"}


def test_promotional_ack_text_is_never_sent(cli: Cli, world: SandboxWorld, clock: Clock) -> None:
    promo = "Thanks! Buy now: limited time discount, 50% off, act now!"
    r = cli("config", "set", "autoack.text", promo)  # refused when set (config.py) ...
    assert r.exit_code == 1 and "L010" in r.stderr
    # ... and a hand-edited config.toml still meets the gate at every acknowledgement
    from dmtool.paths import Paths

    f = Paths.resolve("default").config_file
    f.write_text(f.read_text() + f'[autoack]\nenabled = true\ntext = "{promo}"\n')
    assert cli("config", "get", "autoack.text").stdout.strip() == promo
    sync(cli)
    world.incoming_dm(ALICE, "hello", at=clock.ago(minutes=5))
    assert sync(cli)["autoacks_sent"] == 0
    assert outbound(world, ALICE) == []


def test_first_sync_acknowledges_nothing(cli: Cli, world: SandboxWorld, clock: Clock) -> None:
    enable(cli)
    world.incoming_dm(ALICE, "hello, question about pricing", at=clock.ago(minutes=5))
    assert sync(cli)["autoacks_sent"] == 0  # history, not news
    assert outbound(world, ALICE) == []


def test_backlog_over_several_pages_sees_older_stop_and_history(
        cli: Cli, world: SandboxWorld, clock: Clock) -> None:
    """Pages arrive newest first: the decision must wait for the whole walk."""
    enable(cli)
    assert cli("config", "set", "sync.first_page_size", "1").exit_code == 0
    sync(cli)
    world.incoming_dm(SAM, "STOP", at=clock.ago(days=5))
    world.incoming_dm(BOB, "hi, quick question", at=clock.ago(hours=5))
    world.outgoing_dm(BOB, "sure, go ahead", at=clock.ago(hours=4))
    for i in range(4):  # a backlog: several pages before the older events
        world.incoming_dm(ALICE, f"filler {i}", at=clock.ago(hours=3, minutes=-i))
    world.incoming_dm(SAM, "thanks, bye", at=clock.ago(hours=2))
    world.incoming_dm(BOB, "and one more thing", at=clock.ago(hours=1))
    data = sync(cli)
    assert outbound(world, SAM) == []            # opted out days ago
    assert len(outbound(world, BOB)) == 1        # mid-conversation: only our manual reply
    assert len(outbound(world, ALICE)) == 1      # a new conversation: one ack, not four
    assert data["autoacks_sent"] == 1


def test_an_ack_is_not_a_reply_the_customer_still_waits(cli: Cli, world: SandboxWorld,
                                                         clock: Clock) -> None:
    enable(cli)
    sync(cli)
    world.incoming_dm(ALICE, "my order never arrived", at=clock.ago(minutes=5))
    assert sync(cli)["autoacks_sent"] == 1
    item = cli("inbox", "--json").json()[0]
    assert item["handle"] == "alice" and item["needs_reply"] is True
    assert "@alice" in cli("digest", "--format", "markdown", "--peek").stdout.split(
        "Waiting for your reply")[1]


def test_the_same_ack_text_goes_to_every_new_conversation(cli: Cli, world: SandboxWorld,
                                                          clock: Clock) -> None:
    """Found in review: after two acks the fixed text tripped the similarity
    warning, and refused acks were left behind as approved drafts."""
    from tests.xworld import CAROL, DAVE

    enable(cli)
    sync(cli)
    for uid in (ALICE, BOB, CAROL, DAVE):
        clock.advance(minutes=10)
        world.incoming_dm(uid, "hello there", at=clock.ago(minutes=1))
        assert sync(cli)["autoacks_sent"] == 1
    assert [d["status"] for d in cli("drafts", "list", "--json").json()] == ["sent"] * 4


def test_an_ack_cut_short_is_settled_by_the_next_sync(cli: Cli, world: SandboxWorld,
                                                      clock: Clock) -> None:
    enable(cli)
    sync(cli)
    world.incoming_dm(ALICE, "hello", at=clock.ago(minutes=5))
    world.timeout_after_send()
    r = cli("sync", "--json")
    assert [d["status"] for d in cli("drafts", "list", "--json").json()] == ["unknown"], r
    clock.advance(minutes=5)
    sync(cli)
    assert [d["status"] for d in cli("drafts", "list", "--json").json()] == ["sent"]
    assert len(outbound(world, ALICE)) == 1
