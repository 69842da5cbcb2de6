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

__all__ = [
    "data_lines",
    "fold",
    "match_form",
    "normalise",
    "phrase_pattern",
    "SimilarityProbe",
    "similar_at_least",
    "similarity",
]

_WHITESPACE = re.compile(r"\s+")
# Variation selectors only choose emoji vs text presentation; they carry no
# meaning and would otherwise glue themselves to the letter before them.
_VARIATION_SELECTORS = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")
# Apostrophe look-alikes people type on phones and keyboards; removed for
# phrase matching so "don't", "don’t" and "dont" are one phrase.
_APOSTROPHES = re.compile("['\u2018\u2019\u201b\u02bc\u02b9\u0060\u00b4\uff07]")
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


@lru_cache(maxsize=8192)
def normalise(text: str) -> str:
    """NFKC, casefold, trim punctuation/symbols/emoji/space at the ends, collapse spaces."""
    folded = _VARIATION_SELECTORS.sub("", fold(text))
    return _WHITESPACE.sub(" ", _strip_edges(folded)).strip()


def match_form(text: str) -> str:
    """Form used for phrase matching: folded, apostrophes dropped, other
    punctuation as spaces ("Stop, please" and "stop please" read alike).

    Not edge-stripped: phrases are searched inside the text.
    """
    folded = _APOSTROPHES.sub("", _VARIATION_SELECTORS.sub("", fold(text)))
    spaced = "".join(" " if unicodedata.category(ch).startswith("P") or ch == "_" else ch
                     for ch in folded)
    return _WHITESPACE.sub(" ", spaced).strip()


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
