"""`dmtool demo`: a narrated walk through the whole flow on the sandbox X.

Each step runs the real command in a subprocess, exactly as a user would type
it, so the demo shows true output and exit codes and proves the flow end to end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from dmtool.errors import DmtoolError
from dmtool.paths import Paths

PROFILE = "demo"
SIGNATURE = "Alex at Demo Studio"
# A small X budget, to show it: the walk costs about $0.14 on the sandbox, and
# no request's worst case may pass it, so it leaves room for a few more syncs
# and sends afterwards (tests/test_demo.py checks the walk stays within it).
BUDGET = {"x.budget.day_usd": 1.0, "x.budget.month_usd": 5.0}

REPLY = ("Hi Maya, yes: the printed workbook ships to Canada (about a week). For three people "
         "there is a group rate; I'll send it with the schedule this week. – Alex at Demo Studio")
COLD = "Hi Quinn! Thanks for following. Our spring workshop is open, want the details?"


@dataclass
class Step:
    say: str
    args: list[str]
    expect: tuple[int, ...] = (0,)


def reset_profile(environ: dict[str, str]) -> Paths:
    """Remove the demo profile's files and seed a fresh sandbox world."""
    from dmtool.config import Config
    from dmtool.x.sandbox import seed_demo_world

    paths = Paths.resolve(PROFILE, environ)
    for d in (paths.config_dir, paths.data_dir, paths.state_dir):
        shutil.rmtree(d, ignore_errors=True)
    paths.ensure()
    cfg = Config.load(paths.config_file)
    cfg.set("backend", "sandbox")
    cfg.set("identity.names", SIGNATURE)
    for key, value in BUDGET.items():
        cfg.set(key, str(value))
    seed_demo_world(paths.sandbox_file)
    return paths


def _config_changes(paths: Paths) -> list[str]:
    from dmtool.config import Config

    ours = {"backend": "sandbox", "identity.names": [SIGNATURE], **BUDGET}
    try:
        values = Config.load(paths.config_file).values
    except DmtoolError:
        return ["a config.toml dmtool cannot read"]
    changed = sorted(k for k in set(values) | set(ours) if values.get(k) != ours.get(k))
    return [f"config ({', '.join(changed)})"] if changed and paths.config_file.exists() else []


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def user_changes(environ: dict[str, str]) -> list[str]:
    """What the demo profile holds that the demo did not make: drafts, contacts
    outside the demo's cast, settings. Empty for a fresh or untouched profile."""
    from dmtool.store import contacts as cstore
    from dmtool.store import drafts as dstore
    from dmtool.store import open_store
    from dmtool.x.sandbox.cast import DEMO_CAST

    paths = Paths.resolve(PROFILE, environ)
    changes = _config_changes(paths)
    if not paths.db_file.exists():
        return changes
    cast = {p["username"].lower() for p in DEMO_CAST.values()}
    try:
        store = open_store(paths.db_file)
    except Exception:  # noqa: BLE001 - whatever is wrong with it, it is not the demo's
        return [*changes, "a store dmtool cannot read"]
    try:
        drafts = [d for d in dstore.list_drafts(store.conn, None)
                  if not (d.text == REPLY and d.handle.lower() == DEMO_CAST["customer"]["username"])]
        contacts = [r["handle"] for r in cstore.summaries(store.conn)
                    if str(r["handle"]).lower() not in cast]
    finally:
        store.close()
    if drafts:
        changes.insert(0, _plural(len(drafts), "draft"))
    if contacts:
        changes.insert(1 if drafts else 0, _plural(len(contacts), "contact"))
    return changes


def run_demo(*, interactive: bool, write: Callable[[str], None],
             environ: dict[str, str] | None = None,
             confirm_reset: Callable[[list[str]], bool] | None = None) -> None:
    """The tour. On a terminal (`confirm_reset` given), a demo profile holding
    work of yours is wiped only after you say so; off a terminal it is reset
    without asking, as the README runs it unattended."""
    env = dict(os.environ if environ is None else environ)
    env.pop("DMTOOL_PROFILE", None)
    env.pop("DMTOOL_NOW", None)
    # The demo's data never goes anywhere but its own SQLite file.
    for var in ("DMTOOL_DATABASE_URL", "DMTOOL_SANDBOX_DATABASE_URL", "DMTOOL_SANDBOX_FILE"):
        env.pop(var, None)
    if confirm_reset is not None:
        changes = user_changes(env)
        if changes and not confirm_reset(changes):
            write("Nothing was changed: the demo profile is as you left it.")
            return
    reset_profile(env)
    base = [sys.executable, "-m", "dmtool", "--profile", PROFILE]

    def step(s: Step) -> None:
        write(f"\n{s.say}\n$ dmtool --profile demo {' '.join(_quote(a) for a in s.args)}")
        code = subprocess.run(base + s.args, env=env,
                              stdin=None if interactive else subprocess.DEVNULL).returncode
        if code not in s.expect:
            raise DmtoolError(f"demo step failed: dmtool {' '.join(s.args)} exited {code}")

    write("This is the dmtool demo, on the built-in sandbox X: no account, no network.\n"
          "In it: Maya (a customer who DMed you), Theo (you had a public exchange), Quinn\n"
          "(follows you, never engaged) and Sam (wrote STOP).")
    step(Step("1. Sync pulls DMs, mentions and your replies, and records consent evidence.",
              ["sync"]))
    step(Step("2. The inbox shows who is waiting for a reply.", ["inbox"]))
    step(Step("3. May I DM Maya? She wrote to you, so yes.", ["check", "@maya_builds"]))
    step(Step("   Theo? You answered his mention publicly: yes, as a first contact.",
              ["check", "@theo_writes"]))
    step(Step("   Sam wrote STOP: dmtool will not DM him again until he writes START.",
              ["check", "@sam_stops"], expect=(3,)))
    step(Step("   Quinn only follows you. Add him to your contacts: adding is not consent either.",
              ["contacts", "add", "@quiet_quinn", "--name", "Quinn Park", "--tag", "follower"]))
    step(Step("   So dmtool says no, and says what would change that.",
              ["check", "@quiet_quinn"], expect=(3,)))
    step(Step("4. Read Maya's conversation.", ["thread", "@maya_builds"]))
    step(Step("5. Draft one reply, for one person. dmtool lints it as you go.",
              ["draft", "@maya_builds", REPLY]))
    listed = subprocess.run(base + ["drafts", "list", "--status", "draft", "--json"], env=env,
                            capture_output=True, text=True, stdin=subprocess.DEVNULL)
    draft_id = str(json.loads(listed.stdout)[-1]["id"])
    step(Step("6. Review it: approving records what you approved and when.",
              ["review", draft_id, "--approve"]))
    send_args = ["send", draft_id] if interactive else ["send", draft_id, "--yes"]
    step(Step("7. Send it: the policy and lint run again, then exactly one DM goes out."
              + (" Answer y to send." if interactive else ""), send_args))
    shown = subprocess.run(base + ["drafts", "show", draft_id, "--json"], env=env,
                           capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if json.loads(shown.stdout)["status"] != "sent":  # you answered no: that is your call
        write(f"\nNothing was sent: you said no, and the draft stays approved.\n"
              f"  dmtool --profile demo send {draft_id}     sends it when you are ready\n"
              "  dmtool --profile demo inbox\n"
              "The demo stops here; `dmtool demo` runs it again from the start.")
        return
    step(Step("8. A cold DM to Quinn is refused before you even get to review it.",
              ["draft", "@quiet_quinn", COLD], expect=(3,)))
    step(Step("9. The digest: what came in since last time (cron mails it only when non-empty).",
              ["digest", "--peek"]))
    step(Step("10. Everything is in the audit log.", ["log", "--limit", "8"]))
    step(Step("11. What it cost on X (pay-per-use): the demo set a small budget, and dmtool\n"
              "    stops before a request that could pass it.", ["usage", "--days", "1"]))
    write("\nThat's the flow. The demo profile stays on the sandbox: try\n"
          "  dmtool --profile demo inbox\n"
          "  dmtool --profile demo draft @theo_writes \"Hi Theo, ...\"\n"
          "and `dmtool demo` again resets it.")


def _quote(a: str) -> str:
    if a and all(ch.isalnum() or ch in "@-_./=" for ch in a):
        return a
    return json.dumps(a, ensure_ascii=False)
