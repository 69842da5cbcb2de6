"""inbox, thread, done/reopen and digest over a seeded local record."""

from __future__ import annotations

from dmtool.store import contacts as cstore
from dmtool.store import messages as mstore
from tests.conftest import profile_store

ME = "1000"


def seed_message(handle: str, uid: str, direction: str, text: str, at: str,
                 recorded_at: str | None = None) -> None:
    store = profile_store()
    with store.tx() as conn:
        c, _ = cstore.upsert_x_user(conn, uid, handle, handle.title(), now=at)
        n = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        mstore.add_message(conn, event_id=f"e{n}", conversation_id=mstore.conversation_id_for(ME, uid),
                           contact_id=c.id, direction=direction, text=text, at=at, source="sync",
                           now=recorded_at or at)
    store.close()


def test_inbox_orders_and_marks_reply(cli):
    seed_message("ann", "11", "in", "hi there", "2026-11-01T10:00:00.000Z")
    seed_message("bob", "12", "in", "question", "2026-11-02T10:00:00.000Z")
    seed_message("bob", "12", "out", "answer", "2026-11-02T11:00:00.000Z")
    # ann waits for a reply: first, although bob's conversation moved last
    items = cli("inbox", "--json").json()
    assert [i["handle"] for i in items] == ["ann", "bob"]
    assert items[1]["needs_reply"] is False and items[1]["last_direction"] == "out"
    assert items[0]["needs_reply"] is True and items[0]["unread"] == 1
    assert set(items[0]) == {"handle", "name", "last_at", "last_direction", "last_text", "unread",
                             "needs_reply", "status", "state", "snoozed_until", "claimed_by",
                             "claimed_until"}
    assert items[0]["state"] == "open" and items[0]["snoozed_until"] is None
    by_activity = cli("inbox", "--json", "--sort", "activity").json()
    assert [i["handle"] for i in by_activity] == ["bob", "ann"]
    assert cli("done", "ann").exit_code == 0
    assert [i["handle"] for i in cli("inbox", "--json").json()] == ["bob"]
    all_items = cli("inbox", "--json", "--all").json()
    assert [i["status"] for i in all_items] == ["open", "done"]
    assert cli("reopen", "ann").exit_code == 0
    assert len(cli("inbox", "--json").json()) == 2
    # a new inbound message reopens a done conversation
    cli("done", "bob")
    seed_message("bob", "12", "in", "one more thing", "2026-11-03T10:00:00.000Z")
    assert cli("inbox", "--json").json()[0]["handle"] == "bob"


def test_thread_reads_and_peek(cli):
    seed_message("ann", "11", "in", "hello", "2026-11-01T10:00:00.000Z")
    seed_message("ann", "11", "out", "hi!", "2026-11-01T10:05:00.000Z")
    r = cli("thread", "ann", "--json", "--peek")
    data = r.json()
    assert [m["direction"] for m in data["messages"]] == ["in", "out"]
    assert data["contact"]["handle"] == "ann" and data["contact"]["user_id"] == "11"
    assert cli("inbox", "--json").json()[0]["unread"] == 1  # peek changed nothing
    cli("thread", "ann")
    assert cli("inbox", "--json").json()[0]["unread"] == 0
    assert cli("thread", "nobody").exit_code == 1


def test_digest_prints_nothing_when_nothing_new(cli):
    r = cli("digest")
    assert r.exit_code == 0 and r.stdout == ""
    assert cli("digest", "--format", "json").json()["inbound"] == []


def test_digest_reports_then_advances(cli, monkeypatch):
    monkeypatch.setenv("DMTOOL_NOW", "2026-11-10T12:00:00.000Z")
    seed_message("ann", "11", "in", "are you open on sunday?", "2026-11-10T09:00:00.000Z")
    r = cli("digest", "--peek")
    assert "@ann" in r.stdout and "sunday" in r.stdout and "Waiting for your reply" in r.stdout
    assert "sunday" not in cli("digest", "--peek", "--no-text").stdout
    md = cli("digest", "--peek", "--format", "markdown").stdout
    assert md.startswith("First digest: the last 24 hours") and "\n## New messages" in md
    assert cli("digest").stdout != ""
    monkeypatch.setenv("DMTOOL_NOW", "2026-11-10T13:00:00.000Z")
    assert cli("digest").stdout == ""  # checkpoint advanced: nothing new since
    assert "sunday" in cli("digest", "--since", "24h").stdout
    assert cli("digest", "--since", "soon").exit_code == 2


def test_a_message_synced_after_reading_is_unread(cli, monkeypatch):
    monkeypatch.setenv("DMTOOL_NOW", "2026-11-10T12:05:00.000Z")
    seed_message("ann", "11", "in", "hello", "2026-11-10T11:00:00.000Z",
                 recorded_at="2026-11-10T11:00:00.000Z")
    cli("thread", "ann")  # read at 12:05
    # sent at 12:01 but only synced at 12:10
    seed_message("ann", "11", "in", "urgent", "2026-11-10T12:01:00.000Z",
                 recorded_at="2026-11-10T12:10:00.000Z")
    assert cli("inbox", "--json").json()[0]["unread"] == 1


def test_escape_sequences_from_a_sender_never_reach_the_terminal(cli, monkeypatch):
    """Found in review: raw ESC/OSC bytes in a DM could retitle the window or fake output."""
    monkeypatch.setenv("DMTOOL_NOW", "2026-11-10T12:00:00.000Z")
    evil = "hi\x1b]0;PWNED\x07\x1b[2K\rSYSTEM: run this"
    seed_message("bob", "12", "in", evil, "2026-11-10T11:00:00.000Z")
    for args in (["thread", "bob"], ["digest", "--peek"], ["inbox"], ["contacts", "show", "bob"]):
        out = cli(*args).stdout
        assert "\x1b" not in out and "\x07" not in out and "\r" not in out, args
    # JSON keeps the text exactly (escaped by the encoder)
    assert cli("thread", "bob", "--json").json()["messages"][0]["text"] == evil


def test_piped_thread_is_tab_separated(cli):
    seed_message("ann", "11", "in", "hello\tthere", "2026-11-01T10:00:00.000Z")
    assert cli("thread", "ann", "--peek").stdout.splitlines() == [
        "2026-11-01T10:00:00+00:00\tin\thello there"]


def test_a_digest_mail_shows_the_longest_waits_then_a_count(cli, monkeypatch):
    """Thousands of unanswered conversations would bury the news in a mail:
    the text digest lists the 25 longest waits; JSON lists every one."""
    monkeypatch.setenv("DMTOOL_NOW", "2026-11-10T12:00:00.000Z")
    for n in range(30):
        at = f"2026-11-0{1 + n // 10}T1{n % 10}:00:00.000Z"  # p00 has waited longest
        seed_message(f"p{n:02d}", str(100 + n), "in", "hello?", at)
    seed_message("news", "99", "in", "new today", "2026-11-10T11:00:00.000Z")
    text = cli("digest", "--peek").stdout
    waiting = text.split("Waiting for your reply\n")[1]
    assert waiting.count("  @p") == 25 and "@p00 for" in waiting and "@p25" not in waiting
    assert "and 6 more: `dmtool inbox` lists them" in waiting
    assert len(cli("digest", "--peek", "--json").json()["waiting"]) == 31
