"""People from an X archive are found by the handle you type (issue 8, point 4).

The archive holds user ids, not handles. `import archive` asks X for the
handles right after the import (one users lookup per 100 ids), and `check`,
`draft` and the other wired commands look a handle they do not know up on X
once, matching it to a contact known by user id. All against the sandbox X.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from dmtool.timeutil import fmt
from tests.test_archive import account, conversation, dm, folder, js
from tests.xworld import ALICE, BOB, ME, Cli, Clock

USERS = "/2/users"
BY_NAME = "/2/users/by/username/"


def archive_with(root: Path, clock: Clock, *people: str, stop: str | None = None) -> Path:
    """Your archive: each of `people` (user ids) DMed you three days ago;
    `stop` wrote STOP after that."""
    at = fmt(clock.ago(days=3)) or ""
    later = fmt(clock.ago(days=2)) or ""
    convs = []
    for n, uid in enumerate(people):
        msgs = [dm(str(10_000 + 2 * n), uid, ME, "hi, tell me more about the beta?", at)]
        if uid == stop:
            msgs.append(dm(str(10_001 + 2 * n), uid, ME, "STOP", later))
        convs.append(conversation(ME, uid, *msgs))
    return folder(root, {"account.js": account(ME, "you"),
                         "direct-messages.js": js("direct_messages", convs)})


def import_json(cli: Cli, path: Path) -> tuple[dict[str, Any], str]:
    r = cli("import", "archive", str(path), "--json")
    assert r.exit_code == 0, r
    return r.json(), r.stderr


def user_lookups(world: Any) -> list[dict[str, Any]]:
    return [q for q in world.requests_log() if q["path"].startswith(USERS)]


def contacts(cli: Cli) -> dict[str, str | None]:
    """handle -> user id."""
    return {c["handle"]: c["user_id"] for c in cli("contacts", "list", "--json").json()}


def error(r: Any) -> dict[str, Any]:
    return json.loads(r.stderr)["error"]  # type: ignore[no-any-return]


# --- named at import time ------------------------------------------------------------------------


def test_import_names_the_people_x_knows_with_one_lookup_per_100_ids(
        cli: Cli, clock: Clock, world: Any, tmp_path: Path) -> None:
    known = [str(1_600_000_000_000_000_000 + n) for n in range(120)]
    gone = [str(1_700_000_000_000_000_000 + n) for n in range(30)]  # deleted or suspended on X
    with world.transaction():
        for n, uid in enumerate(known):
            world.add_user(f"person{n}", f"Person {n}", user_id=uid)
    world.reset_requests_log()
    data, _ = import_json(cli, archive_with(tmp_path / "arc", clock, *known, *gone,
                                            stop=known[5]))
    ids = len(known) + len(gone)
    assert data["contacts_new"] == ids and data["messages_new"] == ids + 1
    assert data["requests"] == math.ceil(ids / 100) == 2
    assert (data["contacts_named"], data["contacts_unnamed"]) == (120, 30)
    assert data["naming_error"] is None
    assert data["opted_out"] == ["person5"]  # reported under the handle X gave
    lookups = user_lookups(world)
    assert [q["path"] for q in lookups] == [USERS, USERS]
    assert sorted(len(q["query"]["ids"].split(",")) for q in lookups) == [50, 100]
    # The people X no longer knows stay by id; the others are found by handle, locally.
    found = contacts(cli)
    assert found["person7"] == known[7] and found[f"user_{gone[0]}"] == gone[0]
    assert f"user_{known[7]}" not in found
    world.reset_requests_log()
    r = cli("check", "@person7", "--json")
    assert r.exit_code == 0, r
    assert (r.json()["handle"], r.json()["user_id"]) == ("person7", known[7])
    assert world.requests_log() == []  # known locally now: no lookup


def test_human_output_counts_the_named_and_the_ones_x_does_not_know(
        cli: Cli, clock: Clock, world: Any, tmp_path: Path) -> None:
    r = cli("import", "archive", str(archive_with(tmp_path / "arc", clock, ALICE, "42")))
    assert r.exit_code == 0, r
    assert "1 contact named by X" in r.stdout
    assert "1 contact stays user_<id>: X does not know those accounts any more" in r.stderr
    assert "warning" not in r.stderr


# --- the import stands when naming fails ------------------------------------------------------------


@pytest.mark.parametrize(("status", "code"), [(503, "E_UNAVAILABLE"), (429, "E_RATE_LIMITED")])
def test_a_failed_lookup_is_a_warning_and_the_import_is_complete(
        cli: Cli, clock: Clock, world: Any, tmp_path: Path, db: Any, status: int,
        code: str) -> None:
    tries = 3 if status == 503 else 1  # a GET is retried on 5xx only
    world.fail_next(status, count=tries, method="GET", path_contains=USERS)
    path = archive_with(tmp_path / "arc", clock, ALICE, BOB)
    data, stderr = import_json(cli, path)
    assert (data["messages_new"], data["evidence_new"], data["contacts_new"]) == (2, 2, 2)
    assert data["contacts_named"] == 0 and data["contacts_unnamed"] == 2
    assert data["naming_error"]["code"] == code
    assert data["requests"] == tries
    assert stderr.startswith("warning: imported, but 2 contacts stay user_<id> for now")
    assert f"run `dmtool import archive {path}` again to name them" in stderr
    assert set(contacts(cli)) == {f"user_{ALICE}", f"user_{BOB}"}
    assert [e["action"] for e in cli("log", "--json").json()].count("archive_imported") == 1
    if status == 429:
        # The users lookup is paused until X's reset: importing again before
        # it asks nothing; after it, the import names them.
        again, stderr = import_json(cli, path)
        assert again["requests"] == 0 and again["naming_error"]["code"] == code
        assert "X rate limit on looking up users" in stderr
        clock.advance(minutes=16)
    # Importing again later names them, and imports nothing twice.
    again, stderr = import_json(cli, path)
    assert again["messages_new"] == 0 and again["contacts_named"] == 2 and stderr == ""
    assert contacts(cli) == {"alice": ALICE, "bob": BOB}


def test_without_credentials_the_import_asks_nothing(
        cli: Cli, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_connection(*args: Any) -> Any:
        raise AssertionError("no credentials: dmtool must not try to reach X")

    monkeypatch.setattr("dmtool.appstate.connect", no_connection)
    data, stderr = import_json(cli, archive_with(tmp_path / "arc", clock, ALICE, BOB))
    assert data["messages_new"] == 2 and data["requests"] == 0
    assert data["contacts_named"] == 0 and data["contacts_unnamed"] == 2
    assert data["naming_error"]["code"] == "E_AUTH"
    assert "there are no X credentials" in stderr
    assert "hint: run `dmtool auth login`, then run `dmtool import archive" in stderr


# --- resolved when the handle is typed ------------------------------------------------------------


WIRED = {
    "check": ["check", "@alice", "--json"],
    "draft": ["draft", "@alice", "Glad to hear from you again!", "--json"],
    "contacts engage": ["contacts", "engage", "@alice", "--evidence", "asked at the meetup"],
}


@pytest.mark.parametrize("args", [["thread", "@alice", "--json", "--peek"],
                                  ["contacts", "show", "@alice", "--json"]])
def test_reading_commands_stay_local_and_point_to_check(
        cli: Cli, clock: Clock, world: Any, tmp_path: Path, args: list[str]) -> None:
    """thread and contacts show only read the local record (cli.md: reading
    changes nothing): an archive contact X has not named yet is not found, and
    the hint says how to find it."""
    world.fail_next(503, count=3, method="GET", path_contains=USERS)
    import_json(cli, archive_with(tmp_path / "arc", clock, ALICE))
    world.reset_requests_log()
    r = cli(*args)
    assert r.exit_code == 1
    assert error(r)["hint"] == ("people from an X archive are known by id until X names them: "
                                "`dmtool check @alice` asks X who @alice is")
    assert world.requests_log() == [] and contacts(cli) == {f"user_{ALICE}": ALICE}


@pytest.mark.parametrize("command", sorted(WIRED))
def test_a_handle_the_import_could_not_name_is_resolved_when_typed(
        cli: Cli, clock: Clock, world: Any, tmp_path: Path, command: str) -> None:
    world.fail_next(503, count=3, method="GET", path_contains=USERS)
    data, _ = import_json(cli, archive_with(tmp_path / "arc", clock, ALICE, BOB))
    assert data["contacts_named"] == 0
    world.reset_requests_log()
    r = cli(*WIRED[command])
    assert r.exit_code == 0, r
    # One lookup by handle, matched to the archive contact by user id.
    assert [q["path"] for q in world.requests_log()] == [BY_NAME + "alice"]
    assert contacts(cli) == {"alice": ALICE, f"user_{BOB}": BOB}
    shown = cli("contacts", "show", "alice", "--json").json()
    assert shown["name"] == "Alice A" and shown["evidence"][0]["kind"] == "inbound_dm"
    if command == "check":
        assert (r.json()["handle"], r.json()["user_id"]) == ("alice", ALICE)


def test_a_renamed_contact_is_found_by_the_new_handle(
        cli: Cli, clock: Clock, world: Any, tmp_path: Path) -> None:
    import_json(cli, archive_with(tmp_path / "arc", clock, ALICE))
    world.add_user("alice_new", "Alice A", user_id=ALICE)  # she changed her handle on X
    r = cli("check", "alice_new", "--json")
    assert r.exit_code == 0, r
    assert r.json()["user_id"] == ALICE
    assert contacts(cli) == {"alice_new": ALICE}


def test_offline_the_error_says_there_are_no_credentials(
        cli: Cli, clock: Clock, tmp_path: Path) -> None:
    import_json(cli, archive_with(tmp_path / "arc", clock, ALICE))
    r = cli("check", "@alice")
    assert r.exit_code == 1
    assert r.stderr.splitlines()[0] == (
        "error: no contact @alice in the local record, and dmtool could not ask X who @alice "
        "is: there are no X credentials")
    assert "dmtool auth login" in r.stderr and "dmtool sync" in r.stderr
    r = cli("draft", "@alice", "hello", "--json")
    assert r.exit_code == 1 and error(r)["code"] == "E_NOT_FOUND"
    assert "no X credentials" in error(r)["message"]


def test_a_handle_x_does_not_know_is_not_found(cli: Cli, world: Any) -> None:
    r = cli("check", "@nobody_here", "--json")
    assert r.exit_code == 1
    assert error(r) | {"hint": None} == {
        "code": "E_NOT_FOUND", "message": "no contact @nobody_here, and X has no user @nobody_here",
        "hint": None}
    assert [q["path"] for q in world.requests_log()] == [BY_NAME + "nobody_here"]


def test_a_handle_x_knows_that_is_not_a_contact_is_not_found_and_not_added(
        cli: Cli, clock: Clock, world: Any, tmp_path: Path) -> None:
    import_json(cli, archive_with(tmp_path / "arc", clock, ALICE))
    before = contacts(cli)
    for args in (["check", "@bob", "--json"], ["draft", "@bob", "hello", "--json"]):
        r = cli(*args)
        assert r.exit_code == 1, r
        err = error(r)
        assert err["code"] == "E_NOT_FOUND"
        assert err["message"].startswith(f"no contact @bob: X knows @bob (user {BOB}), but you "
                                         "have no record of them")
    assert contacts(cli) == before
    assert cli("drafts", "list", "--json").json() == []


@pytest.mark.parametrize(("status", "count", "code"), [(429, 1, "E_RATE_LIMITED"),
                                                       (503, 3, "E_UNAVAILABLE")])
def test_x_trouble_during_the_lookup_keeps_its_exit_code(
        cli: Cli, clock: Clock, world: Any, tmp_path: Path, status: int, count: int,
        code: str) -> None:
    world.fail_next(503, count=3, method="GET", path_contains=USERS)
    import_json(cli, archive_with(tmp_path / "arc", clock, ALICE))
    world.fail_next(status, count=count, method="GET", path_contains=BY_NAME)
    r = cli("check", "@alice", "--json")
    assert r.exit_code == 5, r
    assert error(r)["code"] == code
    assert contacts(cli) == {f"user_{ALICE}": ALICE}


def test_a_429_on_the_lookup_pauses_user_lookups_until_the_reset(
        cli: Cli, clock: Clock, world: Any, tmp_path: Path) -> None:
    world.fail_next(503, count=3, method="GET", path_contains=USERS)
    import_json(cli, archive_with(tmp_path / "arc", clock, ALICE))
    world.fail_next(429, method="GET", path_contains=BY_NAME, reset_in=600)
    assert cli("check", "@alice", "--json").exit_code == 5
    # Before X's reset nothing is asked; sending and reading DMs are not paused.
    world.reset_requests_log()
    r = cli("check", "@alice", "--json")
    assert r.exit_code == 5 and error(r)["family"] == "users"
    assert "looking up users" in error(r)["message"]
    assert world.requests_count() == 0
    clock.advance(minutes=11)
    r = cli("check", "@alice", "--json")
    assert r.exit_code in (0, 3), r
    assert r.json()["user_id"] == ALICE and world.requests_count() == 1


def test_sync_names_the_rest_when_x_no_longer_knows_the_first_hundred(
        cli: Cli, clock: Clock, world: Any, tmp_path: Path) -> None:
    """Sync names at most 100 archive contacts per public check; accounts X
    no longer knows must not make it ask about the same 100 for ever."""
    gone = [str(1_700_000_000_000_000_000 + n) for n in range(100)]
    known = [str(1_600_000_000_000_000_000 + n) for n in range(20)]
    with world.transaction():
        for n, uid in enumerate(known):
            world.add_user(f"person{n}", f"Person {n}", user_id=uid)
    world.fail_next(503, count=3, method="GET", path_contains=USERS)  # the import cannot name them
    import_json(cli, archive_with(tmp_path / "arc", clock, *gone, *known))
    assert cli("sync").exit_code == 0  # asks about the first 100: all gone
    assert "person3" not in contacts(cli)
    clock.advance(minutes=16)  # the next public check
    assert cli("sync").exit_code == 0
    found = contacts(cli)
    assert found["person3"] == known[3] and f"user_{gone[0]}" in found
