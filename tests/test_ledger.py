"""The ledger of requests to X (issue 16 point 1): every request recorded,
with the units X bills, in the transaction that stores what it brought."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dmtool.store import ledger as lstore
from dmtool.store import open_store
from dmtool.store.migrations import LEDGER_MIGRATION
from dmtool.x.observe import RequestPlan, RequestRecord
from dmtool.x.sandbox import SandboxWorld
from tests.xworld import ALICE, BOB, ME, Cli, Clock, sync

COLS = ("family", "method", "endpoint", "status", "dm_events", "users", "posts", "sends",
        "b_dm_events", "b_users", "b_posts", "sandbox")


def requests(db: Any, where: str = "1 = 1") -> list[dict[str, Any]]:
    rows = db(f"SELECT {', '.join(COLS)} FROM x_requests WHERE {where} ORDER BY id")
    return [dict(zip(COLS, r, strict=True)) for r in rows]


def talking(cli: Cli, world: SandboxWorld, clock: Clock) -> None:
    """Alice wrote twice; Bob once; one sync has stored it."""
    world.incoming_dm(ALICE, "Hi! Do you ship to Canada?", at=clock.ago(hours=3))
    world.incoming_dm(BOB, "hello there", at=clock.ago(hours=2))
    world.incoming_dm(ALICE, "and what about the group rate?", at=clock.ago(hours=1))
    sync(cli)


def test_a_sync_a_send_a_lookup_and_a_429_have_the_right_units(
        cli: Cli, world: SandboxWorld, clock: Clock, db: Any) -> None:
    talking(cli, world, clock)
    synced = requests(db)
    # Each request the sandbox answered is in the ledger, in order, marked sandbox.
    assert [(r["method"], r["endpoint"]) for r in synced] == [
        (q["method"], q["path"].replace(ME, ":id")) for q in world.requests_log()]
    assert all(r["sandbox"] == 1 and r["status"] == 200 for r in synced)
    me = synced[0]
    assert (me["endpoint"], me["family"], me["users"], me["b_users"]) == \
        ("/2/users/me", "users", 1, 1)
    dm = [r for r in synced if r["endpoint"] == "/2/dm_events"]
    assert sum(r["dm_events"] for r in dm) == 3 == sum(r["b_dm_events"] for r in dm)
    # Users in `includes` are user reads: you, Alice and Bob, each billed once today.
    assert sum(r["users"] for r in dm) >= 3 and sum(r["b_users"] for r in dm) == 2  # you: users/me
    timelines = [r for r in synced if r["family"] == "timelines"]
    assert [r["endpoint"] for r in timelines] == ["/2/users/:id/mentions", "/2/users/:id/tweets"]
    assert all(r["posts"] == 0 for r in timelines)  # nothing public yet

    # A send: one unit, billed.
    r = cli("draft", "alice", "Yes, we ship to Canada: about a week. Alex", "--json")
    did = str(r.json()["id"])
    assert cli("review", did, "--approve").exit_code == 0
    assert cli("send", did, "--yes").exit_code == 0, r
    [send] = requests(db, "family = 'dm_send'")
    assert (send["method"], send["endpoint"], send["status"], send["sends"]) == \
        ("POST", "/2/dm_conversations/with/:participant_id/messages", 201, 1)

    # A lookup: `check` asks X who @dave is, one user read.
    assert cli("contacts", "add", "@dave").exit_code == 0
    cli("check", "@dave")
    [lookup] = requests(db, "endpoint = '/2/users/by/username/:username'")
    assert (lookup["family"], lookup["users"], lookup["b_users"]) == ("users", 1, 1)

    # A 429: recorded, with nothing billed.
    world.fail_next(429, path_contains="/2/dm_events")
    clock.advance(minutes=20)
    assert cli("sync").exit_code == 5
    last = requests(db)[-1]
    assert (last["endpoint"], last["status"], last["dm_events"], last["b_dm_events"]) == \
        ("/2/dm_events", 429, 0, 0)
    assert len(requests(db)) == world.requests_count()


def test_reading_again_the_same_utc_day_is_free_and_after_midnight_it_is_not(
        cli: Cli, world: SandboxWorld, clock: Clock, db: Any) -> None:
    clock.set(clock.now.replace(hour=23, minute=40))
    talking(cli, world, clock)
    clock.advance(minutes=15)  # 23:55: nothing new, the newest events are read again
    quiet = sync(cli)
    assert quiet["dm_events_read"] >= 1 and quiet["dm_events_billable"] == 0
    assert quiet["usd"] == 0
    clock.advance(minutes=15)  # 00:10 the next UTC day: the same read is billed again
    after = sync(cli)
    assert after["dm_events_new"] == 0
    assert after["dm_events_billable"] == after["dm_events_read"] >= 1
    assert after["usd"] > 0
    days = db("SELECT day, sum(dm_events), sum(b_dm_events) FROM x_requests "
              "WHERE family = 'dm_read' GROUP BY day ORDER BY day")
    (d1, raw1, billed1), (d2, raw2, billed2) = days
    assert d2 > d1 and billed1 == 3 < raw1 and raw2 == billed2 == after["dm_events_read"]


def test_a_failed_request_and_the_token_endpoint_bill_nothing() -> None:
    failed = RequestRecord("GET", "/2/dm_events", "dm_read", 5, None, 503, None, 0.1,
                           ids=("1", "2"))
    token = RequestRecord("POST", "/2/oauth2/token", None, None, 1, 200, None, 0.1)
    sent = RequestRecord("POST", f"/2/dm_conversations/with/{ALICE}/messages", "dm_send", None,
                         1, 201, None, 0.1, ids=("99",))
    page = RequestRecord("GET", f"/2/users/{ME}/mentions", "timelines", 10, 2, 200, None, 0.1,
                         ids=("7", "8"), user_ids=(ALICE, BOB, ALICE))
    assert failed.billed() == {} and token.billed() == {}
    assert sent.billed() == {"sends": ("99",)}
    assert page.billed() == {"posts": ("7", "8"), "users": (ALICE, BOB)}
    # The worst case before a request: a full page and every user it could name.
    assert RequestPlan("GET", "/2/dm_events", "dm_read", page_size=20).worst() == \
        {"dm_events": 20, "users": 21}
    assert RequestPlan("GET", "/2/users", "users", ids_asked=7).worst() == {"users": 7}
    assert RequestPlan("POST", "/2/oauth2/token", None).worst() == {}


def test_a_timed_out_send_counts_one_send_until_reconciled(
        cli: Cli, world: SandboxWorld, clock: Clock, db: Any) -> None:
    talking(cli, world, clock)
    for text, delivered in (("Thanks Alice, the link is on its way.", True),
                            ("Thanks Alice, and one more detail soon.", False)):
        did = str(cli("draft", "alice", text, "--json").json()["id"])
        assert cli("review", did, "--approve").exit_code == 0
        if delivered:
            world.timeout_after_send()  # X has it; no answer came back
        else:
            world.fail_next(503, method="POST", path_contains="/messages")  # X failed first
        assert cli("send", did, "--yes").exit_code == 5
        [pending] = db("SELECT sends, draft_id FROM x_requests WHERE draft_id = ?", (int(did),))
        assert pending == (1, int(did))  # counted until reconciled
        clock.advance(minutes=1)
        cli("send", did, "--yes")
        status = cli("drafts", "show", did, "--json").json()["status"]
        assert status == ("sent" if delivered else "failed")
        assert db("SELECT count(*) FROM x_requests WHERE draft_id = ?", (int(did),)) == [(0,)]
    sends = db("SELECT sends FROM x_requests WHERE family = 'dm_send' AND method = 'POST'")
    assert sorted(s for (s,) in sends) == [0, 1]  # delivered: billed; confirmed absent: not


def test_old_requests_become_daily_totals(cli: Cli, world: SandboxWorld, clock: Clock,
                                          db: Any) -> None:
    assert cli("config", "set", "x.ledger.keep_days", "2").exit_code == 0
    talking(cli, world, clock)
    first_day = db("SELECT count(*), sum(b_dm_events) FROM x_requests")[0]
    clock.advance(days=3)
    sync(cli)
    assert db("SELECT count(*) FROM x_requests WHERE day < ?",
              ((clock.now.date().isoformat(),))) == [(0,)]
    assert db("SELECT count(*) FROM x_read_ids WHERE day < ?",
              ((clock.now.date().isoformat(),))) == [(0,)]
    folded = db("SELECT sum(requests), sum(b_dm_events) FROM x_usage_days")[0]
    assert folded == first_day
    usage = cli("usage", "--days", "7", "--json").json()
    assert usage["total"]["requests"] == first_day[0] + len(requests(db))


def test_a_store_from_before_the_ledger_upgrades(new_store: Any) -> None:
    old = new_store(migrate_to=LEDGER_MIGRATION - 1)
    with old.tx() as conn:
        conn.execute("INSERT INTO sync_state (key, value) VALUES ('me_id', '1')")
    old.close()
    new = open_store(old.location)
    assert new.schema_version() >= LEDGER_MIGRATION
    for table in ("x_requests", "x_read_ids", "x_usage_days"):
        assert new.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
    assert lstore.first_at(new.conn, False) is None  # the ledger starts at the upgrade
    with new.tx() as conn:
        billed = lstore.add(conn, lstore.Request(
            at="2026-03-02T12:00:00.000Z", day="2026-03-02", sandbox=False, family="dm_read",
            method="GET", endpoint="/2/dm_events", status=200, error=None,
            reads={"dm_events": ("5", "6"), "users": ("1",)}))
        again = lstore.add(conn, lstore.Request(
            at="2026-03-02T12:15:00.000Z", day="2026-03-02", sandbox=False, family="dm_read",
            method="GET", endpoint="/2/dm_events", status=200, error=None,
            reads={"dm_events": ("6", "7")}))
    assert billed == {"dm_events": 2, "users": 1, "posts": 0}
    assert again == {"dm_events": 1, "users": 0, "posts": 0}
    with new.tx() as conn:  # more ids than one INSERT takes, some read before that day
        many = lstore.add(conn, lstore.Request(
            at="2026-03-02T13:00:00.000Z", day="2026-03-02", sandbox=False, family="dm_read",
            method="GET", endpoint="/2/dm_events", status=200, error=None,
            reads={"dm_events": tuple(str(i) for i in range(5, 255))}))
    assert many["dm_events"] == 250 - 3
    assert new.get_state("me_id") == "1"
    new.close()


def test_requests_ride_on_the_transaction_that_stores_what_they_brought(
        cli: Cli, world: SandboxWorld, clock: Clock, db: Any) -> None:
    """A request waits for the next commit; a transaction rolled back (a page
    that could not be stored) takes it along and leaves it pending, and a
    command that ends writes what is still pending."""
    from dmtool.appstate import AppState
    from dmtool.services import ledger

    talking(cli, world, clock)
    st = AppState()
    try:
        led = ledger.of(st)
        count = "SELECT count(*) FROM x_requests"
        before = st.store.conn.execute(count).fetchone()[0]
        ledger.client(st).dm_events(2)
        assert len(led.pending) == 1 and st.store.conn.execute(count).fetchone()[0] == before
        with pytest.raises(RuntimeError), st.store.tx() as conn:
            conn.execute("INSERT INTO sync_state (key, value) VALUES ('probe', '1')")
            raise RuntimeError("the page could not be stored")
        assert len(led.pending) == 1 and st.store.get_state("probe") is None
        with st.store.tx():
            st.store.set_state("probe", "2")  # the page's transaction: the request goes in with it
        assert led.pending == [] and st.store.conn.execute(count).fetchone()[0] == before + 1
        ledger.client(st).dm_events(2)
    finally:
        st.close()  # writes the last one
    assert db(count) == [(before + 2,)]


def test_a_sync_cut_short_reads_the_page_again_for_free(
        cli: Cli, world: SandboxWorld, clock: Clock, db: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from dmtool.services import sync as sync_service

    talking(cli, world, clock)
    world.incoming_dm(BOB, "one more", at=clock.ago(minutes=1))
    clock.advance(minutes=20)
    original = sync_service._Sync.store_dms

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(sync_service._Sync, "store_dms", boom)
    assert cli("sync").exit_code == 130
    assert db("SELECT count(*) FROM messages") == [(3,)]  # the new page was not stored...
    cut = requests(db)[-1]  # ...but the request X answered is recorded: the new event billed
    assert (cut["endpoint"], cut["dm_events"], cut["b_dm_events"]) == ("/2/dm_events", 2, 1)
    monkeypatch.setattr(sync_service._Sync, "store_dms", original)
    again = sync(cli)
    assert again["dm_events_new"] == 1 and again["dm_events_billable"] == 0  # same UTC day


def test_a_login_records_its_token_request_and_who_am_i(
        cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db: Any) -> None:
    """`auth login` on X: the token request (0 units) and users/me (a user read)."""
    from tests.test_login import APP, _sandbox_client
    from tests.test_login import ME as LOGIN_ME
    from tests.xnet import approve, route_x_to_sandbox

    x = SandboxWorld.create(tmp_path / "x.json", clock="2030-01-01T12:00:00Z")
    x.set_me(*LOGIN_ME)
    x.register_app(APP, ["http://127.0.0.1:8765/callback"])
    monkeypatch.setattr("dmtool.cli.auth.open_client", _sandbox_client(x))
    undo = route_x_to_sandbox(x.path)
    try:
        r = cli("auth", "login", "--print-url", "--client-id", APP)
        assert r.exit_code == 0, r
        r = cli("auth", "login", "--redirect-url", approve(x.path, r.stdout.strip()))
    finally:
        undo()
    assert r.exit_code == 0, r
    assert [(q["family"], q["method"], q["endpoint"], q["users"], q["sandbox"])
            for q in requests(db)] == [("auth", "POST", "/2/oauth2/token", 0, 0),
                                       ("users", "GET", "/2/users/me", 1, 0)]


def test_token_refreshes_reach_the_observers_with_their_status(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from dmtool.credentials import Credentials
    from dmtool.errors import RateLimited
    from dmtool.x.client import TweepyClient
    from dmtool.x.sandbox import SandboxAdapter

    x = SandboxWorld.create(tmp_path / "x.json")
    x.set_me(ME, "me_account", "Me")
    soon = int(datetime.now(UTC).timestamp()) + 60
    seen: list[RequestRecord] = []
    client = TweepyClient(Credentials(kind="oauth2", client_id="cid", access_token="a-token",
                                      refresh_token=x.issue_tokens("cid")["refresh_token"],
                                      expires_at=soon),
                          adapter=SandboxAdapter(x.path), retry_backoff=0)
    client.observe(seen.append)
    client.me()
    assert [(r.method, r.endpoint, r.family, r.status) for r in seen] == [
        ("POST", "/2/oauth2/token", None, 200), ("GET", "/2/users/me", "users", 200)]
    assert [r.billed() for r in seen] == [{}, {"users": (ME,)}]
    seen.clear()
    late = TweepyClient(Credentials(kind="oauth2", client_id="cid", access_token="a-token",
                                    refresh_token="r", expires_at=soon),
                        adapter=SandboxAdapter(x.path), retry_backoff=0)
    late.observe(seen.append)
    x.fail_next(429, path_contains="/2/oauth2/token")
    with pytest.raises(RateLimited):
        late.dm_events(5)
    assert [(r.endpoint, r.status, r.billed()) for r in seen] == [("/2/oauth2/token", 429, {})]


def test_no_service_reaches_x_around_the_ledger() -> None:
    """The profile's client (AppState.client) is taken only by services/ledger.py,
    which attaches the ledger and the budget: every other caller goes through it."""
    import ast

    import dmtool

    src = Path(dmtool.__file__).resolve().parent
    callers = []
    for path in sorted(src.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "client" and not node.args
                    and not (isinstance(node.func.value, ast.Name)
                             and node.func.value.id == "ledger")):
                callers.append(str(path.relative_to(src)))
    assert callers == ["services/ledger.py"], callers
