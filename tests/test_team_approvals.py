"""Two people on one store (issue 15 points 2, 3 and 5): who wrote, approved and
sent each draft; a second pair of eyes (`team.approval`); approvals bound to
their text; two approved drafts for one person; `reply` under "all"; and the
traffic cop. Kim and Sam are two `DMTOOL_OPERATOR` values on the same store,
end to end through the command line, on the sandbox X."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import pytest

from dmtool.x.sandbox import SandboxWorld
from tests.conftest import Result
from tests.xworld import ALICE, BOB, ME, Cli, Clock, sync

THANKS = "Thanks Alice, the workshop starts at 10 on Saturday."


class Person:
    """One operator at the shared store."""

    def __init__(self, cli: Cli, name: str) -> None:
        self.cli, self.name = cli, name

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return self.cli(*args, input=input, env={"DMTOOL_OPERATOR": self.name})

    def draft(self, handle: str, text: str, *extra: str) -> int:
        r = self("draft", handle, text, "--json", *extra)
        assert r.exit_code == 0, r
        return int(r.json()["id"])

    def approve(self, draft_id: int) -> Result:
        return self("review", str(draft_id), "--approve", "--json")

    def send(self, draft_id: int, *extra: str) -> Result:
        return self("send", str(draft_id), "--yes", "--json", *extra)


@pytest.fixture
def kim(cli: Cli) -> Person:
    return Person(cli, "kim")


@pytest.fixture
def sam(cli: Cli) -> Person:
    return Person(cli, "sam")


def alice_wrote(cli: Cli, world: SandboxWorld, clock: Clock,
                text: str = "Hi! When does the workshop start?") -> None:
    world.incoming_dm(ALICE, text, at=clock.ago(minutes=30))
    sync(cli)


def outbound(world: SandboxWorld, user_id: str) -> list[str]:
    return [e["text"] for e in world.dms_with(user_id) if e.get("sender_id") == ME]


def show(cli: Cli, draft_id: int) -> dict[str, Any]:
    return cli("drafts", "show", str(draft_id), "--json").json()  # type: ignore[no-any-return]


def error(r: Result) -> dict[str, Any]:
    return json.loads(r.stderr.strip().splitlines()[-1])["error"]  # type: ignore[no-any-return]


def log(cli: Cli) -> list[dict[str, Any]]:
    return cli("log", "--json").json()  # type: ignore[no-any-return]


def engaged_bob(cli: Cli) -> None:
    """Someone who asked to be DMed and never wrote: a first contact."""
    assert cli("config", "set", "identity.names", "Kim").exit_code == 0  # first contacts say who
    assert cli("contacts", "add", "bob", "--name", "Bob B").exit_code == 0
    assert cli("contacts", "engage", "bob", "--evidence", "asked at the booth to be DMed").exit_code == 0


BOB_HELLO = "Hi Bob, it's Kim from the booth: here are the slides you asked for."


# --- attribution ----------------------------------------------------------------------


def test_each_draft_names_its_author_approver_and_sender(
        cli: Cli, kim: Person, sam: Person, world: SandboxWorld, clock: Clock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    alice_wrote(cli, world, clock)
    did = kim.draft("alice", THANKS)
    assert show(cli, did)["author"] == "kim" and show(cli, did)["approved_by"] is None
    assert sam.approve(did).exit_code == 0
    approved = show(cli, did)
    assert (approved["author"], approved["approved_by"]) == ("kim", "sam")
    assert approved["approved_sha256"] == hashlib.sha256(THANKS.encode()).hexdigest()
    r = sam.send(did)
    assert r.exit_code == 0, r
    listed = cli("drafts", "list", "--json").json()
    assert [(d["author"], d["approved_by"], d["sent_by"]) for d in listed] == [("kim", "sam", "sam")]
    [row] = cli("drafts", "list").stdout.splitlines()  # piped: id, status, to, updated, author,
    assert row.split("\t")[4:6] == ["kim", "sam"]      # approver, text

    # thread --json: sent_by on each outbound message; the view names a teammate
    messages = cli("thread", "alice", "--json").json()["messages"]
    assert [(m["direction"], m["sent_by"]) for m in messages] == [("in", None), ("out", "sam")]
    monkeypatch.setattr("dmtool.output.stdout_is_tty", lambda: True)  # the view on a terminal
    assert f"sam: {THANKS}" in kim("thread", "alice", "--peek").stdout
    assert f"you: {THANKS}" in sam("thread", "alice", "--peek").stdout
    # the audit log binds the approval and the send to the same text
    entries = {e["action"]: e for e in log(cli) if e["draft_id"] == did}
    assert entries["approved"]["detail"]["sha256"] == entries["sent"]["detail"]["sha256"] \
        == approved["approved_sha256"]
    assert (entries["drafted"]["actor"], entries["approved"]["actor"],
            entries["sent"]["actor"]) == ("kim", "sam", "sam")


# --- a second pair of eyes ------------------------------------------------------------------


def test_one_person_approves_their_own_drafts_as_before(cli: Cli, kim: Person,
                                                        world: SandboxWorld) -> None:
    """team.approval is "none" on a store without members: nothing changes."""
    engaged_bob(cli)
    did = kim.draft("bob", BOB_HELLO)
    assert kim.approve(did).exit_code == 0
    assert show(cli, did)["status"] == "approved"


def test_self_approval_is_refused_where_the_team_asks_for_another_person(
        cli: Cli, kim: Person, sam: Person, world: SandboxWorld, clock: Clock) -> None:
    assert cli("config", "set", "team.approval", "first-contact").exit_code == 0
    engaged_bob(cli)
    first = kim.draft("bob", BOB_HELLO)
    r = kim.approve(first)
    assert r.exit_code == 3 and r.stdout == ""
    e = error(r)
    assert e["code"] == "E_SELF_APPROVAL" and "you wrote it" in e["message"]
    assert f"dmtool review {first} --approve" in e["hint"]
    assert show(cli, first)["status"] == "draft"
    refused = log(cli)[0]
    assert (refused["action"], refused["codes"], refused["actor"]) == (
        "refused", ["E_SELF_APPROVAL"], "kim")
    # names are not case-sensitive: KIM is kim
    assert Person(cli, "KIM").approve(first).exit_code == 3
    assert sam.approve(first).exit_code == 0
    assert show(cli, first)["approved_by"] == "sam"

    # first-contact: a reply to someone who wrote is theirs to approve
    alice_wrote(cli, world, clock)
    reply = kim.draft("alice", THANKS)
    assert kim.approve(reply).exit_code == 0
    # all: every draft needs another person
    assert cli("config", "set", "team.approval", "all").exit_code == 0
    other = kim.draft("alice", "And the address is on the website, Alice.")
    assert error(kim.approve(other))["code"] == "E_SELF_APPROVAL"
    assert sam.approve(other).exit_code == 0


def test_a_team_store_asks_for_another_person_by_default(cli: Cli, kim: Person, sam: Person,
                                                         world: SandboxWorld,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset, team.approval is first-contact once the store has members."""
    from dmtool.services import roles

    engaged_bob(cli)
    did = kim.draft("bob", BOB_HELLO)
    monkeypatch.setattr(roles, "has_members", lambda st: True)
    assert error(kim.approve(did))["code"] == "E_SELF_APPROVAL"
    # set explicitly, the setting wins over the default
    assert cli("config", "set", "team.approval", "none").exit_code == 0
    assert kim.approve(did).exit_code == 0


def test_on_a_team_store_team_approval_is_the_teams(cli: Cli, kim: Person, sam: Person,
                                                     world: SandboxWorld, clock: Clock,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """With real members: a member's own config.toml cannot switch approvals
    off, and the value an owner sets in the store is the one that holds."""
    from dmtool.paths import Paths

    monkeypatch.setenv("DMTOOL_OPERATOR", "kim")  # cli(...) below: the owner
    assert kim("team", "add", "sam", "--role", "approver").exit_code == 0  # kim: owner
    config = Paths.resolve("default").config_file
    config.write_text(config.read_text() + '\n[team]\napproval = "none"\n')
    engaged_bob(cli)
    first = kim.draft("bob", BOB_HELLO)
    assert error(kim.approve(first))["code"] == "E_SELF_APPROVAL"  # first-contact, not "none"
    alice_wrote(cli, world, clock)
    reply = kim.draft("alice", THANKS)
    assert kim("config", "set", "team.approval", "all").exit_code == 0  # in the store
    assert error(kim.approve(reply))["code"] == "E_SELF_APPROVAL"
    assert sam.approve(reply).exit_code == 0


def test_an_edit_voids_the_approval(cli: Cli, kim: Person, sam: Person, world: SandboxWorld,
                                    clock: Clock) -> None:
    alice_wrote(cli, world, clock)
    did = kim.draft("alice", THANKS)
    assert sam.approve(did).exit_code == 0
    assert kim("drafts", "edit", str(did), THANKS + " Bring a laptop!").exit_code == 0
    d = show(cli, did)
    assert (d["status"], d["approved_by"], d["approved_sha256"], d["approved_at"]) == (
        "draft", None, None, None)
    r = sam.send(did)
    assert r.exit_code == 1 and error(r)["code"] == "E_NOT_APPROVED"
    assert outbound(world, ALICE) == []
    edited = next(e for e in log(cli) if e["action"] == "edited")
    assert (edited["actor"], edited["draft_id"], edited["detail"]["approval_cleared"]) == (
        "kim", did, True)
    # approved again, the new text goes out
    assert sam.approve(did).exit_code == 0
    assert sam.send(did).exit_code == 0
    assert outbound(world, ALICE) == [THANKS + " Bring a laptop!"]


def test_the_approval_is_bound_to_the_hash_of_its_text(cli: Cli, kim: Person, sam: Person,
                                                       world: SandboxWorld, clock: Clock,
                                                       db: Any) -> None:
    """A text changed behind dmtool's back (approved_text with it) is not what
    was approved: its hash says so, and nothing is sent."""
    alice_wrote(cli, world, clock)
    did = kim.draft("alice", THANKS)
    assert sam.approve(did).exit_code == 0
    db("UPDATE drafts SET text = ?, approved_text = ? WHERE id = ?", ("Buy now!", "Buy now!", did))
    r = sam.send(did)
    assert r.exit_code == 3 and error(r)["code"] == "E_NOT_APPROVED"
    assert "changed after it was approved" in error(r)["message"]
    assert outbound(world, ALICE) == []


def test_sending_one_of_two_approved_drafts_returns_the_other_to_review(
        cli: Cli, kim: Person, sam: Person, world: SandboxWorld, clock: Clock) -> None:
    alice_wrote(cli, world, clock)
    first = kim.draft("alice", THANKS)
    second = sam.draft("alice", "Hi Alice, Saturday at 10. See you there!")
    assert sam.approve(first).exit_code == 0
    assert kim.approve(second).exit_code == 0
    assert kim.send(first).exit_code == 0
    other = show(cli, second)
    assert (other["status"], other["approved_by"]) == ("draft", None)
    assert f"draft {first} was sent to @alice" in other["reason"]
    back = next(e for e in log(cli) if e["action"] == "returned_to_review")
    assert (back["draft_id"], back["detail"]["after_draft"], back["actor"]) == (second, first, "kim")
    r = sam.send(second)
    assert r.exit_code == 1 and error(r)["code"] == "E_NOT_APPROVED"
    assert outbound(world, ALICE) == [THANKS]


def test_reply_under_all_drafts_and_waits_for_another_person(cli: Cli, kim: Person, sam: Person,
                                                             world: SandboxWorld,
                                                             clock: Clock) -> None:
    assert cli("config", "set", "team.approval", "all").exit_code == 0
    alice_wrote(cli, world, clock)
    r = kim("reply", "alice", THANKS, "--json")  # no --yes: nothing is sent
    assert r.exit_code == 0, r
    data = r.json()
    assert (data["status"], data["waiting_for_approval"], data["dm_event_id"]) == (
        "draft", True, None)
    assert outbound(world, ALICE) == []
    human = kim("reply", "alice", "Also: bring a laptop, Alice.")
    assert human.exit_code == 0
    assert "waiting for approval by another member" in human.stdout
    assert error(kim.approve(data["id"]))["code"] == "E_SELF_APPROVAL"
    assert sam.approve(data["id"]).exit_code == 0
    assert sam.send(data["id"]).exit_code == 0
    assert outbound(world, ALICE) == [THANKS]
    # without a second pair of eyes, reply still sends in one step
    assert cli("config", "set", "team.approval", "none").exit_code == 0
    clock.advance(minutes=5)
    world.incoming_dm(ALICE, "Great, and where?", at=clock.ago(minutes=1))
    sync(cli)
    r = kim("reply", "alice", "At the library, Alice.", "--yes", "--json")
    assert r.exit_code == 0 and r.json()["status"] == "sent"
    assert r.json()["waiting_for_approval"] is False


# --- the traffic cop ------------------------------------------------------------------------


def _approved(kim: Person, sam: Person, text: str = THANKS) -> int:
    did = kim.draft("alice", text)
    assert sam.approve(did).exit_code == 0
    return did


def _moved(cli: Cli, r: Result, did: int) -> dict[str, Any]:
    """Refused by the traffic cop: exit 3, back in review, audited, nothing sent."""
    assert r.exit_code == 3 and r.stdout == "", r
    e = error(r)
    assert e["code"] == "E_CONVERSATION_MOVED"
    assert "back in review" in e["message"] and "dmtool thread alice" in e["hint"]
    d = show(cli, did)
    assert (d["status"], d["approved_by"]) == ("draft", None)
    assert d["reason"].startswith("the conversation moved after the approval")
    entry = log(cli)[0]
    assert (entry["action"], entry["codes"][0], entry["draft_id"]) == (
        "refused", "E_CONVERSATION_MOVED", did)
    return e


def test_a_new_message_after_the_approval_stops_the_send(cli: Cli, kim: Person, sam: Person,
                                                         world: SandboxWorld,
                                                         clock: Clock) -> None:
    alice_wrote(cli, world, clock)
    did = _approved(kim, sam)
    clock.advance(minutes=10)
    world.incoming_dm(ALICE, "Actually, is it still on? I heard it moved.", at=clock.ago(minutes=1))
    sync(cli)
    e = _moved(cli, sam.send(did), did)
    assert '@alice wrote at 2026-03-02 12:09 UTC: "Actually, is it still on?' in e["message"]
    assert outbound(world, ALICE) == []
    # the approver reads it, approves again: it goes
    assert kim.approve(did).exit_code == 0
    assert sam.send(did).exit_code == 0
    assert outbound(world, ALICE) == [THANKS]


def test_a_message_sent_before_but_synced_after_the_approval_counts(
        cli: Cli, kim: Person, sam: Person, world: SandboxWorld, clock: Clock) -> None:
    alice_wrote(cli, world, clock)
    clock.advance(minutes=10)
    # she wrote before the approval; no sync had brought it in yet
    world.incoming_dm(ALICE, "Wait, one more question first.", at=clock.ago(minutes=5))
    did = _approved(kim, sam)
    clock.advance(minutes=1)
    sync(cli)
    e = _moved(cli, kim.send(did), did)
    assert "Wait, one more question first." in e["message"]
    assert outbound(world, ALICE) == []


def test_a_dm_sent_to_them_after_the_approval_stops_the_send(cli: Cli, kim: Person, sam: Person,
                                                             world: SandboxWorld,
                                                             clock: Clock) -> None:
    alice_wrote(cli, world, clock)
    did = _approved(kim, sam)
    clock.advance(minutes=5)
    # someone answered her from the X app; the sync brings it in
    world.outgoing_dm(ALICE, "Hi Alice, Saturday at 10!", at=clock.ago(minutes=1))
    sync(cli)
    e = _moved(cli, sam.send(did), did)
    assert "a DM went to @alice from the account outside dmtool" in e["message"]
    assert outbound(world, ALICE) == ["Hi Alice, Saturday at 10!"]


def test_a_send_of_unknown_outcome_after_the_approval_stops_the_send(
        cli: Cli, kim: Person, sam: Person, world: SandboxWorld, clock: Clock) -> None:
    """Two approved drafts; the send of one times out (it did reach her). Until
    that is settled, the other may not go: somebody may have DMed her."""
    alice_wrote(cli, world, clock)
    first = _approved(kim, sam)
    clock.advance(minutes=2)
    second = sam.draft("alice", "Hi Alice, the workshop is Saturday at 10.")
    assert kim.approve(second).exit_code == 0
    world.timeout_after_send()
    r = kim.send(second)
    assert r.exit_code == 5 and show(cli, second)["status"] == "unknown"
    e = _moved(cli, sam.send(first), first)
    assert f"a send of draft {second} to @alice began at" in e["message"]
    assert outbound(world, ALICE) == ["Hi Alice, the workshop is Saturday at 10."]
    # settled: it was delivered
    assert kim.send(second).json()["reconciled"] is True


def test_an_opt_out_after_the_approval_stops_the_send(cli: Cli, kim: Person, sam: Person,
                                                      world: SandboxWorld, clock: Clock) -> None:
    alice_wrote(cli, world, clock)
    did = _approved(kim, sam)
    clock.advance(minutes=5)
    world.incoming_dm(ALICE, "STOP", at=clock.ago(minutes=1))
    sync(cli)
    e = _moved(cli, sam.send(did), did)
    assert "@alice opted out" in e["message"]
    assert {"E_CONVERSATION_MOVED", "E_OPTED_OUT"} <= {x["code"] for x in e["reasons"]}
    assert outbound(world, ALICE) == []


def test_a_block_lifted_since_the_approval_still_counts(cli: Cli, kim: Person, sam: Person,
                                                        world: SandboxWorld,
                                                        clock: Clock) -> None:
    """The policy alone would send again (the block is gone): the approver
    must see that somebody blocked and unblocked them in between."""
    alice_wrote(cli, world, clock)
    did = _approved(kim, sam)
    clock.advance(minutes=1)
    assert sam("contacts", "block", "alice").exit_code == 0
    assert sam("contacts", "unblock", "alice").exit_code == 0
    e = _moved(cli, kim.send(did), did)
    assert "sam blocked @alice" in e["message"] and "sam unblocked @alice" in e["message"]
    assert outbound(world, ALICE) == []


def test_nothing_new_nothing_stopped_and_one_person_is_covered_too(
        cli: Cli, world: SandboxWorld, clock: Clock) -> None:
    """No operator set, no team: the traffic cop applies all the same."""
    alice_wrote(cli, world, clock)
    r = cli("draft", "alice", THANKS, "--json")
    did = r.json()["id"]
    assert cli("review", str(did), "--approve").exit_code == 0
    clock.advance(minutes=3)
    dry = cli("send", str(did), "--dry-run", "--json")  # nothing new: the checks pass
    assert dry.exit_code == 0 and dry.json()["dry_run"] is True
    world.incoming_dm(ALICE, "Also: is parking free?", at=clock.ago(minutes=1))
    sync(cli)
    _moved(cli, cli("send", str(did), "--dry-run", "--json"), did)  # a dry run says so too
    assert outbound(world, ALICE) == []


def test_the_traffic_cop_checks_again_under_the_send_lock(cli: Cli, world: SandboxWorld,
                                                          clock: Clock) -> None:
    """Something that arrives while the person reads the prompt is caught by
    the last check, under the send lock, before the request."""
    from dmtool.appstate import AppState
    from dmtool.errors import PolicyRefused
    from dmtool.services.send import send_draft
    from dmtool.services.sync import run_sync

    alice_wrote(cli, world, clock)
    did = cli("draft", "alice", THANKS, "--json").json()["id"]
    assert cli("review", str(did), "--approve").exit_code == 0
    clock.advance(minutes=2)

    st = AppState()

    def meanwhile(_view: object) -> bool:
        world.incoming_dm(ALICE, "Never mind, I found it!", at=clock.ago(seconds=30))
        run_sync(st, wait=False)
        return True

    with pytest.raises(PolicyRefused) as caught:
        send_draft(st, did, confirm=meanwhile, yes=False, dry_run=False)
    st.close()
    assert caught.value.code == "E_CONVERSATION_MOVED"
    assert "Never mind, I found it!" in caught.value.message
    assert outbound(world, ALICE) == []
    assert show(cli, did)["status"] == "draft"


def test_a_first_contact_needs_another_person_then_goes(cli: Cli, kim: Person, sam: Person,
                                                       world: SandboxWorld) -> None:
    """Bob never wrote: sending still needs a terminal (tested in
    test_review_pty); here the second pair of eyes and a dry run."""
    assert cli("config", "set", "team.approval", "first-contact").exit_code == 0
    engaged_bob(cli)
    did = kim.draft("bob", BOB_HELLO)
    assert error(kim.approve(did))["code"] == "E_SELF_APPROVAL"
    assert sam.approve(did).exit_code == 0
    r = kim("send", str(did), "--dry-run", "--json")
    assert r.exit_code == 0 and r.json()["first_contact"] is True
    assert outbound(world, BOB) == []


def test_review_shows_who_wrote_each_draft_and_when(cli: Cli, kim: Person, sam: Person,
                                                    world: SandboxWorld, clock: Clock) -> None:
    """On a terminal: the author and the time, the note of a draft sent back
    to review; a refused self-approval is said and the queue goes on."""
    from tests.test_review_pty import finish, spawn

    alice_wrote(cli, world, clock)
    assert cli("config", "set", "team.approval", "all").exit_code == 0
    first = kim.draft("alice", THANKS)
    assert sam.approve(first).exit_code == 0
    clock.advance(minutes=5)
    world.incoming_dm(ALICE, "Is it still on?", at=clock.ago(minutes=1))
    sync(cli)
    assert sam.send(first).exit_code == 3  # back in review, with a note
    child = spawn("review", str(first), env={"DMTOOL_OPERATOR": "kim"})
    child.expect_exact(f"Draft {first}")
    child.expect_exact("written by kim on 2026-03-02 12:00")
    child.expect_exact("back in review: the conversation moved after the approval")
    child.expect_exact("[a]pprove [e]dit [r]eject [s]kip [q]uit")
    child.sendline("a")
    child.expect_exact("cannot approve: not approved: draft")
    child.expect_exact("[a]pprove [e]dit [r]eject [s]kip [q]uit")
    child.sendline("q")
    assert finish(child) == 0
    assert show(cli, first)["status"] == "draft"


def test_two_approved_drafts_sent_at_once_one_goes_the_other_says_why(
        cli: Cli, kim: Person, sam: Person, world: SandboxWorld, clock: Clock) -> None:
    """Sam is at his send prompt when Kim sends the other approved draft: Sam's
    is back in review before his send takes the lock, and it says why."""
    from dmtool.appstate import AppState
    from dmtool.errors import InputError
    from dmtool.services.send import send_draft

    alice_wrote(cli, world, clock)
    first = _approved(kim, sam)
    second = sam.draft("alice", "Hi Alice, Saturday at 10. See you there!")
    assert kim.approve(second).exit_code == 0

    def meanwhile(_view: object) -> bool:
        assert kim.send(first).exit_code == 0
        return True

    st = AppState(environ={**os.environ, "DMTOOL_OPERATOR": "sam"})
    with pytest.raises(InputError) as caught:
        send_draft(st, second, confirm=meanwhile, yes=False, dry_run=False)
    st.close()
    assert caught.value.code == "E_NOT_APPROVED"
    assert f"(it is draft: draft {first} was sent to @alice at 2026-03-02 12:00 UTC" \
        in caught.value.message
    assert outbound(world, ALICE) == [THANKS]
