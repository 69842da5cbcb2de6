"""One record says who is blocked: the contact row. Suppressions (what outlives
`contacts forget`) are copied onto the row by every writer that creates a
contact or learns its id or handle, so the gate and `contacts list` agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dmtool.x.sandbox import SANDBOX_ME
from tests.conftest import Result
from tests.test_archive import conversation, dm, files, folder, imported, js
from tests.xworld import ALICE, Cli, Clock, sync


def blocked(cli: Cli, handle: str) -> bool:
    """Blocked at the gate (`check`); `contacts list` must say the same."""
    r: Result = cli("check", handle, "--json")
    assert r.exit_code in (0, 3), r
    gate = "E_BLOCKED" in {x["code"] for x in r.json()["reasons"]}
    listed = [c["handle"] for c in cli("contacts", "list", "--status", "blocked", "--json").json()]
    assert gate == (handle.lstrip("@").lower() in {h.lower() for h in listed}), (gate, listed)
    return gate


def csv_import(cli: Cli, tmp_path: Path, handle: str, user_id: str) -> None:
    f = tmp_path / f"{handle}.csv"
    f.write_text(f"handle,user_id\n{handle},{user_id}\n")
    assert cli("contacts", "import", str(f)).exit_code == 0


def forget(cli: Cli, handle: str) -> None:
    assert cli("contacts", "forget", handle, "--yes").exit_code == 0


def blocked_and_forgotten(cli: Cli, tmp_path: Path, handle: str, user_id: str) -> None:
    """Leave only a suppression kept under `user_id` (and `handle`)."""
    csv_import(cli, tmp_path, handle, user_id)
    assert cli("contacts", "block", handle).exit_code == 0
    forget(cli, handle)


def test_block_and_unblock_leave_nothing_behind(cli: Cli) -> None:
    cli("contacts", "add", "frank")
    assert not blocked(cli, "frank")
    assert cli("contacts", "block", "frank").exit_code == 0
    assert blocked(cli, "frank")
    assert cli("contacts", "unblock", "frank").exit_code == 0
    assert not blocked(cli, "frank")
    forget(cli, "frank")
    cli("contacts", "add", "frank")
    assert not blocked(cli, "frank")


def test_forgotten_then_added_back_by_handle(cli: Cli) -> None:
    cli("contacts", "block", "@gina")
    forget(cli, "gina")
    cli("contacts", "add", "GINA")
    assert blocked(cli, "gina")


def test_forgotten_then_back_by_id_under_another_handle(cli: Cli, tmp_path: Path) -> None:
    blocked_and_forgotten(cli, tmp_path, "sam", "104")
    csv_import(cli, tmp_path, "samuel", "104")
    assert blocked(cli, "samuel")


def test_added_by_handle_then_its_id_is_learnt(cli: Cli, tmp_path: Path) -> None:
    blocked_and_forgotten(cli, tmp_path, "sam", "104")
    cli("contacts", "add", "newsam")
    assert not blocked(cli, "newsam")
    csv_import(cli, tmp_path, "newsam", "104")  # set_user_id
    assert blocked(cli, "newsam")


def test_unblocking_by_handle_leaves_the_block_kept_for_an_account(
        cli: Cli, tmp_path: Path) -> None:
    """Found in review: the handle-only contact took the block kept for user 104,
    who used that handle; unblocking it by handle dropped 104's entry too, so
    104 could be messaged under a new handle. Nobody can tell @sam is 104
    until X says so: the contact is unblocked, 104 stays blocked."""
    blocked_and_forgotten(cli, tmp_path, "sam", "104")
    cli("contacts", "add", "sam")
    assert blocked(cli, "sam")
    r = cli("contacts", "unblock", "sam")
    assert r.exit_code == 0 and "the block on X user 104, who used @sam, stays" in r.stderr
    assert not blocked(cli, "sam")
    csv_import(cli, tmp_path, "sam_renamed", "104")  # 104 comes back under another handle
    assert blocked(cli, "sam_renamed")


def test_unblocking_a_contact_known_by_handle_leaves_nothing_of_its_own(cli: Cli) -> None:
    cli("contacts", "block", "@tess")  # kept under the handle: no id known
    assert cli("contacts", "unblock", "tess").exit_code == 0
    forget(cli, "tess")
    cli("contacts", "add", "tess")
    assert not blocked(cli, "tess")


def test_archive_import_brings_back_a_block_kept_by_id(cli: Cli, tmp_path: Path) -> None:
    ann = "200"  # Ann DMs you in the test archive
    blocked_and_forgotten(cli, tmp_path, "ann", ann)
    imported(cli, folder(tmp_path / "a", files()))
    assert blocked(cli, f"user_{ann}")


def _archive_with_alice(tmp_path: Path) -> Path:
    me = SANDBOX_ME[0]
    data = files(me)
    data["direct-messages.js"] = js("direct_messages", [conversation(
        me, ALICE, dm("1001", ALICE, me, "hello from long ago", "2021-07-20T10:00:00.000Z"))])
    return folder(tmp_path / "a", data)


@pytest.mark.parametrize("blocked_side", ["by handle", "by id"])
def test_merge_keeps_a_block_from_either_record(cli: Cli, tmp_path: Path, world: Any,
                                                clock: Clock, blocked_side: str) -> None:
    cli("contacts", "add", "@alice")
    world.fail_next(503, count=3, method="GET", path_contains="/2/users")  # X cannot name them yet
    imported(cli, _archive_with_alice(tmp_path))  # a second record: user_<ALICE>
    cli("contacts", "block", "alice" if blocked_side == "by handle" else f"user_{ALICE}")
    sync(cli)  # X names user_<ALICE> alice: the two records become one
    alices = [c for c in cli("contacts", "list", "--json").json() if c["user_id"] == ALICE
              or c["handle"] == "alice"]
    assert [(c["handle"], c["user_id"]) for c in alices] == [("alice", ALICE)]
    assert blocked(cli, "alice")


def test_a_block_kept_by_handle_follows_that_handle_to_a_known_user(
        cli: Cli, world: Any, clock: Clock) -> None:
    """Someone blocked by handle (id unknown) and forgotten: when a contact X
    knows by id takes that handle, the block holds for it."""
    cli("contacts", "block", "@zed")
    forget(cli, "zed")
    world.incoming_dm(ALICE, "hi", at=clock.ago(hours=1))
    sync(cli)
    assert not blocked(cli, "alice")
    world.add_user("zed", "Zed", user_id=ALICE)
    clock.advance(minutes=10)
    world.incoming_dm(ALICE, "new handle, same me", at=clock.ago(minutes=1))
    sync(cli)
    assert blocked(cli, "zed")
