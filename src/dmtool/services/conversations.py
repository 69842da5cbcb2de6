"""Inbox, thread and digest: read models over the local record (no X calls)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from dmtool.errors import Busy
from dmtool.store import conversations as cvstore
from dmtool.store.sql import Conn
from dmtool.timeutil import ago, fmt, parse

if TYPE_CHECKING:
    from dmtool.store import Store

DIGEST_LOCK_WAIT_S = 30.0


def inbox(conn: Conn, *, include_done: bool, limit: int) -> list[dict[str, Any]]:
    """Conversations by last activity, open ones first, with what needs a reply."""
    rows = cvstore.inbox_rows(conn, include_done=include_done, limit=limit)
    return [{"handle": r["handle"], "name": r["name"], "last_at": r["last_at"],
             "last_direction": r["last_direction"], "last_text": r["last_text"],
             "unread": r["unread"],
             # Someone who opted out is never waiting for a DM from you.
             "needs_reply": r["state"] == "open" and r["last_human_direction"] == "in"
             and r["opted_out_at"] is None,
             "status": r["state"]} for r in rows if r["last_at"] is not None]


# A digest is read in a mail: the longest waits first, then a count. JSON
# (for scripts) lists every waiting conversation.
DIGEST_WAITING_SHOWN = 25


@dataclass
class Digest:
    since: str
    until: str
    inbound: list[dict[str, Any]] = field(default_factory=list)   # by contact
    waiting: list[dict[str, Any]] = field(default_factory=list)
    opted_out: list[dict[str, Any]] = field(default_factory=list)
    failed_sends: list[dict[str, Any]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Nothing new: cron must print nothing. Waiting conversations alone are
        not news; they were in the last digest."""
        return not (self.inbound or self.opted_out or self.failed_sends)

    def to_dict(self, with_text: bool) -> dict[str, Any]:
        inbound = self.inbound if with_text else [
            {k: v for k, v in i.items() if k != "messages"} | {"messages": [
                {k: v for k, v in m.items() if k != "text"} for m in i["messages"]]}
            for i in self.inbound]
        return {"since": self.since, "until": self.until, "inbound": inbound,
                "waiting": self.waiting, "opted_out": self.opted_out,
                "failed_sends": self.failed_sends}


def build_digest(conn: Conn, since: datetime, now: datetime) -> Digest:
    s, n = fmt(since) or "", fmt(now) or ""
    d = Digest(since=s, until=n)
    by_contact: dict[str, dict[str, Any]] = {}
    for r in cvstore.inbound_recorded_between(conn, s, n):
        item = by_contact.setdefault(r["handle"], {"handle": r["handle"], "name": r["name"],
                                                  "messages": []})
        item["messages"].append({"at": r["at"], "text": r["text"]})
    d.inbound = list(by_contact.values())
    d.waiting = [{"handle": r["handle"], "name": r["name"], "since": r["at"],
                  "waiting": ago(parse(r["at"]), now)} for r in cvstore.waiting_for_reply(conn)]
    for r in cvstore.opt_outs_between(conn, s, n):
        # When they opted out (the audit entry's own time is when we learnt it).
        detail = json.loads(r["detail"]) if r["detail"] else {}
        d.opted_out.append({"handle": r["handle"], "at": detail.get("at") or r["at"]})
    d.failed_sends = [{"id": r["id"], "handle": r["handle"], "status": r["status"],
                       "reason": r["reason"], "at": r["updated_at"]}
                      for r in cvstore.failed_sends_between(conn, s, n)]
    return d


def default_since(checkpoint: str | None, now: datetime) -> datetime:
    return parse(checkpoint) if checkpoint else now - timedelta(hours=24)


def render_digest(d: Digest, *, markdown: bool, with_text: bool) -> str:
    h = "## " if markdown else ""
    b = "- " if markdown else "  "
    lines: list[str] = []
    if d.inbound:
        n = sum(len(i["messages"]) for i in d.inbound)
        lines.append(f"{h}New messages ({n} from {len(d.inbound)})")
        for i in d.inbound:
            who = f"@{i['handle']}" + (f" ({i['name']})" if i["name"] else "")
            if with_text:
                for m in i["messages"]:
                    lines.append(f"{b}{who} {m['at'][:16].replace('T', ' ')}: {m['text']}")
            else:
                lines.append(f"{b}{who}: {len(i['messages'])} new")
        lines.append("")
    if d.waiting:
        lines.append(f"{h}Waiting for your reply")
        lines += [f"{b}@{w['handle']} for {w['waiting']}" for w in d.waiting[:DIGEST_WAITING_SHOWN]]
        if len(d.waiting) > DIGEST_WAITING_SHOWN:
            lines.append(f"{b}and {len(d.waiting) - DIGEST_WAITING_SHOWN} more: `dmtool inbox` "
                         "lists them")
        lines.append("")
    if d.opted_out:
        lines.append(f"{h}Opted out")
        lines += [f"{b}@{o['handle']} on {o['at'][:10]}" for o in d.opted_out]
        lines.append("")
    if d.failed_sends:
        lines.append(f"{h}Sends that need a look")
        lines += [f"{b}draft {f['id']} to @{f['handle']}: {f['status']}"
                  + (f" ({f['reason']})" if f["reason"] else "") for f in d.failed_sends]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


@contextlib.contextmanager
def digest_lock(store: Store, peek: bool) -> Iterator[None]:
    """Held from reading the digest checkpoint to moving it: of two digests run
    at once (two cron hosts), the second waits and reports only what is newer."""
    if peek:
        yield
        return
    from dmtool.locks import LockTimeout

    held = contextlib.ExitStack()
    try:
        held.enter_context(store.lock("digest", timeout=DIGEST_LOCK_WAIT_S))
    except LockTimeout:
        raise Busy("another digest is running for this store", hint="try again in a moment") \
            from None
    with held:
        yield
