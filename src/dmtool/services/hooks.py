"""`hooks.on_inbound`: a command of yours, run once per new inbound DM after a sync.

Which messages: the DMs a sync stored that were sent after the previous
complete sync started (none on a profile's first sync, none from an archive
import). Sync queues each one in the transaction that stores it
(store/hooks.py), so none is lost to a crash; after the sync has released its
lock, each is taken off the queue (claimed) and then its hook runs, so a hook
runs at most once, and the ones a killed sync left behind run at the next.

The command runs through the shell with the message as one JSON document on
stdin, with `hooks.timeout_s` to finish (then its process group is killed).
Its output is not shown: dmtool's stdout stays one document. A failure (exit
status other than 0, a timeout, a command that cannot start) is written to
the audit log (`hook_failed`) and counted; it never stops the sync.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dmtool import timeutil
from dmtool.store import contacts as cstore
from dmtool.store import hooks as hstore

if TYPE_CHECKING:
    from datetime import datetime

    from dmtool.appstate import AppState
    from dmtool.store.sql import Conn

ON_INBOUND = "on_inbound"
STDERR_KEPT = 300  # characters of a failed hook's stderr kept in the audit log


@dataclass
class HookReport:
    ran: int = 0
    failed: int = 0
    last_failure: str | None = None  # what went wrong the last time, for the one stderr line

    def to_dict(self) -> dict[str, int]:
        return {"ran": self.ran, "failed": self.failed}


class InboundQueue:
    """What sync needs from hooks while it stores DMs: whether a new inbound
    one is news (sent after the previous complete sync started), and queueing it."""

    def __init__(self, command: str, previous_sync_at: datetime | None) -> None:
        self.command = command
        self.floor = previous_sync_at

    def add(self, conn: Conn, event_id: str, at: datetime, *, now: str) -> None:
        if self.command and self.floor is not None and at > self.floor:
            hstore.queue(conn, event_id, ON_INBOUND, now=now)


def state_of(row: dict[str, Any]) -> str:
    """A contact's state, the inbox's precedence: blocked > opted-out >
    review-optout > dm-closed > open."""
    if row["blocked_at"]:
        return "blocked"
    if row["opted_out_at"]:
        return "opted-out"
    if row["optout_review_at"]:
        return "review-optout"
    if row["dm_closed_at"]:
        return "dm-closed"
    return "open"


def document(row: dict[str, Any], profile: str) -> dict[str, Any]:
    """The JSON a hook reads on stdin."""
    state = state_of(row)
    return {
        "event_id": row["event_id"],
        "profile": profile,
        "contact": {"handle": row["handle"], "user_id": row["user_id"], "name": row["name"]},
        "text": row["text"],
        "at": row["at"],
        # Never ask for a reply to someone who asked to stop (or whom you blocked).
        "needs_reply": row["human_direction"] == "in"
        and state not in ("blocked", "opted-out", "review-optout"),
        "state": state,
    }


def run_pending(st: AppState, *, say: Callable[[str], None] | None = None) -> HookReport:
    """Run the on_inbound hook for every queued message, oldest first. Called
    after the sync lock is released; safe beside another sync (claims)."""
    report = HookReport()
    store = st.store
    command = str(st.config.get("hooks.on_inbound") or "").strip()
    if not command:
        with store.tx() as conn:
            hstore.drop(conn, ON_INBOUND)  # queued while one was configured
        return report
    timeout = int(st.config.get("hooks.timeout_s"))
    env = {**st.environ, "DMTOOL_PROFILE": st.profile, "DMTOOL_HOOK": ON_INBOUND}
    ids = hstore.pending(store.conn, ON_INBOUND)
    for n, message_id in enumerate(ids, start=1):
        with store.tx() as conn:
            if not hstore.claim(conn, message_id):
                continue  # another sync took it
            row = hstore.message(conn, message_id)
        if row is None:
            continue
        if say is not None:
            say(f"running hooks.on_inbound ({n} of {len(ids)})")
        doc = document(row, st.profile)
        failure = run_command(command, json.dumps(doc, ensure_ascii=False), timeout, env)
        report.ran += 1
        if failure is not None:
            report.failed += 1
            report.last_failure = failure
            with store.tx() as conn:
                cstore.audit(conn, "hook_failed", now=timeutil.fmt(timeutil.now()) or "",
                             contact=cstore.by_id(conn, row["contact_id"]), hook=ON_INBOUND,
                             event_id=row["event_id"], error=failure)
    return report


def run_command(command: str, stdin: str, timeout: float, env: dict[str, str]) -> str | None:
    """Run `command` through the shell with `stdin`. None when it exits 0, else
    what went wrong (with the end of its stderr)."""
    try:
        proc = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=env, start_new_session=True)
    except OSError as e:  # no shell, too many processes
        return f"could not start: {e.strerror or e}"
    try:
        _, err = proc.communicate(stdin.encode("utf-8"), timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return f"timed out after {timeout:g} s"
    if proc.returncode == 0:
        return None
    what = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
            else f"exit {proc.returncode}")
    tail = err.decode("utf-8", "replace").strip().splitlines()
    return f"{what}: {tail[-1][:STDERR_KEPT]}" if tail else what


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop the shell and everything it started (its own process group), then
    reap it. A child that keeps the stderr pipe open cannot hold us up."""
    if hasattr(os, "killpg"):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    else:  # Windows: no process groups nor SIGKILL; the shell itself
        with contextlib.suppress(OSError):
            proc.kill()
    if proc.stderr is not None:
        proc.stderr.close()
    proc.wait()
