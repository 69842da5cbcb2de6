"""Plain records read from the store.

Records (dmtool/record.py), not dataclasses nor NamedTuples: those generate
and compile code when they are defined, which every command reading the store
would pay at start-up (issue 16). Never changed once made: _replace makes another.
"""

from __future__ import annotations

import re

from dmtool.errors import InputError
from dmtool.record import Record

# X's rule for handles: 1 to 15 of [A-Za-z0-9_]. `user_<id>` is dmtool's own
# name for a contact X has not named yet (an archive gives ids, not handles).
# Patterns as text: compiled (and cached by `re`) on first use, not at import.
_HANDLE_RE = r"[A-Za-z0-9_]{1,15}"
_PLACEHOLDER_RE = r"user_[0-9]{1,25}"
# What 0.1.0 accepted: contacts it stored stay reachable by the handle they have.
_LEGACY_HANDLE_RE = r"[A-Za-z0-9_]{1,50}"

# Draft statuses of a send that may have reached X: it counts as sent until
# reconciled. Here rather than in store/drafts.py so that the caps can count
# them without importing the draft machinery.
UNSETTLED = ("sending", "unknown")

# Limits of the contact fields people type. `contacts add`, `contacts note`,
# `contacts import` and the store's own export all keep to them, so an export
# always imports again.
MAX_NAME_LENGTH = 100
MAX_NOTE_LENGTH = 10_000
MAX_EVIDENCE_LENGTH = 10_000
MAX_REASON_LENGTH = 1_000  # why a draft was rejected, an opt-out recorded or dismissed


def clean_handle(handle: str, *, stored: bool = False) -> str:
    """'@Alice' -> 'Alice'. Handles are compared case-insensitively elsewhere.

    `stored`: a handle to look up, which may be one 0.1.0 stored (up to 50
    characters); a handle for a new record must follow X's rule."""
    h = handle.strip()
    if h.startswith("@"):
        h = h[1:]
    pattern = _LEGACY_HANDLE_RE if stored else _HANDLE_RE
    if not (re.fullmatch(pattern, h) or re.fullmatch(_PLACEHOLDER_RE, h)):
        from dmtool.textnorm import cut

        raise InputError(f"not an X handle: {cut(handle)}",
                         hint="handles are 1 to 15 letters, digits and '_', like @alice")
    return h


def is_x_handle(handle: str) -> bool:
    """Does `handle` (without @) follow X's rule? dmtool's `user_<id>` may not."""
    return re.fullmatch(_HANDLE_RE, handle) is not None


def placeholder_id(handle: str) -> str | None:
    """The user id in dmtool's `user_<id>` (a contact known only by id), else None."""
    return handle[len("user_"):] if re.fullmatch(_PLACEHOLDER_RE, handle) else None


def clean_name(name: str | None) -> str | None:
    """A contact's name as a person typed it (one line, MAX_NAME_LENGTH); None when blank."""
    from dmtool.textnorm import typed

    if name is None:
        return None
    return typed(name, "the name", max_length=MAX_NAME_LENGTH, one_line=True) or None


def clean_note(text: str) -> str:
    """A note as a person typed it (MAX_NOTE_LENGTH); "" when blank."""
    from dmtool.textnorm import typed

    return typed(text, "the note", max_length=MAX_NOTE_LENGTH)


class Contact(Record):
    __slots__ = ("id", "user_id", "handle", "name", "created_at", "updated_at", "blocked_at",
                 "opted_out_at", "opt_out_words", "optout_review_text", "optout_review_at",
                 "dm_closed_at", "opt_out_reason", "tags")
    id: int
    user_id: str | None
    handle: str
    name: str | None
    created_at: str
    updated_at: str
    blocked_at: str | None
    opted_out_at: str | None
    opt_out_words: str | None
    optout_review_text: str | None
    optout_review_at: str | None
    dm_closed_at: str | None
    opt_out_reason: str | None  # yours, when you recorded the opt-out (`contacts optout`)
    tags: tuple[str, ...]

    def __init__(self, id: int, user_id: str | None, handle: str, name: str | None,
                 created_at: str, updated_at: str, blocked_at: str | None = None,
                 opted_out_at: str | None = None, opt_out_words: str | None = None,
                 optout_review_text: str | None = None, optout_review_at: str | None = None,
                 dm_closed_at: str | None = None, opt_out_reason: str | None = None,
                 tags: tuple[str, ...] = ()) -> None:
        self.id = id
        self.user_id = user_id
        self.handle = handle
        self.name = name
        self.created_at = created_at
        self.updated_at = updated_at
        self.blocked_at = blocked_at
        self.opted_out_at = opted_out_at
        self.opt_out_words = opt_out_words
        self.optout_review_text = optout_review_text
        self.optout_review_at = optout_review_at
        self.dm_closed_at = dm_closed_at
        self.opt_out_reason = opt_out_reason
        self.tags = tags


class EvidenceRow(Record):
    __slots__ = ("id", "kind", "at", "ref", "text", "recorded_by")
    id: int
    kind: str
    at: str
    ref: str
    text: str | None
    recorded_by: str | None  # who recorded it (dmtool.actor); read where it is shown

    def __init__(self, id: int, kind: str, at: str, ref: str, text: str | None,
                 recorded_by: str | None = None) -> None:
        self.id = id
        self.kind = kind
        self.at = at
        self.ref = ref
        self.text = text
        self.recorded_by = recorded_by

    def to_dict(self) -> dict[str, str | None]:
        return {"kind": self.kind, "at": self.at, "ref": self.ref, "text": self.text,
                "recorded_by": self.recorded_by}


class Message(Record):
    __slots__ = ("id", "event_id", "at", "direction", "text", "source")
    id: int
    event_id: str | None
    at: str
    direction: str
    text: str
    source: str

    def __init__(self, id: int, event_id: str | None, at: str, direction: str, text: str,
                 source: str) -> None:
        self.id = id
        self.event_id = event_id
        self.at = at
        self.direction = direction
        self.text = text
        self.source = source

    def to_dict(self) -> dict[str, str | None]:
        return {"id": self.event_id or f"local-{self.id}", "at": self.at,
                "direction": self.direction, "text": self.text}
