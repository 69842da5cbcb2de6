"""Short cuts taken for start-up time give the answers of the long way round."""

from __future__ import annotations

import re
import subprocess
import sys
import unicodedata
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from dmtool import optout
from dmtool.cli.app import COMMAND_MODULES, load_module_commands
from dmtool.textnorm import _strip_edges, data_lines, fold, match_form, normalise

WORDS = [*optout.optout_words(), *optout.optin_words(), *optout.review_phrases()]
# Opt words with the decorations people add, glued and doubled, and ordinary text.
texts = st.one_of(
    st.sampled_from(WORDS),
    st.builds(lambda w, pre, post: f"{pre}{w}{post}", st.sampled_from(WORDS),
              st.sampled_from(["", " ", "!", "-", "「", "ー", "— ", "＊"]),
              st.sampled_from(["", " ", "!!", ".", "‐", "」", " 🛑", "!"])),
    st.builds(lambda a, b, sep: f"{a}{sep}{b}", st.sampled_from(WORDS), st.sampled_from(WORDS),
              st.sampled_from([" ", "-", "_", "'", "・", "、", " - "])),
    st.text(max_size=40),
)


# The regular expressions textnorm and optout compiled at import before
# issue 16; the translate tables and split() that replace them must agree.
WHITESPACE = re.compile(r"\s+")
VARIATION_SELECTORS = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")
APOSTROPHES = re.compile("['\u2018\u2019\u201b\u02bc\u02b9\u0060\u00b4\uff07]")
JOINERS = re.compile(r"[\s_'\u2018\u2019\uff07]+")


def slow_key(text: str) -> str:
    """optout._key as it was: a regex and a category lookup for every letter."""
    return "".join(ch for ch in normalise(text)
                   if not (JOINERS.fullmatch(ch) or unicodedata.category(ch) == "Pd"))


def regex_normalise(text: str) -> str:
    """textnorm.normalise as it was, with its regular expressions."""
    folded = VARIATION_SELECTORS.sub("", fold(text))
    return WHITESPACE.sub(" ", _strip_edges(folded)).strip()


def regex_match_form(text: str) -> str:
    """textnorm.match_form as it was, with its regular expressions."""
    folded = APOSTROPHES.sub("", VARIATION_SELECTORS.sub("", fold(text)))
    spaced = "".join(" " if unicodedata.category(ch).startswith("P") or ch == "_" else ch
                     for ch in folded)
    return WHITESPACE.sub(" ", spaced).strip()


def test_split_knows_the_whitespace_of_the_regex() -> None:
    """str.split() and the regex \\s agree on every code point."""
    for cp in range(0x110000):
        ch = chr(cp)
        assert bool(WHITESPACE.fullmatch(ch)) == (ch.split() == []), hex(cp)


# Text with the characters the replaced patterns were about.
spiced = st.text(alphabet=st.one_of(
    st.characters(), st.sampled_from(" \t\n\u3000\u00a0\u2028\x1c_'\u2018\u2019\u201b\u02bc"
                                     "\u02b9`\u00b4\uff07\ufe0f\ufe0e\U000e0100\U000e01ef-—")),
    max_size=30)


@given(st.one_of(texts, spiced, st.text(alphabet=st.characters(max_codepoint=127), max_size=30)))
@example("~Opt-Out~")
@example("__STOP__")
@example("\x7f`stop`\x00")
def test_normalise_and_match_form_are_the_regex_ones(text: str) -> None:
    assert normalise(text) == regex_normalise(text)
    assert match_form(text) == regex_match_form(text)


@given(spiced)
def test_word_key_of_spiced_text_is_the_letter_by_letter_one(text: str) -> None:
    assert optout._key(text) == slow_key(text)


@given(texts)
def test_word_key_is_the_letter_by_letter_one(text: str) -> None:
    assert optout._key(text) == slow_key(text)


@given(texts)
def test_word_kind_is_classify_without_review(text: str) -> None:
    kind = optout.classify(text)
    assert optout.word_kind(text) == (kind if kind in ("optout", "optin") else None)


def test_data_files_read_as_importlib_resources_reads_them() -> None:
    for name in ("optout_words.txt", "optin_words.txt", "optout_phrases.txt", "promo_en.txt"):
        raw = (resources.files("dmtool") / "data" / name).read_text(encoding="utf-8")
        want = tuple(x for x in (line.strip() for line in raw.splitlines())
                     if x and not x.startswith("#"))
        assert data_lines(name) == want


def run_probe(code: str, home: Path, *, ok: bool = True) -> str:
    """The probe's stdout; with ok=False, it must fail: its stderr."""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, env={"DMTOOL_HOME": str(home), "PATH": "/usr/bin"})
    assert (p.returncode == 0) == ok, p.stderr
    return p.stdout.strip() if ok else p.stderr


def test_reading_a_config_imports_neither_lint_nor_the_policy(tmp_path: Path) -> None:
    """[policy] and [lint] tables are checked at load against dmtool/settings.py:
    the rules and their word lists stay unimported (issue 16: `inbox` on a
    profile with a [policy] table once imported the whole policy)."""
    config = tmp_path / "config" / "default" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[identity]\nnames = ["Sam"]\n\n[policy]\ndaily_sends = 15\n')
    probe = ("import sys\nfrom dmtool.cli.context import AppState\nst = AppState()\n"
             "assert st.config.policy().daily_sends == 15\n"
             "print(sorted(m for m in ('dmtool.lint', 'dmtool.policy', 'dmtool.optout', "
             "'dmtool.textnorm') if m in sys.modules))\n")
    assert run_probe(probe, tmp_path) == "[]"
    config.write_text(config.read_text() + "\n[lint]\nshouting_ratio = 0.8\n")
    assert run_probe(probe, tmp_path) == "[]"
    config.write_text(config.read_text().replace("0.8", "0.2"))  # still checked at load
    assert "lint.shouting_ratio" in run_probe(probe.replace("print(", "(") + "print('ok')",
                                              tmp_path, ok=False)


def test_a_decision_does_not_build_the_review_phrase_matcher(tmp_path: Path) -> None:
    probe = """
from datetime import UTC, datetime
from dmtool import optout, policy
snap = policy.ContactSnapshot(user_id="1", handle="ann", name=None, messages=tuple(
    policy.Msg(at=datetime(2026, 1, d, tzinfo=UTC), direction="in", text=t)
    for d, t in ((1, "hello, can you stop by later?"), (2, "STOP"), (3, "start"))))
d = policy.decide(snap, None, [], policy.PolicySettings(), datetime(2026, 1, 5, tzinfo=UTC))
print(d.allowed, optout._review_regex.cache_info().currsize)
"""
    assert run_probe(probe, tmp_path) == "True 0"


@pytest.mark.parametrize("name", sorted(COMMAND_MODULES))
def test_a_command_is_built_alone(name: str) -> None:
    assert set(load_module_commands(COMMAND_MODULES[name], name)) == {name}


# Every module a local command imports (issue 16: thread, check, contacts list,
# inbox, digest, report, search, log, config show).
LOCAL_PATH = ["dmtool.cli.app", "dmtool.cli.argscan", "dmtool.cli.params", "dmtool.cli.contacts",
              "dmtool.cli.check_cmd", "dmtool.cli.contact_view", "dmtool.cli.conversations",
              "dmtool.cli.log_cmd", "dmtool.cli.search_cmd", "dmtool.cli.db_cmd",
              "dmtool.config", "dmtool.settings", "dmtool.policy", "dmtool.optout",
              "dmtool.textnorm", "dmtool.lint", "dmtool.models", "dmtool.paths",
              "dmtool.timeutil", "dmtool.localtime", "dmtool.services.consent",
              "dmtool.services.conversations", "dmtool.services.search", "dmtool.store.contacts",
              "dmtool.store.conversations", "dmtool.store.audit", "dmtool.store.search",
              "dmtool.output", "dmtool.tomlread"]

IMPORT_WORK_PROBE = """
import dataclasses, re, sys
import typer  # its own patterns are the floor every Typer CLI pays
compiled, generated = [], []
real_compile, real_process = re._compile, dataclasses._process_class
def spy_compile(pattern, flags):
    caller = sys._getframe(1)
    while caller is not None and caller.f_globals.get("__name__", "").startswith("re"):
        caller = caller.f_back
    module = caller.f_globals.get("__name__", "") if caller else ""
    if module.startswith("dmtool") and (pattern, flags) not in seen:
        compiled.append((module, str(pattern)[:40]))
    seen.add((pattern, flags))
    return real_compile(pattern, flags)
def spy_process(cls, *args):
    generated.append(cls.__module__ + "." + cls.__qualname__)
    return real_process(cls, *args)
seen = set()
re._compile, dataclasses._process_class = spy_compile, spy_process
for name in MODULES:
    __import__(name)
from dmtool.textnorm import data_lines
print(sorted(set(compiled)), sorted(m for m in generated if m.startswith("dmtool")),
      data_lines.cache_info().currsize)
"""


def test_importing_a_local_path_compiles_no_pattern_and_reads_no_lexicon(tmp_path: Path) -> None:
    """Patterns and word lists are built on first use, and no dataclass has its
    methods generated, while a local command starts: they cost each command
    milliseconds (issue 16)."""
    out = run_probe(IMPORT_WORK_PROBE.replace("MODULES", repr(LOCAL_PATH)), tmp_path)
    assert out == "[] [] 0"
