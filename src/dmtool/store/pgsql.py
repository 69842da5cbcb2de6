"""SQLite's SQL, as store/ writes it, in PostgreSQL's words.

The store's statements are written once, in SQLite's dialect, and most of
them are also PostgreSQL: the few idioms that differ are rewritten here, at
the token level (never inside a string literal), once per statement text.
What cannot be rewritten safely is refused with a message that says which
idiom to change, so a new query fails loudly in the PostgreSQL tests instead
of meaning something else.

SQLite -> PostgreSQL:
- `?`, `?NNN`, `:name` -> `%s`, `%(pNNN)s`, `%(name)s` (psycopg2's style; `%` doubled)
- `INSERT OR IGNORE INTO t ...` -> `INSERT INTO t ... ON CONFLICT DO NOTHING`
- `a = b COLLATE NOCASE`, `ORDER BY a COLLATE NOCASE` -> `lower(a) = lower(b)`,
  `ORDER BY lower(a)`: text columns are `COLLATE "C"` on PostgreSQL, where
  lower() folds ASCII only, as NOCASE does, and text sorts by code point
- `rowid` -> `id` (every table dmtool reads rowid from has an `id` key)
- `INDEXED BY name`, `NOT INDEXED` -> dropped (PostgreSQL plans alone)
- `CROSS JOIN t [x] [INDEXED BY i] ON ...` (SQLite's join-order hint) -> `JOIN t [x] ON ...`
- `max(a, b)`, `min(a, b)` (scalar) -> `GREATEST(a, b)`, `LEAST(a, b)`
- `group_concat(x, sep)` -> `string_agg((x)::text, sep)`
- `char(n)`, `ifnull(a, b)`, `instr(a, b)` -> `chr(n)`, `COALESCE(a, b)`, `strpos(a, b)`
- `x IS ?`, `x IS NOT 'in'` -> `x IS NOT DISTINCT FROM %s`, `x IS DISTINCT FROM 'in'`
  (a parameter, a literal or a column on the right)
- `CASE WHEN ?` -> `CASE WHEN (%s)::int::boolean` (booleans are bound as 0/1)
- `LIKE` -> `ILIKE` (SQLite's LIKE ignores ASCII case)
- `FROM (SELECT ...)` without a name -> `... AS _sN` (PostgreSQL < 16 needs one)
- in `CREATE TABLE` / `ALTER TABLE ... ADD COLUMN`: `INTEGER PRIMARY KEY` ->
  an identity `BIGINT`; `INTEGER`, `TEXT`, `REAL`, `BLOB` -> `BIGINT`,
  `TEXT COLLATE "C"`, `DOUBLE PRECISION`, `BYTEA`; `WITHOUT ROWID` dropped

Statements that need their own PostgreSQL text (triggers, FTS, PRAGMAs,
`INSERT OR REPLACE`, `UPDATE OR IGNORE`, GLOB) raise Untranslatable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_TOKEN = re.compile(
    r"""
    (?P<str>'(?:[^']|'')*')
  | (?P<qid>"(?:[^"]|"")*")
  | (?P<comment>--[^\n]*|/\*.*?\*/)
  | (?P<ws>\s+)
  | (?P<param>\?\d*|(?<!:):[A-Za-z_]\w*)
  | (?P<op><=|>=|<>|!=|==|\|\||::)
  | (?P<word>[A-Za-z_][\w$]*)
  | (?P<num>\d+(?:\.\d*)?)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)

_COMPARE = {"=", "==", "!=", "<>", "<", "<=", ">", ">="}
# After a derived table's closing parenthesis, these mean it has no name.
_NOT_ALIAS = {"where", "order", "group", "limit", "union", "join", "left", "right", "inner",
              "cross", "full", "on", "having", "except", "intersect", "offset", "window",
              "natural", "using"}
_UNSUPPORTED = {
    "pragma": "PRAGMA is SQLite's own: ask the engine object instead",
    "glob": "GLOB has no PostgreSQL equivalent: use LIKE",
    "sqlite_master": "sqlite_master is SQLite's catalog: ask the engine object instead",
    "attach": "ATTACH is SQLite's own",
    "vacuum": "VACUUM is SQLite's own",
    "json_extract": "json_extract is SQLite's: keep JSON decoding in Python",
    "printf": "printf is SQLite's: format in Python",
    "typeof": "typeof is SQLite's",
}
_RENAMES = {"ifnull": "COALESCE", "instr": "strpos", "char": "chr"}
_DDL_TYPES = {"integer": "BIGINT", "int": "BIGINT", "text": 'TEXT COLLATE "C"',
              "real": "DOUBLE PRECISION", "blob": "BYTEA"}


class Untranslatable(Exception):
    """A statement uses an idiom this module does not turn into PostgreSQL."""


@dataclass(frozen=True)
class Translated:
    sql: str
    named: bool  # parameters by name (a mapping), or by position
    numbered: bool  # ?NNN: a sequence handed over as {"pNNN": value}


@dataclass
class _Tok:
    kind: str
    text: str
    pre: str = ""  # added around the token, which keeps its kind and text
    post: str = ""

    @property
    def low(self) -> str:
        return self.text.lower()


def _tokens(sql: str) -> list[_Tok]:
    out = []
    for m in _TOKEN.finditer(sql):
        kind = m.lastgroup or "other"
        out.append(_Tok(kind, m.group()))
    return out


class _Rewriter:
    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.toks = _tokens(sql)
        self.aliases = 0

    # --- helpers over significant tokens ----------------------------------------

    def sig(self) -> list[int]:
        return [i for i, t in enumerate(self.toks) if t.kind not in ("ws", "comment")]

    def fail(self, why: str) -> Untranslatable:
        short = " ".join(self.sql.split())
        return Untranslatable(f"{why}, in: {short[:200]}")

    def operand_start(self, sig: list[int], k: int) -> int:
        """Index (into sig) where the simple operand ending at sig[k] starts:
        a parameter, a literal, or a dotted name. Raises on anything else."""
        t = self.toks[sig[k]]
        if t.kind in ("param", "str", "num"):
            return k
        if t.kind in ("word", "qid"):
            while k >= 2 and self.toks[sig[k - 1]].text == "." and \
                    self.toks[sig[k - 2]].kind in ("word", "qid"):
                k -= 2
            return k
        raise self.fail("COLLATE NOCASE after an expression (use it after a column or a parameter)")

    def wrap(self, sig: list[int], a: int, b: int, before: str, after: str) -> None:
        self.toks[sig[a]].pre = before + self.toks[sig[a]].pre
        self.toks[sig[b]].post += after

    def matching(self, sig: list[int], k: int) -> int:
        """sig index of the parenthesis closing the one at sig[k]."""
        depth = 0
        for j in range(k, len(sig)):
            text = self.toks[sig[j]].text
            if text == "(":
                depth += 1
            elif text == ")":
                depth -= 1
                if depth == 0:
                    return j
        raise self.fail("unbalanced parentheses")

    def top_level_commas(self, sig: list[int], open_k: int, close_k: int) -> list[int]:
        depth, out = 0, []
        for j in range(open_k + 1, close_k):
            text = self.toks[sig[j]].text
            if text == "(":
                depth += 1
            elif text == ")":
                depth -= 1
            elif text == "," and depth == 0:
                out.append(j)
        return out

    # --- the rewrites --------------------------------------------------------------

    def run(self) -> Translated:
        sig = self.sig()
        words = [self.toks[i].low for i in sig if self.toks[i].kind == "word"]
        for w in words:
            if w in _UNSUPPORTED:
                raise self.fail(_UNSUPPORTED[w])
        first = words[:3]
        if first[:2] == ["create", "trigger"] or first[:3] == ["create", "temp", "trigger"]:
            raise self.fail("a trigger needs its own PostgreSQL text (a Migration)")
        if first[:2] == ["create", "virtual"]:
            raise self.fail("a virtual table (FTS) needs its own PostgreSQL text (a Migration)")
        if first[:2] in (["insert", "or"], ["update", "or"]) or first[:1] == ["replace"]:
            if first[:3] != ["insert", "or", "ignore"]:
                raise self.fail(f"{' '.join(first).upper()} has no PostgreSQL equivalent: use "
                                "INSERT ... ON CONFLICT (...) DO UPDATE, or a guarded UPDATE")
            self.insert_or_ignore(sig)
            sig = self.sig()
        if first[:2] == ["create", "table"] or first[:2] == ["alter", "table"]:
            self.ddl_types(sig)
        self.nocase(sig)
        sig = self.sig()
        self.functions_and_words(sig)
        sig = self.sig()
        self.derived_table_names(sig)
        return self.params()

    def insert_or_ignore(self, sig: list[int]) -> None:
        # INSERT OR IGNORE -> INSERT, and ON CONFLICT DO NOTHING before RETURNING / the end.
        self.toks[sig[1]].text = ""
        self.toks[sig[2]].text = ""
        end = len(sig)
        for k in range(len(sig)):
            if self.toks[sig[k]].low == "returning":
                end = k
                break
        while end > 0 and self.toks[sig[end - 1]].text == ";":
            end -= 1
        self.toks[sig[end - 1]].post += " ON CONFLICT DO NOTHING"

    def ddl_types(self, sig: list[int]) -> None:
        depth = 0
        for k, i in enumerate(sig):
            t = self.toks[i]
            if t.text == "(":
                depth += 1
            elif t.text == ")":
                depth -= 1
            if t.kind != "word":
                continue
            low = t.low
            prev = self.toks[sig[k - 1]].low if k else ""
            nxt = self.toks[sig[k + 1]].low if k + 1 < len(sig) else ""
            if low == "without" and nxt == "rowid":
                t.text = ""
                self.toks[sig[k + 1]].text = ""
            elif low == "autoincrement":
                t.text = ""
            elif low in _DDL_TYPES and prev not in ("on", "references", "table") and \
                    self.toks[sig[k - 1]].kind in ("word", "qid"):
                # a column's type follows its name: "name TEXT", "ADD COLUMN name TEXT"
                if low in ("integer", "int") and nxt == "primary":
                    t.text = "BIGINT GENERATED BY DEFAULT AS IDENTITY"
                else:
                    t.text = _DDL_TYPES[low]

    def nocase(self, sig: list[int]) -> None:
        k = 0
        while k < len(sig):
            t = self.toks[sig[k]]
            if t.low == "collate" and k + 1 < len(sig) and self.toks[sig[k + 1]].low == "nocase":
                start = self.operand_start(sig, k - 1)
                self.wrap(sig, start, k - 1, "lower(", ")")
                t.text = ""
                self.toks[sig[k + 1]].text = ""
                if start >= 2 and self.toks[sig[start - 1]].text in _COMPARE:
                    left_end = start - 2
                    left = self.operand_start(sig, left_end)
                    if not self.toks[sig[left]].pre.startswith("lower("):
                        self.wrap(sig, left, left_end, "lower(", ")")
                # drop the whitespace before the removed words
                for j in range(sig[k - 1] + 1, sig[k + 1] + 1):
                    if self.toks[j].kind == "ws":
                        self.toks[j].text = ""
                k += 2
                continue
            k += 1

    def functions_and_words(self, sig: list[int]) -> None:
        for k, i in enumerate(sig):
            t = self.toks[i]
            if t.kind != "word":
                continue
            low = t.low
            nxt = self.toks[sig[k + 1]] if k + 1 < len(sig) else None
            if low == "rowid":
                t.text = "id"
            elif low == "indexed" and nxt is not None and nxt.low == "by":
                t.text = ""
                nxt.text = ""
                self.toks[sig[k + 2]].text = ""
            elif low == "not" and nxt is not None and nxt.low == "indexed":
                t.text = ""
                nxt.text = ""
            elif low == "cross" and nxt is not None and nxt.low == "join":
                # CROSS JOIN t [AS] [x] [INDEXED BY i] ON ...: SQLite's planner hint for
                # an inner join. A real cross join has no ON: it stays.
                j = k + 2
                while j < len(sig) and j <= k + 8 and self.toks[sig[j]].low != "on" and (
                        self.toks[sig[j]].kind in ("word", "qid") or self.toks[sig[j]].text == "."):
                    j += 1
                if j < len(sig) and self.toks[sig[j]].low == "on":
                    t.text = ""
            elif low == "like":
                t.text = "ILIKE"
            elif low == "is" and nxt is not None:
                target = nxt
                negate = False
                if nxt.low == "not" and k + 2 < len(sig):
                    target = self.toks[sig[k + 2]]
                    negate = True
                if target.kind in ("param", "str", "num") or (target.kind == "word" and target.low
                                                               not in ("null", "true", "false",
                                                                       "distinct", "not", "unknown")):
                    t.text = "IS DISTINCT FROM" if negate else "IS NOT DISTINCT FROM"
                    if negate:
                        nxt.text = ""
            elif low == "when" and nxt is not None and nxt.kind == "param":
                nxt.pre, nxt.post = "(", ")::int::boolean"
            elif nxt is not None and nxt.text == "(" and low in ("max", "min", "group_concat",
                                                                    *_RENAMES):
                close = self.matching(sig, k + 1)
                commas = self.top_level_commas(sig, k + 1, close)
                if low in ("max", "min") and commas:
                    t.text = "GREATEST" if low == "max" else "LEAST"
                elif low == "group_concat":
                    t.text = "string_agg"
                    first_end = commas[0] if commas else close
                    self.toks[sig[k + 1]].text = "(("
                    self.toks[sig[first_end]].text = ")::text" + (
                        "," if commas else ", ',')")
                    if len(commas) > 1:
                        raise self.fail("group_concat takes at most two arguments")
                elif low in _RENAMES:
                    if low == "char" and commas:
                        raise self.fail("char() with several arguments: use one chr() each")
                    t.text = _RENAMES[low]

    def derived_table_names(self, sig: list[int]) -> None:
        for k, i in enumerate(sig):
            if self.toks[i].text != "(" or k == 0:
                continue
            if self.toks[sig[k - 1]].low not in ("from", "join"):
                continue
            if k + 1 >= len(sig) or self.toks[sig[k + 1]].low not in ("select", "with", "values"):
                continue
            close = self.matching(sig, k)
            nxt = self.toks[sig[close + 1]] if close + 1 < len(sig) else None
            if nxt is None or nxt.text in (")", ",", ";") or nxt.low in _NOT_ALIAS:
                self.aliases += 1
                self.toks[sig[close]].post += f" AS _s{self.aliases}"

    def params(self) -> Translated:
        named = numbered = positional = False
        for t in self.toks:
            if t.kind == "param":
                if t.text == "?":
                    positional = True
                    t.text = "%s"
                elif t.text.startswith("?"):
                    numbered = True
                    t.text = f"%(p{t.text[1:]})s"
                else:
                    named = True
                    t.text = f"%({t.text[1:]})s"
            elif "%" in t.text:  # psycopg2 reads % everywhere, comments and literals too
                t.text = t.text.replace("%", "%%")
        if sum((named, numbered, positional)) > 1:
            raise self.fail("parameters of more than one style in one statement")
        return Translated("".join(t.pre + t.text + t.post for t in self.toks), named, numbered)


@lru_cache(maxsize=2048)
def translate(sql: str) -> Translated:
    """The PostgreSQL form of one SQLite statement (cached per text)."""
    return _Rewriter(sql).run()
