"""One poller (issue 15 point 6): a second `sync` while one runs exits 0 at
once and says who holds it; an import or a restore holding the lock is still
exit 5; a 429 one member meets pauses the family for every member of the
store."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dmtool.services import poller
from dmtool.services.sync import sync_lock
from dmtool.x.sandbox import SandboxWorld
from tests.conftest import profile_store
from tests.xworld import ALICE, Cli, Clock, make_world


@pytest.fixture
def world(cli: Cli, clock: Clock) -> SandboxWorld:
    return make_world(cli, clock)


@pytest.fixture
def held(world: SandboxWorld) -> Iterator[poller.Holder]:
    """Another sync, by alice on host-a, holds the lock (another connection)."""
    other = profile_store()
    holder = poller.Holder("alice", "host-a", "2026-03-02T11:58:00Z", "sync")
    with sync_lock(other, "", holder):
        yield holder
    other.close()


def test_a_second_sync_is_skipped_and_names_the_holder(cli: Cli, world: SandboxWorld,
                                                       held: poller.Holder) -> None:
    r = cli("sync", "--json")
    assert r.exit_code == 0, r
    assert r.json() == {"skipped": "sync_running",
                        "holder": {"operator": "alice", "host": "host-a",
                                   "since": "2026-03-02T11:58:00Z"}}
    [line] = r.stderr.splitlines()
    assert "sync skipped" in line and "alice on host-a since 2026-03-02 11:58" in line
    assert world.requests_count() == 0

    r = cli("sync")
    assert r.exit_code == 0 and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1 and "alice on host-a" in r.stderr


def test_an_import_holding_the_lock_is_still_busy(cli: Cli, world: SandboxWorld) -> None:
    other = profile_store()
    with sync_lock(other, "", poller.Holder("bob", "h", "2026-03-02T11:00:00Z", "import")):
        r = cli("sync", "--json")
    other.close()
    assert r.exit_code == 5
    err = json.loads(r.stderr)["error"]
    assert err["code"] == "E_BUSY" and "import" in err["message"] and "bob" in err["message"]


def test_a_sync_records_who_holds_the_lock(cli: Cli, world: SandboxWorld) -> None:
    r = cli("sync", env={"DMTOOL_OPERATOR": "carol"})
    assert r.exit_code == 0, r
    store = profile_store()
    holder = poller.recorded(store)
    store.close()
    assert holder is not None
    assert (holder.operator, holder.command) == ("carol", "sync")
    assert holder.host and holder.since.startswith("2026-03-02T12:00")


def test_unreadable_holder_is_still_a_skip(cli: Cli, world: SandboxWorld) -> None:
    other = profile_store()
    with other.lock("sync"):  # an older dmtool: the lock, no holder
        r = cli("sync", "--json")
    other.close()
    assert r.exit_code == 0, r
    assert r.json()["skipped"] == "sync_running"
    assert "another process" in r.stderr


def _second_home(tmp_path: Path, first: Path) -> Path:
    """Another member's DMTOOL_HOME on the same store (its data folder is the
    first one's: the store and the sandbox X are shared, config is its own)."""
    home = tmp_path / "bob-home"
    (home / "data").mkdir(parents=True)
    (home / "data" / "default").symlink_to(first / "data" / "default")
    return home


def test_a_429_one_member_meets_pauses_the_family_for_another(
        cli: Cli, world: SandboxWorld, clock: Clock, tmp_path: Path) -> None:
    alice_home = Path(os.environ["DMTOOL_HOME"])
    bob_home = _second_home(tmp_path, alice_home)
    bob = {"DMTOOL_HOME": str(bob_home), "DMTOOL_OPERATOR": "bob"}
    assert cli("config", "set", "backend", "sandbox", env=bob).exit_code == 0
    world.incoming_dm(ALICE, "hi", at=clock.ago(hours=1))
    world.fail_next(429, path_contains="/2/dm_events", reset_in=900)
    r = cli("sync", "--json", env={"DMTOOL_OPERATOR": "alice"})
    assert r.exit_code == 5 and json.loads(r.stderr)["error"]["code"] == "E_RATE_LIMITED"
    before = world.requests_count()

    r = cli("sync", "--json", env=bob)  # bob's machine, the same store
    assert r.exit_code == 5, r
    assert json.loads(r.stderr)["error"]["code"] == "E_RATE_LIMITED"
    assert world.requests_count() == before  # refused locally: no request spent
    clock.advance(seconds=901)
    r = cli("sync", "--json", env=bob)
    assert r.exit_code == 0, r
    assert r.json()["dm_events_new"] == 1


def test_one_poller_across_homes_on_one_store(cli: Cli, world: SandboxWorld,
                                              tmp_path: Path) -> None:
    """Members whose homes share one store meet the same sync lock (on SQLite it
    sits beside the store, not in a home's state folder)."""
    alice_home = Path(os.environ["DMTOOL_HOME"])
    bob = {"DMTOOL_HOME": str(_second_home(tmp_path, alice_home)), "DMTOOL_OPERATOR": "bob"}
    assert cli("config", "set", "backend", "sandbox", env=bob).exit_code == 0
    holder = poller.Holder("alice", "host-a", "2026-03-02T11:58:00Z", "sync")
    other = profile_store()
    with sync_lock(other, "", holder):
        r = cli("sync", "--json", env=bob)
    other.close()
    assert r.exit_code == 0, r
    assert r.json()["holder"]["operator"] == "alice"
    assert world.requests_count() == 0


HOLD = """
import sys, time
from pathlib import Path
from dmtool.appstate import AppState
from dmtool.services import poller
from dmtool.services.sync import sync_lock
st = AppState()
with sync_lock(st.store, "", poller.Holder("dead", "gone", "2026-03-02T11:00:00Z", "sync")):
    Path(sys.argv[1]).touch()
    time.sleep(600)
"""


def test_a_holder_that_died_frees_the_lock(cli: Cli, world: SandboxWorld, tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    from tests.conftest import REPO
    from tests.xnet import subprocess_env

    ready = tmp_path / "ready"
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(ready)],
                         cwd=REPO, env=subprocess_env())
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert time.monotonic() < deadline and p.poll() is None
            time.sleep(0.02)
        assert cli("sync", "--json").json()["holder"]["operator"] == "dead"
    finally:
        p.kill()
        p.wait()
    r = cli("sync", "--json")
    assert r.exit_code == 0, r
    assert "skipped" not in r.json()  # it ran
