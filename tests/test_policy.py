"""The consent gate (policy.md §1-4, §6): every code, its boundary, and autoack."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dmtool.lint import Finding, LintContext, lint
from dmtool.policy import (
    CEILINGS,
    ContactSnapshot,
    Decision,
    Evidence,
    Msg,
    PolicySettings,
    Reason,
    Send,
    decide,
    decide_autoack,
    validate_settings,
)
from dmtool.textnorm import similarity

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
DEFAULTS = PolicySettings()
TEXT = "Thanks for the reply, Alice. Does Tuesday work for a call?"
AUTOACK = "Thanks for your message! We'll get back to you within a day."


def ago(days: float = 0, hours: float = 0) -> datetime:
    return NOW - timedelta(days=days, hours=hours)


def dm_in(at: datetime, text: str = "hi, can you help me?") -> Msg:
    return Msg(at, "in", text)


def dm_out(at: datetime, text: str = "sure, happy to help") -> Msg:
    return Msg(at, "out", text)


def ev(kind: str, at: datetime, text: str | None = "they asked me to DM them") -> Evidence:
    return Evidence(kind, at, ref=f"{kind}-{at.isoformat()}", text=text)


def contact(**changes: Any) -> ContactSnapshot:
    """A contact who first DMed you a month ago and again yesterday: all allowed."""
    base = ContactSnapshot(
        user_id="u1",
        handle="alice",
        name="Alice",
        evidence=(ev("inbound_dm", ago(30), None),),
        messages=(dm_in(ago(1)),),
    )
    return base._replace(**changes)


def stranger(**changes: Any) -> ContactSnapshot:
    """Never DMed you; a public exchange two days ago (a first contact)."""
    base = ContactSnapshot(
        user_id="u9",
        handle="bea",
        name="Bea",
        evidence=(ev("public_exchange", ago(2), "reply thread"),),
    )
    return base._replace(**changes)


def sends(n: int, at: datetime, *, first: bool = False, user: str = "other") -> list[Send]:
    """n sends to distinct other contacts at `at`, with distinct texts."""
    return [Send(at, f"{user}{i}", f"message number {i} about topic {i * 7}", first) for i in range(n)]


def run(
    c: ContactSnapshot,
    text: str | None = TEXT,
    recent: Sequence[Send] = (),
    settings: PolicySettings = DEFAULTS,
    **kwargs: Any,
) -> Decision:
    return decide(c, text, recent, settings, NOW, **kwargs)


def codes(decision: Decision) -> list[str]:
    return [r.code for r in decision.blocking]


def reason(decision: Decision, code: str) -> Reason:
    found = [r for r in decision.reasons if r.code == code]
    assert len(found) == 1, decision.reasons
    return found[0]


# --- baseline ---------------------------------------------------------------------------


def test_contact_who_wrote_yesterday_may_be_answered() -> None:
    decision = run(contact())
    assert decision.allowed
    assert decision.reasons == ()
    assert not decision.first_contact
    assert not decision.temporary


def test_public_exchange_allows_a_first_contact() -> None:
    decision = run(stranger())
    assert decision.allowed
    assert decision.first_contact
    assert [e.kind for e in decision.evidence] == ["public_exchange"]


@pytest.mark.parametrize(
    ("c", "first"),
    [
        (contact(), False),
        (contact(evidence=()), False),  # an inbound message alone
        (contact(messages=()), False),  # inbound_dm evidence alone (archive)
        (stranger(), True),
        (stranger(evidence=(ev("request", ago(1)),)), True),
        (stranger(messages=(dm_out(ago(1)),)), True),  # you wrote, they never did
    ],
)
def test_first_contact_means_they_never_dmed_you(c: ContactSnapshot, first: bool) -> None:
    assert run(c, None).first_contact is first


# --- one table: each code, reached ---------------------------------------------------------

CODE_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("blocked", {"c": contact(blocked=True)}, "E_BLOCKED"),
    ("opted out", {"c": contact(opted_out_at=ago(3), opt_out_words="STOP")}, "E_OPTED_OUT"),
    ("review", {"c": contact(optout_review="please stop messaging me")}, "E_OPTOUT_REVIEW"),
    ("dm closed", {"c": contact(dm_closed_at=ago(0, 2))}, "E_DM_CLOSED"),
    ("no consent", {"c": stranger(evidence=())}, "E_NO_CONSENT"),
    ("mention only", {"c": stranger(evidence=(ev("mention", ago(1)),))}, "E_MENTION_ONLY"),
    ("expired", {"c": contact(messages=(dm_in(ago(120)),), evidence=())}, "E_CONSENT_EXPIRED"),
    (
        "await reply",
        {"c": contact(messages=(dm_in(ago(3)), dm_out(ago(2)), dm_out(ago(1))))},
        "E_AWAIT_REPLY",
    ),
    ("daily cap", {"recent": sends(20, ago(0, 1))}, "E_DAILY_CAP"),
    (
        "first contact cap",
        {"c": stranger(), "recent": sends(5, ago(0, 1), first=True)},
        "E_FIRST_CONTACT_CAP",
    ),
    (
        "duplicate",
        {"c": contact(messages=(dm_in(ago(1)), dm_out(ago(0, 1), TEXT)))},
        "E_DUPLICATE",
    ),
    (
        "lint",
        {"findings": [Finding("L001", "error", "Fill in or remove the placeholder.")]},
        "E_LINT",
    ),
    ("rate limited", {"rate_limited_until": NOW + timedelta(minutes=5)}, "E_RATE_LIMITED"),
]


@pytest.mark.parametrize(("case", "kwargs", "code"), CODE_CASES, ids=[c[0] for c in CODE_CASES])
def test_each_code_is_reached_alone(case: str, kwargs: dict[str, Any], code: str) -> None:
    kwargs = dict(kwargs)
    decision = run(kwargs.pop("c", contact()), **kwargs)
    assert codes(decision) == [code]
    assert not decision.allowed
    message = reason(decision, code).message
    assert message and message[-1] in ".`"  # a full sentence


def test_all_reasons_are_returned_not_just_the_first() -> None:
    c = stranger(
        evidence=(ev("mention", ago(1)),),
        blocked=True,
        opted_out_at=ago(2),
        opt_out_words="stop",
        optout_review="not interested",
        dm_closed_at=ago(5),
    )
    findings = [Finding("L004", "error", "Remove the link")]
    decision = run(
        c,
        recent=sends(20, ago(0, 1), first=True),
        findings=findings,
        rate_limited_until=NOW + timedelta(hours=1),
    )
    assert codes(decision) == [
        "E_BLOCKED",
        "E_OPTED_OUT",
        "E_OPTOUT_REVIEW",
        "E_DM_CLOSED",
        "E_RATE_LIMITED",
        "E_MENTION_ONLY",
        "E_DAILY_CAP",
        "E_FIRST_CONTACT_CAP",
        "E_LINT",
    ]
    assert not decision.temporary


# --- block list and opt-out -------------------------------------------------------------


def test_opted_out_message_gives_date_words_and_how_it_lifts() -> None:
    decision = run(contact(opted_out_at=datetime(2025, 5, 20, 9, 30, tzinfo=UTC), opt_out_words="STOP!!"))
    message = reason(decision, "E_OPTED_OUT").message
    assert "@alice" in message
    assert "2025-05-20" in message
    assert '"STOP!!"' in message
    assert "Only they can lift it" in message and "START" in message


def test_stop_in_messages_blocks_even_before_the_record_is_updated() -> None:
    c = contact(messages=(dm_in(ago(2), "hi"), dm_in(ago(1), "ＳＴＯＰ")))
    message = reason(run(c), "E_OPTED_OUT").message
    assert ago(1).strftime("%Y-%m-%d") in message and "ＳＴＯＰ" in message


def test_opt_out_words_are_found_in_messages_when_the_record_lacks_them() -> None:
    c = contact(opted_out_at=ago(1), messages=(dm_in(ago(1), "Stop 🛑"),))
    assert '"Stop 🛑"' in reason(run(c), "E_OPTED_OUT").message


def test_a_later_start_in_messages_lifts_a_derived_opt_out() -> None:
    c = contact(messages=(dm_in(ago(2), "stop"), dm_in(ago(1), "START")))
    assert run(c).allowed


def test_recorded_opt_out_stands_until_the_record_is_cleared() -> None:
    # Only the sync, on an inbound START, clears the record; the gate never does.
    c = contact(opted_out_at=ago(3), messages=(dm_in(ago(4)), dm_in(ago(2), "hello again")))
    assert codes(run(c)) == ["E_OPTED_OUT"]


def test_review_message_says_how_to_decide() -> None:
    message = reason(run(contact(optout_review="Don't DM me")), "E_OPTOUT_REVIEW").message
    assert "dmtool contacts optout alice" in message
    assert "--dismiss --reason" in message
    assert "Don't DM me" in message


def test_review_and_commands_use_user_id_without_handle() -> None:
    message = reason(run(contact(handle=None, optout_review="x")), "E_OPTOUT_REVIEW").message
    assert "dmtool contacts optout u1" in message


def test_blocked_message_says_what_to_do() -> None:
    assert "block or suppression list" in reason(run(contact(blocked=True)), "E_BLOCKED").message


# --- DM closed ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("closed_days_ago", "last_inbound_days_ago", "blocked"),
    [(0.5, 1, True), (1, 0.5, False), (3, 3, True)],
)
def test_dm_closed_until_a_later_inbound(
    closed_days_ago: float, last_inbound_days_ago: float, blocked: bool
) -> None:
    c = contact(
        evidence=(),
        messages=(dm_in(ago(last_inbound_days_ago)),),
        dm_closed_at=ago(closed_days_ago),
    )
    assert ("E_DM_CLOSED" in codes(run(c))) is blocked


def test_dm_closed_message_says_it_clears_when_they_write() -> None:
    assert "when they send you a DM" in reason(run(contact(dm_closed_at=ago(0, 1))), "E_DM_CLOSED").message


# --- consent -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("evidence", "code"),
    [
        ((), "E_NO_CONSENT"),
        ((ev("mention", ago(1)),), "E_MENTION_ONLY"),
        ((ev("mention", ago(1)), ev("mention", ago(3))), "E_MENTION_ONLY"),
        ((ev("request", ago(1), None),), "E_NO_CONSENT"),  # manual evidence needs its text
        ((ev("offline", ago(1), "  "),), "E_NO_CONSENT"),
        ((ev("request", ago(1)),), None),
        ((ev("offline", ago(1), "signed up at the booth"),), None),
        ((ev("public_exchange", ago(1)),), None),
        ((ev("mention", ago(1)), ev("public_exchange", ago(1))), None),
    ],
)
def test_consent_basis(evidence: tuple[Evidence, ...], code: str | None) -> None:
    decision = run(stranger(evidence=evidence))
    assert codes(decision) == ([code] if code else [])


def test_mention_only_suggests_answering_publicly() -> None:
    message = reason(run(stranger(evidence=(ev("mention", ago(1)),))), "E_MENTION_ONLY").message
    assert "Reply to them in public and invite them to DM you" in message


def test_no_consent_explains_what_would_give_it() -> None:
    message = reason(run(stranger(evidence=())), "E_NO_CONSENT").message
    assert "Wait for them to DM you" in message
    assert "dmtool contacts engage bea --kind request" in message


@pytest.mark.parametrize(
    ("age", "expired"),
    [
        (timedelta(days=89), False),
        (timedelta(days=90), False),
        (timedelta(days=90, seconds=1), True),
        (timedelta(days=91), True),
    ],
)
@pytest.mark.parametrize("source", ["inbound message", "inbound_dm", "public_exchange", "offline"])
def test_consent_expires_after_consent_days(age: timedelta, expired: bool, source: str) -> None:
    at = NOW - age
    if source == "inbound message":
        c = contact(evidence=(), messages=(dm_in(at),))
    elif source == "inbound_dm":
        c = contact(evidence=(ev("inbound_dm", at),), messages=())
    else:
        c = stranger(evidence=(ev(source, at),))
    assert codes(run(c)) == (["E_CONSENT_EXPIRED"] if expired else [])


def test_latest_engagement_counts() -> None:
    c = contact(messages=(dm_in(ago(200)),), evidence=(ev("public_exchange", ago(10)),))
    assert run(c).allowed


def test_an_unanswered_mention_does_not_renew_consent() -> None:
    c = contact(messages=(dm_in(ago(100)),), evidence=(ev("mention", ago(1)),))
    assert codes(run(c)) == ["E_CONSENT_EXPIRED"]


def test_expired_message_gives_date_and_what_renews_it() -> None:
    c = contact(messages=(dm_in(datetime(2025, 1, 15, tzinfo=UTC)),), evidence=())
    message = reason(run(c), "E_CONSENT_EXPIRED").message
    assert "2025-01-15" in message and "90 days" in message
    assert "A new DM from them or a public exchange" in message


def test_consent_days_setting() -> None:
    c = contact(messages=(dm_in(ago(31)),), evidence=())
    assert codes(run(c, settings=PolicySettings(consent_days=30))) == ["E_CONSENT_EXPIRED"]


# --- pace ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outbound", "max_unanswered", "blocked"),
    [(0, 2, False), (1, 2, False), (2, 2, True), (3, 2, True), (2, 3, False), (3, 3, True)],
)
def test_await_reply(outbound: int, max_unanswered: int, blocked: bool) -> None:
    msgs = (dm_in(ago(5)), *(dm_out(ago(4 - i), f"follow-up {i}") for i in range(outbound)))
    settings = PolicySettings(max_unanswered=max_unanswered)
    assert ("E_AWAIT_REPLY" in codes(run(contact(messages=msgs), settings=settings))) is blocked


def test_a_reply_resets_the_unanswered_count() -> None:
    msgs = (dm_in(ago(5)), dm_out(ago(4)), dm_out(ago(3)), dm_in(ago(2)))
    assert run(contact(messages=msgs)).allowed


def test_await_reply_counts_recent_sends_without_double_counting() -> None:
    # The same two sends appear in the conversation and in dmtool's send log.
    mine = [Send(ago(3), "u1", "one", False), Send(ago(2), "u1", "two", False)]
    msgs = (dm_in(ago(5)), dm_out(ago(3), "one"))
    assert codes(run(contact(messages=msgs), recent=mine)) == ["E_AWAIT_REPLY"]
    one = [Send(ago(3), "u1", "one", False)]
    assert run(contact(messages=msgs), recent=one).allowed


def test_await_reply_message_says_to_wait() -> None:
    msgs = (dm_in(ago(5)), dm_out(ago(4)), dm_out(ago(3), "again"))
    message = reason(run(contact(messages=msgs)), "E_AWAIT_REPLY").message
    assert "2 DMs since their last reply (limit 2)" in message
    assert "Wait for them to answer" in message


@pytest.mark.parametrize(("prior", "allowed"), [(19, True), (20, False), (25, False)])
def test_daily_cap_boundary(prior: int, allowed: bool) -> None:
    decision = run(contact(), recent=sends(prior, ago(0, 2)))
    assert decision.allowed is allowed
    assert ("E_DAILY_CAP" in codes(decision)) is (not allowed)


def test_daily_cap_is_a_rolling_24_hours() -> None:
    old = sends(20, ago(1, 0.01))
    assert run(contact(), recent=old).allowed
    exactly = sends(20, ago(1))
    assert run(contact(), recent=exactly).allowed  # 24h old no longer counts


def test_daily_cap_message_says_when_the_next_send_is_possible() -> None:
    recent = sends(10, ago(0, 10)) + sends(10, ago(0, 5), user="x")
    message = reason(run(contact(), recent=recent), "E_DAILY_CAP").message
    assert "20 DMs in the last 24 hours (limit 20" in message
    assert (ago(0, 10) + timedelta(days=1)).strftime("%Y-%m-%d %H:%M UTC") in message


def test_daily_cap_counts_autoacks_and_every_contact() -> None:
    recent = sends(19, ago(0, 2)) + [Send(ago(0, 1), "u1", AUTOACK, False)]
    assert codes(run(contact(), recent=recent)) == ["E_DAILY_CAP"]


def test_daily_cap_setting() -> None:
    assert not run(contact(), recent=sends(3, ago(0, 1)), settings=PolicySettings(daily_sends=3)).allowed


@pytest.mark.parametrize(("prior", "allowed"), [(4, True), (5, False)])
def test_first_contact_cap_boundary(prior: int, allowed: bool) -> None:
    recent = sends(prior, ago(0, 2), first=True) + sends(5, ago(0, 2), user="reply")
    decision = run(stranger(), recent=recent)
    assert decision.allowed is allowed
    assert ("E_FIRST_CONTACT_CAP" in codes(decision)) is (not allowed)


def test_first_contact_cap_does_not_apply_to_replies() -> None:
    assert run(contact(), recent=sends(5, ago(0, 2), first=True)).allowed


def test_first_contact_cap_message() -> None:
    message = reason(run(stranger(), recent=sends(5, ago(0, 2), first=True)), "E_FIRST_CONTACT_CAP").message
    assert "5 first messages to new people in the last 24 hours (limit 5" in message


# --- duplicates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent_text", "hours_ago", "blocked"),
    [
        (TEXT, 1, True),
        ("  " + TEXT.upper() + " 🙂", 1, True),  # same after normalisation
        (TEXT, 23.9, True),
        (TEXT, 24.1, False),
        ("Something else entirely, nothing alike at all", 1, False),
    ],
)
def test_duplicate_to_same_contact(sent_text: str, hours_ago: float, blocked: bool) -> None:
    via_messages = contact(messages=(dm_in(ago(2)), dm_out(ago(0, hours_ago), sent_text)))
    assert ("E_DUPLICATE" in codes(run(via_messages))) is blocked
    via_sends = [Send(ago(0, hours_ago), "u1", sent_text, False)]
    assert ("E_DUPLICATE" in codes(run(contact(), recent=via_sends))) is blocked


def test_same_text_to_another_contact_is_not_a_same_contact_duplicate() -> None:
    assert run(contact(), recent=[Send(ago(0, 1), "u2", TEXT, False)]).allowed


def test_duplicate_message_says_when_it_is_possible_again() -> None:
    c = contact(messages=(dm_in(ago(2)), dm_out(ago(0, 3), TEXT)))
    message = reason(run(c), "E_DUPLICATE").message
    assert "already sent this same text to @alice" in message
    assert (ago(0, 3) + timedelta(days=1)).strftime("%Y-%m-%d %H:%M") in message


BASE = "hi there, we loved your talk on rust tooling and we wondered if you would join our podcast in august"


def with_substitutions(n: int) -> str:
    """BASE with n letters replaced by distinct marks: SequenceMatcher ratio (100 - n) / 100."""
    step = len(BASE) // n
    chars = list(BASE)
    for i in range(n):
        chars[i * step + step // 2] = "0123456789@"[i]
    return "".join(chars)


def test_similarity_fixtures_have_the_ratios_we_claim() -> None:
    assert len(BASE) == 100
    assert similarity(BASE, with_substitutions(9)) == pytest.approx(0.91)
    assert similarity(BASE, with_substitutions(10)) == pytest.approx(0.90)
    assert similarity(BASE, with_substitutions(11)) == pytest.approx(0.89)


@pytest.mark.parametrize(
    ("substitutions", "other_contacts", "blocked"),
    [
        (9, 2, True),  # 91% similar to texts sent to 2 others
        (10, 2, True),  # exactly 90%
        (11, 2, False),  # 89%
        (9, 1, False),  # only one other contact
        (0, 3, True),  # identical
    ],
)
def test_first_contact_similar_to_mass_messages(
    substitutions: int, other_contacts: int, blocked: bool
) -> None:
    sent = with_substitutions(substitutions) if substitutions else BASE
    recent = [Send(ago(3 + i), f"o{i}", sent, True) for i in range(other_contacts)]
    decision = run(stranger(), BASE, recent)
    assert ("E_DUPLICATE" in codes(decision)) is blocked
    assert "W_SIMILAR" not in [r.code for r in decision.reasons]


def test_similar_sends_to_the_same_other_contact_count_once() -> None:
    recent = [Send(ago(3 + i), "o1", BASE, True) for i in range(3)]
    assert run(stranger(), BASE, recent).allowed


def test_earlier_sends_to_the_same_contact_are_not_other_contacts() -> None:
    recent = [Send(ago(3), "u9", BASE, True), Send(ago(4), "o1", BASE, True)]
    assert run(stranger(), BASE, recent).allowed


def test_similarity_window_is_30_days() -> None:
    recent = [Send(ago(31), "o1", BASE, True), Send(ago(32), "o2", BASE, True)]
    assert run(stranger(), BASE, recent).allowed
    recent = [Send(ago(29), "o1", BASE, True), Send(ago(29), "o2", BASE, True)]
    assert not run(stranger(), BASE, recent).allowed


def test_similar_reply_is_only_a_warning() -> None:
    recent = [Send(ago(3), "o1", BASE, False), Send(ago(4), "o2", with_substitutions(9), False)]
    decision = run(contact(), BASE, recent)
    assert decision.allowed
    warning = reason(decision, "W_SIMILAR")
    assert warning.severity == "warning"
    assert decision.warnings == (warning,)
    assert decision.blocking == ()


def test_mass_message_explains_itself() -> None:
    recent = [Send(ago(3), "o1", BASE, True), Send(ago(4), "o2", BASE, True)]
    message = reason(run(stranger(), BASE, recent), "E_DUPLICATE").message
    assert "at least 90% the same" in message and "2 other people" in message
    assert "Rewrite it for this person" in message


def test_similarity_settings() -> None:
    recent = [Send(ago(3), f"o{i}", with_substitutions(11), True) for i in range(3)]
    assert run(stranger(), BASE, recent).allowed
    looser = PolicySettings(similarity_threshold=0.85)
    assert not run(stranger(), BASE, recent, looser).allowed
    three = PolicySettings(similarity_min_contacts=4)
    same = [Send(ago(3), f"o{i}", BASE, True) for i in range(3)]
    assert run(stranger(), BASE, same, three).allowed


# --- lint findings --------------------------------------------------------------------------


def test_lint_errors_become_reasons_with_their_code() -> None:
    findings = [
        Finding("L001", "error", "Fill in or remove the placeholder."),
        Finding("L003", "error", "Replace the shortened link."),
        Finding("L011", "warning", "Don't shout."),
    ]
    decision = run(contact(), findings=findings)
    assert [r.message for r in decision.blocking] == [
        "L001: Fill in or remove the placeholder.",
        "L003: Replace the shortened link.",
    ]
    assert codes(decision) == ["E_LINT", "E_LINT"]


def test_promotional_warning_blocks_only_a_first_contact() -> None:
    findings = [Finding("L010", "warning", "Tone down the sales language.")]
    assert run(contact(), findings=findings).allowed
    assert codes(run(stranger(), findings=findings)) == ["E_LINT"]


def test_real_lint_output_feeds_the_gate() -> None:
    text = "Hi Bea, I'm Bob. Details at https://example.com"
    findings = lint(text, LintContext(first_contact=True, name="Bea", handle="bea"))
    decision = run(stranger(), text, findings=findings)
    assert codes(decision) == ["E_LINT"]
    assert decision.blocking[0].message.startswith("L004: Remove the link")


# --- check mode: text None ---------------------------------------------------------------------


def test_check_without_text_skips_text_rules() -> None:
    c = contact(messages=(dm_in(ago(2)), dm_out(ago(0, 1), TEXT)))
    findings = [Finding("L002", "error", "Write the message.")]
    assert run(c, None, findings=findings).allowed
    assert codes(run(contact(blocked=True), None)) == ["E_BLOCKED"]
    assert codes(run(contact(), None, sends(20, ago(0, 1)))) == ["E_DAILY_CAP"]


# --- rate limit -----------------------------------------------------------------------------


def test_rate_limit_is_temporary() -> None:
    decision = run(contact(), rate_limited_until=NOW + timedelta(minutes=15))
    assert codes(decision) == ["E_RATE_LIMITED"]
    assert decision.temporary
    assert "2025-06-01 12:15 UTC" in decision.blocking[0].message


def test_rate_limit_over_is_no_reason() -> None:
    assert run(contact(), rate_limited_until=NOW).allowed
    assert run(contact(), rate_limited_until=ago(0, 1)).allowed


def test_temporary_only_when_rate_limit_is_the_only_block() -> None:
    decision = run(contact(blocked=True), rate_limited_until=NOW + timedelta(minutes=1))
    assert not decision.temporary


# --- output shapes ----------------------------------------------------------------------------


def test_decision_to_dict() -> None:
    recent = [Send(ago(3), "o1", BASE, False), Send(ago(4), "o2", BASE, False)]
    decision = run(contact(blocked=True), BASE, recent)
    data = decision.to_dict()
    assert data["allowed"] is False and data["first_contact"] is False and data["temporary"] is False
    assert data["reasons"] == [{"code": "E_BLOCKED", "message": reason(decision, "E_BLOCKED").message}]
    warnings = data["warnings"]
    assert isinstance(warnings, list) and [w["code"] for w in warnings] == ["W_SIMILAR"]
    assert data["evidence"] == [
        {
            "kind": "inbound_dm",
            "at": ago(30).isoformat(),
            "ref": f"inbound_dm-{ago(30).isoformat()}",
            "text": None,
        }
    ]


def test_reason_to_dict() -> None:
    assert Reason("E_X", "msg", "warning").to_dict() == {"code": "E_X", "message": "msg"}


# --- settings --------------------------------------------------------------------------------


def test_defaults_and_ceilings() -> None:
    assert PolicySettings(90, 2, 20, 5, 0.9, 2) == DEFAULTS
    assert CEILINGS == {"max_unanswered": 3, "daily_sends": 100, "daily_first_contacts": 20}
    assert validate_settings(DEFAULTS._asdict()) == []
    assert validate_settings(dict(CEILINGS)) == []


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"max_unanswered": 4}, "max_unanswered"),
        ({"daily_sends": 101}, "daily_sends"),
        ({"daily_first_contacts": 21}, "daily_first_contacts"),
        ({"daily_sends": -1}, "daily_sends"),
        ({"consent_days": -5}, "consent_days"),
        ({"daily_sends": "20"}, "daily_sends"),
        ({"daily_sends": 20.0}, "daily_sends"),
        ({"max_unanswered": True}, "max_unanswered"),
        ({"similarity_threshold": 1.5}, "similarity_threshold"),
        ({"similarity_threshold": "high"}, "similarity_threshold"),
        ({"similarity_min_contacts": 0}, "similarity_min_contacts"),
        ({"daily_send": 5}, "daily_send"),  # typo: unknown key
    ],
)
def test_validate_settings_rejects(values: dict[str, object], key: str) -> None:
    problems = validate_settings(values)
    assert len(problems) == 1 and f"policy.{key}" in problems[0]
    with pytest.raises(ValueError, match=f"policy.{key}"):
        PolicySettings.from_mapping(values)


def test_ceiling_message_names_the_ceiling() -> None:
    assert validate_settings({"daily_sends": 150}) == [
        "policy.daily_sends = 150 is above the ceiling of 100; lower it"
    ]


def test_from_mapping_builds_settings() -> None:
    settings = PolicySettings.from_mapping({"daily_sends": 50, "similarity_threshold": 1})
    assert settings.daily_sends == 50 and settings.similarity_threshold == 1


# --- autoack ---------------------------------------------------------------------------------


def autoack(
    c: ContactSnapshot,
    inbound_at: datetime,
    recent: Sequence[Send] = (),
    findings: Sequence[Finding] = (),
    settings: PolicySettings = DEFAULTS,
    **kwargs: Any,
) -> Decision:
    return decide_autoack(c, inbound_at, recent, settings, AUTOACK, NOW, findings, **kwargs)


def newcomer(*msgs: Msg, **changes: Any) -> ContactSnapshot:
    """Someone whose DM five minutes ago opened the conversation."""
    return ContactSnapshot(user_id="u5", handle="carl", name="Carl",
                           messages=(dm_in(ago(0, 0.08)), *msgs))._replace(**changes)


INBOUND = ago(0, 0.08)


def test_autoack_for_a_new_conversation() -> None:
    decision = autoack(newcomer(), INBOUND)
    assert decision.allowed and decision.reasons == ()
    assert not decision.first_contact


def test_autoack_when_last_dm_was_over_30_days_ago() -> None:
    assert autoack(newcomer(dm_in(ago(31)), dm_out(ago(30, 1))), INBOUND).allowed


@pytest.mark.parametrize(
    "earlier",
    [dm_in(ago(29)), dm_out(ago(10)), dm_out(ago(0, 0.05))],  # the last: already answered
    ids=["their DM 29 days ago", "your DM 10 days ago", "answered already"],
)
def test_no_autoack_in_an_ongoing_conversation(earlier: Msg) -> None:
    assert codes(autoack(newcomer(earlier), INBOUND)) == ["E_AUTOACK_NOT_NEW"]


def test_a_burst_of_inbound_dms_still_gets_one_autoack_for_the_first() -> None:
    assert autoack(newcomer(dm_in(ago(0, 0.07), "second message")), INBOUND).allowed


def test_no_autoack_for_the_second_dm_of_a_burst() -> None:
    c = newcomer(dm_in(ago(0, 0.07), "second message"))
    assert codes(autoack(c, ago(0, 0.07))) == ["E_AUTOACK_NOT_NEW"]


def test_no_autoack_twice_within_24_hours() -> None:
    recent = [Send(ago(0, 20), "u5", AUTOACK, False)]
    decision = autoack(newcomer(), INBOUND, recent)
    assert "E_DUPLICATE" in codes(decision)
    later = [Send(ago(1, 1), "u5", AUTOACK, False)]
    assert "E_DUPLICATE" not in codes(autoack(newcomer(), INBOUND, later))


def test_no_autoack_for_an_old_dm() -> None:
    c = ContactSnapshot(user_id="u5", handle="carl", name="Carl", messages=(dm_in(ago(2)),))
    assert codes(autoack(c, ago(2))) == ["E_AUTOACK_NOT_NEW"]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"opted_out_at": ago(40), "opt_out_words": "stop"}, "E_OPTED_OUT"),
        ({"blocked": True}, "E_BLOCKED"),
        ({"optout_review": "not interested"}, "E_OPTOUT_REVIEW"),
    ],
)
def test_no_autoack_to_opted_out_blocked_or_review(changes: dict[str, Any], code: str) -> None:
    assert codes(autoack(newcomer(**changes), INBOUND)) == [code]


@pytest.mark.parametrize(
    ("text", "code"), [("STOP", "E_OPTED_OUT"), ("please stop messaging me", "E_OPTOUT_REVIEW")]
)
def test_no_autoack_when_the_dm_itself_asks_to_stop(text: str, code: str) -> None:
    c = ContactSnapshot(user_id="u5", handle="carl", name="Carl", messages=(dm_in(INBOUND, text),))
    assert codes(autoack(c, INBOUND)) == [code]


def test_autoack_never_promotional() -> None:
    warning = [Finding("L010", "warning", "Tone down the sales language.")]
    assert codes(autoack(newcomer(), INBOUND, findings=warning)) == ["E_LINT"]
    text = "Thanks! Use code WELCOME for a discount."
    real = lint(text, LintContext(first_contact=False, name=None, handle=None))
    assert [f.code for f in real] == ["L010"] and real[0].severity == "warning"
    assert codes(decide_autoack(newcomer(), INBOUND, (), DEFAULTS, text, NOW, real)) == ["E_LINT"]


def test_autoack_ignores_other_lint_warnings_but_not_errors() -> None:
    assert autoack(newcomer(), INBOUND, findings=[Finding("L011", "warning", "x")]).allowed
    assert codes(autoack(newcomer(), INBOUND, findings=[Finding("L002", "error", "x")])) == ["E_LINT"]


@pytest.mark.parametrize(("prior", "allowed"), [(19, True), (20, False)])
def test_autoack_respects_daily_cap(prior: int, allowed: bool) -> None:
    decision = autoack(newcomer(), INBOUND, sends(prior, ago(0, 2)))
    assert decision.allowed is allowed
    assert ("E_DAILY_CAP" in codes(decision)) is (not allowed)


def test_autoack_respects_rate_limit_and_closed_dms() -> None:
    assert autoack(newcomer(), INBOUND, rate_limited_until=NOW + timedelta(minutes=1)).temporary
    # Their new DM reopens a conversation X had closed.
    assert autoack(newcomer(dm_closed_at=ago(40)), INBOUND).allowed


# --- properties -------------------------------------------------------------------------------

def _snapshot(**fields: Any) -> ContactSnapshot:
    """Only the fields given (the builds() below): the others keep their defaults."""
    return ContactSnapshot(**fields)


_contacts = st.builds(
    _snapshot,
    user_id=st.just("u1"),
    handle=st.sampled_from(["alice", None]),
    name=st.none(),
    evidence=st.lists(
        st.builds(
            Evidence,
            kind=st.sampled_from(["inbound_dm", "public_exchange", "request", "offline", "mention"]),
            at=st.integers(0, 200 * 24).map(lambda h: ago(0, h)),
            ref=st.just("r"),
            text=st.sampled_from([None, "asked for a DM"]),
        ),
        max_size=3,
    ).map(tuple),
    messages=st.lists(
        st.builds(
            Msg,
            at=st.integers(0, 200 * 24).map(lambda h: ago(0, h)),
            direction=st.sampled_from(["in", "out"]),
            text=st.sampled_from(["hi", "thanks", "see you", "ok"]),
        ),
        max_size=4,
    ).map(tuple),
    blocked=st.booleans(),
)


@given(_contacts, st.integers(0, 30))
def test_opted_out_or_blocked_is_never_allowed(c: ContactSnapshot, n_sends: int) -> None:
    opted = c._replace(opted_out_at=ago(1), opt_out_words="stop")
    assert not run(opted, recent=sends(n_sends, ago(0, 1))).allowed
    assert not run(c._replace(blocked=True)).allowed


@given(_contacts)
def test_allowed_is_exactly_no_blocking_reason(c: ContactSnapshot) -> None:
    decision = run(c)
    assert decision.allowed == (decision.blocking == ())
    assert all(r.code.startswith(("E_", "W_")) and r.message for r in decision.reasons)
