"""The sandbox answers like X: every served endpoint, checked against X's OpenAPI document.

Successes, empty pages and errors are validated against the response schemas
of X's OpenAPI document (its DM, users and timeline part, vendored unchanged in
tests/data/x_api_openapi.json; $refs resolved within the document); RFC 7807
problems against the schema their `type` maps to. Shapes the schema cannot
express (no unknown members, `.000Z` timestamps, headers, status codes) are
asserted directly. Also here: sandbox behaviour other tests rely on (locking
across processes, field selection, parameter checks).
"""

from __future__ import annotations

import json
import multiprocessing
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import requests

from dmtool.x.sandbox import DEMO_CAST, DEMO_ME, SandboxWorld, mount_sandbox, seed_demo_world

ME = "1000000000000000001"
ALICE = "1000000000000000002"
BOB = "1000000000000000003"
CLOSED = "1000000000000000004"
DM_FIELDS = (
    "id,text,event_type,created_at,dm_conversation_id,sender_id,participant_ids,referenced_tweets,attachments"
)
TWEET_FIELDS = "author_id,created_at,in_reply_to_user_id,conversation_id,referenced_tweets"
MS_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


OPENAPI = Path(__file__).resolve().parent / "data" / "x_api_openapi.json"


@cache
def openapi() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(OPENAPI.read_text(encoding="utf-8"))
    return doc


def _validator_class() -> Any:
    try:
        from openapi_schema_validator import OAS30Validator
    except ImportError:  # plain JSON Schema understands everything these schemas use
        from jsonschema import Draft4Validator

        return Draft4Validator
    return OAS30Validator


def validate(instance: Any, schema: dict[str, Any]) -> None:
    doc = openapi()
    root = {"allOf": [schema], "components": doc["components"]}
    _validator_class()(root).validate(instance)


def schema_ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def component(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = openapi()["components"]["schemas"][name]
    return schema


def validate_problem(problem: dict[str, Any]) -> None:
    """Validate against Problem and against the schema its `type` maps to (the discriminator)."""
    validate(problem, schema_ref("Problem"))
    mapping = component("Problem")["discriminator"]["mapping"]
    if problem["type"] in mapping:
        validate(problem, {"$ref": mapping[problem["type"]]})


def response_schema(template: str, method: str, status: int, content_type: str) -> dict[str, Any]:
    responses = openapi()["paths"][template][method.lower()]["responses"]
    entry = responses.get(str(status), responses["default"])
    media = content_type.split(";")[0].strip()
    schema: dict[str, Any] = entry["content"][media]["schema"]
    return schema


def assert_known_keys(instance: dict[str, Any], schema_name: str) -> None:
    allowed = set(component(schema_name)["properties"])
    assert set(instance) <= allowed, f"{set(instance) - allowed} not in {schema_name}"


@pytest.fixture
def world(tmp_path: Path) -> SandboxWorld:
    w = SandboxWorld.create(tmp_path / "x.json")
    now = datetime.now(UTC)
    with w.transaction():
        w.set_me(ME, "me_account", "Me")
        w.add_user("alice", "Alice", user_id=ALICE)
        w.add_user("bob", "Bob", user_id=BOB)
        w.add_user("closed_carl", "Carl", user_id=CLOSED, dms_closed=True)
        w.incoming_dm(ALICE, "hello", at=now - timedelta(hours=3))
        w.outgoing_dm(ALICE, "hi Alice", at=now - timedelta(hours=2))
        w.incoming_dm(BOB, "yo", at=now - timedelta(hours=1))
        mention = w.add_post(ALICE, "@me_account nice post", at=now - timedelta(minutes=50))
        w.add_post(ME, "@alice thanks", at=now - timedelta(minutes=40), reply_to_post_id=mention)
    return w


Call = Callable[..., requests.Response]


@pytest.fixture
def call(world: SandboxWorld) -> Call:
    session = requests.Session()
    mount_sandbox(session, world.path)

    def do(method: str, path: str, *, auth: bool = True, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": "Bearer sandbox"} if auth else {}
        return session.request(method, "https://api.x.com" + path, headers=headers, **kwargs)

    return do


def check(response: requests.Response, template: str, status: int, method: str = "GET") -> dict[str, Any]:
    """Status, content type, rate headers and schema of one answer; returns the body."""
    assert response.status_code == status, response.text
    content_type = response.headers["content-type"]
    body: dict[str, Any] = response.json()
    if status >= 400:
        assert content_type == "application/problem+json"
    else:
        assert content_type == "application/json; charset=utf-8"
    if status not in (401, 404, 402):
        for header in ("x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"):
            assert response.headers[header].isdigit()
    validate(body, response_schema(template, method, status, content_type))
    if status >= 400 and "type" in body:
        validate_problem(body)
    for problem in body.get("errors", []) if status < 400 else []:
        validate_problem(problem)
    return body


# --- users --------------------------------------------------------------------------------


def test_users_me(call: Call) -> None:
    body = check(call("GET", "/2/users/me", params={"user.fields": "username,name"}), "/2/users/me", 200)
    assert body == {"data": {"id": ME, "name": "Me", "username": "me_account"}}


def test_user_by_username_found_and_missing(call: Call) -> None:
    template = "/2/users/by/username/{username}"
    body = check(call("GET", "/2/users/by/username/ALICE"), template, 200)
    assert body["data"]["id"] == ALICE
    missing = check(call("GET", "/2/users/by/username/nobody_here"), template, 200)
    assert set(missing) == {"errors"}  # X: 200 with only `errors`
    [error] = missing["errors"]
    assert error["type"] == "https://api.twitter.com/2/problems/resource-not-found"
    assert error["parameter"] == "username" and error["value"] == "nobody_here"
    bad = check(call("GET", "/2/users/by/username/not-valid!"), template, 400)
    assert bad["type"].endswith("invalid-request")


def test_users_by_ids(call: Call) -> None:
    body = check(call("GET", "/2/users", params={"ids": f"{ALICE},{BOB},12345"}), "/2/users", 200)
    assert [u["username"] for u in body["data"]] == ["alice", "bob"]
    assert [e["resource_id"] for e in body["errors"]] == ["12345"]
    only_missing = check(call("GET", "/2/users", params={"ids": "12345"}), "/2/users", 200)
    assert "data" not in only_missing
    check(call("GET", "/2/users"), "/2/users", 400)


def test_receives_your_dm_user_field(call: Call) -> None:
    params = {"ids": f"{ALICE},{CLOSED}", "user.fields": "receives_your_dm"}
    body = check(call("GET", "/2/users", params=params), "/2/users", 200)
    assert [u["receives_your_dm"] for u in body["data"]] == [True, False]


# --- DM events ------------------------------------------------------------------------------


def dm_params(**extra: Any) -> dict[str, Any]:
    return {
        "dm_event.fields": DM_FIELDS,
        "expansions": "sender_id,participant_ids",
        "user.fields": "username,name",
        **extra,
    }


def test_dm_events_page_with_fields(call: Call) -> None:
    body = check(call("GET", "/2/dm_events", params=dm_params(max_results=2)), "/2/dm_events", 200)
    assert [e["text"] for e in body["data"]] == ["yo", "hi Alice"]  # newest first
    for event in body["data"]:
        assert_known_keys(event, "DmEvent")
        assert set(event) == {"id", "text", "event_type", "created_at", "dm_conversation_id", "sender_id"}
        assert MS_TIME.match(event["created_at"]) and event["created_at"].endswith(".000Z")
        assert event["dm_conversation_id"] in (f"{ME}-{ALICE}", f"{ME}-{BOB}")
    assert {u["id"] for u in body["includes"]["users"]} == {BOB, ME}
    assert body["meta"]["result_count"] == 2 and len(body["meta"]["next_token"]) >= 16
    allowed_meta = set(component("Get2DmEventsResponse")["properties"]["meta"]["properties"])
    assert set(body["meta"]) <= allowed_meta

    token = body["meta"]["next_token"]
    rest = check(
        call("GET", "/2/dm_events", params=dm_params(max_results=2, pagination_token=token)),
        "/2/dm_events",
        200,
    )
    assert [e["text"] for e in rest["data"]] == ["hello"]
    assert "next_token" not in rest["meta"]


def test_dm_events_without_fields_are_minimal_like_x(call: Call) -> None:
    body = check(call("GET", "/2/dm_events"), "/2/dm_events", 200)
    assert all(set(e) == {"id", "event_type", "text"} for e in body["data"])
    assert "includes" not in body
    some = check(call("GET", "/2/dm_events", params={"dm_event.fields": "sender_id"}), "/2/dm_events", 200)
    assert all(set(e) == {"id", "event_type", "text", "sender_id"} for e in some["data"])


def test_empty_pages_have_only_meta(call: Call, world: SandboxWorld) -> None:
    template = "/2/dm_conversations/with/{participant_id}/dm_events"
    empty = check(
        call("GET", f"/2/dm_conversations/with/{CLOSED}/dm_events", params=dm_params()), template, 200
    )
    assert empty == {"meta": {"result_count": 0}}
    SandboxWorld.create(world.path)
    assert check(call("GET", "/2/dm_events"), "/2/dm_events", 200) == {"meta": {"result_count": 0}}


def test_conversation_events(call: Call) -> None:
    template = "/2/dm_conversations/with/{participant_id}/dm_events"
    body = check(
        call("GET", f"/2/dm_conversations/with/{ALICE}/dm_events", params=dm_params()), template, 200
    )
    assert [e["text"] for e in body["data"]] == ["hi Alice", "hello"]
    assert {e["dm_conversation_id"] for e in body["data"]} == {f"{ME}-{ALICE}"}


@pytest.mark.parametrize("value", ["0", "101", "many"])
def test_dm_max_results_out_of_range_is_400(call: Call, value: str) -> None:
    body = check(call("GET", "/2/dm_events", params={"max_results": value}), "/2/dm_events", 400)
    assert body["errors"][0]["parameters"] == {"max_results": [value]}
    assert body["title"] == "Invalid Request"


@pytest.mark.parametrize(
    "params",
    [
        {"dm_event.fields": "id,colour"},
        {"expansions": "author_id"},
        {"pagination_token": "short"},
        {"since_id": "1"},  # /2/dm_events has no since_id
    ],
)
def test_dm_bad_parameters_are_400(call: Call, params: dict[str, str]) -> None:
    check(call("GET", "/2/dm_events", params=params), "/2/dm_events", 400)


def test_dm_max_results_bounds_are_accepted(call: Call) -> None:
    for value in ("1", "100"):
        check(call("GET", "/2/dm_events", params={"max_results": value}), "/2/dm_events", 200)


# --- sending ---------------------------------------------------------------------------------


def test_send_201_403_400(call: Call, world: SandboxWorld) -> None:
    template = "/2/dm_conversations/with/{participant_id}/messages"
    sent = check(
        call("POST", f"/2/dm_conversations/with/{BOB}/messages", json={"text": "hey"}), template, 201, "POST"
    )
    assert set(sent["data"]) == {"dm_conversation_id", "dm_event_id"}
    assert sent["data"]["dm_conversation_id"] == f"{ME}-{BOB}"
    assert world.dms_with(BOB)[-1]["id"] == sent["data"]["dm_event_id"]

    closed = check(
        call("POST", f"/2/dm_conversations/with/{CLOSED}/messages", json={"text": "hey"}),
        template,
        403,
        "POST",
    )
    assert closed == {
        "title": "Forbidden",
        "type": "about:blank",
        "status": 403,
        "detail": "You are not permitted to perform this action.",
    }
    check(call("POST", f"/2/dm_conversations/with/{BOB}/messages", json={"text": ""}), template, 400, "POST")


def test_conversation_id_is_numerically_ordered(world: SandboxWorld) -> None:
    with world.transaction():
        small = world.add_user("small_id", user_id="99")
        world.incoming_dm(small, "hi")
    assert world.dms_with(small)[0]["dm_conversation_id"] == f"99-{ME}"


# --- posts ------------------------------------------------------------------------------------


def post_params(**extra: Any) -> dict[str, Any]:
    return {
        "tweet.fields": TWEET_FIELDS,
        "expansions": "author_id",
        "user.fields": "username,name",
        "max_results": 100,
        **extra,
    }


def test_mentions_and_tweets(call: Call) -> None:
    mentions = check(
        call("GET", f"/2/users/{ME}/mentions", params=post_params()), "/2/users/{id}/mentions", 200
    )
    [mention] = mentions["data"]
    assert_known_keys(mention, "Tweet")
    assert mention["author_id"] == ALICE and mention["edit_history_tweet_ids"] == [mention["id"]]
    assert MS_TIME.match(mention["created_at"])
    assert mentions["includes"]["users"][0]["username"] == "alice"
    assert mentions["meta"]["newest_id"] == mentions["meta"]["oldest_id"] == mention["id"]

    tweets = check(
        call("GET", f"/2/users/{ME}/tweets", params=post_params(exclude="retweets")),
        "/2/users/{id}/tweets",
        200,
    )
    [reply] = tweets["data"]
    assert reply["in_reply_to_user_id"] == ALICE
    assert reply["referenced_tweets"] == [{"type": "replied_to", "id": mention["id"]}]
    assert reply["conversation_id"] == mention["id"]

    since = check(
        call("GET", f"/2/users/{ME}/mentions", params=post_params(since_id=mention["id"])),
        "/2/users/{id}/mentions",
        200,
    )
    assert since == {"meta": {"result_count": 0}}
    bare = check(call("GET", f"/2/users/{ME}/tweets"), "/2/users/{id}/tweets", 200)
    assert set(bare["data"][0]) == {"id", "text", "edit_history_tweet_ids"}
    check(call("GET", f"/2/users/{ME}/tweets", params={"max_results": 4}), "/2/users/{id}/tweets", 400)


def test_timeline_of_unknown_user(call: Call) -> None:
    body = check(call("GET", "/2/users/777/mentions"), "/2/users/{id}/mentions", 200)
    assert set(body) == {"errors"}


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kwargs", "title"),
    [
        (401, {}, "Unauthorized"),
        (403, {}, "Forbidden"),
        (429, {}, "Too Many Requests"),
        (429, {"usage_capped": True}, "UsageCapExceeded"),
        (402, {}, "CreditsDepleted"),
        (500, {}, "Internal Server Error"),
        (503, {}, "Service Unavailable"),
    ],
)
def test_injected_faults_are_x_problems(
    call: Call, world: SandboxWorld, status: int, kwargs: dict[str, Any], title: str
) -> None:
    world.fail_next(status, reset_in=300, **kwargs)
    response = call("GET", "/2/dm_events", params=dm_params())
    body = check(response, "/2/dm_events", status)
    assert body["title"] == title
    if status == 429 and not kwargs:
        reset = int(response.headers["x-rate-limit-reset"])
        assert abs(reset - (datetime.now(UTC).timestamp() + 300)) < 10
        assert response.headers["x-rate-limit-remaining"] == "0"
    if kwargs.get("usage_capped"):
        assert body["type"].endswith("usage-capped")
    # the fault is used up: the next request succeeds
    check(call("GET", "/2/dm_events", params=dm_params()), "/2/dm_events", 200)


def test_no_authorization_is_401(call: Call) -> None:
    body = check(call("GET", "/2/users/me", auth=False), "/2/users/me", 401)
    assert body == {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}


def test_unknown_endpoint_is_404_problem(call: Call) -> None:
    response = call("GET", "/2/users/123/followers")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    validate_problem(response.json())


def test_fault_filters(call: Call, world: SandboxWorld) -> None:
    world.fail_next(500, method="POST")
    world.fail_next(503, path_contains="/mentions")
    assert call("GET", "/2/users/me").status_code == 200
    assert call("GET", f"/2/users/{ME}/mentions").status_code == 503
    assert call("POST", f"/2/dm_conversations/with/{BOB}/messages", json={"text": "x"}).status_code == 500


def test_rate_limits_can_be_enforced(call: Call, world: SandboxWorld) -> None:
    world.enforce_rate_limits()
    statuses = [call("GET", "/2/dm_events").status_code for _ in range(16)]
    assert statuses == [200] * 15 + [429]


# --- the request log (what benchmarks count) ------------------------------------------------------


def test_request_log_counts_billable_reads(call: Call, world: SandboxWorld) -> None:
    world.reset_requests_log()
    call("GET", "/2/dm_events", params={"max_results": 2})
    call("GET", f"/2/dm_conversations/with/{ALICE}/dm_events")
    call("GET", f"/2/users/{ME}/mentions")
    assert world.requests_count() == 3
    assert world.dm_events_read() == 4
    assert world.posts_read() == 1
    entry = world.requests_log()[0]
    assert entry["method"] == "GET" and entry["path"] == "/2/dm_events"
    assert entry["query"] == {"max_results": "2"} and entry["status"] == 200
    world.reset_requests_log()
    assert world.requests_count() == 0 and world.dm_events_read() == 0


def test_request_log_is_bounded_but_totals_are_not(
    call: Call, world: SandboxWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("dmtool.x.sandbox.REQUEST_LOG_KEEP", 3)
    world.reset_requests_log()
    for _ in range(5):
        call("GET", "/2/dm_events")
    assert len(world.requests_log()) == 3
    assert world.requests_count() == 5 and world.dm_events_read() == 15


# --- state file, locking and the demo ----------------------------------------------------------------


def _add_many(path: str, worker: int) -> None:
    world = SandboxWorld(path)
    for i in range(20):
        world.incoming_dm(ALICE, f"w{worker} m{i}")


def test_concurrent_processes_never_lose_updates(world: SandboxWorld) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_add_many, args=(str(world.path), n)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    texts = [e["text"] for e in world.dms_with(ALICE)]
    assert len([t for t in texts if t.startswith("w")]) == 80
    ids = [int(e["id"]) for e in world.snapshot()["dm_events"]]
    assert len(set(ids)) == len(ids)


def test_ids_increase_and_fixed_clock(tmp_path: Path) -> None:
    world = SandboxWorld.create(tmp_path / "x.json", clock="2025-01-02T03:04:05Z")
    world.set_me(ME, "me_account")
    world.add_user("alice", user_id=ALICE)
    first = world.incoming_dm(ALICE, "a")
    second = world.incoming_dm(ALICE, "b", at="2024-01-01T00:00:00Z")  # backdated: id still grows
    assert int(second) > int(first)
    assert world.dms_with(ALICE)[0]["created_at"] == "2025-01-02T03:04:05.000Z"
    world.advance_clock(60)
    assert world.now() == datetime(2025, 1, 2, 3, 5, 5, tzinfo=UTC)


def test_dmtool_now_pins_the_sandbox_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DMTOOL_NOW", "2025-06-01T12:00:00Z")
    world = SandboxWorld.create(tmp_path / "x.json")
    assert world.now() == datetime(2025, 6, 1, 12, tzinfo=UTC)
    world.set_clock("2025-07-01T00:00:00Z")  # an explicit world clock wins
    assert world.now() == datetime(2025, 7, 1, tzinfo=UTC)


def test_seed_demo_world(tmp_path: Path) -> None:
    world = seed_demo_world(tmp_path / "demo.json")
    state = world.snapshot()
    assert state["me"] == DEMO_ME["user_id"]
    assert {u["username"] for u in state["users"].values()} == {
        DEMO_ME["username"],
        *(p["username"] for p in DEMO_CAST.values()),
    }
    customer = DEMO_CAST["customer"]["user_id"]
    assert any(e["sender_id"] == customer for e in world.dms_with(customer))
    assert [e["text"] for e in world.dms_with(DEMO_CAST["stop"]["user_id"])][-1] == "STOP"
    assert world.user(DEMO_CAST["closed"]["user_id"])["dms_closed"]  # type: ignore[index]
    follower = DEMO_CAST["follower"]["user_id"]
    assert world.dms_with(follower) == []
    assert not [p for p in world.posts() if p["author_id"] == follower]
    exchange = DEMO_CAST["exchange"]["user_id"]
    mention = next(p for p in world.posts() if p["author_id"] == exchange)
    reply = next(p for p in world.posts() if p.get("in_reply_to_user_id") == exchange)
    assert reply["author_id"] == DEMO_ME["user_id"]
    assert reply["referenced_tweets"] == [{"type": "replied_to", "id": mention["id"]}]
    # chronological: ids grow with created_at
    events = sorted(state["dm_events"], key=lambda e: int(e["id"]))
    assert [e["created_at"] for e in events] == sorted(e["created_at"] for e in events)
