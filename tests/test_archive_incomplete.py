"""An archive import that stops half way never lets dmtool say yes (issue 11, point 1).

Before it writes any message an import records itself and everyone in the
archive; until it completes, the consent decision refuses them with
E_IMPORT_INCOMPLETE (exit 3), because the part not written yet may hold their
STOP. A rerun finishes it; `--discard-incomplete` takes out what it wrote.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dmtool.paths import Paths
from dmtool.services import archive
from dmtool.store import open_store
from dmtool.store.migrations import IMPORT_MIGRATION, MIGRATIONS
from tests.conftest import Result, dmtool_command, pg_raw, profile_store
from tests.test_archive import ANN, BEN, CAT, YOU, account, conversation, dm, folder, js
from tests.xworld import Cli

NOW = "2021-08-01T00:00:00.000Z"
T0 = datetime(2021, 7, 1, tzinfo=UTC)  # a month before NOW: consent is fresh


@pytest.fixture(autouse=True)
def pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DMTOOL_NOW", NOW)


def at(i: int) -> str:
    return (T0 + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def long_history(root: Path, n: int) -> tuple[Path, int]:
    """Ann writes n DMs, then STOP; Ben writes twice after that. Returns the
    archive folder and how many messages it holds."""
    ann = [dm(str(10_000 + i), ANN, YOU, f"message {i} about the beta", at(i)) for i in range(n)]
    ann.append(dm(str(10_000 + n), ANN, YOU, "STOP", at(n)))
    ben = [dm(str(900_000 + i), BEN, YOU, "hello from Ben", at(n + 10 + i)) for i in range(2)]
    data = {"account.js": account(),
            "direct-messages.js": js("direct_messages", [conversation(YOU, ANN, *ann),
                                                         conversation(YOU, BEN, *ben)])}
    return folder(root, data), n + 3


def count_messages() -> int:
    """Committed messages of the default profile's store, on this test's engine,
    read as another process would (0 before the store or its table exists)."""
    url = os.environ.get("DMTOOL_DATABASE_URL")
    if url:
        from dmtool.store.pg import connect
        from dmtool.store.url import parse

        pg = connect(parse(url))
        try:
            return int(pg.execute("SELECT count(*) FROM messages").fetchone()[0])
        finally:
            pg.close()
    db_file = Paths.resolve("default").db_file
    if not db_file.exists():
        return 0
    conn = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=5)
    try:
        return int(conn.execute("SELECT count(*) FROM messages").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def codes(r: Result) -> set[str]:
    return {x["code"] for x in r.json()["reasons"]}


def test_a_killed_import_refuses_its_people_until_a_rerun_finishes_it(
        cli: Cli, tmp_path: Path, dmtool_home: Path) -> None:
    # 5 batches of 1000 messages: the first commits within a second or two, and
    # the kill lands long before the last one (which holds Ann's STOP).
    arc, total = long_history(tmp_path / "arc", 5 * archive.BATCH)
    env = {**os.environ, "DMTOOL_HOME": str(dmtool_home), "DMTOOL_NOW": NOW}
    proc = subprocess.Popen([*dmtool_command(), "import", "archive", str(arc)], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while count_messages() == 0:  # at least one batch committed
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no batch committed in 120 s"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    stored = count_messages()
    assert 0 < stored < total, (stored, total)

    # Ann has DMs and consent evidence in the store, but not her STOP: still no.
    r = cli("check", "user_200", "--json")
    assert r.exit_code == 3, r
    assert codes(r) == {"E_IMPORT_INCOMPLETE"}  # without the record: yes (exit 0)
    hint = next(x["message"] for x in r.json()["reasons"] if x["code"] == "E_IMPORT_INCOMPLETE")
    assert f"dmtool import archive {arc}" in hint and "--discard-incomplete" in hint
    r = cli("draft", "user_200", "Hi Ann, the beta opens on Monday.", "--json")
    assert r.exit_code == 3, r
    assert "E_IMPORT_INCOMPLETE" in r.stderr
    assert not cli("drafts", "list", "--json").json()
    listed = {c["handle"]: c for c in cli("contacts", "list", "--json").json()}
    assert listed["user_200"]["status"] == "import-incomplete"
    assert listed["user_200"]["can_dm"] is False
    shown = cli("contacts", "show", "user_200", "--json").json()
    assert shown["status"] == "import-incomplete" and not shown["can_dm"]
    assert [c["handle"] for c in cli("contacts", "list", "--status", "import-incomplete",
                                     "--json").json()] == ["user_200"]

    # A rerun finishes it: Ann's STOP is there, and nobody is held back any more.
    r = cli("import", "archive", str(arc), "--json")
    assert r.exit_code == 0, r
    assert r.json()["messages_new"] == total - stored
    assert count_messages() == total
    r = cli("check", "user_200", "--json")
    assert r.exit_code == 3 and codes(r) == {"E_OPTED_OUT"}, r
    r = cli("check", "user_300", "--json")
    assert r.exit_code == 0, r  # Ben DMed you: nothing holds him back any more


def start_pending(monkeypatch: pytest.MonkeyPatch, arc_dir: Path, data: dict[str, str],
                  upto: int) -> archive.Archive:
    """Import an archive, and stop it as a kill would, after `upto` DMs are
    committed (one DM a batch here)."""
    arc = archive.read_archive(folder(arc_dir, data))
    real = archive.mstore.add_message
    calls = 0

    def add(*args: Any, **kwargs: Any) -> bool:
        nonlocal calls
        calls += 1
        if calls > upto:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    store = profile_store()
    try:
        with monkeypatch.context() as mp:
            mp.setattr(archive, "BATCH", 1)
            mp.setattr(archive.mstore, "add_message", add)
            with pytest.raises(KeyboardInterrupt):
                archive.import_archive(store, arc, now=NOW, label=str(arc_dir))
    finally:
        store.close()
    return arc


def three_people() -> dict[str, str]:
    """Ann DMs twice, Ben DMs then writes STOP, Cat DMs once: in that order."""
    return {"account.js": account(), "direct-messages.js": js("direct_messages", [
        conversation(YOU, ANN, dm("1", ANN, YOU, "Hi there", at(1)), dm("2", ANN, YOU, "Hello?", at(2))),
        conversation(YOU, BEN, dm("3", BEN, YOU, "Hi", at(3)), dm("4", BEN, YOU, "STOP", at(4))),
        conversation(YOU, CAT, dm("5", CAT, YOU, "Hey", at(5)))])}


def test_every_participant_is_held_back_even_those_not_written_yet(
        cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Committed: Ann's two DMs and Ben's "Hi"; not Ben's STOP, nothing of Cat.
    start_pending(monkeypatch, tmp_path / "arc", three_people(), upto=3)
    assert {c["handle"]: c["status"] for c in cli("contacts", "list", "--json").json()} == {
        "user_200": "import-incomplete", "user_300": "import-incomplete"}
    for handle in ("user_200", "user_300"):
        r = cli("check", handle, "--json")
        assert r.exit_code == 3 and "E_IMPORT_INCOMPLETE" in codes(r), r
    # Cat is not in the store yet; once she is (a sync, a handle added later), she is held too.
    cli("contacts", "add", "cat")
    from dmtool.store import contacts as cstore

    store = profile_store()
    with store.tx() as conn:
        cstore.set_user_id(conn, cstore.get(conn, "cat"), CAT, now=NOW)
        cstore.add_evidence(conn, cstore.get(conn, "cat").id, "request", at(9), "m1",
                            "asked me to DM her", now=NOW)
    store.close()
    r = cli("check", "cat", "--json")
    assert r.exit_code == 3 and codes(r) == {"E_IMPORT_INCOMPLETE"}, r


def test_without_the_pending_record_a_partial_history_says_yes(
        cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the record prevents: the same partial store, its record removed, says yes."""
    start_pending(monkeypatch, tmp_path / "arc", three_people(), upto=3)
    assert cli("check", "user_300", "--json").exit_code == 3
    store = profile_store()
    with store.tx() as conn:
        conn.execute("DELETE FROM import_participants")
    store.close()
    assert cli("check", "user_300", "--json").exit_code == 0  # Ben's STOP is not in the store


def test_rerun_from_another_place_finishes_it(cli: Cli, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    start_pending(monkeypatch, tmp_path / "arc", three_people(), upto=3)
    moved = folder(tmp_path / "moved", three_people())  # the same archive, unpacked elsewhere
    r = cli("import", "archive", str(moved), "--json")
    assert r.exit_code == 0, r
    assert r.json()["incomplete_imports"] == []
    assert codes(cli("check", "user_300", "--json")) == {"E_OPTED_OUT"}
    assert cli("check", "user_200", "--json").exit_code == 0


def test_another_archive_does_not_finish_it(cli: Cli, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    start_pending(monkeypatch, tmp_path / "arc", three_people(), upto=3)
    other = three_people()
    other["direct-messages.js"] = js("direct_messages", [conversation(
        YOU, ANN, dm("1", ANN, YOU, "Hi there", at(1)), dm("2", ANN, YOU, "Hello?", at(2)))])
    r = cli("import", "archive", str(folder(tmp_path / "older", other)))
    assert r.exit_code == 0, r
    assert "still incomplete" in r.stderr and str(tmp_path / "arc") in r.stderr
    assert "E_IMPORT_INCOMPLETE" in codes(cli("check", "user_300", "--json"))
    # ...and discarding the stopped one keeps what the complete one also holds.
    r = cli("import", "archive", "--discard-incomplete", "--json")
    assert r.exit_code == 0, r
    assert r.json()["discarded"][0]["messages"] == 1  # Ben's "Hi": Ann's two are the other's too
    assert [m["text"] for m in cli("thread", "user_200", "--json", "--peek").json()["messages"]] == [
        "Hi there", "Hello?"]


def test_discard_incomplete_takes_out_what_it_wrote(cli: Cli, tmp_path: Path, db: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Committed: Ann's two DMs, Ben's "Hi" and his STOP; nothing of Cat.
    start_pending(monkeypatch, tmp_path / "arc", three_people(), upto=4)
    assert db("SELECT count(*) FROM messages")[0][0] == 4
    r = cli("import", "archive", "--discard-incomplete")
    assert r.exit_code == 0, r
    assert r.stdout == ""
    assert "discarded the incomplete import" in r.stderr and "opt-outs it recorded stay" in r.stderr
    assert db("SELECT count(*) FROM messages")[0][0] == 0
    assert db("SELECT count(*) FROM evidence")[0][0] == 0
    assert db("SELECT count(*) FROM conversations")[0][0] == 0
    # Ann is gone with her history; Ben's STOP stays (only he can lift it).
    assert [c["handle"] for c in cli("contacts", "list", "--json").json()] == ["user_300"]
    assert codes(cli("check", "user_300", "--json")) >= {"E_OPTED_OUT"}
    assert cli("import", "archive", "--discard-incomplete").stderr.startswith("no incomplete import")
    assert "archive_discarded" in [e["action"] for e in cli("log", "--json").json()]


def test_discard_and_a_path_together_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    assert cli("import", "archive", str(tmp_path), "--discard-incomplete").exit_code == 2
    assert cli("import", "archive").exit_code == 2


def test_a_full_disk_keeps_the_part_and_says_a_rerun_finishes_it(
        cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_engine: str) -> None:
    arc, total = long_history(tmp_path / "arc", 3 * archive.BATCH)
    cli("db", "check")  # the store exists, at its current size
    with monkeypatch.context() as mp:
        if store_engine == "sqlite":
            db_file = Paths.resolve("default").db_file
            pages = sqlite3.connect(db_file).execute("PRAGMA page_count").fetchone()[0]
            limit_pages(mp, pages + 180)  # room for one batch of 1000 messages, not for three
        else:  # the server's disk fills up after the first batch
            pg_raw("CREATE FUNCTION full_disk() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                   "IF (SELECT count(*) FROM messages) >= 1000 THEN RAISE EXCEPTION "
                   "'could not extend file' USING ERRCODE = 'disk_full'; END IF; RETURN NEW; "
                   "END $$; CREATE TRIGGER full_disk BEFORE INSERT ON messages FOR EACH ROW "
                   "EXECUTE FUNCTION full_disk()")
        r = cli("import", "archive", str(arc), "--json")
        if store_engine == "pg":
            pg_raw("DROP TRIGGER full_disk ON messages")  # space again
    assert r.exit_code == 4, r
    err = r.stderr
    assert "E_DISK_FULL" in err and "disk full" in err and "kept" in err
    assert "again: it finishes the import" in err and "damaged" not in err
    stored = count_messages()
    assert 0 < stored < total
    r = cli("check", "user_200", "--json")
    assert r.exit_code == 3 and "E_IMPORT_INCOMPLETE" in codes(r)
    assert cli("import", "archive", str(arc)).exit_code == 0
    assert codes(cli("check", "user_200", "--json")) == {"E_OPTED_OUT"}


def limit_pages(monkeypatch: pytest.MonkeyPatch, pages: int) -> None:
    """A full disk, by fault injection: every store opened may grow to `pages`."""
    import dmtool.store as store_pkg
    from dmtool.store import db as dbmod

    real = dbmod.open_store

    def small(path: Path, **kw: Any) -> Any:
        s = real(path, **kw)
        s.conn.execute(f"PRAGMA max_page_count = {pages}")
        return s

    monkeypatch.setattr(store_pkg, "open_store", small)


def test_a_repeated_message_id_is_counted_and_said(cli: Cli, tmp_path: Path) -> None:
    data = three_people()
    data["direct-messages-part1.js"] = js("direct_messages", [conversation(
        YOU, ANN, dm("2", ANN, YOU, "Hello? (again, edited)", at(2)))], part=1)
    r = cli("import", "archive", str(folder(tmp_path / "arc", data)), "--json")
    assert r.exit_code == 0, r
    out = r.json()
    assert out["messages_read"] == 6 and out["messages_new"] == 5
    assert out["messages_repeated"] == 1 and out["messages_skipped"] == 1
    assert "skipped 1 message whose id the archive repeats" in r.stderr
    assert "id 2 (" in r.stderr and "direct-messages-part1.js" in r.stderr
    texts = [m["text"] for m in cli("thread", "user_200", "--json", "--peek").json()["messages"]]
    assert texts == ["Hi there", "Hello?"]  # the first one read is kept


def test_upgrade_to_the_import_migration_keeps_data(new_store: Callable[..., Any]) -> None:
    old = new_store(migrate_to=IMPORT_MIGRATION - 1)
    with old.tx() as conn:
        conn.execute("INSERT INTO contacts (user_id, handle, created_at, updated_at) "
                     "VALUES ('200', 'ann', 't', 't')")
        cid = conn.execute("SELECT id FROM contacts").fetchone()[0]
        conn.execute("INSERT INTO messages (event_id, contact_id, direction, text, at, source, "
                     "recorded_at) VALUES ('1', ?, 'in', 'hi', 't', 'archive', 't')", (cid,))
    old.close()
    store = open_store(old.location)
    assert store.schema_version() == len(MIGRATIONS)
    assert tuple(store.execute("SELECT handle, import_id FROM contacts").fetchall()[0]) == \
        ("ann", None)
    assert tuple(store.execute("SELECT text, import_id FROM messages").fetchall()[0]) == ("hi", None)
    assert store.execute("SELECT count(*) FROM archive_imports").fetchone()[0] == 0
    store.close()


def test_json_everywhere_helper_still_sees_import_archive(run: Callable[..., Result]) -> None:
    r = run("import", "archive", "--help")
    assert r.exit_code == 0 and "--discard-incomplete" in r.stdout


def test_the_autoack_inherits_the_refusal(cli: Cli, world: Any, clock: Any, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.xworld import ALICE, ME, sync

    assert cli("config", "set", "autoack.text", "Thanks, I read every DM. – Alex").exit_code == 0
    assert cli("config", "set", "autoack.enabled", "true").exit_code == 0
    sync(cli)
    history = {"account.js": account(ME, "me"), "direct-messages.js": js("direct_messages", [
        conversation(ME, ALICE, dm("1", ALICE, ME, "Hi, long ago", at(1)))])}
    start_pending(monkeypatch, tmp_path / "arc", history, upto=0)
    world.incoming_dm(ALICE, "hello, a question about pricing", at=clock.ago(minutes=5))
    assert sync(cli)["autoacks_sent"] == 0
    skipped = [e for e in cli("log", "--json").json() if e["action"] == "autoack_skipped"]
    assert [e["codes"] for e in skipped] == [["E_IMPORT_INCOMPLETE"]]


def test_the_policy_refuses_a_pending_contact_whatever_else_holds() -> None:
    from dmtool import policy

    now = datetime(2026, 3, 2, tzinfo=UTC)
    snap = policy.ContactSnapshot(
        user_id="200", handle="ann", name=None, import_pending="/tmp/x y.zip",
        evidence=(policy.Evidence("inbound_dm", now - timedelta(days=1), "1"),),
        messages=(policy.Msg(now - timedelta(days=1), "in", "Hi"),))
    d = policy.decide(snap, None, [], policy.PolicySettings(), now)
    assert not d.allowed and [r.code for r in d.blocking] == ["E_IMPORT_INCOMPLETE"]
    assert "dmtool import archive '/tmp/x y.zip'" in d.blocking[0].message
    ack = policy.decide_autoack(snap, now - timedelta(minutes=5), [], policy.PolicySettings(),
                                "Thanks!", now)
    assert "E_IMPORT_INCOMPLETE" in [r.code for r in ack.blocking]
    clear = policy.decide(snap._replace(import_pending=None),
                          None, [], policy.PolicySettings(), now)
    assert clear.allowed
