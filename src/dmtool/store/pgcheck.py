"""`db check` on PostgreSQL: the schema version, every table, view, index and
trigger the migrations create, and constraints, indexes and triggers in force.

The server keeps its own pages consistent (there is no integrity_check to
run without superuser extensions); what can go wrong for dmtool is a schema
someone changed by hand, a constraint added NOT VALID, a trigger disabled.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from dmtool.store.migrations import MIGRATIONS, Migration

if TYPE_CHECKING:
    from dmtool.store.pg import PgStore

_OBJECTS = re.compile(r"\b(CREATE|DROP)\s+(?:UNIQUE\s+)?(TEMP\s+|TEMPORARY\s+)?"
                      r"(TABLE|INDEX|VIEW|TRIGGER)\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?(\w+)"
                      r"(?:\s+ON\s+(\w+))?", re.I)


def expected_objects() -> set[tuple[str, str]]:
    """(kind, name) of what the migrations leave behind on PostgreSQL."""
    from dmtool.store.pgsql import translate

    have: set[tuple[str, str]] = {("table", "dmtool_schema")}
    on: dict[str, str] = {}  # index -> its table
    temp: set[str] = set()  # a migration's scratch tables (and their indexes): gone at its end
    for step in MIGRATIONS:
        text = step.postgres if isinstance(step, Migration) else translate(step).sql
        for m in _OBJECTS.finditer(text):
            verb, scratch, kind, name, table = (m.group(1).upper(), m.group(2),
                                                m.group(3).lower(), m.group(4), m.group(5))
            if verb == "DROP":
                have.discard((kind, name))
                if kind == "table":  # its indexes go with it
                    have -= {("index", i) for i, t in on.items() if t == name}
            elif scratch or (kind == "index" and table in temp):
                temp.add(name)
            else:
                have.add((kind, name))
                if kind == "index" and table:
                    on[name] = table
    return have


def present_objects(store: PgStore) -> set[tuple[str, str]]:
    q = store.conn.execute
    out = {("table", r[0]) for r in q(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
    out |= {("view", r[0]) for r in q(
        "SELECT viewname FROM pg_views WHERE schemaname = current_schema()")}
    out |= {("index", r[0]) for r in q(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")}
    out |= {("trigger", r[0]) for r in q(
        "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace")}
    return out


def problems(store: PgStore) -> list[str]:
    out: list[str] = []
    version = store.schema_version()
    if version != len(MIGRATIONS):
        out.append(f"schema version {version}, expected {len(MIGRATIONS)}")
    present = present_objects(store)
    # Indexes behind constraints (primary keys, UNIQUE) have names of the server's choosing.
    wanted = expected_objects()
    out += [f"missing {kind}: {name}" for kind, name in sorted(wanted - present)]
    q = store.conn.execute
    out += [f"constraint not validated: {r[0]} on {r[1]}" for r in q(
        "SELECT con.conname, c.relname FROM pg_constraint con JOIN pg_class c "
        "ON c.oid = con.conrelid WHERE c.relnamespace = current_schema()::regnamespace "
        "AND NOT con.convalidated ORDER BY 1")]
    out += [f"index not valid: {r[0]}" for r in q(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relnamespace = current_schema()::regnamespace AND NOT (i.indisvalid "
        "AND i.indisready) ORDER BY 1")]
    out += [f"trigger disabled: {r[0]}" for r in q(
        "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE c.relnamespace = current_schema()::regnamespace AND t.tgenabled = 'D' "
        "ORDER BY 1")]
    return out
