"""`dmtool report`: exact numbers on a store with exactly known messages."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from dmtool.services.sync import apply_optout_words
from dmtool.store import contacts as cstore
from dmtool.store import messages as mstore
from dmtool.store import open_store
from dmtool.store.conversations import set_state
from tests.conftest import profile_store
from tests.xworld import ALICE, BOB, T0, sync

ME = "1000"
NOW = "2026-03-10T12:00:00.000Z"

# handle -> (user id, [(at, direction, source, text)]). Times are 2026 UTC.
MESSAGES: dict[str, tuple[str, list[tuple[str, str, str, str]]]] = {
    # two waits in the period, answered after 1h and 2h; an autoack is not a reply
    "ann": ("11", [("03-05T10:00", "in", "sync", "hi"),
                   ("03-05T11:00", "out", "sync", "hello"),
                   ("03-06T09:00", "in", "sync", "a question"),
                   ("03-06T09:00:05", "out", "autoack", "thanks, back soon"),
                   ("03-06T09:30", "in", "sync", "still there?"),
                   ("03-06T11:00", "out", "send", "yes, here")]),
    # a wait that began before the period is not this period's; a later one is (6h)
    "bob": ("12", [("03-01T10:00", "in", "sync", "hello?"),
                   ("03-04T08:00", "in", "sync", "anyone?"),
                   ("03-04T09:00", "out", "sync", "sorry, here"),
                   ("03-09T12:00", "in", "sync", "one more"),
                   ("03-09T18:00", "out", "sync", "sure")]),
    # unanswered, still open: waiting 6h
    "cat": ("13", [("03-10T06:00", "in", "sync", "morning"),
                   ("03-10T06:00:01", "out", "autoack", "thanks, back soon")]),
    # unanswered, closed: marked done
    "dan": ("14", [("03-07T12:00", "in", "sync", "fyi")]),
    # unanswered, closed: opted out in the period
    "eve": ("15", [("03-08T12:00", "in", "sync", "STOP")]),
    # you wrote last, 37 days ago
    "fay": ("16", [("02-01T10:00", "in", "sync", "hey"),
                   ("02-01T12:00", "out", "archive", "hey you")]),
    # waiting since Feb 20 (18 days): a nudge in the period does not restart the wait
    "gus": ("17", [("02-20T12:00", "in", "sync", "price?"),
                   ("03-05T12:00", "in", "sync", "price??")]),
    # a STOP from January that dmtool learns of today (an archive import)
    "hal": ("18", [("01-10T12:00", "in", "archive", "STOP")]),
}


def stamp(short: str) -> str:
    return f"2026-{short}{':00' if short.count(':') == 1 else ''}.000Z"


def seed(messages: dict[str, tuple[str, list[tuple[str, str, str, str]]]] = MESSAGES) -> None:
    store = profile_store()
    n = 0
    with store.tx() as conn:
        for handle, (uid, items) in messages.items():
            c, _ = cstore.upsert_x_user(conn, uid, handle, handle.title(), now=NOW)
            for at, direction, source, text in items:
                n += 1
                mstore.add_message(conn, event_id=f"e{n}",
                                   conversation_id=mstore.conversation_id_for(ME, uid),
                                   contact_id=c.id, direction=direction, text=text, at=stamp(at),
                                   source=source, now=NOW)
                if direction == "in":  # as sync and the archive import do
                    apply_optout_words(conn, c.id, text, stamp(at), now=NOW, opted_out=[])
        dan = cstore.get(conn, "dan")
        set_state(conn, dan.id, "done")
    store.close()


@pytest.fixture
def known(cli, monkeypatch) -> None:
    monkeypatch.setenv("DMTOOL_NOW", NOW)
    seed()
    # an opt-out you confirm yourself counts too, at the time you confirm it
    assert cli("contacts", "add", "ivy").exit_code == 0
    assert cli("contacts", "optout", "ivy", "--yes").exit_code == 0


def test_report_numbers_on_a_known_store(cli, known):
    r = cli("report", "--days", "7", "--json")
    assert r.exit_code == 0, r
    assert r.json() == {
        "days": 7, "since": "2026-03-04T00:00:00.000Z", "until": NOW, "timezone": "UTC",
        "messages": {"in": 9, "out": 6, "autoack": 2, "by_day": [
            {"date": "2026-03-04", "in": 1, "out": 1, "autoack": 0},
            {"date": "2026-03-05", "in": 2, "out": 1, "autoack": 0},
            {"date": "2026-03-06", "in": 2, "out": 2, "autoack": 1},
            {"date": "2026-03-07", "in": 1, "out": 0, "autoack": 0},
            {"date": "2026-03-08", "in": 1, "out": 0, "autoack": 0},
            {"date": "2026-03-09", "in": 1, "out": 1, "autoack": 0},
            {"date": "2026-03-10", "in": 1, "out": 1, "autoack": 1}]},
        # ann 1h and 2h, bob 6h: median 2h; p90 = 2h + 0.8 * (6h - 2h)
        "first_reply": {"waits": 6, "answered": 3, "unanswered": 3, "unanswered_open": 1,
                        "unanswered_closed": 2, "median_seconds": 7200,
                        "p90_seconds": 18720},
        "open_conversations": {"waiting_for_you": 2, "waiting_for_them": 3, "by_age": [
            {"age": "<1d", "min_seconds": 0, "max_seconds": 86400,
             "waiting_for_you": 1, "waiting_for_them": 1},     # cat 6h; bob 18h
            {"age": "1d-3d", "min_seconds": 86400, "max_seconds": 259200,
             "waiting_for_you": 0, "waiting_for_them": 0},
            {"age": "3d-7d", "min_seconds": 259200, "max_seconds": 604800,
             "waiting_for_you": 0, "waiting_for_them": 1},     # ann, 4 days
            {"age": "7d-30d", "min_seconds": 604800, "max_seconds": 2592000,
             "waiting_for_you": 1, "waiting_for_them": 0},     # gus, since Feb 20
            {"age": "30d+", "min_seconds": 2592000, "max_seconds": None,
             "waiting_for_you": 0, "waiting_for_them": 1}]},   # fay
        "opt_outs": 2,  # eve and ivy; hal's STOP is from January
        # No request to X recorded on this store (tests/test_usage.py has them).
        "cost": {"usd": 0, "since": None, "per_conversation_answered": None},
    }


def test_unanswered_open_waits_are_what_the_inbox_shows(cli, known):
    """The report and the inbox agree on who is waiting for you."""
    needs_reply = {i["handle"] for i in cli("inbox", "--json").json() if i["needs_reply"]}
    assert needs_reply == {"cat", "gus"}
    data = cli("report", "--days", "7", "--json").json()
    assert data["open_conversations"]["waiting_for_you"] == len(needs_reply)
    # gus has waited since before the period, so only cat's wait is this period's
    assert data["first_reply"]["unanswered_open"] == 1


def test_the_period_follows_days(cli, known):
    one = cli("report", "--days", "1", "--json").json()
    assert one["since"] == "2026-03-10T00:00:00.000Z"
    assert one["messages"]["by_day"] == [{"date": "2026-03-10", "in": 1, "out": 1, "autoack": 1}]
    assert one["first_reply"]["waits"] == 1 and one["first_reply"]["median_seconds"] is None
    assert one["opt_outs"] == 1  # ivy, confirmed today
    month = cli("report", "--json").json()  # 30 days, from Feb 9
    assert len(month["messages"]["by_day"]) == 30
    assert (month["messages"]["in"], month["messages"]["out"]) == (11, 6)
    # bob's wait from Mar 1 (answered after 71h) and gus's from Feb 20 now start in the period
    fr = month["first_reply"]
    assert (fr["waits"], fr["answered"], fr["unanswered_open"]) == (8, 4, 2)
    assert fr["median_seconds"] == (7200 + 21600) / 2
    # the open conversations are a snapshot of now, whatever the period
    assert month["open_conversations"] == one["open_conversations"]


def test_piped_report_is_tab_separated(cli, known):
    r = cli("report", "--days", "7")
    assert r.exit_code == 0 and r.stderr == ""
    assert r.stdout.splitlines() == [
        "2026-03-04\t1\t1", "2026-03-05\t2\t1", "2026-03-06\t2\t2", "2026-03-07\t1\t0",
        "2026-03-08\t1\t0", "2026-03-09\t1\t1", "2026-03-10\t1\t1",
        "total\t9\t6", "autoack\t2",
        "first_reply_waits\t6", "first_reply_answered\t3", "first_reply_unanswered\t3",
        "first_reply_unanswered_open\t1", "first_reply_unanswered_closed\t2",
        "first_reply_median_seconds\t7200", "first_reply_p90_seconds\t18720",
        "open\t<1d\t1\t1", "open\t1d-3d\t0\t0", "open\t3d-7d\t0\t1", "open\t7d-30d\t1\t0",
        "open\t30d+\t0\t1",
        "opt_outs\t2", "cost_usd\t0.000000", "cost_since\t", "cost_per_conversation_answered\t",
        "timezone\tUTC"]


def test_terminal_report_says_it_in_words(cli, known, monkeypatch):
    from dmtool import output

    monkeypatch.setattr(output, "stdout_is_tty", lambda: True)
    out = cli("report", "--days", "7").stdout
    assert "Last 7 days" in out and "Fri 06 Mar" in out
    assert "median 2h 00m, 90% within 5h 12m (3 answered)" in out
    assert "1 still waiting, 2 closed" in out
    assert "waiting for you" in out and "30+ days" in out
    assert "Opt-outs in the period: 2" in out
    assert "\t" not in out
    weekly = cli("report", "--days", "60").stdout  # a line a week: still fits a screen
    assert "28 Feb - 06 Mar" in weekly and "Sat 28 Feb" not in weekly


def test_empty_store(cli):
    r = cli("report")
    assert r.exit_code == 0 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "dmtool sync" in r.stderr
    data = cli("report", "--json", "--days", "3").json()
    assert data["messages"]["in"] == data["messages"]["out"] == 0
    assert [d["in"] + d["out"] for d in data["messages"]["by_day"]] == [0, 0, 0]
    assert data["first_reply"] == {"waits": 0, "answered": 0, "unanswered": 0,
                                   "unanswered_open": 0, "unanswered_closed": 0,
                                   "median_seconds": None, "p90_seconds": None}
    assert data["open_conversations"]["waiting_for_you"] == 0 and data["opt_outs"] == 0
    assert data["since"].endswith("T00:00:00.000Z") and data["until"].endswith("Z")


@pytest.mark.parametrize("days", ["0", "3651", "-1", "week"])
def test_days_out_of_range_is_a_usage_error(cli, days):
    r = cli("report", "--days", days)
    assert r.exit_code == 2 and r.stdout == ""
    assert "--days" in r.stderr and "Traceback" not in r.stderr
    r = cli("report", "--days", days, "--json")
    assert r.exit_code == 2 and r.stdout == ""
    err = json.loads(r.stderr)["error"]
    assert err["code"] == "E_USAGE" and "--days" in err["message"]


def test_report_from_a_synced_sandbox(cli, world, clock):
    """End to end: DMs and a STOP arrive through sync from the sandbox X."""
    world.incoming_dm(ALICE, "Hi! is the beta open?", at=clock.ago(hours=5))
    world.outgoing_dm(ALICE, "It is, here is how to join.", at=clock.ago(hours=4, minutes=30))
    world.incoming_dm(BOB, "hello", at=clock.ago(hours=3))
    world.incoming_dm(BOB, "STOP", at=clock.ago(hours=2))
    sync(cli)
    data: dict[str, Any] = cli("report", "--days", "1", "--json").json()
    assert data["until"] == "2026-03-02T12:00:00.000Z" and T0.hour == 12
    assert (data["messages"]["in"], data["messages"]["out"]) == (3, 1)
    assert data["first_reply"]["median_seconds"] == timedelta(minutes=30).total_seconds()
    assert data["first_reply"]["unanswered_closed"] == 1  # bob opted out
    assert data["opt_outs"] == 1
    assert data["open_conversations"]["waiting_for_them"] == 1  # alice


def test_someone_who_writes_stop_twice_is_one_opt_out(cli, world, clock):
    """Found in review: each STOP read is its own audit entry, so a second STOP
    (or 'unsubscribe') counted the same person twice."""
    world.incoming_dm(BOB, "hello", at=clock.ago(hours=4))
    world.incoming_dm(BOB, "STOP", at=clock.ago(hours=3))
    world.incoming_dm(BOB, "unsubscribe", at=clock.ago(hours=2))
    sync(cli)
    assert [e["action"] for e in cli("log", "--json").json()].count("opted_out") == 2
    assert cli("report", "--days", "1", "--json").json()["opt_outs"] == 1


# --- the aggregation in SQL gives the numbers of the row-by-row pass (issue 16) ---------


def rowwise_messages_and_waits(conn: Any, since: str, until: str, by_day: list[Any],
                               bounds: list[str]) -> Any:
    """The report's counts and waits as they were computed before issue 16:
    every message of the period read into Python, by contact, in time order."""
    from bisect import bisect_right
    from datetime import datetime

    from dmtool.services.report import FirstReply
    from dmtool.store import report as rstore

    rows = conn.execute(
        "SELECT m.contact_id, m.direction, m.at, m.source FROM messages m "
        "WHERE m.at >= ? AND m.at < ? ORDER BY m.contact_id, m.at, m.id", (since, until))
    waits: list[dict[str, Any]] = []
    contact = prev = current = None
    for contact_id, direction, at, source in rows:
        i = bisect_right(bounds, at) - 1
        day = by_day[i] if 0 <= i < len(by_day) else None
        autoack = source == "autoack"
        if day is not None:
            if direction == "in":
                day.inbound += 1
            else:
                day.outbound += 1
                day.autoack += autoack
        if autoack:
            continue
        if contact_id != contact:
            contact, prev, current = contact_id, None, None
        if direction == "in":
            if prev != "in":
                current = {"contact": contact_id, "at": at, "reply": None, "opens": prev is None}
                waits.append(current)
        elif current is not None and current["reply"] is None:
            current["reply"] = at
        prev = direction
    check = [w["contact"] for w in waits if w["opens"]]
    before = rstore.last_human_direction_before(conn, check, since) if check else {}
    waits = [w for w in waits if not (w["opens"] and before.get(w["contact"]) == "in")]
    result = FirstReply()
    result.answered_seconds = sorted(
        (datetime.fromisoformat(w["reply"]) - datetime.fromisoformat(w["at"])).total_seconds()
        for w in waits if w["reply"])
    unanswered = [w["contact"] for w in waits if w["reply"] is None]
    still_open = rstore.open_contact_ids(conn, unanswered) if unanswered else set()
    result.unanswered_open = sum(1 for c in unanswered if c in still_open)
    result.unanswered_closed = len(unanswered) - result.unanswered_open
    return result


@pytest.mark.parametrize("seed", range(6))
def test_sql_aggregation_matches_the_row_by_row_pass(new_store, monkeypatch, seed):
    """Random stores (ties, autoacks, archives, several conversations, deleted
    messages), days of 23 and 25 hours and zones half and three quarters of
    an hour off UTC. Both engines (PostgreSQL aggregates the sequences too)."""
    from datetime import datetime

    from dmtool.localtime import UTC_ZONE, named
    from dmtool.services import report
    from tests.test_read_models import T0 as START
    from tests.test_read_models import build

    world = build(new_store, seed, steps=400)
    conn = world.conn
    zones = [UTC_ZONE, named("America/New_York"), named("Asia/Kolkata"),
             named("Asia/Kathmandu"), named("Australia/Lord_Howe")]
    compared = 0
    for zone in zones:
        for hours, days in ((30, 1), (50, 2), (70, 3), (100, 5), (3000, 365)):
            now = START + timedelta(hours=hours, minutes=seed * 7)
            got = report.build_report(conn, days, now, zone).to_dict()
            with monkeypatch.context() as m:
                m.setattr(report, "_count_messages_and_waits", rowwise_messages_and_waits)
                want = report.build_report(conn, days, now, zone).to_dict()
            assert got == want, (zone.name, hours, days)
            compared += got["first_reply"]["waits"]
    assert compared > 50 and isinstance(START, datetime)  # the stores had waits to compare


def _index_names(store: Any) -> set[str]:
    if store.engine == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'index'"
    else:  # PostgreSQL's catalog: PRAGMA-free, so no translation needed
        sql = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
    return {r[0] for r in store.conn.execute(sql)}


def test_a_store_from_before_the_report_indexes_upgrades(new_store):
    """The migration swaps two message indexes for the wider ones the report
    reads alone; the queries that read the old ones read the new ones (both
    engines)."""
    from dmtool.store.migrations import REPORT_INDEX_MIGRATION

    old = new_store(migrate_to=REPORT_INDEX_MIGRATION - 1)
    with old.tx() as conn:
        c, _ = cstore.upsert_x_user(conn, "500", "ann", "Ann", now="2026-03-01T10:00:00.000Z")
        for i, (at, direction) in enumerate([("03-01T10:00", "in"), ("03-01T11:00", "out")]):
            conn.execute("INSERT INTO messages (event_id, contact_id, direction, text, at, source, "
                         "recorded_at) VALUES (?, ?, ?, 'hi', ?, 'sync', ?)",
                         (f"e{i}", c.id, direction, stamp(at), stamp(at)))
    old.close()
    new = open_store(old.location)
    assert new.schema_version() >= REPORT_INDEX_MIGRATION
    indexes = _index_names(new)
    assert {"messages_at_kind", "messages_contact_at_kind"} <= indexes
    assert not {"messages_at", "messages_contact_at"} & indexes
    from datetime import datetime

    from dmtool.services.report import build_report

    r = build_report(new.conn, 3, datetime.fromisoformat("2026-03-02T12:00:00+00:00")).to_dict()
    assert (r["messages"]["in"], r["messages"]["out"]) == (1, 1)
    assert r["first_reply"]["median_seconds"] == 3600.0
    assert [m.direction for m in cstore.messages(new.conn, c.id)] == ["in", "out"]
