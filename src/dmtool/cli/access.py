"""Which action (services/roles.py) each command is: the one table that says so.

cli/app.py wraps every command it loads so that, once its arguments are
parsed and before it does anything, the acting operator's role is checked
for the command's action (`guard`). tests/test_roles.py walks the generated
command list: a command missing here fails it, and docs/team.md shows the
table rendered from here (`markdown`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

# Commands that act on this machine's files only (`local`) run for anyone,
# member or not. `config get` and `config set` are `local` for a machine's own
# keys, and check `read` and `config` themselves for a team's key (cli/config_cmd.py).
COMMAND_ACTIONS: dict[str, str] = {
    "auth login": "local", "auth logout": "local", "auth status": "local",
    "check": "read", "claim": "claim",
    "config get": "local", "config path": "local", "config set": "local", "config show": "read",
    "contacts add": "record", "contacts block": "consent", "contacts engage": "consent",
    "contacts export": "read", "contacts forget": "forget", "contacts import": "consent",
    "contacts list": "read", "contacts note": "note", "contacts optout": "consent",
    "contacts show": "read", "contacts tag": "record", "contacts unblock": "consent",
    "db backup": "read", "db check": "local", "db migrate-to": "read", "db path": "local",
    "db restore": "restore",
    "demo": "local", "digest": "read", "done": "triage", "draft": "draft",
    "drafts discard": "draft", "drafts edit": "draft", "drafts list": "read",
    "drafts show": "read", "import archive": "consent", "inbox": "read", "log": "read",
    "paths": "local", "profiles add": "local", "profiles list": "local", "reopen": "triage",
    "release": "claim", "reply": "draft", "report": "read", "review": "approve", "sandbox receive": "local",
    "search": "read", "send": "send", "snooze": "triage", "sync": "sync",
    "team add": "team", "team key new": "team", "team key set": "local", "team list": "read",
    "team remove": "team", "team whoami": "local",
    "templates add": "draft", "templates list": "read", "templates remove": "draft",
    "templates show": "read", "thread": "read", "unsnooze": "triage", "usage": "read",
}

# Why a command is `local`, for docs/team.md.
LOCAL_WHY: dict[str, str] = {
    "auth login": "this machine's X credentials; on a team store the OAuth 2.0 login (the "
                  "shared credentials) needs owner",
    "auth logout": "this machine's X credentials",
    "auth status": "this machine's X credentials (on a team store with shared ones: a member's "
                   "key opens them)",
    "config path": "prints a path",
    "config get": "a machine's own key; a team key on a team store needs a member",
    "config set": "a machine's own key; a team key on a team store needs owner",
    "db check": "checks the file, also when it is too damaged to open",
    "db path": "prints a path",
    "demo": "its own sandbox profile",
    "paths": "prints paths",
    "profiles add": "a new profile of this machine",
    "profiles list": "this machine's profiles",
    "sandbox receive": "the sandbox X's file",
    "team whoami": "says who you are, member or not",
    "team key set": "keeps a key in this machine's OS keyring",
}

# A command whose store may be too damaged to open runs anyway: nobody's role
# can be read from it, and this command is how it is repaired.
REPAIRS = frozenset({"db restore"})


def action_of(path: str) -> str:
    """The action of a command; one missing from the table is the team's owners'
    (the test over the command list says which to add)."""
    return COMMAND_ACTIONS.get(path, "team")


def guard(callback: Callable[..., Any], path: str) -> Callable[..., Any]:
    """`callback` (a command's), checking the operator's role first."""

    @functools.wraps(callback)
    def checked(*args: Any, **kwargs: Any) -> Any:
        check(path)
        return callback(*args, **kwargs)

    checked.dmtool_action = action_of(path)  # type: ignore[attr-defined]
    return checked


def check(path: str) -> None:
    """The role check of the command running now (see guard). Nothing to
    check while no store exists: a new store has no team."""
    action = action_of(path)
    if action == "local":
        return
    from typer._click.globals import get_current_context

    from dmtool.cli.context import state
    from dmtool.services import roles

    st = state(get_current_context())  # type: ignore[arg-type]
    if not st.has_store:
        return
    if path in REPAIRS:
        from dmtool.errors import StoreDamaged

        try:
            st.store  # noqa: B018 - opening it is what may fail
        except StoreDamaged:
            return
    roles.require(st, action)


def markdown() -> str:
    """The table of docs/team.md: each command, its action and the roles that may run it."""
    from dmtool.services.roles import ACTION_TEXT, ROLES, roles_for

    rows = ["| command | action | who may run it |", "|---|---|---|"]
    for path, action in sorted(COMMAND_ACTIONS.items()):
        if action == "local":
            who = f"anyone, member or not: {LOCAL_WHY[path]}"
        elif set(roles_for(action)) == set(ROLES):
            who = "every member"
        else:
            who = ", ".join(roles_for(action))
        rows.append(f"| `{path}` | {action} | {who} |")
    rows += ["", "| action | what it covers |", "|---|---|"]
    rows += [f"| {a} | {text} |" for a, text in ACTION_TEXT.items()]
    return "\n".join(rows) + "\n"
