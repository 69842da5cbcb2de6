"""Opt-out / opt-in recognition for inbound messages (policy.md §2).

Pure: takes a message text, returns what it means. The word lists live in
data files so they can be reviewed without reading code.

- "optout": the whole message is an opt-out word ("STOP", "ｓｔｏｐ！", "opt-out 🛑").
- "optin":  the whole message is an opt-in word ("START", "再開").
- "review": the message contains a likely request to stop ("please stop
  messaging me"); a human decides.
- None: anything else, including sentences that merely use such a word
  ("I can't stop smiling").
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache, lru_cache
from typing import Literal

from dmtool.record import Record
from dmtool.textnorm import data_lines, match_form, normalise, phrase_pattern

__all__ = [
    "Kind",
    "Match",
    "classify",
    "classify_detail",
    "matched_word",
    "optin_words",
    "optout_words",
    "review_phrases",
    "word_kind",
]

Kind = Literal["optout", "optin", "review"]

# Inside a whole-message match, spaces, dashes, underscores and apostrophes do
# not matter: "opt out", "opt-out" and "optout" are the same word. Whitespace
# goes with split(), the others with a translate table: no regex at import.
_NO_JOINERS = dict.fromkeys(map(ord, "_'\u2018\u2019\uff07"))


class Match(Record):
    """What a message means and which list entry it matched (as listed)."""

    __slots__ = ("kind", "word")
    kind: Kind
    word: str

    def __init__(self, kind: Kind, word: str) -> None:
        self.kind = kind
        self.word = word


@lru_cache(maxsize=4096)  # each text is keyed against both word lists
def _key(text: str) -> str:
    """Whole-message comparison key: normalised, without inner spaces/dashes."""
    joined = "".join(normalise(text).split()).translate(_NO_JOINERS)
    if joined.isascii():  # the one ASCII dash (category Pd) is "-": skip the per-letter lookup
        return joined.replace("-", "")
    dashes = {ord(ch): None for ch in set(joined) if unicodedata.category(ch) == "Pd"}
    return joined.translate(dashes) if dashes else joined


@cache
def _word_table(name: str) -> dict[str, str]:
    """Map of comparison key -> entry as written in the data file."""
    table: dict[str, str] = {}
    for entry in data_lines(name):
        table.setdefault(_key(entry), entry)
    return table


@cache
def _review_regex() -> re.Pattern[str]:
    return phrase_pattern(data_lines("optout_phrases.txt"))


@cache
def _review_table() -> dict[str, str]:
    return {match_form(p): p for p in data_lines("optout_phrases.txt")}


def optout_words() -> tuple[str, ...]:
    """The opt-out words, as listed in the data file."""
    return data_lines("optout_words.txt")


def optin_words() -> tuple[str, ...]:
    """The words that lift an opt-out, as listed in the data file."""
    return data_lines("optin_words.txt")


def review_phrases() -> tuple[str, ...]:
    """Phrases that put a contact in review."""
    return data_lines("optout_phrases.txt")


def _whole_match(text: str, name: str) -> str | None:
    table = _word_table(name)
    key = _key(text)
    if not key:
        return None
    if key in table:
        return table[key]
    # "STOP STOP", "stop. stop!": every token (two or more) is itself a word of
    # the list. Keyed one at a time: most messages fail on the first token.
    tokens = (k for k in (_key(tok) for tok in normalise(text).split(" ")) if k)
    first = next(tokens, None)
    if first is None or first not in table:
        return None
    second = next(tokens, None)
    if second is not None and second in table and all(k in table for k in tokens):
        return table[first]
    return None


def word_kind(text: str) -> Literal["optout", "optin"] | None:
    """classify(text) when that is "optout" or "optin", else None: the whole-message
    words only, without building the review phrase matcher."""
    if _whole_match(text, "optout_words.txt") is not None:
        return "optout"
    if _whole_match(text, "optin_words.txt") is not None:
        return "optin"
    return None


def classify_detail(text: str) -> Match | None:
    """Classify one inbound message; None when it is an ordinary message."""
    word = _whole_match(text, "optout_words.txt")
    if word is not None:
        return Match("optout", word)
    word = _whole_match(text, "optin_words.txt")
    if word is not None:
        return Match("optin", word)
    found = _review_regex().search(match_form(text))
    if found is not None:
        return Match("review", _review_table().get(found.group(0), found.group(0)))
    return None


def classify(text: str) -> Kind | None:
    """The kind of message: "optout", "optin", "review" or None (see the module docstring)."""
    match = classify_detail(text)
    return match.kind if match is not None else None


def matched_word(text: str) -> str | None:
    """The list entry (word or phrase) the message matched, if any."""
    match = classify_detail(text)
    return match.word if match is not None else None
