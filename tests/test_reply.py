"""`dmtool reply`: draft, approve and send in one step, only where they wrote
last, through the same state machine as `draft`, `review` and `send`.

Off a terminal here (the in-process runner has no terminal); the prompt and
the editor are driven on a pseudo-terminal in tests/test_review_pty.py.
"""

from __future__ import annotations

import json
from typing import Any

from dmtool.x.sandbox import SandboxWorld
from tests.xworld import ALICE, BOB, ME, Cli, Clock, sync

THANKS = "Thanks Alice, the workshop starts at 10 on Saturday."


def outbound(world: SandboxWorld, user_id: str) -> list[dict[str, Any]]:
    return [e for e in world.dms_with(user_id) if e.get("sender_id") == ME]


def alice_wrote(cli: Cli, world: SandboxWorld, clock: Clock,
                text: str = "Hi! When does the workshop start?") -> None:
    world.incoming_dm(ALICE, text, at=clock.ago(minutes=30))
    sync(cli)


def actions_for(cli: Cli, draft_id: int) -> list[str]:
    """The audit entries of one draft, oldest first."""
    return [e["action"] for e in reversed(cli("log", "--json").json()) if e["draft_id"] == draft_id]


def error(r: Any) -> dict[str, Any]:
    return json.loads(r.stderr.strip().splitlines()[-1])["error"]  # type: ignore[no-any-return]


def test_reply_sends_once_through_draft_approval_and_send(cli: Cli, world: SandboxWorld,
                                                          clock: Clock) -> None:
    alice_wrote(cli, world, clock)
    r = cli("reply", "@alice", THANKS, "--yes", "--json")
    assert r.exit_code == 0, r
    data = r.json()
    # the JSON of `send`
    assert set(data) >= {"id", "handle", "status", "dm_event_id", "dm_conversation_id"}
    assert (data["handle"], data["status"], data["declined"]) == ("alice", "sent", False)
    sent = outbound(world, ALICE)
    assert [e["text"] for e in sent] == [THANKS] and data["dm_event_id"] == sent[0]["id"]
    assert actions_for(cli, data["id"]) == ["drafted", "approved", "sent"]
    drafted = next(e for e in cli("log", "--json").json() if e["action"] == "drafted")
    assert drafted["detail"]["command"] == "reply"

    # now our message is the last one: a second reply is not a reply
    r = cli("reply", "alice", "And the address is on the website.", "--yes", "--json")
    assert r.exit_code == 2 and r.stdout == ""
    assert error(r)["code"] == "E_NOT_A_REPLY"
    assert "dmtool draft alice" in error(r)["hint"]
    assert len(outbound(world, ALICE)) == 1
    human = cli("reply", "alice", "And the address is on the website.", "--yes")
    assert human.stdout == "" and "not waiting for a reply" in human.stderr


def test_reply_is_refused_for_a_first_contact(cli: Cli, world: SandboxWorld) -> None:
    assert cli("contacts", "add", "bob", "--name", "Bob B").exit_code == 0
    assert cli("contacts", "engage", "bob", "--evidence", "asked at the booth to be DMed").exit_code == 0
    r = cli("reply", "bob", "Hi Bob, I'm Ann from the booth.", "--yes")
    assert r.exit_code == 2
    assert "no messages with them" in r.stderr and "dmtool draft bob" in r.stderr
    assert cli("drafts", "list", "--json").json() == []


def test_their_message_counts_even_after_our_autoack(cli: Cli, world: SandboxWorld,
                                                     clock: Clock) -> None:
    assert cli("config", "set", "autoack.text",
               "Thanks for your message! I will answer within a day. – Ann").exit_code == 0
    assert cli("config", "set", "autoack.enabled", "true").exit_code == 0
    sync(cli)
    world.incoming_dm(ALICE, "Hello, is the workshop still open?", at=clock.ago(minutes=5))
    assert sync(cli)["autoacks_sent"] == 1  # the last message is now our acknowledgement
    r = cli("reply", "alice", THANKS, "--yes", "--json")
    assert r.exit_code == 0, r
    assert [e["text"] for e in outbound(world, ALICE)][-1] == THANKS


def test_off_a_terminal_it_needs_yes_and_drafts_nothing_without(cli: Cli, world: SandboxWorld,
                                                              clock: Clock) -> None:
    alice_wrote(cli, world, clock)
    r = cli("reply", "alice", THANKS)
    assert r.exit_code == 2 and "--yes" in r.stderr
    assert cli("drafts", "list", "--json").json() == [] and outbound(world, ALICE) == []


def test_warnings_need_ack_warnings_off_a_terminal(cli: Cli, world: SandboxWorld,
                                                  clock: Clock) -> None:
    alice_wrote(cli, world, clock)
    loud = "THANKS ALICE!!! THE WORKSHOP STARTS AT TEN ON SATURDAY"
    r = cli("reply", "alice", loud, "--yes")
    assert r.exit_code == 2
    assert "L011" in r.stderr and "--ack-warnings" in r.stderr
    assert cli("drafts", "list", "--json").json() == []  # nothing drafted: run it again with the flag
    r = cli("reply", "alice", loud, "--yes", "--ack-warnings", "--json")
    assert r.exit_code == 0, r
    shown = cli("drafts", "show", str(r.json()["id"]), "--json").json()
    assert (shown["status"], shown["acknowledged"]) == ("sent", ["L011"])


def test_a_lint_error_stops_it_and_keeps_the_draft(cli: Cli, world: SandboxWorld,
                                                  clock: Clock) -> None:
    alice_wrote(cli, world, clock)
    r = cli("reply", "alice", "Thanks [NAME], see you Saturday.", "--yes", "--ack-warnings",
            "--json")
    assert r.exit_code == 3 and r.stdout == ""
    err = error(r)
    assert err["code"] == "E_LINT" and "kept as draft" in err["hint"]
    drafts = cli("drafts", "list", "--json").json()
    assert [(d["status"], d["text"]) for d in drafts] == [("draft", "Thanks [NAME], see you Saturday.")]
    assert outbound(world, ALICE) == []
    assert actions_for(cli, drafts[0]["id"]) == ["drafted", "refused"]
    refused = next(e for e in cli("log", "--json").json() if e["action"] == "refused")
    assert refused["detail"]["command"] == "reply"


def test_a_template_fills_the_reply(cli: Cli, world: SandboxWorld, clock: Clock) -> None:
    alice_wrote(cli, world, clock)
    assert cli("templates", "add", "when", "Thanks {first_name}, it starts at {time}.").exit_code == 0
    r = cli("reply", "alice", "--template", "when", "--var", "time=10", "--yes", "--json")
    assert r.exit_code == 0, r
    assert [e["text"] for e in outbound(world, ALICE)] == ["Thanks Alice, it starts at 10."]


def test_a_reply_that_only_has_to_wait_is_kept_for_later(cli: Cli, world: SandboxWorld,
                                                        clock: Clock) -> None:
    """X paused sending: a reply is kept as a draft (exit 5) without asking X,
    and goes out with `review` and `send` once the pause is over."""
    alice_wrote(cli, world, clock)
    world.fail_next(429, method="POST", reset_in=600)
    first = cli("reply", "alice", "A first answer.", "--yes", "--json")
    assert first.exit_code == 5  # X's 429 met the send: that draft stays approved
    requests = world.requests_count()
    r = cli("reply", "alice", "Yes, behind the studio.", "--yes", "--json")
    assert r.exit_code == 5
    assert error(r)["code"] == "E_RATE_LIMITED" and "kept as draft" in error(r)["hint"]
    assert world.requests_count() == requests  # refused locally, before the pause ends
    kept = {d["text"]: d for d in cli("drafts", "list", "--json").json()}
    assert kept["Yes, behind the studio."]["status"] == "draft"
    assert kept["A first answer."]["status"] == "approved"
    assert outbound(world, ALICE) == []
    clock.advance(minutes=11)
    did = str(kept["Yes, behind the studio."]["id"])
    assert cli("review", did, "--approve").exit_code == 0
    assert cli("send", did, "--yes").exit_code == 0
    assert [e["text"] for e in outbound(world, ALICE)] == ["Yes, behind the studio."]


def test_refused_by_the_policy_before_anything_is_drafted(cli: Cli, world: SandboxWorld,
                                                         clock: Clock) -> None:
    world.incoming_dm(BOB, "STOP", at=clock.ago(minutes=5))
    sync(cli)
    r = cli("reply", "bob", "Sorry to hear that, Bob.", "--yes", "--json")
    assert r.exit_code == 3 and error(r)["code"] == "E_OPTED_OUT"
    assert cli("drafts", "list", "--json").json() == [] and outbound(world, BOB) == []
