"""What a sync costs on X: DM events read, those billed, dollars and requests.

    python benchmarks/sync_cost.py [--seed 7] [--repeat 1] [--history 300] [--burst 250] [--trace]
                                   [--cron quiet,20,500] [--no-cron]

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

- "before 00:00 UTC": 3 new events, the sync at 23:55 UTC;
- "across 00:00 UTC": 3 new events, the sync 15 minutes later, at 00:10 the
  next UTC day: what was read yesterday is billed again if read again.

X bills a DM event once per UTC day however often it is read (the same-day
rule), so each scenario reports both the raw reads (`dm_events_read`) and the
billable ones (`dm_events_billable`, from the ledger), with the estimated
dollars of the sync (events, users named in the answers, posts; X's prices).
The target in every scenario is billable reads <= new + 5 (quiet ones: one
request, or three when the public check is due, and <= 2 billable), at most
12 requests to GET /2/dm_events (X allows 15 per 15 minutes), and the store
holding exactly the sandbox's events. The walk may read far more raw events
than that when they were read earlier the same UTC day: they cost nothing.
A burst that follows a quiet stretch looks the same, page after page, whether
one or a thousand more events follow; the walk bets at most sync.BURST_RISK
old events that it goes on. Those are free when read earlier the same day;
after a quiet week they are billed (that scenario's billable target is the
one a walk cannot promise without pages of 5: 50 requests for 250 DMs).
--burst changes the 250 of the burst scenarios (and scales their parts).

Then a day of a 15-minute cron (`dmtool sync` every 15 minutes from 00:00 to
24:00 UTC, the public check every time) on three accounts: a quiet one, 20
DMs a day and 500 DMs a day (at random times), after a first sync of their
history: raw and billable DM events, requests, and dollars per day.

Each line shows the new events, the DM events read and billed, the dollars,
all requests and the DM requests. --trace adds each DM request's page size
and what it returned. --repeat N runs N seeds and prints a table per scenario
(min/mean/max).
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


def at_utc(hour: int, minute: int, n: int, spread_minutes: float = 15) -> Arrivals:
    """n events over the `spread_minutes` before the next hour:minute UTC."""
    def arrive(rng: random.Random, last: datetime, burst: int) -> tuple[Times, datetime]:
        now = last.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if now <= last:
            now += timedelta(days=1)
        return spread(rng, n, now - timedelta(minutes=spread_minutes), now), now
    return arrive


@dataclass(frozen=True)
class Scenario:
    name: str
    arrivals: Arrivals
    public_due: bool = False


SCENARIOS = (
    Scenario("no new events", steady(0, 10)),
    Scenario("3 new events", steady(3, 15)),
    Scenario("250 new events", steady(250, 360)),
    Scenario("no new, public due", steady(0, 20), public_due=True),
    # Added after the four above, so those draw the same random numbers as before.
    Scenario("burst in last seconds", burst_at_end(12, 5)),
    Scenario("burst after a sync", burst_after_sync(12, 60, 5)),
    Scenario("burst after quiet week", burst_at_end(7 * 24 * 60, 120)),
    Scenario("burst amid steady", clusters(1, 120, 20)),
    Scenario("bursts in clusters", clusters(5, 180, 60)),
    Scenario("before 00:00 UTC", at_utc(23, 55, 3)),
    Scenario("across 00:00 UTC", at_utc(0, 10, 3)),
)


@dataclass
class Outcome:
    name: str
    new: int
    read: int
    billable: int
    usd: float
    requests: int
    dm_requests: int
    met: bool
    target: str
    pages: list[tuple[int, int]]  # (max_results asked, events returned) per DM request
    store_ok: bool
    at: str = ""  # when the sync ran (UTC): the first of a UTC day pays for what it reads again


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
    billable = r["dm_events_billable"]
    if n == 0:
        want = 3 if public_due else 1
        met = r["requests"] == want and billable <= 2
        target = f"{want} request{'s' if want > 1 else ''}, <= 2 billed"
    else:
        met = billable <= n + slack and len(pages) <= MAX_DM_REQUESTS
        target = f"<= {n + slack} billed, <= {MAX_DM_REQUESTS} DM req"
    met = met and ok_store and r["dm_events_new"] == n
    met = met and r["dm_events_read"] == world.dm_events_read()
    return Outcome(name, r["dm_events_new"], r["dm_events_read"], billable, r["usd"],
                   r["requests"], len(pages), met, target, pages, ok_store)


def fresh_profile(home: str, now: datetime) -> tuple[dict[str, str], Paths, SandboxWorld,
                                                    list[str]]:
    env = dict(os.environ, DMTOOL_HOME=home, NO_COLOR="1")
    for var in ("DMTOOL_PROFILE", "X_API_KEY", "X_API_SECRET", "X_ACCESS_TOKEN",
                "X_ACCESS_TOKEN_SECRET"):
        env.pop(var, None)
    env["DMTOOL_NOW"] = fmt(now) or ""
    if dmtool(env, "config", "set", "backend", "sandbox").returncode != 0:
        raise SystemExit("cannot configure the sandbox profile")
    paths = Paths.resolve("default", env)
    world = SandboxWorld.create(paths.sandbox_file)
    world.set_me(*SANDBOX_ME)
    people = [world.add_user(f"person{i}", f"Person {i}") for i in range(PEOPLE)]
    return env, paths, world, people


def run(seed: int, history: int, burst: int) -> list[Outcome]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="dmtool-bench-") as home:
        now = START
        env, paths, world, people = fresh_profile(home, now)
        add_events(world, rng, people, spread(rng, history, now - timedelta(days=10), now))
        world.reset_requests_log()
        outcomes = [measure("first sync", history, sync(env), world, paths)]
        outcomes[0].at = f"{now:%m-%d %H:%M}"

        for sc in SCENARIOS:
            times, later = sc.arrivals(rng, now, burst)
            add_events(world, rng, people, times)
            now = later
            env["DMTOOL_NOW"] = fmt(now) or ""
            world.reset_requests_log()
            outcomes.append(measure(sc.name, len(times), sync(env), world, paths, sc.public_due))
            outcomes[-1].at = f"{now:%m-%d %H:%M}"
        return outcomes


@dataclass
class CronDay:
    name: str
    per_day: int
    new: int = 0
    read: int = 0
    billable: int = 0
    requests: int = 0
    syncs: int = 0
    usd: float = 0.0


def cron_day(seed: int, name: str, per_day: int, history: int) -> CronDay:
    """A 15-minute cron for one UTC day (00:00 to 23:45), after a first sync
    of the account's history the evening before."""
    rng = random.Random(seed)
    day = CronDay(name, per_day)
    with tempfile.TemporaryDirectory(prefix="dmtool-cron-") as home:
        start = START.replace(hour=0, minute=0) + timedelta(days=1)
        now = start - timedelta(minutes=15)
        env, paths, world, people = fresh_profile(home, now)
        add_events(world, rng, people, spread(rng, history, now - timedelta(days=10), now))
        sync(env)
        arrivals = sorted(spread(rng, per_day, start - timedelta(minutes=15),
                                 start + timedelta(days=1) - timedelta(minutes=15)))
        for k in range(96):
            last, now = now, start + timedelta(minutes=15 * k)
            add_events(world, rng, people, [t for t in arrivals if last <= t < now])
            env["DMTOOL_NOW"] = fmt(now) or ""
            r = sync(env)
            day.syncs += 1
            day.new += r["dm_events_new"]
            day.read += r["dm_events_read"]
            day.billable += r["dm_events_billable"]
            day.requests += r["requests"]
            day.usd += r["usd"]
        if not stored_ok(paths, world):
            raise SystemExit(f"cron {name}: the store does not match the sandbox")
    return day


def line(o: Outcome, trace: bool) -> str:
    text = (f"  {o.name:<23} {o.at}  new {o.new:>3}  read {o.read:>3}  billed {o.billable:>3}"
            f"  ${o.usd:>6.3f}  requests {o.requests:>2} (DM {o.dm_requests:>2})"
            f"  target {o.target:<31} {'met' if o.met else 'MISSED'}"
            f"{'' if o.store_ok else '  (store does not match the sandbox!)'}")
    if trace:
        text += "\n      pages (asked:returned) " + " ".join(f"{a}:{b}" for a, b in o.pages)
    return text


def table(runs: list[list[Outcome]]) -> None:
    def span(values: list[int]) -> str:
        lo, hi = min(values), max(values)
        return f"{lo}" if lo == hi else f"{lo}-{hi}"

    print(f"{'scenario':<23} {'new':>4} {'read - new':>16} {'billed - new':>16} {'requests':>9} "
          f"{'DM requests':>16}  met")
    print(f"{'':<23} {'':>4} {'min/mean/max':>16} {'min/mean/max':>16} {'':>9} "
          f"{'min/mean/max':>16}")
    for i, first in enumerate(runs[0]):
        row = [r[i] for r in runs]
        extra = [o.read - o.new for o in row]
        billed = [o.billable - o.new for o in row]
        dm = [o.dm_requests for o in row]
        print(f"{first.name:<23} {span([o.new for o in row]):>4} "
              f"{min(extra):>5}/{statistics.mean(extra):>5.1f}/{max(extra):>4} "
              f"{min(billed):>5}/{statistics.mean(billed):>5.1f}/{max(billed):>4} "
              f"{span([o.requests for o in row]):>9} "
              f"{min(dm):>5}/{statistics.mean(dm):>5.1f}/{max(dm):>4}  "
              f"{sum(o.met for o in row)}/{len(row)}")


CRON = {"quiet": 0, "20": 20, "500": 500}


def cron_table(days: list[CronDay]) -> None:
    print("\nA 15-minute cron, one UTC day (96 syncs), after a first sync of the history:")
    print(f"  {'account':<18} {'new':>4} {'read':>6} {'billed':>6} {'requests':>9} {'$/day':>8}")
    for d in days:
        label = "quiet (0 DMs/day)" if d.per_day == 0 else f"{d.per_day} DMs/day"
        print(f"  {label:<18} {d.new:>4} {d.read:>6} {d.billable:>6} {d.requests:>9} "
              f"{d.usd:>8.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=1, help="run this many seeds from --seed on")
    ap.add_argument("--history", type=int, default=300)
    ap.add_argument("--burst", type=int, default=250, help="DMs in each burst scenario")
    ap.add_argument("--trace", action="store_true", help="show each DM request's page")
    ap.add_argument("--cron", default="quiet,20,500",
                    help="the accounts of the cron day: quiet, 20, 500 (comma-separated)")
    ap.add_argument("--no-cron", action="store_true", help="skip the day of a 15-minute cron")
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
    if not args.no_cron:
        names = [n.strip() for n in args.cron.split(",") if n.strip()]
        unknown = [n for n in names if n not in CRON]
        if unknown:
            raise SystemExit(f"--cron takes {', '.join(CRON)}, not {', '.join(unknown)}")
        cron_table([cron_day(args.seed, n, CRON[n], args.history) for n in names])
    sys.exit(1 if missed_total else 0)


if __name__ == "__main__":
    main()
