"""Contacts, tags, notes, evidence, suppressions and the audit log."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from dmtool import actor
from dmtool.errors import InputError, NotFound
from dmtool.models import MAX_NAME_LENGTH, Contact, EvidenceRow, Message, clean_handle
from dmtool.store.sql import Conn, Row

# Contact's fields, in order (tags aside).
CONTACT_COLUMNS = ("id", "user_id", "handle", "name", "created_at", "updated_at", "blocked_at",
                   "opted_out_at", "opt_out_words", "optout_review_text", "optout_review_at",
                   "dm_closed_at", "opt_out_reason")
_CONTACT_COLS = ", ".join(CONTACT_COLUMNS)


def _row_to_contact(conn: Conn, row: Row) -> Contact:
    tags = tuple(r[0] for r in conn.execute(
        "SELECT tag FROM contact_tags WHERE contact_id = ? ORDER BY tag", (row["id"],)))
    return Contact(**dict(row), tags=tags)


def by_id(conn: Conn, contact_id: int) -> Contact:
    row = conn.execute(f"SELECT {_CONTACT_COLS} FROM contacts WHERE id = ?", (contact_id,)).fetchone()
    if row is None:
        raise NotFound(f"no contact with id {contact_id}")
    return _row_to_contact(conn, row)


def find(conn: Conn, handle: str) -> Contact | None:
    """By handle (case-insensitive, with or without @). A newer record wins
    when an old handle still sits on a contact that has since renamed."""
    h = clean_handle(handle, stored=True)
    row = conn.execute(
        f"SELECT {_CONTACT_COLS} FROM contacts WHERE handle = ? COLLATE NOCASE "
        "ORDER BY updated_at DESC LIMIT 1", (h,)).fetchone()
    return None if row is None else _row_to_contact(conn, row)


def get(conn: Conn, handle: str) -> Contact:
    """By handle, from the local record only (see services.identity.contact_for
    for the commands that may ask X)."""
    c = find(conn, handle)
    if c is None:
        h = clean_handle(handle)
        hint = "see `dmtool contacts list`, or add one with `dmtool contacts add`"
        if placeholder_count(conn):
            hint = (f"people from an X archive are known by id until X names them: "
                    f"`dmtool check @{h}` asks X who @{h} is")
        raise NotFound(f"no contact @{h}", hint=hint)
    return c


def find_by_user_id(conn: Conn, user_id: str) -> Contact | None:
    row = conn.execute(f"SELECT {_CONTACT_COLS} FROM contacts WHERE user_id = ?", (user_id,)).fetchone()
    return None if row is None else _row_to_contact(conn, row)


def _matching_suppressions(user_id: str | None, handle: str) -> tuple[str, tuple[str, ...]]:
    """Which suppressions hold for a contact: those kept under its user id, and
    those kept under its handle while no id was known. A contact known only by
    handle takes every entry under that handle (erring on the side of not
    messaging someone who said no). The backfill migration uses this rule too."""
    if user_id is None:
        return "handle = ? COLLATE NOCASE", (handle,)
    return ("(user_id IS NOT NULL AND user_id = ?) OR "
            "(user_id IS NULL AND handle = ? COLLATE NOCASE)", (user_id, handle))


def _apply_suppressions(conn: Conn, contact_id: int, user_id: str | None,
                        handle: str) -> None:
    """Copy the suppressions that hold for this contact onto its row, which is
    what the gate reads: a contact that comes back after `forget`, or whose id
    or handle becomes known, keeps its opt-out or block."""
    where, params = _matching_suppressions(user_id, handle)
    rows = conn.execute(f"SELECT kind, at, detail, reason FROM suppressions WHERE {where} "
                        "ORDER BY id", params).fetchall()
    for kind, at, detail, reason in rows:
        if kind == "blocked":
            conn.execute("UPDATE contacts SET blocked_at = ? WHERE id = ?", (at, contact_id))
        elif kind == "opted_out":
            conn.execute("UPDATE contacts SET opted_out_at = ?, opt_out_words = ?, "
                         "opt_out_reason = ? WHERE id = ?", (at, detail, reason, contact_id))


def create(conn: Conn, handle: str, *, now: str, user_id: str | None = None,
           name: str | None = None, from_x: bool = False) -> Contact:
    """A new contact. A handle typed by a person must follow X's rule; one X
    gave (`from_x`) is taken as X spells it."""
    h = clean_handle(handle, stored=from_x)
    cur = conn.execute(
        "INSERT INTO contacts (user_id, handle, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        (user_id, h, name, now, now))
    cid = int(cur.lastrowid or 0)
    _apply_suppressions(conn, cid, user_id, h)
    return by_id(conn, cid)


def upsert_x_user(conn: Conn, user_id: str, username: str, name: str | None,
                  *, now: str) -> tuple[Contact, bool]:
    """Make sure the X user is a contact, keyed by user id; follow handle changes.
    Returns (contact, created). X's display name is cleaned, never refused:
    control characters and line breaks cannot reach a terminal or an export."""
    from dmtool.textnorm import clean_display

    name = clean_display(name, MAX_NAME_LENGTH)
    c = find_by_user_id(conn, user_id)
    if c is not None:
        if c.handle != username or (name and c.name != name):
            conn.execute("UPDATE contacts SET handle = ?, name = COALESCE(?, name), updated_at = ? "
                         "WHERE id = ?", (username, name, now, c.id))
            _apply_suppressions(conn, c.id, user_id, username)  # one kept under the new handle
            c = by_id(conn, c.id)
            twin = conn.execute("SELECT id FROM contacts WHERE user_id IS NULL AND id != ? AND "
                                "handle = ? COLLATE NOCASE", (c.id, username)).fetchone()
            if twin is not None:  # added by handle before X named this id (e.g. an archive)
                c = merge_into(conn, c, by_id(conn, twin[0]), now=now)
        return c, False
    # A contact added by handle before we knew its id: adopt it.
    row = conn.execute(
        f"SELECT {_CONTACT_COLS} FROM contacts WHERE user_id IS NULL AND handle = ? COLLATE NOCASE "
        "LIMIT 1", (username,)).fetchone()
    if row is not None:
        conn.execute("UPDATE contacts SET user_id = ?, handle = ?, name = COALESCE(name, ?), "
                     "updated_at = ? WHERE id = ?", (user_id, username, name, now, row["id"]))
        _apply_suppressions(conn, row["id"], user_id, username)
        return by_id(conn, row["id"]), False
    return create(conn, username, now=now, user_id=user_id, name=name, from_x=True), True


def merge_into(conn: Conn, keep: Contact, drop: Contact, *, now: str) -> Contact:
    """Fold a contact added by handle into the record X knows by id: tags, notes,
    evidence, drafts and messages move over; a block or opt-out on either holds."""
    for table in ("notes", "evidence", "drafts", "messages", "conversations"):
        conn.execute(f"UPDATE {table} SET contact_id = ? WHERE contact_id = ?", (keep.id, drop.id))
    # Tags both have stay with `drop` and go with it (UPDATE OR IGNORE, in SQL both engines speak).
    conn.execute("UPDATE contact_tags SET contact_id = ? WHERE contact_id = ? AND tag NOT IN "
                 "(SELECT tag FROM contact_tags WHERE contact_id = ?)", (keep.id, drop.id, keep.id))
    conn.execute(
        "UPDATE contacts SET name = COALESCE(name, ?), blocked_at = COALESCE(blocked_at, ?), "
        "opted_out_at = COALESCE(opted_out_at, ?), opt_out_words = COALESCE(opt_out_words, ?), "
        "opt_out_reason = COALESCE(opt_out_reason, ?), optout_review_text = COALESCE(optout_review_text, ?), "
        "optout_review_at = COALESCE(optout_review_at, ?), updated_at = ? WHERE id = ?",
        (drop.name, drop.blocked_at, drop.opted_out_at, drop.opt_out_words, drop.opt_out_reason,
         drop.optout_review_text, drop.optout_review_at, now, keep.id))
    conn.execute("DELETE FROM contacts WHERE id = ?", (drop.id,))
    merged = by_id(conn, keep.id)
    if merged.blocked_at:
        suppress(conn, merged, "blocked", merged.blocked_at)
    if merged.opted_out_at:
        suppress(conn, merged, "opted_out", merged.opted_out_at, merged.opt_out_words,
                 merged.opt_out_reason)
    return merged


_PLACEHOLDER = "user_id IS NOT NULL AND handle = 'user_' || user_id"


def placeholders(conn: Conn, *, after: int = 0,
                 limit: int | None = None) -> list[tuple[int, str]]:
    """(contact id, user id) of contacts X has not named yet (handle `user_<id>`,
    e.g. from an archive), in contact id order after `after`; all unless `limit`."""
    sql = f"SELECT id, user_id FROM contacts WHERE {_PLACEHOLDER} AND id > ? ORDER BY id"
    params: tuple[int, ...] = (after,)
    if limit is not None:  # (LIMIT -1, SQLite's "no limit", is an error on PostgreSQL)
        sql, params = sql + " LIMIT ?", (after, limit)
    return [(r[0], r[1]) for r in conn.execute(sql, params)]


def placeholder_count(conn: Conn) -> int:
    return int(conn.execute(f"SELECT count(*) FROM contacts WHERE {_PLACEHOLDER}").fetchone()[0])


def set_user_id(conn: Conn, contact: Contact, user_id: str, *, now: str) -> Contact:
    conn.execute("UPDATE contacts SET user_id = ?, updated_at = ? WHERE id = ?",
                 (user_id, now, contact.id))
    _apply_suppressions(conn, contact.id, user_id, contact.handle)
    return by_id(conn, contact.id)


def update_name(conn: Conn, contact: Contact, name: str, *, now: str) -> None:
    conn.execute("UPDATE contacts SET name = ?, updated_at = ? WHERE id = ?", (name, now, contact.id))


def add_tags(conn: Conn, contact_id: int, tags: Iterable[str]) -> int:
    n = 0
    for t in tags:
        cur = conn.execute("INSERT OR IGNORE INTO contact_tags (contact_id, tag) VALUES (?, ?)",
                           (contact_id, t))
        n += cur.rowcount
    return n


def remove_tags(conn: Conn, contact_id: int, tags: Iterable[str]) -> int:
    n = 0
    for t in tags:
        n += conn.execute("DELETE FROM contact_tags WHERE contact_id = ? AND tag = ?",
                          (contact_id, t)).rowcount
    return n


def add_note(conn: Conn, contact_id: int, text: str, *, now: str,
             author: str | None = None) -> None:
    """A note, by `author` (an import's), else by whoever is acting (dmtool.actor)."""
    conn.execute("INSERT INTO notes (contact_id, at, text, author) VALUES (?, ?, ?, ?)",
                 (contact_id, now, text, author or actor.current()))


def notes(conn: Conn, contact_id: int) -> list[dict[str, str | None]]:
    """The contact's notes ({"at", "author", "text"}), oldest first. A note is
    the team's record of a contact: nothing ever sends one."""
    return [{"at": r[0], "author": r[1], "text": r[2]} for r in conn.execute(
        "SELECT at, author, text FROM notes WHERE contact_id = ? ORDER BY at, id", (contact_id,))]


def all_notes(conn: Conn) -> dict[int, list[dict[str, str | None]]]:
    """contact id -> its notes ({"at", "author", "text"}), oldest first: one query
    for an export."""
    out: dict[int, list[dict[str, str | None]]] = {}
    for cid, at, author, text in conn.execute(
            "SELECT contact_id, at, author, text FROM notes ORDER BY at, id"):
        out.setdefault(cid, []).append({"at": at, "author": author, "text": text})
    return out


def has_note(conn: Conn, contact_id: int, text: str) -> bool:
    return conn.execute("SELECT 1 FROM notes WHERE contact_id = ? AND text = ?",
                        (contact_id, text)).fetchone() is not None


def add_evidence(conn: Conn, contact_id: int, kind: str, at: str, ref: str,
                 text: str | None, *, now: str) -> bool:
    """Record a consent basis once per (kind, ref). Returns True when new."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO evidence (contact_id, kind, at, ref, text, recorded_at, "
        "recorded_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (contact_id, kind, at, ref, text, now, actor.current()))
    return cur.rowcount > 0


def evidence(conn: Conn, contact_id: int) -> list[EvidenceRow]:
    """Every consent record of the contact, oldest first, with who recorded it."""
    return [EvidenceRow(*r) for r in conn.execute(
        "SELECT id, kind, at, ref, text, recorded_by FROM evidence WHERE contact_id = ? "
        "ORDER BY at, id", (contact_id,))]


def deciding_evidence(conn: Conn, contact_id: int, *, newest_of: Iterable[str],
                      all_of: Iterable[str]) -> list[EvidenceRow]:
    """The evidence a consent decision reads, oldest first: the newest row of
    each kind in `newest_of` and every row of the kinds in `all_of`. A chatty
    contact has one inbound_dm row per DM; only the newest can change an answer.
    One indexed query per kind (contact_id, kind, at): a single query over all
    kinds would walk every row of the contact to keep them in time order."""
    sql = "SELECT id, kind, at, ref, text FROM evidence WHERE contact_id = ? AND kind = ? "
    rows = []
    for kind in newest_of:
        rows += conn.execute(sql + "ORDER BY at DESC, id DESC LIMIT 1", (contact_id, kind)).fetchall()
    for kind in all_of:
        rows += conn.execute(sql, (contact_id, kind)).fetchall()
    return [EvidenceRow(*r) for r in sorted(rows, key=lambda r: (r[2], r[0]))]


def count_evidence(conn: Conn, contact_id: int, kinds: Iterable[str]) -> int:
    """How many evidence rows of these kinds the contact has."""
    ks = list(kinds)
    if not ks:
        return 0
    return int(conn.execute(
        f"SELECT count(*) FROM evidence WHERE contact_id = ? AND kind IN "
        f"({','.join('?' * len(ks))})", (contact_id, *ks)).fetchone()[0])


def last_message_times(conn: Conn, contact_id: int) -> tuple[str | None, str | None]:
    """(last inbound, last outbound) message times of one contact."""
    row = conn.execute(
        "SELECT (SELECT max(at) FROM messages WHERE contact_id = ?1 AND direction = 'in'), "
        "(SELECT max(at) FROM messages WHERE contact_id = ?1 AND direction = 'out')",
        (contact_id,)).fetchone()
    return row[0], row[1]


def messages(conn: Conn, contact_id: int, limit: int | None = None) -> list[Message]:
    """The conversation, oldest first (the last `limit` messages)."""
    sql = ("SELECT id, event_id, at, direction, text, source FROM messages WHERE contact_id = ? "
           "ORDER BY at DESC, id DESC")
    params: tuple[Any, ...] = (contact_id,)
    if limit is not None:
        sql += " LIMIT ?"
        params += (limit,)
    rows = conn.execute(sql, params).fetchall()
    return [Message(*r) for r in reversed(rows)]


def suppress(conn: Conn, contact: Contact, kind: str, at: str,
             detail: str | None = None, reason: str | None = None) -> None:
    if contact.user_id is not None:
        conn.execute(
            "INSERT INTO suppressions (user_id, handle, kind, at, detail, reason) "
            "VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (user_id, kind) WHERE user_id IS NOT NULL DO UPDATE SET "
            "handle = excluded.handle, at = excluded.at, detail = excluded.detail, "
            "reason = excluded.reason",
            (contact.user_id, contact.handle, kind, at, detail, reason))
    else:
        conn.execute("DELETE FROM suppressions WHERE user_id IS NULL AND handle = ? COLLATE NOCASE "
                     "AND kind = ?", (contact.handle, kind))
        conn.execute("INSERT INTO suppressions (user_id, handle, kind, at, detail, reason) "
                     "VALUES (NULL, ?, ?, ?, ?, ?)", (contact.handle, kind, at, detail, reason))


def unsuppress(conn: Conn, contact: Contact, kind: str) -> list[str]:
    """Drop the entries of this kind kept for this contact: under its user id,
    or under its handle while no id was known. Returns the user ids of entries
    left standing: kept for an account that used this handle, when the contact
    has no id yet. Nobody can tell that account is this contact, so its entry
    stays (and comes back onto the row if X says it is)."""
    if contact.user_id is None:
        conn.execute("DELETE FROM suppressions WHERE kind = ? AND user_id IS NULL "
                     "AND handle = ? COLLATE NOCASE", (kind, contact.handle))
        return [r[0] for r in conn.execute(
            "SELECT user_id FROM suppressions WHERE kind = ? AND user_id IS NOT NULL "
            "AND handle = ? COLLATE NOCASE ORDER BY id", (kind, contact.handle))]
    where, params = _matching_suppressions(contact.user_id, contact.handle)
    conn.execute(f"DELETE FROM suppressions WHERE kind = ? AND ({where})", (kind, *params))
    return []


def set_blocked(conn: Conn, contact: Contact, at: str | None) -> list[str]:
    """Block (at set) or unblock (None). Unblocking returns the user ids whose
    block stays (see unsuppress)."""
    conn.execute("UPDATE contacts SET blocked_at = ?, updated_at = COALESCE(?, updated_at) "
                 "WHERE id = ?", (at, at, contact.id))
    if at is None:
        return unsuppress(conn, contact, "blocked")
    suppress(conn, contact, "blocked", at)
    return []


def set_opted_out(conn: Conn, contact: Contact, at: str | None,
                  words: str | None, reason: str | None = None) -> None:
    """Opt out (at set) or lift it (at None, only ever from the contact's own DM).
    `words`: what they wrote; `reason`: yours, when you record it by hand."""
    conn.execute("UPDATE contacts SET opted_out_at = ?, opt_out_words = ?, opt_out_reason = ?, "
                 "optout_review_text = NULL, optout_review_at = NULL WHERE id = ?",
                 (at, words, reason, contact.id))
    if at is None:
        unsuppress(conn, contact, "opted_out")
    else:
        suppress(conn, contact, "opted_out", at, words, reason)


def set_review(conn: Conn, contact: Contact, text: str | None, at: str | None) -> None:
    conn.execute("UPDATE contacts SET optout_review_text = ?, optout_review_at = ? WHERE id = ?",
                 (text, at, contact.id))


def set_dm_closed(conn: Conn, contact_id: int, at: str | None) -> None:
    conn.execute("UPDATE contacts SET dm_closed_at = ? WHERE id = ?", (at, contact_id))


def delete(conn: Conn, contact: Contact) -> None:
    """Forget a contact. Blocks and opt-outs stay as suppression entries."""
    if contact.blocked_at:
        suppress(conn, contact, "blocked", contact.blocked_at)
    if contact.opted_out_at:
        suppress(conn, contact, "opted_out", contact.opted_out_at, contact.opt_out_words,
                 contact.opt_out_reason)
    # The send ledger keeps counting toward the caps; only the words go.
    conn.execute("UPDATE sends SET text = NULL WHERE user_id = ?",
                 (contact.user_id or f"local:{contact.id}",))
    conn.execute("DELETE FROM contacts WHERE id = ?", (contact.id,))


def summaries(conn: Conn, tag: str | None = None) -> list[Row]:
    """One row per contact with what `contacts list` shows: Contact's fields (in
    order), then tag_list (see `tags_of`), last_inbound_at and last_outbound_at."""
    sql, params = _listing_sql(tag, (), (), unanswered=False, pending_imports=False)
    return conn.execute(sql, params).fetchall()


# The columns every listing() row starts with, in order (Contact's fields first).
LISTED = (*CONTACT_COLUMNS, "tag_list", "last_inbound_at", "last_outbound_at")


def listing(conn: Conn, tag: str | None = None, *, newest_of: Sequence[str] = (),
            count_of: Sequence[str] = (), unanswered: bool = False,
            pending_imports: bool = False) -> Iterator[tuple[Any, ...]]:
    """Every contact (with `tag`), by handle, one row at a time, as plain
    tuples: the LISTED columns, then the newest evidence time of each kind of
    `newest_of`, then (with `count_of`) how many evidence rows of those kinds,
    then (with `unanswered`) the outbound messages since their last inbound
    one, then import_pending: the archive of an incomplete import that holds
    them (looked up only with `pending_imports`, else None).

    Streamed in the handle index's order: each value is a correlated lookup
    of one index seek (the newest of a kind, the last message each way), so
    nothing is grouped, materialised or sorted, and memory stays flat however
    many contacts there are."""
    sql, params = _listing_sql(tag, newest_of, count_of, unanswered=unanswered,
                               pending_imports=pending_imports)
    cur = conn.execute(sql, params)
    cur.row_factory = None  # tuples: a name lookup per value would cost more than the row
    return iter(cur)


def _listing_sql(tag: str | None, newest_of: Sequence[str], count_of: Sequence[str], *,
                 unanswered: bool, pending_imports: bool) -> tuple[str, list[str]]:
    where, params = "", list[str]()
    if tag:
        where, params = "WHERE c.id IN (SELECT contact_id FROM contact_tags WHERE tag = ?)", [tag]
    cols = [f"c.{col}" for col in CONTACT_COLUMNS]
    cols.append("(SELECT group_concat(tag, char(31)) FROM (SELECT tag FROM contact_tags t "
                "WHERE t.contact_id = c.id ORDER BY tag)) AS tag_list")
    last = "(SELECT max(at) FROM messages m WHERE m.contact_id = c.id AND m.direction = '{}')"
    cols += [last.format("in") + " AS last_inbound_at", last.format("out") + " AS last_outbound_at"]
    cols += ["(SELECT max(at) FROM evidence e WHERE e.contact_id = c.id AND e.kind = ?)"
             for _ in newest_of]
    if count_of:
        cols.append(f"(SELECT count(*) FROM evidence e WHERE e.contact_id = c.id AND e.kind IN "
                    f"({','.join('?' * len(count_of))}))")
    if unanswered:
        cols.append("(SELECT count(*) FROM messages o WHERE o.contact_id = c.id AND "
                    f"o.direction = 'out' AND o.at > COALESCE({last.format('in')}, ''))")
    if pending_imports:  # only when there is an incomplete import: one seek more per contact
        cols.append("(SELECT a.archive FROM import_participants p JOIN archive_imports a "
                    "ON a.id = p.import_id WHERE p.user_id = c.user_id AND a.completed_at IS NULL "
                    "ORDER BY a.id LIMIT 1)")
    else:
        cols.append("NULL")
    return (f"SELECT {', '.join(cols)} FROM contacts c {where} ORDER BY c.handle COLLATE NOCASE",
            [*newest_of, *count_of, *params])


def tags_of(row: Row) -> list[str]:
    """The tags of a summaries() row, sorted."""
    return tags_from(row["tag_list"])


def tags_from(tag_list: str | None) -> list[str]:
    """The tags of a tag_list column, sorted (string_agg's order on PostgreSQL
    is the subquery's only by custom, so it is not relied on)."""
    return sorted(tag_list.split("\x1f")) if tag_list else []


def all_evidence(conn: Conn,
                 kinds: Iterable[str] | None = None) -> dict[int, list[EvidenceRow]]:
    """contact id -> evidence rows (of these kinds only, when given), oldest first."""
    where, params = "", list[str]()
    if kinds is not None:
        params = sorted(kinds)
        where = f"WHERE kind IN ({','.join('?' * len(params))}) "
    out: dict[int, list[EvidenceRow]] = {}
    for r in conn.execute(f"SELECT contact_id, id, kind, at, ref, text FROM evidence {where}"
                          "ORDER BY at", params):
        out.setdefault(r[0], []).append(EvidenceRow(*r[1:]))
    return out


def newest_evidence_times(conn: Conn,
                          kinds: Iterable[str]) -> dict[int, list[tuple[str, str]]]:
    """contact id -> (kind, newest time) for each of these kinds the contact has:
    one pass over the (contact_id, kind, at) index."""
    ks = sorted(kinds)
    out: dict[int, list[tuple[str, str]]] = {}
    for cid, kind, at in conn.execute(
            f"SELECT contact_id, kind, max(at) FROM evidence WHERE kind IN "
            f"({','.join('?' * len(ks))}) GROUP BY contact_id, kind", ks):
        out.setdefault(cid, []).append((kind, at))
    return out


def audit(conn: Conn, action: str, *, now: str, contact: Contact | None = None,
          draft_id: int | None = None, codes: Sequence[str] = (), **detail: Any) -> None:
    """Append one audit entry, written for whoever is acting (dmtool.actor);
    store/audit.py reads them."""
    conn.execute(
        "INSERT INTO audit (at, action, user_id, handle, draft_id, codes, detail, actor) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (now, action, contact.user_id if contact else None, contact.handle if contact else None,
         draft_id, " ".join(codes) or None,
         json.dumps(detail, ensure_ascii=False, sort_keys=True) if detail else None,
         actor.current()))


def check_tag(tag: str) -> str:
    """A tag as a person typed it: one line, at most 50 characters, no ';' or ','
    (the separators of an export) and no control characters."""
    import unicodedata

    from dmtool.textnorm import cut, is_blank

    t = tag.strip()
    if (is_blank(t) or len(t) > 50 or any(
            ch in ";," or (ch.isspace() and ch != " ") or unicodedata.category(ch) in ("Cc", "Cs")
            for ch in t)):
        raise InputError(f"not a valid tag: {cut(tag)}",
                         hint="tags are short words without ';', ',', line breaks or control "
                              "characters")
    return t
