"""`dmtool usage` and the cost in `report` (issue 16 points 2 and 4), on a
ledger whose numbers are known."""

from __future__ import annotations

import contextlib
import io
from datetime import UTC, datetime
from typing import Any

import pytest

from dmtool.services.budget import Prices
from dmtool.store import ledger as lstore
from tests.conftest import Result, profile_store
from tests.xworld import Cli, Clock

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def request(day: str, family: str, endpoint: str, *, hour: int = 9, sandbox: bool = False,
            method: str = "GET", status: int | None = 200, sends: int = 0,
            **reads: tuple[str, ...]) -> lstore.Request:
    return lstore.Request(at=f"{day}T{hour:02d}:00:00.000Z", day=day, sandbox=sandbox,
                          family=family, method=method, endpoint=endpoint, status=status,
                          error=None, reads=dict(reads), sends=sends)


KNOWN = [
    # 2026-02-27: last month.
    request("2026-02-27", "dm_read", "/2/dm_events", dm_events=("1", "2", "3")),
    # 2026-03-09: a page of 4 events naming 2 users, then the same 2 events again
    # (free: the same UTC day), a send, a lookup and a 429.
    request("2026-03-09", "dm_read", "/2/dm_events", dm_events=("10", "11", "12", "13"),
            users=("100", "101")),
    request("2026-03-09", "dm_read", "/2/dm_events", hour=10, dm_events=("12", "13"),
            users=("100",)),
    request("2026-03-09", "dm_send", "/2/dm_conversations/with/:participant_id/messages",
            method="POST", status=201, sends=1),
    request("2026-03-09", "users", "/2/users/by/username/:username", users=("102",)),
    request("2026-03-09", "dm_read", "/2/dm_events", hour=11, status=429),
    # 2026-03-10: the same events again, billed again (a new UTC day), and posts.
    request("2026-03-10", "dm_read", "/2/dm_events", hour=1, dm_events=("12", "13")),
    request("2026-03-10", "timelines", "/2/users/:id/mentions", hour=2,
            posts=("500", "501", "502"), users=("103",)),
    # A sandbox request: another backend, not this profile's.
    request("2026-03-10", "dm_read", "/2/dm_events", sandbox=True, dm_events=("9",)),
]


@pytest.fixture
def known(cli: Cli, clock: Clock) -> None:
    clock.set(NOW)
    assert cli("config", "set", "operator.name", "ops").exit_code == 0  # makes the profile
    store = profile_store()
    try:
        with store.tx() as conn:
            for r in KNOWN:
                lstore.add(conn, r)
    finally:
        store.close()


def days_of(r: Result) -> dict[str, Any]:
    return {d["date"]: d for d in r.json()["days"]}


def test_usage_numbers_on_a_known_ledger(cli: Cli, known: None) -> None:
    r = cli("usage", "--days", "2", "--json")
    assert r.exit_code == 0, r
    data = r.json()
    assert (data["first_day"], data["last_day"], data["backend"]) == (
        "2026-03-09", "2026-03-10", "x")
    assert data["estimate"] is True and "per developer app" in data["note"]
    assert data["since"] == "2026-02-27T09:00:00.000Z"
    day9, day10 = days_of(r)["2026-03-09"], days_of(r)["2026-03-10"]
    assert day9["requests"] == 5
    assert day9["units"] == {"dm_events": 6, "users": 4, "posts": 0, "sends": 1}
    assert day9["billable"] == {"dm_events": 4, "users": 3, "posts": 0, "sends": 1}
    assert day9["usd"] == pytest.approx(4 * 0.010 + 3 * 0.010 + 0.015)
    fams = {f["family"]: f for f in day9["families"]}
    assert fams["dm_read"]["requests"] == 3  # the 429 too, with nothing billed
    assert fams["dm_read"]["billable"]["dm_events"] == 4
    assert day10["billable"] == {"dm_events": 2, "users": 1, "posts": 3, "sends": 0}
    assert day10["usd"] == pytest.approx(2 * 0.010 + 0.010 + 3 * 0.001)
    assert data["total"]["usd"] == pytest.approx(day9["usd"] + day10["usd"])
    assert data["month"]["month"] == "2026-03"
    assert data["month"]["usd"] == pytest.approx(day9["usd"] + day10["usd"])
    assert data["budget"]["day"]["limit"] is None
    assert data["budget"]["day"]["spent"] == pytest.approx(day10["usd"])
    assert data["prices"]["dm_send"] == 0.015


def test_usage_of_a_month_and_with_budgets(cli: Cli, known: None) -> None:
    data = cli("usage", "--month", "2026-02", "--json").json()
    assert (data["first_day"], data["last_day"]) == ("2026-02-01", "2026-02-28")
    assert data["month"]["usd"] == pytest.approx(0.03) == data["total"]["usd"]
    assert cli("config", "set", "x.budget.month_usd", "1").exit_code == 0
    assert cli("config", "set", "x.price.dm_event_read", "0.02").exit_code == 0
    data = cli("usage", "--json").json()
    assert len(data["days"]) == 7  # the default: the last 7 UTC days
    month = data["budget"]["month"]
    spent = 6 * 0.02 + 4 * 0.010 + 0.015 + 3 * 0.001
    assert month["spent"] == pytest.approx(spent)
    assert month["left"] == pytest.approx(1 - spent) and month["share"] == pytest.approx(spent)


def test_usage_piped_and_on_a_terminal(cli: Cli, known: None) -> None:
    piped = cli("usage", "--days", "2").stdout.splitlines()
    rows = [line.split("\t") for line in piped]
    assert ["2026-03-09", "dm_read", "3", "9", "6", "0.060000"] in rows  # units of all kinds
    assert ["2026-03-10", "timelines", "1", "4", "4", "0.013000"] in rows
    assert rows[-3][0] == "since" and rows[-3][1].startswith("2026-02-27T09:00:00")
    assert any(r[0] == "budget" and r[1] == "month" for r in rows)
    # On a terminal: a bar chart by day, the families, the month and the budget.
    from dmtool.cli import usage_cmd
    from dmtool.services import budget
    from dmtool.services.usage import build_usage

    prices = Prices({"dm_events": 0.010, "users": 0.010, "posts": 0.001, "sends": 0.015})
    store = profile_store()
    try:
        u = build_usage(store.conn, sandbox=False, prices=prices,
                        limits=budget.Limits(day=None, month=5.0), now=NOW, days=2)
    finally:
        store.close()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        usage_cmd._print_rich(u, "2026-02-27 09:00")
    text = out.getvalue()
    assert "Tue 10 Mar" in text and "█" in text and "sending DMs" in text
    assert "month: $0.118 of $5.00 (2%), $4.882 left" in text
    assert "bills per developer app" in text and "data since 2026-02-27 09:00" in text


@pytest.mark.parametrize("args", [["--days", "3", "--month", "2026-03"], ["--month", "2026-13"],
                                  ["--month", "march"], ["--month", "2027-01"],
                                  ["--days", "0"]])
def test_usage_refuses_bad_periods(cli: Cli, known: None, args: list[str]) -> None:
    r = cli("usage", *args)
    assert r.exit_code == 2, r


def test_report_shows_the_cost_of_its_period(cli: Cli, known: None) -> None:
    store = profile_store()
    try:
        from dmtool.store import contacts as cstore
        from dmtool.store import messages as mstore

        with store.tx() as conn:
            for n, handle in enumerate(("ann", "ben", "cy")):
                c, _ = cstore.upsert_x_user(conn, str(700 + n), handle, None,
                                            now="2026-03-09T08:00:00.000Z")
                mstore.add_message(conn, event_id=f"in{n}", conversation_id=f"{700 + n}-1",
                                   contact_id=c.id, direction="in", text="hi",
                                   at="2026-03-09T08:00:00.000Z", source="sync",
                                   now="2026-03-09T08:00:00.000Z")
                if handle != "cy":  # two answered, and an autoack is no answer
                    mstore.add_message(conn, event_id=f"out{n}", conversation_id=f"{700 + n}-1",
                                       contact_id=c.id, direction="out", text="hello",
                                       at="2026-03-09T09:00:00.000Z", source="send",
                                       now="2026-03-09T09:00:00.000Z")
                else:
                    mstore.add_message(conn, event_id=f"ack{n}", conversation_id=f"{700 + n}-1",
                                       contact_id=c.id, direction="out", text="thanks",
                                       at="2026-03-09T09:00:00.000Z", source="autoack",
                                       now="2026-03-09T09:00:00.000Z")
    finally:
        store.close()
    cost = cli("report", "--days", "2", "--json").json()["cost"]
    usd = 4 * 0.010 + 3 * 0.010 + 0.015 + 2 * 0.010 + 0.010 + 3 * 0.001
    assert cost["usd"] == pytest.approx(usd)
    assert cost["per_conversation_answered"] == pytest.approx(usd / 2)
    assert cost["since"] == "2026-03-09T00:00:00.000Z"  # the period's start: data before it
    month = cli("report", "--days", "30", "--json").json()["cost"]
    assert month["since"] == "2026-02-27T09:00:00.000Z"  # the ledger began within the period
    assert month["usd"] == pytest.approx(usd + 0.03)
    piped = [line.split("\t") for line in cli("report", "--days", "2").stdout.splitlines()]
    assert ["cost_usd", f"{usd:.6f}"] in piped


def test_report_on_a_store_without_requests_says_so(cli: Cli, clock: Clock) -> None:
    assert cli("config", "set", "operator.name", "ops").exit_code == 0
    cost = cli("report", "--json").json()["cost"]
    assert cost == {"usd": 0, "since": None, "per_conversation_answered": None}
