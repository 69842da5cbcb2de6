"""`dmtool demo` completes from a fresh install, offline, and does what it says."""

from __future__ import annotations

import json
import os

from dmtool.paths import Paths
from dmtool.services.demo import user_changes
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
    assert user_changes(dict(os.environ)) == []  # all of it is the demo's own: no question

    # docs/guide.md, "Opt-out": a cast member writes STOP, sync reads it, check
    # refuses; "please stop messaging me" puts someone in review.
    r = run("--profile", "demo", "sandbox", "receive", "@maya_builds", "STOP")
    assert r.exit_code == 0 and r.stdout == "" and "--profile demo sync" in r.stderr
    r = run("--profile", "demo", "sandbox", "receive", "@theo_writes",
            "please stop messaging me")
    assert r.exit_code == 0
    synced = json.loads(run("--profile", "demo", "sync", "--json").stdout)
    assert synced["dm_events_new"] == 2 and synced["opted_out"] == ["maya_builds"]
    r = run("--profile", "demo", "check", "@maya_builds")
    assert r.exit_code == 3 and "E_OPTED_OUT" in r.stdout and "STOP" in r.stdout
    r = run("--profile", "demo", "check", "@theo_writes")
    assert r.exit_code == 3 and "E_OPTOUT_REVIEW" in r.stdout


def test_demo_resets_the_demo_profile(run):
    assert run("demo", timeout=120).exit_code == 0
    # work of yours on the demo profile is noticed (on a terminal the demo asks first)
    assert run("--profile", "demo", "contacts", "add", "@newbie").exit_code == 0
    assert run("--profile", "demo", "draft", "@theo_writes",
               "Hi Theo, Alex here: thanks for the kind words on the pricing thread.").exit_code == 0
    assert run("--profile", "demo", "config", "set", "policy.daily_sends", "10").exit_code == 0
    assert user_changes(dict(os.environ)) == ["1 draft", "1 contact", "config (policy.daily_sends)"]
    # off a terminal (as the README runs it) the demo resets without asking
    assert run("demo", timeout=120).exit_code == 0
    assert user_changes(dict(os.environ)) == []
    drafts = json.loads(run("--profile", "demo", "drafts", "list", "--json").stdout)
    assert len(drafts) == 1  # the second run started from scratch
    # and the default profile was never touched
    assert not Paths.resolve("default").db_file.exists()

