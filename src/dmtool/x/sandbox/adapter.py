"""The requests transport adapter that puts the fake X under tweepy's own
session: it turns a prepared request into a Server call under the world's lock,
logs it, and builds the requests.Response."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
import requests.adapters
from requests.structures import CaseInsensitiveDict

from dmtool.x import sandbox
from dmtool.x.sandbox.replies import REASONS, Reply
from dmtool.x.sandbox.server import Server
from dmtool.x.sandbox.state import fmt
from dmtool.x.sandbox.world import SandboxWorld


class SandboxAdapter(requests.adapters.BaseAdapter):
    """A requests transport that answers X's endpoints from a SandboxWorld file."""

    def __init__(self, state_path: Path | str, *, sleep: Any = time.sleep) -> None:
        super().__init__()
        self.world = SandboxWorld(state_path)
        self._sleep = sleep

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        url = urlsplit(request.url or "")
        method = (request.method or "GET").upper()
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        raw_body = request.body
        if isinstance(raw_body, str):
            body = raw_body.encode("utf-8")
        else:
            body = raw_body if isinstance(raw_body, bytes) else b""
        auth_header = request.headers.get("Authorization")
        authorization = auth_header.decode() if isinstance(auth_header, bytes) else auth_header

        with self.world.transaction() as state:
            server = Server(state)
            reply = server.handle(method, url.path, query, body, authorization)
            state["requests"].append(
                {
                    "method": method,
                    "path": url.path,
                    # the token endpoint's body is never logged; queries hold no secrets
                    "query": query,
                    "status": reply.status,
                    "dm_events": reply.dm_events,
                    "posts": reply.posts,
                    "at": fmt(server.now),
                }
            )
            del state["requests"][:-sandbox.REQUEST_LOG_KEEP]
            totals = state["totals"]
            totals["requests"] += 1
            totals["dm_events"] += reply.dm_events
            totals["posts"] += reply.posts
        # The lock is released before any timeout or hang, so the DM is on disk
        # even if the process is killed while "waiting for X".
        if reply.after is not None:
            kind, seconds = reply.after
            if kind == "timeout":
                raise requests.exceptions.ReadTimeout(
                    "sandbox: the DM was recorded but no answer came back", request=request
                )
            self._sleep(seconds)
        return self._response(request, reply)

    @staticmethod
    def _response(request: requests.PreparedRequest, reply: Reply) -> requests.Response:
        content = b"" if reply.body is None else json.dumps(reply.body).encode("utf-8")
        json_type = "application/json; charset=utf-8"
        content_type = "application/problem+json" if reply.problem else json_type
        headers = CaseInsensitiveDict(
            {
                "content-type": content_type,
                "content-length": str(len(content)),
                "api-version": "2.159",
                "cache-control": "no-cache, no-store, max-age=0",
            }
        )
        headers.update(reply.headers)
        response = requests.Response()
        response.status_code = reply.status
        response.reason = REASONS.get(reply.status, "Error")
        response.headers = headers
        response._content = content
        response._content_consumed = True  # type: ignore[attr-defined]
        response.raw = io.BytesIO(content)
        response.encoding = "utf-8"
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


def mount_sandbox(session: requests.Session, state_path: Path | str) -> SandboxAdapter:
    """Mount a SandboxAdapter for both of X's API hosts on `session`."""
    adapter = SandboxAdapter(state_path)
    for prefix in ("https://api.twitter.com/", "https://api.x.com/"):
        session.mount(prefix, adapter)
    return adapter
