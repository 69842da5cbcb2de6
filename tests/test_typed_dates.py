"""Dates a person types (found by the property test over every command,
tests/test_every_command.py): `snooze until`, `--since` and `sandbox receive
--at` are read by one parser (timeutil.parse_when), which keeps them within
the years 1970 to 2999. Before it, `0001-01-01` in a zone east of UTC, or
`9999-12-31` west of it, ended in "unexpected OverflowError/ValueError ...
please report it" (`digest`, `log`, `search`, `snooze`, `sandbox receive`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmtool.timeutil import TYPED_MAX, TYPED_MIN, OutOfRange, parse_when
from tests.xworld import ALICE, sync

ZONES = [UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=30),
                 st.datetimes().map(datetime.isoformat),
                 st.dates().map(str),
                 st.sampled_from(["0001-01-01", "9999-12-31", "9999-12-31T23:59+14:00",
                                  "0001-01-01T00:00-12:00", "1970-01-01", "2999-12-31T23:59",
                                  "3000-01-01"])),
       st.sampled_from(ZONES))
def test_a_typed_date_is_in_range_or_a_value_error(text, zone):
    try:
        at = parse_when(text, zone)
    except ValueError:
        return
    assert TYPED_MIN <= at < TYPED_MAX and at.tzinfo == UTC


def test_the_edges():
    assert parse_when("1970-01-01", UTC) == TYPED_MIN
    assert parse_when("2999-12-31T23:59", UTC) == datetime(2999, 12, 31, 23, 59, tzinfo=UTC)
    for text, zone in (("0001-01-01", ZONES[1]), ("9999-12-31", ZONES[2]),
                       ("1969-12-31T23:59Z", UTC), ("3000-01-01", UTC)):
        with pytest.raises(OutOfRange, match="1970 to 2999"):
            parse_when(text, zone)


@pytest.fixture(params=["Asia/Tokyo", "Pacific/Honolulu"])
def zone(request, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """East and west of UTC, as TZ sets it for a new process."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("date", ["0001-01-01", "0001-01-01T00:00+14:00", "9999-12-31",
                                  "9999-12-31T23:00-12:00", "1969-12-31"])
def test_every_command_that_takes_a_date_refuses_one_out_of_range(cli, world, clock, zone, date):
    world.incoming_dm(ALICE, "Hello!", at=clock.ago(hours=1))
    sync(cli)
    for args, code in ((["snooze", "alice", "until", date], 2), (["digest", "--since", date], 2),
                       (["log", "--since", date], 2), (["search", "hello", "--since", date], 2),
                       (["sandbox", "receive", "alice", "Hi", "--at", date], 1)):
        r = cli(*args)
        assert r.exit_code == code, (args, r)
        assert "unexpected" not in r.stderr and "1970 to 2999" in r.stderr, (args, r)
    assert cli("log", "--since", "2026-01-01").exit_code == 0  # an ordinary date still works
