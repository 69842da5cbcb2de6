"""Draft lint (policy.md §5): one table per rule, English and Japanese."""

from __future__ import annotations

import pytest

from dmtool.lint import (
    RULES,
    Finding,
    LintContext,
    LintSettings,
    find_links,
    lint,
    promo_score,
)

FIRST = LintContext(first_contact=True, name="Alice Smith", handle="alice", sender_names=("Bob",))
REPLY = LintContext(first_contact=False, name="Alice Smith", handle="alice")
FIRST_JA = LintContext(first_contact=True, name="山田 花子", handle="hanako", sender_names=("佐藤",))
# A first message that is personal, so L012 stays out of the way of other rules.
INTRO = "Hi Alice, I'm Bob. "


def codes(text: str, ctx: LintContext = REPLY, settings: LintSettings | None = None) -> list[str]:
    findings = lint(text, ctx) if settings is None else lint(text, ctx, settings)
    return [f.code for f in findings]


def only(text: str, code: str, ctx: LintContext = REPLY) -> Finding:
    found = [f for f in lint(text, ctx) if f.code == code]
    assert len(found) == 1, (text, lint(text, ctx))
    return found[0]


def test_rules_table_lists_every_code_once() -> None:
    assert [code for code, _ in RULES] == ["L001", "L002", "L003", "L004", "L010", "L011", "L012"]


def test_finding_is_frozen_and_serialises() -> None:
    finding = Finding("L002", "error", "Write the message: the draft is empty.")
    assert finding.to_dict() == {
        "code": "L002",
        "severity": "error",
        "message": "Write the message: the draft is empty.",
    }
    with pytest.raises(AttributeError):
        finding.code = "L001"  # type: ignore[misc]


def test_clean_messages_have_no_findings() -> None:
    assert lint("Thanks for the quick reply, see you Friday.", REPLY) == []
    assert lint("Hi Alice, I'm Bob from Acme; loved your talk on Rust tooling.", FIRST) == []
    assert lint("山田さん、はじめまして。佐藤と申します。ご講演とても良かったです。", FIRST_JA) == []


# --- L001 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Hi {name}, thanks!",
        "Hi { first_name }, thanks!",
        "Hi {{first_name}}, thanks!",
        "Dear [NAME], thanks!",
        "Dear [FIRST NAME], thanks!",
        "Hello <<name>>!",
        "Hi %NAME%, thanks",
        "Hi ｛ｎａｍｅ｝",  # full-width braces
        "【名前】様、こんにちは",
        "【会社名】の皆様へ",
        "〇〇様、お世話になっております",
        "［名前］さん、こんにちは",
    ],
)
def test_l001_unfilled_placeholder(text: str) -> None:
    finding = only(text, "L001")
    assert finding.severity == "error"
    assert finding.message.startswith("Fill in or remove")


@pytest.mark.parametrize(
    "text",
    [
        "【お知らせ】新しい記事を書きました",  # a heading, not a placeholder
        "【有名店】に行きました",
        "Option [a] or [b]?",
        "I <3 this",
        "Use a dict like d[key]",
    ],
)
def test_l001_ordinary_brackets_pass(text: str) -> None:
    assert "L001" not in codes(text)


def test_l001_names_the_placeholder() -> None:
    assert '"{name}"' in only("Hi {name}", "L001").message


# --- L002 -----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_l002_empty(text: str) -> None:
    finding = only(text, "L002")
    assert finding.severity == "error"
    assert "empty" in finding.message


def test_l002_length_boundary() -> None:
    assert "L002" not in codes("x" * 10_000)
    finding = only("x" * 10_001, "L002")
    assert finding.severity == "error"
    assert "10,000" in finding.message and "10,001" in finding.message


def test_l002_counts_code_points() -> None:
    assert "L002" not in codes("あ" * 10_000)
    assert "L002" in codes("あ" * 10_001)


# --- L003 / L004 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "See bit.ly/3abc for details",
        "See https://bit.ly/3abc",
        "See http://t.co/xyz",
        "Here: https://tinyurl.com/y7x8",
        "www.tinyurl.com/abc",
        "HTTPS://BIT.LY/ABC",
        "詳細はbit.ly/xyzへ",
        "こちら→https://amzn.to/3xyz",
        "lnkd.in/abc and rb.gy/x",
        "https://ｂｉｔ.ｌｙ/ａｂｃ",  # full-width
    ],
)
def test_l003_shortener(text: str) -> None:
    finding = only(text, "L003")
    assert finding.severity == "error"
    assert finding.message.startswith("Replace the shortened link")


@pytest.mark.parametrize(
    "text",
    [
        "https://example.com/page",
        "our docs: docs.python.org/3/",
        "email me at bob@bit.ly",  # an address, not a link
        "https://notbit.ly.example.com/",
    ],
)
def test_l003_full_links_pass(text: str) -> None:
    assert "L003" not in codes(text)


@pytest.mark.parametrize(
    "text",
    [
        INTRO + "Details: https://example.com/page",
        INTRO + "see example.com",
        INTRO + "see www.example.org.",
        INTRO + "http://192.168.0.1/admin",
        "山田さん、佐藤と申します。詳しくはexample.co.jp/aboutへ",
    ],
)
def test_l004_link_in_first_contact(text: str) -> None:
    ctx = FIRST_JA if text.startswith("山田") else FIRST
    finding = only(text, "L004", ctx)
    assert finding.severity == "error"
    assert "first messages must not contain links; share it after they reply" in finding.message


def test_l004_links_are_fine_after_they_wrote() -> None:
    assert "L004" not in codes("Details: https://example.com/page", REPLY)


@pytest.mark.parametrize(
    "text",
    [
        INTRO + "e.g. this works",
        INTRO + "I use node.js daily",
        INTRO + "I saw it.It was great",
        INTRO + "mail me at bob@example.com",
        INTRO + "version 3.11 is out",
    ],
)
def test_l004_things_that_are_not_links(text: str) -> None:
    assert "L004" not in codes(text, FIRST)


def test_find_links_reports_hosts() -> None:
    assert find_links("a https://www.Example.com/x, b bit.ly/y.") == [
        ("https://www.Example.com/x", "example.com"),
        ("bit.ly/y", "bit.ly"),
    ]


# --- L010 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "severity"),
    [
        ("Buy now while it lasts", "warning"),  # 2.0
        ("Limited-time offer on the new plan", "warning"),  # one phrase, counted once
        ("Check the discount", "warning"),  # 1.0, at the warning threshold
        ("BUY NOW: limited time, 50% off", "error"),  # 2 + 1.5 + 1.5
        ("Click here to buy now", "error"),  # 2 + 2
        ("期間限定のご案内です", "warning"),  # 1.5
        ("今すぐ購入！期間限定の割引", "error"),  # 2 + 1.5 + 1
        ("ｂｕｙ　ｎｏｗ", "warning"),  # full-width
        ("送料無料・最安値", "error"),  # 1.5 + 1.5
    ],
)
def test_l010_promotional_language(text: str, severity: str) -> None:
    finding = only(text, "L010")
    assert finding.severity == severity
    assert finding.message.startswith("Tone down the sales language")


@pytest.mark.parametrize(
    "text",
    [
        "Feel free to ask anything",
        "We sell wholesale to shops",  # "sale" inside a word
        "Our sales team will call",
        "bonus question: how are you?",  # 0.5, below the warning threshold
        "お問い合わせありがとうございます",
    ],
)
def test_l010_ordinary_language_passes(text: str) -> None:
    assert "L010" not in codes(text)


@pytest.mark.parametrize(
    "text", [INTRO + "Want a discount?", "山田さん、佐藤と申します。無料でお試しいただけます"]
)
def test_l010_any_finding_blocks_a_first_contact(text: str) -> None:
    ctx = FIRST_JA if text.startswith("山田") else FIRST
    finding = only(text, "L010", ctx)
    assert finding.severity == "error"
    assert "a first message must not sell" in finding.message


def test_l010_thresholds_come_from_settings() -> None:
    strict = LintSettings(promo_warn_score=0.5, promo_error_score=1.0)
    assert [f.severity for f in lint("bonus question", REPLY, strict)] == ["warning"]
    assert [f.severity for f in lint("a discount", REPLY, strict)] == ["error"]
    lax = LintSettings(promo_warn_score=10, promo_error_score=20)
    assert "L010" not in codes("Buy now, limited time, 50% off", settings=lax)


def test_promo_score_counts_each_phrase_once_longest_first() -> None:
    score, phrases = promo_score("limited time offer! limited time offer! discount code")
    assert phrases == ["limited time offer", "discount code"]
    assert score == pytest.approx(3.5)


# --- L011 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "THIS IS AMAZING NEWS FOR YOU",
        "Great talk!!!",
        "What???",
        "Really?!?",
        "すごいです！！！",
        "本当ですか？？？",
        "ＴＨＩＳ ＩＳ ＡＭＡＺＩＮＧ ＮＥＷＳ",
    ],
)
def test_l011_shouting(text: str) -> None:
    finding = only(text, "L011")
    assert finding.severity == "warning"
    assert finding.message.startswith("Don't shout")


@pytest.mark.parametrize(
    "text",
    [
        "Great talk!",
        "Really?!",
        "OK THANKS",  # too few letters to judge
        "The NASA and ESA teams met in the USA",
        "Wait... really",
        "ありがとうございます！",
    ],
)
def test_l011_normal_text_passes(text: str) -> None:
    assert "L011" not in codes(text)


def test_l011_threshold_from_settings() -> None:
    settings = LintSettings(shouting_min_letters=2)
    assert "L011" in codes("OK THANKS", settings=settings)


# --- L012 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ctx", "missing"),
    [
        ("Hello there, loved your talk.", FIRST, ["greet Alice Smith", "say who you are"]),
        ("Hi Alice, loved your talk.", FIRST, ["say who you are"]),
        ("I'm Bob, loved your talk.", FIRST, ["greet Alice Smith"]),
        ("はじめまして、ご講演よかった。", FIRST_JA, ["greet 山田 花子", "say who you are"]),
        ("Hi Alicesmith, I'm Bob", FIRST, ["greet Alice Smith"]),  # not the name as a word
    ],
)
def test_l012_first_contact_must_be_personal(text: str, ctx: LintContext, missing: list[str]) -> None:
    finding = only(text, "L012", ctx)
    assert finding.severity == "warning"
    assert finding.message.startswith("Make it personal")
    for part in missing:
        assert part in finding.message
    if len(missing) == 1:
        other = "say who you are" if "greet" in missing[0] else "greet"
        assert other not in finding.message


@pytest.mark.parametrize(
    ("text", "ctx"),
    [
        ("Hi Alice, I'm Bob from Acme.", FIRST),
        ("Hi @ALICE, this is Bob.", FIRST),
        ("hi alice, my name is Bob", FIRST),
        ("Smith-san, Bob here from Acme", FIRST),
        ("Hi Alice, I’m Bob", FIRST),  # curly apostrophe
        ("Alice — Bob again, quick question", FIRST),  # sender_names
        ("山田さん、佐藤と申します。", FIRST_JA),
        ("@hanako さん、はじめまして。佐藤です。", FIRST_JA),
        ("花子さん、はじめまして、佐藤です", FIRST_JA),
    ],
)
def test_l012_personal_first_contact_passes(text: str, ctx: LintContext) -> None:
    assert "L012" not in codes(text, ctx)


def test_l012_only_for_first_contact() -> None:
    assert "L012" not in codes("Hello there", REPLY)


def test_l012_without_name_or_handle_asks_to_greet_the_person() -> None:
    ctx = LintContext(first_contact=True, name=None, handle=None)
    assert "greet the person" in only("I'm Bob from Acme", "L012", ctx).message


# --- every message says what to change -----------------------------------------------------


def test_every_finding_says_what_to_change() -> None:
    samples = [
        ("Hi {name}", REPLY),
        ("", REPLY),
        ("bit.ly/x", REPLY),
        ("https://example.com", FIRST),
        ("buy now", REPLY),
        ("WOW!!!", REPLY),
        ("hello", FIRST),
    ]
    verbs: tuple[str, ...] = ("Fill in", "Write", "Shorten", "Replace", "Remove", "Tone down")
    verbs += ("Take out", "Don't", "Make")
    seen = set()
    for text, ctx in samples:
        for finding in lint(text, ctx):
            seen.add(finding.code)
            assert finding.message.startswith(verbs), finding
    assert seen == {code for code, _ in RULES}
