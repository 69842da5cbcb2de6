"""The docs say what the code does: the reference is generated, the README's
two set-up commands stay two."""

from __future__ import annotations

import re

from tests.conftest import REPO


def test_command_reference_is_current():
    from dmtool.cli.reference import render

    checked_in = (REPO / "docs" / "commands.md").read_text(encoding="utf-8")
    assert checked_in == render(), (
        "docs/commands.md is out of date: run `python -m dmtool.cli.reference > docs/commands.md`")


def test_reference_lists_every_command():
    from dmtool.cli.reference import render

    text = render()
    for cmd in ("dmtool contacts import", "dmtool config set", "dmtool check", "dmtool db backup"):
        assert f"`{cmd}`" in text


def test_readme_has_exactly_two_setup_commands():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    sections = {}
    for title in ("Quick start", "Tests"):
        m = re.search(rf"^## {title}\n(.*?)(?=^## )", readme, re.S | re.M)
        assert m, title
        blocks = re.findall(r"```sh\n(.*?)```", m.group(1), re.S)
        assert len(blocks) == 1 and len(blocks[0].strip().splitlines()) == 1, title
        sections[title] = blocks[0].strip()
    assert "pytest" in sections["Tests"]
