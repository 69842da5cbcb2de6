"""`--json` means the same everywhere (cli.md): every command that reports takes
it and then prints exactly one JSON document on stdout, nothing else.

The commands come from the same walk that generates docs/commands.md, so a
command added later is held to the rule without touching this file, unless
it needs arguments (ARGS) or is an action or exemption (dmtool/cli/reporting.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dmtool.cli.reference import leaf_commands
from dmtool.cli.reporting import ACTIONS, EXEMPT
from dmtool.paths import Paths
from tests.conftest import Result
from tests.test_archive import files, folder
from tests.xworld import ALICE, BOB, ME, Clock, sync

COMMANDS: dict[str, Any] = dict(leaf_commands())
REPORTING = sorted(set(COMMANDS) - set(ACTIONS) - set(EXEMPT))


def takes_json(path: str) -> bool:
    return any("--json" in getattr(p, "opts", ()) for p in COMMANDS[path].params)


def test_every_command_is_reporting_or_listed_with_a_reason():
    listed = set(ACTIONS) | set(EXEMPT)
    assert not set(ACTIONS) & set(EXEMPT)
    assert listed <= set(COMMANDS), f"listed but not a command: {sorted(listed - set(COMMANDS))}"
    assert all(reason.strip() for reason in [*ACTIONS.values(), *EXEMPT.values()])
    missing = [p for p in REPORTING if not takes_json(p)]
    assert not missing, (f"reporting commands without --json: {missing}: add --json, or list "
                         "them in dmtool/cli/reporting.py with the reason")
    # An action that grows --json reports something: it is no longer an action.
    assert not [p for p in listed if takes_json(p)]
    assert len(EXEMPT) <= 3  # exemptions stay few and justified
    # the walk sees the lazily loaded commands, nested ones included
    assert {"digest", "report", "inbox", "sync", "send", "contacts list", "db check"} <= set(
        REPORTING)


class Populated:
    """A sandbox profile with something in every table a command reads."""

    def __init__(self, cli: Callable[..., Result], clock: Clock, world: Any, tmp: Path) -> None:
        world.incoming_dm(ALICE, "Hi! Could you tell me more about the beta?",
                          at=clock.ago(hours=3))
        world.incoming_dm(BOB, "Hello, is there a student price?", at=clock.ago(hours=2))
        sync(cli)
        assert cli("templates", "add", "thanks", "Thanks {first_name}, more soon.").exit_code == 0
        assert cli("contacts", "tag", "alice", "beta").exit_code == 0
        texts = {"show": "Thanks Alice, the beta opens on Monday.",
                 "edit": "Thanks Alice, I will send the details tomorrow.",
                 "discard": "Thanks Alice, one more thing about the beta.",
                 "review": "Hi Bob, yes: students get half price.",
                 "send": "Hi Alice, the beta opens Monday; the invite comes by DM."}
        self.drafts: dict[str, str] = {}
        for what, text in texts.items():
            r = cli("draft", "bob" if what == "review" else "alice", text, "--json")
            assert r.exit_code == 0, r
            self.drafts[what] = str(r.json()["id"])
        assert cli("review", self.drafts["send"], "--approve").exit_code == 0
        self.csv = tmp / "people.csv"
        self.csv.write_text("handle,name\ncarol,Carol C\n", encoding="utf-8")
        self.archive = folder(tmp / "archive", files(me=ME))
        self.moved = tmp / "moved.db"  # where `db migrate-to` copies the store


# What each reporting command needs besides --json on that profile. A new
# command with required arguments fails below until it has an entry.
ARGS: dict[str, Callable[[Populated], list[str]]] = {
    "check": lambda p: ["alice"],
    "db migrate-to": lambda p: [str(p.moved)],
    "config get": lambda p: ["backend"],
    "contacts add": lambda p: ["zoe"],
    "contacts import": lambda p: [str(p.csv)],
    "contacts show": lambda p: ["alice"],
    "draft": lambda p: ["bob", "Hi Bob, thanks for asking about the price."],
    "drafts discard": lambda p: [p.drafts["discard"]],
    "drafts edit": lambda p: [p.drafts["edit"], "Thanks Alice, details tomorrow."],
    "drafts show": lambda p: [p.drafts["show"]],
    "import archive": lambda p: [str(p.archive)],
    "reply": lambda p: ["bob", "Hi Bob, the student price is on the website.", "--yes"],
    "review": lambda p: [p.drafts["review"], "--approve"],
    "search": lambda p: ["price"],
    "send": lambda p: [p.drafts["send"], "--yes"],
    "templates show": lambda p: ["thanks"],
    "thread": lambda p: ["alice"],
}


@pytest.fixture
def populated(cli, clock, world, tmp_path) -> Populated:
    return Populated(cli, clock, world, tmp_path)


def one_document(out: str) -> Any:
    """The whole of stdout is one JSON document (json.loads refuses anything more)."""
    assert out.strip(), "nothing on stdout"
    return json.loads(out)


def test_every_reporting_command_prints_one_json_document(cli, populated):
    assert set(ARGS) <= set(REPORTING), sorted(set(ARGS) - set(REPORTING))
    for path in REPORTING:
        args = [*path.split(), *ARGS.get(path, lambda p: [])(populated), "--json"]
        r = cli(*args)
        assert r.exit_code != 2 or path in ARGS, (
            f"`dmtool {path} --json` is a usage error ({r.stderr.strip()}): if it needs "
            "arguments, give them in ARGS")
        assert r.exit_code == 0, (path, r)
        try:
            one_document(r.stdout)
        except (ValueError, AssertionError) as e:
            pytest.fail(f"`dmtool {' '.join(args)}`: stdout is not one JSON document ({e}): "
                        f"{r.stdout!r}")


def test_when_they_fail_stdout_stays_clean_and_the_error_is_json(cli, populated):
    """A broken config.toml: every command that needs it fails with exit 4, the
    JSON error on stderr and nothing at all on stdout; the rest still report."""
    Paths.resolve("default").config_file.write_text("[policy\n", encoding="utf-8")
    failed = set()
    for path in REPORTING:
        r = cli(*path.split(), *ARGS.get(path, lambda p: [])(populated), "--json")
        if r.exit_code == 0:
            one_document(r.stdout)
            continue
        failed.add(path)
        assert r.exit_code == 4 and r.stdout == "", (path, r)
        assert json.loads(r.stderr)["error"]["code"] == "E_CONFIG", (path, r)
    assert {"inbox", "report", "digest", "sync", "send"} <= failed


def test_actions_print_nothing_on_stdout(cli, populated, tmp_path):
    """What makes them actions: the exit code is the result, stdout stays empty."""
    run = {
        "auth logout": [], "config set": ["policy.daily_sends", "10"],
        "contacts block": ["dave"], "contacts unblock": ["dave"],
        "contacts engage": ["carol", "--evidence", "asked at the meetup to be DMed"],
        "contacts note": ["alice", "met at the meetup"], "contacts tag": ["alice", "vip"],
        "contacts optout": ["erin", "--yes"], "contacts forget": ["erin", "--yes"],
        "db backup": [str(tmp_path / "copy.db")], "db restore": [str(tmp_path / "copy.db"), "--yes"],
        "done": ["alice"], "reopen": ["alice"],
        "sandbox receive": ["carol", "Hi, it's Carol again"], "profiles add": ["work"],
        "snooze": ["alice", "3d"], "unsnooze": ["alice"],
        "templates add": ["hello", "Hello {first_name}"], "templates remove": ["hello"],
        "claim": ["alice", "--minutes", "10"], "release": ["alice"],
        "team add": ["sam", "--role", "viewer"], "team remove": ["sam"],
    }
    assert set(run) == set(ACTIONS)
    assert cli("contacts", "add", "carol").exit_code == 0
    assert cli("contacts", "add", "erin").exit_code == 0
    for path, args in run.items():
        r = cli(*path.split(), *args)
        assert r.exit_code == 0, (path, r)
        assert r.stdout == "" and r.stderr.strip(), (path, r)


def test_digest_json_is_format_json(cli, populated):
    a = cli("digest", "--json", "--peek")
    b = cli("digest", "--format", "json", "--peek")
    assert a.exit_code == b.exit_code == 0
    assert a.json() == b.json() and a.json()["inbound"]
    assert cli("digest", "--json", "--format", "json", "--peek").json() == a.json()
    for other in ("text", "markdown"):
        r = cli("digest", "--json", "--format", other)
        assert r.exit_code == 2 and r.stdout == ""
        assert json.loads(r.stderr)["error"]["code"] == "E_USAGE"
    assert "\nNew messages" in cli("digest", "--peek").stdout  # text stays the default


def test_export_json_is_format_json(cli, populated):
    a, b = cli("contacts", "export", "--json"), cli("contacts", "export", "--format", "json")
    assert a.exit_code == 0 and a.json() == b.json()
    assert cli("contacts", "export", "--json", "--format", "csv").exit_code == 2
    assert cli("contacts", "export").stdout.startswith("handle,")  # csv stays the default


def test_paths_of_one_thing_as_json(cli):
    assert cli("db", "path", "--json").json() == {"path": str(Paths.resolve("default").db_file)}
    assert cli("config", "path", "--json").json() == {
        "path": str(Paths.resolve("default").config_file)}
