"""Plain records read from the store.

NamedTuples rather than dataclasses: a dataclass's methods are generated and
compiled at import, which every command reading the store would pay at
start-up (issue 16).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from dmtool.errors import InputError

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


class Contact(NamedTuple):
    id: int
    user_id: str | None
    handle: str
    name: str | None
    created_at: str
    updated_at: str
    blocked_at: str | None = None
    opted_out_at: str | None = None
    opt_out_words: str | None = None
    optout_review_text: str | None = None
    optout_review_at: str | None = None
    dm_closed_at: str | None = None
    opt_out_reason: str | None = None  # yours, when you recorded the opt-out (`contacts optout`)
    tags: tuple[str, ...] = ()


class EvidenceRow(NamedTuple):
    id: int
    kind: str
    at: str
    ref: str
    text: str | None
    recorded_by: str | None = None  # who recorded it (dmtool.actor); read where it is shown

    def to_dict(self) -> dict[str, str | None]:
        return {"kind": self.kind, "at": self.at, "ref": self.ref, "text": self.text,
                "recorded_by": self.recorded_by}


class Message(NamedTuple):
    id: int
    event_id: str | None
    at: str
    direction: str
    text: str
    source: str

    def to_dict(self) -> dict[str, str | None]:
        return {"id": self.event_id or f"local-{self.id}", "at": self.at,
                "direction": self.direction, "text": self.text}
