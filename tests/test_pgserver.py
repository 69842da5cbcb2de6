"""The test session's PostgreSQL server: where its binaries come from, and a
clear failure (never a skip) when there are none."""

from __future__ import annotations

import importlib.util

import pytest

from tests import pgserver


def test_without_any_server_the_tests_fail_saying_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DMTOOL_TEST_PG_BINDIR", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(pgserver.glob, "glob", lambda pattern: [])
    with pytest.raises(pgserver.ServerError, match="pgserver.*not installed.*no initdb"):
        pgserver.find_bindir()


def test_the_wheel_comes_first_then_the_system(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DMTOOL_TEST_PG_BINDIR", raising=False)
    found = pgserver.find_bindir()
    assert (found / "pg_ctl").exists() and (found / "initdb").exists()
    monkeypatch.setenv("DMTOOL_TEST_PG_BINDIR", "/opt/pg/bin")
    assert str(pgserver.find_bindir()) == "/opt/pg/bin"
