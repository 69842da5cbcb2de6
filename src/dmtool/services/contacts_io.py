"""Contact import and export (CSV and JSON). Parsing is pure; applying is one
transaction, so a refused file changes nothing. An import never records consent."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

from dmtool.errors import InputError
from dmtool.models import clean_handle
from dmtool.store import contacts as cstore
from dmtool.store.sql import Conn

FIELDS = ["handle", "user_id", "name", "tags", "notes"]
_USER_ID = re.compile(r"^[0-9]{1,25}$")


@dataclass
class Row:
    line: int
    handle: str
    user_id: str | None = None
    name: str | None = None
    tags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Parsed:
    rows: list[Row]
    bad: list[tuple[int, str]]  # (line or item number, reason)


def _split_list(value: Any, sep: str) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [p for p in str(value).split(sep) if p.strip()]


def _row(line: int, rec: dict[str, Any], note_sep: str) -> Row:
    if not isinstance(rec, dict):
        raise ValueError("not an object with a handle")
    handle = rec.get("handle")
    if not handle or not str(handle).strip():
        raise ValueError("handle is missing")
    try:
        h = clean_handle(str(handle))
    except InputError as e:
        raise ValueError(e.message) from None
    uid = rec.get("user_id")
    uid = None if uid in (None, "") else str(uid).strip()
    if uid is not None and not _USER_ID.match(uid):
        raise ValueError(f"user_id must be X's numeric id, not {uid!r}")
    name = rec.get("name")
    name = None if name in (None, "") else str(name).strip()
    if name is not None and len(name) > 100:
        raise ValueError("name is longer than 100 characters")
    try:
        tags = [cstore.check_tag(t) for t in _split_list(rec.get("tags"), ";")]
    except InputError as e:
        raise ValueError(e.message) from None
    notes_value = rec.get("notes")
    if isinstance(notes_value, str) and notes_value.lstrip().startswith("["):
        # Export writes notes as a JSON list so notes with line breaks survive.
        try:
            notes_value = json.loads(notes_value)
        except json.JSONDecodeError:
            raise ValueError("notes start with '[' but are not a JSON list") from None
    if isinstance(notes_value, list):
        notes = [str(n.get("text") if isinstance(n, dict) else n) for n in notes_value]
    else:
        notes = _split_list(notes_value, note_sep)
    return Row(line, h, uid, name, tags, [n for n in notes if n.strip()])


def parse(data: str, fmt: str) -> Parsed:
    """Validate every row; report each bad one with its line (CSV) or item (JSON)."""
    rows: list[Row] = []
    bad: list[tuple[int, str]] = []
    records: list[tuple[int, Any]] = []
    if fmt == "json":
        try:
            doc = json.loads(data)
        except json.JSONDecodeError as e:
            raise InputError(f"not valid JSON: {e.msg} at line {e.lineno}") from None
        if isinstance(doc, dict) and isinstance(doc.get("contacts"), list):
            doc = doc["contacts"]
        if not isinstance(doc, list):
            raise InputError("a JSON import must be a list of contact objects")
        records = list(enumerate(doc, start=1))
        note_sep = "\n"
    else:
        reader = csv.DictReader(io.StringIO(data))
        if not reader.fieldnames or "handle" not in [f.strip() for f in reader.fieldnames]:
            raise InputError("a CSV import needs a header line with a 'handle' column",
                             hint=f"columns: {','.join(FIELDS)}")
        try:
            for rec in reader:
                records.append((reader.line_num, {(k or "").strip(): v for k, v in rec.items()}))
        except csv.Error as e:
            raise InputError(f"CSV error at line {reader.line_num}: {e}") from None
        note_sep = "\n"
    seen: dict[str, int] = {}
    for line, rec in records:
        try:
            row = _row(line, rec, note_sep)
        except ValueError as e:
            bad.append((line, str(e)))
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
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "skipped": [{"line": n, "reason": r} for n, r in self.skipped]}


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
                cstore.add_note(conn, c.id, n, now=now)
            res.created += 1
            continue
        changed = False
        if row.name and row.name != c.name:
            cstore.update_name(conn, c, row.name, now=now)
            changed = True
        if row.user_id and not c.user_id:
            cstore.set_user_id(conn, c, row.user_id, now=now)
            changed = True
        changed |= cstore.add_tags(conn, c.id, row.tags) > 0
        for n in row.notes:
            if not cstore.has_note(conn, c.id, n):
                cstore.add_note(conn, c.id, n, now=now)
                changed = True
        if changed:
            res.updated += 1
        else:
            res.unchanged += 1
    return res


def export_records(conn: Conn) -> list[dict[str, Any]]:
    out = []
    for row in cstore.summaries(conn):
        notes = [n["text"] for n in cstore.notes(conn, row["id"])]
        out.append({"handle": row["handle"], "user_id": row["user_id"], "name": row["name"],
                    "tags": cstore.tags_of(row),
                    "notes": notes})
    return out


def to_csv(records: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    w.writeheader()
    for r in records:
        w.writerow({"handle": r["handle"], "user_id": r["user_id"] or "", "name": r["name"] or "",
                    "tags": ";".join(r["tags"]),
                    "notes": json.dumps(r["notes"], ensure_ascii=False) if r["notes"] else ""})
    return buf.getvalue()
