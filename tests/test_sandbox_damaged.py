"""A damaged sandbox.json (issue 11 point 10): named, exit 1, never a
JSONDecodeError, AttributeError or KeyError."""

from __future__ import annotations

import json

import pytest

from dmtool.paths import Paths
from tests.xworld import ALICE


def damage(world, clock, how: str) -> None:
    path = Paths.resolve("default").sandbox_file
    world.incoming_dm(ALICE, "hello", at=clock.ago(minutes=5))
    state = json.loads(path.read_text())
    if how == "garbage":
        path.write_bytes(b"\x00\x17garbage{{{")
    elif how == "not utf-8":
        path.write_bytes(b'{"users": "\xff\xfe"}')
    elif how == "list":
        path.write_text("[]")
    elif how == "event without fields":
        state["dm_events"].append({})
        path.write_text(json.dumps(state))
    elif how == "event without sender":
        del state["dm_events"][0]["sender_id"]
        path.write_text(json.dumps(state))
    elif how == "event with a bad time":
        state["dm_events"][0]["created_at"] = "yesterday"
        path.write_text(json.dumps(state))
    elif how == "users as a list":
        state["users"] = []
        path.write_text(json.dumps(state))
    elif how == "user without a name":
        del next(iter(state["users"].values()))["username"]
        path.write_text(json.dumps(state))
    elif how == "counter as text":
        state["last_id"] = "many"
        path.write_text(json.dumps(state))
    elif how == "huge number":
        path.write_text('{"last_id": ' + "9" * 5000 + "}")
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["garbage", "not utf-8", "list", "event without fields",
                                 "event without sender", "event with a bad time",
                                 "users as a list", "user without a name", "counter as text",
                                 "huge number"])
def test_a_damaged_sandbox_file_is_named(cli, world, clock, how):
    damage(world, clock, how)
    path = Paths.resolve("default").sandbox_file
    for args in (["sync"], ["check", "bob"], ["sync", "--json"]):
        r = cli(*args)
        assert r.exit_code == 1, (args, r)
        assert "unexpected" not in r.stderr and "E_INTERNAL" not in r.stderr, r
        assert str(path) in r.stderr and "damaged" in r.stderr, r
    err = json.loads(cli("sync", "--json").stderr)["error"]
    assert err["code"] == "E_SANDBOX_DAMAGED" and "move it aside" in err["hint"]


def test_moving_it_aside_starts_an_empty_world(cli, world, clock):
    damage(world, clock, "garbage")
    path = Paths.resolve("default").sandbox_file
    path.rename(path.with_suffix(".bad"))
    assert cli("sync").exit_code == 0
