"""The fast read paths give the answers of a straightforward recomputation.

The conversations rows keep each contact's newest message (migration 6,
maintained by triggers), which the inbox (every filter and order) and the
digest's waiting list read; the consent decision reads only the evidence that
decides; `check` lists its evidence straight from the store. Each is compared
here with the plain query or full computation it replaces, on stores built at
random through the writers sync, send, the archive import, merge and forget use.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dmtool import policy
from dmtool.models import Contact
from dmtool.services import consent
from dmtool.store import Store, open_store
from dmtool.store import contacts as cstore
from dmtool.store import conversations as cvstore
from dmtool.store import drafts as dstore
from dmtool.store import messages as mstore
from dmtool.store.sql import Conn, Row
from dmtool.timeutil import fmt, parse

ME = "1000"
T0 = datetime(2026, 11, 1, tzinfo=UTC)

# The inbox and digest recomputed the plain way: per conversation, everything
# from the contact's messages and columns, then filtered and sorted in Python.
REFERENCE_ROWS = """
    SELECT c.handle, c.name, cv.state AS status, c.blocked_at, c.opted_out_at,
      c.optout_review_at, c.dm_closed_at, cv.snoozed_until,
      EXISTS (SELECT 1 FROM contact_tags t WHERE t.contact_id = c.id AND t.tag = 'vip') AS vip,
      (SELECT max(at) FROM messages m WHERE m.contact_id = c.id AND m.direction = 'in') AS last_in,
      (SELECT id FROM messages m WHERE m.contact_id = c.id AND m.source != 'autoack'
        ORDER BY at DESC, id DESC LIMIT 1) AS human_id,
      (SELECT count(*) FROM messages m WHERE m.contact_id = c.id AND m.direction = 'in'
        AND m.recorded_at > COALESCE(cv.last_read_at, '')) AS unread
    FROM conversations cv JOIN contacts c ON c.id = cv.contact_id
"""


def reference_state(r: Row) -> str:
    if r["blocked_at"]:
        return "blocked"
    if r["opted_out_at"]:
        return "opted-out"
    if r["optout_review_at"]:
        return "review-optout"
    if r["dm_closed_at"] and not (r["last_in"] and r["last_in"] > r["dm_closed_at"]):
        return "dm-closed"
    return "open"


def reference_inbox(conn: Conn, q: cvstore.InboxQuery, now: str
                    ) -> list[dict[str, Any]]:
    out = []
    for r in conn.execute(REFERENCE_ROWS).fetchall():
        if r["human_id"] is None:  # nothing but autoacks (or nothing): nothing to show
            continue
        m = conn.execute("SELECT at, direction, text FROM messages WHERE id = ?",
                         (r["human_id"],)).fetchone()
        state = reference_state(r)
        waiting = r["status"] == "open" and m["direction"] == "in" and state == "open"
        snoozed = (r["snoozed_until"] or "") > now
        if (snoozed != q.snoozed or (r["status"] != "open" and not q.include_done)
                or (q.waiting and not waiting) or (q.unread and not r["unread"])
                or (q.tag == "vip" and not r["vip"]) or (q.state and state != q.state)):
            continue
        out.append({"handle": r["handle"], "name": r["name"], "status": r["status"],
                    "state": state, "waiting": int(waiting), "last_at": m["at"],
                    "last_direction": m["direction"], "last_text": m["text"],
                    "unread": r["unread"],
                    "snoozed_until": r["snoozed_until"]})
    # Waiting first (by default), then the open ones, then the rest; each by time.
    def group(i: dict[str, Any]) -> int:
        return (0 if i["waiting"] and q.waiting_first else 1) if i["status"] == "open" else 2
    out.sort(key=lambda i: i["last_at"], reverse=True)
    out.sort(key=group)
    return out


def reference_waiting(conn: Conn, now: str) -> list[tuple[Any, ...]]:
    q = cvstore.InboxQuery(waiting=True)
    return sorted(((i["handle"], i["name"], i["last_at"]) for i in reference_inbox(conn, q, now)),
                  key=lambda t: t[2])


def stamp(rng: random.Random) -> str:
    # Few distinct times, so that ties (same `at`, told apart by id) are common.
    return fmt(T0 + timedelta(minutes=rng.randrange(0, 6000, 150))) or ""


class World:
    """A store and the writers, applied at random."""

    def __init__(self, store: Store, rng: random.Random) -> None:
        self.store, self.rng = store, rng
        self.events = 0

    @property
    def conn(self) -> Conn:
        return self.store.conn

    def contacts(self) -> list[Contact]:
        return [cstore.by_id(self.conn, r[0]) for r in self.conn.execute("SELECT id FROM contacts")]

    def new_contact(self) -> None:
        n = self.rng.randrange(10_000)
        if self.rng.random() < 0.8:
            cstore.upsert_x_user(self.conn, str(20_000 + n), f"u{n}", None, now=stamp(self.rng))
        else:  # added by handle: X does not know it yet (a merge candidate)
            if cstore.find(self.conn, f"u{n}") is None:
                cstore.create(self.conn, f"u{n}", now=stamp(self.rng))

    def message(self, source: str | None = None) -> None:
        rng = self.rng
        people = self.contacts()
        if not people:
            return
        c = rng.choice(people)
        uid = c.user_id or f"9{c.id}"
        conv: str | None = mstore.conversation_id_for(ME, uid)
        roll = rng.random()
        if roll < 0.05:
            conv = None  # a send X answered without a conversation id
        elif roll < 0.1:
            conv = f"{uid}-{rng.randrange(3)}77"  # a second conversation row for the contact
        source = source or rng.choice(["sync", "sync", "sync", "archive", "send", "autoack"])
        direction = "out" if source in ("send", "autoack") else rng.choice(["in", "out"])
        self.events += 1
        at = stamp(rng)
        new = mstore.add_message(self.conn, event_id=f"ev{self.events}", conversation_id=conv,
                                 contact_id=c.id, direction=direction,
                                 text=rng.choice(["hi", "STOP", "START", "thanks!", "see you"]),
                                 at=at, source=source, now=at if source == "archive" else stamp(rng))
        if new and source in ("send", "autoack"):  # dmtool's own: in the ledger the caps count
            mstore.record_send(self.conn, user_id=c.user_id or f"local:{c.id}", at=at, text="hi",
                               first_contact=rng.random() < 0.3, kind=source, draft_id=None,
                               event_id=f"ev{self.events}")
        if new and direction == "in":  # as sync and the archive import record them
            cstore.add_evidence(self.conn, c.id, "inbound_dm", at, f"ev{self.events}", None,
                                now=at)

    def own_send(self) -> None:  # a send finds its DM already synced: it is ours after all
        row = self.conn.execute("SELECT event_id FROM messages WHERE direction = 'out' "
                                "ORDER BY random() LIMIT 1").fetchone()
        if row:
            mstore.mark_own_send(self.conn, row[0], source=self.rng.choice(["send", "autoack"]),
                                 first_contact=False)

    def name_twin(self) -> None:  # X names a contact added by handle: merge_into
        twin = self.conn.execute("SELECT handle FROM contacts WHERE user_id IS NULL "
                                 "ORDER BY random() LIMIT 1").fetchone()
        if twin is None:
            return
        known = [c for c in self.contacts() if c.user_id]
        if known and self.rng.random() < 0.5:  # a known user renamed onto the twin's handle
            uid = self.rng.choice(known).user_id or ""
        else:  # the first sight of its id adopts it
            uid = str(30_000 + self.rng.randrange(10_000))
        cstore.upsert_x_user(self.conn, uid, twin[0], None, now=stamp(self.rng))

    def on_someone(self, op: str) -> None:
        people = self.contacts()
        if not people:
            return
        rng, conn = self.rng, self.conn
        c = rng.choice(people)
        if op == "forget":
            cstore.delete(conn, c)
        elif op == "state":
            cvstore.set_state(conn, c.id, rng.choice(["open", "done"]))
        elif op == "read":
            cvstore.mark_read(conn, c.id, stamp(rng))
        elif op == "optout":
            cstore.set_opted_out(conn, c, None if c.opted_out_at else stamp(rng), "STOP")
        elif op == "block":
            cstore.set_blocked(conn, c, None if c.blocked_at else stamp(rng))
        elif op == "review":
            at = None if c.optout_review_at else stamp(rng)
            cstore.set_review(conn, c, at and "please stop", at)
        elif op == "dm_closed":  # X refused a send; it lasts until they write again
            cstore.set_dm_closed(conn, c.id, None if c.dm_closed_at else stamp(rng))
        elif op == "tag":
            cstore.add_tags(conn, c.id, [rng.choice(["vip", "beta"])])
        elif op == "snooze":  # until a time before, among or after the messages'
            cvstore.set_snooze(conn, c.id, rng.choice([None, stamp(rng)]), stamp(rng))
        elif op == "unsay":
            # No command deletes one message today; if one ever does (or someone
            # repairs a store by hand), the rows must still follow.
            row = conn.execute("SELECT id FROM messages WHERE contact_id = ? ORDER BY random() "
                               "LIMIT 1", (c.id,)).fetchone()
            if row:
                conn.execute("DELETE FROM messages WHERE id = ?", (row[0],))
        elif op == "unsettled":  # a send under way, or one whose outcome is unknown
            now = stamp(rng)
            d = dstore.create(conn, c.id, "hello there", now=now)
            dstore.approve(conn, d.id, text=d.text, acknowledged=(), now=now)
            dstore.start_send(conn, d.id, text=d.text, first_contact=rng.random() < 0.5, now=now)
            if rng.random() < 0.5:
                dstore.mark_unknown(conn, d.id, now=now)
        elif op == "evidence":
            kind = rng.choice(sorted(policy.EVIDENCE_KINDS) + ["unknown"])
            text = rng.choice([None, "", "  ", "asked at the booth"])
            cstore.add_evidence(conn, c.id, kind, stamp(rng), f"r{rng.random()}", text,
                                now=stamp(rng))

    def step(self) -> None:
        op = self.rng.choices(
            ["contact", "message", "own_send", "twin", "forget", "state", "read", "settle",
             "optout", "evidence", "unsay", "unsettled", "block", "review", "dm_closed", "tag",
             "snooze"],
            weights=[12, 50, 6, 5, 3, 6, 5, 2, 3, 8, 3, 3, 2, 2, 2, 3, 3])[0]
        if op == "contact":
            self.new_contact()
        elif op == "message":
            self.message()
        elif op == "own_send":
            self.own_send()
        elif op == "twin":
            self.name_twin()
        elif op == "settle":
            mstore.settle_old_archive_conversations(self.conn, before=stamp(self.rng), skip=set(),
                                                    keep_waiting=self.rng.random() < 0.5)
        else:
            self.on_someone(op)


def build(new_store: Any, seed: int, steps: int) -> World:
    world = World(new_store(), random.Random(seed))
    with world.store.tx():
        for _ in range(steps):
            world.step()
    return world


def by_key(rows: list[Any]) -> Counter[tuple[Any, ...]]:
    return Counter(tuple(r) for r in rows)


# Every filter alone, some together, and both orders; at times before, among
# and after the snoozes.
QUERIES = [cvstore.InboxQuery(), cvstore.InboxQuery(include_done=True),
           cvstore.InboxQuery(waiting_first=False), cvstore.InboxQuery(include_done=True,
                                                                       waiting_first=False),
           cvstore.InboxQuery(waiting=True), cvstore.InboxQuery(unread=True, include_done=True),
           cvstore.InboxQuery(tag="vip"), cvstore.InboxQuery(snoozed=True, include_done=True),
           cvstore.InboxQuery(tag="vip", unread=True, waiting_first=False),
           *(cvstore.InboxQuery(state=s, include_done=True) for s in (
               "open", "opted-out", "review-optout", "dm-closed", "blocked"))]
NOWS = [fmt(T0 + timedelta(hours=h)) or "" for h in (0, 50, 200)]


def assert_inbox_matches(conn: Conn) -> None:
    columns = ("handle", "name", "status", "state", "waiting", "last_at", "last_direction",
               "last_text", "unread", "snoozed_until")
    for now in NOWS:
        for q in QUERIES:
            want = reference_inbox(conn, q, now)
            got = cvstore.inbox_rows(conn, q, now=now, limit=10_000)
            # Ties in (group, last_at) have no defined order: compare the order of
            # the keys and the rows as a multiset.
            key = [(w["status"] == "open", w["waiting"] and q.waiting_first, w["last_at"])
                   for w in want]
            assert [(r["status"] == "open", r["waiting"] and q.waiting_first, r["last_at"])
                    for r in got] == key, q
            assert by_key([tuple(r[c] for c in columns) for r in got]) == \
                by_key([tuple(w[c] for c in columns) for w in want]), q
            for limit in (1, 3, 7):
                page = cvstore.inbox_rows(conn, q, now=now, limit=limit)
                assert [(r["status"] == "open", r["waiting"] and q.waiting_first, r["last_at"])
                        for r in page] == key[:limit]


def assert_waiting_matches(conn: Conn) -> None:
    for now in NOWS:
        want = reference_waiting(conn, now)
        got = cvstore.waiting_for_reply(conn, now)
        assert [r["at"] for r in got] == [w[2] for w in want]
        assert by_key(got) == by_key(want)


def assert_stored_columns_match(conn: Conn) -> None:
    for cv in conn.execute("SELECT * FROM conversations").fetchall():
        latest = conn.execute("SELECT id, at FROM messages WHERE contact_id = ? "
                              "ORDER BY at DESC, id DESC LIMIT 1", (cv["contact_id"],)).fetchone()
        human = conn.execute("SELECT id, at, direction FROM messages WHERE contact_id = ? AND "
                             "source != 'autoack' ORDER BY at DESC, id DESC LIMIT 1",
                             (cv["contact_id"],)).fetchone()
        assert (cv["latest_id"], cv["latest_at"]) == (tuple(latest) if latest else (None, None))
        assert (cv["human_id"], cv["human_at"], cv["human_direction"]) == \
            (tuple(human) if human else (None, None, None))


def full_snapshot(conn: Conn, c: Contact) -> policy.ContactSnapshot:
    """The snapshot with every evidence row, as it was built before."""
    fast = consent.snapshot(conn, c)
    every = tuple(policy.Evidence(kind=e.kind, at=parse(e.at), ref=e.ref, text=e.text)
                  for e in cstore.evidence(conn, c.id))
    return fast._replace(evidence=every)


def assert_decisions_match(conn: Conn) -> None:
    # Low caps, so that the cap and await-reply rules (which read the sends) speak.
    settings = policy.PolicySettings(max_unanswered=1, daily_sends=3, daily_first_contacts=1)
    for c in (cstore.by_id(conn, r[0]) for r in conn.execute("SELECT id FROM contacts")):
        full = full_snapshot(conn, c)
        for hours in (0, 30, 60, 90, 2400):  # before, during and after the traffic; expired
            now = T0 + timedelta(hours=hours)
            a = consent.decide(conn, c, None, settings, now)
            b = policy.decide(full, None, consent.recent_sends(conn, now), settings, now)
            assert (a.allowed, a.first_contact, a.reasons) == (b.allowed, b.first_contact,
                                                              b.reasons)
        # `check` shows the newest record of each kind the full decision holds
        # as its evidence (every manual one), and counts the records behind them.
        d = policy.decide(full, None, [], settings, T0)
        a = consent.decide(conn, c, None, settings, T0)
        newest = {k: max(e.at for e in d.evidence if e.kind == k) for k in {e.kind for e in d.evidence}}
        assert sorted((e.kind, e.at) for e in a.evidence) == sorted(
            {(e.kind, e.at) for e in d.evidence
             if e.kind in policy.MANUAL_KINDS or e.at == newest[e.kind]})
        assert [e for e in a.evidence if e.kind in policy.MANUAL_KINDS] == \
            [e for e in d.evidence if e.kind in policy.MANUAL_KINDS]
        assert consent.evidence_total(conn, c, a) == sum(
            1 for e in cstore.evidence(conn, c.id) if e.kind in newest)
        last_in = max((m.at for m in cstore.messages(conn, c.id) if m.direction == "in"),
                      default=None)
        last_out = max((m.at for m in cstore.messages(conn, c.id) if m.direction == "out"),
                       default=None)
        assert cstore.last_message_times(conn, c.id) == (last_in, last_out)


def assert_list_statuses_match(conn: Conn) -> None:
    """contacts list: each record's answer as the plain evaluation gives it (every
    evidence row, every send, no sharing between contacts)."""
    for settings in (policy.PolicySettings(max_unanswered=1, daily_sends=3, daily_first_contacts=1),
                     policy.PolicySettings(consent_days=2, max_unanswered=3)):
        unanswered = dict(conn.execute(
            "SELECT m.contact_id, count(*) FROM messages m WHERE m.direction = 'out' AND m.at > "
            "COALESCE((SELECT max(at) FROM messages i WHERE i.contact_id = m.contact_id "
            "AND i.direction = 'in'), '') GROUP BY m.contact_id").fetchall())
        for hours in (0, 40, 47.9, 48, 90, 2400):
            now = T0 + timedelta(hours=hours)
            sends = consent.recent_sends(conn, now)
            got = [(dict(zip(cstore.LISTED, r, strict=False)) | {"unanswered": r[-2]}, s)
                   for r, s in consent.listing(conn, settings, now)]
            assert [r["id"] for r, _ in got] == [r[0] for r in conn.execute(
                "SELECT id FROM contacts ORDER BY handle COLLATE NOCASE")]
            for r, standing in got:
                c = Contact(*list(r.values())[:len(cstore.CONTACT_COLUMNS)])
                msgs = [policy.Msg(at=parse(r["last_inbound_at"]), direction="in", text="")] \
                    if r["last_inbound_at"] else []
                n_out = unanswered.get(c.id, 0)
                assert r["unanswered"] == n_out
                out_at = parse(r["last_outbound_at"]) if r["last_outbound_at"] else now
                msgs += [policy.Msg(at=out_at, direction="out", text="")] * n_out
                snap = policy.ContactSnapshot(
                    user_id=c.user_id or "", handle=c.handle, name=c.name,
                    evidence=tuple(policy.Evidence(kind=e.kind, at=parse(e.at), ref=e.ref,
                                                   text=e.text)
                                   for e in cstore.evidence(conn, c.id)),
                    messages=tuple(msgs),
                    opted_out_at=parse(c.opted_out_at) if c.opted_out_at else None,
                    opt_out_words=c.opt_out_words, optout_review=c.optout_review_text,
                    blocked=bool(c.blocked_at),
                    dm_closed_at=parse(c.dm_closed_at) if c.dm_closed_at else None)
                want = policy.decide(snap, None, sends, settings, now)
                assert (standing.allowed, standing.status, list(standing.codes)) == \
                    (want.allowed, consent.status(c, want), [x.code for x in want.reasons]), \
                    c.handle


# Every seed on both engines: PostgreSQL's triggers (PL/pgSQL, migration 6)
# are other code than SQLite's, and each seed is another history for them.
@pytest.mark.parametrize("seed", range(12))
def test_fast_read_paths_match_a_recomputation(new_store: Any, seed: int) -> None:
    world = build(new_store, seed, steps=350)
    conn = world.conn
    assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] > 50
    assert_stored_columns_match(conn)
    assert_inbox_matches(conn)
    assert_waiting_matches(conn)
    assert_decisions_match(conn)
    assert_list_statuses_match(conn)
    # ... and they stay right as the store keeps changing, transaction by transaction.
    for _ in range(4):
        with world.store.tx():
            for _ in range(40):
                world.step()
        assert_stored_columns_match(conn)
        assert_inbox_matches(conn)
        assert_waiting_matches(conn)


def test_manual_evidence_counts_by_its_text_not_by_being_newest(new_store: Any) -> None:
    """A later request recorded without words does not hide an earlier one with words."""
    store = new_store()
    with store.tx() as conn:
        c = cstore.create(conn, "ann", now=fmt(T0) or "")
        cstore.add_evidence(conn, c.id, "request", fmt(T0) or "", "r1", "asked at the booth",
                            now=fmt(T0) or "")
        later = fmt(T0 + timedelta(days=1)) or ""
        cstore.add_evidence(conn, c.id, "request", later, "r2", "  ", now=later)
    d = consent.decide(store.conn, c, None, policy.PolicySettings(), T0 + timedelta(days=2))
    assert d.allowed and d.first_contact
    assert [(e.kind, fmt(e.at), e.ref, e.text) for e in d.evidence] == [
        ("request", fmt(T0), "r1", "asked at the booth")]
    assert consent.evidence_total(store.conn, c, d) == 2


def test_a_store_from_before_migration_4_is_filled_in(new_store: Any) -> None:
    old = new_store(migrate_to=3)
    rng = random.Random(5)
    with old.tx() as conn:
        for n in range(8):
            # Raw SQL: today's store functions know columns the old schema lacks.
            now = stamp(rng)
            cid = conn.execute("INSERT INTO contacts (user_id, handle, created_at, updated_at) "
                               "VALUES (?, ?, ?, ?)", (str(500 + n), f"old{n}", now, now)).lastrowid
            for k in range(rng.randrange(1, 9)):
                at = stamp(rng)
                conn.execute(
                    "INSERT INTO messages (event_id, conversation_id, contact_id, direction, text, "
                    "at, source, recorded_at) VALUES (?, ?, ?, ?, 'x', ?, ?, ?)",
                    (f"o{n}-{k}", f"{500 + n}-{ME}", cid, rng.choice(["in", "out"]), at,
                     rng.choice(["sync", "autoack"]), at))
            conn.execute("INSERT OR IGNORE INTO conversations (id, contact_id) VALUES (?, ?)",
                         (f"{500 + n}-{ME}", cid))
    old.close()
    new = open_store(old.location)
    assert_stored_columns_match(new.conn)
    assert_inbox_matches(new.conn)
    assert_waiting_matches(new.conn)
