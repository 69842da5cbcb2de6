"""Draft checks (policy.md §5) as a table of pure rules.

`lint(text, ctx)` returns findings; each says what to change, in plain words.
Errors block a send; warnings are shown and must be acknowledged at approval.
Word lists (URL shorteners, promotional phrases) live in data files.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import cache
from typing import Literal, NamedTuple

from dmtool.settings import LINT_HELP, LintSettings
from dmtool.textnorm import data_lines, fold, is_blank, match_form, phrase_pattern

__all__ = [
    "RULES",
    "Finding",
    "LintContext",
    "LINT_HELP",
    "LintSettings",
    "MAX_LENGTH",
    "Severity",
    "find_links",
    "lint",
    "promo_score",
    "template_leftovers",
]

Severity = Literal["error", "warning"]


class Finding(NamedTuple):
    code: str
    severity: Severity
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "severity": self.severity, "message": self.message}


class LintContext(NamedTuple):
    """Who the draft is for. `first_contact`: they have never DMed you.
    `template`: the text is a template's output, where any brace left over is a
    variable that was not filled (typed text keeps its kaomoji and code)."""

    first_contact: bool
    name: str | None
    handle: str | None
    sender_names: tuple[str, ...] = ()
    template: bool = False


# Patterns are kept as text and compiled (then cached by `re`) when first
# used, not at import: commands that only list drafts import this module.

# X's hard limits, not preferences: no setting changes them.
MAX_LENGTH = 10_000  # code points in one DM
_PUNCT_RUN = r"[!?]{3,}"  # "!!!", "???", "?!?" (and "！！！" after NFKC)
# Control characters other than line breaks and tabs (a CR is a line end).
_CONTROL = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]"


Rule = Callable[[str, LintContext, LintSettings], list[Finding]]


def _plural(items: list[str], noun: str) -> str:
    return noun if len(items) == 1 else noun + "s"


def _quote(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(f'"{item}"' for item in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


# --- L001 placeholders ---------------------------------------------------------

# Every repetition is bounded: placeholders are short, and unbounded patterns
# would make a 10,000-character draft of "xxxx…" or "[[[[…" take seconds.
_JA_FILL = r"[〇○◯●×＊*_＿]{2,12}|[xX]{2,12}"
_PLACEHOLDER = "|".join(  # a pattern's text: compiled (and cached by `re`) when first used
    [
        # {name}, { first_name }, {{first_name}}, {名前}: only an identifier in braces,
        # so kaomoji ("{^_^}") and code ("{ x: 1 }") keep their braces.
        r"\{\{ {0,3}[^\W\d]\w{0,40} {0,3}\}\}",
        r"\{ {0,3}[^\W\d]\w{0,40} {0,3}\}",
        r"\[ {0,3}[A-Z][A-Z0-9_ .\-]{0,40}[A-Z0-9_] {0,3}\]",  # [NAME], [FIRST NAME]
        r"<<[^<>\n]{0,60}>>",  # <<name>>
        r"%[A-Za-z_]{1,40}%",  # %NAME%
        # 【名前】, 【会社名】, 【〇〇】, [日付] ... : only placeholder-like contents,
        # since 【お知らせ】-style headings are ordinary Japanese.
        r"[【\[] {0,3}(?:[^】\]\n]{0,20}名前?|"
        + _JA_FILL
        + r"|[^】\]\n]{0,20}(?:日付|日時|住所|URL|リンク)) {0,3}[】\]]",
        r"(?:" + _JA_FILL + r") {0,3}(?:様|さま|さん|殿)",  # 〇〇様
    ]
)


# In a template's output every brace is a leftover: `{name[0]}`, `{}`,
# `{name:>9}` (never given to str.format) or a brace without its pair.
_BRACED = r"\{\{[^{}\n]{0,60}\}\}|\{[^{}\n]{0,60}\}"


def template_leftovers(normal: str) -> tuple[list[str], list[str]]:
    """(brace groups, unmatched braces) in a template's output (NFKC text)."""
    groups = [m.group(0) for m in re.finditer(_BRACED, normal)]
    rest = re.sub(_BRACED, "", normal)
    return groups, [ch for ch in rest if ch in "{}"]


def _rule_placeholder(text: str, ctx: LintContext, settings: LintSettings) -> list[Finding]:
    normal = unicodedata.normalize("NFKC", text)
    found = [m.group(0) for m in re.finditer(_PLACEHOLDER, normal)]
    stray: list[str] = []
    if ctx.template:
        groups, stray = template_leftovers(normal)
        found += groups
    found = list(dict.fromkeys(found))
    stray = list(dict.fromkeys(stray))
    if not found and not stray:
        return []
    parts = []
    if found:
        parts.append(f"Fill in or remove the {_plural(found, 'placeholder')} {_quote(found)}: "
                     "the person would see it exactly as written.")
    if stray:
        parts.append(f"Remove the unmatched {_quote(stray)} the template left: a variable "
                     "looks like {name}.")
    return [Finding("L001", "error", " ".join(parts))]


# --- L002 length ---------------------------------------------------------------


def _rule_length(text: str, ctx: LintContext, settings: LintSettings) -> list[Finding]:
    if is_blank(text):
        return [Finding("L002", "error", "Write the message: the draft is empty.")]
    control = re.search(_CONTROL, text)
    if control:
        return [
            Finding(
                "L002",
                "error",
                f"Remove the control character U+{ord(control.group(0)):04X} (character "
                f"{control.start() + 1:,}): it does not show, so the text you check is not the "
                "text they read.",
            )
        ]
    if len(text) > MAX_LENGTH:
        return [
            Finding(
                "L002",
                "error",
                f"Shorten the message to {MAX_LENGTH:,} characters or fewer "
                f"(X's limit); it has {len(text):,}.",
            )
        ]
    return []


# --- L003 / L004 links -----------------------------------------------------------

# Links with a scheme or "www." are always links. Bare ones ("example.com/x")
# need a known top-level domain (or a shortener host), so that sentences with a
# missing space ("it.It was") or names like "node.js" are not taken for links.
# TLDs that are common English words (it, is, to, me, ...) are left out.
_TLDS = frozenset(
    ["com", "net", "org", "info", "biz", "io", "co", "ai", "app", "dev", "ly", "gl", "gd"]
    + ["jp", "uk", "de", "fr", "es", "nl", "ch", "se", "dk", "fi", "pl", "cz", "ru", "cn"]
    + ["kr", "tw", "hk", "sg", "au", "nz", "ca", "mx", "br", "ar", "eu", "tv", "fm", "gg", "xyz"]
)
_ASCII_BEFORE = r"(?<![@A-Za-z0-9.\-_/])"  # not inside an e-mail address, word or path
_EXPLICIT_LINK = _ASCII_BEFORE + r"(?:https?://|www\.)[!-~]+"  # all three: re.IGNORECASE
_BARE_LINK = (
    _ASCII_BEFORE
    + r"(?P<host>(?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)+(?P<tld>[a-z]{2,63}))"
    + r"(?![a-z0-9\-@])(?:[/?#][!-~]*)?"
)
_HOST = r"^(?:https?://)?(?:[^/?#@]*@)?(?P<host>[^/?#:]+)"
_TRAILING = ".,;:!?)]}'\""


def find_links(text: str) -> list[tuple[str, str]]:
    """(link as written, lower-case host) for each link in the text."""
    normal = unicodedata.normalize("NFKC", text)
    found: list[tuple[int, str]] = []
    taken: list[tuple[int, int]] = []
    for m in re.finditer(_EXPLICIT_LINK, normal, re.IGNORECASE):
        found.append((m.start(), m.group(0).rstrip(_TRAILING)))
        taken.append(m.span())
    for m in re.finditer(_BARE_LINK, normal, re.IGNORECASE):
        if any(a <= m.start() < b for a, b in taken):
            continue
        host = m.group("host").lower()
        if m.group("tld").lower() in _TLDS or _is_shortener(host):
            found.append((m.start(), m.group(0).rstrip(_TRAILING)))
    links = []
    for _, link in sorted(found):
        host_match = re.match(_HOST, link, re.IGNORECASE)
        host = host_match.group("host").lower() if host_match else link.lower()
        links.append((link, host.removeprefix("www.")))
    return links


@cache
def _shorteners() -> frozenset[str]:
    return frozenset(entry.lower() for entry in data_lines("shorteners.txt"))


def _is_shortener(host: str) -> bool:
    host = host.removeprefix("www.")
    parts = host.split(".")
    return any(".".join(parts[i:]) in _shorteners() for i in range(len(parts) - 1))


def _rule_shortener(text: str, ctx: LintContext, settings: LintSettings) -> list[Finding]:
    short = [link for link, host in find_links(text) if _is_shortener(host)]
    if not short:
        return []
    return [
        Finding(
            "L003",
            "error",
            f"Replace the shortened {_plural(short, 'link')} {_quote(short)} with the full "
            "address: shortened links hide where they lead and look like spam.",
        )
    ]


def _rule_first_contact_link(text: str, ctx: LintContext, settings: LintSettings) -> list[Finding]:
    links = [link for link, _ in find_links(text)]
    if not ctx.first_contact or not links:
        return []
    return [
        Finding(
            "L004",
            "error",
            f"Remove the {_plural(links, 'link')} {_quote(links)}: first messages must not "
            "contain links; share it after they reply.",
        )
    ]


# --- L010 promotional language ------------------------------------------------------


@cache
def _promo_lexicon() -> tuple[dict[str, tuple[str, float]], re.Pattern[str]]:
    """match_form(phrase) -> (phrase as listed, weight), and one regex for all."""
    weights: dict[str, tuple[str, float]] = {}
    for name in ("promo_en.txt", "promo_ja.txt"):
        for line in data_lines(name):
            phrase, sep, weight = line.rpartition("\t")
            if not sep:
                raise ValueError(f"{name}: expected 'phrase<TAB>weight', got {line!r}")
            weights[match_form(phrase)] = (phrase.strip(), float(weight))
    return weights, phrase_pattern(weights)


def promo_score(text: str) -> tuple[float, list[str]]:
    """Sum of the weights of the promotional phrases present, and those phrases.

    Each phrase counts once; where phrases overlap the longer one wins, so
    "limited time offer" is not also counted as "limited time".
    """
    weights, pattern = _promo_lexicon()
    found: dict[str, float] = {}
    for m in pattern.finditer(match_form(text)):
        phrase, weight = weights[m.group(0)]
        found[phrase] = weight
    return sum(found.values()), list(found)


def _rule_promo(text: str, ctx: LintContext, settings: LintSettings) -> list[Finding]:
    score, phrases = promo_score(text)
    if score < settings.promo_warn_score:
        return []
    if ctx.first_contact:
        return [
            Finding(
                "L010",
                "error",
                f"Take out the sales language ({_quote(phrases)}): a first message must not "
                "sell. Say why you are writing to this person; offers can come after they reply.",
            )
        ]
    severity: Severity = "error" if score >= settings.promo_error_score else "warning"
    return [
        Finding(
            "L010",
            severity,
            f"Tone down the sales language ({_quote(phrases)}): DMs that read like ads get "
            "ignored or reported as spam. Write as you would to one person.",
        )
    ]


# --- L011 shouting ------------------------------------------------------------------


def _rule_shouting(text: str, ctx: LintContext, settings: LintSettings) -> list[Finding]:
    normal = unicodedata.normalize("NFKC", text)  # "！！！" -> "!!!", "Ａ" -> "A"
    # Only letters that have case count: Japanese text is never "shouting".
    cased = [ch for ch in normal if ch.isupper() or ch.islower()]
    upper = sum(ch.isupper() for ch in cased)
    problems = []
    enough = len(cased) >= settings.shouting_min_letters
    if enough and upper / len(cased) >= settings.shouting_ratio:
        problems.append("write in normal sentence case instead of capitals")
    run = re.search(_PUNCT_RUN, normal)
    if run:
        problems.append(f'use a single "!" or "?" instead of "{run.group(0)}"')
    if not problems:
        return []
    return [
        Finding(
            "L011",
            "warning",
            f"Don't shout: {' and '.join(problems)}. It reads as pressure in a DM.",
        )
    ]


# --- L012 first contact: who is it for, who is writing ----------------------------------

_INTRO_PHRASES = (
    "im",  # "I'm" after apostrophes are dropped
    "i am",
    "this is",
    "my name is",
    "here from",
    "writing from",
    "reaching out from",
    "i work at",
    "i work for",
    "i work on",
    "i run",
    "です",
    "と申します",
    "といいます",
    "と言います",
    "でございます",
    "の者です",
)


@cache
def _intro() -> re.Pattern[str]:
    return phrase_pattern(_INTRO_PHRASES)


def _name_parts(name: str) -> list[str]:
    """The full name and its word-like parts (first name, surname) worth matching."""
    folded = fold(name).strip()
    parts = [p for p in re.findall(r"\w+", folded) if len(p) >= 2 or not p.isascii()]
    return [folded, *parts] if folded else parts


def _addresses_person(text: str, ctx: LintContext) -> bool:
    body = fold(text)
    if ctx.handle:
        handle = fold(ctx.handle).lstrip("@")
        if handle and re.search(r"@" + re.escape(handle) + r"(?!\w)", body):
            return True
    if ctx.name:
        return any(_contains_word(body, part) for part in _name_parts(ctx.name))
    return False


def _contains_word(body: str, word: str) -> bool:
    if word.isascii():
        return re.search(r"(?<!\w)" + re.escape(word) + r"(?!\w)", body) is not None
    return word in body  # Japanese names sit right next to さん/様


def _says_who_is_writing(text: str, ctx: LintContext) -> bool:
    body = fold(text)
    parts = (part for sender in ctx.sender_names for part in _name_parts(sender))
    if any(_contains_word(body, part) for part in parts):
        return True
    return _intro().search(match_form(text)) is not None


def _rule_introduction(text: str, ctx: LintContext, settings: LintSettings) -> list[Finding]:
    if not ctx.first_contact or is_blank(text):
        return []
    missing = []
    if not _addresses_person(text, ctx):
        who = ctx.name or (f"@{ctx.handle.lstrip('@')}" if ctx.handle else "the person")
        missing.append(f"greet {who} by name")
    if not _says_who_is_writing(text, ctx):
        missing.append('say who you are ("I\'m ... from ...")')
    if not missing:
        return []
    return [
        Finding(
            "L012",
            "warning",
            f"Make it personal: {' and '.join(missing)}. A first message from a stranger "
            "that could be sent to anyone looks like spam.",
        )
    ]


RULES: list[tuple[str, Rule]] = [
    ("L001", _rule_placeholder),
    ("L002", _rule_length),
    ("L003", _rule_shortener),
    ("L004", _rule_first_contact_link),
    ("L010", _rule_promo),
    ("L011", _rule_shouting),
    ("L012", _rule_introduction),
]

_DEFAULT_SETTINGS = LintSettings()


def lint(text: str, ctx: LintContext, settings: LintSettings = _DEFAULT_SETTINGS) -> list[Finding]:
    """Run every rule in RULES order; errors first is left to the caller's display."""
    findings: list[Finding] = []
    for _code, rule in RULES:
        findings.extend(rule(text, ctx, settings))
    return findings
