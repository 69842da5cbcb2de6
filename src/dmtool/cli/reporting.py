"""Which commands report, and so take `--json`: the one place that says so.

cli.md: `--json` on every command that reads or reports, and then one JSON
document on stdout, nothing else. Every command in the tree is a reporting
command unless it is listed below. tests/test_json_everywhere.py walks the
tree the way docs/commands.md is generated and holds every reporting command
to the rule, so a new command is covered the day it is added.
"""

from __future__ import annotations

from dmtool.errors import UsageError

# Actions change your record and say so in one line on stderr. Their stdout
# stays empty (the test checks it), so there is nothing for a script to parse:
# the exit code is the whole result.
ACTIONS: dict[str, str] = {
    "auth logout": "removes the saved credentials",
    "claim": "claims a conversation for a while",
    "release": "ends a claim on a conversation",
    "config set": "changes one setting",
    "contacts block": "adds to the do-not-contact list",
    "contacts unblock": "takes off the do-not-contact list",
    "contacts engage": "records consent evidence",
    "contacts forget": "deletes a contact",
    "contacts note": "adds a note",
    "contacts optout": "records an opt-out, or settles an opt-out review",
    "contacts tag": "adds or removes tags",
    "db backup": "writes a copy of the store to a file",
    "profiles add": "creates a profile",
    "db restore": "replaces the store with a backup",
    "done": "marks a conversation done",
    "reopen": "reopens a conversation",
    "sandbox receive": "puts a DM into the sandbox X, for the next sync to read",
    "snooze": "hides a conversation until a time",
    "unsnooze": "shows a snoozed conversation again",
    "team add": "adds a member or changes a role",
    "team remove": "removes a member",
    "templates add": "saves a template",
    "templates remove": "deletes a template",
}

# For a person at a terminal, with no result a script could use.
EXEMPT: dict[str, str] = {
    "auth login": "interactive: an authorize URL to open and the redirect (or keys) typed "
                  "back; `auth status --json` reports the outcome",
    "demo": "a guided tour that tells a story on its own sandbox profile, not data",
    "team key set": "interactive: a secret typed with hidden input (or piped), kept in the "
                    "keyring; `auth status --json` says where the key is found",
}


# Commands whose `--format json` asks for JSON output (the same as `--json`),
# so that it makes errors JSON too; elsewhere `--format` names an input format.
FORMAT_IS_OUTPUT = frozenset({"digest", "contacts export"})


def with_json(fmt: str | None, json_: bool, default: str) -> str:
    """The output format of a command that has `--format`: `--json` is
    `--format json`, and `--json` with another format is a usage error."""
    if json_:
        if fmt not in (None, "json"):
            raise UsageError(f"--json and --format {fmt} disagree",
                             hint="--json is the same as --format json: give one of them")
        return "json"
    return default if fmt is None else fmt
