"""One record per HTTP request to X, for whoever wants to watch.

The X client's session makes a `RequestRecord` for every request it sends
(each retry and each page is its own) and hands it to its observers: `-v`
logs it (`log_request`), and a cost ledger can count billable reads from the
same records. No query string, header or body is kept: they carry tokens
(pagination tokens are noise, OAuth headers are secrets); only the page size
is read from the query. This module knows nothing of the store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

log = logging.getLogger("dmtool.x")


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str  # without the query
    family: str | None  # errors.RATE_FAMILIES key; None outside them (the token endpoint)
    page_size: int | None  # the max_results asked for, if any
    results: int | None  # items in the answer's `data`; None without a successful JSON answer
    status: int | None  # None when no answer came back (a connection error)
    error: str | None  # the exception's class when no answer came back
    seconds: float

    def describe(self) -> str:
        """One line: `GET /2/dm_events [dm_read] max_results=5 -> 200, 3 results, 41 ms`."""
        parts = [self.method, self.path]
        if self.family:
            parts.append(f"[{self.family}]")
        if self.page_size is not None:
            parts.append(f"max_results={self.page_size}")
        outcome = str(self.status) if self.status is not None else (self.error or "no answer")
        if self.results is not None:
            outcome += f", {self.results} result{'' if self.results == 1 else 's'}"
        return f"{' '.join(parts)} -> {outcome}, {self.seconds * 1000:.0f} ms"


RequestObserver = Callable[[RequestRecord], None]


def log_request(record: RequestRecord) -> None:
    """The `-v` observer: one debug line per request."""
    log.debug("X %s", record.describe())


def page_size(params: Any, query: str) -> int | None:
    """max_results, from the request's parameters (tweepy passes them apart)
    or its query string."""
    value = params.get("max_results") if isinstance(params, dict) else None
    if value is None:
        found = parse_qs(query).get("max_results")
        value = found[0] if found else None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def result_count(response: Any) -> int | None:
    """How many items an answer holds: the length of `data` when it is a list,
    1 for a single object, 0 when there is none; None when it is not JSON."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    data = body.get("data")
    if isinstance(data, list):
        return len(data)
    return 0 if data is None else 1


def wanted(observers: list[RequestObserver]) -> bool:
    """Whether anyone looks: building a record reads the body once more."""
    return bool(observers) or log.isEnabledFor(logging.DEBUG)
