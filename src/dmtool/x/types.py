"""Plain values that cross the X boundary, and the client protocol dmtool needs.

Nothing here imports tweepy or requests: local commands import this freely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from dmtool.x.observe import RequestGate, RequestObserver

# X's page sizes for mentions and a user's posts: 5 to 100.
POSTS_PAGE_MIN = 5
POSTS_PAGE_MAX = 100


@dataclass(frozen=True)
class XUser:
    id: str
    username: str
    name: str | None = None


@dataclass(frozen=True)
class DMEvent:
    id: str
    event_type: str  # "MessageCreate", "ParticipantsJoin", "ParticipantsLeave"
    text: str | None
    sender_id: str | None
    conversation_id: str | None
    created_at: datetime | None
    participant_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class DMPage:
    events: list[DMEvent]
    users: dict[str, XUser] = field(default_factory=dict)
    next_token: str | None = None


@dataclass(frozen=True)
class Post:
    id: str
    text: str
    author_id: str | None
    created_at: datetime | None
    in_reply_to_user_id: str | None = None
    conversation_id: str | None = None
    replied_to_id: str | None = None  # id of the post this one replies to, if any


@dataclass(frozen=True)
class PostPage:
    posts: list[Post]
    users: dict[str, XUser] = field(default_factory=dict)
    newest_id: str | None = None
    next_token: str | None = None


@dataclass(frozen=True)
class SentDM:
    dm_event_id: str
    dm_conversation_id: str


class XClient(Protocol):
    """What dmtool asks of X. Errors are dmtool errors (see errors.py)."""

    requests_made: int

    def observe(self, observer: RequestObserver) -> None: ...

    def gate(self, gate: RequestGate) -> None: ...

    def me(self) -> XUser: ...

    def user_by_handle(self, handle: str) -> XUser: ...

    def users_by_ids(self, ids: list[str]) -> list[XUser]: ...

    def dm_events(self, max_results: int, pagination_token: str | None = None) -> DMPage: ...

    def conversation_events(
        self, participant_id: str, max_results: int, pagination_token: str | None = None
    ) -> DMPage: ...

    def send_dm(self, participant_id: str, text: str) -> SentDM: ...

    def mentions(
        self, user_id: str, since_id: str | None = None, pagination_token: str | None = None,
        max_results: int = POSTS_PAGE_MAX,
    ) -> PostPage: ...

    def own_posts(
        self, user_id: str, since_id: str | None = None, pagination_token: str | None = None,
        max_results: int = POSTS_PAGE_MAX,
    ) -> PostPage: ...
