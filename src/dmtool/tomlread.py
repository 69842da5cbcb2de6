"""The config files dmtool writes, read without tomllib.

Every command reads config.toml, and tomllib costs a local command a tenth of
its start-up: importing it compiles its regular expressions, and its parser
is general. The files `config set` writes (tomli-w's output) and most hand
edits use a small part of TOML: `[table]` and `[table.sub]` headers, `key =`
with a bare key, and values that are strings, whole numbers, decimal numbers,
true/false, or arrays of those, one or several lines long, with comments.

`loads` reads that part and answers None for anything else, valid or not
(dotted or quoted keys, inline tables, dates, escapes beyond the simple ones,
a duplicate key...): the caller then asks tomllib, which reads the rest and
says what is wrong. So whatever `loads` answers is what tomllib answers
(tests/test_tomlread.py compares them on generated documents).
"""

from __future__ import annotations

from typing import Any

_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
# TOML refuses control characters but the tab everywhere (and the line feed
# outside strings); a carriage return is left to tomllib too.
_CONTROL = frozenset([*map(chr, range(0x09)), *map(chr, range(0x0B, 0x20)), "\x7f"])
_DIGITS = frozenset("0123456789")
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "b": "\b", "f": "\f", "r": "\r"}
_END = " \t\n#,]"  # what may follow a value


class _Outside(Exception):
    """Not in the part of TOML read here."""


def loads(text: str) -> dict[str, Any] | None:
    """The document as tomllib.loads gives it, or None when it is not in the
    small part of TOML this reads (then ask tomllib)."""
    if not _CONTROL.isdisjoint(text):
        return None
    try:
        return _Reader(text).document()
    except _Outside:
        return None


class _Reader:
    def __init__(self, text: str) -> None:
        self.text, self.pos, self.end = text, 0, len(text)

    def document(self) -> dict[str, Any]:
        root: dict[str, Any] = {}
        table = root
        defined: set[tuple[str, ...]] = set()
        while self.pos < self.end:
            self.blank()
            if self.pos >= self.end:
                break
            ch = self.text[self.pos]
            if ch == "\n":
                self.pos += 1
                continue
            if ch == "#":
                self.comment()
                continue
            if ch == "[":
                path = self.header()
                if path in defined:
                    raise _Outside  # a table defined twice: tomllib says so
                defined.add(path)
                table = root
                for part in path:
                    table = table.setdefault(part, {})
                    if not isinstance(table, dict):
                        raise _Outside
            else:
                key = self.key()
                if key in table:
                    raise _Outside  # a key set twice
                table[key] = self.value()
            self.line_end()
        return root

    # --- pieces -----------------------------------------------------------------------

    def blank(self) -> None:
        """Spaces and tabs (TOML's whitespace)."""
        while self.pos < self.end and self.text[self.pos] in " \t":
            self.pos += 1

    def comment(self) -> None:
        stop = self.text.find("\n", self.pos)
        self.pos = self.end if stop < 0 else stop

    def line_end(self) -> None:
        """Nothing but a comment before the end of the line."""
        self.blank()
        if self.pos < self.end and self.text[self.pos] == "#":
            self.comment()
        if self.pos < self.end:
            if self.text[self.pos] != "\n":
                raise _Outside
            self.pos += 1

    def header(self) -> tuple[str, ...]:
        if self.text.startswith("[[", self.pos):
            raise _Outside  # arrays of tables
        stop = self.text.find("]", self.pos)
        newline = self.text.find("\n", self.pos)
        if stop < 0 or 0 <= newline < stop:
            raise _Outside
        parts = tuple(p.strip(" \t") for p in self.text[self.pos + 1:stop].split("."))
        if not all(p and _BARE.issuperset(p) for p in parts):
            raise _Outside
        self.pos = stop + 1
        return parts

    def key(self) -> str:
        stop = self.text.find("=", self.pos)
        newline = self.text.find("\n", self.pos)
        if stop < 0 or 0 <= newline < stop:
            raise _Outside
        key = self.text[self.pos:stop].strip(" \t")
        if not key or not _BARE.issuperset(key):
            raise _Outside  # quoted and dotted keys
        self.pos = stop + 1
        self.blank()
        return key

    def value(self) -> Any:
        if self.pos >= self.end:
            raise _Outside
        ch = self.text[self.pos]
        if ch == '"':
            return self.basic_string()
        if ch == "'":
            return self.literal_string()
        if ch == "[":
            return self.array()
        stop = self.pos
        while stop < self.end and self.text[stop] not in _END:
            stop += 1
        token, self.pos = self.text[self.pos:stop], stop
        if token == "true":
            return True
        if token == "false":
            return False
        return _number(token)

    def basic_string(self) -> str:
        if self.text.startswith('"""', self.pos):
            raise _Outside
        out: list[str] = []
        pos = self.pos + 1
        while True:
            stop = min((i for i in (self.text.find('"', pos), self.text.find("\\", pos),
                                    self.text.find("\n", pos)) if i >= 0), default=-1)
            if stop < 0 or self.text[stop] == "\n":
                raise _Outside  # not closed on its line
            out.append(self.text[pos:stop])
            if self.text[stop] == '"':
                self.pos = stop + 1
                return "".join(out)
            escaped = _ESCAPES.get(self.text[stop + 1:stop + 2])
            if escaped is None:
                raise _Outside  # \u, \U and anything tomllib may refuse
            out.append(escaped)
            pos = stop + 2

    def literal_string(self) -> str:
        if self.text.startswith("'''", self.pos):
            raise _Outside
        stop = self.text.find("'", self.pos + 1)
        newline = self.text.find("\n", self.pos)
        if stop < 0 or 0 <= newline < stop:
            raise _Outside
        value = self.text[self.pos + 1:stop]
        self.pos = stop + 1
        return value

    def array(self) -> list[Any]:
        self.pos += 1
        items: list[Any] = []
        while True:
            self.space()
            if self.pos >= self.end:
                raise _Outside
            if self.text[self.pos] == "]":
                self.pos += 1
                return items
            if self.text[self.pos] == "[":
                raise _Outside  # arrays in arrays
            items.append(self.value())
            self.space()
            if self.pos < self.end and self.text[self.pos] == ",":
                self.pos += 1
            elif not (self.pos < self.end and self.text[self.pos] == "]"):
                raise _Outside

    def space(self) -> None:
        """Inside an array: whitespace, line feeds and comments."""
        while self.pos < self.end:
            ch = self.text[self.pos]
            if ch in " \t\n":
                self.pos += 1
            elif ch == "#":
                self.comment()
            else:
                return


def _number(token: str) -> int | float:
    """A decimal integer or float as TOML writes it (no underscores, no
    special values: tomllib reads those)."""
    body = token[1:] if token[:1] in ("+", "-") else token
    mantissa, e, exponent = body.replace("E", "e").partition("e")
    whole, dot, fraction = mantissa.partition(".")
    if not whole or not _DIGITS.issuperset(whole) or (len(whole) > 1 and whole[0] == "0"):
        raise _Outside
    if dot and (not fraction or not _DIGITS.issuperset(fraction)):
        raise _Outside
    if e:
        digits = exponent[1:] if exponent[:1] in ("+", "-") else exponent
        if not digits or not _DIGITS.issuperset(digits):
            raise _Outside
    return float(token) if dot or e else int(token)
