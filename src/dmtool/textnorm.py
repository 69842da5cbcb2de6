"""Text normalisation shared by the opt-out matcher, lint and duplicate checks.

Pure functions only. Everything that compares what people wrote goes through
here, so "ＳＴＯＰ!!", "stop 🛑" and "Stop." are treated the same everywhere.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from difflib import SequenceMatcher
from functools import cache, lru_cache

from dmtool.errors import InputError

__all__ = [
    "clean_display",
    "collapse_spaces",
    "cut",
    "data_lines",
    "fold",
    "is_blank",
    "line_ends",
    "typed",
    "match_form",
    "normalise",
    "phrase_pattern",
    "SimilarityProbe",
    "similar_at_least",
    "similarity",
]

# No regular expression is compiled at import (issue 16: every local command
# that shows a contact's status imports this module): characters are dropped
# with str.translate tables, runs of whitespace folded with split() (the same
# Unicode whitespace as the regex \s), and the few patterns compile on first use.

# Variation selectors only choose emoji vs text presentation; they carry no
# meaning and would otherwise glue themselves to the letter before them.
_NO_VARIATION_SELECTORS = dict.fromkeys([*range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)])
# Apostrophe look-alikes people type on phones and keyboards; removed for
# phrase matching so "don't", "don’t" and "dont" are one phrase.
_NO_APOSTROPHES = dict.fromkeys(map(ord, "'\u2018\u2019\u201b\u02bc\u02b9\u0060\u00b4\uff07"))
# Latin letters and digits: phrase boundaries only apply between these, so
# English phrases do not match inside words while Japanese (no spaces) still
# matches as a substring.
_LATIN = "a-z0-9\u00c0-\u024f"


def _strippable(ch: str) -> bool:
    """Punctuation, symbols (incl. emoji), separators and control/format chars."""
    return unicodedata.category(ch)[0] in "PSZC"


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch)[0] == "M"


def fold(text: str) -> str:
    """NFKC + casefold (re-normalised, since casefolding can denormalise)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def _strip_edges(text: str) -> str:
    """Drop P/S/Z/C characters at both ends, together with marks attached to them.

    A combining mark belongs to the character before it, so a keycap or a skin
    tone on an emoji goes with the emoji, while an accent on a final letter
    stays. Only the edges are scanned: texts can be 10,000 characters long.
    """

    def strippable(cluster: str) -> bool:
        # A leading orphan mark has nothing to attach to: treat it as debris.
        # An enclosing mark (keycap U+20E3) turns its base, even a digit, into a symbol.
        return (
            _strippable(cluster[0])
            or _is_mark(cluster[0])
            or any(unicodedata.category(ch) == "Me" for ch in cluster)
        )

    start, end = 0, len(text)
    while start < end:
        stop = start + 1
        while stop < end and _is_mark(text[stop]):
            stop += 1
        if not strippable(text[start:stop]):
            break
        start = stop
    while end > start:
        begin = end - 1
        while begin > start and _is_mark(text[begin]):
            begin -= 1
        if not strippable(text[begin:end]):
            break
        end = begin
    return text[start:end]


def _without_variation_selectors(text: str) -> str:
    return text if text.isascii() else text.translate(_NO_VARIATION_SELECTORS)


def collapse_spaces(text: str) -> str:
    """Runs of whitespace as one space, none at the ends."""
    return " ".join(text.split())


# Every ASCII character but letters and digits is punctuation, a symbol, a
# space or a control character: what _strip_edges drops.
_ASCII_EDGES = "".join(ch for ch in map(chr, range(128)) if not ch.isalnum())


@lru_cache(maxsize=8192)
def normalise(text: str) -> str:
    """NFKC, casefold, trim punctuation/symbols/emoji/space at the ends, collapse spaces."""
    if text.isascii():  # the same, without a Unicode lookup per character (NFKC keeps ASCII)
        return collapse_spaces(text.lower().strip(_ASCII_EDGES))
    return collapse_spaces(_strip_edges(_without_variation_selectors(fold(text))))


def match_form(text: str) -> str:
    """Form used for phrase matching: folded, apostrophes dropped, other
    punctuation as spaces ("Stop, please" and "stop please" read alike).

    Not edge-stripped: phrases are searched inside the text.
    """
    folded = _without_variation_selectors(fold(text)).translate(_NO_APOSTROPHES)
    spaced = "".join(" " if unicodedata.category(ch).startswith("P") or ch == "_" else ch
                     for ch in folded)
    return collapse_spaces(spaced)


def phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str]:
    """One regex matching any of `phrases` in `match_form` text, longest first.

    Latin phrase edges must sit on a word boundary ("sale" does not match
    "wholesale"); CJK edges need none since Japanese has no spaces.
    """
    forms = sorted({match_form(p) for p in phrases if match_form(p)}, key=lambda p: (-len(p), p))
    if not forms:
        return re.compile(r"(?!)")  # matches nothing
    parts = []
    for form in forms:
        part = re.escape(form)
        if re.match(f"[{_LATIN}]", form[0]):
            part = f"(?<![{_LATIN}])" + part
        if re.match(f"[{_LATIN}]", form[-1]):
            part += f"(?![{_LATIN}])"
        parts.append(part)
    return re.compile("|".join(parts))


def similarity(a: str, b: str) -> float:
    """Similarity in [0, 1] of the normalised texts (difflib ratio, no junk heuristic).

    autojunk is off because it treats common letters of long texts as junk,
    which would make two identical long messages look different.
    """
    na, nb = normalise(a), normalise(b)
    if na == nb:
        return 1.0
    return SequenceMatcher(None, na, nb, autojunk=False).ratio()


_QGRAM = 3


@lru_cache(maxsize=4096)
def _qgrams(norm: str) -> Counter[str]:
    """Multiset of q-grams of a normalised text (cached: sends are compared often)."""
    return Counter(norm[i : i + _QGRAM] for i in range(len(norm) - _QGRAM + 1))


def _ratio_upper_bound(na: str, ga: Counter[str], nb: str, gb: Counter[str]) -> float:
    """An upper bound on the difflib ratio, from the q-grams the texts share.

    The matched characters form a common subsequence, so M <= LCS and
    ratio <= (la + lb - D) / (la + lb) with D the insert/delete distance. Each
    edit destroys at most q q-grams (the q-gram lemma), so
    D >= (max(la, lb) - q + 1 - shared) / q. Needed because letter counts alone
    (quick_ratio) barely filter natural-language texts of similar length.
    """
    total = len(na) + len(nb)
    shared = sum((ga & gb).values())
    missing = max(len(na), len(nb)) - _QGRAM + 1 - shared
    min_edits = max(0, -(-missing // _QGRAM))
    return (total - min_edits) / total


class SimilarityProbe:
    """Compares one text (say, a draft) against many others quickly.

    The difflib index of the probe text is built once; the cheap upper bounds
    reject most candidates before the full ratio is computed.
    """

    def __init__(self, text: str) -> None:
        self.norm = normalise(text)
        self._matcher = SequenceMatcher(None, "", self.norm, autojunk=False)

    def at_least(self, other: str, threshold: float) -> bool:
        """`similarity(other, text) >= threshold`."""
        na, nb = normalise(other), self.norm
        if na == nb:
            return True
        total = len(na) + len(nb)
        if 2 * min(len(na), len(nb)) / total < threshold:
            return False
        if _ratio_upper_bound(na, _qgrams(na), nb, _qgrams(nb)) < threshold:
            return False
        self._matcher.set_seq1(na)
        if self._matcher.quick_ratio() < threshold:
            return False
        return self._matcher.ratio() >= threshold


def similar_at_least(a: str, b: str, threshold: float) -> bool:
    """`similarity(a, b) >= threshold`, skipping the full comparison when bounds rule it out."""
    return SimilarityProbe(b).at_least(a, threshold)


@cache
def data_lines(name: str) -> tuple[str, ...]:
    """Entries of a packaged data file: one per line, `#` comments and blanks skipped."""
    try:  # the installed file; importlib.resources costs ~9 ms of imports (zipfile, ...)
        with open(os.path.join(os.path.dirname(__file__), "data", name), encoding="utf-8") as f:
            raw = f.read()
    except OSError:  # e.g. run from a zip
        from importlib import resources

        raw = (resources.files("dmtool") / "data" / name).read_text(encoding="utf-8")
    # Only whole-line comments: entries themselves may contain "#" (e.g. "#ad").
    stripped = (line.strip() for line in raw.splitlines())
    return tuple(line for line in stripped if line and not line.startswith("#"))


# --- text typed by people ------------------------------------------------------------
#
# Every entry point where a person's text comes in (drafts, edits, templates,
# names, notes, consent evidence, reasons) goes through `typed`, so the same
# text is accepted or refused with the same words everywhere.

# Characters that show as nothing: a text made only of these (and whitespace)
# reads as empty to the person who receives it. Format characters (Cf: zero-width
# space and joiners, word joiner, BOM, soft hyphen, direction marks) count too.
_INVISIBLE = frozenset(
    "\u034f"  # combining grapheme joiner
    "\u115f\u1160\u3164\uffa0"  # Hangul fillers
    "\u2800"  # braille blank
    "\ufe00\ufe01\ufe02\ufe03\ufe04\ufe05\ufe06\ufe07"
    "\ufe08\ufe09\ufe0a\ufe0b\ufe0c\ufe0d\ufe0e\ufe0f"  # variation selectors
)


def line_ends(text: str) -> str:
    """CRLF and lone CR (files from Windows and old Macs) as LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _shows_nothing(ch: str) -> bool:
    return ch.isspace() or ch in _INVISIBLE or unicodedata.category(ch) == "Cf" \
        or "\U000e0100" <= ch <= "\U000e01ef"


def is_blank(text: str) -> bool:
    """Nothing a reader would see: only whitespace and invisible characters."""
    return all(_shows_nothing(ch) for ch in text)


# Control characters (Cc) but a tab and a line break, and lone surrogates (Cs:
# bytes that were not UTF-8); a one-line field refuses line breaks too.
_REFUSED = "[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]"
_REFUSED_ONE_LINE = "[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff]"


def _bad_character(text: str, *, one_line: bool) -> tuple[int, str] | None:
    """(position, character) of the first character a person's text may not hold."""
    m = re.search(_REFUSED_ONE_LINE if one_line else _REFUSED, text)
    return None if m is None else (m.start(), m.group(0))


def cut(text: str, limit: int = 40) -> str:
    """`text` quoted for an error message: control characters escaped, and at
    most `limit` characters of it, so a 100,000-character value cannot flood
    the terminal."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text):,} characters)"


def typed(text: str, what: str, *, max_length: int | None = None, one_line: bool = False) -> str:
    """Text a person typed, ready to store, or InputError saying what is wrong.

    Line ends become LF first; then a control character (anything but a line
    break and a tab; in a one-line field, anything but a tab) or a lone
    surrogate (bytes that were not UTF-8) is refused: it is invisible or
    changes how the text shows, so what was checked would not be what is read.
    Surrounding whitespace is dropped, and a text that shows nothing (only
    spaces, zero-width or other invisible characters) comes back as "", for the
    caller to refuse in its own words. `max_length` counts code points.
    """
    text = line_ends(text)
    bad = _bad_character(text, one_line=one_line)
    if bad is not None:
        at, ch = bad
        if unicodedata.category(ch) == "Cs":
            raise InputError(f"{what} is not valid UTF-8 text (at character {at + 1:,})",
                             hint="save or type it as UTF-8")
        kind = "a line break" if ch == "\n" else f"a control character (U+{ord(ch):04X})"
        where = f"at character {at + 1:,}"
        hint = ("write it on one line" if ch == "\n" else
                "control characters are invisible or change how the text shows; "
                "only line breaks and tabs are allowed")
        raise InputError(f"{what} contains {kind} {where}", hint=hint)
    text = text.strip()
    if is_blank(text):
        return ""
    if max_length is not None and len(text) > max_length:
        raise InputError(f"{what} is too long: {len(text):,} characters, at most {max_length:,}")
    return text


def clean_display(text: str | None, max_length: int | None = None) -> str | None:
    """Text that comes from X (a display name), made fit to store and show:
    never refused, only cleaned. Control characters go, line breaks and tabs
    become spaces, runs of spaces become one, and it is cut to `max_length`;
    nothing visible left gives None."""
    if text is None:
        return None
    kept = "".join(" " if ch in "\t\n\r" else ch for ch in text
                   if unicodedata.category(ch) not in ("Cc", "Cs") or ch in "\t\n\r")
    kept = " ".join(kept.split())[:max_length]
    return None if is_blank(kept) else kept.strip()
