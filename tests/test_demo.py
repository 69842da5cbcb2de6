"""`dmtool demo` completes from a fresh install, offline, and does what it says."""

from __future__ import annotations

import json

from dmtool.paths import Paths
from dmtool.x.sandbox import DEMO_CAST, SandboxWorld


def test_demo_runs_unattended_end_to_end(run):
    r = run("demo", timeout=120)
    assert r.exit_code == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "sandbox" in r.stdout
    for step in ("sync", "inbox", "check", "draft", "review", "send", "digest"):
        assert f"$ dmtool --profile demo {step}" in r.stdout
    # exactly one DM went out, to the customer, and the cold DM was refused
    world = SandboxWorld(Paths.resolve("demo").sandbox_file)
    maya, quinn = DEMO_CAST["customer"]["user_id"], DEMO_CAST["follower"]["user_id"]
    sent_to_maya = [e for e in world.dms_with(maya) if e.get("sender_id") != maya]
    assert len(sent_to_maya) == 2  # the old reply in the script, plus the demo's send
    assert world.dms_with(quinn) == []
    assert "E_NO_CONSENT" in r.stderr
    log = json.loads(run("--profile", "demo", "log", "--json").stdout)
    assert [e["action"] for e in log].count("sent") == 1


def test_demo_resets_the_demo_profile(run):
    assert run("demo", timeout=120).exit_code == 0
    assert run("demo", timeout=120).exit_code == 0
    drafts = json.loads(run("--profile", "demo", "drafts", "list", "--json").stdout)
    assert len(drafts) == 1  # the second run started from scratch
    # and the default profile was never touched
    assert not Paths.resolve("default").db_file.exists()
