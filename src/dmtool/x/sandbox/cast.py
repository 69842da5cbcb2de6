"""Who lives in a sandbox world: the account a new sandbox profile gets, and
the cast and script of `dmtool demo`."""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dmtool.x.sandbox.world import SandboxWorld

# The account a new sandbox profile logs in as (dmtool.appstate.ensure_sandbox_world).
SANDBOX_ME = ("1000000000000000001", "you", "You (sandbox)")

DEMO_ME = {"user_id": "1490000000000000001", "username": "dmtool_demo", "name": "Demo Studio"}

# key -> person. Keys are what the demo refers to; handles are labels.
DEMO_CAST: dict[str, dict[str, Any]] = {
    "customer": {
        "user_id": "1490000000000000101",
        "username": "maya_builds",
        "name": "Maya Okafor",
    },
    "exchange": {
        "user_id": "1490000000000000102",
        "username": "theo_writes",
        "name": "Theo Lindqvist",
    },
    "follower": {
        "user_id": "1490000000000000103",
        "username": "quiet_quinn",
        "name": "Quinn Park",
        "follows_me": True,
    },
    "stop": {"user_id": "1490000000000000104", "username": "sam_stops", "name": "Sam Reyes"},
    "closed": {
        "user_id": "1490000000000000105",
        "username": "closed_carla",
        "name": "Carla Mendes",
        "dms_closed": True,
    },
}

# (hours ago, what, who, text). "mention"/"reply" are public posts; a reply
# answers the latest post in the script by that person.
DEMO_SCRIPT: list[tuple[float, str, str, str]] = [
    (20 * 24, "dm_in", "customer", "Hi! Is the spring workshop still open for sign-ups?"),
    (20 * 24 - 2, "dm_out", "customer", "It is! I'll send the schedule once it's final."),
    (9 * 24, "dm_in", "stop", "Thanks for the workshop info last month."),
    (
        6 * 24,
        "mention",
        "exchange",
        "@dmtool_demo your thread on pricing small workshops was really useful, thank you",
    ),
    (
        6 * 24 - 3,
        "reply",
        "exchange",
        "@theo_writes glad it helped! Happy to share the numbers behind it.",
    ),
    (4 * 24, "mention", "closed", "@dmtool_demo is there a recording of the last session?"),
    (4 * 24 - 1, "reply", "closed", "@closed_carla yes, I can send you the link."),
    (3 * 24, "dm_in", "stop", "STOP"),
    (26, "dm_in", "customer", "Hi again, do you ship the printed workbook to Canada?"),
    (5, "dm_in", "customer", "Also, is there a group discount for three people?"),
]


def seed_demo_world(path: Path | str, *, now: datetime | None = None) -> SandboxWorld:
    """Reset `path` to the demo world: you, five people, a few DMs and public posts."""
    world = SandboxWorld.create(path)
    base = now or datetime.now(UTC)
    with world.transaction():
        world.set_me(DEMO_ME["user_id"], DEMO_ME["username"], DEMO_ME["name"])
        for person in DEMO_CAST.values():
            world.add_user(
                person["username"],
                person["name"],
                user_id=person["user_id"],
                dms_closed=person.get("dms_closed", False),
                follows_me=person.get("follows_me", False),
            )
        last_post: dict[str, str] = {}
        for hours_ago, what, who, text in sorted(DEMO_SCRIPT, key=lambda s: -s[0]):
            at = base - timedelta(hours=hours_ago)
            other = DEMO_CAST[who]["user_id"]
            if what == "dm_in":
                world.incoming_dm(other, text, at=at)
            elif what == "dm_out":
                world.outgoing_dm(other, text, at=at)
            elif what == "mention":
                last_post[who] = world.add_post(other, text, at=at)
            elif what == "reply":
                world.add_post(
                    DEMO_ME["user_id"],
                    text,
                    at=at,
                    in_reply_to_user_id=other,
                    reply_to_post_id=last_post.get(who),
                )
            else:  # pragma: no cover - a typo in DEMO_SCRIPT
                raise ValueError(f"unknown demo step {what!r}")
    with contextlib.suppress(OSError):
        os.chmod(world.path, 0o600)
    return world
