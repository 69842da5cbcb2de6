"""`dmtool search`: messages, notes and contacts that hold every term, newest first."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from dmtool.errors import InputError
from dmtool.store import search as sstore

if TYPE_CHECKING:
    from dmtool.store.sql import Conn

_TERM = r'"([^"]*)"|(\S+)'  # compiled (and cached by `re`) when first used


def terms_of(query: str) -> tuple[str, ...]:
    """The terms of a query: words, or "a phrase" in double quotes. Every term
    must occur; case is ignored for A-Z."""
    terms = tuple(t for m in re.finditer(_TERM, query) if (t := (m.group(1) or m.group(2) or "")))
    if not terms:
        raise InputError("nothing to search for", hint='give a word, or "a phrase" in quotes')
    return terms


class SearchResult:
    """A plain class: a dataclass would be generated and compiled at every start."""

    def __init__(self, query: str, method: str, hits: list[dict[str, Any]] | None = None,
                 truncated: bool = False) -> None:
        self.query = query
        self.method = method  # index: the trigram index could answer; scan: every row was read
        self.hits = [] if hits is None else hits
        self.truncated = truncated  # more matches than the limit

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "method": self.method, "hits": self.hits,
                "truncated": self.truncated}


def search(conn: Conn, query: str, *, handle: str | None = None,
           since: str | None = None, limit: int = 50, use_index: bool | None = None,
           use_window: bool = True) -> SearchResult:
    """Hits of every kind, newest first, at most `limit`. `use_index` None:
    the trigram index when the store has one."""
    terms = terms_of(query)
    contact_id = None
    if handle is not None:
        from dmtool.store import contacts as cstore

        contact_id = cstore.get(conn, handle).id
    if use_index is None:
        use_index = sstore.index_available(conn)
    # One more than asked for says whether there are more.
    q = sstore.Query(terms, contact_id, since, limit + 1, use_index, use_window)
    found = [*sstore.messages(conn, q), *sstore.notes(conn, q), *sstore.contacts(conn, q)]
    found.sort(key=lambda h: (h.at, h.kind, h.id), reverse=True)
    labels = sstore.contact_labels(conn, {h.contact_id for h in found[:limit]})
    result = SearchResult(query, "index" if sstore.uses_index(q) else "scan",
                          truncated=len(found) > limit)
    for h in found[:limit]:
        handle_, user_id, name = labels.get(h.contact_id, ("", None, None))
        hit: dict[str, Any] = {"kind": h.kind, "at": h.at,
                               "contact": {"handle": handle_, "user_id": user_id, "name": name},
                               "text": h.text}
        if h.kind == "message":
            hit["id"] = h.event_id or f"local-{h.id}"  # as `thread --json` names messages
            hit["direction"] = h.direction
        elif h.kind == "note":
            hit["id"] = h.id
        result.hits.append(hit)
    return result
