"""Inbox, thread and digest: read models over the local record (no X calls)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from dmtool.errors import Busy
from dmtool.store import conversations as cvstore
from dmtool.store.sql import Conn
from dmtool.timeutil import ago, fmt, parse

if TYPE_CHECKING:
    from dmtool.localtime import DisplayZone
    from dmtool.store import Store

DIGEST_LOCK_WAIT_S = 30.0


def inbox(conn: Conn, query: cvstore.InboxQuery, *, now: datetime,
          limit: int) -> list[dict[str, Any]]:
    """Conversations, waiting for your reply first (unless by activity alone),
    then by the time of their last message that is not an autoack."""
    now_s = fmt(now) or ""
    rows = cvstore.inbox_rows(conn, query, now=now_s, limit=limit)
    return [{"handle": r["handle"], "name": r["name"], "last_at": r["last_at"],
             "last_direction": r["last_direction"], "last_text": r["last_text"],
             "unread": r["unread"],
             # Never for someone who asked to stop, is in review for it, is
             # blocked or cannot be DMed (state), nor for a conversation done.
             "needs_reply": bool(r["waiting"]),
             "status": r["status"], "state": r["state"],
             "snoozed_until": r["snoozed_until"] if (r["snoozed_until"] or "") > now_s
             else None,
             # Who is answering it (a live claim), and until when.
             "claimed_by": r["claimed_by"], "claimed_until": r["claimed_until"]}
            for r in rows]


# A digest is read in a mail: the longest waits first, then a count. JSON
# (for scripts) lists every waiting conversation.
DIGEST_WAITING_SHOWN = 25
FIRST_DIGEST = timedelta(hours=24)
# Nothing is recorded before it was sent, but X's clock and this machine's may
# disagree a little: a window on sent times reads the messages recorded since
# its start less this much (an index range), then keeps those sent in it.
CLOCK_SKEW = timedelta(days=1)

# Which window a digest covers (JSON `window`): since the last digest, or the
# first digest's last 24 hours (both by when messages were recorded: a DM
# synced late is news the first time it is seen), or an explicit --since (by
# when messages were sent).
WINDOWS = ("last_digest", "first_digest", "since")


class Digest:
    """What a digest holds. A plain class: a dataclass would be generated and
    compiled at every start of the digest."""

    def __init__(self, since: str, until: str, window: str = "last_digest") -> None:
        self.since = since
        self.until = until
        self.window = window
        self.inbound: list[dict[str, Any]] = []  # by contact
        self.waiting: list[dict[str, Any]] = []
        self.optout_reviews: list[dict[str, Any]] = []
        self.opted_out: list[dict[str, Any]] = []
        self.failed_sends: list[dict[str, Any]] = []
        # --mine: the operator, their live claims and their drafts still to act on.
        self.mine: Mine | None = None

    @property
    def empty(self) -> bool:
        """Nothing new: cron must print nothing. Waiting conversations and
        reviews already listed are not news; they were in the last digest."""
        return not (self.inbound or self.opted_out or self.failed_sends
                    or any(r["new"] for r in self.optout_reviews))

    def to_dict(self, with_text: bool) -> dict[str, Any]:
        inbound = self.inbound if with_text else [
            {k: v for k, v in i.items() if k != "messages"} | {"messages": [
                {k: v for k, v in m.items() if k != "text"} for m in i["messages"]]}
            for i in self.inbound]
        reviews = self.optout_reviews if with_text else [
            {k: v for k, v in r.items() if k != "text"} for r in self.optout_reviews]
        out: dict[str, Any] = {"since": self.since, "until": self.until, "window": self.window,
                               "inbound": inbound, "waiting": self.waiting,
                               "optout_reviews": reviews, "opted_out": self.opted_out,
                               "failed_sends": self.failed_sends}
        if self.mine is not None:
            out["mine"] = self.mine.to_dict(with_text)
        return out


class Mine:
    """What `digest --mine` is about: conversations the operator claimed, and
    those with a draft of theirs someone still has to act on (a plain class,
    as Digest)."""

    def __init__(self, operator: str, claimed: list[dict[str, Any]] | None = None,
                 drafts: list[dict[str, Any]] | None = None) -> None:
        self.operator = operator
        self.claimed = claimed if claimed is not None else []  # handle, until
        self.drafts = drafts if drafts is not None else []     # id, handle, status, ...

    def handles(self) -> set[str]:
        return {i["handle"].casefold() for i in (*self.claimed, *self.drafts)}

    def to_dict(self, with_text: bool) -> dict[str, Any]:
        drafts = self.drafts if with_text else [
            {k: v for k, v in d.items() if k != "text"} for d in self.drafts]
        return {"operator": self.operator, "claimed": self.claimed, "drafts": drafts}


def mine_of(conn: Conn, operator: str, now: datetime) -> Mine:
    from dmtool.store import claims as kstore
    from dmtool.store import drafts as dstore

    return Mine(operator,
                [{"handle": h, "until": until} for h, until in
                 kstore.contacts_of(conn, operator, fmt(now) or "")],
                [{"id": d.id, "handle": d.handle, "status": d.status,
                  "approved_by": d.approved_by, "updated_at": d.updated_at, "text": d.text}
                 for d in dstore.waiting_by(conn, operator)])


def _only(rows: list[dict[str, Any]], handles: set[str]) -> list[dict[str, Any]]:
    return [r for r in rows if r["handle"] and r["handle"].casefold() in handles]


def _from_archive(detail: dict[str, Any]) -> bool:
    return detail.get("source") == "archive"


def build_digest(conn: Conn, since: datetime, now: datetime, *,
                 window: str = "last_digest", mine: str | None = None) -> Digest:
    """What came in in (since, now]. By recorded time, unless `window` is
    "since" (by sent time). History from an archive import is never news.
    With `mine` (an operator), only their conversations (Mine)."""
    by_sent = window == "since"
    s, n = fmt(since) or "", fmt(now) or ""
    d = Digest(since=s, until=n, window=window)
    if by_sent:
        rows = cvstore.inbound_sent_between(conn, s, n,
                                            recorded_since=fmt(since - CLOCK_SKEW) or "")
    else:
        rows = cvstore.inbound_recorded_between(conn, s, n)
    by_contact: dict[str, dict[str, Any]] = {}
    # Rows by position (handle, name, state, at, recorded_at, text): a lookup
    # by column name compares names one by one, and a digest reads thousands.
    for handle, name, state, at, _, text in rows:
        item = by_contact.get(handle)
        if item is None:
            item = by_contact[handle] = {"handle": handle, "name": name, "state": state,
                                         "messages": []}
        # Old: sent before the window began (a DM synced late).
        item["messages"].append({"at": at, "text": text, "old": at <= s})
    d.inbound = list(by_contact.values())
    # Stored times are RFC 3339 text that fromisoformat reads as is (3.11+): the
    # waiting list can hold thousands, and timeutil.parse's normalising would
    # cost the digest more than the rest of it.
    instant = datetime.fromisoformat
    d.waiting = [{"handle": handle, "name": name, "state": "open", "since": at,
                  "waiting": ago(instant(at), now)}
                 for handle, name, at in cvstore.waiting_for_reply(conn, n)]
    for r in cvstore.optout_reviews(conn):
        new = r["source"] is not None and r["source"] != "archive" and (
            s < r["at"] <= n if by_sent else s < r["recorded_at"] <= n)
        d.optout_reviews.append({"handle": r["handle"], "name": r["name"], "at": r["at"],
                                 "text": r["text"], "new": new})
    audit_since = (fmt(since - CLOCK_SKEW) or "") if by_sent else s
    for r in cvstore.opt_outs_between(conn, audit_since, n):
        # When they opted out (the audit entry's own time is when we learnt it).
        detail = json.loads(r["detail"]) if r["detail"] else {}
        at = detail.get("at") or r["at"]
        if _from_archive(detail) or (by_sent and not s < at <= n):
            continue
        d.opted_out.append({"handle": r["handle"], "at": at, "reason": detail.get("reason") or None})
    d.failed_sends = [{"id": r["id"], "handle": r["handle"], "status": r["status"],
                       "reason": r["reason"], "at": r["updated_at"]}
                      for r in cvstore.failed_sends_between(conn, s, n)]
    if mine is not None:
        d.mine = mine_of(conn, mine, now)
        handles = d.mine.handles()
        d.inbound, d.waiting = _only(d.inbound, handles), _only(d.waiting, handles)
        d.optout_reviews = _only(d.optout_reviews, handles)
        d.opted_out, d.failed_sends = _only(d.opted_out, handles), _only(d.failed_sends, handles)
    return d


# Where digests start: the time of the last one, per operator (digests run by
# two people, or by cron and a person, must not eat each other's news). The
# one checkpoint of earlier versions goes to the first operator who runs one.
LEGACY_CHECKPOINT = "digest_at"


def checkpoint_key(operator: str | None, *, mine: bool) -> str:
    if operator is None:
        return LEGACY_CHECKPOINT + (".mine" if mine else "")
    return f"{LEGACY_CHECKPOINT}.{'mine.' if mine else ''}{operator.strip().casefold()}"


def default_since(checkpoint: str | None, now: datetime) -> tuple[datetime, str]:
    """Where a digest without --since starts, and which window that is."""
    if checkpoint:
        return parse(checkpoint), "last_digest"
    return now - FIRST_DIGEST, "first_digest"


_DRAFT_WAITS = {"draft": "waiting for approval", "approved": "approved{by}, waiting to be sent",
                "failed": "not delivered: approve it again to retry",
                "unknown": "its send has an unknown outcome: `dmtool send` checks X"}


def _render_mine(m: Mine, zone: DisplayZone, h: str, b: str, with_text: bool) -> list[str]:
    lines: list[str] = []
    if m.claimed:
        lines.append(f"{h}Claimed by you")
        lines += [f"{b}@{c['handle']} until {zone.show(c['until'])}" for c in m.claimed]
        lines.append("")
    if m.drafts:
        lines.append(f"{h}Your drafts")
        for d in m.drafts:
            state = _DRAFT_WAITS.get(d["status"], d["status"]).format(
                by=f" by {d['approved_by']}" if d["approved_by"] else "")
            said = f': "{" ".join(d["text"].split())}"' if with_text else ""
            lines.append(f"{b}draft {d['id']} to @{d['handle']}: {state}{said}")
        lines.append("")
    return lines


def render_digest(d: Digest, zone: DisplayZone, *, markdown: bool, with_text: bool) -> str:
    """The digest for a person (a cron mail, a chat): times in `zone`."""
    h = "## " if markdown else ""
    b = "- " if markdown else "  "
    lines: list[str] = []
    if d.window == "first_digest":
        lines += [f"First digest: the last 24 hours, since {zone.show(d.since)} ({zone.name}). "
                  "The next one covers the time since this one.", ""]
    old = False
    if d.inbound:
        n = sum(len(i["messages"]) for i in d.inbound)
        lines.append(f"{h}New messages ({n} from {len(d.inbound)})")
        for i in d.inbound:
            who = f"@{i['handle']}" + (f" ({i['name']})" if i["name"] else "") \
                + (f" [{i['state']}]" if i["state"] != "open" else "")
            n_old = sum(m["old"] for m in i["messages"])
            old = old or n_old > 0
            if with_text:
                for m in i["messages"]:
                    mark = " [old]" if m["old"] else ""
                    lines.append(f"{b}{who} {zone.show(m['at'])}{mark}: {m['text']}")
            else:
                lines.append(f"{b}{who}: {len(i['messages'])} new"
                             + (f" ({n_old} old)" if n_old else ""))
        if old:
            lines.append(f"{b}[old]: sent before {zone.show(d.since)} ({zone.name}) and only "
                         "synced since")
        lines.append("")
    if d.optout_reviews:
        lines.append(f"{h}Opt-out reviews (did they ask you to stop?)")
        for r in d.optout_reviews:
            said = f': "{r["text"]}"' if with_text and r["text"] else ""
            lines.append(f"{b}@{r['handle']} on {zone.show(r['at'])}"
                         + (" [new]" if r["new"] else "") + said)
        lines.append(f"{b}decide with `dmtool contacts optout HANDLE` (confirm) or "
                     "`dmtool contacts optout HANDLE --dismiss --reason TEXT`")
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
        lines += [f"{b}@{o['handle']} on {zone.show_date(o['at'])}"
                  + (f" (reason: {o['reason']})" if o.get("reason") else "") for o in d.opted_out]
        lines.append("")
    if d.failed_sends:
        lines.append(f"{h}Sends that need a look")
        lines += [f"{b}draft {f['id']} to @{f['handle']}: {f['status']}"
                  + (f" ({f['reason']})" if f["reason"] else "") for f in d.failed_sends]
        lines.append("")
    if d.mine is not None and (d.mine.claimed or d.mine.drafts):
        lines += _render_mine(d.mine, zone, h, b, with_text)
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
