"""Normalisation and similarity: the ground every opt-out and duplicate check stands on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dmtool.textnorm import (
    SimilarityProbe,
    data_lines,
    match_form,
    normalise,
    phrase_pattern,
    similar_at_least,
    similarity,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("STOP", "stop"),
        ("ＳＴＯＰ", "stop"),  # full-width
        ("  Stop.  ", "stop"),
        ("🛑 stop 🛑", "stop"),
        ("❤️stop❤️", "stop"),  # emoji with variation selector
        ("stop\ufe0f", "stop"),  # a stray variation selector after a letter
        ("👋🏽 hi", "hi"),  # skin-tone modifier goes with the emoji
        ("“Stop!”", "stop"),
        ("\u200bstop\u200b", "stop"),  # zero-width space (Cf)
        ("hello   \n\t world", "hello world"),
        ("ｽﾄｯﾌﾟ", "ストップ"),  # half-width katakana
        ("　配信停止。", "配信停止"),  # ideographic space, Japanese full stop
        ("Straße", "strasse"),  # casefold, not lower
        ("café", "café"),  # final letter with its accent is kept
        ("cafe\u0301!", "café"),  # combining accent on the last letter is kept
        ("!!!", ""),
        ("", ""),
        ("don't stop", "don't stop"),  # inner punctuation stays
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@given(st.text())
def test_normalise_is_idempotent(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once


@given(st.text())
def test_normalise_has_no_edge_space_or_double_space(text: str) -> None:
    result = normalise(text)
    assert result == result.strip()
    assert "  " not in result


def test_match_form_unifies_apostrophes_and_dashes() -> None:
    assert match_form("Don’t DM me") == match_form("don't dm me") == "dont dm me"
    assert match_form("opt-out") == match_form("opt out") == "opt out"


def test_phrase_pattern_respects_latin_word_boundaries() -> None:
    pattern = phrase_pattern(["sale", "限定"])
    assert pattern.search(match_form("big sale today"))
    assert not pattern.search(match_form("wholesale prices"))
    assert not pattern.search(match_form("sales team"))
    assert pattern.search(match_form("期間限定です"))  # Japanese: substring


def test_phrase_pattern_prefers_longer_phrase() -> None:
    pattern = phrase_pattern(["limited time", "limited time offer"])
    match = pattern.search("a limited time offer")
    assert match is not None and match.group(0) == "limited time offer"


def test_phrase_pattern_with_no_phrases_matches_nothing() -> None:
    assert phrase_pattern([]).search("anything") is None


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("Hello there", "hello there!!", 1.0),  # equal after normalisation
        ("abcd", "abcx", 0.75),
        ("abcd", "wxyz", 0.0),
        ("", "", 1.0),
    ],
)
def test_similarity(a: str, b: str, expected: float) -> None:
    assert similarity(a, b) == pytest.approx(expected)


def test_similarity_of_identical_long_texts_is_one() -> None:
    # difflib's autojunk would make long identical-ish texts look different.
    text = "we would love to have you on the show " * 20
    assert similarity(text, text + "x") > 0.99


@given(st.text(max_size=60), st.text(max_size=60), st.floats(0, 1))
def test_similar_at_least_agrees_with_similarity(a: str, b: str, threshold: float) -> None:
    assert similar_at_least(a, b, threshold) == (similarity(a, b) >= threshold)


@given(
    st.text(alphabet="ab c", max_size=40),
    st.text(alphabet="ab c", max_size=40),
    st.sampled_from([0.5, 0.8, 0.9, 0.95]),
)
def test_similarity_shortcuts_never_change_the_answer(a: str, b: str, threshold: float) -> None:
    # A small alphabet makes near-threshold pairs common, so the q-gram bound is exercised.
    assert similar_at_least(a, b, threshold) == (similarity(a, b) >= threshold)


def test_similarity_probe_reuses_one_text() -> None:
    probe = SimilarityProbe("we loved your talk on rust tooling")
    assert probe.at_least("We loved your talk on Rust tooling!", 1.0)
    assert probe.at_least("we loved your talk on rust tools", 0.9)
    assert not probe.at_least("completely different words here", 0.5)


def test_data_lines_skip_comments_and_blanks() -> None:
    lines = data_lines("optout_words.txt")
    assert "stop" in lines
    assert not any(line.startswith("#") or not line.strip() for line in lines)
