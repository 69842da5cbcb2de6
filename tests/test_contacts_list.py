"""`contacts list` streamed (issue 16 point 7): one contact at a time from the
store to stdout, in flat memory, with the answers and the bytes of the
list-building version (tests/test_read_models.py compares every answer with
a plain evaluation on random stores)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dmtool import output
from dmtool.paths import Paths
from dmtool.services.consent import _order
from dmtool.store import open_store
from dmtool.timeutil import fmt

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=3),
    max_leaves=8)


@pytest.mark.parametrize("tty", [False, True])
@given(items=st.lists(json_values, max_size=12), batch=st.integers(1, 5))
def test_a_streamed_list_is_the_text_of_the_whole_list(tty: bool, items: list[Any],
                                                       batch: int) -> None:
    out = io.StringIO()
    real, real_tty = sys.stdout, output.stdout_is_tty
    sys.stdout, output.stdout_is_tty = out, lambda: tty  # type: ignore[assignment]
    try:
        output.print_json_list(iter(items), batch=batch)
    finally:
        sys.stdout, output.stdout_is_tty = real, real_tty  # type: ignore[assignment]
    assert out.getvalue() == json.dumps(items, ensure_ascii=False,
                                        indent=2 if tty else None) + "\n"


def test_order_tells_earlier_equal_and_later_apart() -> None:
    fixed = ["2026-01-02", "2026-01-04"]
    before, on, after = _order(["2026-01-01"], fixed), _order(["2026-01-02"], fixed), \
        _order(["2026-01-03"], fixed)
    assert len({before, on, after}) == 3
    assert _order(["2026-01-03"], fixed) == _order(["2026-01-03T09"], fixed)  # same place
    assert _order(["a", "a"], fixed) != _order(["a", "b"], fixed) != _order(["b", "a"], fixed)
    assert _order([], fixed) == ()


def test_a_time_on_the_consent_horizon_is_not_another_just_before_it(cli: Any) -> None:
    """Consent lasts consent_days: engaged exactly then is still in time, a
    millisecond earlier is not. The list evaluates contacts with the same
    facts once; these two must not be taken for one another."""
    assert cli("config", "set", "policy.consent_days", "30").exit_code == 0
    horizon = NOW - timedelta(days=30)
    for handle, at in (("ontime", horizon), ("late", horizon - timedelta(milliseconds=1)),
                       ("ontime2", horizon), ("late2", horizon - timedelta(milliseconds=1))):
        assert cli("contacts", "add", handle).exit_code == 0
        assert cli("contacts", "engage", handle, "--kind", "offline", "--evidence", "met at PyCon",
                   env={"DMTOOL_NOW": fmt(at) or ""}).exit_code == 0
    r = cli("contacts", "list", "--json", env={"DMTOOL_NOW": fmt(NOW) or ""})
    assert r.exit_code == 0, r
    got = {c["handle"]: (c["status"], c["can_dm"]) for c in json.loads(r.stdout)}
    assert got == {"late": ("needs-consent", False), "late2": ("needs-consent", False),
                   "ontime": ("can-dm", True), "ontime2": ("can-dm", True)}


def _store_with_contacts(home: Path, n: int) -> None:
    """n contacts, one message and one inbound_dm record each: every contact
    is listed with times, tags on some."""
    db = Paths.resolve("default", {"DMTOOL_HOME": str(home)}).db_file
    store = open_store(db)
    at = fmt(NOW - timedelta(days=3)) or ""
    with store.tx() as conn:
        conn.executemany("INSERT INTO contacts (id, user_id, handle, name, created_at, updated_at) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         [(i, str(10_000 + i), f"user{i}", f"User {i}", at, at)
                          for i in range(1, n + 1)])
        conn.executemany("INSERT INTO messages (event_id, contact_id, direction, text, at, source, "
                         "first_contact, recorded_at) VALUES (?, ?, 'in', 'hello there', ?, "
                         "'sync', 0, ?)", [(f"e{i}", i, at, at) for i in range(1, n + 1)])
        conn.executemany("INSERT INTO evidence (contact_id, kind, at, ref, recorded_at) "
                         "VALUES (?, 'inbound_dm', ?, ?, ?)",
                         [(i, at, f"e{i}", at) for i in range(1, n + 1)])
        conn.executemany("INSERT INTO contact_tags (contact_id, tag) VALUES (?, 'vip')",
                         [(i,) for i in range(1, n + 1, 3)])
    store.close()


# This process's own peak, in KiB. ru_maxrss would not do on Linux: a child
# starts with its parent's peak (pytest's), which hides its own.
PEAK_KIB = """lambda: next((int(line.split()[1]) for line in open('/proc/self/status')
                     if line.startswith('VmHWM:')), 0) if sys.platform == 'linux' else
           __import__('resource').getrusage(0).ru_maxrss // (1024 if sys.platform == 'darwin'
                                                             else 1)"""


def _peak_mib(home: Path) -> tuple[float, int]:
    """Peak memory of `contacts list --json` in its own process, and the contacts listed."""
    env = {**os.environ, "DMTOOL_HOME": str(home), "DMTOOL_NOW": fmt(NOW) or ""}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # compiling modules would be the peak
    code = ("import runpy, sys\nsys.argv = ['dmtool', 'contacts', 'list', '--json']\n"
            "try:\n    runpy.run_module('dmtool', run_name='__main__')\nexcept SystemExit:\n"
            f"    pass\nsys.stderr.write(str(({PEAK_KIB})()))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       stdin=subprocess.DEVNULL, timeout=300)
    assert p.returncode == 0, p.stderr
    return int(p.stderr.strip().splitlines()[-1]) / 1024, len(json.loads(p.stdout))


def test_memory_stays_flat_however_many_contacts(tmp_path: Path) -> None:
    """The list-building version held every row, answer and the whole JSON
    text: 20,000 contacts took about 20 MiB more than 1,000."""
    small, big = tmp_path / "small", tmp_path / "big"
    _store_with_contacts(small, 1_000)
    _store_with_contacts(big, 20_000)
    _peak_mib(small)  # once first: the modules' bytecode is written
    small_mib, n_small = _peak_mib(small)
    big_mib, n_big = _peak_mib(big)
    assert (n_small, n_big) == (1_000, 20_000)
    assert big_mib - small_mib < 6, (small_mib, big_mib)
