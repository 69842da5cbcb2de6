"""What a request to X may say: the field and expansion values X's OpenAPI
document allows, the checks X applies to query parameters (a 400 naming the
parameter when one fails), and the opaque pagination tokens it hands out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dmtool.x.sandbox.state import NUMERIC_RE

# --- allowed values ---------------------------------------------------------


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# The values X's OpenAPI document allows; anything else is a 400, as on X.
DM_EVENT_FIELDS = _names(
    "attachments created_at dm_conversation_id entities event_type id participant_ids "
    "referenced_tweets sender_id text"
)
DM_EXPANSIONS = _names("attachments.media_keys participant_ids referenced_tweets.id sender_id")
DM_EVENT_TYPES = ("MessageCreate", "ParticipantsJoin", "ParticipantsLeave")
TWEET_FIELDS = _names(
    "article attachments author_id card_uri community_id context_annotations conversation_id "
    "created_at display_text_range edit_controls edit_history_tweet_ids entities geo id "
    "in_reply_to_user_id lang media_metadata non_public_metrics note_tweet organic_metrics "
    "possibly_sensitive promoted_metrics public_metrics referenced_tweets reply_settings scopes "
    "source suggested_source_links suggested_source_links_with_counts text withheld"
)
TWEET_EXPANSIONS = _names(
    "article.cover_media article.media_entities attachments.media_keys "
    "attachments.media_source_tweet attachments.poll_ids author_id edit_history_tweet_ids "
    "entities.mentions.username geo.place_id in_reply_to_user_id "
    "entities.note.mentions.username referenced_tweets.id "
    "referenced_tweets.id.attachments.media_keys referenced_tweets.id.author_id"
)
USER_FIELDS = _names(
    "affiliation confirmed_email connection_status created_at description entities id "
    "is_identity_verified location most_recent_tweet_id name parody pinned_tweet_id "
    "profile_banner_url profile_image_url protected public_metrics receives_your_dm "
    "subscription subscription_type url username verified verified_followers_count "
    "verified_type withheld"
)
USER_EXPANSIONS = _names("affiliation.user_id most_recent_tweet_id pinned_tweet_id")


# --- parameter checks -------------------------------------------------------


class BadRequest(Exception):
    def __init__(self, parameter: str, value: str, message: str) -> None:
        super().__init__(message)
        self.parameter, self.value, self.message = parameter, value, message


def csv_param(query: dict[str, str], name: str, allowed: frozenset[str]) -> list[str]:
    raw = query.get(name)
    if raw is None:
        return []
    values = [v for v in raw.split(",") if v]
    for value in values:
        if value not in allowed:
            raise BadRequest(
                name,
                raw,
                f"The `{name}` query parameter value [{value}] is not one of [{','.join(sorted(allowed))}]",
            )
    return values


def int_param(query: dict[str, str], name: str, lo: int, hi: int, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(
            name, raw, f"The `{name}` query parameter value [{raw}] is not a valid number"
        ) from None
    if not lo <= value <= hi:
        raise BadRequest(
            name, raw, f"The `{name}` query parameter value [{raw}] is not between {lo} and {hi}"
        )
    return value


def check_params(query: dict[str, str], allowed: set[str]) -> None:
    for name in query:
        if name not in allowed:
            raise BadRequest(
                name,
                query[name],
                f"The query parameter [{name}] is not one of [{','.join(sorted(allowed))}]",
            )


def id_param(name: str, value: str) -> str:
    if not NUMERIC_RE.match(value):
        raise BadRequest(
            name,
            value,
            f"The `{name}` query parameter value [{value}] does not match ^[0-9]{{1,19}}$",
        )
    return value


# --- pagination tokens ------------------------------------------------------


_B32 = "0123456789ABCDEFGHIJKLMNOPQRSTUV"


def dm_token(last_id: str) -> str:
    # Opaque base32 token like X's ("18LAA5G1SL0NR5OG0G00ZZZZ"), at least 16 chars.
    n, out = int(last_id), ""
    while n:
        n, r = divmod(n, 32)
        out = _B32[r] + out
    return out.rjust(16, "0") + "ZZZZ"


def dm_token_id(token: str) -> int | None:
    body = token.rstrip("Z")
    if len(token) < 16 or not body or any(c not in _B32 for c in body):
        return None
    n = 0
    for c in body:
        n = n * 32 + _B32.index(c)
    return n


def post_token(last_id: str) -> str:
    n, out = int(last_id), ""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out.rjust(24, "0")


def post_token_id(token: str) -> int | None:
    try:
        return int(token, 36) if token else None
    except ValueError:
        return None


def after_token(items: list[dict[str, Any]], query: dict[str, str],
                 decode: Callable[[str], int | None]) -> list[dict[str, Any]]:
    """Items (newest first) past the query's pagination_token; X's 400 for a bad one."""
    token = query.get("pagination_token")
    if token is None:
        return items
    before = decode(token)
    if before is None:
        raise BadRequest("pagination_token", token,
                          f"The `pagination_token` query parameter value [{token}] is not valid")
    return [i for i in items if int(i["id"]) < before]
