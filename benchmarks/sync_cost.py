"""What a sync costs on X: DM events read (billed one by one) and requests.

    python benchmarks/sync_cost.py [--seed 7] [--repeat 1] [--history 300] [--burst 250] [--trace]

Runs `dmtool sync --json` on the sandbox X in a throwaway DMTOOL_HOME (no
network, no account). The first sync brings in a history of ~300 DM events at
random times over the last 10 days; then each scenario adds events, moves the
clock on and syncs, on top of the one before:

- "first sync": every event is new; target reads <= new + 5;
- "no new events" (10 minutes later, within sync.public_every_minutes):
  target 1 request, at most 2 events read;
- "3 new events" at random times in the next 15 minutes;
- "250 new events" at random times over the next 6 hours;
- "no new, public due" (20 minutes later): the mentions and own-posts check is
  due, so target 3 requests (DMs, mentions, posts), at most 2 events read;
- "burst in last seconds": 12 minutes later, 250 DMs all within the last 5 s;
- "burst after a sync": 250 DMs within 5 s, a minute after the last sync,
  then quiet until the sync 12 minutes later;
- "burst after quiet week": the last sync was 7 days ago, nothing since until
  250 DMs in the last 2 minutes;
- "burst amid steady": 100 DMs at random over 2 hours and 150 within 20 s at
  a random moment among them;
- "bursts in clusters": five clusters of 50 DMs, each within a minute, at
  random moments over 3 hours.

Every scenario with new events has the target reads <= new + 5 and at most
12 requests to GET /2/dm_events (X allows 15 per 15 minutes), and checks that
the store holds exactly the sandbox's events. The exception: a burst that
follows a quiet stretch (in last seconds, after a quiet week, amid steady, in
clusters). X has no since filter, and while the walk reads such a burst every
page looks the same whether one or a thousand more events follow, so no page
sizing can promise new + 5 without pages of 5 (50 requests for 250 DMs). The
walk bets at most sync.BURST_RISK old events that the burst goes on; those
scenarios' target is reads <= new + BURST_RISK + 5. --burst changes the 250 of the
burst scenarios (and scales their parts), to see how the cost depends on it.

Each line shows the new events, the DM events read, all requests and the DM
requests. --trace adds each DM request's page size and what it returned.
--repeat N runs N seeds and prints a table per scenario (min/mean/max).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from dmtool.paths import Paths  # noqa: E402
from dmtool.services.sync import BURST_RISK  # noqa: E402
from dmtool.timeutil import fmt  # noqa: E402
from dmtool.x.sandbox import SANDBOX_ME, SandboxWorld  # noqa: E402

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PEOPLE = 25
MAX_DM_REQUESTS = 12  # of X's 15 DM lookups per 15 minutes: room left for the next sync

Times = list[datetime]
# (random source, last sync, burst size) -> (DM times, the new sync time)
Arrivals = Callable[[random.Random, datetime, int], tuple[Times, datetime]]


def spread(rng: random.Random, n: int, start: datetime, end: datetime) -> Times:
    """n random moments in [start, end)."""
    span = (end - start).total_seconds()
    return [start + timedelta(seconds=rng.uniform(0, span)) for _ in range(n)]


def steady(n: int, minutes: float) -> Arrivals:
    def arrive(rng: random.Random, last: datetime, burst: int) -> tuple[Times, datetime]:
        now = last + timedelta(minutes=minutes)
        return spread(rng, n, last, now), now
    return arrive


def burst_at_end(minutes: float, seconds: float) -> Arrivals:
    def arrive(rng: random.Random, last: datetime, burst: int) -> tuple[Times, datetime]:
        now = last + timedelta(minutes=minutes)
        return spread(rng, burst, now - timedelta(seconds=seconds), now), now
    return arrive


def burst_after_sync(minutes: float, delay: float, seconds: float) -> Arrivals:
    def arrive(rng: random.Random, last: datetime, burst: int) -> tuple[Times, datetime]:
        start = last + timedelta(seconds=delay)
        return spread(rng, burst, start, start + timedelta(seconds=seconds)), \
            last + timedelta(minutes=minutes)
    return arrive


def clusters(k: int, minutes: float, seconds: float) -> Arrivals:
    """k clusters, each within `seconds`, at random moments; burst * 2/5 of
    steady traffic besides when k == 1 (a burst amid steady traffic)."""
    def arrive(rng: random.Random, last: datetime, burst: int) -> tuple[Times, datetime]:
        now = last + timedelta(minutes=minutes)
        times: Times = []
        background = burst * 2 // 5 if k == 1 else 0
        if background:
            times += spread(rng, background, last, now)
        size = (burst - background) // k
        for _ in range(k):
            start = last + timedelta(seconds=rng.uniform(0, minutes * 60 - seconds))
            times += spread(rng, size, start, start + timedelta(seconds=seconds))
        return times, now
    return arrive


@dataclass(frozen=True)
class Scenario:
    name: str
    arrivals: Arrivals
    public_due: bool = False
    slack: int = 5  # old events a sync may read beyond the new ones


SCENARIOS = (
    Scenario("no new events", steady(0, 10)),
    Scenario("3 new events", steady(3, 15)),
    Scenario("250 new events", steady(250, 360)),
    Scenario("no new, public due", steady(0, 20), public_due=True),
    # Added after the four above, so those draw the same random numbers as before.
    Scenario("burst in last seconds", burst_at_end(12, 5), slack=BURST_RISK + 5),
    Scenario("burst after a sync", burst_after_sync(12, 60, 5)),
    Scenario("burst after quiet week", burst_at_end(7 * 24 * 60, 120), slack=BURST_RISK + 5),
    Scenario("burst amid steady", clusters(1, 120, 20), slack=BURST_RISK + 5),
    Scenario("bursts in clusters", clusters(5, 180, 60), slack=BURST_RISK + 5),
)


@dataclass
class Outcome:
    name: str
    new: int
    read: int
    requests: int
    dm_requests: int
    met: bool
    target: str
    pages: list[tuple[int, int]]  # (max_results asked, events returned) per DM request
    store_ok: bool


def dmtool(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dmtool", *args], env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, check=False)


def sync(env: dict[str, str]) -> dict[str, Any]:
    p = dmtool(env, "sync", "--json")
    if p.returncode != 0:
        raise SystemExit(f"dmtool sync failed ({p.returncode}): {p.stderr.strip()}")
    return json.loads(p.stdout)  # type: ignore[no-any-return]


def add_events(world: SandboxWorld, rng: random.Random, people: list[str], times: Times) -> None:
    """DMs at the given times, created in time order as on X."""
    with world.transaction():
        for at in sorted(times):
            who = rng.choice(people)
            if rng.random() < 0.3:
                world.outgoing_dm(who, f"reply at {fmt(at)}", at=at)
            else:
                world.incoming_dm(who, f"message at {fmt(at)}", at=at)


def stored_ok(paths: Paths, world: SandboxWorld) -> bool:
    expected = {e["id"] for e in world.snapshot()["dm_events"]}
    with sqlite3.connect(paths.db_file) as conn:
        rows = [r[0] for r in conn.execute("SELECT event_id FROM messages")]
    return len(rows) == len(set(rows)) and set(rows) == expected


def measure(name: str, n: int, r: dict[str, Any], world: SandboxWorld, paths: Paths,
            public_due: bool = False, slack: int = 5) -> Outcome:
    log = [q for q in world.requests_log() if q["path"] == "/2/dm_events"]
    pages = [(int(q["query"].get("max_results", 100)), int(q["dm_events"])) for q in log]
    ok_store = stored_ok(paths, world)
    if n == 0:
        want = 3 if public_due else 1
        met = r["requests"] == want and r["dm_events_read"] <= 2
        target = f"{want} request{'s' if want > 1 else ''}, <= 2 read"
    else:
        met = r["dm_events_read"] <= n + slack and len(pages) <= MAX_DM_REQUESTS
        target = f"<= {n + slack} read, <= {MAX_DM_REQUESTS} DM req"
    met = met and ok_store and r["dm_events_new"] == n
    met = met and r["dm_events_read"] == world.dm_events_read()
    return Outcome(name, r["dm_events_new"], r["dm_events_read"], r["requests"], len(pages), met,
                   target, pages, ok_store)


def run(seed: int, history: int, burst: int) -> list[Outcome]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="dmtool-bench-") as home:
        env = dict(os.environ, DMTOOL_HOME=home, NO_COLOR="1")
        for var in ("DMTOOL_PROFILE", "X_API_KEY", "X_API_SECRET", "X_ACCESS_TOKEN",
                    "X_ACCESS_TOKEN_SECRET"):
            env.pop(var, None)
        now = START
        env["DMTOOL_NOW"] = fmt(now) or ""
        if dmtool(env, "config", "set", "backend", "sandbox").returncode != 0:
            raise SystemExit("cannot configure the sandbox profile")
        paths = Paths.resolve("default", env)
        world = SandboxWorld.create(paths.sandbox_file)
        world.set_me(*SANDBOX_ME)
        people = [world.add_user(f"person{i}", f"Person {i}") for i in range(PEOPLE)]
        add_events(world, rng, people, spread(rng, history, now - timedelta(days=10), now))
        world.reset_requests_log()
        outcomes = [measure("first sync", history, sync(env), world, paths)]

        for sc in SCENARIOS:
            times, later = sc.arrivals(rng, now, burst)
            add_events(world, rng, people, times)
            now = later
            env["DMTOOL_NOW"] = fmt(now) or ""
            world.reset_requests_log()
            outcomes.append(measure(sc.name, len(times), sync(env), world, paths, sc.public_due,
                                    sc.slack))
        return outcomes


def line(o: Outcome, trace: bool) -> str:
    text = (f"  {o.name:<23} new {o.new:>3}  dm_events_read {o.read:>3}  requests {o.requests:>2}"
            f"  (DM {o.dm_requests:>2})  target {o.target:<29} {'met' if o.met else 'MISSED'}"
            f"{'' if o.store_ok else '  (store does not match the sandbox!)'}")
    if trace:
        text += "\n      pages (asked:returned) " + " ".join(f"{a}:{b}" for a, b in o.pages)
    return text


def table(runs: list[list[Outcome]]) -> None:
    def span(values: list[int]) -> str:
        lo, hi = min(values), max(values)
        return f"{lo}" if lo == hi else f"{lo}-{hi}"

    print(f"{'scenario':<23} {'new':>4} {'read - new':>16} {'requests':>9} {'DM requests':>16}  met")
    print(f"{'':<23} {'':>4} {'min/mean/max':>16} {'':>9} {'min/mean/max':>16}")
    for i, first in enumerate(runs[0]):
        row = [r[i] for r in runs]
        extra = [o.read - o.new for o in row]
        dm = [o.dm_requests for o in row]
        print(f"{first.name:<23} {span([o.new for o in row]):>4} "
              f"{min(extra):>5}/{statistics.mean(extra):>5.1f}/{max(extra):>4} "
              f"{span([o.requests for o in row]):>9} "
              f"{min(dm):>5}/{statistics.mean(dm):>5.1f}/{max(dm):>4}  "
              f"{sum(o.met for o in row)}/{len(row)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=1, help="run this many seeds from --seed on")
    ap.add_argument("--history", type=int, default=300)
    ap.add_argument("--burst", type=int, default=250, help="DMs in each burst scenario")
    ap.add_argument("--trace", action="store_true", help="show each DM request's page")
    args = ap.parse_args()
    runs = []
    for seed in range(args.seed, args.seed + args.repeat):
        outcomes = run(seed, args.history, args.burst)
        runs.append(outcomes)
        missed = [o.name for o in outcomes if not o.met]
        if args.repeat == 1 or args.trace:
            print(f"seed {seed}:")
            for o in outcomes:
                print(line(o, args.trace))
        else:
            print(f"seed {seed}: {'all targets met' if not missed else 'missed: ' + ', '.join(missed)}")
    missed_total = sum(not o.met for r in runs for o in r)
    if args.repeat > 1:
        print()
        table(runs)
        print(f"{args.repeat} seeds, {missed_total} scenario run(s) missed their target")
    sys.exit(1 if missed_total else 0)


if __name__ == "__main__":
    main()
