"""The migrations give both engines the same schema: tables, columns (type,
NOT NULL, default, key), indexes (columns, unique, partial), constraints
(keys, unique, foreign keys with their ON DELETE, checks), views and triggers,
after every migration. The one difference by design: SQLite's search index
(migration 7's SEARCH_INDEX: FTS5 tables and their triggers); PostgreSQL
searches by scanning."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from dmtool.store import open_store
from dmtool.store.migrations import MIGRATIONS, SEARCH_INDEX

pytestmark = pytest.mark.pg_only


def _norm(expr: str | None) -> str:
    """An expression or default, spelled alike: no casts, parentheses, case or spaces."""
    if expr is None:
        return ""
    e = re.sub(r"::[a-z ]+(\[\])?", "", expr.lower())
    e = re.sub(r"(\w+) collate nocase", r"lower(\1)", e)
    e = e.replace('collate "c"', "")
    return re.sub(r"[()\s]", "", e)


def _type(t: str) -> str:
    t = t.lower()
    return "integer" if "int" in t else "text" if "text" in t or "char" in t else t


SEARCH_TABLES = set(re.findall(r"CREATE VIRTUAL TABLE (\w+)", SEARCH_INDEX))
SEARCH_TRIGGERS = set(re.findall(r"CREATE TRIGGER (\w+)", SEARCH_INDEX))


def in_search_index(table: str) -> bool:
    """An FTS5 table of the search index, or one of its shadow tables."""
    return any(table == t or table.startswith(t + "_") for t in SEARCH_TABLES)


def sqlite_schema(path: Path, version: int | None = None) -> dict[str, Any]:
    """The schema, the search index aside (its tables in "search", triggers in "search_triggers")."""
    store = open_store(path, migrate_to=version)
    q = store.conn.execute
    names = [r[0] for r in q("SELECT name FROM sqlite_master WHERE type = 'table' "
                             "AND name NOT LIKE 'sqlite_%'")]
    tables = [t for t in names if not in_search_index(t)]
    out: dict[str, Any] = {"tables": {}, "indexes": {}, "views": set(), "triggers": set(),
                           "search": {t for t in names if t in SEARCH_TABLES}}
    for t in tables:
        cols = {r[1]: (_type(r[2]), bool(r[3]) or bool(r[5]), _norm(r[4]))
                for r in q(f"PRAGMA table_info({t})")}
        pk = tuple(r[1] for r in sorted(q(f"PRAGMA table_info({t})"), key=lambda r: r[5]) if r[5])
        fks = {(r[2], r[3], r[4], r[6].lower()) for r in q(f"PRAGMA foreign_key_list({t})")}
        uniques = set()
        for idx in q(f"PRAGMA index_list({t})"):
            cols_of = tuple(r[2] for r in q(f"PRAGMA index_info({idx[1]})"))
            if idx[3] == "u":  # a UNIQUE constraint's own index
                uniques.add(cols_of)
        sql = q("SELECT sql FROM sqlite_master WHERE name = ?", (t,)).fetchone()[0]
        checks = len(re.findall(r"\bCHECK\s*\(", sql, re.I))
        out["tables"][t] = {"columns": cols, "pk": pk, "fks": fks, "unique": uniques,
                            "checks": checks}
    for name, sql in q("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"):
        m = re.match(r"CREATE (UNIQUE )?INDEX \w+ ON (\w+) \((.*?)\)\s*(?:WHERE (.*))?$",
                     " ".join(sql.split()), re.I)
        assert m, sql
        out["indexes"][name] = (m[2], bool(m[1]), _norm(m[3]), _norm(m[4]))
    out["views"] = {r[0] for r in q("SELECT name FROM sqlite_master WHERE type = 'view'")}
    triggers = {r[0] for r in q("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    out["triggers"] = triggers - SEARCH_TRIGGERS
    out["search_triggers"] = triggers & SEARCH_TRIGGERS
    store.close()
    return out


def pg_schema(url: str, version: int | None = None) -> dict[str, Any]:
    store = open_store(url, migrate_to=version)
    q = store.conn.execute
    ns = "current_schema()::regnamespace"
    tables = [r[0] for r in q("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                              "AND tablename != 'dmtool_schema'")]
    out: dict[str, Any] = {"tables": {}, "indexes": {}, "views": set(), "triggers": set()}
    for t in tables:
        pk_cols = [r[0] for r in q(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indisprimary AND i.indrelid = ?::regclass "
            "ORDER BY array_position(i.indkey, a.attnum)", (t,))]
        cols = {r[0]: (_type(r[1]), r[2] == "NO" or r[0] in pk_cols,
                       "" if r[4] else _norm(r[3]))
                for r in q("SELECT column_name, data_type, is_nullable, column_default, "
                           "is_identity = 'YES' FROM information_schema.columns "
                           "WHERE table_schema = current_schema() AND table_name = ?", (t,))}
        fks = set()
        uniques = set()
        checks = 0
        for kind, cols_of, ref, ref_cols, on_delete in q(
                "SELECT con.contype, (SELECT array_agg(a.attname ORDER BY k.n) FROM "
                "unnest(con.conkey) WITH ORDINALITY k(attnum, n) JOIN pg_attribute a ON "
                "a.attrelid = con.conrelid AND a.attnum = k.attnum), con.confrelid::regclass::text, "
                "(SELECT array_agg(a.attname ORDER BY k.n) FROM unnest(con.confkey) WITH "
                "ORDINALITY k(attnum, n) JOIN pg_attribute a ON a.attrelid = con.confrelid "
                "AND a.attnum = k.attnum), con.confdeltype FROM pg_constraint con "
                "WHERE con.conrelid = ?::regclass", (t,)):
            if kind == "f":
                action = {"c": "cascade", "a": "no action", "n": "set null", "r": "restrict",
                          "d": "set default"}[on_delete]
                fks.add((ref, cols_of[0], ref_cols[0], action))
            elif kind == "u":
                uniques.add(tuple(cols_of))
            elif kind == "c":
                checks += 1
        out["tables"][t] = {"columns": cols, "pk": tuple(pk_cols), "fks": fks, "unique": uniques,
                            "checks": checks}
    for name, table, unique, exprs, pred in q(
            f"SELECT c.relname, t.relname, i.indisunique, pg_get_indexdef(i.indexrelid), "
            f"pg_get_expr(i.indpred, i.indrelid) FROM pg_index i JOIN pg_class c ON "
            f"c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid WHERE "
            f"c.relnamespace = {ns} AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE "
            f"con.conindid = i.indexrelid)"):
        if table == "dmtool_schema":
            continue
        cols = re.search(r"USING btree \((.*?)\)(?: WHERE|$)", exprs)
        assert cols, exprs
        out["indexes"][name] = (table, bool(unique), _norm(cols[1]), _norm(pred))
    out["views"] = {r[0] for r in q("SELECT viewname FROM pg_views WHERE schemaname = "
                                    "current_schema()")}
    out["triggers"] = {r[0] for r in q(
        f"SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        f"WHERE NOT t.tgisinternal AND c.relnamespace = {ns}")}
    store.close()
    return out


def assert_same_schema(lite: dict[str, Any], pg: dict[str, Any], version: int) -> None:
    assert sorted(lite["tables"]) == sorted(pg["tables"]), version
    for t in lite["tables"]:
        assert lite["tables"][t] == pg["tables"][t], (version, t)
    assert lite["indexes"] == pg["indexes"], version
    assert lite["views"] == pg["views"], version
    assert lite["triggers"] == pg["triggers"], version


def test_both_engines_end_with_the_same_schema(pg_url: str, tmp_path: Path) -> None:
    lite, pg = sqlite_schema(tmp_path / "s.db"), pg_schema(pg_url)
    assert_same_schema(lite, pg, len(MIGRATIONS))
    assert lite["views"] == {"contact_tails"}
    # Only SQLite has the search index (where its SQLite has FTS5's trigram tokenizer).
    assert lite["search"] == SEARCH_TABLES and lite["search_triggers"] == SEARCH_TRIGGERS
    assert not any(in_search_index(t) for t in pg["tables"])


def test_both_engines_have_the_same_schema_after_every_migration(pg_url: str,
                                                                 tmp_path: Path) -> None:
    from tests.conftest import schema_url

    for version in range(1, len(MIGRATIONS)):
        assert_same_schema(sqlite_schema(tmp_path / f"v{version}.db", version),
                           pg_schema(schema_url(f"at{version}"), version), version)


def test_each_step_upgrades_a_store_of_the_version_before(pg_url: str) -> None:
    """Every migration applies on PostgreSQL to a store left at the one before."""
    from tests.conftest import schema_url

    for version in range(len(MIGRATIONS)):
        store = open_store(schema_url(f"v{version}"), migrate_to=version)
        assert store.schema_version() == version
        store.close()
        store = open_store(schema_url(f"v{version}"))
        assert store.schema_version() == len(MIGRATIONS) and store.problems() == []
        store.close()
