"""Opt-out recognition (policy.md §2): whole-message words, opt-in words, review phrases."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dmtool.optout import (
    Match,
    classify,
    classify_detail,
    matched_word,
    optin_words,
    optout_words,
    review_phrases,
)
from dmtool.textnorm import fold

POLICY_OPTOUT_WORDS = [
    "stop",
    "stopall",
    "unsubscribe",
    "cancel",
    "end",
    "quit",
    "optout",
    "opt out",
    "revoke",
    "停止",
    "配信停止",
    "配信解除",
    "受信拒否",
    "ストップ",
]
POLICY_OPTIN_WORDS = ["start", "unstop", "yes", "再開", "配信再開"]


def test_data_files_hold_every_policy_word() -> None:
    assert set(POLICY_OPTOUT_WORDS) <= set(optout_words())
    assert set(POLICY_OPTIN_WORDS) <= set(optin_words())
    assert review_phrases()


@pytest.mark.parametrize("word", POLICY_OPTOUT_WORDS)
def test_each_policy_word_opts_out(word: str) -> None:
    assert classify(word) == "optout"


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "Stop.",
        "stop!!!",
        "ＳＴＯＰ",
        "ｓｔｏｐ！",
        "🛑 STOP 🛑",
        "“Stop.”",
        "stop ❤️",
        "\n\tstop\n",
        "opt-out",
        "Opt Out",
        "OPTOUT",
        "opt‐out",  # U+2010 hyphen
        "Unsubscribe.",
        "STOP STOP",
        "stop. stop!",
        "配信停止。",
        "　停止　",
        "ｽﾄｯﾌﾟ",
        "ストップ！！",
        "ｓｔｏｐａｌｌ",
    ],
)
def test_variants_opt_out(text: str) -> None:
    assert classify(text) == "optout"


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("STOP!", "stop"),
        ("Opt-Out", "optout"),
        ("配信停止", "配信停止"),
        ("START", "start"),
        ("Please stop messaging me", "please stop"),
    ],
)
def test_matched_word_reports_the_list_entry(text: str, word: str) -> None:
    assert matched_word(text) == word


def test_classify_detail_returns_kind_and_word() -> None:
    assert classify_detail("ｓｔｏｐ") == Match("optout", "stop")
    assert classify_detail("just a normal message") is None
    assert matched_word("just a normal message") is None


@pytest.mark.parametrize(
    "text",
    ["start", "START!", "Unstop", "yes", "Yes.", "再開", "配信再開", "ｓｔａｒｔ", "👍 yes"],
)
def test_optin_words(text: str) -> None:
    assert classify(text) == "optin"


@pytest.mark.parametrize(
    "text",
    [
        "please stop messaging me",
        "Please STOP messaging me!",
        "don't dm me",
        "Don’t DM me again",  # curly apostrophe
        "dont DM me",
        "do not message me",
        "I'm not interested, thanks",
        "unsubscribe me",
        "Please remove me from your list",
        "how do I opt-out of these?",
        "leave me alone",
        "stop sending me these",
        "もう連絡しないでください",
        "すみません、送らないでください。",
        "連絡不要です",
        "DMは不要です、DM不要",
        "興味ありません",
    ],
)
def test_likely_requests_to_stop_go_to_review(text: str) -> None:
    assert classify(text) == "review"


@pytest.mark.parametrize(
    "text",
    [
        "I can't stop smiling",
        "I can’t stop smiling",
        "don't end the fun",
        "that was the end of it",
        "stopwatch",
        "the weekend was great",
        "Can we start a project together?",
        "yes, I'd love to",
        "see you at the end of the week",
        "I had to cancel my flight",
        "quite interesting",
        "this is interesting",
        "お問い合わせありがとうございます",
        "停止ボタンを押しました",  # "I pressed the stop button"
        "",
        "   ",
        "🙂",
    ],
)
def test_ordinary_messages_are_not_classified(text: str) -> None:
    assert classify(text) is None


# --- properties -------------------------------------------------------------------


def _surrounding_char(ch: str) -> bool:
    """Chars that stay punctuation/symbol/space/control after NFKC + casefold."""
    return all(unicodedata.category(c)[0] in "PSZC" for c in fold(ch))


_EMOJI = ["🛑", "❤️", "👋🏽", "🙏", "😡", "✋", "⛔", "🙅‍♀️", "1️⃣", "🇯🇵", "‼️", "⚠️"]
_surround = st.lists(
    st.one_of(
        st.characters(categories=["P", "S", "Z", "Cc", "Cf"]).filter(_surrounding_char),
        st.sampled_from(_EMOJI),
        st.sampled_from([" ", "\u3000", "\n", "\t", "!", "！", "。", "…", "?"]),
    ),
    max_size=6,
).map("".join)


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@st.composite
def _dressed_word(draw: st.DrawFn, words: list[str]) -> tuple[str, str]:
    word = draw(st.sampled_from(words))
    cased = "".join(c.upper() if draw(st.booleans()) else c.lower() for c in word)
    if draw(st.booleans()):
        cased = _full_width(cased)
    return word, draw(_surround) + cased + draw(_surround)


@given(_dressed_word(POLICY_OPTOUT_WORDS))
def test_any_casing_width_and_surroundings_still_opt_out(case: tuple[str, str]) -> None:
    _word, text = case
    assert classify(text) == "optout", text


@given(_dressed_word(POLICY_OPTIN_WORDS))
def test_any_casing_width_and_surroundings_still_opt_in(case: tuple[str, str]) -> None:
    _word, text = case
    assert classify(text) == "optin", text


_ORDINARY = [
    "i",
    "can't",
    "smiling",
    "the",
    "fun",
    "was",
    "of",
    "it",
    "that",
    "we",
    "never",
    "want",
    "to",
    "game",
    "party",
    "tonight",
    "great",
    "news",
    "楽しい",
    "会議",
]


@given(
    st.lists(st.sampled_from(_ORDINARY), min_size=1, max_size=6),
    st.sampled_from(POLICY_OPTOUT_WORDS),
    st.integers(min_value=0, max_value=6),
)
def test_optout_word_inside_an_ordinary_sentence_does_not_opt_out(
    words: list[str], optout_word: str, position: int
) -> None:
    sentence = [*words]
    sentence.insert(min(position, len(sentence)), optout_word)
    assert classify(" ".join(sentence)) != "optout"


@pytest.mark.parametrize("text", ["Stop, please", "STOP,please", "Stop it", "I said STOP",
                                  "停止して", "やめてください"])
def test_short_clear_requests_go_to_review(text: str) -> None:
    # Found in review: these read as a request to stop but are not the bare word.
    assert classify(text) == "review"


@pytest.mark.parametrize("text", ["don't stop now, this is great", "Stop by the booth tomorrow?"])
def test_ordinary_uses_of_stop_stay_ordinary(text: str) -> None:
    assert classify(text) is None
