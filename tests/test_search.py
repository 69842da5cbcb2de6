"""`dmtool search` (issue 12 point 3): messages, notes, names and handles,
newest first, Japanese included; the trigram index, and the scans that give
the same answers where it cannot (short words, a SQLite without it)."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from dmtool.paths import Paths
from dmtool.services.search import search, terms_of
from dmtool.store import contacts as cstore
from dmtool.store import db as store_db
from dmtool.store import messages as mstore
from dmtool.store import open_store
from dmtool.store import search as sstore
from dmtool.store.migrations import SEARCH_MIGRATION
from dmtool.timeutil import fmt
from dmtool.x.sandbox import SandboxWorld
from tests.xworld import ALICE, BOB, CAROL, Cli, Clock, sync

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def found(cli: Cli, *args: str) -> list[tuple[str, str, str | None]]:
    """(kind, handle, text) of each hit of `dmtool search ARGS --json`."""
    r = cli("search", *args, "--json")
    assert r.exit_code == 0, r
    return [(h["kind"] if h["kind"] != "message" else h["direction"], h["contact"]["handle"],
             h["text"]) for h in r.json()["hits"]]


@pytest.fixture
def talked(cli: Cli, world: SandboxWorld, clock: Clock) -> SandboxWorld:
    """Alice and Bob wrote, in English and Japanese; you answered; a note on Carol."""
    world.incoming_dm(ALICE, "Hello! A question about pricing for teams", at=clock.ago(days=3))
    world.outgoing_dm(ALICE, "Sure: the PRICING page has it", at=clock.ago(days=3, hours=-1))
    world.incoming_dm(BOB, "配信停止してください", at=clock.ago(days=2))
    world.incoming_dm(BOB, "来週の打ち合わせの件、よろしくお願いします", at=clock.ago(days=1))
    sync(cli)
    assert cli("contacts", "add", "carol", "--name", "Carol Chen").exit_code == 0
    assert cli("contacts", "note", "carol", "met at the Tokyo meetup; asked about pricing").exit_code == 0
    return world


def test_finds_messages_notes_and_contacts_newest_first(cli: Cli, talked: SandboxWorld) -> None:
    assert found(cli, "pricing") == [
        ("note", "carol", "met at the Tokyo meetup; asked about pricing"),
        ("out", "alice", "Sure: the PRICING page has it"),  # case is ignored
        ("in", "alice", "Hello! A question about pricing for teams"),
    ]
    assert found(cli, "carol") == [("contact", "carol", None)]
    assert found(cli, "@CAROL") == [("contact", "carol", None)]  # handles as people type them
    assert found(cli, "Chen") == [("contact", "carol", None)]


def test_japanese_words_are_found_without_spaces(cli: Cli, talked: SandboxWorld,
                                                 store_engine: str) -> None:
    want = [("in", "bob", "配信停止してください")]
    assert found(cli, "配信停止") == want  # 4 characters: the trigram index
    assert found(cli, "停止") == want  # 2: too short for trigrams, found by a scan
    assert cli("search", "停止", "--json").json()["method"] == "scan"
    # PostgreSQL has no trigram index (migration 7): it scans, with the same answers.
    assert cli("search", "配信停止", "--json").json()["method"] == \
        ("index" if store_engine == "sqlite" else "scan")
    assert found(cli, "打ち合わせ") == [("in", "bob", "来週の打ち合わせの件、よろしくお願いします")]
    assert found(cli, "件") == [("in", "bob", "来週の打ち合わせの件、よろしくお願いします")]


def test_every_word_must_occur_and_quotes_make_a_phrase(cli: Cli, talked: SandboxWorld) -> None:
    assert found(cli, "pricing", "teams") == [("in", "alice", "Hello! A question about pricing for teams")]
    assert found(cli, "teams pricing") == found(cli, "pricing", "teams")
    assert found(cli, '"pricing for"') == [("in", "alice", "Hello! A question about pricing for teams")]
    assert found(cli, '"for pricing"') == []
    assert found(cli, "pricing", "xyz") == []
    r = cli("search", '""', "--json")
    assert r.exit_code == 1 and "nothing to search for" in r.stderr


def test_contact_since_and_limit(cli: Cli, talked: SandboxWorld, clock: Clock) -> None:
    assert [h[:2] for h in found(cli, "pricing", "--contact", "@alice")] == [("out", "alice"),
                                                                           ("in", "alice")]
    assert found(cli, "pricing", "--contact", "bob") == []
    r = cli("search", "pricing", "--contact", "nobody_here")
    assert r.exit_code == 1 and "no contact @nobody_here" in r.stderr
    # --since: a duration back from now, or a date (local time unless it has an offset)
    assert [h[0] for h in found(cli, "pricing", "--since", "1d")] == ["note"]
    assert found(cli, "pricing", "--since", "4d") == found(cli, "pricing")
    day = (clock.now - timedelta(days=2, hours=12)).strftime("%Y-%m-%dT%H:%M+00:00")
    assert [h[0] for h in found(cli, "pricing", "--since", day)] == ["note"]
    r = cli("search", "pricing", "--since", "last tuesday")
    assert r.exit_code == 2 and "--since" in r.stderr  # a usage error
    data = cli("search", "pricing", "--limit", "2", "--json").json()
    assert len(data["hits"]) == 2 and data["truncated"] is True
    assert cli("search", "pricing", "--json").json()["truncated"] is False
    assert len(cli("search", "pricing", "--limit", "0", "--json").json()["hits"]) == 3  # 0: all


def test_json_hit_shape(cli: Cli, talked: SandboxWorld) -> None:
    data = cli("search", "teams", "--json").json()
    assert set(data) == {"query", "method", "hits", "truncated"}
    (hit,) = data["hits"]
    assert hit["kind"] == "message" and hit["direction"] == "in"
    assert hit["contact"] == {"handle": "alice", "user_id": ALICE, "name": "Alice A"}
    assert hit["at"].endswith("Z") and hit["id"]  # RFC 3339 UTC; X's event id
    thread = cli("thread", "alice", "--json", "--peek").json()
    assert hit["id"] in {m["id"] for m in thread["messages"]}


@pytest.fixture
def tokyo(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The local zone is Tokyo's (TZ is read at start-up: tzset here)."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.delenv("TZ")
    time.tzset()


def test_piped_output_is_tab_separated_local_time(cli: Cli, talked: SandboxWorld,
                                                  clock: Clock, tokyo: None) -> None:
    r = cli("search", "teams")
    assert r.exit_code == 0
    (line,) = r.stdout.splitlines()
    at = (clock.now - timedelta(days=3)).astimezone(UTC) + timedelta(hours=9)
    assert line.split("\t") == [at.strftime("%Y-%m-%d %H:%M"), "in", "@alice",
                                "Hello! A question about pricing for teams"]
    assert cli("search", "nothing-like-this").stdout == ""


def test_highlight_marks_every_term_ignoring_case_of_ascii() -> None:
    from dmtool.cli.search_cmd import highlighted

    text = highlighted("Pricing? see the pricing page. 配信停止", ("pricing", "停止"))
    marked = [text.plain[s.start:s.end] for s in text.spans]
    assert marked == ["Pricing", "pricing", "停止"]
    long = highlighted("x" * 500 + " pricing " + "y" * 500, ("pricing",), width=100)
    assert "pricing" in long.plain and len(long.plain) <= 102 and long.plain.startswith("…")
    escape = highlighted("\x1b]0;pwned\x07pricing", ("pricing",))
    assert "\x1b" not in escape.plain  # other people's text cannot drive the terminal


def test_on_a_terminal_the_matches_are_highlighted(cli: Cli, talked: SandboxWorld) -> None:
    from tests.test_review_pty import finish, spawn

    child = spawn("search", "pricing", env={"TERM": "xterm-256color"})
    child.expect_exact("\x1b[1;7mpricing\x1b[0m")  # bold reverse, also under NO_COLOR
    child.expect_exact("\x1b[1;7mPRICING\x1b[0m")
    assert finish(child) == 0


def test_piped_search_loads_no_rich(cli: Cli, talked: SandboxWorld) -> None:
    from tests.test_startup import probe

    heavy, out = probe("search", "pricing")
    assert "rich" not in heavy and "pricing" in out
    heavy, _ = probe("search", "pricing", "--json")
    assert "rich" not in heavy


def test_other_commands_do_not_load_search(cli: Cli, talked: SandboxWorld) -> None:
    code = ("import sys\nfrom dmtool.cli.app import main\nsys.argv = ['dmtool', 'inbox', '--json']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "sys.stderr.write('LOADED=' + ','.join(m for m in sys.modules if 'search' in m))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)
    assert p.stderr.strip().endswith("LOADED="), p.stderr


# --- the index is kept current ----------------------------------------------------------------


def test_index_follows_every_writer(cli: Cli, talked: SandboxWorld, world: SandboxWorld,
                                    clock: Clock, store_engine: str) -> None:
    world.incoming_dm(CAROL, "one more question on pricing", at=clock.ago(hours=1))
    sync(cli)
    assert ("in", "carol", "one more question on pricing") in found(cli, "question")
    assert cli("contacts", "forget", "bob", "--yes").exit_code == 0  # messages go with it
    assert found(cli, "配信停止") == [] and found(cli, "停止") == []
    if store_engine == "pg":  # no index to check there
        return
    path = Paths.resolve("default").db_file
    conn = sqlite3.connect(path)
    for table in ("messages_fts", "notes_fts", "contacts_fts"):
        conn.execute(f"INSERT INTO {table} ({table}) VALUES ('integrity-check')")  # raises if not
    conn.close()


def test_triggers_on_update_and_delete(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    conn = store.conn
    now = fmt(T0) or ""
    with store.tx():
        c = cstore.create(conn, "ann", now=now, name="Ann Archer")
        mstore.add_message(conn, event_id="1", conversation_id="1-2", contact_id=c.id,
                           direction="in", text="the quarterly invoice", at=now, source="sync",
                           now=now)
        cstore.add_note(conn, c.id, "prefers email", now=now)
    q = sstore.Query(("invoice",))
    assert [h.text for h in sstore.messages(conn, q)] == ["the quarterly invoice"]
    with store.tx():
        conn.execute("UPDATE messages SET text = 'the yearly receipt'")
        conn.execute("UPDATE notes SET text = 'prefers phone'")
        conn.execute("UPDATE contacts SET handle = 'annie', name = 'Ann Baker'")
    assert sstore.messages(conn, q) == []
    assert [h.text for h in sstore.messages(conn, sstore.Query(("receipt",)))] == \
        ["the yearly receipt"]
    assert [h.text for h in sstore.notes(conn, sstore.Query(("phone",)))] == ["prefers phone"]
    assert sstore.notes(conn, sstore.Query(("email",))) == []
    assert [h.id for h in sstore.contacts(conn, sstore.Query(("baker",)))] == [c.id]
    assert sstore.contacts(conn, sstore.Query(("archer",))) == []
    with store.tx():
        conn.execute("DELETE FROM contacts")  # cascades to messages and notes
    for table in ("messages", "notes", "contacts"):
        assert conn.execute(f"SELECT count(*) FROM {table}_fts").fetchone()[0] == 0
        conn.execute(f"INSERT INTO {table}_fts ({table}_fts) VALUES ('integrity-check')")
    assert sstore.messages(conn, sstore.Query(("receipt",))) == []
    store.close()


# --- every way of finding rows gives the same answer -------------------------------------------

ALPHABET = "abcABC xyz%_\\\"'配信停止ーお願いÉé"
texts = hs.text(alphabet=ALPHABET, min_size=0, max_size=12)
queries = hs.lists(hs.text(alphabet=ALPHABET.replace(" ", ""), min_size=1, max_size=4),
                   min_size=1, max_size=2)


def _reference(rows: list[tuple[int, str, str]], terms: tuple[str, ...]) -> list[int]:
    """Row ids holding every term, A-Z case ignored, newest first."""
    def fold(s: str) -> str:
        return "".join(ch.lower() if ch.isascii() else ch for ch in s)

    hits = [(at, i) for i, at, text in rows if all(fold(t) in fold(text) for t in terms)]
    return [i for at, i in sorted(hits, reverse=True)]


@pytest.fixture(scope="module", params=["sqlite", "pg"])
def corpus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A store of random short texts, for the property below, on each engine
    (PostgreSQL: ILIKE on COLLATE "C" text must fold A-Z only, as LIKE does)."""
    if request.param == "pg":
        from tests import pgserver

        srv = pgserver.server()
        name = srv.take()
        request.addfinalizer(lambda: srv.release(name))
        store = open_store(srv.url(name))
    else:
        store = open_store(tmp_path_factory.mktemp("corpus") / "s.db")
    rng = random.Random(12)
    rows = []
    with store.tx() as conn:
        c = cstore.create(conn, "ann", now=fmt(T0) or "")
        for n in range(400):
            text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))
            at = fmt(T0 + timedelta(minutes=rng.randint(0, 500))) or ""  # ties in time too
            mstore.add_message(conn, event_id=str(n), conversation_id="1-2", contact_id=c.id,
                               direction="in", text=text, at=at, source="sync", now=at)
    for r in store.conn.execute("SELECT id, at, text FROM messages"):
        rows.append((r[0], r[1], r[2]))
    yield store, rows
    store.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(terms=queries, limit=hs.integers(min_value=1, max_value=30))
def test_index_window_and_scan_agree_with_the_definition(corpus: Any, terms: list[str], limit: int,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    store, rows = corpus
    want = _reference(rows, tuple(terms))[:limit]
    # Small thresholds, so every path of messages() runs on this small store.
    monkeypatch.setattr(sstore, "CANDIDATES", 5)
    monkeypatch.setattr(sstore, "WINDOW", 40)
    for use_index in (True, False):
        for use_window in (True, False):
            q = sstore.Query(tuple(terms), limit=limit, use_index=use_index, use_window=use_window)
            assert [h.id for h in sstore.messages(store.conn, q)] == want, (use_index, use_window)


def test_terms_of_a_query() -> None:
    assert terms_of('pricing "for teams"  配信停止') == ("pricing", "for teams", "配信停止")
    assert terms_of("50%_off") == ("50%_off",)


# --- upgrades and SQLite without the trigram tokenizer ----------------------------------------


def test_upgrade_builds_the_index_over_what_is_there(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "old.db"
    old = open_store(path, migrate_to=SEARCH_MIGRATION - 1)
    now = fmt(T0) or ""
    # Rows written as that schema has them (today's store functions know later columns).
    with old.tx() as conn:
        cid = conn.execute("INSERT INTO contacts (handle, name, created_at, updated_at) "
                           "VALUES ('ann', 'Ann', ?, ?)", (now, now)).lastrowid
        conn.execute("INSERT INTO conversations (id, contact_id) VALUES ('1-2', ?)", (cid,))
        conn.execute("INSERT INTO messages (event_id, conversation_id, contact_id, direction, text, "
                     "at, source, recorded_at) VALUES ('1', '1-2', ?, 'in', '配信停止です', ?, "
                     "'archive', ?)", (cid, now, now))
        conn.execute("INSERT INTO notes (contact_id, at, text) VALUES (?, ?, 'VIP since 2024')",
                     (cid, now))
        conn.execute("INSERT INTO audit (at, action, handle) VALUES (?, 'contact_added', 'ann')",
                     (now,))
    old.close()
    # A clock that runs fast, so the migration reports its progress.
    ticks = iter(range(0, 10_000))
    monkeypatch.setattr(store_db.time, "monotonic", lambda: float(next(ticks)))
    monkeypatch.setattr(store_db._Upgrade, "EVERY", 10)
    notes: list[str] = []
    store = open_store(path, progress=notes.append)
    assert store.schema_version() >= SEARCH_MIGRATION
    assert any("building the search index" in n for n in notes)
    assert notes[-1].endswith("\n") and "done in" in notes[-1]  # the last line stays
    result = search(store.conn, "配信停止")
    assert [h["text"] for h in result.hits] == ["配信停止です"] and result.method == "index"
    assert [h["kind"] for h in search(store.conn, "vip").hits] == ["note"]
    assert store.execute("SELECT actor FROM audit").fetchall()[0][0] is None  # old rows: no actor
    assert store_db.problems_of(store.conn) == []
    store.close()


def test_the_progress_line_is_rewritten_in_place_on_a_terminal_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from dmtool import appstate

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    note = appstate._upgrade_note()
    assert note is not None
    note("building: 12 s")
    note("building: 9 s")
    note("done in 14 s\n")
    assert term.getvalue() == "\rbuilding: 12 s\rbuilding: 9 s \rdone in 14 s \n"
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert appstate._upgrade_note() is None


@pytest.mark.sqlite_only(reason="a SQLite built without FTS5's trigram tokenizer")
def test_without_the_trigram_tokenizer_search_scans(cli: Cli, world: SandboxWorld, clock: Clock,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A Python whose SQLite lacks FTS5 or trigram (older Linux): the store is
    made without the index and search reads every row, with the same answers."""
    monkeypatch.setattr(sstore, "fts_trigram_available", lambda: False)
    world.incoming_dm(ALICE, "配信停止してください", at=clock.ago(days=1))
    world.incoming_dm(BOB, "a question about pricing", at=clock.ago(hours=5))
    sync(cli)
    assert cli("contacts", "note", "bob", "pricing for 3 seats").exit_code == 0
    conn = sqlite3.connect(Paths.resolve("default").db_file)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert "messages_fts" not in tables and "hook_queue" in tables
    data = cli("search", "配信停止", "--json").json()
    assert data["method"] == "scan"
    assert [h["text"] for h in data["hits"]] == ["配信停止してください"]
    assert found(cli, "pricing") == [("note", "bob", "pricing for 3 seats"),
                                     ("in", "bob", "a question about pricing")]
    r = cli("db", "check", "--json")
    assert r.exit_code == 0, r  # the same schema as a fresh store on this SQLite
