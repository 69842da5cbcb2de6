"""TweepyClient against the sandbox: the real tweepy client, only the network replaced."""

from __future__ import annotations

import json
import logging
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import requests.adapters
from urllib3.exceptions import MaxRetryError, NewConnectionError

from dmtool.credentials import Credentials
from dmtool.errors import (
    AuthError,
    DMClosed,
    InputError,
    NotFound,
    RateLimited,
    Unavailable,
)
from dmtool.x.client import DM_EVENT_FIELDS, TweepyClient, open_client
from dmtool.x.errors import SendOutcomeUnknown
from dmtool.x.sandbox import SandboxAdapter, SandboxWorld

ME = "1000000000000000001"
ALICE = "1000000000000000002"
BOB = "1000000000000000003"
CLOSED = "1000000000000000004"
SECRET = "SeCrEt-AcCeSs-ToKeN-0123456789abcdef"


@pytest.fixture
def world(tmp_path: Path) -> SandboxWorld:
    w = SandboxWorld.create(tmp_path / "x.json")
    with w.transaction():
        w.set_me(ME, "me_account", "Me")
        w.add_user("alice", "Alice A", user_id=ALICE)
        w.add_user("bob", "Bob B", user_id=BOB)
        w.add_user("closed_carl", "Carl", user_id=CLOSED, dms_closed=True)
    return w


def client_for(world: SandboxWorld, creds: Credentials | None = None, **kw: Any) -> TweepyClient:
    creds = creds or Credentials(kind="oauth2", access_token=SECRET)
    kw.setdefault("retry_backoff", 0)
    return TweepyClient(creds, adapter=SandboxAdapter(world.path), **kw)


@pytest.fixture
def client(world: SandboxWorld) -> TweepyClient:
    return client_for(world)


def at(minutes_ago: int) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes_ago)


# --- users -----------------------------------------------------------------------------


def test_me_and_user_lookup(client: TweepyClient, world: SandboxWorld) -> None:
    me = client.me()
    assert (me.id, me.username, me.name) == (ME, "me_account", "Me")
    alice = client.user_by_handle("@ALICE")
    assert (alice.id, alice.username, alice.name) == (ALICE, "alice", "Alice A")
    assert client.requests_made == 2 == world.requests_count()


def test_missing_user_is_not_found_naming_the_handle(client: TweepyClient) -> None:
    with pytest.raises(NotFound) as info:
        client.user_by_handle("@ghost_user")
    assert "@ghost_user" in info.value.message
    assert info.value.hint is None  # X's own wording only repeated the message (issue 12)
    assert info.value.exit_code == 1


def test_invalid_handle_is_refused_without_a_request(client: TweepyClient) -> None:
    with pytest.raises(InputError):
        client.user_by_handle("not a handle!")
    assert client.requests_made == 0


def test_users_by_ids_skips_missing_and_chunks_by_100(client: TweepyClient, world: SandboxWorld) -> None:
    users = client.users_by_ids([ALICE, "999", BOB, ALICE])
    assert [u.username for u in users] == ["alice", "bob"]
    assert client.requests_made == 1
    ids = [ALICE] + [str(5000 + i) for i in range(150)]
    assert [u.id for u in client.users_by_ids(ids)] == [ALICE]
    assert client.requests_made == 3
    assert client.users_by_ids([]) == []
    assert client.requests_made == 3


# --- DM events ----------------------------------------------------------------------------


def test_dm_events_pages_newest_first_with_all_fields(client: TweepyClient, world: SandboxWorld) -> None:
    with world.transaction():
        ids = [world.incoming_dm(ALICE, f"hello {i}", at=at(50 - i)) for i in range(4)]
        ids.append(world.outgoing_dm(BOB, "hi bob", at=at(10)))

    page1 = client.dm_events(2)
    assert [e.id for e in page1.events] == [ids[4], ids[3]]
    newest = page1.events[0]
    assert newest.text == "hi bob"
    assert newest.sender_id == ME
    assert newest.event_type == "MessageCreate"
    assert newest.conversation_id == f"{ME}-{BOB}"
    assert newest.created_at is not None and newest.created_at.tzinfo is not None
    assert abs(newest.created_at - at(10)) < timedelta(seconds=5)
    assert set(page1.users) == {ME, ALICE}
    assert page1.users[ALICE].username == "alice"
    assert page1.next_token

    page2 = client.dm_events(2, page1.next_token)
    assert [e.id for e in page2.events] == [ids[2], ids[1]]
    page3 = client.dm_events(2, page2.next_token)
    assert [e.id for e in page3.events] == [ids[0]]
    assert page3.next_token is None
    assert client.requests_made == 3
    assert world.dm_events_read() == 5


def test_a_full_last_page_can_lead_to_an_empty_one(client: TweepyClient, world: SandboxWorld) -> None:
    with world.transaction():
        for i in range(2):
            world.incoming_dm(ALICE, f"m{i}", at=at(10 - i))
    page = client.dm_events(2)
    assert len(page.events) == 2 and page.next_token
    last = client.dm_events(2, page.next_token)
    assert last.events == [] and last.next_token is None and last.users == {}


def test_empty_inbox(client: TweepyClient) -> None:
    page = client.dm_events(5)
    assert page.events == [] and page.next_token is None


def test_dm_requests_ask_for_every_field_and_expansion(client: TweepyClient, world: SandboxWorld) -> None:
    world.incoming_dm(ALICE, "hi")
    client.dm_events(7)
    client.conversation_events(ALICE, 3)
    for entry in world.requests_log():
        query = entry["query"]
        assert query["dm_event.fields"].split(",") == DM_EVENT_FIELDS
        assert query["expansions"] == "sender_id,participant_ids"
        assert query["user.fields"] == "username,name"
    assert [e["query"]["max_results"] for e in world.requests_log()] == ["7", "3"]


def test_max_results_out_of_range_is_a_programming_error(client: TweepyClient) -> None:
    with pytest.raises(ValueError):
        client.dm_events(0)
    with pytest.raises(ValueError):
        client.conversation_events(ALICE, 101)
    assert client.requests_made == 0


def test_conversation_events_only_that_conversation(client: TweepyClient, world: SandboxWorld) -> None:
    with world.transaction():
        a1 = world.incoming_dm(ALICE, "from alice", at=at(30))
        world.incoming_dm(BOB, "from bob", at=at(20))
        a2 = world.outgoing_dm(ALICE, "to alice", at=at(10))
    page = client.conversation_events(ALICE, 10)
    assert [e.id for e in page.events] == [a2, a1]
    assert {e.conversation_id for e in page.events} == {f"{ME}-{ALICE}"}


def test_dm_window_is_30_days_like_x(client: TweepyClient, world: SandboxWorld) -> None:
    with world.transaction():
        world.incoming_dm(ALICE, "old", at=datetime.now(UTC) - timedelta(days=45))
        world.incoming_dm(ALICE, "recent", at=at(5))
    assert [e.text for e in client.dm_events(10).events] == ["recent"]


# --- sending --------------------------------------------------------------------------------


def test_send_dm_is_recorded(client: TweepyClient, world: SandboxWorld) -> None:
    sent = client.send_dm(ALICE, "Thanks for reaching out!")
    assert sent.dm_conversation_id == f"{ME}-{ALICE}"
    [event] = world.dms_with(ALICE)
    assert event["id"] == sent.dm_event_id
    assert event["text"] == "Thanks for reaching out!"
    assert event["sender_id"] == ME


def test_send_to_closed_dms_raises_dm_closed(client: TweepyClient, world: SandboxWorld) -> None:
    with pytest.raises(DMClosed) as info:
        client.send_dm(CLOSED, "hello")
    assert info.value.exit_code == 3
    assert world.dms_with(CLOSED) == []


def test_forbid_dm_to_closes_a_conversation(client: TweepyClient, world: SandboxWorld) -> None:
    world.forbid_dm_to(BOB)
    with pytest.raises(DMClosed):
        client.send_dm(BOB, "hello")


def test_timeout_after_send_is_unknown_and_the_dm_exists(client: TweepyClient, world: SandboxWorld) -> None:
    world.timeout_after_send()
    with pytest.raises(SendOutcomeUnknown) as info:
        client.send_dm(ALICE, "did this arrive?")
    assert isinstance(info.value, Unavailable)
    assert info.value.exit_code == 5
    assert info.value.code == "E_SEND_UNKNOWN"
    assert client.requests_made == 1  # never retried
    assert [e["text"] for e in world.dms_with(ALICE)] == ["did this arrive?"]
    # the next send is normal again
    client.send_dm(ALICE, "second")
    assert len(world.dms_with(ALICE)) == 2


def test_post_5xx_is_not_retried(client: TweepyClient, world: SandboxWorld) -> None:
    world.fail_next(503, method="POST")
    with pytest.raises(SendOutcomeUnknown):
        client.send_dm(ALICE, "hello")
    assert client.requests_made == 1
    assert world.dms_with(ALICE) == []


class FlakyAdapter(requests.adapters.BaseAdapter):
    """Raises the given errors for the first requests, then delegates to the sandbox."""

    def __init__(self, inner: requests.adapters.BaseAdapter, errors: list[Exception]) -> None:
        super().__init__()
        self.inner, self.errors = inner, errors

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        if self.errors:
            raise self.errors.pop(0)
        return self.inner.send(request, *args, **kwargs)

    def close(self) -> None:
        pass


def refused() -> requests.ConnectionError:
    cause = NewConnectionError(None, "connection refused")  # type: ignore[arg-type]
    return requests.ConnectionError(MaxRetryError(None, "/2/x", cause))  # type: ignore[arg-type]


def test_connection_refused_before_a_send_is_plainly_unavailable(world: SandboxWorld) -> None:
    adapter = FlakyAdapter(SandboxAdapter(world.path), [refused()])
    client = TweepyClient(Credentials(kind="sandbox", access_token="t"), adapter=adapter)
    with pytest.raises(Unavailable) as info:
        client.send_dm(ALICE, "hello")
    assert not isinstance(info.value, SendOutcomeUnknown)


def test_dropped_connection_after_a_send_is_unknown(world: SandboxWorld) -> None:
    dropped = requests.ConnectionError("Connection aborted: RemoteDisconnected")
    adapter = FlakyAdapter(SandboxAdapter(world.path), [dropped])
    client = TweepyClient(Credentials(kind="sandbox", access_token="t"), adapter=adapter)
    with pytest.raises(SendOutcomeUnknown):
        client.send_dm(ALICE, "hello")


# --- retries and error mapping ---------------------------------------------------------------


def test_get_5xx_then_success_is_retried(client: TweepyClient, world: SandboxWorld) -> None:
    world.fail_next(500, count=2, method="GET")
    assert client.me().id == ME
    assert client.requests_made == 3
    assert [r["status"] for r in world.requests_log()] == [500, 500, 200]


def test_get_5xx_gives_up_after_three_attempts(client: TweepyClient, world: SandboxWorld) -> None:
    world.fail_next(503, count=5)
    with pytest.raises(Unavailable) as info:
        client.dm_events(10)
    assert info.value.exit_code == 5
    assert client.requests_made == 3


def test_connection_errors_on_get_are_retried_with_bounded_backoff(world: SandboxWorld) -> None:
    delays: list[float] = []
    errors: list[Exception] = [requests.ConnectTimeout("slow"), refused()]
    adapter = FlakyAdapter(SandboxAdapter(world.path), errors)
    client = TweepyClient(
        Credentials(kind="sandbox", access_token="t"),
        adapter=adapter,
        retry_backoff=1.0,
        sleep=delays.append,
    )
    assert client.me().id == ME
    assert delays == [1.0, 2.0]
    assert client.requests_made == 3


def test_429_is_rate_limited_with_reset_time(client: TweepyClient, world: SandboxWorld) -> None:
    world.fail_next(429, reset_in=600)
    with pytest.raises(RateLimited) as info:
        client.dm_events(5)
    err = info.value
    assert err.reset_at is not None
    assert abs(err.reset_at - (datetime.now(UTC).timestamp() + 600)) < 10
    local = datetime.fromtimestamp(err.reset_at).strftime("%H:%M")
    assert f"until {local}" in err.message
    assert err.exit_code == 5 and err.code == "E_RATE_LIMITED"
    assert client.requests_made == 1  # no waiting, no retry


@pytest.mark.parametrize(("call", "family"), [
    (lambda c: c.dm_events(5), "dm_read"),
    (lambda c: c.conversation_events(ALICE, 5), "dm_read"),
    (lambda c: c.send_dm(ALICE, "hello"), "dm_send"),
    (lambda c: c.mentions(ME), "timelines"),
    (lambda c: c.own_posts(ME), "timelines"),
    (lambda c: c.me(), "users"),
    (lambda c: c.users_by_ids([ALICE]), "users"),
    (lambda c: c.user_by_handle("alice"), "users"),
])
def test_429_names_the_endpoint_family(client: TweepyClient, world: SandboxWorld,
                                       call: Any, family: str) -> None:
    """X limits each family separately: the error says which one paused."""
    world.fail_next(429, reset_in=600)
    with pytest.raises(RateLimited) as info:
        call(client)
    assert info.value.family == family
    assert info.value.reset_at is not None


def test_usage_cap_is_an_auth_error(client: TweepyClient, world: SandboxWorld) -> None:
    world.fail_next(429, usage_capped=True)
    with pytest.raises(AuthError) as info:
        client.me()
    assert info.value.code == "E_USAGE_CAP"
    assert "Monthly product cap" in info.value.message
    assert info.value.exit_code == 4


def test_402_is_a_payment_error(client: TweepyClient, world: SandboxWorld) -> None:
    world.fail_next(402)
    with pytest.raises(AuthError) as info:
        client.dm_events(5)
    assert info.value.code == "E_PAYMENT"
    assert "credits" in info.value.message


def test_401_asks_for_login(world: SandboxWorld) -> None:
    world.fail_next(401)
    client = client_for(world, Credentials(kind="sandbox", access_token="t"))
    with pytest.raises(AuthError) as info:
        client.me()
    assert "dmtool auth login" in (info.value.message + (info.value.hint or ""))
    assert info.value.exit_code == 4


def test_403_on_a_read_is_an_auth_error_with_the_detail(client: TweepyClient, world: SandboxWorld) -> None:
    world.fail_next(403, detail="This app is not permitted to access Direct Messages.")
    with pytest.raises(AuthError) as info:
        client.dm_events(5)
    assert "not permitted to access Direct Messages" in info.value.message
    assert "Direct Messages" in (info.value.hint or "")


def test_401_with_oauth2_refreshes_once_and_retries(world: SandboxWorld) -> None:
    saved: list[Credentials] = []
    pair = world.issue_tokens("cid")
    creds = Credentials(kind="oauth2", client_id="cid", access_token=pair["access_token"],
                        refresh_token=pair["refresh_token"])
    client = client_for(world, creds, save_credentials=saved.append)
    world.fail_next(401, path_contains="/2/users/me")
    assert client.me().id == ME
    [rotated] = world.live_refresh_tokens()  # X rotated the refresh token: the new one is saved
    assert rotated != pair["refresh_token"] and [c.refresh_token for c in saved] == [rotated]
    assert client.credentials.access_token in world.oauth()["access_tokens"]
    assert client.credentials.access_token != pair["access_token"]
    paths = [(r["method"], r["path"], r["status"]) for r in world.requests_log()]
    assert paths == [
        ("GET", "/2/users/me", 401),
        ("POST", "/2/oauth2/token", 200),
        ("GET", "/2/users/me", 200),
    ]
    # a second 401 is not refreshed again
    world.fail_next(401)
    with pytest.raises(AuthError):
        client.me()


def test_oauth2_token_near_expiry_is_refreshed_before_the_request(world: SandboxWorld) -> None:
    saved: list[Credentials] = []
    creds = Credentials(
        kind="oauth2",
        client_id="cid",
        access_token=SECRET,
        refresh_token=world.issue_tokens("cid")["refresh_token"],
        expires_at=int(datetime.now(UTC).timestamp()) + 60,
    )
    client = client_for(world, creds, save_credentials=saved.append)
    client.me()
    assert [r["path"] for r in world.requests_log()] == ["/2/oauth2/token", "/2/users/me"]
    assert saved and saved[0].expires_at is not None
    assert saved[0].expires_at > datetime.now(UTC).timestamp() + 7000


def test_a_rate_limited_token_refresh_pauses_the_family_that_needed_it(world: SandboxWorld) -> None:
    creds = Credentials(kind="oauth2", client_id="cid", access_token=SECRET, refresh_token="r",
                        expires_at=int(datetime.now(UTC).timestamp()) + 60)
    client = client_for(world, creds)
    world.fail_next(429, path_contains="/2/oauth2/token")
    with pytest.raises(RateLimited) as info:
        client.dm_events(5)
    assert info.value.family == "dm_read"
    assert [r["path"] for r in world.requests_log()] == ["/2/oauth2/token"]


def test_oauth1_requests_are_signed_and_parsed(world: SandboxWorld) -> None:
    creds = Credentials(
        kind="oauth1",
        api_key="ck",
        api_secret="cs-secret-value-123456",
        access_token="at",
        access_token_secret="ats-secret-value-123456",
    )
    client = client_for(world, creds)
    assert client.me().id == ME
    world.incoming_dm(ALICE, "hi")
    assert [e.text for e in client.dm_events(5).events] == ["hi"]


def test_no_secret_in_errors_tracebacks_or_logs(
    world: SandboxWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = client_for(world)
    for status in (401, 403, 429, 402, 500, 400):
        world.clear_faults()
        world.fail_next(status, count=3)
        with pytest.raises(Exception) as info:
            client.dm_events(5)
        text = "".join(traceback.format_exception(info.value))
        assert SECRET not in text and SECRET not in repr(info.value)
    world.clear_faults()
    world.timeout_after_send()
    with pytest.raises(SendOutcomeUnknown) as info2:
        client.send_dm(ALICE, "x")
    assert SECRET not in "".join(traceback.format_exception(info2.value))
    assert caplog.records, "the client logs requests at DEBUG"
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    assert any(r.name == "dmtool.x" and "/2/dm_events" in r.getMessage() for r in caplog.records)


# --- posts --------------------------------------------------------------------------------------


def test_mentions_and_own_replies_with_since_id(client: TweepyClient, world: SandboxWorld) -> None:
    with world.transaction():
        m1 = world.add_post(ALICE, "@me_account love this", at=at(60))
        world.add_post(BOB, "talking about @me_accountant, not you", at=at(55))
        reply = world.add_post(ME, "@alice thanks!", at=at(50), reply_to_post_id=m1)
        world.add_post(ME, "a plain post", at=at(45))

    page = client.mentions(ME)
    assert [p.id for p in page.posts] == [m1]
    assert page.newest_id == m1
    assert page.users[ALICE].username == "alice"
    assert page.posts[0].author_id == ALICE
    assert page.posts[0].created_at is not None

    own = client.own_posts(ME)
    replies = [p for p in own.posts if p.in_reply_to_user_id]
    assert [p.id for p in replies] == [reply]
    assert replies[0].replied_to_id == m1
    assert replies[0].conversation_id == m1

    assert client.mentions(ME, since_id=m1).posts == []
    m2 = world.add_post(BOB, "@ME_ACCOUNT question", at=at(1))
    assert [p.id for p in client.mentions(ME, since_id=m1).posts] == [m2]
    query = world.requests_log()[-1]["query"]
    assert query["since_id"] == m1
    assert query["tweet.fields"] == (
        "author_id,created_at,in_reply_to_user_id,conversation_id,referenced_tweets"
    )
    assert query["expansions"] == "author_id"


def test_post_pagination(client: TweepyClient, world: SandboxWorld) -> None:
    with world.transaction():
        ids = [world.add_post(ME, f"post {i}", at=at(300 - i)) for i in range(130)]
    first = client.own_posts(ME)
    assert len(first.posts) == 100 and first.next_token
    second = client.own_posts(ME, pagination_token=first.next_token)
    assert [p.id for p in second.posts] == list(reversed(ids[:30]))
    assert second.next_token is None


# --- factory -----------------------------------------------------------------------------------


def test_open_client(world: SandboxWorld) -> None:
    with pytest.raises(AuthError) as info:
        open_client(None, None)
    assert "no X credentials" in info.value.message
    assert "dmtool auth login" in (info.value.hint or "")  # said once, as the hint
    assert "auth login" not in info.value.message
    sandbox = open_client(None, world.path, retry_backoff=0)
    assert sandbox.me().username == "me_account"
    assert sandbox.requests_made == 1


def test_session_keeps_proxy_and_ca_settings(client: TweepyClient) -> None:
    session = client._client.session
    assert session.trust_env is True
    assert client._client.wait_on_rate_limit is False


def test_hang_after_send_records_before_sleeping(world: SandboxWorld) -> None:
    seen: list[int] = []

    def fake_sleep(seconds: float) -> None:
        seen.append(len(world.dms_with(ALICE)))

    world.hang_after_send(30)
    client = TweepyClient(
        Credentials(kind="sandbox", access_token="t"),
        adapter=SandboxAdapter(world.path, sleep=fake_sleep),
    )
    client.send_dm(ALICE, "slow")
    assert seen == [1]


def test_raw_state_file_is_json(world: SandboxWorld) -> None:
    world.incoming_dm(ALICE, "hi")
    state = json.loads(world.path.read_text())
    assert state["me"] == ME and len(state["dm_events"]) == 1


def test_a_cut_off_answer_to_a_send_is_unknown_not_unsent(world: SandboxWorld) -> None:
    """Found in review: a broken response after X received the POST must not be
    read as 'not sent', or a retry could send twice."""
    import requests

    class CutOff(SandboxAdapter):
        def send(self, request: Any, **kwargs: Any) -> Any:
            response = super().send(request, **kwargs)
            if request.method == "POST":
                raise requests.exceptions.ChunkedEncodingError("connection broken mid-body")
            return response

    client = TweepyClient(Credentials(kind="oauth2", access_token=SECRET),
                          adapter=CutOff(world.path), retry_backoff=0)
    with pytest.raises(SendOutcomeUnknown):
        client.send_dm(ALICE, "did this arrive?")
    assert [e["text"] for e in world.dms_with(ALICE)] == ["did this arrive?"]


# --- the request observer (x/observe.py) -------------------------------------------------------


def test_every_request_reaches_the_observers(client: TweepyClient, world: SandboxWorld,
                                             caplog: pytest.LogCaptureFixture) -> None:
    from dmtool.x.observe import RequestRecord

    seen: list[RequestRecord] = []
    client.observe(seen.append)
    world.incoming_dm(ALICE, "one", at=datetime.now(UTC) - timedelta(minutes=2))
    world.incoming_dm(ALICE, "two", at=datetime.now(UTC) - timedelta(minutes=1))
    client.dm_events(5)
    client.send_dm(ALICE, "hello")
    world.fail_next(503, count=3, method="GET")
    with pytest.raises(Unavailable):
        client.user_by_handle("bob")
    with caplog.at_level(logging.DEBUG, logger="dmtool.x"):
        client.me()
    got = [(r.method, r.path, r.family, r.page_size, r.results, r.status) for r in seen]
    assert got == [
        ("GET", "/2/dm_events", "dm_read", 5, 2, 200),
        ("POST", f"/2/dm_conversations/with/{ALICE}/messages", "dm_send", None, 1, 201),
        *[("GET", "/2/users/by/username/bob", "users", None, None, 503)] * 3,  # each retry
        ("GET", "/2/users/me", "users", None, 1, 200),
    ]
    assert all(r.seconds >= 0 for r in seen)
    line = next(m for m in caplog.messages if "/2/users/me" in m)
    assert line.startswith("X GET /2/users/me [users] -> 200, 1 result, ") and line.endswith(" ms")
    assert SECRET not in "\n".join(caplog.messages)


def test_a_request_that_gets_no_answer_is_observed_too(world: SandboxWorld) -> None:
    class Down(requests.adapters.BaseAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            raise requests.ConnectionError("down")

        def close(self) -> None:
            pass

    seen: list[Any] = []
    c = TweepyClient(Credentials(kind="oauth2", access_token=SECRET), adapter=Down(),
                     retry_backoff=0)
    c.observe(seen.append)
    with pytest.raises(Unavailable):
        c.dm_events(10)
    assert [(r.status, r.error, r.results, r.page_size) for r in seen] == [
        (None, "ConnectionError", None, 10)] * 3
