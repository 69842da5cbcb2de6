"""`dmtool import archive`: X's "download your data" archive, as a folder or a zip."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dmtool.paths import Paths
from dmtool.services import archive
from dmtool.store import contacts as cstore
from dmtool.store import messages as mstore
from dmtool.timeutil import fmt, parse
from dmtool.x.sandbox import SANDBOX_ME
from tests.conftest import Result, profile_store
from tests.xworld import ALICE, DAVE, ME, Cli, Clock, sync

NOW = "2021-08-01T00:00:00.000Z"
YOU, ANN, BEN, CAT, DAN, EVE = "100", "200", "300", "400", "500", "600"


# --- building archives ------------------------------------------------------------------------


def js(name: str, items: list[Any], part: int = 0) -> str:
    return f"window.YTD.{name}.part{part} = " + json.dumps(items, indent=2, ensure_ascii=False)


def dm(msg_id: str, sender: str, recipient: str, text: str, at: str) -> dict[str, Any]:
    return {"messageCreate": {"recipientId": recipient, "reactions": [], "urls": [], "text": text,
                              "mediaUrls": [], "senderId": sender, "id": msg_id, "createdAt": at}}


def conversation(me: str, other: str, *messages: dict[str, Any]) -> dict[str, Any]:
    a, b = sorted((me, other), key=lambda s: (len(s), s))
    # X lists a conversation's messages newest first.
    return {"dmConversation": {"conversationId": f"{a}-{b}", "messages": list(reversed(messages))}}


def tweet(tweet_id: str, text: str, at: str, reply_to: str | None = None,
          status: str | None = None) -> dict[str, Any]:
    t: dict[str, Any] = {"id_str": tweet_id, "full_text": text, "entities": {},
                         "created_at": parse(at).strftime("%a %b %d %H:%M:%S +0000 %Y")}
    if reply_to is not None:
        t["in_reply_to_user_id_str"] = reply_to
        t["in_reply_to_status_id_str"] = status
    return {"tweet": t}


def account(user_id: str = YOU, username: str = "you") -> str:
    return js("account", [{"account": {"accountId": user_id, "username": username,
                                       "createdAt": "2010-01-01T00:00:00.000Z"}}])


def files(me: str = YOU) -> dict[str, str]:
    """Ann DMed you; Ben wrote STOP (in the second part); a group chat with Cat;
    your replies to Dan (a reply alone) and to Ann; a thread of your own."""
    return {
        "account.js": account(me),
        "direct-messages.js": js("direct_messages", [conversation(
            me, ANN, dm("1001", ANN, me, "Hi! Could you tell me about the beta?",
                        "2021-07-20T10:00:00.000Z"),
            dm("1002", me, ANN, "Sure, happy to.", "2021-07-20T11:00:00.000Z"))]),
        "direct-messages-part1.js": js("direct_messages", [conversation(
            me, BEN, dm("1003", me, BEN, "Hello Ben", "2021-07-21T10:00:00.000Z"),
            dm("1004", BEN, me, "STOP", "2021-07-21T11:00:00.000Z"))], part=1),
        "direct-messages-group.js": js("direct_messages_group", [{"dmConversation": {
            "conversationId": "1400000000000000001", "messages": [
                {"messageCreate": {"id": "1005", "senderId": CAT, "text": "hi all",
                                   "createdAt": "2021-07-22T10:00:00.000Z"}}]}}]),
        "tweets.js": js("tweets", [
            tweet("2001", "@dan nice post", "2021-07-23T10:00:00.000Z", reply_to=DAN, status="1999"),
            tweet("2002", "just a post", "2021-07-23T11:00:00.000Z")]),
        "tweets-part1.js": js("tweets", [
            tweet("2003", "@ann thanks!", "2021-07-24T10:00:00.000Z", reply_to=ANN),
            tweet("2004", "and another thing", "2021-07-24T11:00:00.000Z", reply_to=me)], part=1),
    }


def folder(root: Path, data: dict[str, str]) -> Path:
    (root / "data").mkdir(parents=True)
    for name, text in data.items():
        (root / "data" / name).write_text(text, encoding="utf-8")
    return root


def zipped(path: Path, data: dict[str, str], prefix: str = "",
           extra: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in data.items():
            z.writestr(f"{prefix}data/{name}", text)
        for name, text in (extra or {}).items():
            z.writestr(name, text)
    return path


# --- helpers ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DMTOOL_NOW", NOW)


def imported(cli: Cli, path: Path) -> dict[str, Any]:
    r = cli("import", "archive", str(path), "--json")
    assert r.exit_code == 0, r
    return r.json()  # type: ignore[no-any-return]


TABLES = {
    "contacts": "SELECT user_id, handle, name, opted_out_at, opt_out_words, optout_review_text "
                "FROM contacts ORDER BY user_id",
    "messages": "SELECT event_id, conversation_id, contact_id, direction, text, at, source, "
                "recorded_at FROM messages ORDER BY event_id",
    "evidence": "SELECT contact_id, kind, at, ref, text FROM evidence ORDER BY kind, ref",
    "posts": "SELECT * FROM posts ORDER BY id",
    "conversations": "SELECT * FROM conversations ORDER BY id",
    "suppressions": "SELECT user_id, handle, kind, at, detail FROM suppressions ORDER BY user_id",
}


def snapshot(db: Callable[..., list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    return {name: db(sql) for name, sql in TABLES.items()}


def nothing_stored(cli: Cli) -> None:
    db_file = Paths.resolve("default").db_file
    if not db_file.exists():
        return  # the store was never even opened
    assert cli("contacts", "list", "--json").json() == []
    log = cli("log", "--json").json()
    assert not [e for e in log if e["action"] == "archive_imported"]


def check(cli: Cli, handle: str) -> Result:
    return cli("check", handle, "--json")


def codes(r: Result) -> set[str]:
    return {x["code"] for x in r.json()["reasons"]}


# --- import -----------------------------------------------------------------------------------


def test_first_import_counts(cli: Cli, tmp_path: Path, db: Any) -> None:
    data = imported(cli, folder(tmp_path / "arc", files()))
    assert data["conversations"] == 2  # the group chat is not read
    assert data["messages_new"] == 4 and data["messages_skipped"] == 0
    assert data["evidence_new"] == 2  # Ann's and Ben's inbound DMs
    assert data["contacts_new"] == 2  # Ann and Ben; Dan only got a reply
    assert data["opted_out"] == [f"user_{BEN}"]
    assert data["replies_new"] == 2  # to Dan and Ann; not your own thread
    assert data["account"] == "you"
    assert data["skipped_files"] == [str(tmp_path / "arc" / "data" / "direct-messages-group.js")]
    rows = db("SELECT event_id, direction, source, at FROM messages ORDER BY event_id")
    assert rows == [("1001", "in", "archive", "2021-07-20T10:00:00.000Z"),
                    ("1002", "out", "archive", "2021-07-20T11:00:00.000Z"),
                    ("1003", "out", "archive", "2021-07-21T10:00:00.000Z"),
                    ("1004", "in", "archive", "2021-07-21T11:00:00.000Z")]
    assert db("SELECT DISTINCT conversation_id FROM messages ORDER BY 1") == [
        (f"{YOU}-{ANN}",), (f"{YOU}-{BEN}",)]
    assert db("SELECT id, kind, author_id, in_reply_to_user_id, replied_to_id FROM posts "
              "ORDER BY id") == [("2001", "own", YOU, DAN, "1999"), ("2003", "own", YOU, ANN, None)]
    audit = [e for e in cli("log", "--json").json() if e["action"] == "archive_imported"]
    assert len(audit) == 1 and audit[0]["detail"]["messages_new"] == 4


def test_zip_imports_like_the_folder_and_a_second_import_changes_nothing(
        cli: Cli, tmp_path: Path, db: Any) -> None:
    first = imported(cli, zipped(tmp_path / "twitter.zip", files()))
    assert (first["messages_new"], first["contacts_new"], first["evidence_new"]) == (4, 2, 2)
    before = snapshot(db)
    # The same archive again, as a zip and as the folder it unpacks to.
    for again in (tmp_path / "twitter.zip", folder(tmp_path / "unpacked", files())):
        data = imported(cli, again)
        assert data["messages_new"] == 0 and data["messages_skipped"] == 4
        assert data["evidence_new"] == 0 and data["contacts_new"] == 0
        assert data["replies_new"] == 0 and data["opted_out"] == []
        assert snapshot(db) == before


def test_zip_of_the_unpacked_folder_is_found(cli: Cli, tmp_path: Path) -> None:
    data = imported(cli, zipped(tmp_path / "a.zip", files(), prefix="twitter-2021-08-01/"))
    assert data["messages_new"] == 4


def test_the_data_folder_itself_may_be_given(cli: Cli, tmp_path: Path) -> None:
    assert imported(cli, folder(tmp_path / "arc", files()) / "data")["messages_new"] == 4


def test_human_output(cli: Cli, tmp_path: Path) -> None:
    r = cli("import", "archive", str(folder(tmp_path / "arc", files())))
    assert r.exit_code == 0, r
    assert r.stdout.startswith("imported the archive of @you: 2 conversations, 4 new messages")
    assert f"opted out: @user_{BEN}" in r.stdout
    assert "skipped group chats" in r.stderr and "user_<id>" in r.stderr


# --- consent and opt-out ------------------------------------------------------------------------


def test_inbound_dm_gives_consent(cli: Cli, tmp_path: Path) -> None:
    imported(cli, folder(tmp_path / "arc", files()))
    r = check(cli, f"user_{ANN}")
    assert r.exit_code == 0, r
    assert [(e["kind"], e["ref"]) for e in r.json()["evidence"]] == [("inbound_dm", "1001")]


def test_stop_in_the_archive_opts_out(cli: Cli, tmp_path: Path) -> None:
    imported(cli, folder(tmp_path / "arc", files()))
    r = check(cli, f"user_{BEN}")
    assert r.exit_code == 3
    assert "E_OPTED_OUT" in codes(r)
    log = cli("log", "--json").json()
    assert [e["detail"]["at"] for e in log if e["action"] == "opted_out"] == [
        "2021-07-21T11:00:00.000Z"]


def ben_says(*texts: tuple[str, str, int]) -> dict[str, str]:
    """An archive where Ben writes each (text, time) in the given part file."""
    data = {"account.js": account()}
    by_part: dict[int, list[dict[str, Any]]] = {}
    for n, (text, at, part) in enumerate(texts):
        by_part.setdefault(part, []).append(dm(str(3000 + n), BEN, YOU, text, at))
    for part, msgs in by_part.items():
        name = "direct-messages.js" if part == 0 else f"direct-messages-part{part}.js"
        data[name] = js("direct_messages", [conversation(YOU, BEN, *msgs)], part=part)
    return data


def test_a_later_start_lifts_the_stop_whatever_the_file_order(cli: Cli, tmp_path: Path) -> None:
    # START sits in the first file, the earlier STOP in a later part: time order wins.
    data = imported(cli, folder(tmp_path / "arc", ben_says(
        ("START", "2021-07-22T10:00:00.000Z", 0), ("STOP", "2021-07-21T10:00:00.000Z", 1))))
    assert data["opted_out"] == []
    r = check(cli, f"user_{BEN}")
    assert r.exit_code == 0, r
    actions = [e["action"] for e in reversed(cli("log", "--json").json())]
    assert actions[:2] == ["opted_out", "opted_in"]


def test_a_start_before_the_stop_does_not_lift_it(cli: Cli, tmp_path: Path) -> None:
    data = imported(cli, folder(tmp_path / "arc", ben_says(
        ("START", "2021-07-20T10:00:00.000Z", 1), ("配信停止", "2021-07-21T10:00:00.000Z", 0))))
    assert data["opted_out"] == [f"user_{BEN}"]
    assert "E_OPTED_OUT" in codes(check(cli, f"user_{BEN}"))


def test_an_older_archive_cannot_lift_a_newer_opt_out(cli: Cli, tmp_path: Path) -> None:
    imported(cli, folder(tmp_path / "new", ben_says(("STOP", "2021-07-25T10:00:00.000Z", 0))))
    imported(cli, folder(tmp_path / "old", ben_says(("START", "2021-07-20T10:00:00.000Z", 0))))
    assert check(cli, f"user_{BEN}").exit_code == 3


def test_please_stop_puts_the_contact_in_review(cli: Cli, tmp_path: Path) -> None:
    imported(cli, folder(tmp_path / "arc", ben_says(
        ("please stop messaging me", "2021-07-25T10:00:00.000Z", 0))))
    assert "E_OPTOUT_REVIEW" in codes(check(cli, f"user_{BEN}"))


def add_contact(user_id: str, handle: str, mention_at: str | None = None) -> None:
    """A contact as a sync would leave it, with a stored mention of you."""
    store = profile_store()
    with store.tx() as conn:
        c, _ = cstore.upsert_x_user(conn, user_id, handle, None, now=NOW)
        if mention_at is not None:
            mstore.add_post(conn, post_id="1999", kind="mention", author_id=user_id,
                            text="@you what do you think?", at=mention_at, in_reply_to_user_id=None,
                            replied_to_id=None, conversation_id=None)
            cstore.add_evidence(conn, c.id, "mention", mention_at, "1999", None, now=NOW)
    store.close()


def test_a_reply_alone_is_not_consent(cli: Cli, tmp_path: Path, db: Any) -> None:
    add_contact(DAN, "dan")
    data = imported(cli, folder(tmp_path / "arc", files()))
    assert data["evidence_new"] == 2  # the two inbound DMs only
    r = check(cli, "dan")
    assert r.exit_code == 3 and "E_NO_CONSENT" in codes(r)
    # Nor does a reply to someone who DMed you add an exchange: the DM is the evidence.
    assert db("SELECT kind FROM evidence WHERE kind = 'public_exchange'") == []


def test_a_reply_to_a_stored_mention_is_a_public_exchange(cli: Cli, tmp_path: Path) -> None:
    add_contact(DAN, "dan", mention_at="2021-07-22T10:00:00.000Z")
    assert "E_MENTION_ONLY" in codes(check(cli, "dan"))
    data = imported(cli, folder(tmp_path / "arc", files()))
    assert data["evidence_new"] == 3 and data["contacts_new"] == 2
    r = check(cli, "dan")
    assert r.exit_code == 0, r
    assert ("public_exchange", "2001") in {(e["kind"], e["ref"]) for e in r.json()["evidence"]}
    assert imported(cli, tmp_path / "arc")["evidence_new"] == 0


def test_an_existing_contact_keeps_its_handle(cli: Cli, tmp_path: Path) -> None:
    add_contact(ANN, "ann")
    data = imported(cli, folder(tmp_path / "arc", files()))
    assert data["contacts_new"] == 1  # Ben only
    handles = sorted(c["handle"] for c in cli("contacts", "list", "--json").json())
    assert handles == ["ann", f"user_{BEN}"]
    assert check(cli, "ann").exit_code == 0


def test_history_is_not_news_for_the_digest(cli: Cli, tmp_path: Path) -> None:
    imported(cli, folder(tmp_path / "arc", files()))
    r = cli("digest", "--since", "24h", "--format", "json")
    assert r.exit_code == 0 and r.json()["inbound"] == []


# --- refused archives -----------------------------------------------------------------------------


BROKEN = {
    "account.js": ("account.js", "window.YTD.account.part0 = [ {\"account\": "),
    "bad json in a later part": ("direct-messages-part1.js",
                                 "window.YTD.direct_messages.part1 = [ {\"dmConversation\": } ]"),
    "no prefix": ("direct-messages.js", "hello, world"),
    "wrong shape": ("direct-messages.js", js("direct_messages", [{"conversation": {}}])),
    "bad id": ("direct-messages-part1.js", js("direct_messages", [conversation(
        YOU, BEN, dm("x1", BEN, YOU, "hi", "2021-07-21T11:00:00.000Z"))], part=1)),
    "bad time": ("direct-messages.js", js("direct_messages", [conversation(
        YOU, ANN, dm("1001", ANN, YOU, "hi", "yesterday"))])),
    "bad tweet time": ("tweets-part1.js", js("tweets", [
        {"tweet": {"id_str": "2005", "full_text": "hi", "created_at": "2021-07-24",
                   "in_reply_to_user_id_str": DAN}}], part=1)),
    "text after the list": ("tweets.js", js("tweets", []) + "\nalert(1)"),
    "account without id": ("account.js", js("account", [{"account": {"username": "you"}}])),
    "not utf-8": ("tweets.js", "window.YTD.tweets.part0 = [\"\udcff\"]"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_malformed_file_is_refused_naming_it(cli: Cli, tmp_path: Path, case: str) -> None:
    name, text = BROKEN[case]
    data = files()
    data[name] = text
    root = tmp_path / "arc"
    (root / "data").mkdir(parents=True)
    for n, t in data.items():
        (root / "data" / n).write_bytes(t.encode("utf-8", "surrogateescape"))
    r = cli("import", "archive", str(root))
    assert r.exit_code == 1, r
    assert f"data/{name}" in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""
    nothing_stored(cli)


def test_a_missing_account_file_is_refused(cli: Cli, tmp_path: Path) -> None:
    data = files()
    del data["account.js"]
    r = cli("import", "archive", str(zipped(tmp_path / "a.zip", data)), "--json")
    assert r.exit_code == 1
    err = json.loads(r.stderr)["error"]
    assert err["code"] == "E_INPUT" and "data/account.js" in err["message"]
    nothing_stored(cli)


def test_a_zip_with_a_path_traversal_member_is_refused(cli: Cli, tmp_path: Path) -> None:
    path = zipped(tmp_path / "evil.zip", files(), extra={"../../evil.sh": "rm -rf ~"})
    r = cli("import", "archive", str(path))
    assert r.exit_code == 1
    assert "../../evil.sh" in r.stderr and "outside" in r.stderr
    nothing_stored(cli)


def test_an_absurdly_large_member_is_refused(cli: Cli, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "MAX_MEMBER_BYTES", 5000)
    path = zipped(tmp_path / "bomb.zip", files() | {"tweets.js": js("tweets", []) + " " * 10_000})
    r = cli("import", "archive", str(path))
    assert r.exit_code == 1 and "data/tweets.js" in r.stderr and "larger" in r.stderr
    nothing_stored(cli)


@pytest.mark.parametrize("what", ["missing", "not a zip", "empty folder"])
def test_not_an_archive(cli: Cli, tmp_path: Path, what: str) -> None:
    path = tmp_path / "x"
    if what == "not a zip":
        path.write_text("hello")
    elif what == "empty folder":
        path.mkdir()
    r = cli("import", "archive", str(path))
    assert r.exit_code == 1 and str(path) in r.stderr
    nothing_stored(cli)


def test_another_accounts_archive_is_refused(cli: Cli, tmp_path: Path) -> None:
    store = profile_store()
    with store.tx():
        store.set_state("me_id", "999")
    store.close()
    r = cli("import", "archive", str(folder(tmp_path / "arc", files())))
    assert r.exit_code == 1 and "@you" in r.stderr
    nothing_stored(cli)


def test_exit_codes_in_a_real_process(run: Callable[..., Result], tmp_path: Path) -> None:
    good = folder(tmp_path / "arc", files())
    r = run("import", "archive", str(good), "--json")
    assert r.exit_code == 0 and r.json()["messages_new"] == 4
    r = run("check", f"user_{BEN}")
    assert r.exit_code == 3
    r = run("import", "archive", str(tmp_path / "nope.zip"), "--json")
    assert r.exit_code == 1 and json.loads(r.stderr)["error"]["code"] == "E_INPUT"


# --- reading in pieces ----------------------------------------------------------------------------


def test_reading_in_tiny_pieces_gives_the_same_result(cli: Cli, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Pieces cut through items, numbers and multi-byte characters (停止 is STOP)."""
    monkeypatch.setattr(archive, "READ_BYTES", 3)
    data = ben_says(("停止", "2021-07-21T10:00:00.000Z", 0), ("ok 1234567", "2021-07-20T10:00:00Z", 1))
    parsed = archive.read_archive(zipped(tmp_path / "a.zip", data))
    assert [(d.id, d.text) for d in parsed.dms] == [("3001", "ok 1234567"), ("3000", "停止")]
    assert imported(cli, tmp_path / "a.zip")["opted_out"] == [f"user_{BEN}"]


def test_json_errors_name_the_line(tmp_path: Path) -> None:
    data = files()
    data["tweets.js"] = "window.YTD.tweets.part0 = [\n  {\"tweet\": {\"id_str\": \"1\"}},\n  {\"tweet\": ]\n]"
    with pytest.raises(archive.InputError, match=r"tweets\.js: line 3: item 2 is not valid JSON"):
        archive.read_archive(folder(tmp_path / "arc", data))


def test_tweet_times() -> None:
    assert fmt(archive._tweet_time("Tue Jul 27 10:00:00 +0000 2021")) == "2021-07-27T10:00:00.000Z"
    assert fmt(archive._tweet_time("Tue Jul 27 10:00:00 +0900 2021")) == "2021-07-27T01:00:00.000Z"
    with pytest.raises(ValueError):
        archive._tweet_time("Tue Foo 27 10:00:00 +0000 2021")


# --- with sync, on the sandbox X ------------------------------------------------------------------


def test_sync_names_archive_contacts_and_pairs_replies_with_mentions(
        cli: Cli, clock: Clock, world: Any, tmp_path: Path) -> None:
    """An archive from before the API's window, then a sync: the placeholder
    handle gets its real name, and a reply from the archive to a mention the
    sync found becomes a public exchange."""
    old = fmt(clock.ago(days=45)) or ""
    mention = world.add_post(DAVE, f"@{SANDBOX_ME[1]} what do you think?", at=clock.ago(days=40))
    data = {
        "account.js": account(ME, "you"),
        "direct-messages.js": js("direct_messages", [conversation(
            ME, ALICE, dm("1001", ALICE, ME, "hello from long ago", old))]),
        "tweets.js": js("tweets", [tweet("1002", "@dave I like it", fmt(clock.ago(days=39)) or "",
                                         reply_to=DAVE, status=mention)]),
    }
    first = imported(cli, zipped(tmp_path / "a.zip", data))
    assert first["contacts_new"] == 1 and first["evidence_new"] == 1  # Dave's mention is not known yet
    world.incoming_dm(ALICE, "and hello again", at=clock.ago(minutes=5))
    synced = sync(cli)
    assert synced["dm_events_new"] == 1 and synced["contacts_new"] == 1  # Dave
    contacts = {c["user_id"]: c for c in cli("contacts", "list", "--json").json()}
    assert contacts[ALICE]["handle"] == "alice"
    assert len(contacts) == 2
    r = check(cli, "dave")
    assert r.exit_code == 0, r
    assert any(e["kind"] == "public_exchange" for e in r.json()["evidence"])


def test_archive_and_sync_share_event_ids(cli: Cli, clock: Clock, world: Any, tmp_path: Path) -> None:
    event = world.incoming_dm(ALICE, "hi there", at=clock.ago(days=2))
    at = fmt(clock.ago(days=2)) or ""
    data = {"account.js": account(ME, "you"),
            "direct-messages.js": js("direct_messages", [conversation(
                ME, ALICE, dm(event, ALICE, ME, "hi there", at))])}
    assert imported(cli, folder(tmp_path / "arc", data))["messages_new"] == 1
    assert sync(cli)["dm_events_new"] == 0
    assert imported(cli, tmp_path / "arc")["messages_new"] == 0
    thread = cli("thread", "alice", "--json").json()
    assert [m["text"] for m in thread["messages"]] == ["hi there"]



def test_old_archive_conversations_are_history_not_inbox(cli: Cli, tmp_path: Path) -> None:
    # NOW is 2021-08-01: Ann's conversation is recent (kept open), an old one is settled.
    data = files()
    data["direct-messages-part2.js"] = js("direct_messages", [conversation(
        YOU, EVE, dm("1101", EVE, YOU, "are you around?", "2021-05-01T10:00:00.000Z"))], part=2)
    imported(cli, folder(tmp_path / "a", data))
    open_ones = {i["handle"] for i in cli("inbox", "--json").json()}
    assert f"user_{EVE}" not in open_ones and f"user_{ANN}" in open_ones
    everything = {i["handle"]: i["status"] for i in cli("inbox", "--all", "--json").json()}
    assert everything[f"user_{EVE}"] == "done"
    assert cli("reopen", f"user_{EVE}").exit_code == 0


def test_sync_names_contacts_known_only_from_the_archive(cli: Cli, tmp_path: Path, world: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The archive has no handles for other people. When X cannot name them at
    import time (here: three 503s, all the client's attempts), the next public
    check of a sync asks X."""
    monkeypatch.setenv("DMTOOL_NOW", fmt(world.now()) or "")
    me = SANDBOX_ME[0]
    data = files(me)
    data["direct-messages.js"] = js("direct_messages", [conversation(
        me, ALICE, dm("1001", ALICE, me, "hello from long ago", "2021-07-20T10:00:00.000Z"))])
    world.fail_next(503, count=3, method="GET", path_contains="/2/users")
    assert imported(cli, folder(tmp_path / "a", data))["contacts_named"] == 0
    assert cli("contacts", "show", f"user_{ALICE}").exit_code == 0
    sync(cli)
    assert cli("contacts", "show", "alice", "--json").json()["user_id"] == ALICE
    assert cli("contacts", "show", f"user_{ALICE}").exit_code == 1


def test_another_accounts_archive_never_becomes_this_accounts_consent(
        cli: Cli, tmp_path: Path, world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found in review: an archive imported before the first sync, then a sync as
    another account, turned the archive's DMs into consent for that account."""
    monkeypatch.setenv("DMTOOL_NOW", fmt(world.now()) or "")
    imported(cli, folder(tmp_path / "a", files("999")))  # not the sandbox account
    r = cli("sync", "--json")
    assert r.exit_code == 4
    assert "archive" in json.loads(r.stderr)["error"]["message"]
    r = cli("import", "archive", str(folder(tmp_path / "b", files(SANDBOX_ME[0]))))
    assert r.exit_code == 1  # and no second account's archive either


def test_archive_history_respects_done_and_reopen(cli: Cli, tmp_path: Path) -> None:
    """Found in review: history reopened conversations you closed, and a re-import
    undid a reopen."""
    path = folder(tmp_path / "a", files())
    imported(cli, path)
    handle = f"user_{ANN}"
    assert cli("done", handle).exit_code == 0
    imported(cli, path)  # history again: stays done
    assert {i["handle"]: i["status"] for i in cli("inbox", "--all", "--json").json()}[handle] \
        == "done"
    assert cli("reopen", handle).exit_code == 0
    imported(cli, path)
    assert handle in {i["handle"] for i in cli("inbox", "--json").json()}


@pytest.mark.parametrize("change", ["future", "ancient", "surrogate"])
def test_implausible_times_and_broken_text_refuse_the_whole_archive(
        cli: Cli, tmp_path: Path, change: str) -> None:
    """Found in review: a 2099 date kept consent alive for ever, and a broken
    character in tweets.js failed after the DMs were already written."""
    data = files()
    if change == "surrogate":
        data["tweets.js"] = data["tweets.js"].replace("@dan nice post", "bad \\ud800")
    else:
        when = "2099-01-01T10:00:00.000Z" if change == "future" else "0001-01-01T10:00:00.000Z"
        data["direct-messages.js"] = data["direct-messages.js"].replace(
            "2021-07-20T10:00:00.000Z", when)
    r = cli("import", "archive", str(folder(tmp_path / "a", data)))
    assert r.exit_code == 1, r
    assert ("tweets.js" if change == "surrogate" else "direct-messages.js") in r.stderr
    nothing_stored(cli)


def test_a_contact_added_by_handle_is_merged_when_sync_names_the_archive_contact(
        cli: Cli, tmp_path: Path, world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found in review: the handle-only record and the archive's user_<id> record
    became two @alice contacts, splitting notes, tags and evidence."""
    monkeypatch.setenv("DMTOOL_NOW", fmt(world.now()) or "")
    cli("contacts", "add", "@alice", "--tag", "vip", "--note", "met at conf")
    me = SANDBOX_ME[0]
    data = files(me)
    data["direct-messages.js"] = js("direct_messages", [conversation(
        me, ALICE, dm("1001", ALICE, me, "hello from long ago", "2021-07-20T10:00:00.000Z"))])
    imported(cli, folder(tmp_path / "a", data))
    sync(cli)
    alices = [c for c in cli("contacts", "list", "--json").json() if c["handle"] == "alice"]
    assert len(alices) == 1
    shown = cli("contacts", "show", "alice", "--json").json()
    assert shown["user_id"] == ALICE and shown["tags"] == ["vip"]
    assert shown["notes"][0]["text"] == "met at conf"
    assert any(e["kind"] == "inbound_dm" for e in shown["evidence"])
