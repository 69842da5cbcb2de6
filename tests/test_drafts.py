"""`dmtool draft`, `drafts ...`, `templates ...`, `review ID --approve|--reject` and `log`."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as hs

from dmtool.store import contacts as cstore
from dmtool.store import drafts as dstore
from dmtool.store import messages as mstore
from dmtool.store.migrations import MIGRATIONS, sqlite_text
from dmtool.timeutil import fmt, now
from tests.conftest import profile_store

ME = "1000000000000000001"  # dmtool.x.sandbox.SANDBOX_ME


def add_talking_contact(handle: str, name: str | None, user_id: str, *,
                        inbound: str = "Hi! Could you tell me more?",
                        event_id: str | None = None) -> None:
    """A contact who DMed us an hour ago: consent, and not a first contact."""
    store = profile_store()
    try:
        stamp = fmt(now()) or ""
        at = fmt(now() - timedelta(hours=1)) or ""
        with store.tx() as conn:
            c = cstore.create(conn, handle, now=stamp, user_id=user_id, name=name)
            ref = event_id or f"seed-{user_id}"
            mstore.add_message(conn, event_id=ref, conversation_id=mstore.conversation_id_for(ME, user_id),
                               contact_id=c.id, direction="in", text=inbound, at=at, source="sync",
                               now=stamp)
            cstore.add_evidence(conn, c.id, "inbound_dm", at, ref, None, now=stamp)
    finally:
        store.close()


def set_state(key: str, value: str) -> None:
    store = profile_store()
    try:
        with store.tx():
            store.set_state(key, value)
    finally:
        store.close()


def draft_json(cli, *args: str, input: str | None = None) -> dict:
    r = cli("draft", *args, "--json", input=input)
    assert r.exit_code == 0, r
    return r.json()


def status_of(cli, draft_id: int) -> str:
    return cli("drafts", "show", str(draft_id), "--json").json()["status"]


def test_draft_from_argument_file_and_stdin(cli, tmp_path: Path):
    add_talking_contact("alice", "Alice Smith", "2001")
    d = draft_json(cli, "@Alice", "Thanks Alice, the workshop starts at 10.")
    assert set(d) >= {"id", "handle", "status", "text", "findings"}
    assert (d["handle"], d["status"], d["findings"]) == ("alice", "draft", [])
    assert d["text"] == "Thanks Alice, the workshop starts at 10."

    f = tmp_path / "msg.txt"
    f.write_text("From a file.\n", encoding="utf-8")
    assert draft_json(cli, "alice", "--file", str(f))["text"] == "From a file."
    assert draft_json(cli, "alice", "--file", "-", input="From stdin\n")["text"] == "From stdin"

    listed = cli("drafts", "list", "--json").json()
    assert [x["text"] for x in listed] == ["From stdin", "From a file.",
                                          "Thanks Alice, the workshop starts at 10."]
    assert cli("drafts", "list", "--status", "sent", "--json").json() == []
    assert cli("drafts", "list", "--status", "bogus").exit_code == 2


def test_no_text_off_a_terminal_is_a_usage_error(cli):
    add_talking_contact("alice", "Alice", "2001")
    r = cli("draft", "alice")
    assert r.exit_code == 2
    assert "--file" in r.stderr
    assert cli("drafts", "list", "--json").json() == []
    assert cli("draft", "alice", "text", "--file", "-", input="x").exit_code == 2


def test_draft_refused_early_when_contact_may_not_be_dmed(cli):
    cli("contacts", "add", "bob")
    r = cli("draft", "bob", "Hello Bob", "--json")
    assert r.exit_code == 3
    assert r.stdout == ""
    err = json.loads(r.stderr)["error"]
    assert err["code"] == "E_NO_CONSENT"
    assert [x["code"] for x in err["reasons"]] == ["E_NO_CONSENT"]
    assert cli("drafts", "list", "--json").json() == []
    log = cli("log", "--json").json()
    assert log[0]["action"] == "refused" and log[0]["codes"] == ["E_NO_CONSENT"]
    assert log[0]["detail"]["command"] == "draft"

    # Opted out: refused too, with the opt-out named.
    add_talking_contact("carol", "Carol", "2003")
    cli("contacts", "optout", "carol", "--yes")
    r = cli("draft", "carol", "Hi Carol")
    assert r.exit_code == 3 and "E_OPTED_OUT" in r.stderr


def test_caps_do_not_stop_a_draft(cli):
    add_talking_contact("alice", "Alice", "2001")
    set_state("rate_limited_until.dm_send", fmt(now() + timedelta(hours=1)) or "")
    assert cli("check", "alice").exit_code == 5  # X asked us to pause...
    d = draft_json(cli, "alice", "Thanks for writing, Alice.")  # ...but writing is fine
    assert d["status"] == "draft"
    assert cli("review", str(d["id"]), "--approve").exit_code == 0


def test_findings_are_reported_and_errors_block_approval(cli):
    cli("contacts", "add", "dave", "--name", "Dave Jones")
    cli("contacts", "engage", "dave", "--evidence", "asked for the slides at the meetup")
    d = draft_json(cli, "dave", "Hi Dave, I'm Ann. Slides: https://bit.ly/abc")
    codes = {f["code"]: f["severity"] for f in d["findings"]}
    assert codes == {"L003": "error", "L004": "error"}
    assert d["first_contact"] is True
    r = cli("review", str(d["id"]), "--approve", "--json")
    assert r.exit_code == 3
    err = json.loads(r.stderr)["error"]
    assert {x["code"] for x in err["reasons"]} == {"E_LINT"}
    assert status_of(cli, d["id"]) == "draft"
    human = cli("draft", "dave", "Hi Dave, I'm Ann. Slides: https://bit.ly/abc")
    assert "error L003" in human.stdout and "error L004" in human.stdout


def test_edit_returns_an_approved_draft_to_draft(cli, tmp_path: Path):
    add_talking_contact("alice", "Alice", "2001")
    d = draft_json(cli, "alice", "Thanks Alice.")
    did = str(d["id"])
    assert cli("review", did, "--approve").exit_code == 0
    shown = cli("drafts", "show", did, "--json").json()
    assert shown["status"] == "approved" and shown["approved_at"]
    r = cli("drafts", "edit", did, "--text", "Thanks Alice, see you Tuesday.", "--json")
    assert r.exit_code == 0, r
    edited = r.json()
    assert edited["status"] == "draft" and edited["approved_at"] is None
    assert edited["text"] == "Thanks Alice, see you Tuesday."
    assert "approval was cleared" not in cli("drafts", "edit", did, "--text", "Thanks.").stderr
    assert cli("review", did, "--approve").exit_code == 0
    assert "approval was cleared" in cli("drafts", "edit", did, "--text", "Thanks!").stderr
    f = tmp_path / "t.txt"
    f.write_text("From file edit\n")
    assert cli("drafts", "edit", did, "--file", str(f), "--json").json()["text"] == "From file edit"
    assert cli("drafts", "edit", did).exit_code == 2  # no editor off a terminal
    assert cli("drafts", "edit", "999", "--text", "x").exit_code == 1


def test_templates_fill_variables_and_unfilled_is_l001(cli):
    add_talking_contact("alice", "Alice Smith", "2001")
    add_talking_contact("nameless", None, "2002")
    assert cli("templates", "add", "thanks", "Thanks {first_name} ({name}, @{handle}), see you at "
               "{event}.").exit_code == 0
    assert cli("templates", "add", "thanks", "again").exit_code == 1  # exists
    assert cli("templates", "add", "thanks", "Hi {first_name}, see you at {event}.",
               "--replace").exit_code == 0
    assert cli("templates", "add", "bad name", "x").exit_code == 1
    assert [t["name"] for t in cli("templates", "list", "--json").json()] == ["thanks"]
    assert cli("templates", "show", "thanks").stdout == "Hi {first_name}, see you at {event}.\n"

    d = draft_json(cli, "alice", "--template", "thanks", "--var", "event=the Osaka meetup")
    assert d["text"] == "Hi Alice, see you at the Osaka meetup."
    assert d["findings"] == [] and d["template"] == "thanks"

    unfilled = draft_json(cli, "alice", "--template", "thanks")
    assert unfilled["text"] == "Hi Alice, see you at {event}."
    assert [(f["code"], f["severity"]) for f in unfilled["findings"]] == [("L001", "error")]
    assert cli("review", str(unfilled["id"]), "--approve").exit_code == 3

    no_name = draft_json(cli, "nameless", "--template", "thanks", "--var", "event=x")
    assert no_name["text"] == "Hi {first_name}, see you at x."  # nothing to fill it with
    assert [f["code"] for f in no_name["findings"]] == ["L001"]

    assert cli("draft", "alice", "--template", "thanks", "--var", "oops").exit_code == 2
    assert cli("draft", "alice", "text", "--template", "thanks").exit_code == 2
    assert cli("draft", "alice", "--template", "nope").exit_code == 1
    assert cli("templates", "remove", "thanks").exit_code == 0
    assert cli("templates", "remove", "thanks").exit_code == 1
    assert cli("templates", "list", "--json").json() == []


def test_review_approve_and_reject_are_audited(cli):
    add_talking_contact("alice", "Alice", "2001")
    a = draft_json(cli, "alice", "Thanks Alice, here is the schedule.")["id"]
    b = draft_json(cli, "alice", "Second thought.")["id"]
    r = cli("review", str(a), "--approve", "--json")
    assert r.exit_code == 0 and r.json()["status"] == "approved"
    assert cli("review", str(b), "--reject", "--reason", "too vague").exit_code == 0
    shown = cli("drafts", "show", str(b), "--json").json()
    assert (shown["status"], shown["reason"]) == ("rejected", "too vague")
    actions = [(e["action"], e["draft_id"]) for e in cli("log", "--json").json()[:2]]
    assert actions == [("rejected", b), ("approved", a)]
    approved = cli("log", "--json").json()[1]
    assert approved["detail"]["text"] == "Thanks Alice, here is the schedule."

    # Usage errors: both flags, flags without an id, stray options, off-terminal queue.
    assert cli("review", str(a), "--approve", "--reject").exit_code == 2
    assert cli("review", "--approve").exit_code == 2
    assert cli("review", str(a), "--reason", "x").exit_code == 2
    assert cli("review", str(b), "--reject", "--ack-warnings").exit_code == 2
    r = cli("review")
    assert r.exit_code == 2 and "--approve" in r.stderr
    assert cli("review", "999", "--approve").exit_code == 1


def test_warnings_need_ack_warnings(cli):
    add_talking_contact("alice", "Alice", "2001")
    d = draft_json(cli, "alice", "Thanks Alice!!! See you soon!!!")
    assert [(f["code"], f["severity"]) for f in d["findings"]] == [("L011", "warning")]
    r = cli("review", str(d["id"]), "--approve")
    assert r.exit_code == 2 and "--ack-warnings" in r.stderr and "L011" in r.stderr
    assert status_of(cli, d["id"]) == "draft"
    r = cli("review", str(d["id"]), "--approve", "--ack-warnings", "--json")
    assert r.exit_code == 0, r
    assert r.json()["acknowledged"] == ["L011"]
    entry = cli("log", "--json").json()[0]
    assert entry["action"] == "approved" and entry["codes"] == ["L011"]


def test_discard_and_state_guards(cli):
    add_talking_contact("alice", "Alice", "2001")
    did = str(draft_json(cli, "alice", "Thanks Alice.")["id"])
    assert cli("drafts", "discard", did).exit_code == 0
    assert status_of(cli, did) == "discarded"
    r = cli("drafts", "discard", did)
    assert r.exit_code == 1 and "discarded" in r.stderr  # a transition happens once
    assert cli("review", did, "--approve").exit_code == 1
    assert cli("drafts", "edit", did, "--text", "x").exit_code == 1


def test_log_human_and_limit(cli):
    add_talking_contact("alice", "Alice", "2001")
    for text in ("One.", "Two.", "Three."):
        did = draft_json(cli, "alice", text)["id"]
        cli("review", str(did), "--reject")
    assert len(cli("log", "--json", "--limit", "2").json()) == 2
    out = cli("log").stdout.splitlines()
    # each draft is in the log twice: drafted, then rejected (newest first)
    assert len(out) == 6 and all("\trejected\t@alice\t" in line for line in out[::2])
    assert all("\tdrafted\t@alice\t" in line and "command=draft" in line for line in out[1::2])



# --- the state machine, as a property ------------------------------------------------------

# op -> statuses it may start from, and where it leads.
MODEL: dict[str, tuple[frozenset[str], str]] = {
    "edit": (frozenset({"draft", "approved", "rejected", "failed"}), "draft"),
    "approve": (frozenset({"draft", "approved", "rejected", "failed"}), "approved"),
    "reject": (frozenset({"draft", "approved", "failed"}), "rejected"),
    "discard": (frozenset({"draft", "approved", "rejected", "failed"}), "discarded"),
    "start_send": (frozenset({"approved"}), "sending"),
    "sent": (frozenset({"sending", "unknown"}), "sent"),
    "failed": (frozenset({"sending", "unknown"}), "failed"),
    "unknown": (frozenset({"sending"}), "unknown"),
    "back": (frozenset({"sending"}), "approved"),
}


def _apply(conn: sqlite3.Connection, did: int, op: str, n: int) -> bool:
    t = "2026-01-01T00:00:00.000Z"
    text = dstore.get(conn, did).text
    if op == "edit":
        return dstore.set_text(conn, did, f"v{n}", now=t)
    if op == "approve":
        return dstore.approve(conn, did, text=text, acknowledged=(), now=t)
    if op == "reject":
        return dstore.reject(conn, did, None, now=t)
    if op == "discard":
        return dstore.discard(conn, did, now=t)
    if op == "start_send":
        return dstore.start_send(conn, did, text=text, first_contact=False, now=t)
    if op == "sent":
        return dstore.mark_sent(conn, did, dm_event_id=f"e{n}", dm_conversation_id=None,
                                sent_at=t, now=t)
    if op == "failed":
        return dstore.mark_failed(conn, did, "x", now=t)
    if op == "unknown":
        return dstore.mark_unknown(conn, did, now=t)
    return dstore.back_to_approved(conn, did, now=t)


@settings(max_examples=150, deadline=None)
@given(hs.lists(hs.sampled_from(sorted(MODEL)), max_size=14))
def test_draft_transitions_follow_the_state_machine(ops):
    """Every guarded UPDATE moves exactly when the state machine allows it; only the
    approved text can be in flight; a draft is sent at most once."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.row_factory = sqlite3.Row
    for script in MIGRATIONS:
        conn.executescript(sqlite_text(script))
    cid = cstore.create(conn, "alice", now="2026-01-01T00:00:00.000Z", user_id="1").id
    did = dstore.create(conn, cid, "v0", now="2026-01-01T00:00:00.000Z").id
    status, sent = "draft", 0
    for n, op in enumerate(ops):
        allowed_from, to = MODEL[op]
        moved = _apply(conn, did, op, n)
        assert moved == (status in allowed_from), (op, status)
        if moved:
            status = to
            sent += op == "sent"
        after = dstore.get(conn, did)
        assert after.status == status
        if status in ("approved", "sending"):
            assert after.approved_text == after.text
        if status == "sent":
            assert after.dm_event_id is not None
    assert sent <= 1
