"""The consent gate (policy.md §1-4, §6): may this DM be sent, and if not, why.

Pure: `decide` takes a snapshot of one contact, the draft, recent sends, the
settings and `now`, and returns a Decision listing every reason, each with a
stable code and a message that says what would change the answer. It reads
no clock, file, database or network, so `check`, `send` and the audit log all
get the same answer from the same inputs.

All datetimes must be timezone-aware (UTC) and comparable with `now`.

The records are Records (dmtool/record.py), not dataclasses nor NamedTuples,
and never changed once made (_replace makes another): the others generate and
compile code when they are defined, which every local command that prints a
contact's status would pay at start-up (issue 16).
"""


from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from dmtool.optout import classify, optin_words, word_kind
from dmtool.record import Record
from dmtool.settings import BOUNDS, CEILINGS, POLICY_HELP, PolicySettings, validate_settings
from dmtool.textnorm import SimilarityProbe, normalise

if TYPE_CHECKING:  # lint is only a type here; importing it costs start-up time
    from dmtool.lint import Finding

__all__ = [
    "BOUNDS",
    "CEILINGS",
    "COUNTING_KINDS",
    "EVIDENCE_KINDS",
    "MANUAL_KINDS",
    "POLICY_HELP",
    "ContactSnapshot",
    "Decision",
    "Evidence",
    "Msg",
    "PolicySettings",
    "Reason",
    "Send",
    "decide",
    "decide_autoack",
    "horizons",
    "is_first_contact",
    "validate_settings",
]

EVIDENCE_KINDS = frozenset({"inbound_dm", "public_exchange", "request", "offline", "mention"})
# A mention you never answered is not consent: the person did not choose a DM.
COUNTING_KINDS = frozenset({"inbound_dm", "public_exchange", "request", "offline"})
# Recorded by hand: they only count with the text that shows what the person said.
MANUAL_KINDS = frozenset({"request", "offline"})


DAY = timedelta(days=1)
SIMILARITY_WINDOW = timedelta(days=30)
AUTOACK_QUIET = timedelta(days=30)  # a conversation is "new" after 30 silent days
AUTOACK_MAX_AGE = timedelta(days=1)  # don't acknowledge a DM long after it arrived


# --- inputs -----------------------------------------------------------------------


class Evidence(Record):
    """A consent basis (or a mention, which is not one). `ref` is the source id."""

    __slots__ = ("kind", "at", "ref", "text")
    kind: str
    at: datetime
    ref: str
    text: str | None

    def __init__(self, kind: str, at: datetime, ref: str, text: str | None = None) -> None:
        self.kind = kind
        self.at = at
        self.ref = ref
        self.text = text

    @property
    def counts(self) -> bool:
        """Is this a consent basis? Manual evidence needs its text (policy.md §1)."""
        if self.kind in MANUAL_KINDS:
            return bool(self.text and self.text.strip())
        return self.kind in COUNTING_KINDS

    def to_dict(self) -> dict[str, str | None]:
        return {"kind": self.kind, "at": self.at.isoformat(), "ref": self.ref, "text": self.text}


class Msg(Record):
    """One DM in the conversation; "in" = from the contact, "out" = from you."""

    __slots__ = ("at", "direction", "text")
    at: datetime
    direction: Literal["in", "out"]
    text: str

    def __init__(self, at: datetime, direction: Literal["in", "out"], text: str) -> None:
        self.at = at
        self.direction = direction
        self.text = text


class ContactSnapshot(Record):
    __slots__ = ("user_id", "handle", "name", "evidence", "messages", "opted_out_at",
                 "opt_out_words", "opt_out_reason", "optout_review", "blocked", "dm_closed_at",
                 "import_pending")
    user_id: str
    handle: str | None
    name: str | None
    evidence: tuple[Evidence, ...]
    messages: tuple[Msg, ...]
    opted_out_at: datetime | None
    opt_out_words: str | None  # what they wrote, e.g. "STOP"
    opt_out_reason: str | None  # yours, when you recorded it (`contacts optout --reason`)
    optout_review: str | None  # the text that triggered review, until decided
    blocked: bool  # user block list or suppression entry
    dm_closed_at: datetime | None  # X answered 403 to a send
    # An archive import that holds this person stopped before it finished: the
    # archive's path. Their history is partial; the missing part may hold a STOP.
    import_pending: str | None

    def __init__(self, user_id: str, handle: str | None, name: str | None,
                 evidence: tuple[Evidence, ...] = (), messages: tuple[Msg, ...] = (),
                 opted_out_at: datetime | None = None, opt_out_words: str | None = None,
                 opt_out_reason: str | None = None, optout_review: str | None = None,
                 blocked: bool = False, dm_closed_at: datetime | None = None,
                 import_pending: str | None = None) -> None:
        self.user_id = user_id
        self.handle = handle
        self.name = name
        self.evidence = evidence
        self.messages = messages
        self.opted_out_at = opted_out_at
        self.opt_out_words = opt_out_words
        self.opt_out_reason = opt_out_reason
        self.optout_review = optout_review
        self.blocked = blocked
        self.dm_closed_at = dm_closed_at
        self.import_pending = import_pending


class Send(Record):
    """A DM dmtool sent (to anyone, autoacks included), for caps and duplicates."""

    __slots__ = ("at", "user_id", "text", "first_contact")
    at: datetime
    user_id: str
    text: str
    first_contact: bool

    def __init__(self, at: datetime, user_id: str, text: str, first_contact: bool) -> None:
        self.at = at
        self.user_id = user_id
        self.text = text
        self.first_contact = first_contact


# --- outputs ----------------------------------------------------------------------


class Reason(Record):
    __slots__ = ("code", "message", "severity")
    code: str
    message: str
    severity: Literal["block", "warning"]

    def __init__(self, code: str, message: str, severity: Literal["block", "warning"] = "block") -> None:
        self.code = code
        self.message = message
        self.severity = severity

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class Decision(Record):
    __slots__ = ("allowed", "first_contact", "reasons", "evidence")
    allowed: bool
    first_contact: bool
    reasons: tuple[Reason, ...]
    evidence: tuple[Evidence, ...]

    def __init__(self, allowed: bool, first_contact: bool, reasons: tuple[Reason, ...],
                 evidence: tuple[Evidence, ...]) -> None:
        self.allowed = allowed
        self.first_contact = first_contact
        self.reasons = reasons
        self.evidence = evidence

    @property
    def blocking(self) -> tuple[Reason, ...]:
        return tuple(r for r in self.reasons if r.severity == "block")

    @property
    def warnings(self) -> tuple[Reason, ...]:
        return tuple(r for r in self.reasons if r.severity == "warning")

    @property
    def temporary(self) -> bool:
        """True when only X's rate limit stands in the way: retrying later will work."""
        blocking = self.blocking
        return bool(blocking) and all(r.code == "E_RATE_LIMITED" for r in blocking)

    def to_dict(self) -> dict[str, object]:
        return {
            "allowed": self.allowed,
            "first_contact": self.first_contact,
            "temporary": self.temporary,
            "reasons": [r.to_dict() for r in self.blocking],
            "warnings": [r.to_dict() for r in self.warnings],
            "evidence": [e.to_dict() for e in self.evidence],
        }


# --- helpers ----------------------------------------------------------------------


def _who(contact: ContactSnapshot) -> str:
    return f"@{contact.handle}" if contact.handle else f"user {contact.user_id}"


def _arg(contact: ContactSnapshot) -> str:
    return contact.handle or contact.user_id


def _date(at: datetime) -> str:
    return at.strftime("%Y-%m-%d")


def _moment(at: datetime) -> str:
    offset = at.utcoffset()
    zone = "" if offset is None else " UTC" if offset == timedelta(0) else at.strftime(" %z")
    return at.strftime("%Y-%m-%d %H:%M") + zone


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _inbound_times(contact: ContactSnapshot) -> list[datetime]:
    """Every time the contact DMed you: synced messages and inbound_dm evidence."""
    times = [m.at for m in contact.messages if m.direction == "in"]
    times += [e.at for e in contact.evidence if e.kind == "inbound_dm"]
    return times


def horizons(now: datetime, settings: PolicySettings) -> tuple[datetime, ...]:
    """The instants a decision without a text compares a contact's times with,
    besides comparing them with one another: when the consent window starts,
    when the caps' 24 hours start, and now. `contacts list` evaluates the
    contacts whose times lie alike among these once (services/consent.py);
    a rule that reads a time against another instant must add it here."""
    return (now - timedelta(days=settings.consent_days), now - DAY, now)


def is_first_contact(contact: ContactSnapshot) -> bool:
    """A first contact is a send to someone who has never sent you a DM."""
    return not _inbound_times(contact)


def _opt_out(contact: ContactSnapshot) -> tuple[datetime, str | None] | None:
    """When and with what words the contact opted out, or None.

    The record is authoritative; the messages are re-read as a safety net so
    a "STOP" that was synced but not yet applied still stops the send.
    """
    derived: tuple[datetime, str | None] | None = None
    for msg in sorted((m for m in contact.messages if m.direction == "in"), key=lambda m: m.at):
        kind = word_kind(msg.text)  # "review" would change nothing here
        if kind == "optout":
            derived = (msg.at, msg.text)
        elif kind == "optin":
            derived = None
    if contact.opted_out_at is not None:
        words = contact.opt_out_words
        if words is None and derived is not None and derived[0] == contact.opted_out_at:
            words = derived[1]
        return contact.opted_out_at, words
    return derived


def _sends_since(sends: Sequence[Send], since: datetime) -> list[Send]:
    return sorted((s for s in sends if s.at > since), key=lambda s: s.at)


def _cap_reason(code: str, window: list[Send], cap: int, what: tuple[str, str], setting: str) -> Reason:
    """`what` is (one, several): "1 first message", "2 first messages"."""
    # The count drops below the cap once enough of the oldest sends are 24h old.
    index = min(max(len(window) - cap, 0), len(window) - 1) if window else 0
    until = f" The next one is possible after {_moment(window[index].at + DAY)}." if window else ""
    noun = what[0] if len(window) == 1 else what[1]
    return Reason(
        code,
        f"You have sent {len(window)} {noun} in the last 24 hours (limit {cap}, "
        f"setting policy.{setting}).{until}",
    )


def _common_reasons(
    contact: ContactSnapshot,
    now: datetime,
    rate_limited_until: datetime | None,
    *,
    extra_inbound: datetime | None = None,
) -> list[Reason]:
    """Blocks, opt-outs, review, closed DMs: the same for every kind of send."""
    reasons: list[Reason] = []
    who = _who(contact)
    if contact.blocked:
        reasons.append(
            Reason(
                "E_BLOCKED",
                f"{who} is on your block or suppression list, so dmtool will not message them. "
                "Take them off that list first if this is a mistake.",
            )
        )
    opt_out = _opt_out(contact)
    if opt_out is not None:
        at, words = opt_out
        said = f' by writing "{_short(words)}"' if words else ""
        if contact.opt_out_reason:
            said += f' (you recorded it: "{_short(contact.opt_out_reason)}")'
        others = ", ".join(w.upper() if w.isascii() else w for w in optin_words() if w != "start")
        reasons.append(
            Reason(
                "E_OPTED_OUT",
                f"{who} opted out on {_date(at)}{said}. Only they can lift it, by writing "
                f"START to you (or {others}); no dmtool command can.",
            )
        )
    if contact.import_pending is not None:
        import shlex

        again = shlex.quote(contact.import_pending)
        reasons.append(
            Reason(
                "E_IMPORT_INCOMPLETE",
                f"An import of the archive {contact.import_pending} that holds your history with "
                f"{who} stopped before it finished, so dmtool knows only part of it: an opt-out "
                f"may be in the rest. Run `dmtool import archive {again}` again to finish it "
                "(nothing is imported twice), or `dmtool import archive --discard-incomplete` "
                "if that file is gone.",
            )
        )
    if contact.optout_review is not None:
        reasons.append(
            Reason(
                "E_OPTOUT_REVIEW",
                f'{who} wrote "{_short(contact.optout_review)}", which may be a request to stop. '
                f"Decide before writing again: run `dmtool contacts optout {_arg(contact)}` to "
                f"opt them out, or `dmtool contacts optout {_arg(contact)} --dismiss --reason "
                '"..."` if it was not a request to stop.',
            )
        )
    if contact.dm_closed_at is not None:
        inbound = _inbound_times(contact) + ([extra_inbound] if extra_inbound else [])
        if not any(t > contact.dm_closed_at for t in inbound):
            reasons.append(
                Reason(
                    "E_DM_CLOSED",
                    f"X refused your DM to {who} on {_date(contact.dm_closed_at)}: they do not "
                    "accept DMs from you. This clears by itself when they send you a DM.",
                )
            )
    if rate_limited_until is not None and now < rate_limited_until:
        reasons.append(
            Reason(
                "E_RATE_LIMITED",
                f"X asked dmtool to pause sending DMs until {_moment(rate_limited_until)} "
                "(rate limit). "
                "Try again after that; dmtool does not retry by itself.",
            )
        )
    return reasons


def _lint_reasons(findings: Sequence["Finding"], *, strict_promo: bool) -> list[Reason]:
    """One E_LINT per blocking finding. `strict_promo`: any L010 blocks."""
    return [
        Reason("E_LINT", f"{f.code}: {f.message}")
        for f in findings
        if f.severity == "error" or (strict_promo and f.code == "L010")
    ]


def _same_text_sent(
    contact: ContactSnapshot, norm: str, sends: Sequence[Send], since: datetime
) -> list[datetime]:
    times = [
        m.at for m in contact.messages if m.direction == "out" and m.at > since and normalise(m.text) == norm
    ]
    times += [
        s.at for s in sends if s.user_id == contact.user_id and s.at > since and normalise(s.text) == norm
    ]
    return sorted(times)


def _similar_contacts(
    contact: ContactSnapshot, text: str, sends: Sequence[Send], now: datetime, settings: PolicySettings
) -> set[str]:
    """Other contacts who got a text at least threshold-similar in the last 30 days.

    Stops once `similarity_min_contacts` are found: that settles the answer.
    """
    by_text: dict[str, set[str]] = {}
    for s in sends:
        if s.user_id != contact.user_id and s.at > now - SIMILARITY_WINDOW:
            by_text.setdefault(normalise(s.text), set()).add(s.user_id)
    probe = SimilarityProbe(text)
    matched: set[str] = set()
    for other, users in by_text.items():
        if users <= matched:
            continue  # nothing new to learn from this text
        if probe.at_least(other, settings.similarity_threshold):
            matched |= users
            if len(matched) >= settings.similarity_min_contacts:
                break
    return matched


# --- the gate ---------------------------------------------------------------------


def decide(
    contact: ContactSnapshot,
    text: str | None,
    recent_sends: Sequence[Send],
    settings: PolicySettings,
    now: datetime,
    *,
    findings: Sequence["Finding"] = (),
    rate_limited_until: datetime | None = None,
) -> Decision:
    """May `text` be sent to `contact` now? Every rule is evaluated; all reasons returned.

    `text=None` asks "may I DM this contact at all" (the check command): the
    duplicate and lint rules are skipped. `findings` are lint's findings for
    `text`; `recent_sends` are dmtool's sends to anyone in the last 30 days;
    `rate_limited_until` is X's pause on sending DMs (the dm_send family only).
    """
    who = _who(contact)
    first_contact = is_first_contact(contact)
    reasons = _common_reasons(contact, now, rate_limited_until)

    # Consent (§1).
    counting = tuple(sorted((e for e in contact.evidence if e.counts), key=lambda e: e.at))
    mentions = tuple(sorted((e for e in contact.evidence if e.kind == "mention"), key=lambda e: e.at))
    inbound = _inbound_times(contact)
    last_engaged = max([e.at for e in counting] + inbound, default=None)
    if last_engaged is None:
        if mentions:
            reasons.append(
                Reason(
                    "E_MENTION_ONLY",
                    f"{who} mentioned you but you never answered publicly, so they have not "
                    "chosen a DM conversation. Reply to them in public and invite them to DM "
                    "you; once they write, or after your public exchange, you can DM them.",
                )
            )
        else:
            reasons.append(
                Reason(
                    "E_NO_CONSENT",
                    f"{who} has never DMed you and you have no public exchange or recorded "
                    "request from them. Wait for them to DM you, talk with them publicly first, "
                    f"or if they asked you to DM them, record it with `dmtool contacts engage "
                    f'{_arg(contact)} --kind request --evidence "..."`.',
                )
            )
    elif now - last_engaged > timedelta(days=settings.consent_days):
        reasons.append(
            Reason(
                "E_CONSENT_EXPIRED",
                f"{who} last engaged with you on {_date(last_engaged)}, more than "
                f"{settings.consent_days} days ago, so that permission has expired. A new DM "
                "from them or a public exchange with them renews it.",
            )
        )

    # Pace (§3): outbound DMs since their last DM. Messages and dmtool's own
    # send log may each hold the same sends, so take the larger count, not the sum.
    last_in = max(inbound, default=None)

    def unanswered_since(at: datetime) -> bool:
        return last_in is None or at > last_in

    out_msgs = sum(1 for m in contact.messages if m.direction == "out" and unanswered_since(m.at))
    out_sends = sum(1 for s in recent_sends if s.user_id == contact.user_id and unanswered_since(s.at))
    unanswered = max(out_msgs, out_sends)
    if unanswered >= settings.max_unanswered:
        since = "since their last reply" if last_in is not None else "and they have not replied"
        reasons.append(
            Reason(
                "E_AWAIT_REPLY",
                f"You have sent {who} {unanswered} DM{'s' if unanswered != 1 else ''} {since} "
                f"(limit {settings.max_unanswered}). Wait for them to answer; their reply lets "
                "you write again.",
            )
        )

    day_window = _sends_since(recent_sends, now - DAY)
    if len(day_window) >= settings.daily_sends:
        reasons.append(
            _cap_reason("E_DAILY_CAP", day_window, settings.daily_sends, ("DM", "DMs"), "daily_sends")
        )
    if first_contact:
        firsts = [s for s in day_window if s.first_contact]
        if len(firsts) >= settings.daily_first_contacts:
            reasons.append(
                _cap_reason(
                    "E_FIRST_CONTACT_CAP",
                    firsts,
                    settings.daily_first_contacts,
                    ("first message to a new person", "first messages to new people"),
                    "daily_first_contacts",
                )
            )

    if text is not None:
        reasons += _duplicate_reasons(contact, text, recent_sends, settings, now, first_contact)
        reasons += _lint_reasons(findings, strict_promo=first_contact)

    evidence = counting or mentions
    return Decision(
        allowed=not any(r.severity == "block" for r in reasons),
        first_contact=first_contact,
        reasons=tuple(reasons),
        evidence=evidence,
    )


def _duplicate_reasons(
    contact: ContactSnapshot,
    text: str,
    recent_sends: Sequence[Send],
    settings: PolicySettings,
    now: datetime,
    first_contact: bool,
) -> list[Reason]:
    norm = normalise(text)
    if not norm:
        return []  # empty drafts are lint's business (L002)
    reasons = []
    same = _same_text_sent(contact, norm, recent_sends, now - DAY)
    if same:
        reasons.append(
            Reason(
                "E_DUPLICATE",
                f"You already sent this same text to {_who(contact)} at {_moment(same[-1])}. "
                f"Write something new, or wait until after {_moment(same[-1] + DAY)}.",
            )
        )
    similar = _similar_contacts(contact, text, recent_sends, now, settings)
    if len(similar) >= settings.similarity_min_contacts:
        pct = round(settings.similarity_threshold * 100)
        if first_contact:
            reasons.append(
                Reason(
                    "E_DUPLICATE",
                    f"This first message is at least {pct}% the same as DMs you sent to at least "
                    f"{len(similar)} other people in the last 30 days, which makes it a mass DM. "
                    "Rewrite it for this person.",
                )
            )
        else:
            reasons.append(
                Reason(
                    "W_SIMILAR",
                    f"This text is at least {pct}% the same as DMs you sent to at least "
                    f"{len(similar)} other people in the last 30 days. Consider making it more personal.",
                    severity="warning",
                )
            )
    return reasons


def decide_autoack(
    contact: ContactSnapshot,
    inbound_at: datetime,
    recent_sends: Sequence[Send],
    settings: PolicySettings,
    autoack_text: str,
    now: datetime,
    findings: Sequence["Finding"] = (),
    *,
    rate_limited_until: datetime | None = None,
) -> Decision:
    """May the automatic acknowledgement answer the DM received at `inbound_at`? (§6)

    Only for a DM that opens a new conversation (no DM either way in the 30
    days before it), at most once per 24 hours per contact, never to opted-out,
    blocked or in-review contacts, never with promotional text, within daily caps.
    """
    who = _who(contact)
    reasons = _common_reasons(contact, now, rate_limited_until, extra_inbound=inbound_at)

    # The triggering DM itself may ask to stop before the record knows it.
    trigger = [m for m in contact.messages if m.direction == "in" and m.at == inbound_at]
    if contact.optout_review is None and any(classify(m.text) == "review" for m in trigger):
        reasons.append(
            Reason(
                "E_OPTOUT_REVIEW",
                f"{who}'s DM may be a request to stop, so no automatic reply is sent. "
                f"Run `dmtool contacts optout {_arg(contact)}` or dismiss it with "
                f'`dmtool contacts optout {_arg(contact)} --dismiss --reason "..."`.',
            )
        )

    # New conversation: nothing either way in the 30 days before this DM, and
    # nothing sent since (a later inbound in the same burst does not matter).
    earlier = [
        m
        for m in contact.messages
        if inbound_at - AUTOACK_QUIET <= m.at < inbound_at or (m.direction == "out" and m.at >= inbound_at)
    ]
    quiet_from = inbound_at - AUTOACK_QUIET
    sent = [s for s in recent_sends if s.user_id == contact.user_id and s.at >= quiet_from]
    if earlier or sent:
        reasons.append(
            Reason(
                "E_AUTOACK_NOT_NEW",
                f"{who} is in an ongoing conversation (DMs in the 30 days before this one, or "
                "already answered), so the automatic reply is not sent. Answer them yourself.",
            )
        )
    elif now - inbound_at > AUTOACK_MAX_AGE:
        reasons.append(
            Reason(
                "E_AUTOACK_NOT_NEW",
                f"{who}'s DM arrived on {_moment(inbound_at)}, more than a day ago; an automatic "
                "reply now would be odd. Answer them yourself.",
            )
        )

    norm = normalise(autoack_text)
    if norm and _same_text_sent(contact, norm, recent_sends, now - DAY):
        reasons.append(
            Reason(
                "E_DUPLICATE",
                f"{who} already got the automatic reply in the last 24 hours; it is sent once.",
            )
        )

    day_window = _sends_since(recent_sends, now - DAY)
    if len(day_window) >= settings.daily_sends:
        reasons.append(
            _cap_reason("E_DAILY_CAP", day_window, settings.daily_sends, ("DM", "DMs"), "daily_sends")
        )

    # Any promotional finding blocks: an automatic reply must never advertise.
    reasons += _lint_reasons(findings, strict_promo=True)

    counting = tuple(sorted((e for e in contact.evidence if e.counts), key=lambda e: e.at))
    return Decision(
        allowed=not any(r.severity == "block" for r in reasons),
        first_contact=False,  # they just DMed you
        reasons=tuple(reasons),
        evidence=counting,
    )
