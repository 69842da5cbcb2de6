"""A team on one store under load (issue 15): several operators at once.

    python benchmarks/team_load.py [--seconds 60] [--operators 8] [--pg | --url URL] [--seed 7]

Each operator has a DMTOOL_HOME of their own on one store and loops, running
the real `dmtool` command as a new process each time:

    inbox --unclaimed -> thread -> claim -> draft -> (another operator) review
    --approve -> send --yes

with `team.approval = "all"`, so every draft is approved by someone other than
its author (who picks it from a shared queue and sends it). Meanwhile a
sandbox cast keeps writing new inbound DMs, and every 10 s two "hosts" (two
more homes, members with the `service` role) start `sync` at the same moment:
one syncs, the other is skipped (issue 15 point 6).

The store is SQLite shared by the homes (one machine), or PostgreSQL: `--pg`
starts a throwaway server the way the tests do (tests/pgserver.py), `--url`
names a database of yours (the homes, sandbox profiles, find it in
DMTOOL_SANDBOX_DATABASE_URL, and the sandbox X is shared through
DMTOOL_SANDBOX_FILE).

At the end: per command the runs, p50/p95 wall time (process start
included), the exit codes; the sends attempted; the DMs the sandbox received
from the account, which must equal the drafts recorded `sent` (no duplicate,
none lost: each draft's text carries its own tag); refusals by code; Python
tracebacks (must be 0); `db check` (must pass); the core count (on 2 cores it
measures contention as much as dmtool).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

SYNC_EVERY_S = 10.0
CAST_EVERY_S = 0.4
USERS = 300
TEXT = ("thanks for asking about the workshop dates and the group rate, we can hold two "
        "seats until Friday if that suits you; the venue is near the station and the "
        "morning session starts at nine with coffee before the first talk")
WORDS = TEXT.split(" ")


def dmtool_exe() -> list[str]:
    exe = shutil.which("dmtool", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "dmtool"]


class Run:
    """One benchmark: the homes, the world, what was measured."""

    def __init__(self, root: Path, operators: int, seconds: float, url: str | None,
                 seed: int) -> None:
        self.root = root
        self.operators = [f"op{i + 1}" for i in range(operators)]
        self.seconds = seconds
        self.url = url
        self.rng = random.Random(seed)
        self.exe = dmtool_exe()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.exits: dict[str, Counter[int]] = defaultdict(Counter)
        self.refusals: Counter[str] = Counter()
        self.tracebacks: list[str] = []
        self.sends_attempted = 0
        self.syncs = Counter[str]()
        self.approvals: queue.Queue[tuple[str, str]] = queue.Queue()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.tag = 0
        self.world_path = root / "ana" / "data" / "default" / "sandbox.json"

    # --- homes ---------------------------------------------------------------

    def home(self, who: str) -> Path:
        return self.root / who

    def env(self, who: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DMTOOL_", "X_"))}
        env.update({"DMTOOL_HOME": str(self.home(who)), "DMTOOL_OPERATOR": who,
                    "NO_COLOR": "1", "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"})
        if self.url:  # sandbox profiles read their store's URL from here only
            env["DMTOOL_SANDBOX_DATABASE_URL"] = self.url
            env["DMTOOL_SANDBOX_FILE"] = str(self.world_path)
        return env

    def dm(self, who: str, *args: str, record: str | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run one dmtool command as `who`; timed and counted under `record`."""
        start = time.perf_counter()
        p = subprocess.run([*self.exe, *args], env=self.env(who), capture_output=True,
                           text=True, timeout=timeout)
        took = time.perf_counter() - start
        if record:
            with self.lock:
                self.times[record].append(took)
                self.exits[record][p.returncode] += 1
                if p.returncode != 0:
                    self.refusals[f"{record}: {error_code(p.stderr)}"] += 1
        if "Traceback" in p.stderr:
            with self.lock:
                self.tracebacks.append(f"{' '.join(args)}: {p.stderr[-600:]}")
        return p

    def must(self, who: str, *args: str) -> subprocess.CompletedProcess[str]:
        p = self.dm(who, *args)
        if p.returncode != 0:
            raise SystemExit(f"setup failed: dmtool {' '.join(args)} as {who}: {p.stderr}")
        return p

    def setup(self) -> None:
        from dmtool.x.sandbox import SANDBOX_ME, SandboxWorld

        first = self.home("ana")
        (first / "data" / "default").mkdir(parents=True)
        members = ["ana", *self.operators, "host-a", "host-b"]
        for who in members[1:]:
            data = self.home(who) / "data"
            data.mkdir(parents=True)
            if not self.url:  # one SQLite store (and sandbox X) for every home
                (data / "default").symlink_to(first / "data" / "default")
        for who in members:
            self.must(who, "config", "set", "backend", "sandbox")
        world = SandboxWorld.create(self.world_path)
        with world.transaction():
            world.set_me(*SANDBOX_ME)
            for i in range(USERS):
                world.add_user(f"person{i:03d}", f"Person {i:03d}", user_id=str(1500000000000001000 + i))
        for i in range(40):  # a morning's inbox before the first sync
            world.incoming_dm(str(1500000000000001000 + i), f"Hello, question number {i} about the dates?")
        self.must("ana", "sync")
        for who in self.operators:
            self.must("ana", "team", "add", who, "--role", "approver")
        for who in ("host-a", "host-b"):
            self.must("ana", "team", "add", who, "--role", "service")
        self.must("ana", "config", "set", "team.approval", "all")
        self.must("ana", "config", "set", "policy.daily_sends", "100")

    # --- the actors ------------------------------------------------------------

    def operator(self, who: str, seed: int) -> None:
        rng = random.Random(seed)
        while not self.stop.is_set():
            try:
                draft_id, author = self.approvals.get_nowait()
            except queue.Empty:
                draft_id = None
            if draft_id is not None and author == who:
                self.approvals.put((draft_id, author))  # not mine to approve
                draft_id = None
            if draft_id is not None:
                r = self.dm(who, "review", draft_id, "--approve", "--ack-warnings", "--json",
                            record="review --approve")
                if r.returncode == 0 and not self.stop.is_set():
                    with self.lock:
                        self.sends_attempted += 1
                    self.dm(who, "send", draft_id, "--yes", "--json", record="send --yes")
                continue
            self.draft_one(who, rng)

    def draft_one(self, who: str, rng: random.Random) -> None:
        r = self.dm(who, "inbox", "--unclaimed", "--json", record="inbox")
        if r.returncode != 0:
            return
        try:
            rows = json.loads(r.stdout)
        except ValueError:
            return
        rows = rows.get("conversations", rows) if isinstance(rows, dict) else rows
        waiting = [c for c in rows if isinstance(c, dict) and c.get("handle")]
        if not waiting:
            time.sleep(0.5)
            return
        handle = str(rng.choice(waiting[:20])["handle"])
        self.dm(who, "thread", handle, "--json", "--peek", record="thread")
        if self.dm(who, "claim", handle, record="claim").returncode != 0:
            return
        with self.lock:
            self.tag += 1
            tag = self.tag
        words = rng.sample(WORDS, 12)
        text = f"Hi, {' '.join(words)} (ref {who}-{tag})"
        r = self.dm(who, "draft", handle, text, "--json", record="draft")
        if r.returncode == 0:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                self.approvals.put((str(json.loads(r.stdout)["id"]), who))

    def cast(self) -> None:
        from dmtool.x.sandbox import SandboxWorld

        world = SandboxWorld.load(self.world_path)
        n = 0
        while not self.stop.is_set():
            n += 1
            user = str(1500000000000001000 + self.rng.randrange(USERS))
            world.incoming_dm(user, f"Another question ({n}): is the morning session full?")
            time.sleep(CAST_EVERY_S)

    def poller(self, host: str, start: threading.Barrier) -> None:
        while not self.stop.is_set():
            start.wait()
            r = self.dm(host, "sync", "--json", record="sync")
            if r.returncode == 0:
                try:
                    self.syncs["skipped" if "skipped" in json.loads(r.stdout) else "ran"] += 1
                except ValueError:
                    self.syncs["unparsed"] += 1
            self.stop.wait(SYNC_EVERY_S)

    # --- the run ---------------------------------------------------------------

    def go(self) -> dict[str, Any]:
        self.setup()
        threads = [threading.Thread(target=self.operator, args=(who, i), daemon=True)
                   for i, who in enumerate(self.operators)]
        barrier = threading.Barrier(2, timeout=120)
        threads += [threading.Thread(target=self.poller, args=(h, barrier), daemon=True)
                    for h in ("host-a", "host-b")]
        threads.append(threading.Thread(target=self.cast, daemon=True))
        began = time.perf_counter()
        for t in threads:
            t.start()
        time.sleep(self.seconds)
        self.stop.set()
        barrier.abort()
        for t in threads:
            t.join(timeout=180)
        wall = time.perf_counter() - began
        return self.settle(wall)

    def settle(self, wall: float) -> dict[str, Any]:
        from dmtool.x.sandbox import SANDBOX_ME, SandboxWorld

        state = SandboxWorld.load(self.world_path).snapshot()
        me = SANDBOX_ME[0]
        received = [e.get("text", "") for e in state["dm_events"]
                    if e.get("sender_id") == me and e.get("event_type") == "MessageCreate"]
        p = self.must("ana", "drafts", "list", "--status", "sent", "--json")
        sent = json.loads(p.stdout)
        sent = sent.get("drafts", sent) if isinstance(sent, dict) else sent
        check = self.dm("ana", "db", "check", "--json")
        tags = Counter(t.rsplit("(ref ", 1)[-1] for t in received if "(ref " in t)
        return {
            "cores": os.cpu_count(), "operators": len(self.operators), "seconds": self.seconds,
            "wall_s": round(wall, 1), "engine": "postgresql" if self.url else "sqlite",
            "commands": {cmd: {"runs": len(ts), "p50_s": round(statistics.median(ts), 3),
                               "p95_s": round(pct(ts, 95), 3),
                               "exits": dict(sorted(self.exits[cmd].items()))}
                         for cmd, ts in sorted(self.times.items())},
            "sends_attempted": self.sends_attempted,
            "sandbox_received": len(received), "drafts_sent": len(sent),
            "duplicates": sum(n - 1 for n in tags.values() if n > 1),
            "syncs": dict(self.syncs),
            "refusals": dict(self.refusals.most_common()),
            "tracebacks": len(self.tracebacks), "traceback_samples": self.tracebacks[:3],
            "db_check": "clean" if check.returncode == 0 else check.stdout + check.stderr,
        }


def error_code(stderr: str) -> str:
    """The E_ code of a JSON error; for an action (no --json) its message, cut short."""
    lines = stderr.strip().splitlines() or [""]
    try:
        return str(json.loads(lines[-1])["error"]["code"])
    except (ValueError, KeyError, IndexError, TypeError):
        pass
    first = next((ln for ln in lines if ln.startswith("error: ")), lines[0])
    if " is claimed by " in first:  # `claim` takes no --json: its refusal is E_CLAIMED
        return "E_CLAIMED"
    return first.removeprefix("error: ")[:60]


def pct(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def table(result: dict[str, Any]) -> str:
    lines = [f"team load: {result['operators']} operators, {result['seconds']:g} s "
             f"({result['wall_s']} s wall), {result['engine']}, {result['cores']} cores",
             "", "| command | runs | p50 s | p95 s | exit codes |", "|---|---|---|---|---|"]
    for cmd, c in result["commands"].items():
        exits = ", ".join(f"{k}: {v}" for k, v in c["exits"].items())
        lines.append(f"| {cmd} | {c['runs']} | {c['p50_s']:.2f} | {c['p95_s']:.2f} | {exits} |")
    lines += ["", f"sends attempted: {result['sends_attempted']}; DMs the sandbox received: "
              f"{result['sandbox_received']}; drafts recorded sent: {result['drafts_sent']}; "
              f"duplicates: {result['duplicates']}",
              f"syncs: {result['syncs']}",
              f"refusals by code: {result['refusals'] or 'none'}",
              f"tracebacks: {result['tracebacks']}; db check: {result['db_check']}"]
    return "\n".join(lines)


def pg_database() -> str:
    """A fresh database on a PostgreSQL server started as the tests start theirs."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    try:
        from tests.pgserver import server
    except ImportError:
        raise SystemExit("--pg needs the PostgreSQL engine (tests/pgserver.py); "
                         "use --url with a database of yours") from None
    srv = server()
    return str(srv.url(srv.take()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--operators", type=int, default=8)
    ap.add_argument("--url", help="a PostgreSQL database for the store (default: SQLite)")
    ap.add_argument("--pg", action="store_true",
                    help="start a throwaway PostgreSQL server (as the tests do) for the store")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the homes (printed) for a look")
    args = ap.parse_args()
    if not 2 <= args.operators <= 64 or not 1 <= args.seconds <= 3600:
        raise SystemExit("--operators 2-64, --seconds 1-3600")
    url = args.url or (pg_database() if args.pg else None)
    root = Path(tempfile.mkdtemp(prefix="dmtool-team-load-"))
    try:
        result = Run(root, args.operators, args.seconds, url, args.seed).go()
    finally:
        if args.keep:
            print(f"homes kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result, indent=2) if args.json else table(result))
    ok = (result["tracebacks"] == 0 and result["db_check"] == "clean"
          and result["sandbox_received"] == result["drafts_sent"] and not result["duplicates"])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
