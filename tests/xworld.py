"""A sandbox X world and a pinned clock for tests that sync (fixtures in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dmtool.paths import Paths
from dmtool.timeutil import fmt
from dmtool.x.sandbox import SANDBOX_ME, SandboxWorld
from tests.conftest import Result

ME = SANDBOX_ME[0]
ALICE = "1500000000000000011"
BOB = "1500000000000000012"
SAM = "1500000000000000013"
CAROL = "1500000000000000014"
DAVE = "1500000000000000015"
ERIN = "1500000000000000016"
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

Cli = Callable[..., Result]


class Clock:
    """DMTOOL_NOW pins both dmtool's clock and the sandbox's."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.mp = monkeypatch
        self.set(T0)

    def set(self, at: datetime) -> None:
        self.now = at
        self.mp.setenv("DMTOOL_NOW", fmt(at) or "")

    def advance(self, **kw: float) -> datetime:
        self.set(self.now + timedelta(**kw))
        return self.now

    def ago(self, **kw: float) -> datetime:
        return self.now - timedelta(**kw)


def make_world(cli: Cli, clock: Clock) -> SandboxWorld:
    assert cli("config", "set", "backend", "sandbox").exit_code == 0
    w = SandboxWorld.create(Paths.resolve("default").sandbox_file)
    with w.transaction():
        w.set_me(*SANDBOX_ME)
        for uid, handle, name in ((ALICE, "alice", "Alice A"), (BOB, "bob", "Bob B"),
                                  (SAM, "sam", "Sam S"), (CAROL, "carol", "Carol C"),
                                  (DAVE, "dave", "Dave D"), (ERIN, "erin", "Erin E")):
            w.add_user(handle, name, user_id=uid)
    return w


def sync(cli: Cli, *args: str) -> dict[str, Any]:
    r = cli("sync", "--json", *args)
    assert r.exit_code == 0, r
    return r.json()  # type: ignore[no-any-return]


