"""Numbers and durations on the command line (issue 11 point 5): one bounded
whole-number parser and one duration parser for the whole CLI; out of range,
non-ASCII digits and garbage are usage errors (exit 2), never OverflowError."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st

from dmtool.cli import params
from dmtool.cli.reference import leaf_commands
from dmtool.timeutil import parse_duration

INT64_MAX = 2**63 - 1


# --- the parsers ---------------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=30), st.integers().map(str),
                 st.from_regex(r"-?[0-9]{1,25}", fullmatch=True)),
       st.sampled_from([(1, INT64_MAX), (0, params.LIMIT_MAX), (1, params.DAYS_MAX)]))
def test_whole_number_accepts_only_ascii_digits_in_range(text, bounds):
    low, high = bounds
    parse = params.whole_number(low, high)
    try:
        n = parse(text)
    except typer.BadParameter as e:
        assert str(low) in str(e) and str(high) in str(e)  # the message names the range
        digits = text.lstrip("-")
        assert not (text.isascii() and digits.isdigit() and low <= int(text) <= high)
    else:
        assert low <= n <= high and text.isascii() and text.lstrip("-").isdigit()
        assert n == int(text)


def test_whole_number_examples():
    assert params.draft_id("9223372036854775807") == INT64_MAX
    assert params.limit("0") == 0 and params.limit("1000000") == 1_000_000
    assert params.limit(50) == 50  # a default passes through
    for bad in ("9223372036854775808", "0", "-1", "١", "１", "1e3", "", " 1", "1" * 5000):
        with pytest.raises(typer.BadParameter):
            params.draft_id(bad)
    with pytest.raises(typer.BadParameter, match="from 0 to 1000000"):
        params.limit("1000001")


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=20),
                 st.tuples(st.integers(min_value=0, max_value=10**20),
                           st.sampled_from("smhdwy")).map(lambda t: f"{t[0]}{t[1]}")))
def test_durations_are_bounded(text):
    try:
        d = parse_duration(text)
    except ValueError:
        return
    assert timedelta(minutes=1) <= d <= timedelta(days=3650)


def test_duration_examples():
    assert parse_duration("1m") == timedelta(minutes=1)
    assert parse_duration("3650d") == timedelta(days=3650)
    assert parse_duration(" 2w ") == timedelta(weeks=2)
    for bad in ("59s", "3651d", "1000000d", "0m", "٣d", "1.5h", "d", "9" * 5000 + "d"):
        with pytest.raises(ValueError):
            parse_duration(bad)


# --- every command uses them ------------------------------------------------------------------


def test_every_number_and_duration_parameter_uses_the_shared_parsers():
    """Walk the whole tree: no Typer int (unbounded, takes any Unicode digit),
    and every duration goes through the one parser."""
    shared = {"integer", "duration_param", "since_param"}
    found = []
    for path, cmd in leaf_commands():
        for p in cmd.params:
            kind = getattr(p.type, "name", "")
            if kind in ("integer", "integer range", "float", "float range"):
                assert getattr(getattr(p.type, "func", None), "__name__", "") in shared, \
                    f"`dmtool {path}` {p.name}: use cli/params.py's whole_number"
            if p.name in ("since", "days", "limit", "draft_id", "minutes", "until", "duration"):
                assert getattr(getattr(p.type, "func", None), "__name__", "") in shared, \
                    f"`dmtool {path}` {p.name}: use cli/params.py's parsers"
                found.append(f"{path} {p.name}")
    assert {"digest since", "report days", "log limit", "inbox limit", "thread limit",
            "send draft_id", "review draft_id", "drafts show draft_id"} <= set(found)


NUMBER_ARGS = [
    ["drafts", "show", "{}"], ["drafts", "edit", "{}"], ["drafts", "discard", "{}"],
    ["send", "{}", "--yes"], ["review", "{}", "--reject"], ["log", "-n", "{}"],
    ["log", "--limit", "{}"], ["inbox", "--limit", "{}"], ["thread", "bob", "--limit", "{}"],
    ["report", "--days", "{}"],
]


@pytest.mark.parametrize("value", ["9223372036854775808", "99999999999999999999999", "-1",
                                   "١", "1e3", "0x10", "nan"])
def test_numbers_out_of_range_are_usage_errors(cli, value):
    cli("contacts", "add", "bob")
    for args in NUMBER_ARGS:
        r = cli(*[a.format(value) for a in args], "--json")
        assert r.exit_code == 2, (args, value, r)
        assert json.loads(r.stderr)["error"]["code"] == "E_USAGE"
        assert "must be" in r.stderr or value == "-1"  # a bare -1 reads as an option


def test_the_largest_values_are_fine(cli):
    cli("contacts", "add", "bob")
    r = cli("drafts", "show", str(INT64_MAX))
    assert r.exit_code == 1 and "no draft" in r.stderr  # not an OverflowError
    assert cli("log", "-n", "1000000").exit_code == 0
    assert cli("log", "-n", "0").exit_code == 0  # 0: all
    assert cli("thread", "bob", "--limit", "0").exit_code == 0
    assert cli("inbox", "--limit", "1000000").exit_code == 0
    assert cli("report", "--days", "3650", "--json").json()["days"] == 3650
    assert cli("digest", "--since", "3650d", "--json").exit_code == 0


@pytest.mark.parametrize("value", ["1000000d", "3651d", "59s", "0m", "٣d", "x", "9" * 400 + "d"])
def test_durations_out_of_range_are_usage_errors(cli, value):
    r = cli("digest", "--since", value)
    assert r.exit_code == 2, r
    assert "unexpected" not in r.stderr and "Traceback" not in r.stderr
