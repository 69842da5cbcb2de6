"""Copies of the store: a checked backup, a checked file to restore from, and
what a restore carries over from the store it replaces.

A restore brings back an older state, so whatever protects people that the
current store learned since must survive it: opt-outs, blocks and the other
suppressions, opt-out reviews, the send ledger (caps and duplicates count it)
and X's rate-limit pauses. `salvage` reads them from the current store as far
as it can still be read, row by row around damaged pages; `merge` writes them
into the restored one, never lifting anything the restored store holds.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from dmtool.errors import StoreError
from dmtool.store import faults
from dmtool.store.db import Store, problems_of, side_files
from dmtool.store.migrations import MIGRATIONS
from dmtool.store.sql import Conn

READ_SLICE = 500  # rows per query while salvaging: a damaged page costs one slice


def _open_file(path: Path) -> sqlite3.Connection:
    """A store file opened read-only, errors translated. A backup is written by
    nobody, so it is opened as immutable (no -wal or -shm file appears beside
    it), unless a -wal file beside it holds commits it would miss."""
    wal = Path(f"{path}-wal")
    mode = "?mode=ro" if wal.exists() and wal.stat().st_size else "?mode=ro&immutable=1"
    with faults.translated(path):
        conn = sqlite3.connect(path.resolve().as_uri() + mode, uri=True,
                               isolation_level=None, factory=faults.Connection)
    conn.dmtool_path = path  # type: ignore[attr-defined]
    return conn


def file_problems(path: Path) -> tuple[int | None, list[str]]:
    """`db check` of a store file: (its schema version, the problems found).
    The version is None when the file cannot be read as a store at all."""
    try:
        conn = _open_file(path)
    except StoreError as e:
        return None, [e.message]
    try:
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        except StoreError as e:
            return None, [e.message]
        if version > len(MIGRATIONS):  # a newer schema: our checks would misjudge it
            return version, []
        return version, problems_of(conn, version)
    finally:
        conn.close()


def copy_store(store: Store, dest: Path) -> None:
    """A consistent copy of the open store, taken while others may write it."""
    _backup(cast(sqlite3.Connection, store.conn), dest)


def copy_file(src: Path, dest: Path) -> None:
    """A consistent copy of a store file (a backup, with its -wal if it has one)."""
    conn = _open_file(src)
    try:
        _backup(conn, dest)
    finally:
        conn.close()


def _backup(source: sqlite3.Connection, dest: Path) -> None:
    try:
        with faults.translated(dest):
            target = sqlite3.connect(dest, isolation_level=None)
            try:
                source.backup(target)
                # One self-contained file: no -wal or -shm beside a backup.
                target.execute("PRAGMA journal_mode = DELETE")
            finally:
                target.close()
    except BaseException:
        for p in (dest, *side_files(dest)):
            with contextlib.suppress(OSError):
                p.unlink()
        raise


def seal(store: Store) -> None:
    """Fold the store's WAL into its file and leave WAL mode, so that the file
    alone is the whole store and can be moved (open_store turns WAL back on)."""
    store.conn.execute("PRAGMA journal_mode = DELETE")


def state_value_of(path: Path, key: str) -> str | None:
    """One sync_state value of a store file (None when absent or unreadable)."""
    try:
        conn = _open_file(path)
    except StoreError:
        return None
    try:
        row = conn.execute("SELECT value FROM sync_state WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]
    except (StoreError, sqlite3.Error):
        return None
    finally:
        conn.close()


# --- what the current store knows that a restore must keep ---------------------------


@dataclass
class Salvage:
    suppressions: list[tuple[Any, ...]] = field(default_factory=list)  # user_id, handle, kind, at, detail
    reviews: list[tuple[Any, ...]] = field(default_factory=list)  # user_id, handle, text, at
    sends: list[tuple[Any, ...]] = field(default_factory=list)  # the sends ledger's columns, in order
    state: list[tuple[str, str]] = field(default_factory=list)  # sync_state (key, value) asked for
    team: list[tuple[Any, ...]] = field(default_factory=list)  # team_members' columns, in order
    team_settings: list[tuple[Any, ...]] = field(default_factory=list)  # team_settings' columns
    unreadable: list[str] = field(default_factory=list)  # what could not be read, in words


_SENDS = "user_id, at, text, first_contact, kind, draft_id, event_id"
_TEAM = "name, role, added_at, added_by"
_TEAM_SETTINGS = "key, value, set_at, set_by"


def salvage(conn: Conn, *, state_keys: Sequence[str]) -> Salvage:
    """Read what a restore keeps from a store that may be damaged: every row
    that can still be read. A contact's own opt-out or block counts as a
    suppression too (in case the suppressions table is the damaged one)."""
    out = Salvage()
    out.suppressions = [r[1:] for r in _readable_rows(
        conn, "suppressions", "user_id, handle, kind, at, detail", "", out.unreadable)]
    flagged = _readable_rows(
        conn, "contacts", "user_id, handle, opted_out_at, opt_out_words, blocked_at, "
        "optout_review_text, optout_review_at",
        "opted_out_at IS NOT NULL OR blocked_at IS NOT NULL OR optout_review_text IS NOT NULL",
        out.unreadable)
    for _, user_id, handle, opted_out_at, words, blocked_at, review, review_at in flagged:
        if opted_out_at:
            out.suppressions.append((user_id, handle, "opted_out", opted_out_at, words))
        if blocked_at:
            out.suppressions.append((user_id, handle, "blocked", blocked_at, None))
        if review and not opted_out_at:
            out.reviews.append((user_id, handle, review, review_at))
    out.sends = [r[1:] for r in _readable_rows(conn, "sends", _SENDS, "", out.unreadable)]
    out.team = [r[1:] for r in _readable_rows(conn, "team_members", _TEAM, "", out.unreadable)]
    out.team_settings = [r[1:] for r in _readable_rows(
        conn, "team_settings", _TEAM_SETTINGS, "", out.unreadable)]
    if state_keys:
        marks = ",".join("?" * len(state_keys))
        try:
            out.state = [(r[0], r[1]) for r in conn.execute(
                f"SELECT key, value FROM sync_state WHERE key IN ({marks}) AND value IS NOT NULL",
                tuple(state_keys))]
        except StoreError as e:
            out.unreadable.append(f"sync_state: {e.message}")
    return out


def _readable_rows(conn: Conn, table: str, cols: str, where: str,
                   unreadable: list[str]) -> list[tuple[Any, ...]]:
    """(rowid, cols...) of every row of `table` that can be read, in rowid order.
    Reads in slices by rowid; past a damaged page it probes further and further
    ahead until the table's b-tree leads to readable rows again."""
    cond = f" AND ({where})" if where else ""
    sql = f"SELECT rowid, {cols} FROM {table} WHERE rowid > ?{cond} ORDER BY rowid LIMIT {READ_SLICE}"
    rows: list[tuple[Any, ...]] = []
    after = -(1 << 63)
    while True:
        try:
            got = [tuple(r) for r in conn.execute(sql, (after,)).fetchall()]
        except (StoreError, sqlite3.DatabaseError) as e:
            message = e.message if isinstance(e, StoreError) else str(e)
            nxt = _next_readable(conn, table, after)
            where_ = "" if after < 0 else f" after row {after}"
            unreadable.append(f"{table}: rows{where_} could not be read ({message})")
            if nxt is None:
                return rows
            after = nxt - 1
            continue
        if not got:
            return rows
        rows += got
        after = got[-1][0]


def _next_readable(conn: Conn, table: str, after: int) -> int | None:
    """The first rowid past `after` that can be read, skipping a damaged stretch;
    None when nothing further can be read."""
    step = 1
    start = max(after, 0)
    while step < (1 << 62):
        try:
            row = conn.execute(f"SELECT rowid FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT 1",
                               (start + step,)).fetchone()
            return None if row is None else int(row[0])
        except (StoreError, sqlite3.DatabaseError):
            step *= 2
    return None


# --- writing it into the restored store ---------------------------------------------------


def merge(conn: Conn, kept: Salvage) -> dict[str, int]:
    """Write what `salvage` read into the restored store (inside a transaction).
    Adds and tightens, never lifts: an opt-out or block the restored store
    holds stays; a newer one from the current store replaces an older one."""
    counts = {"opted_out": 0, "blocked": 0, "reviews": 0, "sends": 0}
    for user_id, handle, kind, at, detail in _newest(kept.suppressions):
        _suppress(conn, user_id, handle, kind, at, detail)
        if kind in counts:
            counts[kind] += 1
        column = {"opted_out": "opted_out_at", "blocked": "blocked_at"}.get(kind)
        if column is None:
            continue
        where, params = _same_person(user_id, handle)
        words = ", opt_out_words = ?" if kind == "opted_out" else ""
        conn.execute(f"UPDATE contacts SET {column} = ?{words} WHERE ({where}) "
                     f"AND ({column} IS NULL OR {column} < ?)",
                     (at, *((detail,) if words else ()), *params, at))
        if kind == "opted_out":  # an opt-out settles a review
            conn.execute("UPDATE contacts SET optout_review_text = NULL, optout_review_at = NULL "
                         f"WHERE ({where}) AND opted_out_at IS NOT NULL", params)
    for user_id, handle, text, at in kept.reviews:
        where, params = _same_person(user_id, handle)
        counts["reviews"] += int(conn.execute(
            f"UPDATE contacts SET optout_review_text = ?, optout_review_at = ? WHERE ({where}) "
            "AND opted_out_at IS NULL AND (optout_review_at IS NULL OR optout_review_at < ?)",
            (text, at, *params, at)).rowcount > 0)
    for user_id, at, text, first_contact, kind, draft_id, event_id in kept.sends:
        if event_id is None and conn.execute(
                "SELECT 1 FROM sends WHERE user_id = ? AND at = ? AND kind = ?",
                (user_id, at, kind)).fetchone():
            continue
        same = draft_id is not None and _same_draft(conn, draft_id, user_id, text, event_id)
        counts["sends"] += conn.execute(
            f"INSERT OR IGNORE INTO sends ({_SENDS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (user_id, at, text, first_contact, kind, draft_id if same else None, event_id)).rowcount
    if kept.team:  # the team as it is now, with its settings: not the backup's roles
        conn.execute("DELETE FROM team_members")
        conn.execute("DELETE FROM team_settings")
        conn.executemany(f"INSERT INTO team_members ({_TEAM}) VALUES (?, ?, ?, ?)", kept.team)
        conn.executemany(f"INSERT INTO team_settings ({_TEAM_SETTINGS}) VALUES (?, ?, ?, ?)",
                         kept.team_settings)
        counts["team"] = len(kept.team)
    return counts


def _same_draft(conn: Conn, draft_id: int, user_id: str, text: str | None,
                event_id: str | None) -> bool:
    """Is the restored store's draft `draft_id` the one this ledger row sent?
    Draft ids are not reused, so it is when it went out as that event, or has
    not gone out yet and is that text to that person."""
    row = conn.execute(
        "SELECT d.dm_event_id, d.text, COALESCE(c.user_id, 'local:' || c.id) FROM drafts d "
        "JOIN contacts c ON c.id = d.contact_id WHERE d.id = ?", (draft_id,)).fetchone()
    if row is None:
        return False
    if row[0] is not None:
        return bool(row[0] == event_id)
    return bool(row[1] == text and row[2] == user_id)


def _newest(entries: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """One entry per person and kind: the newest."""
    best: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for e in entries:
        user_id, handle, kind, at = e[0], e[1], e[2], e[3]
        k = (user_id, kind) if user_id else (None, (handle or "").lower(), kind)
        if k not in best or (best[k][3] or "") < (at or ""):
            best[k] = e
    return list(best.values())


def _same_person(user_id: str | None, handle: str | None) -> tuple[str, tuple[Any, ...]]:
    """The restored contacts an entry holds for: the same user id, or the same
    handle where either side has no id (contacts._matching_suppressions' rule)."""
    if user_id:
        return ("user_id = ? OR (user_id IS NULL AND handle = ? COLLATE NOCASE)",
                (user_id, handle or ""))
    return "handle = ? COLLATE NOCASE", (handle or "",)


def _suppress(conn: Conn, user_id: str | None, handle: str | None, kind: str,
              at: str, detail: str | None) -> None:
    if user_id:
        conn.execute(
            "INSERT INTO suppressions (user_id, handle, kind, at, detail) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (user_id, kind) WHERE user_id IS NOT NULL DO UPDATE SET "
            "handle = excluded.handle, at = excluded.at, detail = excluded.detail "
            "WHERE excluded.at > suppressions.at", (user_id, handle, kind, at, detail))
    elif not conn.execute("SELECT 1 FROM suppressions WHERE user_id IS NULL AND handle = ? "
                          "COLLATE NOCASE AND kind = ? AND at >= ?", (handle, kind, at)).fetchone():
        conn.execute("DELETE FROM suppressions WHERE user_id IS NULL AND handle = ? COLLATE NOCASE "
                     "AND kind = ?", (handle, kind))
        conn.execute("INSERT INTO suppressions (user_id, handle, kind, at, detail) "
                     "VALUES (NULL, ?, ?, ?, ?)", (handle, kind, at, detail))


def unsettle_drafts(conn: Conn, *, now: str) -> list[int]:
    """Every draft that may have gone out since the backup becomes `unknown`,
    so `send` asks X before anything else: those approved or being sent, and
    any other whose own send the (merged) ledger records. The attempt is dated
    from the approval (or creation), which bounds X's search."""
    rows = conn.execute(
        "SELECT d.id FROM drafts d WHERE d.status IN ('approved', 'sending') "
        "OR (d.status NOT IN ('sent', 'unknown') AND EXISTS "
        "    (SELECT 1 FROM sends s WHERE s.draft_id = d.id)) ORDER BY d.id").fetchall()
    ids = [int(r[0]) for r in rows]
    for draft_id in ids:
        conn.execute("UPDATE drafts SET status = 'unknown', updated_at = ?, "
                     "send_started_at = COALESCE(send_started_at, approved_at, created_at) "
                     "WHERE id = ?", (now, draft_id))
    return ids


def set_state_values(conn: Conn, values: Iterable[tuple[str, str | None]], *,
                     later: bool = False, missing_only: bool = False) -> None:
    """Write sync_state values (None deletes). With `later`, a value replaces
    the stored one only when it sorts after it (RFC 3339 times); with
    `missing_only`, only where there is none."""
    for key, value in values:
        if value is None:
            conn.execute("DELETE FROM sync_state WHERE key = ?", (key,))
            continue
        keep = ("sync_state.value IS NULL" if missing_only else
                "sync_state.value IS NULL OR excluded.value > sync_state.value" if later else "1")
        conn.execute("INSERT INTO sync_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO "
                     f"UPDATE SET value = excluded.value WHERE {keep}", (key, value))


def summary(conn: Conn) -> dict[str, Any]:
    """What a store file holds, for the restore prompt."""
    one = conn.execute(
        "SELECT (SELECT count(*) FROM contacts), (SELECT count(*) FROM messages), "
        "(SELECT max(at) FROM messages), (SELECT max(at) FROM audit)").fetchone()
    return {"contacts": one[0], "messages": one[1], "newest_message": one[2],
            "last_change": one[3]}


def file_summary(path: Path) -> dict[str, Any]:
    conn = _open_file(path)
    try:
        return summary(conn)
    finally:
        conn.close()
