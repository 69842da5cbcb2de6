"""The `[policy]` and `[lint]` settings: their fields, defaults, help texts
and ranges.

Apart from policy.py and lint.py so that reading config.toml (every command
does) imports neither the rules nor their word lists, only these records.
Pure: no clock, file, store or network.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from dmtool.record import Record

__all__ = [
    "BOUNDS",
    "CEILINGS",
    "LINT_HELP",
    "POLICY_HELP",
    "LintSettings",
    "PolicySettings",
    "validate_settings",
]

CEILINGS: dict[str, int] = {"max_unanswered": 3, "daily_sends": 100, "daily_first_contacts": 20}


class PolicySettings(Record):
    """`[policy]` settings; POLICY_HELP says what each is (the config command shows it)."""

    __slots__ = ("consent_days", "max_unanswered", "daily_sends", "daily_first_contacts",
                 "similarity_threshold", "similarity_min_contacts")
    consent_days: int
    max_unanswered: int
    daily_sends: int
    daily_first_contacts: int
    similarity_threshold: float
    similarity_min_contacts: int

    def __init__(self, consent_days: int = 90, max_unanswered: int = 2, daily_sends: int = 20,
                 daily_first_contacts: int = 5, similarity_threshold: float = 0.9,
                 similarity_min_contacts: int = 2) -> None:
        self.consent_days = consent_days
        self.max_unanswered = max_unanswered
        self.daily_sends = daily_sends
        self.daily_first_contacts = daily_first_contacts
        self.similarity_threshold = similarity_threshold
        self.similarity_min_contacts = similarity_min_contacts

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> PolicySettings:
        """Build from a `[policy]` table; ValueError listing every bad key."""
        problems = validate_settings(values)
        if problems:
            raise ValueError("; ".join(problems))
        return cls(**values)  # type: ignore[arg-type]  # types checked above


POLICY_HELP: dict[str, str] = {
    "consent_days": "days of silence after which consent to DM expires",
    "max_unanswered": "DMs in a row without a reply (ceiling 3)",
    "daily_sends": "DMs in any 24 hours (ceiling 100)",
    "daily_first_contacts": "first messages to new people in any 24 hours (ceiling 20)",
    "similarity_threshold": "share of text in common that makes a DM a copy of others (0-1)",
    "similarity_min_contacts": "other people who got a similar DM before it counts as mass DM",
}


# Per setting: accepted types, minimum, maximum. Every setting has both (config
# checks them when a value is set or loaded): consent_days of a billion days
# once overflowed the date arithmetic of every later check.
BOUNDS: dict[str, tuple[tuple[type, ...], float, float]] = {
    "consent_days": ((int,), 1, 3650),
    "max_unanswered": ((int,), 0, CEILINGS["max_unanswered"]),
    "daily_sends": ((int,), 0, CEILINGS["daily_sends"]),
    "daily_first_contacts": ((int,), 0, CEILINGS["daily_first_contacts"]),
    "similarity_threshold": ((int, float), 0, 1),
    "similarity_min_contacts": ((int,), 1, 1000),
}


def validate_settings(values: Mapping[str, object]) -> list[str]:
    """Problems with `[policy]` values, one message per bad key (empty = fine).

    Values above a ceiling are refused rather than clamped, so nobody believes
    a limit is in force that is not.
    """
    known = set(PolicySettings.__slots__)
    problems = []
    for key, value in values.items():
        if key not in known:
            problems.append(f"policy.{key}: unknown setting (known: {', '.join(sorted(known))})")
            continue
        types, low, high = BOUNDS[key]
        if isinstance(value, bool) or not isinstance(value, types):
            kind = "a whole number" if types == (int,) else "a number"
            problems.append(f"policy.{key} must be {kind}, not {value!r}")
            continue
        assert isinstance(value, (int, float))
        if not math.isfinite(value):
            problems.append(f"policy.{key} must be a finite number, not {value!r}")
        elif value < low:
            problems.append(f"policy.{key} = {value} is below the minimum of {low}")
        elif value > high:
            where = "ceiling" if key in CEILINGS else "maximum"
            problems.append(f"policy.{key} = {value} is above the {where} of {high}; lower it")
    return problems


class LintSettings(Record):
    """`[lint]` settings; LINT_HELP says what each is (the config command shows it)."""

    __slots__ = ("promo_warn_score", "promo_error_score", "shouting_ratio",
                 "shouting_min_letters")
    promo_warn_score: float
    promo_error_score: float
    shouting_ratio: float
    shouting_min_letters: int

    def __init__(self, promo_warn_score: float = 1.0, promo_error_score: float = 3.0,
                 shouting_ratio: float = 0.7, shouting_min_letters: int = 12) -> None:
        self.promo_warn_score = promo_warn_score
        self.promo_error_score = promo_error_score
        self.shouting_ratio = shouting_ratio
        self.shouting_min_letters = shouting_min_letters


LINT_HELP: dict[str, str] = {
    "promo_warn_score": "promotional-language score that gives a warning (L010)",
    "promo_error_score": "promotional-language score that blocks the send (L010)",
    "shouting_ratio": "share of capital letters that counts as shouting (L011)",
    "shouting_min_letters": "letters needed before capitals count as shouting (L011)",
}
