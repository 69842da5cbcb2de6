"""The argument scanner (cli/argscan.py): global options after the command
name, and only the real --json switches errors to JSON (issue 11 point 10,
issue 12 point 8)."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmtool.cli.argscan import Shape, scan
from tests.conftest import profile_env

ROOT = Shape(group=True, value_options={"--profile": 1, "-p": 1},
             options=frozenset({"--profile", "-p", "--verbose", "-v", "--version"}))
SHAPES = {
    (): ROOT,
    ("contacts",): Shape(group=True),
    ("contacts", "add"): Shape(value_options={"--name": 1, "--tag": 1},
                               options=frozenset({"--name", "--tag", "--json"})),
    ("contacts", "import"): Shape(value_options={"--format": 1},
                                  options=frozenset({"--format", "--json", "--skip-invalid"})),
    ("digest",): Shape(value_options={"--format": 1, "--since": 1},
                       options=frozenset({"--format", "--since", "--json"}), format_is_output=True),
    ("sync",): Shape(options=frozenset({"--json", "--wait"})),
    ("note",): Shape(),
}


def resolve(path: tuple[str, ...]) -> Shape | None:
    return SHAPES.get(path)


def test_globals_after_the_command_move_before_it():
    s = scan(["sync", "--profile", "demo", "-v", "--json"], resolve)
    assert s.args == ["--profile", "demo", "-v", "sync", "--json"]
    assert s.json and s.path == ("sync",)
    assert scan(["contacts", "add", "bob", "-pwork", "--profile=home"], resolve).args == \
        ["-pwork", "--profile=home", "contacts", "add", "bob"]
    # before the command they stay where they are (the root parses them)
    assert scan(["-p", "x", "sync"], resolve).args == ["-p", "x", "sync"]


def test_option_values_and_the_double_dash_are_left_alone():
    s = scan(["contacts", "add", "bob", "--name", "-p", "--tag", "--json"], resolve)
    assert s.args == ["contacts", "add", "bob", "--name", "-p", "--tag", "--json"]
    assert not s.json  # "--json" is the value of --tag
    s = scan(["note", "bob", "--", "--json", "-v", "--profile", "x"], resolve)
    assert s.args == ["note", "bob", "--", "--json", "-v", "--profile", "x"]
    assert not s.json


def test_only_the_real_switch_means_json():
    assert not scan(["note", "bob", "--json"], resolve).json  # note has no --json
    assert not scan(["contacts", "import", "f", "--format", "json"], resolve).json  # input format
    assert scan(["digest", "--format", "json"], resolve).json  # output format
    assert scan(["digest", "--format=json"], resolve).json
    assert not scan(["--json", "sync"], resolve).json  # not the root's option
    assert not scan(["nosuch", "--json"], resolve).json  # unknown command: left to the parser


def test_a_global_option_without_its_value():
    assert scan(["sync", "--profile"], resolve).error == "option --profile needs a value"
    assert scan(["sync", "--profile", "--", "x"], resolve).error == "option --profile needs a value"
    assert scan(["sync", "--profile", "x"], resolve).error is None


TOKENS = st.sampled_from(["sync", "contacts", "add", "import", "digest", "note", "bob", "--json",
                          "--profile", "-p", "-v", "--verbose", "--name", "--tag", "--format",
                          "json", "csv", "--", "-", "--since", "-pwork", "--profile=x", "x"])


@settings(max_examples=400, deadline=None)
@given(st.lists(TOKENS, max_size=12))
def test_scanning_only_moves_tokens(args):
    s = scan(args, resolve)
    assert sorted(s.args) == sorted(args)  # nothing lost, nothing added
    # The first `--` that is not an option's value (as Typer reads it) ends the options:
    # everything after it stays as it was, in order, at the end.
    takes_value = {"--profile", "-p", "--name", "--tag", "--format", "--since"}
    ends = [i for i, a in enumerate(args) if a == "--" and (i == 0 or args[i - 1] not in takes_value)]
    if ends:
        tail = args[ends[0]:]
        assert s.args[-len(tail):] == tail
    before_dashes = args[:ends[0]] if ends else args
    if "--json" not in before_dashes and "--format" not in before_dashes \
            and "--format=json" not in before_dashes:
        assert not s.json
    if s.error:  # a usage error (exit 2): nothing runs
        return
    again = scan(s.args, resolve)  # a second pass changes nothing more
    assert again.args == s.args and again.json == s.json


# --- through the real command line ------------------------------------------------------


@pytest.fixture(autouse=True)
def restore_logging():
    """`-v` in-process sets up the root logger on this run's stderr: put it back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_profile_and_verbose_after_the_command(cli, store_engine):
    work = profile_env("work")  # its own store on PostgreSQL too
    assert cli("profiles", "add", "work", env=work).exit_code == 0
    assert cli("contacts", "add", "zed", "--profile", "work", env=work).exit_code == 0
    assert [c["handle"] for c in cli("contacts", "list", "-p", "work", "--json",
                                     env=work).json()] == ["zed"]
    assert cli("contacts", "list", "--json").json() == []  # default profile untouched
    r = cli("contacts", "list", "-v", "--json", "--profile=work", env=work)
    assert r.exit_code == 0 and r.json()[0]["handle"] == "zed"
    # On a server's store, `profiles add` leaves a config.toml to say the profile exists.
    assert cli("profiles", "list", "--json", "-p", "work").json()[1] == \
        {"profile": "work", "current": True, "config": store_engine == "pg", "store": True}


def test_global_options_keep_their_meaning_for_option_values(cli):
    assert cli("contacts", "add", "bob", "--name", "-p").exit_code == 0
    assert cli("contacts", "show", "bob", "--json").json()["name"] == "-p"
    assert cli("contacts", "note", "bob", "--", "-v").exit_code == 0
    assert cli("contacts", "show", "bob", "--json").json()["notes"][0]["text"] == "-v"


def test_a_literal_json_is_not_the_switch(cli, tmp_path):
    r = cli("contacts", "note", "nobody", "--", "--json")
    assert r.exit_code == 1 and r.stderr.startswith("error: no contact @nobody")
    r = cli("contacts", "import", str(tmp_path / "none.csv"), "--format", "json")
    assert r.exit_code == 1 and r.stderr.startswith("error: no such file")
    r = cli("draft", "bob", "--file", "--json")  # the file is named --json
    assert r.exit_code == 1 and r.stderr.startswith("error:")
    r = cli("contacts", "list", "--profile")
    assert r.exit_code == 2 and "--profile needs a value" in r.stderr


def test_the_real_switch_still_makes_usage_errors_json(cli):
    for args in (["contacts", "list", "--json", "--nope"], ["digest", "--format", "json", "--nope"],
                 ["contacts", "export", "--format=json", "--nope"],
                 ["contacts", "list", "--json", "--profile"]):
        r = cli(*args)
        assert r.exit_code == 2 and r.stdout == "", args
        assert json.loads(r.stderr)["error"]["code"] == "E_USAGE", args


def test_verbose_after_the_command_turns_on_the_request_log(cli, world):
    quiet = cli("sync")
    assert quiet.exit_code == 0 and "X GET" not in quiet.stderr
    loud = cli("sync", "-v")
    assert loud.exit_code == 0 and "X GET /2/dm_events" in loud.stderr
