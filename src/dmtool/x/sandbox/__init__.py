"""A fake X at the HTTP level, for `dmtool demo`, tests and benchmarks.

`SandboxAdapter` is a requests transport adapter mounted on tweepy's own
session, so the real tweepy client builds the requests and parses the answers:
only the network is replaced. It answers the endpoints dmtool uses with the
shapes, status codes, headers and RFC 7807 problems X sends (see
shared/spec/x-api.md; checked against X's OpenAPI document in the tests).

Its state is one JSON file. Every request and every `SandboxWorld` helper
locks the file (dmtool.locks, on a sibling `.lock` file), re-reads it, changes it
and writes it back atomically, so several processes (a cron sync, a send, the
test itself) can share one world.

Order and ids: ids come from a monotonically increasing snowflake-like counter,
and lists are served newest first by id, as X does. Create events in
chronological order (as `seed_demo_world` does) so ids and `created_at` agree.
Like X, the DM endpoints only return events from the last 30 days.

Time is real UTC now, unless the world has a fixed clock (`set_clock`) or
DMTOOL_NOW is set.

The modules, each readable on its own:

- `state`: the state file, its lock, the clock, ids and lookups (shared)
- `world`: `SandboxWorld`, to set a world up and inspect it
- `cast`: the account of a new sandbox profile, the demo's cast and script
- `params`: what a request may say (allowed fields, parameter checks, tokens)
- `replies`: what X answers (replies, problem bodies, faults, user objects)
- `server`: routing and the endpoints
- `adapter`: the requests transport adapter (the only part that needs requests)

The adapter is imported on first use, so setting up a world never loads requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dmtool.x.sandbox.cast import DEMO_CAST, DEMO_ME, DEMO_SCRIPT, SANDBOX_ME, seed_demo_world
from dmtool.x.sandbox.state import State, conversation_id
from dmtool.x.sandbox.world import SandboxWorld

if TYPE_CHECKING:
    from dmtool.x.sandbox.adapter import SandboxAdapter, mount_sandbox

# Request-log entries kept in the file; the totals count everything. Read here
# by the adapter on every request, so this one setting governs (tests lower it).
REQUEST_LOG_KEEP = 2000

__all__ = ["DEMO_CAST", "DEMO_ME", "DEMO_SCRIPT", "REQUEST_LOG_KEEP", "SANDBOX_ME", "SandboxAdapter",
           "SandboxWorld", "State", "conversation_id", "mount_sandbox", "seed_demo_world"]


def __getattr__(name: str) -> Any:
    if name in ("SandboxAdapter", "mount_sandbox"):
        from dmtool.x.sandbox import adapter

        return getattr(adapter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
