"""`dmtool sync` on the sandbox X: contacts, messages, evidence, opt-outs, and
what it costs (DM events read, requests) when little or nothing is new."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from dmtool.services.sync import BURST_RISK, PAGE_MARGIN
from dmtool.timeutil import fmt, parse
from dmtool.x.sandbox import SANDBOX_ME, SandboxWorld
from tests.conftest import Result, profile_store
from tests.xworld import ALICE, BOB, CAROL, DAVE, ERIN, ME, SAM, T0, Cli, Clock, sync


def stored_event_ids(db: Any) -> list[str]:
    return [r[0] for r in db("SELECT event_id FROM messages WHERE event_id IS NOT NULL")]


def world_message_ids(world: SandboxWorld) -> set[str]:
    return {e["id"] for e in world.snapshot()["dm_events"]
            if e["event_type"] == "MessageCreate" and "-" in e["dm_conversation_id"]}


def dm_pages(world: SandboxWorld) -> list[int]:
    """Events returned by each GET /2/dm_events since the log was reset."""
    return [int(q["dm_events"]) for q in world.requests_log() if q["path"] == "/2/dm_events"]


def show(cli: Cli, handle: str) -> dict[str, Any]:
    r = cli("contacts", "show", handle, "--json")
    assert r.exit_code == 0, r
    return r.json()  # type: ignore[no-any-return]


# --- first and incremental syncs ---------------------------------------------------------


def test_first_sync_stores_contacts_messages_and_evidence(cli: Cli, world: SandboxWorld,
                                                          clock: Clock, db: Any) -> None:
    first = world.incoming_dm(ALICE, "Hi, do you ship to Canada?", at=clock.ago(hours=5))
    world.outgoing_dm(ALICE, "We do!", at=clock.ago(hours=4))
    world.outgoing_dm(BOB, "Hello Bob", at=clock.ago(hours=3))  # outbound only: no consent
    second = world.incoming_dm(ALICE, "Great, thanks", at=clock.ago(hours=2))
    # A group conversation (id without '-') and a non-message event: read, not stored.
    with world.transaction() as s:
        s["dm_events"].append({"id": str(int(s["last_id"]) + 1), "event_type": "MessageCreate",
                               "text": "group hello", "sender_id": CAROL,
                               "dm_conversation_id": "1600000000000000001",
                               "created_at": fmt(clock.ago(hours=1))})
        s["dm_events"].append({"id": str(int(s["last_id"]) + 2), "event_type": "ParticipantsJoin",
                               "dm_conversation_id": "1600000000000000001",
                               "created_at": fmt(clock.ago(minutes=50))})
        s["last_id"] = int(s["last_id"]) + 2

    data = sync(cli)
    assert set(data) == {"dm_events_new", "dm_events_read", "mentions_new", "replies_new",
                         "contacts_new", "opted_out", "optout_review", "requests",
                         "dm_events_billable", "usd", "autoacks_sent", "deferred", "hooks",
                         "backend"}
    assert data["deferred"] == []
    assert data["backend"] == "sandbox"
    assert data["dm_events_new"] == 4
    assert data["dm_events_read"] == 6  # the group message and the join are paid for too
    assert data["contacts_new"] == 2
    assert data["opted_out"] == []
    assert data["requests"] == world.requests_count()

    alice = show(cli, "alice")
    assert alice["user_id"] == ALICE and alice["name"] == "Alice A"
    assert alice["status"] == "can-dm"
    assert {(e["kind"], e["ref"]) for e in alice["evidence"]} == {("inbound_dm", first),
                                                                  ("inbound_dm", second)}
    assert [(m["direction"], m["text"]) for m in alice["messages"]] == [
        ("in", "Hi, do you ship to Canada?"), ("out", "We do!"), ("in", "Great, thanks")]
    bob = show(cli, "bob")
    assert bob["status"] == "needs-consent" and bob["evidence"] == []
    # Bob was only named by a users lookup (an outbound event names only its sender).
    lookups = [q for q in world.requests_log() if q["path"] == "/2/users"]
    assert [q["query"]["ids"] for q in lookups] == [BOB]
    assert db("SELECT count(*) FROM messages WHERE text = 'group hello'") == [(0,)]
    convs = db("SELECT id FROM conversations ORDER BY id")
    assert convs == sorted([(f"{ME}-{ALICE}",), (f"{ME}-{BOB}",)])


def test_nothing_new_costs_one_request_and_new_events_cost_little(cli: Cli, world: SandboxWorld,
                                                                  clock: Clock, db: Any) -> None:
    for i in range(30):
        world.incoming_dm(ALICE, f"history {i}", at=clock.ago(hours=60 - i))
    sync(cli)
    clock.advance(minutes=10)  # a cron sync within sync.public_every_minutes (15)
    world.reset_requests_log()

    data = sync(cli)
    assert data["dm_events_new"] == 0
    assert data["requests"] == 1 and world.requests_count() == 1
    assert data["dm_events_read"] <= 2 and world.dm_events_read() <= 2

    for minutes in (9, 5, 1):
        world.incoming_dm(BOB, f"new {minutes}", at=clock.ago(minutes=minutes))
    clock.advance(minutes=1)
    world.reset_requests_log()
    data = sync(cli)
    assert data["dm_events_new"] == 3
    # The history was read earlier this UTC day: X bills it once a day, so the
    # walk may run into it for free rather than guess (and bill) a margin.
    assert data["dm_events_billable"] == 3 and data["requests"] <= 2
    assert data["dm_events_read"] == world.dm_events_read()
    assert data["requests"] == world.requests_count()
    ids = stored_event_ids(db)
    assert len(ids) == len(set(ids)) == 33


def test_no_me_request_after_the_first_sync(cli: Cli, world: SandboxWorld) -> None:
    sync(cli)
    sync(cli)
    assert [q["path"] for q in world.requests_log()].count("/2/users/me") == 1


# --- interruptions -------------------------------------------------------------------


def _fail_nth_dm_request(monkeypatch: pytest.MonkeyPatch, world: SandboxWorld, n: int,
                         status: int = 429) -> list[int]:
    """Arm a sandbox fault just before the n-th GET /2/dm_events of this test."""
    from dmtool.x.client import TweepyClient

    calls: list[int] = []
    original = TweepyClient.dm_events

    def dm_events(self: Any, max_results: int, pagination_token: str | None = None) -> Any:
        calls.append(max_results)
        if len(calls) == n:
            world.fail_next(status, path_contains="/2/dm_events")
        return original(self, max_results, pagination_token)

    monkeypatch.setattr(TweepyClient, "dm_events", dm_events)
    return calls


def test_sync_interrupted_after_page_two_resumes_without_loss_or_rereading(
        cli: Cli, world: SandboxWorld, clock: Clock, db: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(20):
        world.incoming_dm(ALICE, f"old {i}", at=clock.ago(days=3, minutes=-i))
    sync(cli)
    # Cut short at 23:50 UTC and resumed after 00:00: reading again what the
    # first walk read would be billed again (the same-day rule), so the
    # resumed walk must jump over it.
    clock.advance(hours=11, minutes=50)
    # 40 events at irregular times over the 10 hours since, created in time
    # order so that ids follow time as on X.
    minutes_ago = sorted({600 - (i * 37) % 590 - 5 - i // 7 for i in range(40)}, reverse=True)
    assert len(minutes_ago) == 40
    for i, m in enumerate(minutes_ago):
        world.incoming_dm(BOB if i % 3 else ALICE, f"new {i}", at=clock.ago(minutes=m))
    calls = _fail_nth_dm_request(monkeypatch, world, 3)

    r = cli("sync")
    assert r.exit_code == 5, r
    assert len(calls) == 3
    kept = len(stored_event_ids(db))
    assert 20 < kept < 60  # pages 1 and 2 are stored

    # Before the reset: refused without a single request.
    before = world.requests_count()
    r = cli("sync")
    assert r.exit_code == 5 and "rate limit" in r.stderr
    assert world.requests_count() == before

    # New events arrive meanwhile; after the reset the walk picks up both.
    clock.advance(minutes=16)
    for i in range(3):
        world.incoming_dm(SAM, f"later {i}", at=clock.ago(minutes=3 - i))
    world.reset_requests_log()
    data = sync(cli)
    ids = stored_event_ids(db)
    assert len(ids) == len(set(ids))
    assert set(ids) == world_message_ids(world)
    assert data["dm_events_new"] == 63 - kept
    # It jumped over what the interrupted walk had stored instead of reading it again.
    assert data["dm_events_read"] <= data["dm_events_new"] + 5 + 2
    assert data["dm_events_billable"] == data["dm_events_read"]  # a new UTC day: none free
    data = sync(cli)
    assert data["dm_events_new"] == 0 and data["requests"] == 1


def test_a_resumed_walk_sizes_its_pages_from_the_segment_it_jumps(
        cli: Cli, world: SandboxWorld, clock: Clock, db: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(20):
        world.incoming_dm(ALICE, f"old {i}", at=clock.ago(days=3, minutes=-i))
    sync(cli)
    clock.advance(hours=13)  # the next UTC day: nothing read before is free (same-day rule)
    for i in range(200):  # one DM every 3 minutes over the 10 hours since
        world.incoming_dm(BOB if i % 3 else ALICE, f"new {i}", at=clock.ago(minutes=599 - 3 * i))
    _fail_nth_dm_request(monkeypatch, world, 5)  # pages 1-4 are stored, with a segment
    assert cli("sync").exit_code == 5
    clock.advance(minutes=16)
    world.reset_requests_log()
    data = sync(cli)
    assert data["dm_events_new"] == 200 - 45
    assert data["dm_events_read"] <= data["dm_events_new"] + 5 + 2
    # Past the jump, the segment's 45 events (one every 3 minutes) set the rate
    # for what is left below it; without them the walk crept on in pages of 4.
    assert len(dm_pages(world)) <= 9
    assert set(stored_event_ids(db)) == world_message_ids(world)


def test_a_refused_saved_token_falls_back_to_walking_down(cli: Cli, world: SandboxWorld,
                                                          clock: Clock, db: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    world.incoming_dm(ALICE, "old", at=clock.ago(days=2))
    sync(cli)
    clock.advance(hours=5)
    for m in range(30, 0, -1):
        world.incoming_dm(BOB, f"new {m}", at=clock.ago(minutes=m * 9))
    _fail_nth_dm_request(monkeypatch, world, 3)
    assert cli("sync").exit_code == 5
    walk = json.loads(db("SELECT value FROM sync_state WHERE key = 'dm_walk'")[0][0])
    assert walk and walk[0]["token"]
    # Tokens may expire on X: a refused one must not wedge every later sync.
    walk[0]["token"] = "expired"
    db("UPDATE sync_state SET value = ? WHERE key = 'dm_walk'", (json.dumps(walk),))
    clock.advance(minutes=16)
    sync(cli)
    assert sorted(stored_event_ids(db)) == sorted(world_message_ids(world))
    assert db("SELECT value FROM sync_state WHERE key = 'dm_walk'") == [(None,)]


def test_rate_limit_mid_sync_exits_5_with_reset_time_and_keeps_pages(
        cli: Cli, world: SandboxWorld, clock: Clock, db: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(12):
        world.incoming_dm(ALICE, f"m{i}", at=clock.ago(hours=12 - i))
    _fail_nth_dm_request(monkeypatch, world, 2)
    r = cli("sync", "--json")
    assert r.exit_code == 5
    assert r.stdout == ""
    err = json.loads(r.stderr)["error"]
    assert err["code"] == "E_RATE_LIMITED"
    reset = parse(err["reset_at"])  # RFC 3339, like every time in JSON
    assert reset == clock.now + timedelta(seconds=900)
    assert fmt(reset) in err["message"]
    assert err["message"].startswith("sandbox: ")
    assert len(stored_event_ids(db)) == 2  # the first page (2 events) is kept

    r = cli("sync")
    assert r.exit_code == 5
    local = reset.astimezone().strftime("%H:%M")
    assert local in r.stderr and r.stderr.startswith("error: ")
    assert db("SELECT value FROM sync_state WHERE key = 'rate_limited_until.dm_read'") == [
        (fmt(reset),)]


def test_check_refuses_only_while_sending_is_rate_limited(cli: Cli, world: SandboxWorld,
                                                          clock: Clock, db: Any) -> None:
    world.incoming_dm(ALICE, "hi", at=clock.ago(hours=1))
    sync(cli)
    clock.advance(minutes=1)
    world.incoming_dm(ALICE, "again", at=clock.ago(seconds=5))
    world.fail_next(429, path_contains="/2/dm_events")
    assert cli("sync").exit_code == 5
    # A limit on reading DMs does not stop sending: check says yes.
    r = cli("check", "alice", "--json")
    assert r.exit_code == 0, r
    assert "E_RATE_LIMITED" not in {x["code"] for x in r.json()["reasons"]}
    # A limit on sending does.
    db("INSERT INTO sync_state (key, value) VALUES ('rate_limited_until.dm_send', ?)",
       (fmt(clock.now + timedelta(minutes=5)),))
    r = cli("check", "alice", "--json")
    assert r.exit_code == 5
    assert "E_RATE_LIMITED" in {x["code"] for x in r.json()["reasons"]}


def test_server_error_is_retried_then_succeeds(cli: Cli, world: SandboxWorld, clock: Clock) -> None:
    world.incoming_dm(ALICE, "hi", at=clock.ago(hours=1))
    world.fail_next(503, path_contains="/2/dm_events")
    data = sync(cli)
    assert data["dm_events_new"] == 1


def test_server_down_exits_5(cli: Cli, world: SandboxWorld, clock: Clock) -> None:
    world.incoming_dm(ALICE, "hi", at=clock.ago(hours=1))
    world.fail_next(503, count=10, path_contains="/2/dm_events")
    r = cli("sync")
    assert r.exit_code == 5 and "X is having trouble" in r.stderr


def test_unauthorized_exits_4(cli: Cli, world: SandboxWorld) -> None:
    world.fail_next(401)
    r = cli("sync", "--json")
    assert r.exit_code == 4
    assert json.loads(r.stderr)["error"]["code"] == "E_AUTH"


def test_a_second_sync_at_the_same_time_is_skipped(cli: Cli, world: SandboxWorld) -> None:
    other = profile_store()  # another process's connection, holding the store's sync lock
    with other.lock("sync"):
        r = cli("sync", "--json")
    other.close()
    assert r.exit_code == 0  # the work is being done: nothing for cron to mail but one line
    assert r.json()["skipped"] == "sync_running"
    assert world.requests_count() == 0


def test_wait_counts_down_then_syncs(cli: Cli, world: SandboxWorld, clock: Clock) -> None:
    from dmtool.appstate import AppState
    from dmtool.services.sync import run_sync

    world.incoming_dm(ALICE, "hi", at=clock.ago(hours=1))
    st = AppState()
    with st.store.tx():
        st.store.set_state("rate_limited_until.dm_read", fmt(clock.now + timedelta(seconds=5)))
    lines: list[tuple[str, bool]] = []
    sleeps: list[float] = []
    try:
        result = run_sync(st, wait=True, sleep=sleeps.append,
                          progress=lambda text, *, transient=True: lines.append((text, transient)))
    finally:
        st.close()
    assert result.dm_events_new == 1
    assert len(sleeps) >= 5
    assert any(not transient and "waiting until" in text for text, transient in lines)
    assert any("resuming in 0:0" in text for text, _ in lines)


def test_wait_through_a_rate_limit_met_mid_sync(cli: Cli, world: SandboxWorld, clock: Clock,
                                                db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from dmtool.appstate import AppState
    from dmtool.services.sync import run_sync

    for i in range(12):
        world.incoming_dm(ALICE, f"m{i}", at=clock.ago(hours=12 - i))
    _fail_nth_dm_request(monkeypatch, world, 2)
    sleeps: list[float] = []
    st = AppState()
    try:
        result = run_sync(st, wait=True, sleep=sleeps.append)
    finally:
        st.close()
    assert result.dm_events_new == 12
    assert 900 <= len(sleeps) <= 902  # the sandbox's reset is 900 s away
    assert sorted(stored_event_ids(db)) == sorted(world_message_ids(world))


def test_spinner_on_a_terminal(world: SandboxWorld, clock: Clock) -> None:
    import pexpect

    from tests.conftest import dmtool_command

    world.incoming_dm(ALICE, "hi", at=clock.ago(hours=1))
    cmd = dmtool_command()
    child = pexpect.spawn(cmd[0], [*cmd[1:], "sync"], env={**os.environ, "TERM": "xterm"},
                          encoding="utf-8", timeout=30, dimensions=(40, 120))
    child.expect_exact("sandbox: synced: 1 new DM")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


# --- contacts, opt-outs and evidence ----------------------------------------------------


def test_handle_change_is_followed_by_user_id(cli: Cli, world: SandboxWorld, clock: Clock) -> None:
    world.incoming_dm(ALICE, "hi, I'm alice", at=clock.ago(hours=2))
    sync(cli)
    world.add_user("alice_new", "Alice Renamed", user_id=ALICE)
    clock.advance(minutes=10)
    world.incoming_dm(ALICE, "new handle, same me", at=clock.ago(minutes=1))
    data = sync(cli)
    assert data["contacts_new"] == 0
    contacts = cli("contacts", "list", "--json").json()
    assert [(c["handle"], c["user_id"], c["name"]) for c in contacts] == [
        ("alice_new", ALICE, "Alice Renamed")]
    assert [m["text"] for m in show(cli, "alice_new")["messages"]] == [
        "hi, I'm alice", "new handle, same me"]


def test_stop_opts_out_and_a_later_start_lifts_it(cli: Cli, world: SandboxWorld,
                                                  clock: Clock) -> None:
    world.incoming_dm(SAM, "Thanks for the info", at=clock.ago(hours=3))
    world.incoming_dm(SAM, "STOP", at=clock.ago(hours=2))
    data = sync(cli)
    assert data["opted_out"] == ["sam"]
    r = cli("check", "sam", "--json")
    assert r.exit_code == 3
    assert "E_OPTED_OUT" in {x["code"] for x in r.json()["reasons"]}
    assert [c["handle"] for c in cli("contacts", "list", "--status", "opted-out", "--json").json()] \
        == ["sam"]
    log = cli("log", "--json")
    if log.exit_code == 0:  # the audit log command may not exist yet
        assert any(e["action"] == "opted_out" and "E_OPTED_OUT" in e["codes"] for e in log.json())

    clock.advance(hours=1)
    world.incoming_dm(SAM, "start", at=clock.ago(minutes=5))
    data = sync(cli)
    assert data["opted_out"] == []
    assert cli("check", "sam").exit_code == 0
    assert show(cli, "sam")["status"] == "can-dm"


def test_please_stop_puts_the_contact_in_review(cli: Cli, world: SandboxWorld, clock: Clock) -> None:
    world.incoming_dm(SAM, "please stop messaging me", at=clock.ago(hours=1))
    data = sync(cli)
    assert data["opted_out"] == []
    assert show(cli, "sam")["status"] == "review"
    r = cli("check", "sam", "--json")
    assert r.exit_code == 3
    assert "E_OPTOUT_REVIEW" in {x["code"] for x in r.json()["reasons"]}


@pytest.mark.parametrize("order,opted_out", [(("STOP", "START"), False), (("START", "STOP"), True)])
def test_opt_out_words_apply_in_time_order_across_pages(cli: Cli, world: SandboxWorld, clock: Clock,
                                                        order: tuple[str, str],
                                                        opted_out: bool) -> None:
    # Pages are read newest first; one event per page puts the two words on two pages.
    assert cli("config", "set", "sync.first_page_size", "1").exit_code == 0
    assert cli("config", "set", "sync.max_page_size", "1").exit_code == 0
    world.incoming_dm(SAM, "hello", at=clock.ago(hours=3))
    world.incoming_dm(SAM, order[0], at=clock.ago(hours=2))
    world.incoming_dm(SAM, order[1], at=clock.ago(hours=1))
    data = sync(cli)
    assert data["dm_events_read"] == 3
    assert (data["opted_out"] == ["sam"]) is opted_out
    assert (show(cli, "sam")["status"] == "opted-out") is opted_out


def test_public_exchange_counts_and_a_mention_alone_does_not(cli: Cli, world: SandboxWorld,
                                                             clock: Clock) -> None:
    carol_post = world.add_post(CAROL, f"@{SANDBOX_ME[1]} loved your talk", at=clock.ago(hours=5))
    reply = world.add_post(ME, "@carol thank you!", at=clock.ago(hours=4),
                           reply_to_post_id=carol_post)
    dave_post = world.add_post(DAVE, f"hey @{SANDBOX_ME[1]} what do you think?",
                               at=clock.ago(hours=3))
    world.add_post(ME, "@erin nice photo", at=clock.ago(hours=2), in_reply_to_user_id=ERIN)
    world.add_post(ME, "just a post", at=clock.ago(hours=1))

    data = sync(cli)
    assert data["mentions_new"] == 2
    assert data["replies_new"] == 2
    assert data["contacts_new"] == 2  # carol and dave; erin never engaged with you

    carol = show(cli, "carol")
    assert ("public_exchange", reply) in {(e["kind"], e["ref"]) for e in carol["evidence"]}
    r = cli("check", "carol", "--json")
    assert r.exit_code == 0 and r.json()["first_contact"] is True

    r = cli("check", "dave", "--json")
    assert r.exit_code == 3
    assert [x["code"] for x in r.json()["reasons"] if x["code"].startswith("E_")][:1] == \
        ["E_MENTION_ONLY"]
    assert cli("contacts", "show", "erin").exit_code == 1

    # A reply to some other post of Dave's is not an answer to him: still mention-only.
    clock.advance(hours=2)
    other = world.add_post(DAVE, "just had a great coffee", at=clock.ago(minutes=30))
    world.add_post(ME, "@dave where from?", at=clock.ago(minutes=20), reply_to_post_id=other)
    assert sync(cli, "--public")["replies_new"] == 1
    assert cli("check", "dave").exit_code == 3

    # Later you answer his mention publicly: the next public check records the exchange,
    # dated from his side (your own post never renews consent).
    world.add_post(ME, "@dave I think it's great", at=clock.ago(minutes=5),
                   reply_to_post_id=dave_post)
    data = sync(cli, "--public")
    assert data["replies_new"] == 1 and data["mentions_new"] == 0
    assert cli("check", "dave").exit_code == 0
    ev = [e for e in show(cli, "dave")["evidence"] if e["kind"] == "public_exchange"]
    assert [e["at"] for e in ev] == [fmt(clock.ago(hours=5))]


def test_public_timelines_are_checked_every_interval_or_when_asked(
        cli: Cli, world: SandboxWorld, clock: Clock) -> None:
    sync(cli)
    clock.advance(minutes=10)
    world.add_post(DAVE, f"@{SANDBOX_ME[1]} hi", at=clock.ago(minutes=1))
    assert sync(cli)["mentions_new"] == 0  # not due yet: one request only
    clock.advance(minutes=6)
    assert sync(cli)["mentions_new"] == 1  # 16 minutes > sync.public_every_minutes
    world.add_post(DAVE, f"@{SANDBOX_ME[1]} again", at=clock.ago(minutes=0))
    clock.advance(minutes=1)
    r = cli("sync", "--json", "--public")  # forced: a public reply you just made counts now
    assert r.exit_code == 0 and r.json()["mentions_new"] == 1


def test_autoack_hook_runs_once_per_new_inbound_message(cli: Cli, world: SandboxWorld,
                                                        clock: Clock) -> None:
    from dmtool.appstate import AppState
    from dmtool.services.sync import run_sync

    sync(cli)  # the first sync is history: no hook calls
    world.incoming_dm(ALICE, "hi", at=clock.ago(hours=2))
    world.outgoing_dm(ALICE, "hello", at=clock.ago(hours=1))
    world.incoming_dm(ALICE, "and another", at=clock.ago(minutes=30))
    seen: list[tuple[str, str | None]] = []
    for _ in range(2):
        st = AppState()
        try:
            run_sync(st, wait=False,
                     autoack_hook=lambda conn, contact, at: seen.append((contact.handle, fmt(at))))
        finally:
            st.close()
    assert seen == [("alice", fmt(clock.ago(hours=2)))]


# --- output ------------------------------------------------------------------------


def test_json_stdout_is_only_json_and_human_output_says_sandbox(run: Callable[..., Result],
                                                               world: SandboxWorld,
                                                               clock: Clock) -> None:
    world.incoming_dm(SAM, "STOP", at=clock.ago(hours=1))
    r = run("sync", "--json")
    assert r.exit_code == 0, r
    assert json.loads(r.stdout)["opted_out"] == ["sam"]
    assert r.stderr == ""  # no spinner off a terminal
    r = run("sync")
    assert r.exit_code == 0
    assert r.stdout.startswith("sandbox: synced: 0 new DMs") and r.stdout.count("\n") == 1


def evenly(n: int, newest: datetime, oldest: datetime) -> list[datetime]:
    """n arrival times from newest down to oldest, newest first (as the walk reads them)."""
    step = (newest - oldest) / max(n - 1, 1)
    return [newest - step * i for i in range(n)]


S, M, H = timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1)
BURST_PAGE = BURST_RISK + PAGE_MARGIN


@pytest.mark.parametrize("times,floor_ago,low,high", [
    # Nothing stored within X's 30 days: every event is new, read full pages.
    (evenly(2, T0, T0 - 30 * S), None, 100, 100),
    (evenly(2, T0, T0 - 30 * S), timedelta(days=31), 100, 100),
    # A few events in the last minutes after a quiet night: ask for a few.
    (evenly(2, T0 - 5 * S, T0 - 30 * S), 8 * H, 1, 8),
    (evenly(2, T0 - M, T0 - 8 * M), 15 * M, 1, 4),
    # A stream seen for longer than the gap left to the floor: trust it.
    (evenly(400, T0 - M, T0 - 400 * M), 550 * M, 100, 100),
    # 250 DMs in the last 5 seconds, the last sync 12 minutes ago: where the burst
    # began is unknowable, so bet no more than BURST_RISK on it (the old rate
    # extrapolation asked for 100: up to 100 old events read).
    (evenly(250, T0 - S / 100, T0 - 5 * S), 12 * M, 30, BURST_PAGE + 1),
    # The same after a quiet week.
    (evenly(250, T0 - S, T0 - 2 * M), timedelta(days=7), 30, BURST_PAGE + 1),
    # A burst a minute after the last sync, quiet since: its own rate counts, not
    # the quiet's (the old estimate of <1 event left asked for 4 at a time: 60
    # requests for 250 DMs, four times X's 15 per 15 minutes).
    (evenly(10, T0 - 11 * M + S, T0 - 11 * M), 12 * M, 30, BURST_PAGE + 1),
    # Past a burst, steady again (one DM every 5 minutes, 55 minutes to the
    # floor: about 11 left): the steady rate counts, not the burst's (old: 48).
    (evenly(60, T0 - M, T0 - M - 10 * S) + evenly(10, T0 - 6 * M, T0 - 51 * M), 106 * M, 1, 8),
    # Found in review: events that reach back past the floor's time (our clock
    # ahead of X's, or DMs that show up late) gave an estimate of 0 left, and
    # pages of 4: 200 such DMs took 49 requests. Double what was read, up to
    # the burst bet, instead.
    (evenly(8, T0 - M, T0 - 2 * M), M + S, 8 + PAGE_MARGIN, 8 + PAGE_MARGIN),
    (evenly(40, T0 - M, T0 - M), M, BURST_PAGE, BURST_PAGE),
])
def test_page_size_table(times: list[datetime], floor_ago: timedelta | None, low: int,
                         high: int) -> None:
    from dmtool.services.sync import page_size

    floor_at = None if floor_ago is None else T0 - floor_ago
    assert low <= page_size(times=times, floor_at=floor_at, now=T0, max_size=100) <= high


def test_page_size_grows_with_a_steady_stream_within_the_ceiling() -> None:
    from dmtool.services.sync import page_size

    sizes = [page_size(times=evenly(n, T0 - M, T0 - n * M), floor_at=T0 - 10 * H, now=T0,
                       max_size=100) for n in (2, 10, 50, 200)]
    assert sizes == sorted(sizes) and sizes[0] <= PAGE_MARGIN
    assert page_size(times=evenly(50, T0 - M, T0 - 50 * M), floor_at=T0 - 10 * H, now=T0,
                     max_size=20) == 20


def test_frontier_rate_finds_the_stretch_nearest_the_floor() -> None:
    from dmtool.services.sync import frontier_rate

    steady = evenly(64, T0 - M, T0 - 64 * M)
    assert frontier_rate(steady, T0) == (64, 64 * 60.0)
    # Quiet for 10 minutes after a burst of 32 in 31 seconds: the burst's rate.
    count, seconds = frontier_rate(evenly(32, T0 - 10 * M, T0 - 10 * M - 31 * S), T0)
    assert count < 32 and count / seconds == pytest.approx(1.0)
    # A burst, then steady again: the steady part only.
    count, seconds = frontier_rate(evenly(40, T0, T0 - 4 * S) + evenly(16, T0 - M, T0 - 16 * M), T0)
    assert count <= 16 and count / seconds == pytest.approx(1 / 60, rel=0.01)


def test_event_time_takes_the_milliseconds_from_a_snowflake_id() -> None:
    from dmtool.services.sync import SNOWFLAKE_EPOCH_MS, event_time
    from dmtool.x.types import DMEvent

    at = T0 + timedelta(milliseconds=1234)
    snowflake = str((int(at.timestamp() * 1000) - SNOWFLAKE_EPOCH_MS) << 22 | 77)
    whole_second = at.replace(microsecond=0)  # X's created_at

    def ev(id_: str, created: datetime | None) -> DMEvent:
        return DMEvent(id=id_, event_type="MessageCreate", text="hi", sender_id=ALICE,
                       conversation_id=f"{ALICE}-{ME}", created_at=created)

    assert event_time(ev(snowflake, whole_second)) == at
    assert event_time(ev(snowflake, None)) == at
    # An id that is no snowflake of that moment: created_at is all there is.
    assert event_time(ev("42", whole_second)) == whole_second
    assert event_time(ev("42", None)) is None  # not a time in 2010
    assert event_time(ev(snowflake, whole_second - H)) == whole_second - H


@pytest.mark.parametrize("later", [{"minutes": 12}, {"hours": 12, "minutes": 12}],
                         ids=["same UTC day", "next UTC day"])
def test_a_burst_in_the_last_seconds_risks_a_bounded_number_of_old_events(
        cli: Cli, world: SandboxWorld, clock: Clock, db: Any, later: dict[str, int]) -> None:
    for i in range(150):
        world.incoming_dm(ALICE if i % 2 else BOB, f"history {i}", at=clock.ago(hours=150 - i))
    sync(cli)
    clock.advance(**later)
    for i in range(60):  # 60 DMs within the last 2 seconds
        world.incoming_dm(SAM if i % 3 else CAROL, f"burst {i}", at=clock.ago(seconds=2 - i / 30))
    world.reset_requests_log()
    data = sync(cli)
    assert data["dm_events_new"] == 60
    assert data["dm_events_read"] == world.dm_events_read()
    if "hours" in later:  # nothing read today yet: old events read are billed
        assert data["dm_events_billable"] == data["dm_events_read"]
        assert data["dm_events_read"] <= 60 + BURST_RISK + PAGE_MARGIN  # was 60 + 90
    else:  # the history was read earlier today: running into it is free, and fewer requests
        assert data["dm_events_billable"] == 60
        assert len(dm_pages(world)) <= 3
    assert len(dm_pages(world)) <= 6
    assert set(stored_event_ids(db)) == world_message_ids(world)


@pytest.mark.parametrize("start", [{}, {"hours": 11, "minutes": 55}],
                         ids=["same UTC day", "across 00:00 UTC"])
def test_a_burst_just_after_the_last_sync_takes_few_requests(
        cli: Cli, world: SandboxWorld, clock: Clock, db: Any, start: dict[str, int]) -> None:
    clock.advance(**start)  # 12:00 or 23:55 UTC
    for i in range(150):
        world.incoming_dm(ALICE if i % 2 else BOB, f"history {i}", at=clock.ago(hours=150 - i))
    sync(cli)
    for i in range(150):  # a minute after the sync, 150 DMs within 5 seconds; then quiet
        world.incoming_dm(SAM if i % 3 else CAROL, f"burst {i}", at=clock.ago(seconds=-60 - i / 30))
    clock.advance(minutes=12)
    world.reset_requests_log()
    data = sync(cli)
    assert data["dm_events_new"] == 150
    if start:  # after 00:00 UTC the history read before it is billed again when read
        assert data["dm_events_read"] <= 150 + BURST_RISK + PAGE_MARGIN
        assert data["dm_events_billable"] == data["dm_events_read"]
    else:  # read earlier today: the walk may run into it for free
        assert data["dm_events_billable"] == 150
    assert len(dm_pages(world)) <= 10  # was 30: twice X's 15 per 15 minutes
    assert set(stored_event_ids(db)) == world_message_ids(world)


def test_no_review_for_someone_already_opted_out(cli: Cli, world: SandboxWorld,
                                                 clock: Clock) -> None:
    world.incoming_dm(SAM, "STOP", at=clock.ago(hours=2))
    sync(cli)
    world.incoming_dm(SAM, "stop please", at=clock.ago(hours=1))
    sync(cli)
    shown = show(cli, "sam")
    assert shown["status"] == "opted-out" and shown["optout_review"] is None



def test_check_shows_the_newest_record_of_each_kind_and_counts_the_rest(
        cli: Cli, world: SandboxWorld, clock: Clock) -> None:
    """A chatty contact has one inbound_dm record per DM: `check` shows the one
    that decides (the newest) and how many stand behind it, not all of them."""
    ids = [world.incoming_dm(ALICE, f"message {n}", at=clock.ago(hours=5 - n)) for n in range(4)]
    sync(cli)
    r = cli("check", "@alice", "--json")
    assert r.exit_code == 0, r
    data = r.json()
    assert [(e["kind"], e["ref"]) for e in data["evidence"]] == [("inbound_dm", ids[-1])]
    assert data["evidence_total"] == 4
    text = cli("check", "@alice").stdout
    at = data["evidence"][0]["at"]  # local time (TZ=UTC in the tests)
    assert f"evidence: inbound_dm on {at[:10]} {at[11:16]} ({ids[-1]})" in text
    assert "3 earlier records of the same kinds: `dmtool contacts show @alice`" in text
    assert len(cli("contacts", "show", "alice", "--json").json()["evidence"]) == 4
