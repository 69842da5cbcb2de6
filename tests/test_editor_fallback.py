"""Audit (issue 12 point 1): with no $VISUAL or $EDITOR the editor falls back as
git does, `editor` then `vi`, says which one opened, and names the way out when
neither is there. (The `editor` case on a real terminal: test_review_pty.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from dmtool.cli.editor import find_editor
from dmtool.errors import UsageError


def _bin(tmp_path: Path, *names: str) -> str:
    d = tmp_path / "bin"
    d.mkdir()
    for n in names:
        f = d / n
        f.write_text("#!/bin/sh\n")
        f.chmod(0o755)
    return str(d)


def test_visual_then_editor_then_editor_then_vi(tmp_path: Path) -> None:
    path = _bin(tmp_path, "editor", "vi")
    assert find_editor({"VISUAL": "nano", "EDITOR": "ed", "PATH": path}) == ("nano", None)
    assert find_editor({"VISUAL": " ", "EDITOR": "ed", "PATH": path}) == ("ed", None)
    assert find_editor({"PATH": path}) == ("editor", "no $VISUAL or $EDITOR set: opening `editor`")


def test_vi_when_there_is_no_editor_command(tmp_path: Path) -> None:
    assert find_editor({"PATH": _bin(tmp_path, "vi")}) == ("vi", "no $VISUAL or $EDITOR set: opening `vi`")


def test_neither_is_a_usage_error_that_names_the_way_out(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as e:
        find_editor({"PATH": _bin(tmp_path)})
    assert "neither `editor` nor `vi`" in e.value.message and "--file" in (e.value.hint or "")
