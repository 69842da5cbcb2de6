"""What a new user tripped on (issue 12, point 8), end to end through the CLI,
on the sandbox X where one is needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from dmtool import policy
from dmtool.cli.reference import leaf_commands
from tests.test_drafts import add_talking_contact, draft_json
from tests.xworld import ALICE, BOB, CAROL, ME, Cli, Clock, sync


def error(r: Any) -> dict[str, Any]:
    return json.loads(r.stderr.strip().splitlines()[-1])["error"]  # type: ignore[no-any-return]


def actions(cli: Cli) -> list[tuple[str, str | None, list[str], str | None]]:
    """(action, handle, codes, command) of the audit log, newest first."""
    return [(e["action"], e["handle"], e["codes"], e["detail"].get("command"))
            for e in cli("log", "--json").json()]


# --- drafts edit ID "text" --------------------------------------------------------------------


def test_drafts_edit_takes_the_text_as_an_argument(cli: Cli) -> None:
    add_talking_contact("alice", "Alice Smith", "2001")
    did = str(draft_json(cli, "alice", "One.")["id"])
    r = cli("drafts", "edit", did, "Two.", "--json")
    assert r.exit_code == 0, r
    assert r.json()["text"] == "Two."
    assert cli("drafts", "edit", did, "--text", "Three.").exit_code == 0  # old scripts still work
    assert cli("drafts", "show", did, "--json").json()["text"] == "Three."
    r = cli("drafts", "edit", did, "Four.", "--text", "Five.")
    assert r.exit_code == 2 and "not both" in r.stderr


# --- identity.names ---------------------------------------------------------------------------


def test_identity_names_takes_a_list_for_a_name_with_a_comma(cli: Cli) -> None:
    def names() -> list[str]:
        return cli("config", "get", "identity.names", "--json").json()  # type: ignore[no-any-return]

    assert cli("config", "set", "identity.names", '["Sam, Acme support"]').exit_code == 0
    assert names() == ["Sam, Acme support"]
    assert cli("config", "set", "identity.names", "['Sam, Acme', \"Alex\"]").exit_code == 0  # TOML
    assert names() == ["Sam, Acme", "Alex"]
    r = cli("config", "set", "identity.names", "Sam, Acme support")  # commas separate names
    assert r.exit_code == 0 and 'identity.names = ["Sam", "Acme support"]' in r.stderr
    assert names() == ["Sam", "Acme support"]
    assert cli("config", "set", "identity.names", '["Sam",').exit_code == 1  # E_INPUT
    assert names() == ["Sam", "Acme support"]
    rows = [line.split("\t") for line in cli("config", "show").stdout.splitlines()]
    meaning = next(row[3] for row in rows if row[0] == "identity.names")
    assert "commas separate names" in meaning and '["Sam, Acme support"]' in meaning


# --- contacts engage on someone new -----------------------------------------------------------


def test_engage_creates_the_contact_after_the_x_lookup(cli: Cli, world: Any) -> None:
    r = cli("contacts", "engage", "@carol", "--kind", "request",
            "--evidence", "asked at the booth to be DMed the slides")
    assert r.exit_code == 0, r
    assert r.stdout == "" and f"added @carol as a contact (X user {CAROL})" in r.stderr
    shown = cli("contacts", "show", "carol", "--json").json()
    assert (shown["user_id"], shown["name"]) == (CAROL, "Carol C")
    assert [e["kind"] for e in shown["evidence"]] == ["request"]
    assert cli("check", "carol").exit_code == 0
    assert [a[0] for a in actions(cli)][:2] == ["consent_recorded", "contact_added"]

    r = cli("contacts", "engage", "@nobody_here", "--evidence", "asked by mail")
    assert r.exit_code == 1 and "X has no user @nobody_here" in r.stderr
    assert [c["handle"] for c in cli("contacts", "list", "--json").json()] == ["carol"]


def test_engage_without_credentials_records_them_not_verified(cli: Cli) -> None:
    r = cli("contacts", "engage", "@zed", "--kind", "offline", "--evidence", "signed up at the stand")
    assert r.exit_code == 0, r
    assert "not verified on X" in r.stderr
    r = cli("check", "zed", "--json")
    assert r.exit_code == 0 and r.json()["verified"] is False
    human = cli("check", "zed")
    assert "yes: you may DM @zed" in human.stdout and "not verified on X" in human.stdout


# --- check: not verified on X; unknown users are refused and audited ---------------------------


def test_engaging_two_people_at_once_records_both(cli: Cli, world: Any) -> None:
    """The clock is pinned: both records carry the same instant."""
    for h in ("bob", "carol"):
        assert cli("contacts", "engage", h, "--evidence", f"{h} asked to be DMed").exit_code == 0
    for h in ("bob", "carol"):
        shown = cli("contacts", "show", h, "--json").json()
        assert [e["text"] for e in shown["evidence"]] == [f"{h} asked to be DMed"]


def test_check_and_send_look_up_a_contact_added_by_hand(cli: Cli, world: Any) -> None:
    for h in ("bob", "ghost"):
        assert cli("contacts", "add", h).exit_code == 0
        assert cli("contacts", "engage", h, "--evidence", "asked to be DMed").exit_code == 0
    r = cli("check", "bob", "--json")  # X knows bob: the id is looked up and kept
    assert r.exit_code == 0 and (r.json()["verified"], r.json()["user_id"]) == (True, BOB)

    r = cli("check", "ghost", "--json")
    assert r.exit_code == 1 and error(r)["code"] == "E_UNKNOWN_USER"
    assert "Could not find" not in r.stderr  # X's own wording is not repeated as a hint
    assert actions(cli)[0] == ("refused", "ghost", ["E_UNKNOWN_USER"], "check")

    did = str(draft_json(cli, "ghost", "Hi Ghost, Ann here: the slides you asked for.")["id"])
    assert cli("review", did, "--approve", "--ack-warnings").exit_code == 0
    r = cli("send", did, "--yes", "--json")
    assert r.exit_code == 1 and error(r)["code"] == "E_UNKNOWN_USER"
    assert actions(cli)[0] == ("refused", "ghost", ["E_UNKNOWN_USER"], "send")
    assert cli("drafts", "show", did, "--json").json()["status"] == "approved"


def test_check_says_not_verified_when_x_cannot_be_asked(cli: Cli, world: Any) -> None:
    assert cli("contacts", "add", "bob").exit_code == 0
    assert cli("contacts", "engage", "bob", "--evidence", "asked to be DMed").exit_code == 0
    world.fail_next(429, method="GET", path_contains="/2/users/by/username/")
    r = cli("check", "bob")
    assert r.exit_code == 0, r
    assert "not verified on X" in r.stdout and "rate limit" in r.stdout


# --- a draft that only has to wait ------------------------------------------------------------


def send(cli: Cli, handle: str, text: str) -> Any:
    did = str(draft_json(cli, handle, text)["id"])
    assert cli("review", did, "--approve").exit_code == 0
    return cli("send", did, "--yes")


def test_a_draft_that_only_has_to_wait_is_allowed_and_send_refuses(cli: Cli, world: Any,
                                                                   clock: Clock) -> None:
    world.incoming_dm(ALICE, "Hi! Could you send me the schedule?", at=clock.ago(hours=2))
    world.incoming_dm(BOB, "Hello there", at=clock.ago(hours=2))
    sync(cli)
    assert send(cli, "alice", "Here is the schedule, Alice.").exit_code == 0
    assert send(cli, "alice", "And the venue map, in case.").exit_code == 0
    r = cli("draft", "alice", "Did the schedule reach you?")  # two unanswered: it has to wait
    assert r.exit_code == 0, r
    assert "wait E_AWAIT_REPLY" in r.stdout and "refuses it until the wait is over" in r.stderr
    did = str(cli("drafts", "list", "--status", "draft", "--json").json()[0]["id"])
    assert cli("review", did, "--approve").exit_code == 0  # prepared in advance
    r = cli("send", did, "--yes", "--json")
    assert r.exit_code == 3 and error(r)["code"] == "E_AWAIT_REPLY"

    # can-dm, but not now: the list says so, and --status can-dm-now leaves alice out
    def listed(*args: str) -> list[str]:
        return [c["handle"] for c in cli("contacts", "list", *args, "--json").json()]

    assert listed("--status", "can-dm") == ["alice", "bob"]
    assert listed("--status", "can-dm-now") == ["bob"]
    rows = [line.split("\t") for line in cli("contacts", "list").stdout.splitlines()]
    assert [(r[0], r[2], r[-1]) for r in rows] == [("@alice", "can-dm", "wait"),
                                                     ("@bob", "can-dm", "yes")]
    assert "can DM now: no: E_AWAIT_REPLY (consent is fine: it only has to wait)" in cli(
        "contacts", "show", "alice").stdout

    clock.advance(minutes=5)
    world.incoming_dm(ALICE, "Got it, thanks!", at=clock.ago(minutes=1))
    sync(cli)
    # The wait is over because she wrote: the approval predates her message,
    # so the traffic cop asks for a look first (issue 15); approved again, it goes.
    r = cli("send", did, "--yes", "--json")
    assert r.exit_code == 3 and error(r)["code"] == "E_CONVERSATION_MOVED"
    assert cli("review", did, "--approve").exit_code == 0
    assert cli("send", did, "--yes").exit_code == 0


def test_other_refusals_still_refuse_the_draft(cli: Cli, world: Any, clock: Clock) -> None:
    world.incoming_dm(ALICE, "STOP", at=clock.ago(minutes=5))
    sync(cli)
    r = cli("draft", "alice", "Sorry to see you go.", "--json")
    assert r.exit_code == 3 and error(r)["code"] == "E_OPTED_OUT"


# --- check --draft, and the hint that points there ----------------------------------------------


def test_check_draft_shows_the_lint_findings(cli: Cli) -> None:
    add_talking_contact("alice", "Alice Smith", "2001")
    add_talking_contact("bob", "Bob Brown", "2002")
    did = str(draft_json(cli, "alice", "Thanks [NAME], the slides: https://bit.ly/x")["id"])
    r = cli("review", did, "--approve")
    assert r.exit_code == 3
    assert f"dmtool check alice --draft {did}" in r.stderr  # check shows every reason, lint too
    r = cli("check", "alice", "--draft", did)
    assert r.exit_code == 3
    assert "error L001" in r.stdout and "error L003" in r.stdout
    data = cli("check", "alice", "--draft", did, "--json").json()
    assert data["allowed"] is False and data["draft_id"] == int(did)
    assert {f["code"] for f in data["findings"]} >= {"L001", "L003"}
    assert cli("check", "alice", "--json").json()["allowed"] is True  # the person is fine
    r = cli("check", "bob", "--draft", did)
    assert r.exit_code == 2 and "is for @alice" in r.stderr


# --- messages ----------------------------------------------------------------------------------


def test_one_earlier_record_is_singular(cli: Cli, world: Any, clock: Clock) -> None:
    world.incoming_dm(ALICE, "Hi!", at=clock.ago(hours=3))
    world.incoming_dm(ALICE, "Hello again", at=clock.ago(hours=2))
    sync(cli)
    out = cli("check", "alice").stdout
    assert "(1 earlier record of the same kinds" in out


def test_one_first_message_is_singular() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    snap = policy.ContactSnapshot(user_id="9", handle="new", name=None, evidence=(
        policy.Evidence("request", now - timedelta(days=1), "manual", "asked at the booth"),))
    sends = [policy.Send(now - timedelta(hours=1), "8", "Hi there, Ann here.", True)]
    d = policy.decide(snap, None, sends, policy.PolicySettings(daily_first_contacts=1), now)
    cap = next(r for r in d.reasons if r.code == "E_FIRST_CONTACT_CAP")
    assert "You have sent 1 first message to a new person in the last 24 hours" in cap.message
    d = policy.decide(snap, None, sends, policy.PolicySettings(daily_sends=1), now)
    assert "You have sent 1 DM in the last 24 hours" in next(
        r for r in d.reasons if r.code == "E_DAILY_CAP").message


def test_usage_lines_name_arguments_as_the_reference_does(run: Any) -> None:
    r = run("check")
    assert r.exit_code == 2
    assert "Usage: dmtool check [OPTIONS] HANDLE" in r.stderr and "{" not in r.stderr
    r = run("drafts", "edit")
    assert "Usage: dmtool drafts edit [OPTIONS] DRAFT_ID [TEXT]" in r.stderr
    for path, cmd in leaf_commands():
        usage = cmd.get_usage(typer.Context(cmd, info_name=f"dmtool {path}"))
        assert "{" not in usage, (path, usage)


def test_the_reference_marks_required_options() -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "commands.md").read_text(
        encoding="utf-8")
    assert "| `--evidence` | option, required |" in text


# --- -v: every X request, with its family, page size, results and time -------------------------


def test_verbose_shows_each_request(run: Any, world: Any, clock: Clock) -> None:
    world.incoming_dm(ALICE, "Hi!", at=clock.ago(hours=1))
    r = run("-v", "sync", "--public")
    assert r.exit_code == 0, r
    lines = [line for line in r.stderr.splitlines() if "dmtool.x: X " in line]
    assert any("GET /2/dm_events [dm_read] max_results=" in line and "-> 200, " in line
               and " result" in line and line.endswith(" ms") for line in lines), lines
    assert any(f"/2/users/{ME}/mentions [timelines] max_results=100 -> 200, 0 results" in line
               for line in lines), lines
    assert "sandbox-token" not in r.stderr and "Bearer" not in r.stderr
