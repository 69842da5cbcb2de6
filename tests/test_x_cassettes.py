"""Replay X's real recorded answers (tweepy's cassettes) through TweepyClient.

The sandbox is our model of X; these cassettes are X itself, so they check
that the client parses what X really sends, independently of the sandbox.
They are vendored in tests/data/tweepy_cassettes (see tests/data/README.md).
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import requests.adapters
from requests.structures import CaseInsensitiveDict

from dmtool.credentials import Credentials
from dmtool.x.client import TweepyClient

CASSETTES = Path(__file__).resolve().parent / "data" / "tweepy_cassettes"


@pytest.fixture(scope="module")
def cassettes() -> dict[str, list[dict[str, Any]]]:
    data: dict[str, list[dict[str, Any]]] = json.loads(
        (CASSETTES / "decoded_tweepy_cassettes.json").read_text(encoding="utf-8")
    )
    return data


class ReplayAdapter(requests.adapters.BaseAdapter):
    """Answers each request with the recorded interaction of the same method and path.

    Queries are not compared: dmtool asks for more fields than tweepy's tests did,
    and the recorded URIs carry no query.
    """

    def __init__(self, interactions: list[dict[str, Any]]) -> None:
        super().__init__()
        self.interactions = interactions
        self.seen: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        self.seen.append(request)
        path = urlsplit(request.url or "").path
        for item in self.interactions:
            if item["method"] == request.method and urlsplit(item["uri"]).path == path:
                return self._response(request, item)
        raise AssertionError(f"no recorded answer for {request.method} {path}")

    @staticmethod
    def _response(request: requests.PreparedRequest, item: dict[str, Any]) -> requests.Response:
        headers = CaseInsensitiveDict({k: v[0] for k, v in item["response_headers"].items() if v})
        headers.pop("content-encoding", None)  # bodies are stored decoded
        content = json.dumps(item["response_json"]).encode()
        headers["content-length"] = str(len(content))
        response = requests.Response()
        response.status_code = item["status"]["code"]
        response.reason = item["status"]["message"]
        response.headers = headers
        response._content = content
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


def replay(interactions: list[dict[str, Any]]) -> tuple[TweepyClient, ReplayAdapter]:
    adapter = ReplayAdapter(interactions)
    creds = Credentials(kind="oauth2", access_token="recorded")
    return TweepyClient(creds, adapter=adapter, retry_backoff=0), adapter


def test_me(cassettes: dict[str, list[dict[str, Any]]]) -> None:
    client, _ = replay(cassettes["related/test_client_get_me.yaml"])
    me = client.me()
    assert (me.id, me.username, me.name) == ("1072250532645998596", "TweepyDev", "Tweepy Testing")


def test_user_lookup(cassettes: dict[str, list[dict[str, Any]]]) -> None:
    client, adapter = replay(cassettes["related/test_client_get_user.yaml"])
    user = client.user_by_handle("@Twitter")
    assert (user.id, user.username, user.name) == ("783214", "Twitter", "Twitter")
    assert urlsplit(adapter.seen[0].url or "").path == "/2/users/by/username/Twitter"


def test_send_201(cassettes: dict[str, list[dict[str, Any]]]) -> None:
    client, adapter = replay(cassettes["test_manage_and_lookup_direct_messages.yaml"])
    sent = client.send_dm("750362064426721281", "Testing 1")
    assert sent.dm_event_id == "1585800613253812228"
    assert sent.dm_conversation_id == "750362064426721281-1072250532645998596"
    [request] = adapter.seen
    assert request.method == "POST"
    assert json.loads(request.body or b"{}") == {"text": "Testing 1"}
    assert client.requests_made == 1


def test_dm_events_empty_page(cassettes: dict[str, list[dict[str, Any]]]) -> None:
    client, _ = replay(cassettes["test_manage_and_lookup_direct_messages.yaml"])
    page = client.dm_events(100)
    assert page.events == [] and page.users == {} and page.next_token is None


def test_conversation_page(cassettes: dict[str, list[dict[str, Any]]]) -> None:
    client, _ = replay(cassettes["test_manage_and_lookup_direct_messages.yaml"])
    page = client.conversation_events("750362064426721281", 100)
    assert [(e.id, e.text) for e in page.events] == [
        ("1585800613752881156", "Testing 2"),
        ("1585800613253812228", "Testing 1"),
    ]
    # recorded without dm_event.fields: only the default fields are there
    assert all(e.event_type == "MessageCreate" for e in page.events)
    assert all(e.created_at is None and e.sender_id is None for e in page.events)
    assert page.next_token == "18LAA5G1SL0NR5OG0G00ZZZZ"


def test_async_recording_parses_the_same(cassettes: dict[str, list[dict[str, Any]]]) -> None:
    client, _ = replay(cassettes["test_asyncclient_manage_and_lookup_direct_messages.yaml"])
    assert client.send_dm("750362064426721281", "Testing 1").dm_event_id == "1585823814058971140"
    page = client.conversation_events("750362064426721281", 50)
    assert [e.text for e in page.events] == ["Testing 2", "Testing 1"]


def test_mentions(cassettes: dict[str, list[dict[str, Any]]]) -> None:
    client, _ = replay(cassettes["related/test_client_get_users_mentions.yaml"])
    page = client.mentions("783214")
    assert len(page.posts) == 10
    assert page.newest_id == "1578516295611748353"
    assert page.posts[0].id == "1578516295611748353"
    assert page.posts[0].text.startswith("@Twitter @TwitterSupport")
    assert page.next_token == "7140dibdnow9c7btw423i3sy3u5zupmkcpofxcsmxj48j"


def test_own_posts(cassettes: dict[str, list[dict[str, Any]]]) -> None:
    client, _ = replay(cassettes["related/test_client_get_users_tweets.yaml"])
    page = client.own_posts("783214")
    assert [p.id for p in page.posts] == ["1577730467436138524", "1565318587736285184"]
    assert page.newest_id == "1577730467436138524"
    assert page.next_token


def test_yaml_cassette_matches_the_decoded_copy(
    cassettes: dict[str, list[dict[str, Any]]],
) -> None:
    """The decoded JSON is a faithful copy of the raw (gzip) recording."""
    raw = (CASSETTES / "test_manage_and_lookup_direct_messages.yaml").read_text(encoding="utf-8")
    blocks = re.findall(r"string: !!binary \|\n((?:\s{8}\S+\n)+)", raw)
    bodies = [json.loads(gzip.decompress(base64.b64decode("".join(b.split())))) for b in blocks]
    decoded = [i["response_json"] for i in cassettes["test_manage_and_lookup_direct_messages.yaml"]]
    assert bodies == decoded


def test_tweepy_needs_milliseconds_in_timestamps() -> None:
    # The spec's reason for `.000Z` in the sandbox: tweepy's parser needs them.
    from tweepy.utils import parse_datetime

    assert parse_datetime("2022-10-19T20:58:00.000Z") == datetime.fromisoformat("2022-10-19T20:58:00+00:00")
    with pytest.raises(ValueError):
        parse_datetime("2022-10-19T20:58:00Z")
