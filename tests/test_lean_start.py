"""Short cuts taken for start-up time give the answers of the long way round."""

from __future__ import annotations

import subprocess
import sys
import unicodedata
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dmtool import optout
from dmtool.cli.app import COMMAND_MODULES, load_module_commands
from dmtool.textnorm import data_lines, normalise

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


def slow_key(text: str) -> str:
    """optout._key as it was: a regex and a category lookup for every letter."""
    return "".join(ch for ch in normalise(text)
                   if not (optout._JOINERS.fullmatch(ch) or unicodedata.category(ch) == "Pd"))


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


def run_probe(code: str, home: Path) -> str:
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, env={"DMTOOL_HOME": str(home), "PATH": "/usr/bin"})
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def test_a_config_without_lint_settings_does_not_import_lint(tmp_path: Path) -> None:
    config = tmp_path / "config" / "default" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[identity]\nnames = ["Sam"]\n\n[policy]\ndaily_sends = 15\n')
    probe = ("import sys\nfrom dmtool.cli.context import AppState\nst = AppState()\n"
             "assert st.config.policy().daily_sends == 15\n"
             "print('dmtool.lint' in sys.modules)\n")
    assert run_probe(probe, tmp_path) == "False"
    config.write_text(config.read_text() + "\n[lint]\nshouting_ratio = 0.8\n")
    assert run_probe(probe, tmp_path) == "True"  # a [lint] table is checked at load


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
