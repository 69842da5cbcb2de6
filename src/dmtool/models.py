"""Plain records read from the store."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dmtool.errors import InputError

_HANDLE_RE = re.compile(r"^[A-Za-z0-9_]{1,50}$")

# Draft statuses of a send that may have reached X: it counts as sent until
# reconciled. Here rather than in store/drafts.py so that the caps can count
# them without importing the draft machinery.
UNSETTLED = ("sending", "unknown")


def clean_handle(handle: str) -> str:
    """'@Alice' -> 'Alice'. Handles are compared case-insensitively elsewhere."""
    h = handle.strip()
    if h.startswith("@"):
        h = h[1:]
    if not _HANDLE_RE.match(h):
        raise InputError(f"not an X handle: {handle!r}",
                         hint="handles are letters, digits and '_', like @alice")
    return h


@dataclass
class Contact:
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
    tags: list[str] = field(default_factory=list)


@dataclass
class EvidenceRow:
    id: int
    kind: str
    at: str
    ref: str
    text: str | None

    def to_dict(self) -> dict[str, str | None]:
        return {"kind": self.kind, "at": self.at, "ref": self.ref, "text": self.text}


@dataclass
class Message:
    id: int
    event_id: str | None
    at: str
    direction: str
    text: str
    source: str

    def to_dict(self) -> dict[str, str | None]:
        return {"id": self.event_id or f"local-{self.id}", "at": self.at,
                "direction": self.direction, "text": self.text}
