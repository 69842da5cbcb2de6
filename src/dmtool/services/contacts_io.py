"""Contact import and export (CSV and JSON). Parsing is pure; applying is one
transaction, so a refused file changes nothing. An import never records
consent; it may only add an opt-out (the `opted_out_at` column of an export).

Both sides keep to the same field limits (models.MAX_NAME_LENGTH, ...), so the
store's own export always imports again.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dmtool import timeutil
from dmtool.errors import DmtoolError, InputError
from dmtool.models import clean_handle, clean_name, clean_note
from dmtool.store import contacts as cstore
from dmtool.store.sql import Conn
from dmtool.textnorm import cut, line_ends, typed

if TYPE_CHECKING:
    from dmtool.policy import PolicySettings

# The columns an import reads. The consent columns of an export (status,
# last contact) are facts of the store that wrote it: an import ignores them,
# except that `opted_out_at` may add an opt-out (never remove one).
FIELDS = ["handle", "user_id", "name", "tags", "notes"]
EXPORT_FIELDS = ["handle", "user_id", "name", "tags", "status", "opted_out_at",
                 "last_inbound_at", "last_outbound_at", "notes"]
_USER_ID = re.compile(r"[0-9]{1,25}")
_YES = {"yes", "true", "1", "y", "x"}
_NO = {"", "no", "false", "0", "n"}
# Larger than the biggest export a store can make; a guard against a wrong file
# (`/dev/zero`, a disk image), as archive import has one.
MAX_IMPORT_BYTES = 128 * 1024 * 1024


@dataclass
class Note:
    text: str
    at: str | None = None  # as exported (JSON); None: the time of the import
    author: str | None = None  # as exported; None: whoever imports it


@dataclass
class Row:
    line: int
    handle: str
    user_id: str | None = None
    name: str | None = None
    tags: list[str] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    opted_out_at: str | None = None


@dataclass
class Parsed:
    rows: list[Row]
    bad: list[tuple[int, str]]  # (line or item number, reason)


def sniff(data: str) -> str:
    """csv or json, from the text itself (stdin, or a file without a telling suffix)."""
    return "json" if data.lstrip("\ufeff \t\r\n")[:1] in ("[", "{") else "csv"


# --- notes ----------------------------------------------------------------------------
#
# In CSV the notes column is readable text: one note per line; the line breaks
# inside a note continue on lines that start with a tab (notes never start
# with whitespace: they are stored stripped). A note's author follows its text
# as " [by NAME]" (member names hold no brackets), which an import takes off
# again.
_AUTHOR = re.compile(r" \[by ([^\[\]\n]{1,100})\]\Z")


def notes_to_cell(notes: list[dict[str, Any]]) -> str:
    out = []
    for n in notes:
        author = n.get("author")
        by = f" [by {author}]" if author and _AUTHOR.fullmatch(f" [by {author}]") else ""
        out.append(str(n["text"]).replace("\n", "\n\t") + by)
    return "\n".join(out)


def _notes_from_cell(cell: str) -> list[Note]:
    if cell.lstrip().startswith("["):  # 0.1.0 exported notes as a JSON list
        try:
            old = json.loads(cell)
        except (ValueError, RecursionError):
            old = None
        if isinstance(old, list) and all(isinstance(n, str) for n in old):
            return [Note(n) for n in old]
    texts: list[str] = []
    for line in line_ends(cell).split("\n"):
        if line.startswith("\t") and texts:
            texts[-1] += "\n" + line[1:]
        elif line.strip():
            texts.append(line)
    notes = []
    for text in texts:
        m = _AUTHOR.search(text)
        notes.append(Note(text[:m.start()], author=m.group(1)) if m else Note(text))
    return notes


def _notes(value: Any) -> list[Note]:
    if value is None or value == "":
        return []
    if isinstance(value, list):  # JSON: strings or {"at", "author", "text"} objects
        out = []
        for n in value:
            if isinstance(n, dict):
                at, author = n.get("at"), n.get("author")
                out.append(Note(str(n.get("text") or ""), str(at) if at else None,
                                str(author) if author else None))
            else:
                out.append(Note(str(n)))
    else:
        out = _notes_from_cell(str(value))
    for n in out:
        n.text = clean_note(n.text)
        n.at = _time(n.at, "a note's at") if n.at else None
        if n.author is not None:
            n.author = typed(n.author, "a note's author", max_length=100, one_line=True) or None
    return [n for n in out if n.text]


# --- one record -------------------------------------------------------------------------


def _time(value: str, what: str) -> str:
    try:
        return timeutil.fmt(timeutil.parse(value)) or value
    except (ValueError, OverflowError):
        raise ValueError(f"{what} must be a date and time like 2026-03-02T12:00:00Z, "
                         f"not {cut(value)}") from None


def _opted_out(value: Any) -> str | None:
    """A manual opt-out to add: a date, or yes/true (then: the time of the import)."""
    if value is None or value is False:
        return None
    if value is True:
        return ""
    text = str(value).strip()
    if text.lower() in _NO:
        return None
    if text.lower() in _YES:
        return ""
    return _time(text, "opted_out_at")


def _split_tags(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [p for p in str(value).split(";") if p.strip()]


def _row(line: int, rec: Any) -> Row:
    if not isinstance(rec, dict):
        raise ValueError("not an object with a handle")
    handle = rec.get("handle")
    if handle is None or not str(handle).strip():
        raise ValueError("handle is missing")
    uid = rec.get("user_id")
    uid = None if uid in (None, "") else str(uid).strip()
    if uid is not None and not _USER_ID.fullmatch(uid):
        raise ValueError(f"user_id must be X's numeric id, not {cut(uid)}")
    try:
        h = clean_handle(str(handle))
        name = rec.get("name")
        name = None if name is None else clean_name(str(name))
        tags = [cstore.check_tag(t) for t in _split_tags(rec.get("tags"))]
        notes = _notes(rec.get("notes"))
    except DmtoolError as e:
        raise ValueError(e.message) from None
    return Row(line, h, uid, name, tags, notes, _opted_out(rec.get("opted_out_at")))


# --- the file ---------------------------------------------------------------------------


def _json_records(data: str) -> list[tuple[int, Any]]:
    try:
        doc = json.loads(data)
    except json.JSONDecodeError as e:
        raise InputError(f"not valid JSON: {e.msg} at line {e.lineno}",
                         hint="for a CSV file give --format csv") from None
    except RecursionError:
        raise InputError("not a contacts file: the JSON is nested too deeply",
                         hint="a JSON import is a list of contact objects") from None
    except ValueError as e:  # e.g. a number with more digits than Python converts
        raise InputError(f"not valid JSON: {e}") from None
    if isinstance(doc, dict) and isinstance(doc.get("contacts"), list):
        doc = doc["contacts"]
    if not isinstance(doc, list):
        raise InputError("a JSON import must be a list of contact objects")
    return list(enumerate(doc, start=1))


class _Lines:
    """The text's lines, counted: the line a CSV error is on, even inside a
    quoted field that spans lines (csv's line_num lags behind on errors)."""

    def __init__(self, data: str) -> None:
        self._it = iter(io.StringIO(data, newline=""))
        self.count = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = next(self._it)
        self.count += 1
        return line


def _csv_records(data: str) -> list[tuple[int, Any]]:
    lines = _Lines(line_ends(data))
    limit = csv.field_size_limit()
    csv.field_size_limit(MAX_IMPORT_BYTES)  # a field is bounded by the file's size
    records: list[tuple[int, Any]] = []
    try:
        reader = csv.DictReader(lines)
        if not reader.fieldnames or "handle" not in [(f or "").strip() for f in reader.fieldnames]:
            raise InputError("a CSV import needs a header line with a 'handle' column",
                             hint=f"columns: {','.join(FIELDS)}; for a JSON file give "
                                  "--format json")
        start = lines.count + 1
        for rec in reader:
            if None in rec:  # more cells than the header has columns
                records.append((start, ValueError("more values than the header has columns")))
            else:
                records.append((start, {(k or "").strip(): v for k, v in rec.items()}))
            start = lines.count + 1
    except csv.Error as e:
        raise InputError(f"CSV error at line {max(lines.count, 1)}: {e}") from None
    finally:
        csv.field_size_limit(limit)
    return records


def parse(data: str, fmt: str) -> Parsed:
    """Validate every row; report each bad one with its line (CSV) or item (JSON)."""
    records = _json_records(data) if fmt == "json" else _csv_records(data)
    rows: list[Row] = []
    bad: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for line, rec in records:
        try:
            if isinstance(rec, ValueError):
                raise rec
            row = _row(line, rec)
        except ValueError as e:
            bad.append((line, str(e)))
            continue
        except RecursionError:  # a JSON value nested almost as deep as the parser allows
            bad.append((line, "a value is nested too deeply"))
            continue
        key = row.user_id or row.handle.lower()
        if key in seen:
            bad.append((line, f"the same contact as line {seen[key]}"))
            continue
        seen[key] = line
        rows.append(row)
    return Parsed(rows, bad)


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    opted_out: list[str] = field(default_factory=list)  # handles given an opt-out
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "opted_out": self.opted_out,
                "skipped": [{"line": n, "reason": r} for n, r in self.skipped]}


def _opt_out(conn: Conn, c: Any, at: str, now: str, res: ImportResult) -> None:
    stamp = min(at, now) if at else now  # a date in the future is no opt-out yet: now
    cstore.set_opted_out(conn, c, stamp, None)
    cstore.audit(conn, "opted_out", now=now, contact=c, codes=["E_OPTED_OUT"], by="import")
    res.opted_out.append(c.handle)


def apply(conn: Conn, rows: list[Row], now: str) -> ImportResult:
    """Create or update contacts. Call inside a transaction."""
    res = ImportResult()
    for row in rows:
        c = cstore.find_by_user_id(conn, row.user_id) if row.user_id else None
        if c is None:
            c = cstore.find(conn, row.handle)
            if c is not None and row.user_id and c.user_id and c.user_id != row.user_id:
                c = None  # same handle, another person: the handle moved on
        if c is None:
            c = cstore.create(conn, row.handle, now=now, user_id=row.user_id, name=row.name)
            cstore.add_tags(conn, c.id, row.tags)
            for n in row.notes:
                cstore.add_note(conn, c.id, n.text, now=n.at or now, author=n.author)
            if row.opted_out_at is not None and not c.opted_out_at:
                _opt_out(conn, c, row.opted_out_at, now, res)
            res.created += 1
            continue
        changed = False
        if row.name and row.name != c.name:
            cstore.update_name(conn, c, row.name, now=now)
            changed = True
        if row.user_id and not c.user_id:
            c = cstore.set_user_id(conn, c, row.user_id, now=now)
            changed = True
        changed |= cstore.add_tags(conn, c.id, row.tags) > 0
        for n in row.notes:
            if not cstore.has_note(conn, c.id, n.text):
                cstore.add_note(conn, c.id, n.text, now=n.at or now, author=n.author)
                changed = True
        if row.opted_out_at is not None and not c.opted_out_at:  # added, never removed
            _opt_out(conn, c, row.opted_out_at, now, res)
            changed = True
        if changed:
            res.updated += 1
        else:
            res.unchanged += 1
    return res


# --- export ----------------------------------------------------------------------------


def export_records(conn: Conn, settings: PolicySettings,
                   now: datetime) -> list[dict[str, Any]]:
    """Every contact as a CRM wants it: the contact object of `contacts list`
    (consent status, last contact in and out), the opt-out date, and the notes
    as {"at", "author", "text"} objects, oldest first."""
    from dmtool.services.consent import listing

    notes = cstore.all_notes(conn)
    out = []
    for r, standing in listing(conn, settings, now):
        row = dict(zip(cstore.LISTED, r, strict=False))
        out.append({"handle": row["handle"], "user_id": row["user_id"], "name": row["name"],
                    "tags": cstore.tags_from(row["tag_list"]), "status": standing.status,
                    "can_dm": standing.allowed,
                    "opted_out_at": row["opted_out_at"],
                    "last_inbound_at": row["last_inbound_at"],
                    "last_outbound_at": row["last_outbound_at"],
                    "notes": notes.get(row["id"], [])})
    return out


def to_csv(records: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=EXPORT_FIELDS, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in records:
        w.writerow({**{k: "" if r[k] is None else r[k] for k in EXPORT_FIELDS},
                    "tags": ";".join(r["tags"]),
                    "notes": notes_to_cell(r["notes"])})
    return buf.getvalue()
