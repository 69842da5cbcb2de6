"""dmtool.tomlread reads config files as tomllib does, or leaves them to it."""

from __future__ import annotations

import tomllib
from typing import Any

import tomli_w
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dmtool import config
from dmtool.tomlread import loads


def typed(value: Any) -> Any:
    """The value with every leaf's type: 1, 1.0 and True are equal in Python."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


def agrees(text: str) -> bool:
    """loads' answer is tomllib's; returns whether loads read it itself."""
    fast = loads(text)
    try:
        slow: Any = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        slow = None
    if fast is not None:
        assert slow is not None, text  # never accepts what tomllib refuses
        assert typed(fast) == typed(slow), text
    return fast is not None


# Pieces of TOML: mostly valid and in the part loads reads, some beyond it,
# some invalid; a document is valid as a whole often enough to compare values.
good_keys = st.sampled_from(["a", "b", "c", "names", "daily_sends", "x-y", "k_1", "1", "Text"])
bad_keys = st.sampled_from(["a.b", '"q"', "", "é", "a b", "'s'"])
keys = st.one_of(good_keys, good_keys, good_keys, bad_keys)
good_scalars = st.sampled_from([
    '"text"', '"Thanks – Sam"', '"say \\"hi\\""', '"back\\\\slash"', '"tab\\there"', '"a\\nb"',
    "'literal'", "''", '""', "'x \\ y'", "1", "-5", "+3", "0", "-0", "1.5", "-0.0", "1e5",
    "1E+05", "2e-3", "6.02e23", "true", "false"])
other_scalars = st.sampled_from([
    '"\\u00e9"', '"bad \\x"', "'it''s'", '"""multi"""', '"open', "00", "012", "1_000", "0x1F",
    "1.", ".5", "1e", "inf", "nan", "True", "1979-05-27", "{ a = 1 }", "", "# nothing"])
scalars = st.one_of(good_scalars, good_scalars, good_scalars, other_scalars)
values = st.one_of(
    scalars, scalars,
    st.lists(scalars, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
    st.lists(scalars, max_size=3).map(lambda xs: "[\n    " + ",\n    ".join(xs) + ",\n]"),
    st.lists(scalars, max_size=2).map(lambda xs: "[ # c\n" + ",".join(xs) + " ] "),
    st.just("[[1, 2]]"))
lines = st.one_of(
    st.builds(lambda k, v, sp, c: f"{k}{sp}={sp}{v}{c}", keys, values,
              st.sampled_from(["", " ", "\t", "  "]), st.sampled_from(["", " # note", "#x"])),
    st.builds(lambda k, c: f"[{k}]{c}", st.sampled_from(["identity", "policy", "a", "a.b", " a . b ",
                                                          "lint", "", "[a]", "a b", '"q"']),
              st.sampled_from(["", " # t", " x"])),
    st.sampled_from(["", "# comment", "   ", "\t# indented", "key", "=", "\r", "a = 1\r"]))


@settings(max_examples=1000)
@given(st.lists(lines, max_size=6))
@example(['[identity]', 'names = ["Sam"]', '', '[autoack]', 'enabled = true',
          'text = "Thanks for your message! – Sam"', '', '[policy]', 'daily_sends = 15'])
@example(["[a]", "[a]"])
@example(['a = "bad \\x"', 'c = "\\u00e9"', "d = 0x1F"])
@example(["b = 1e5", "c = -0.0", "d = +3", "e = [1, 2.5, true, 'x']"])
@example(["a = 1", "a = 2"])
@example(["[a.b]", "[a]", "c = 1", "[a.b]"])
@example(["a = 1", "[a]"])
@example(["[a]", "b = 1", "[a.b]"])
def test_loads_answers_as_tomllib_or_not_at_all(doc: list[str]) -> None:
    agrees("\n".join(doc))


values_of = {
    bool: st.booleans(), int: st.integers(-10**6, 10**6), float: st.floats(allow_nan=False),
    str: st.text(max_size=20), list: st.lists(st.text(max_size=10), max_size=4)}


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    """A config.toml as `config set` writes it: nested tables of the schema's keys."""
    out: dict[str, Any] = {}
    for s in draw(st.lists(st.sampled_from(list(config.schema().values())), max_size=12)):
        *parents, leaf = s.key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = draw(values_of[s.type])
    return out


@settings(max_examples=300)
@given(configs())
def test_what_dmtool_writes_is_read_without_tomllib(data: dict[str, Any]) -> None:
    """Only what tomli-w writes as \\uXXXX (control characters) or inf is left
    to tomllib."""
    text = tomli_w.dumps(data)
    fast = loads(text)
    if fast is None:
        assert "\\u" in text or "inf" in text, text
    else:
        assert typed(fast) == typed(tomllib.loads(text))
