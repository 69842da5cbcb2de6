"""The inbox and the digest tell the truth (issue 12, point 2): who may be
answered, what they last wrote, filters and order, and which window a digest
covers. End to end through the CLI on the sandbox X."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dmtool.services.conversations import Digest
from dmtool.x.sandbox import SandboxWorld
from tests.test_archive import account, conversation, dm, folder, js
from tests.xworld import ALICE, BOB, CAROL, DAVE, ERIN, ME, SAM, Cli, Clock, sync


def inbox(cli: Cli, *args: str) -> list[dict[str, Any]]:
    r = cli("inbox", "--json", *args)
    assert r.exit_code == 0, r
    return r.json()  # type: ignore[no-any-return]


def handles(items: list[dict[str, Any]]) -> list[str]:
    return [i["handle"] for i in items]


def digest(cli: Cli, *args: str) -> dict[str, Any]:
    r = cli("digest", "--json", "--peek", *args)
    assert r.exit_code == 0, r
    return r.json()  # type: ignore[no-any-return]


def close_dms(cli: Cli, world: SandboxWorld, handle: str, uid: str) -> None:
    """A reply X refuses (403): the contact's DMs are closed to you."""
    r = cli("draft", handle, "Thanks, noted: more on Friday.", "--json")
    assert r.exit_code == 0, r
    did = str(r.json()["id"])
    assert cli("review", did, "--approve").exit_code == 0
    world.forbid_dm_to(uid)
    r = cli("send", did, "--yes", "--json")
    assert r.exit_code == 3 and json.loads(r.stderr)["error"]["code"] == "E_DM_CLOSED", r


def test_state_is_shown_and_nobody_who_asked_to_stop_is_waiting(
        cli: Cli, world: SandboxWorld, clock: Clock) -> None:
    world.incoming_dm(ALICE, "please stop messaging me", at=clock.ago(hours=5))
    world.incoming_dm(BOB, "STOP", at=clock.ago(hours=4))
    world.incoming_dm(CAROL, "hello, is the beta open?", at=clock.ago(hours=3))
    world.incoming_dm(DAVE, "hi there", at=clock.ago(hours=2))
    world.incoming_dm(ERIN, "one question", at=clock.ago(hours=1))
    data = sync(cli)
    assert data["optout_review"] == ["alice"] and data["opted_out"] == ["bob"]
    assert cli("contacts", "block", "dave").exit_code == 0
    close_dms(cli, world, "erin", ERIN)

    items = {i["handle"]: i for i in inbox(cli)}
    assert {h: (i["state"], i["needs_reply"]) for h, i in items.items()} == {
        "alice": ("review-optout", False), "bob": ("opted-out", False),
        "carol": ("open", True), "dave": ("blocked", False), "erin": ("dm-closed", False)}
    assert handles(inbox(cli, "--waiting")) == ["carol"]
    assert handles(inbox(cli, "--state", "review-optout")) == ["alice"]
    assert handles(inbox(cli, "--state", "dm-closed")) == ["erin"]
    text = cli("inbox").stdout.splitlines()
    marks = {line.split("\t")[1]: line.split("\t")[0] for line in text}
    assert marks == {"@alice": "review-optout", "@bob": "opted-out", "@carol": "reply",
                     "@dave": "blocked", "@erin": "dm-closed"}

    d = digest(cli)
    assert {i["handle"]: i["state"] for i in d["inbound"]} == {
        "alice": "review-optout", "bob": "opted-out", "carol": "open", "dave": "blocked",
        "erin": "dm-closed"}
    assert [w["handle"] for w in d["waiting"]] == ["carol"]
    assert [(r["handle"], r["new"], r["text"]) for r in d["optout_reviews"]] == [
        ("alice", True, "please stop messaging me")]
    assert "text" not in digest(cli, "--no-text")["optout_reviews"][0]
    out = cli("digest", "--peek").stdout
    reviews = out.split("Opt-out reviews")[1].split("\n\n")[0]
    waiting = out.split("Waiting for your reply")[1].split("\n\n")[0]
    assert "@alice" in reviews and "[new]" in reviews and "please stop messaging me" in reviews
    assert "@alice" not in waiting and "@bob" not in waiting and "@carol" in waiting
    assert "@bob (Bob B) [opted-out] 2026-03-02 08:00: STOP" in out
    # the report's "still waiting" and open conversations follow the same rule
    report = cli("report", "--days", "1", "--json").json()
    assert report["open_conversations"]["waiting_for_you"] == 1  # carol
    assert report["first_reply"]["unanswered_open"] == 1

    # Writing again after X refused your DM reopens the door (the policy's rule).
    clock.advance(minutes=10)
    world.incoming_dm(ERIN, "sorry, DMs are open again", at=clock.ago(minutes=1))
    sync(cli)
    erin = next(i for i in inbox(cli) if i["handle"] == "erin")
    assert (erin["state"], erin["needs_reply"]) == ("open", True)


def test_sync_says_how_many_went_to_review(cli: Cli, world: SandboxWorld, clock: Clock) -> None:
    world.incoming_dm(ALICE, "please stop messaging me", at=clock.ago(hours=1))
    world.incoming_dm(BOB, "もう連絡しないでください", at=clock.ago(minutes=30))
    r = cli("sync")
    assert r.exit_code == 0, r
    assert "2 opt-out reviews to decide: @alice, @bob" in r.stdout
    assert "opt-out review" not in cli("sync").stdout  # nothing new: nothing said


def test_a_new_review_alone_is_news() -> None:
    d = Digest(since="a", until="b")
    assert d.empty
    d.optout_reviews = [{"handle": "ann", "name": None, "at": "x", "text": "stop it", "new": False}]
    assert d.empty  # listed before: not news
    d.optout_reviews[0]["new"] = True
    assert not d.empty


def test_the_last_message_column_shows_what_they_wrote_not_the_autoack(
        cli: Cli, world: SandboxWorld, clock: Clock) -> None:
    assert cli("config", "set", "autoack.text", "Thanks! I read every DM and reply within a day. "
               "– Sam").exit_code == 0
    assert cli("config", "set", "autoack.enabled", "true").exit_code == 0
    sync(cli)  # a profile's first sync reads history: no acknowledgements
    world.incoming_dm(ALICE, "what does the pro plan cost?", at=clock.ago(minutes=5))
    assert sync(cli)["autoacks_sent"] == 1
    [item] = inbox(cli)
    assert (item["last_direction"], item["last_text"]) == ("in", "what does the pro plan cost?")
    assert item["needs_reply"] is True
    assert "<- what does the pro plan cost?" in cli("inbox").stdout
    # the thread still shows the acknowledgement
    texts = [m["text"] for m in cli("thread", "alice", "--json", "--peek").json()["messages"]]
    assert texts[-1].startswith("Thanks! I read every DM")


def test_filters_combine_with_each_other_and_json(cli: Cli, world: SandboxWorld,
                                                  clock: Clock) -> None:
    for uid, text, hours in ((ALICE, "hi", 6), (BOB, "hello", 5), (CAROL, "hey", 4),
                             (SAM, "yo", 3)):
        world.incoming_dm(uid, text, at=clock.ago(hours=hours))
    world.outgoing_dm(SAM, "answered from the X app", at=clock.ago(hours=2))
    sync(cli)
    for h in ("alice", "sam"):
        assert cli("contacts", "tag", h, "vip").exit_code == 0
    cli("thread", "bob")  # read
    assert handles(inbox(cli, "--unread")) == ["carol", "alice", "sam"]
    assert handles(inbox(cli, "--tag", "vip")) == ["alice", "sam"]  # alice waits: first
    assert handles(inbox(cli, "--tag", "vip", "--waiting")) == ["alice"]
    assert handles(inbox(cli, "--tag", "vip", "--sort", "activity")) == ["sam", "alice"]
    assert handles(inbox(cli, "--unread", "--waiting", "--state", "open")) == ["carol", "alice"]
    assert handles(inbox(cli, "--waiting", "--state", "blocked")) == []
    assert cli("done", "carol").exit_code == 0
    assert handles(inbox(cli, "--unread")) == ["alice", "sam"]
    assert handles(inbox(cli, "--unread", "--all")) == ["alice", "sam", "carol"]
    # the same filters in text: one line per conversation
    assert [line.split("\t")[1] for line in cli("inbox", "--tag", "vip").stdout.splitlines()] \
        == ["@alice", "@sam"]
    r = cli("inbox", "--tag", "nobody-has-it")
    assert r.exit_code == 0 and r.stdout == ""
    for bad in (["--state", "sleeping"], ["--sort", "name"]):
        r = cli("inbox", *bad)
        assert r.exit_code == 2 and "must be" in r.stderr, r


# --- digest windows ------------------------------------------------------------------------


def test_the_first_digest_says_its_window_and_later_ones_follow_the_checkpoint(
        cli: Cli, world: SandboxWorld, clock: Clock) -> None:
    world.incoming_dm(ALICE, "first!", at=clock.ago(hours=2))
    sync(cli)
    assert digest(cli)["window"] == "first_digest"
    out = cli("digest").stdout
    assert out.startswith("First digest: the last 24 hours, since 2026-03-01 12:00 (UTC)")
    clock.advance(hours=1)
    world.incoming_dm(BOB, "second", at=clock.ago(minutes=5))
    sync(cli)
    d = digest(cli)
    assert d["window"] == "last_digest" and d["since"] == "2026-03-02T12:00:00.000Z"
    out = cli("digest").stdout
    news = out.split("\n\n")[0]
    assert news.startswith("New messages") and "@bob" in news and "@alice" not in news
    assert digest(cli, "--since", "1d")["window"] == "since"


def test_a_dm_synced_late_is_news_once_with_its_sent_time_marked_old(
        cli: Cli, world: SandboxWorld, clock: Clock) -> None:
    sync(cli)
    cli("digest")  # the checkpoint: 2026-03-02 12:00
    clock.advance(hours=2)
    # X delivers, two hours later, a DM sent the day before, and a new one.
    world.incoming_dm(ALICE, "sent yesterday", at=clock.ago(days=1))
    world.incoming_dm(BOB, "sent just now", at=clock.ago(minutes=3))
    sync(cli)
    d = digest(cli)
    msgs = {i["handle"]: i["messages"][0] for i in d["inbound"]}
    assert msgs["alice"]["old"] is True and msgs["bob"]["old"] is False
    assert msgs["alice"]["at"] == "2026-03-01T14:00:00.000Z"
    out = cli("digest", "--peek").stdout
    assert "@alice (Alice A) 2026-03-01 14:00 [old]: sent yesterday" in out
    assert "@bob (Bob B) 2026-03-02 13:57: sent just now" in out
    assert "[old]: sent before 2026-03-02 12:00 (UTC) and only synced since" in out
    assert "@alice (Alice A): 1 new (1 old)" in cli("digest", "--peek", "--no-text").stdout
    # an explicit window selects by sent time: the late DM is not in the last 30 minutes
    assert [i["handle"] for i in digest(cli, "--since", "30m")["inbound"]] == ["bob"]
    assert [i["handle"] for i in digest(cli, "--since", "2026-03-01T13:00")["inbound"]] == [
        "alice", "bob"]
    cli("digest")
    assert cli("digest").stdout == ""  # news once


def test_since_takes_a_date_in_the_display_zone(cli: Cli, world: SandboxWorld, clock: Clock,
                                                monkeypatch: Any) -> None:
    world.incoming_dm(ALICE, "early in Tokyo", at=clock.ago(hours=26))  # 2026-03-01T10:00Z
    world.incoming_dm(BOB, "late in Tokyo", at=clock.ago(hours=13))     # 2026-03-01T23:00Z
    sync(cli)
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    # 2 March in Tokyo started at 2026-03-01T15:00Z: only Bob's DM was sent since
    d = digest(cli, "--since", "2026-03-02")
    assert d["since"] == "2026-03-01T15:00:00.000Z"
    assert [i["handle"] for i in d["inbound"]] == ["bob"]
    assert [i["handle"] for i in digest(cli, "--since", "2026-03-02T00:00Z")["inbound"]] == []
    for bad in ("2026-13-01", "yesterday", "2026-03-05"):  # not a date, nor one in the past
        r = cli("digest", "--since", bad)
        assert r.exit_code == 2, (bad, r)


def test_archive_history_never_enters_the_digest(cli: Cli, world: SandboxWorld, clock: Clock,
                                                 tmp_path: Path) -> None:
    """An archive imported today holds DMs of the last hours too: history, not news,
    whether the window is the first digest's, the checkpoint's or --since."""
    sync(cli)
    at = "2026-03-02T10:00:00.000Z"
    data = {"account.js": account(ME, "you"),
            "direct-messages.js": js("direct_messages", [
                conversation(ME, ALICE, dm("901", ALICE, ME, "from the archive", at)),
                conversation(ME, BOB, dm("902", BOB, ME, "STOP", at)),
                conversation(ME, CAROL, dm("903", CAROL, ME, "please stop messaging me", at))])}
    r = cli("import", "archive", str(folder(tmp_path / "arc", data)), "--json")
    assert r.exit_code == 0, r
    for args in ((), ("--since", "7d")):
        d = digest(cli, *args)
        assert (d["inbound"], d["opted_out"]) == ([], []), args
        assert [(x["handle"], x["new"]) for x in d["optout_reviews"]] == [("carol", False)]
    assert cli("digest").stdout == ""


# --- archive conversations arrive done; --open keeps the waiting ones open -----------------


def old_archive(tmp_path: Path, name: str) -> Path:
    """Two conversations quiet for months: Alice waits for your reply, Bob does not."""
    data = {"account.js": account(ME, "you"),
            "direct-messages.js": js("direct_messages", [
                conversation(ME, ALICE, dm("801", ALICE, ME, "any news?", "2025-11-02T10:00:00.000Z")),
                conversation(ME, BOB, dm("802", BOB, ME, "hi", "2025-11-03T10:00:00.000Z"),
                             dm("803", ME, BOB, "hello Bob", "2025-11-03T11:00:00.000Z"))])}
    return folder(tmp_path / name, data)


def test_old_archive_conversations_arrive_done_unless_open(
        cli: Cli, world: SandboxWorld, clock: Clock, tmp_path: Path) -> None:
    r = cli("import", "archive", str(old_archive(tmp_path, "a")))
    assert r.exit_code == 0, r
    assert "2 conversations quiet for 30 days filed as done (`dmtool inbox --all` lists them)" \
        in r.stdout
    assert inbox(cli) == []
    assert {i["handle"]: i["status"] for i in inbox(cli, "--all")} == {
        "alice": "done", "bob": "done"}  # named by the sandbox X after the import


def test_import_archive_open_keeps_those_waiting_for_a_reply_open(
        cli: Cli, world: SandboxWorld, clock: Clock, tmp_path: Path) -> None:
    r = cli("import", "archive", str(old_archive(tmp_path, "a")), "--open", "--json")
    assert r.exit_code == 0, r
    assert r.json()["conversations_done"] == 1
    [item] = inbox(cli)
    assert item["last_text"] == "any news?" and item["needs_reply"] is True
    assert [i["status"] for i in inbox(cli, "--all")] == ["open", "done"]
