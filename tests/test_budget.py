"""The X budget (issue 16 point 3): no request whose worst case could pass
it is made; what was saved is kept; sends stay approved; acks are deferred."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dmtool.services.budget import EPSILON, Prices, usd
from dmtool.x.observe import RequestPlan
from dmtool.x.sandbox import SandboxWorld
from tests.xworld import ALICE, BOB, CAROL, ERIN, ME, SAM, Cli, Clock, sync

PRICES = Prices({"dm_events": 0.010, "users": 0.010, "posts": 0.001, "sends": 0.015})


def error(r: Any) -> dict[str, Any]:
    return json.loads(r.stderr.strip().splitlines()[-1])["error"]  # type: ignore[no-any-return]


def spent_in_order(db: Any) -> list[float]:
    rows = db("SELECT b_dm_events, b_users, b_posts, sends FROM x_requests ORDER BY id")
    return [PRICES.cost(dict(zip(("dm_events", "users", "posts", "sends"), r, strict=True)))
            for r in rows]


def plan_of(q: dict[str, Any]) -> RequestPlan:
    """The RequestPlan of a request the sandbox logged."""
    query = q["query"]
    size = int(query["max_results"]) if "max_results" in query else None
    ids = len(query["ids"].split(",")) if query.get("ids") else 0
    return RequestPlan(q["method"], q["path"], None, page_size=size, ids_asked=ids)


def history(world: SandboxWorld, clock: Clock, n: int = 60) -> None:
    people = [ALICE, BOB, SAM, CAROL, ERIN]
    for i in range(n):
        world.incoming_dm(people[i % len(people)], f"message {i}", at=clock.ago(hours=n - i))


def test_a_budget_stops_a_sync_mid_walk_and_keeps_what_it_read(
        cli: Cli, world: SandboxWorld, clock: Clock, db: Any) -> None:
    history(world, clock)
    assert cli("config", "set", "x.budget.day_usd", "0.40").exit_code == 0
    r = cli("sync", "--json")
    assert r.exit_code == 4, r
    e = error(r)
    assert (e["code"], e["budget"], e["limit"]) == ("E_BUDGET", "day", 0.40)
    assert 0 < e["spent"] <= 0.40 and "what was read is kept" in e["message"]
    # What was read is stored, and the ledger agrees with the sandbox.
    stored = db("SELECT count(*) FROM messages")[0][0]
    assert 0 < stored < 60
    assert stored == sum(r[0] for r in db("SELECT dm_events FROM x_requests"))
    log = world.requests_log()
    assert len(log) == len(spent_in_order(db))
    # No request could have passed the budget when it was made: what was spent
    # before it plus its worst case fits; the walk shrank its pages to fit.
    before = 0.0
    for q, cost in zip(log, spent_in_order(db), strict=True):
        assert before + PRICES.cost(plan_of(q).worst()) <= 0.40 + EPSILON, q
        before += cost
    sizes = [int(q["query"]["max_results"]) for q in log if q["path"] == "/2/dm_events"]
    assert sizes[0] == 2 and max(sizes[1:]) < 100  # a first sync would ask for 100
    # Raised, the next sync goes on where it stopped: nothing twice, nothing lost.
    assert cli("config", "set", "x.budget.day_usd", "none").exit_code == 0
    data = sync(cli)
    assert data["dm_events_new"] == 60 - stored
    ids = [r[0] for r in db("SELECT event_id FROM messages")]
    assert len(ids) == len(set(ids)) == 60


def test_mentions_pages_shrink_to_fit_but_never_under_five(
        cli: Cli, world: SandboxWorld, clock: Clock, db: Any) -> None:
    world.incoming_dm(ALICE, "hello", at=clock.ago(hours=1))
    sync(cli)
    world.add_post(BOB, f"@you hi {1}", at=clock.ago(minutes=5))
    clock.advance(minutes=20)
    spent = sum(spent_in_order(db))
    # Room for the DM page (2 events, 3 users) and a mentions page of about 10.
    assert cli("config", "set", "x.budget.day_usd", str(round(spent + 0.05 + 0.12, 4))) \
        .exit_code == 0
    data = sync(cli)
    assert data["mentions_new"] == 1
    sizes = {q["path"]: int(q["query"]["max_results"]) for q in world.requests_log()
             if "max_results" in q["query"] and q["path"] != "/2/dm_events"}
    assert 5 <= sizes[f"/2/users/{ME}/mentions"] < 100
    clock.advance(minutes=20)
    # Room for the DM page's worst case ($0.05), not for a mentions page of 5
    # ($0.055): the sync stops before asking (the DMs read are kept).
    spent = sum(spent_in_order(db))
    assert cli("config", "set", "x.budget.day_usd", str(round(spent + 0.05, 4))).exit_code == 0
    requests = world.requests_count()
    r = cli("sync", "--public", "--json")
    assert r.exit_code == 4 and error(r)["code"] == "E_BUDGET"
    assert all(q["path"] == "/2/dm_events" for q in world.requests_log()[requests:])


def test_a_send_refused_by_the_budget_stays_approved(
        cli: Cli, world: SandboxWorld, clock: Clock, db: Any) -> None:
    world.incoming_dm(ALICE, "Hi! Do you ship to Canada?", at=clock.ago(hours=1))
    sync(cli)
    spent = sum(spent_in_order(db))
    did = str(cli("draft", "alice", "Yes, about a week. Alex", "--json").json()["id"])
    assert cli("review", did, "--approve").exit_code == 0
    assert cli("config", "set", "x.budget.day_usd", str(round(spent + 0.01, 4))).exit_code == 0
    requests = world.requests_count()
    r = cli("send", did, "--yes", "--json")
    assert r.exit_code == 4, r
    e = error(r)
    assert e["code"] == "E_BUDGET" and "stays approved" in e["message"]
    assert cli("drafts", "show", did, "--json").json()["status"] == "approved"
    assert world.requests_count() == requests  # nothing reached X
    assert [m for m in world.dms_with(ALICE) if m["sender_id"] == ME] == []
    held = [x for x in cli("log", "--json").json() if x["action"] == "send_not_attempted"]
    assert held and "E_BUDGET" in json.dumps(held[0])
    assert cli("config", "set", "x.budget.day_usd", str(round(spent + 0.02, 4))).exit_code == 0
    assert cli("send", did, "--yes").exit_code == 0
    assert cli("drafts", "show", did, "--json").json()["status"] == "sent"


def test_a_reconcile_refused_by_the_budget_leaves_the_send_unknown(
        cli: Cli, world: SandboxWorld, clock: Clock, db: Any) -> None:
    world.incoming_dm(ALICE, "Hi! Do you ship to Canada?", at=clock.ago(hours=1))
    sync(cli)
    did = str(cli("draft", "alice", "Yes, about a week. Alex", "--json").json()["id"])
    assert cli("review", did, "--approve").exit_code == 0
    world.timeout_after_send()
    assert cli("send", did, "--yes").exit_code == 5
    spent = sum(spent_in_order(db))  # the timed-out send counts
    assert cli("config", "set", "x.budget.day_usd", str(round(spent + 0.05, 4))).exit_code == 0
    r = cli("send", did, "--yes", "--json")  # reading the conversation: worst 5 events, 6 users
    assert r.exit_code == 4 and error(r)["code"] == "E_BUDGET"
    assert cli("drafts", "show", did, "--json").json()["status"] == "unknown"  # never failed
    assert cli("config", "set", "x.budget.day_usd", "none").exit_code == 0
    assert cli("send", did, "--yes").exit_code == 0
    assert cli("drafts", "show", did, "--json").json()["status"] == "sent"
    assert len([m for m in world.dms_with(ALICE) if m["sender_id"] == ME]) == 1


def test_an_ack_held_back_by_the_budget_is_deferred_and_audited(
        cli: Cli, world: SandboxWorld, clock: Clock, db: Any) -> None:
    assert cli("config", "set", "autoack.text",
               "Thanks for your message! We read every DM and reply within a day. Alex") \
        .exit_code == 0
    assert cli("config", "set", "autoack.enabled", "true").exit_code == 0
    sync(cli)
    world.incoming_dm(ALICE, "hello, a question about pricing", at=clock.ago(minutes=2))
    clock.advance(minutes=1)
    spent = sum(spent_in_order(db))
    # The DM page's worst case fits (2 events, 3 users: $0.05); what is left
    # after it (it read one new event) is less than the ack's send.
    assert cli("config", "set", "x.price.dm_send", "0.05").exit_code == 0
    assert cli("config", "set", "x.budget.day_usd", str(round(spent + 0.05, 4))).exit_code == 0
    r = cli("sync", "--json")
    assert r.exit_code == 0, r
    data = r.json()
    assert data["dm_events_new"] == 1 and data["autoacks_sent"] == 0
    assert [d["what"] for d in data["deferred"]] == ["autoacks"]
    assert data["deferred"][0]["budget"] == "day"
    audit = [x for x in cli("log", "--json").json() if x["action"] == "autoack_deferred"]
    assert [x["handle"] for x in audit] == ["alice"]
    assert cli("drafts", "list", "--json").json() == []  # no approved ack left lying about
    # Room again: the next sync sends it, although nothing new came in.
    assert cli("config", "set", "x.budget.day_usd", "none").exit_code == 0
    clock.advance(minutes=5)
    assert sync(cli)["autoacks_sent"] == 1
    assert [m["text"] for m in world.dms_with(ALICE) if m["sender_id"] == ME] == [
        "Thanks for your message! We read every DM and reply within a day. Alex"]
    clock.advance(minutes=5)
    assert sync(cli)["autoacks_sent"] == 0  # once


def test_the_80_percent_warning_comes_once_a_utc_day(
        cli: Cli, world: SandboxWorld, clock: Clock, db: Any) -> None:
    history(world, clock, 25)
    sync(cli)
    spent = sum(spent_in_order(db))
    # Past 80% already, with room for a quiet sync's pages (read earlier today: free).
    limit = round(spent / 0.82, 4)
    assert cli("config", "set", "x.budget.day_usd", str(limit)).exit_code == 0
    assert cli("config", "set", "x.budget.month_usd", "100").exit_code == 0
    clock.advance(minutes=10)
    first = cli("sync")
    assert first.exit_code == 0, first
    assert "warning: X spending is at 8" in first.stderr and "day budget" in first.stderr
    clock.advance(minutes=10)
    second = cli("sync")
    assert second.exit_code == 0 and "warning" not in second.stderr
    # The digest says it too: news the first time today, then only beside other news.
    digest = cli("digest")
    assert "X spending" in digest.stdout
    assert cli("digest").stdout == ""
    assert cli("digest", "--json").json()["budget_warning"].startswith("X spending is at")
    status = cli("auth", "status", "--json").json()["budget"]
    assert status["day"]["limit"] == limit and status["day"]["share"] >= 0.8
    assert "of $100.00 spent" in cli("auth", "status").stdout
    # The next UTC day starts over (the month does not).
    clock.advance(days=1)
    third = cli("sync")
    assert third.exit_code == 0 and "warning" not in third.stderr


def test_prices_and_budgets_are_bounded_settings(cli: Cli) -> None:
    assert cli("config", "get", "x.budget.day_usd").stdout.strip() == "none"
    assert cli("config", "get", "x.price.dm_send").stdout.strip() == "0.015"
    for key, bad in (("x.budget.day_usd", "-1"), ("x.budget.month_usd", "1e9"),
                     ("x.price.dm_event_read", "11"), ("x.ledger.keep_days", "0")):
        r = cli("config", "set", "--", key, bad)
        assert r.exit_code == 1 and key in r.stderr, r
    assert cli("config", "set", "x.budget.month_usd", "25").exit_code == 0
    assert cli("config", "get", "x.budget.month_usd", "--json").json() == 25.0
    assert cli("config", "set", "x.budget.month_usd", "none").exit_code == 0
    assert cli("config", "get", "x.budget.month_usd", "--json").json() is None


@pytest.mark.parametrize(("amount", "text"), [(0, "$0.00"), (0.015, "$0.015"), (1, "$1.00"),
                                              (1234.5, "$1,234.50")])
def test_dollars_read_as_dollars(amount: float, text: str) -> None:
    assert usd(amount) == text


@pytest.mark.sqlite_only(reason="the demo keeps its own SQLite store whatever the URLs say "
                         "(as tests/test_demo.py)")
def test_the_demo_sets_a_small_budget_its_walk_fits_in(run: Any) -> None:
    r = run("demo", timeout=180)
    assert r.exit_code == 0, r.stderr
    assert "E_BUDGET" not in r.stderr and "$ dmtool --profile demo usage" in r.stdout
    usage = json.loads(run("--profile", "demo", "usage", "--json").stdout)
    day = usage["budget"]["day"]
    assert day["limit"] == 1.0 and 0 < day["spent"] < 0.5 * day["limit"]
    assert usage["backend"] == "sandbox" and usage["total"]["requests"] > 0
    status = json.loads(run("--profile", "demo", "auth", "status", "--json").stdout)
    assert status["budget"]["month"]["limit"] == 5.0


def test_archive_naming_is_recorded_and_held_by_the_budget(
        cli: Cli, clock: Clock, world: SandboxWorld, tmp_path: Any, db: Any) -> None:
    from tests.test_archive_handles import archive_with, import_json

    assert cli("config", "set", "x.budget.day_usd", "0.01").exit_code == 0  # one user read
    path = archive_with(tmp_path / "arc", clock, ALICE, BOB)
    data, stderr = import_json(cli, path)
    assert data["messages_new"] == 2 and data["naming_error"]["code"] == "E_BUDGET"
    assert stderr.startswith("warning: imported, but 2 contacts stay user_<id>")
    assert world.requests_count() == 0  # two ids could cost $0.02: not asked
    assert cli("config", "set", "x.budget.day_usd", "0.02").exit_code == 0
    data, _ = import_json(cli, path)
    assert data["contacts_named"] == 2
    assert db("SELECT endpoint, users, b_users FROM x_requests") == [("/2/users", 2, 2)]
