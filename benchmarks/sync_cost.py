"""What a sync costs on X: DM events read (billed one by one) and requests.

    python benchmarks/sync_cost.py [--seed 7] [--repeat 1] [--history 300]

Runs `dmtool sync --json` on the sandbox X in a throwaway DMTOOL_HOME (no
network, no account). A history of ~300 DM events at random times over the
last 10 days is synced first; then three scenarios, each on top of the last:

- "no new events" (10 minutes later, within sync.public_every_minutes):
  target 1 request, at most 2 events read;
- "3 new events" at random times in the next 15 minutes: target reads <= new + 5;
- "250 new events" at random times over the next 6 hours: target reads <= new + 5;
- "no new, public due" (20 minutes later): the mentions and own-posts check is
  due, so target 3 requests (DMs, mentions, posts), at most 2 events read.

Each line shows the new events, the DM events read, the requests and whether
the targets are met; every scenario also checks that the store holds exactly
the sandbox's events. --repeat N runs N seeds and summarises.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
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


def dmtool(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dmtool", *args], env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, check=False)


def sync(env: dict[str, str]) -> dict[str, Any]:
    p = dmtool(env, "sync", "--json")
    if p.returncode != 0:
        raise SystemExit(f"dmtool sync failed ({p.returncode}): {p.stderr.strip()}")
    return json.loads(p.stdout)  # type: ignore[no-any-return]


def add_events(world: SandboxWorld, rng: random.Random, people: list[str], n: int,
               start: datetime, end: datetime) -> None:
    """n DMs at random (irregular) times in [start, end), created in time order as on X."""
    span = (end - start).total_seconds()
    times = sorted(start + timedelta(seconds=rng.uniform(0, span)) for _ in range(n))
    with world.transaction():
        for at in times:
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


def run(seed: int, history: int, verbose: bool) -> list[bool]:
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
        add_events(world, rng, people, history, now - timedelta(days=10), now)
        first = sync(env)
        if verbose:
            print(f"seed {seed}: history of {history} events synced "
                  f"({first['dm_events_read']} read, {first['requests']} requests)")

        results = []
        for name, n, minutes in (("no new events", 0, 10), ("3 new events", 3, 15),
                                 ("250 new events", 250, 360), ("no new, public due", 0, 20)):
            later = now + timedelta(minutes=minutes)
            add_events(world, rng, people, n, now, later)
            now = later
            env["DMTOOL_NOW"] = fmt(now) or ""
            world.reset_requests_log()
            r = sync(env)
            ok_store = stored_ok(paths, world)
            if n == 0:
                want = 3 if "public" in name else 1
                met = r["requests"] == want and r["dm_events_read"] <= 2
                target = f"{want} request{'s' if want > 1 else ''}, <= 2 read"
            else:
                met = r["dm_events_read"] <= n + 5
                target = f"<= {n + 5} read"
            met = met and ok_store and r["dm_events_new"] == n
            met = met and r["dm_events_read"] == world.dm_events_read()
            results.append(met)
            if verbose:
                print(f"  {name:<19} new {r['dm_events_new']:>3}  dm_events_read "
                      f"{r['dm_events_read']:>3}  requests {r['requests']:>2}  "
                      f"target {target:<21} {'met' if met else 'MISSED'}"
                      f"{'' if ok_store else '  (store does not match the sandbox!)'}")
        return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=1, help="run this many seeds from --seed on")
    ap.add_argument("--history", type=int, default=300)
    args = ap.parse_args()
    missed = 0
    for seed in range(args.seed, args.seed + args.repeat):
        res = run(seed, args.history, verbose=args.repeat == 1)
        missed += res.count(False)
        if args.repeat > 1:
            print(f"seed {seed}: {'all targets met' if all(res) else f'{res.count(False)} missed'}")
    if args.repeat > 1:
        print(f"{args.repeat} seeds, {missed} scenario(s) missed their target")
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
