"""Local commands on a big store: 50,000 contacts and 1,000,000 messages.

    python benchmarks/local_scale.py [--store DIR] [--runs 11] [--report-only] [--only WORD]
                                     [--contacts 50000] [--messages 1000000] [--seed 8]
                                     [--shape bursty|flat] [--url postgresql://...]

Builds a store with the shape of years of real use (through the real schema:
open_store runs the migrations, then bulk inserts): open and done
conversations, in and out, autoacks and dmtool's own sends in the ledger,
consent evidence, opted-out, blocked and in-review contacts, a digest
checkpoint, drafts in every state, mentions and replies, an audit log. Traffic
is bursty: a few very chatty contacts hold tens of thousands of messages, most
hold a handful, and many conversations have been quiet for months. With
--store DIR the store is kept there and reused while its parameters match
(building one takes a minute or so). `--shape flat` gives every contact the
same number of messages instead: `--shape flat --contacts 20000` is issue 16's
store, 20,000 conversations of 50 messages.

Then it times, interleaved (so machine noise hits all alike), the median wall
time of each command next to `python -c "import typer"` (the floor any Typer
CLI pays), with each child's peak memory (its own max RSS, from wait4).
Targets (issue 16; issue 8 asked 1.5x): inbox, thread, digest, check and
--help within 1.3x the floor and under 100 MiB; the same for search (issue
12) with words of 3 characters or more; `contacts list --json` (50,000
contacts) and `report --days 365` within 0.5 s, contacts list under 50 MiB.
`check` on a contact of median chattiness, the 30-day report and a search
for a two-character word (which the trigram index cannot find: a scan of
every message) are reported, not targets. The store is built at the schema before the search index, then
upgraded, as a user's store is: the upgrade's time and the growth of the
file are reported. CPU time is shown
too: on a busy machine it is steadier than wall time. With --instructions,
each command's instruction count (valgrind) is shown too: repeatable to a
fraction of a percent where wall time is not. Exits 1 when a target is
missed, unless --report-only.
The clock is pinned (DMTOOL_NOW) to the store's own "now", so a kept store
gives the same answers on every run.

With --url (an empty PostgreSQL database, or one this benchmark filled
before), the SQLite store is copied there with `dmtool db migrate-to`
(timed), and every command is also run on PostgreSQL, interleaved with its
SQLite run, whole process (driver import and connection included). Target
(issue 14): inbox, thread, check, digest and report within 2x of SQLite
over a Unix socket.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

ME = "1000"
NOW_MS = 1_795_867_200_000  # 2026-11-28T12:00:00Z: the store's "now"
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MIN_MS = 60_000
YEARS = 3
ARCHIVE_AT = NOW_MS - 300 * DAY_MS  # an archive import brought in everything older
DIGEST_AT = NOW_MS - 20 * HOUR_MS  # the last digest
FORMAT_VERSION = 9  # bump when the generator changes, so kept stores are rebuilt

RATIO_TARGET = 1.3
SECONDS_TARGET = 0.5  # contacts list --json and report --days 365 (issue 16)
LIST_MEMORY_TARGET_MIB = 50.0
MEMORY_TARGET_MIB = 100.0
PG_RATIO_TARGET = 2.0

VOCABULARY = ("hi thanks sure the a for your on it we can do that when is next week friday "
              "tomorrow link release beta build fix issue works great question about pricing "
              "meeting call later sounds good okay yes no maybe I will check and get back to you "
              "did you see my last message here is what happened with the deploy "
              "ありがとう よろしく お願いします 了解です")
WORDS = VOCABULARY.split()
AUTOACK_TEXT = "Thanks for your message! I read every DM myself and will reply soon. – Sam"


def iso(ms: int) -> str:
    s, rem = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{rem:03d}Z"


def snowflake(ms: int, seq: int) -> str:
    """X-like ids: they grow with time."""
    return str(((ms - 1_288_834_974_657) << 22) + (seq & 0x3FFFFF))


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(2, 30)))


# --- the store's shape -------------------------------------------------------------


@dataclass
class Person:
    id: int
    user_id: str | None
    handle: str
    created_ms: int
    n_messages: int = 0
    messages: list[tuple[int, str, str, str]] = field(default_factory=list)  # at, dir, source, text


def message_counts(rng: random.Random, n_contacts: int, total: int) -> list[int]:
    """Per contact: a few very chatty ones, a heavy tail, most with a handful,
    and many (imported, mention-only) with none."""
    chatty = [int(total * f) for f in (0.06, 0.04, 0.025, 0.015, 0.01)]
    talkers = int(n_contacts * 0.7)
    rest = total - sum(chatty)
    # Pareto-ish: median of a few messages, long tail.
    weights = [min(rng.paretovariate(1.2), 2000.0) for _ in range(talkers - len(chatty))]
    scale = rest / sum(weights)
    counts = [max(1, int(w * scale)) for w in weights]
    drift = rest - sum(counts)  # land exactly on the total
    i = 0
    while drift != 0:
        j = i % len(counts)
        if drift > 0:
            counts[j] += 1
            drift -= 1
        elif counts[j] > 1:
            counts[j] -= 1
            drift += 1
        i += 1
    out = chatty + counts + [0] * (n_contacts - talkers)
    return out


def flat_counts(n_contacts: int, total: int) -> list[int]:
    """Per contact: the same number of messages each (issue 16's shape)."""
    each, extra = divmod(total, n_contacts)
    return [each + (i < extra) for i in range(n_contacts)]


def conversation(rng: random.Random, n: int, start: int, chatty: bool) -> list[tuple[int, str, str]]:
    """n messages in bursts (sessions) with quiet gaps, oldest first: (at, direction, kind)
    where kind is "" or "autoack"."""
    if chatty:
        last = NOW_MS - rng.randint(5, 180) * MIN_MS
    else:
        r = rng.random()
        if r < 0.03:
            last = NOW_MS - rng.randint(10, 24 * 60 * 3) * MIN_MS  # the last three days
        elif r < 0.1:
            last = NOW_MS - rng.randint(3, 30) * DAY_MS
        else:
            last = rng.randint(start, max(start, NOW_MS - DAY_MS))
    last = max(last, start + MIN_MS)
    sessions = max(1, round(n / max(1.0, rng.expovariate(1 / 8))))
    sessions = min(sessions, n)
    # Session starts: the last one at `last`, the others between start and last,
    # clustered (two random draws, the smaller wins: more activity early on).
    starts = sorted([rng.randint(start, last) for _ in range(sessions - 1)] + [last])
    per = [1] * sessions
    for _ in range(n - sessions):
        per[rng.randrange(sessions)] += 1
    out: list[tuple[int, str, str]] = []
    prev_end = -10**15
    for s_at, k in zip(starts, per, strict=True):
        t = max(s_at, prev_end + MIN_MS)
        quiet = t - prev_end > 30 * DAY_MS
        direction = "in" if (quiet or rng.random() < 0.6) else "out"
        for j in range(k):
            out.append((t, direction, ""))
            if j == 0 and quiet and direction == "in" and rng.random() < 0.3 and k > 1:
                t += rng.randint(20, 90) * 1000
                out.append((t, "out", "autoack"))
            if rng.random() < 0.55:
                direction = "out" if direction == "in" else "in"
            t += int(rng.expovariate(1 / 90_000)) + 1000 if rng.random() < 0.93 else \
                rng.randint(10, 240) * MIN_MS
        prev_end = t
    if len(out) > n:  # an autoack pushed it over: drop from the oldest side
        out = out[len(out) - n:]
    return out


def build(home: Path, n_contacts: int, n_messages: int, seed: int,
          shape: str = "bursty") -> dict[str, Any]:
    sys.path.insert(0, str(REPO / "src"))
    from dmtool.paths import Paths
    from dmtool.store import open_store
    from dmtool.store.messages import conversation_id_for
    from dmtool.store.migrations import SEARCH_MIGRATION

    rng = random.Random(seed)
    t0 = time.perf_counter()
    db = Paths.resolve("default", {"DMTOOL_HOME": str(home)}).db_file
    # The real schema, through the migrations, as it was before the search
    # index: the index is then built as an upgrade builds it, and timed.
    store = open_store(db, migrate_to=SEARCH_MIGRATION - 1)
    conn = store.conn
    conn.execute("PRAGMA synchronous = OFF")
    start_of_time = NOW_MS - YEARS * 365 * DAY_MS

    # Syncs at irregular times (cron on a laptop): what `recorded_at` says.
    syncs: list[int] = []
    t = ARCHIVE_AT
    while t < NOW_MS - 10 * MIN_MS:
        t += rng.choice((15, 15, 15, 60, 60, 180, 600)) * MIN_MS + rng.randint(0, 120_000)
        syncs.append(t)
    syncs[-1] = NOW_MS - 5 * MIN_MS
    last_sync = syncs[-1]

    counts = flat_counts(n_contacts, n_messages) if shape == "flat" else \
        message_counts(rng, n_contacts, n_messages)
    people: list[Person] = []
    order = list(range(n_contacts))
    rng.shuffle(order)  # the chatty ones are not the first contacts
    for cid, idx in enumerate(order, start=1):
        n = counts[idx]
        created = rng.randint(start_of_time, NOW_MS - HOUR_MS) if idx >= 5 else \
            start_of_time + rng.randint(0, 30) * DAY_MS
        uid = None if (n == 0 and rng.random() < 0.1) else str(20_000_000 + idx * 7 + 3)
        handle = f"user{idx}" if idx >= 5 or shape == "flat" else f"chatty{idx}"
        people.append(Person(cid, uid, handle, created, n))

    contacts_rows, conv_rows, msg_rows, ev_rows, send_rows, draft_rows = [], [], [], [], [], []
    audit_rows, sup_rows, post_rows, tag_rows, note_rows = [], [], [], [], []
    seq = 0
    per_day: dict[int, int] = {}  # dmtool's own sends a day: the caps held
    chattiest = max(people, key=lambda p: p.n_messages)
    for p in people:
        blocked_at = opted_out_at = words = review_text = review_at = dm_closed = None
        fate = rng.random()
        if p.n_messages:
            msgs = conversation(rng, p.n_messages, p.created_ms, p is chattiest or
                                p.handle.startswith("chatty"))
            if msgs[-1][0] > last_sync:  # nothing after the last sync
                shift = msgs[-1][0] - last_sync + rng.randint(1, 60) * 1000
                msgs = [(a - shift, d, k) for a, d, k in msgs]
            conv = conversation_id_for(ME, p.user_id or f"9{p.id}")
            texts = []
            for i, (at, direction, kind) in enumerate(msgs):
                text = AUTOACK_TEXT if kind else sentence(rng)
                if (p is not chattiest and fate < 0.02 and i == len(msgs) - 1
                        and direction == "in"):
                    text = rng.choice(("STOP", "stop", "配信停止", "unsubscribe"))
                    opted_out_at, words = iso(at), text
                texts.append(text)
            last_at = 0
            for (at, direction, kind), text in zip(msgs, texts, strict=True):
                seq += 1
                ev = snowflake(at, seq)
                own = kind == "autoack" or (direction == "out" and rng.random() < 0.01)
                if at < ARCHIVE_AT:
                    source, rec = "archive", at
                elif own and per_day.get(at // DAY_MS, 0) < 15:  # within the daily cap
                    per_day[at // DAY_MS] = per_day.get(at // DAY_MS, 0) + 1
                    source, rec = kind or "send", at
                else:
                    source, rec = "sync", syncs[bisect.bisect_left(syncs, at)]
                if source in ("send", "autoack"):
                    send_rows.append((p.user_id or f"local:{p.id}", iso(at), text, 0, source,
                                      None, ev))
                    if source == "send":
                        draft_rows.append((p.id, text, "sent", None, iso(at - 5 * MIN_MS),
                                           iso(at), iso(at - 2 * MIN_MS), text, None, None,
                                           iso(at), iso(at), ev, conv, 0))
                        audit_rows.append((iso(at), "sent", p.user_id, p.handle,
                                           len(draft_rows), None,
                                           json.dumps({"event_id": ev, "first_contact": False,
                                                       "sandbox": False})))
                msg_rows.append((ev, conv, p.id, direction, text, iso(at), source, 0, iso(rec)))
                if direction == "in":
                    ev_rows.append((p.id, "inbound_dm", iso(at), ev, None, iso(rec)))
                last_at = max(last_at, at)
            # Read marks: old conversations were read; recent ones sometimes not yet.
            if NOW_MS - last_at > 3 * DAY_MS or rng.random() < 0.5:
                read = iso(min(NOW_MS, last_at + rng.randint(1, 48) * HOUR_MS))
            elif rng.random() < 0.7:
                read = iso(last_at - rng.randint(1, 72) * HOUR_MS)
            else:
                read = None
            # Quiet history is mostly done: the archive import settles what it brought
            # in, and people mark what they answered; some stay open for months.
            if last_at < ARCHIVE_AT - 30 * DAY_MS:
                state = "done"
            elif NOW_MS - last_at > 30 * DAY_MS:
                state = "done" if rng.random() < 0.95 else "open"
            else:
                state = "done" if rng.random() < 0.2 else "open"
            if p is chattiest:
                state = "open"
                read = iso(NOW_MS - 6 * HOUR_MS)
            conv_rows.append((conv, p.id, state, iso(last_at), read))
        if p is not chattiest:
            if opted_out_at is None and 0.02 <= fate < 0.025:
                blocked_at = iso(rng.randint(p.created_ms, NOW_MS))
            elif opted_out_at is None and 0.025 <= fate < 0.027 and p.n_messages:
                review_text, review_at = "please don't message me about this", iso(NOW_MS - DAY_MS)
            elif 0.027 <= fate < 0.03 and p.n_messages:
                dm_closed = iso(NOW_MS - rng.randint(1, 200) * DAY_MS)
        contacts_rows.append((p.id, p.user_id, p.handle, f"User {p.handle[4:]}" if rng.random() < 0.8
                              else None, iso(p.created_ms), iso(p.created_ms), blocked_at,
                              opted_out_at, words, review_text, review_at, dm_closed))
        if opted_out_at:
            sup_rows.append((p.user_id, p.handle, "opted_out", opted_out_at, words))
            audit_rows.append((opted_out_at, "opted_out", p.user_id, p.handle, None, "E_OPTED_OUT",
                               json.dumps({"at": opted_out_at, "by": "contact", "words": words})))
        if blocked_at:
            sup_rows.append((p.user_id, p.handle, "blocked", blocked_at, None))
            audit_rows.append((blocked_at, "blocked", p.user_id, p.handle, None, "E_BLOCKED", None))
        if p.user_id and rng.random() < 0.12:  # mentions, some answered in public
            for _ in range(rng.randint(1, 4)):
                seq += 1
                at = rng.randint(p.created_ms, NOW_MS - MIN_MS)
                pid = snowflake(at, seq)
                post_rows.append((pid, "mention", p.user_id, sentence(rng), iso(at), ME, None, pid))
                ev_rows.append((p.id, "mention", iso(at), pid, None, iso(at)))
                if rng.random() < 0.3:
                    seq += 1
                    own = snowflake(at + HOUR_MS, seq)
                    post_rows.append((own, "own", ME, sentence(rng), iso(at + HOUR_MS),
                                      p.user_id, pid, pid))
                    ev_rows.append((p.id, "public_exchange", iso(at), own, None, iso(at + HOUR_MS)))
        if rng.random() < 0.01:
            at = iso(rng.randint(p.created_ms, NOW_MS))
            ev_rows.append((p.id, "request", at, f"manual:request:{at}",
                            "asked at the meetup to be DMed the beta link", at))
        if rng.random() < 0.2:
            tag_rows += [(p.id, t) for t in rng.sample(("vip", "beta", "press", "tokyo", "2025"),
                                                       rng.randint(1, 2))]
        if rng.random() < 0.05:
            note_rows.append((p.id, iso(rng.randint(p.created_ms, NOW_MS)), sentence(rng)))

    # Drafts in every other state, and the audit of checks and reviews.
    talkers = [p for p in people if p.n_messages]
    for status in ["rejected"] * 300 + ["discarded"] * 200 + ["draft"] * 40 + ["approved"] * 10 \
            + ["failed"] * 6 + ["unknown"] * 1:
        p = rng.choice(talkers)
        at = rng.randint(NOW_MS - 400 * DAY_MS, NOW_MS - MIN_MS)
        text = sentence(rng)
        draft_rows.append((p.id, text, status, None, iso(at), iso(at + MIN_MS),
                           iso(at) if status in ("approved", "unknown") else None,
                           text if status in ("approved", "unknown") else None, None,
                           "X refused it (403)" if status == "failed" else None,
                           iso(at) if status == "unknown" else None, None, None, None, None))
        audit_rows.append((iso(at + MIN_MS), "rejected" if status == "rejected" else "approved",
                           p.user_id, p.handle, None, None, None))
    for _ in range(n_contacts * 6 // 5):  # checks that said no, over two years
        p = rng.choice(people)
        at = rng.randint(NOW_MS - 2 * 365 * DAY_MS, NOW_MS - MIN_MS)
        audit_rows.append((iso(at), "refused", p.user_id, p.handle, None, "E_NO_CONSENT",
                           json.dumps({"command": "check"})))
    audit_rows.sort(key=lambda r: r[0])

    # Insert in the order a store grows: by when each row was recorded.
    msg_rows.sort(key=lambda r: (r[8], r[5]))
    ev_rows.sort(key=lambda r: r[5])
    send_rows.sort(key=lambda r: r[1])
    with store.tx():
        conn.executemany("INSERT INTO contacts (id, user_id, handle, name, created_at, updated_at, "
                         "blocked_at, opted_out_at, opt_out_words, optout_review_text, "
                         "optout_review_at, dm_closed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                         contacts_rows)
        conn.executemany("INSERT INTO contact_tags (contact_id, tag) VALUES (?, ?)", tag_rows)
        conn.executemany("INSERT INTO notes (contact_id, at, text) VALUES (?, ?, ?)", note_rows)
        conn.executemany("INSERT INTO conversations (id, contact_id, state, last_at, last_read_at) "
                         "VALUES (?, ?, ?, ?, ?)", conv_rows)
        conn.executemany("INSERT INTO messages (event_id, conversation_id, contact_id, direction, "
                         "text, at, source, first_contact, recorded_at) VALUES (?,?,?,?,?,?,?,?,?)",
                         msg_rows)
        conn.executemany("INSERT OR IGNORE INTO evidence (contact_id, kind, at, ref, text, "
                         "recorded_at) VALUES (?, ?, ?, ?, ?, ?)", ev_rows)
        conn.executemany("INSERT INTO sends (user_id, at, text, first_contact, kind, draft_id, "
                         "event_id) VALUES (?, ?, ?, ?, ?, ?, ?)", send_rows)
        conn.executemany("INSERT INTO drafts (contact_id, text, status, template, created_at, "
                         "updated_at, approved_at, approved_text, acknowledged, reason, "
                         "send_started_at, sent_at, dm_event_id, dm_conversation_id, "
                         "first_contact) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", draft_rows)
        conn.executemany("INSERT INTO audit (at, action, user_id, handle, draft_id, codes, detail) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)", audit_rows)
        conn.executemany("INSERT INTO suppressions (user_id, handle, kind, at, detail) "
                         "VALUES (?, ?, ?, ?, ?)", sup_rows)
        conn.executemany("INSERT OR IGNORE INTO posts (id, kind, author_id, text, at, "
                         "in_reply_to_user_id, replied_to_id, conversation_id) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", post_rows)
        store.set_state("digest_at", iso(DIGEST_AT))
        store.set_state("dm_hwm_at", iso(last_sync))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    seconds = round(time.perf_counter() - t0, 1)
    before = db.stat().st_size
    t1 = time.perf_counter()
    store = open_store(db)  # the upgrade: builds the search index
    upgrade = round(time.perf_counter() - t1, 1)
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    paths = Paths.resolve("default", {"DMTOOL_HOME": str(home)})
    paths.ensure()
    paths.config_file.write_text(  # what a set-up profile holds
        f'[identity]\nnames = ["Sam"]\n\n[autoack]\nenabled = true\ntext = "{AUTOACK_TEXT}"\n\n'
        '[policy]\ndaily_sends = 15\n', encoding="utf-8")
    # A typical contact, for scale: the median message count among those who wrote.
    talking = sorted((p for p in people if p.n_messages), key=lambda p: (p.n_messages, p.id))
    typical = talking[len(talking) // 2]
    meta = {"version": FORMAT_VERSION, "contacts": n_contacts, "messages": n_messages, "seed": seed,
            "shape": shape,
            "chattiest": chattiest.handle, "chattiest_messages": chattiest.n_messages,
            "typical": typical.handle, "typical_messages": typical.n_messages,
            "typical_name": f"User {typical.handle[4:]}",
            "now": iso(NOW_MS), "seconds": seconds, "upgrade_seconds": upgrade,
            "mib_before_upgrade": round(before / 2**20, 1),
            "mib_after_upgrade": round(db.stat().st_size / 2**20, 1),
            "conversations": len(conv_rows), "evidence": len(ev_rows), "sends": len(send_rows),
            "audit": len(audit_rows)}
    return meta


def ensure_store(home: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Reuse a kept store when it was built with these parameters, else build one."""
    meta_file = home / "local_scale.json"
    want = {"version": FORMAT_VERSION, "contacts": args.contacts, "messages": args.messages,
            "seed": args.seed, "shape": args.shape}
    if meta_file.exists():
        meta = json.loads(meta_file.read_text())
        meta.setdefault("shape", "bursty")  # kept from before there were shapes
        if {k: meta.get(k) for k in want} == want:
            return dict(meta)
        for p in sorted(home.rglob("*"), reverse=True):  # a stale store: start over
            p.unlink() if p.is_file() else p.rmdir()
    # Built in a child process: a child's peak RSS starts from its parent's size
    # at fork, so the timing parent must stay small for the memory figures.
    subprocess.run([sys.executable, __file__, "--build-into", str(home),
                    "--contacts", str(args.contacts), "--messages", str(args.messages),
                    "--seed", str(args.seed), "--shape", args.shape], check=True)
    return dict(json.loads(meta_file.read_text()))


# --- timing ------------------------------------------------------------------------


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS in MiB) of one run of `cmd`: its own
    rusage, via wait4."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen consistent
    if p.returncode not in (0, 3):  # check exits 3 for "no": a real answer
        raise SystemExit(f"{' '.join(cmd)} failed with exit {p.returncode}")
    kib = usage.ru_maxrss if sys.platform != "darwin" else usage.ru_maxrss / 1024
    return wall, usage.ru_utime + usage.ru_stime, kib / 1024


@dataclass
class Case:
    name: str
    cmd: list[str]
    target: bool  # within RATIO_TARGET of the floor
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)
    instructions: int | None = None
    seconds: float | None = None  # a target in seconds instead
    mib: float = MEMORY_TARGET_MIB


def instructions(cmd: list[str], env: dict[str, str]) -> int | None:
    """Instructions one run of `cmd` executes, counted by valgrind (cachegrind
    without its cache model): unlike wall time, the same on a busy machine
    as on a quiet one, to a fraction of a percent. None without valgrind."""
    import re
    import shutil

    if shutil.which("valgrind") is None:
        return None
    p = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no",
                        "--cachegrind-out-file=/dev/null", *cmd],
                       env={**env, "PYTHONHASHSEED": "0"}, capture_output=True, text=True)
    found = re.search(r"I\s+refs:\s+([\d,]+)", p.stderr)
    return int(found.group(1).replace(",", "")) if found else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", type=Path, help="keep the store in this folder and reuse it")
    ap.add_argument("--contacts", type=int, default=50_000)
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--shape", choices=("bursty", "flat"), default="bursty",
                    help="bursty: a few chatty contacts and a long tail; flat: the same number "
                         "of messages for every contact (--shape flat --contacts 20000: issue "
                         "16's 20,000 conversations of 50 messages)")
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--report-only", action="store_true", help="exit 0 even when a target is missed")
    ap.add_argument("--url", help="also time the commands on this PostgreSQL store")
    ap.add_argument("--only", action="append", metavar="WORD",
                    help="time only the commands whose line holds WORD (repeatable; the "
                         "import typer floor is always timed)")
    ap.add_argument("--instructions", action="store_true",
                    help="also count each command's instructions once under valgrind: "
                         "repeatable where wall time is not (slow: a minute or more)")
    ap.add_argument("--build-into", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build_into is not None:
        meta = build(args.build_into, args.contacts, args.messages, args.seed, args.shape)
        (args.build_into / "local_scale.json").write_text(json.dumps(meta, indent=2))
        return 0

    dmtool = [sys.executable, "-m", "dmtool"]
    bin_dmtool = Path(sys.executable).with_name("dmtool")
    if bin_dmtool.exists():
        dmtool = [str(bin_dmtool)]

    tmp = None
    if args.store is not None:
        home = args.store.resolve()
        home.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory()
        home = Path(tmp.name)
    try:
        meta = ensure_store(home, args)
        print(f"store: {meta['contacts']} contacts, {meta['messages']} messages, "
              f"{meta['conversations']} conversations, {meta['evidence']} evidence rows, "
              f"{meta['audit']} audit rows (built in {meta['seconds']} s; upgrading it to the "
              f"search index took {meta['upgrade_seconds']} s and grew it from "
              f"{meta['mib_before_upgrade']} to {meta['mib_after_upgrade']} MiB); "
              f"@{meta['chattiest']} has {meta['chattiest_messages']} messages, "
              f"@{meta['typical']} (the median) {meta['typical_messages']}")
        env = dict(os.environ, DMTOOL_HOME=str(home), DMTOOL_NOW=meta["now"], NO_COLOR="1")
        env.pop("DMTOOL_PROFILE", None)
        env.pop("DMTOOL_DATABASE_URL", None)
        # Measure what users run: bytecode cached after the first start (some CI
        # images set PYTHONDONTWRITEBYTECODE, which recompiles every module).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        pg_env = None
        if args.url:
            pg_env = dict(env, DMTOOL_DATABASE_URL=args.url)
            # The store holds drafts whose send is unsettled, which migrate-to refuses
            # to move: move a copy in which they have failed.
            import shutil
            import sqlite3

            src = home / "pg-source"
            shutil.rmtree(src, ignore_errors=True)
            shutil.copytree(home, src, ignore=shutil.ignore_patterns("pg-source", "*.lock"))
            db = next(src.rglob("dmtool.db"))
            with sqlite3.connect(db) as raw:
                raw.execute("UPDATE drafts SET status = 'failed' WHERE status IN ('sending', 'unknown')")
            t = time.perf_counter()
            p = subprocess.run([*dmtool, "db", "migrate-to", args.url, "--json"],
                               env=dict(env, DMTOOL_HOME=str(src)), capture_output=True, text=True)
            if p.returncode != 0:
                raise SystemExit(f"db migrate-to failed: {p.stderr.strip()}")
            moved = json.loads(p.stdout)
            what = "already there, checked" if moved["already_migrated"] else "copied"
            print(f"db migrate-to: {what} in {time.perf_counter() - t:.1f} s "
                  f"({sum(x['rows'] for x in moved['tables']):,} rows)")
        h = "@" + meta["chattiest"]
        cases = [
            Case('python -c "import typer"', [sys.executable, "-c", "import typer"], False),
            Case("dmtool inbox --json", [*dmtool, "inbox", "--json"], True),
            Case(f"dmtool thread {h} --json --peek", [*dmtool, "thread", h, "--json", "--peek"],
                 True),
            Case("dmtool digest --peek --format json",
                 [*dmtool, "digest", "--peek", "--format", "json"], True),
            Case(f"dmtool check {h} --json", [*dmtool, "check", h, "--json"], True),
            Case("dmtool --help", [*dmtool, "--help"], True),
            Case("dmtool contacts list --json", [*dmtool, "contacts", "list", "--json"], False,
                 seconds=SECONDS_TARGET, mib=LIST_MEMORY_TARGET_MIB),
            Case("dmtool report --json", [*dmtool, "report", "--json"], False),
            Case("dmtool report --days 365 --json", [*dmtool, "report", "--days", "365", "--json"],
                 False, seconds=SECONDS_TARGET),
            # For scale: check lists every consent record, one per inbound DM, so
            # on the chattiest contact its output is tens of thousands of entries.
            Case(f"dmtool check @{meta['typical']} --json",
                 [*dmtool, "check", "@" + meta["typical"], "--json"], False),
            # Search (issue 12): a common word (a fifth of all messages), a rare
            # Japanese one, a contact's name, one contact's messages; and a
            # two-character word, which the trigram index cannot find: a scan.
            Case("dmtool search pricing --json", [*dmtool, "search", "pricing", "--json"], True),
            Case("dmtool search 配信停止 --json", [*dmtool, "search", "配信停止", "--json"], True),
            Case(f"dmtool search '{meta['typical_name']}' --json",
                 [*dmtool, "search", meta["typical_name"], "--json"], True),
            Case(f"dmtool search deploy --contact {h} --json",
                 [*dmtool, "search", "deploy", "--contact", h, "--json"], True),
            Case("dmtool search 停止 --json", [*dmtool, "search", "停止", "--json"], False),
        ]
        if args.only:
            cases = [cases[0], *(c for c in cases[1:] if any(w in c.name for w in args.only))]
        pg_cases = [Case(c.name, c.cmd, c.target) for c in cases[1:] if c.name != "dmtool --help"]
        for c in cases:  # warm the page cache and the .pyc files
            run(c.cmd, env)
        for c in pg_cases if pg_env else []:
            run(c.cmd, pg_env)  # type: ignore[arg-type]
        for _ in range(args.runs):
            for c in cases:
                wall, cpu, peak = run(c.cmd, env)
                c.walls.append(wall)
                c.cpus.append(cpu)
                c.peaks.append(peak)
                twin = next((x for x in pg_cases if x.name == c.name), None)
                if pg_env and twin is not None:
                    wall, cpu, peak = run(twin.cmd, pg_env)
                    twin.walls.append(wall)
                    twin.cpus.append(cpu)
                    twin.peaks.append(peak)
        if args.instructions:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max(1, min(4, (os.cpu_count() or 2)))) as pool:
                counts = list(pool.map(lambda c: instructions(c.cmd, env), cases))
            for c, n in zip(cases, counts, strict=True):
                c.instructions = n
    finally:
        if tmp is not None:
            tmp.cleanup()

    floor = statistics.median(cases[0].walls)
    missed = []
    print(f"median of {args.runs} runs each; targets: {RATIO_TARGET}x the floor (or "
          f"{SECONDS_TARGET} s where so marked), "
          f"< {MEMORY_TARGET_MIB:.0f} MiB")
    cpu_floor = statistics.median(cases[0].cpus)
    instr_floor = cases[0].instructions
    instr_head = f" {'M instr':>8} {'ratio':>6}" if instr_floor else ""
    print(f"{'command':<42} {'ms':>7} {'ratio':>6} {'cpu ms':>7} {'ratio':>6}{instr_head} "
          f"{'peak MiB':>9}  target")
    for c in cases:
        med = statistics.median(c.walls)
        ratio, peak = med / floor, max(c.peaks)
        verdict = ""
        if c is not cases[0]:
            if c.seconds is not None:
                ok = med <= c.seconds and peak < c.mib
            elif c.target:
                ok = ratio <= RATIO_TARGET and peak < c.mib
            else:
                ok = None
            if ok is None:
                verdict = "(reported, not a target)"
            elif ok:
                verdict = "ok"
            else:
                verdict = "MISSED"
                missed.append(c.name)
        cpu = statistics.median(c.cpus)
        instr = ""
        if instr_floor:
            instr = (f" {c.instructions / 1e6:8.1f} {c.instructions / instr_floor:5.2f}x"
                     if c.instructions else f" {'?':>8} {'':>6}")
        print(f"{c.name:<42} {med * 1000:7.1f} {ratio:5.2f}x {cpu * 1000:7.1f} {cpu / cpu_floor:5.2f}x"
              f"{instr} {peak:9.1f}  {verdict}")
    if args.url:
        missed += compare_engines(cases, pg_cases)
    if missed and not args.report_only:
        print(f"missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


PG_TARGETS = ("inbox", "thread", "check", "digest", "report")


def compare_engines(cases: list[Case], pg_cases: list[Case]) -> list[str]:
    """The PostgreSQL table: each command against its own SQLite time."""
    missed = []
    print(f"\nPostgreSQL vs SQLite, whole process; target: {PG_RATIO_TARGET}x for "
          f"{', '.join(PG_TARGETS)}")
    print(f"{'command':<42} {'SQLite ms':>9} {'PG ms':>8} {'ratio':>6} {'PG cpu ms':>9} "
          f"{'PG MiB':>7}  target")
    for pg in pg_cases:
        lite = next(c for c in cases if c.name == pg.name)
        a, b = statistics.median(lite.walls), statistics.median(pg.walls)
        verdict = "(reported)"
        if pg.name.split()[1] in PG_TARGETS:
            verdict = "ok" if b / a <= PG_RATIO_TARGET else "MISSED"
            if verdict == "MISSED":
                missed.append(f"{pg.name} on PostgreSQL")
        print(f"{pg.name:<42} {a * 1000:9.1f} {b * 1000:8.1f} {b / a:5.2f}x "
              f"{statistics.median(pg.cpus) * 1000:9.1f} {max(pg.peaks):7.1f}  {verdict}")
    return missed


if __name__ == "__main__":
    sys.exit(main())
