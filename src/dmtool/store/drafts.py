"""Drafts (the send state machine) and templates.

Every status change is one guarded UPDATE (`... WHERE id = ? AND status IN
(...)`) whose rowcount tells whether it happened, so no transition can be
applied twice, even by two processes racing on the same draft.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dmtool.errors import InputError, NotFound
from dmtool.models import UNSETTLED  # sending, unknown: may have reached X
from dmtool.store.sql import Conn

STATUSES = ("draft", "approved", "rejected", "sending", "sent", "failed", "unknown", "discarded")

_COLS = (
    "d.id, d.contact_id, c.handle, d.text, d.status, d.template, d.created_at, d.updated_at, "
    "d.approved_at, d.approved_text, d.acknowledged, d.reason, d.send_started_at, d.sent_at, "
    "d.dm_event_id, d.dm_conversation_id, d.first_contact, d.author, d.approved_by, "
    "d.approved_sha256, d.sent_by, d.approved_message_mark, d.approved_audit_mark"
)
_FROM = "FROM drafts d JOIN contacts c ON c.id = d.contact_id"


@dataclass(frozen=True)
class Draft:
    id: int
    contact_id: int
    handle: str
    text: str
    status: str
    template: str | None
    created_at: str
    updated_at: str
    approved_at: str | None
    approved_text: str | None
    acknowledged: str | None  # space-separated warning codes
    reason: str | None
    send_started_at: str | None
    sent_at: str | None
    dm_event_id: str | None
    dm_conversation_id: str | None
    first_contact: int | None
    # Who (dmtool.actor) wrote it, approved it (while the approval stands) and sent it.
    author: str | None = None
    approved_by: str | None = None
    approved_sha256: str | None = None  # the approval is bound to this text (text_hash)
    sent_by: str | None = None
    # How far the messages and the audit log had gone at approval (store/traffic.py).
    approved_message_mark: int | None = None
    approved_audit_mark: int | None = None

    @property
    def acknowledged_codes(self) -> frozenset[str]:
        return frozenset((self.acknowledged or "").split())


def text_hash(text: str) -> str:
    """What an approval is bound to: SHA-256 of the exact text (UTF-8), in hex."""
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def create(conn: Conn, contact_id: int, text: str, *, now: str,
           template: str | None = None, author: str | None = None) -> Draft:
    cur = conn.execute(
        "INSERT INTO drafts (contact_id, text, status, template, created_at, updated_at, author) "
        "VALUES (?, ?, 'draft', ?, ?, ?, ?)", (contact_id, text, template, now, now, author))
    return get(conn, int(cur.lastrowid or 0))


def find(conn: Conn, draft_id: int) -> Draft | None:
    row = conn.execute(f"SELECT {_COLS} {_FROM} WHERE d.id = ?", (draft_id,)).fetchone()
    return None if row is None else Draft(*row)


def get(conn: Conn, draft_id: int) -> Draft:
    d = find(conn, draft_id)
    if d is None:
        raise NotFound(f"no draft {draft_id}", hint="see `dmtool drafts list`")
    return d


def list_drafts(conn: Conn, statuses: Iterable[str] | None = None,
                *, oldest_first: bool = False) -> list[Draft]:
    sql = f"SELECT {_COLS} {_FROM}"
    params: tuple[Any, ...] = ()
    wanted = tuple(statuses or ())
    if wanted:
        sql += f" WHERE d.status IN ({', '.join('?' * len(wanted))})"
        params = wanted
    sql += " ORDER BY d.id" + ("" if oldest_first else " DESC")
    return [Draft(*r) for r in conn.execute(sql, params)]


def _transition(conn: Conn, draft_id: int, to: str, from_: Iterable[str], *,
                now: str, extra_where: str = "", extra_params: tuple[Any, ...] = (),
                **sets: Any) -> bool:
    """Move a draft to `to` only if it is in one of `from_`. True when it moved."""
    allowed = tuple(from_)
    assignments = ", ".join(["status = ?", "updated_at = ?", *(f"{k} = ?" for k in sets)])
    sql = (f"UPDATE drafts SET {assignments} WHERE id = ? "
           f"AND status IN ({', '.join('?' * len(allowed))}){extra_where}")
    params = (to, now, *sets.values(), draft_id, *allowed, *extra_params)
    return conn.execute(sql, params).rowcount == 1


_CLEAR_APPROVAL: dict[str, Any] = {"approved_at": None, "approved_text": None, "acknowledged": None,
                                   "approved_by": None, "approved_sha256": None,
                                   "approved_message_mark": None, "approved_audit_mark": None}
EDITABLE = ("draft", "approved", "rejected", "failed")
APPROVABLE = ("draft", "approved", "rejected", "failed")
REJECTABLE = ("draft", "approved", "failed")
DISCARDABLE = ("draft", "approved", "rejected", "failed")


def set_text(conn: Conn, draft_id: int, text: str, *, now: str) -> bool:
    """New text: back to `draft`, approval cleared (policy.md §7)."""
    return _transition(conn, draft_id, "draft", EDITABLE, now=now, text=text, reason=None,
                       **_CLEAR_APPROVAL)


def approve(conn: Conn, draft_id: int, *, text: str, acknowledged: Iterable[str],
            now: str, approved_by: str | None = None) -> bool:
    """Approve exactly `text`: fails if the draft changed since it was checked.
    The approval keeps the text's hash and how far the messages and the audit
    log had gone (call inside the approval's transaction)."""
    message_mark, audit_mark = conn.execute(
        "SELECT (SELECT COALESCE(max(id), 0) FROM messages), "
        "(SELECT COALESCE(max(id), 0) FROM audit)").fetchone()
    return _transition(conn, draft_id, "approved", APPROVABLE, now=now,
                       extra_where=" AND text = ?", extra_params=(text,),
                       approved_at=now, approved_text=text, approved_sha256=text_hash(text),
                       approved_by=approved_by, approved_message_mark=message_mark,
                       approved_audit_mark=audit_mark,
                       acknowledged=" ".join(sorted(set(acknowledged))) or None,
                       reason=None, send_started_at=None)


def return_to_review(conn: Conn, draft_id: int, reason: str, *, now: str) -> bool:
    """approved -> draft, the approval void, with a note saying why (the traffic
    cop, or another approved draft to the same person sent first)."""
    return _transition(conn, draft_id, "draft", ("approved",), now=now, reason=reason,
                       **_CLEAR_APPROVAL)


def approved_for(conn: Conn, contact_id: int, *, other_than: int) -> list[int]:
    """The other approved drafts waiting for this contact."""
    return [r[0] for r in conn.execute(
        "SELECT id FROM drafts WHERE contact_id = ? AND status = 'approved' AND id != ? "
        "ORDER BY id", (contact_id, other_than))]


def reject(conn: Conn, draft_id: int, reason: str | None, *, now: str) -> bool:
    return _transition(conn, draft_id, "rejected", REJECTABLE, now=now, reason=reason,
                       **_CLEAR_APPROVAL)


def discard(conn: Conn, draft_id: int, *, now: str) -> bool:
    return _transition(conn, draft_id, "discarded", DISCARDABLE, now=now)


def start_send(conn: Conn, draft_id: int, *, text: str, first_contact: bool,
               now: str, sent_by: str | None = None) -> bool:
    """approved -> sending, for exactly the approved text (and its hash: an
    approval given before hashes were kept has none). Commit before the request."""
    return _transition(conn, draft_id, "sending", ("approved",), now=now,
                       extra_where=" AND text = ? AND approved_text = ? "
                                   "AND (approved_sha256 = ? OR approved_sha256 IS NULL)",
                       extra_params=(text, text, text_hash(text)),
                       send_started_at=now, first_contact=int(first_contact), sent_by=sent_by)


def mark_sent(conn: Conn, draft_id: int, *, dm_event_id: str,
              dm_conversation_id: str | None, sent_at: str, now: str) -> bool:
    return _transition(conn, draft_id, "sent", UNSETTLED, now=now, sent_at=sent_at,
                       dm_event_id=dm_event_id, dm_conversation_id=dm_conversation_id, reason=None)


def mark_failed(conn: Conn, draft_id: int, reason: str, *, now: str) -> bool:
    """X refused it, or it is confirmed absent: nothing was delivered."""
    return _transition(conn, draft_id, "failed", UNSETTLED, now=now, reason=reason,
                       **_CLEAR_APPROVAL)


def mark_unknown(conn: Conn, draft_id: int, *, now: str) -> bool:
    return _transition(conn, draft_id, "unknown", ("sending",), now=now)


def back_to_approved(conn: Conn, draft_id: int, *, now: str) -> bool:
    """The request never reached X (or X refused it before acting): keep the approval."""
    return _transition(conn, draft_id, "approved", ("sending",), now=now, send_started_at=None)


# --- templates ----------------------------------------------------------------------

_TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Template:
    name: str
    text: str
    created_at: str
    updated_at: str


def check_template_name(name: str) -> str:
    if not _TEMPLATE_NAME.fullmatch(name):
        from dmtool.textnorm import cut

        raise InputError(f"not a valid template name: {cut(name)}",
                         hint="use letters, digits, '.', '_' or '-' (at most 64 characters)")
    return name


def find_template(conn: Conn, name: str) -> Template | None:
    row = conn.execute("SELECT name, text, created_at, updated_at FROM templates WHERE name = ?",
                       (name,)).fetchone()
    return None if row is None else Template(*row)


def get_template(conn: Conn, name: str) -> Template:
    t = find_template(conn, name)
    if t is None:
        from dmtool.textnorm import cut

        raise NotFound(f"no template {cut(name)}", hint="see `dmtool templates list`")
    return t


def list_templates(conn: Conn) -> list[Template]:
    return [Template(*r) for r in conn.execute(
        "SELECT name, text, created_at, updated_at FROM templates ORDER BY name")]


def save_template(conn: Conn, name: str, text: str, *, now: str,
                  replace: bool = False) -> bool:
    """Add a template (or replace it when `replace`). Returns True when it was new."""
    if find_template(conn, name) is None:
        conn.execute("INSERT INTO templates (name, text, created_at, updated_at) VALUES (?, ?, ?, ?)",
                     (name, text, now, now))
        return True
    if not replace:
        raise InputError(f"template {name!r} already exists",
                         hint="add --replace to overwrite it, or pick another name")
    conn.execute("UPDATE templates SET text = ?, updated_at = ? WHERE name = ?", (text, now, name))
    return False


def remove_template(conn: Conn, name: str) -> bool:
    return conn.execute("DELETE FROM templates WHERE name = ?", (name,)).rowcount == 1


def unsettled_ids(conn: Conn, contact_id: int) -> list[int]:
    """Drafts to this contact whose send outcome is not known yet."""
    return [r[0] for r in conn.execute(
        "SELECT id FROM drafts WHERE contact_id = ? AND status IN (?, ?) ORDER BY id",
        (contact_id, *UNSETTLED))]


# A draft someone still has to act on: approve, send, or look at after a failed send.
WAITING = ("draft", "approved", "failed", "unknown")


def waiting_by(conn: Conn, operator: str) -> list[Draft]:
    """Drafts this operator wrote that someone still has to act on, oldest first."""
    return [Draft(*r) for r in conn.execute(
        f"SELECT {_COLS} {_FROM} WHERE d.status IN ({', '.join('?' * len(WAITING))}) "
        "AND d.author = ? COLLATE NOCASE ORDER BY d.id", (*WAITING, operator))]


def event_claimed(conn: Conn, event_id: str, *, other_than: int) -> bool:
    """Is this DM already the recorded outcome of another draft?"""
    return conn.execute("SELECT 1 FROM drafts WHERE dm_event_id = ? AND id != ?",
                        (event_id, other_than)).fetchone() is not None
