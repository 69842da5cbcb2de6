"""Who may do what on a shared store (issue 15).

A store with no team members behaves as it always has: everybody acts as
owner. Once it has members, every command asks `require(st, action)` before
it acts (cli/access.py says which action each command is): an operator who
is not a member is refused (E_NOT_A_MEMBER, exit 4), a member whose role does
not grant the action too (E_ROLE, exit 3, naming the roles that would).

Operator names are self-declared (dmtool.actor), so roles guard against
mistakes, not against a hostile member (docs/team.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dmtool.errors import NotAMember, TeamRefused

if TYPE_CHECKING:
    from dmtool.appstate import AppState

OWNER, APPROVER, DRAFTER, VIEWER, SERVICE = "owner", "approver", "drafter", "viewer", "service"
# The ladder, least first; `service` stands beside it (the cron host).
LADDER = (VIEWER, DRAFTER, APPROVER, OWNER)
ROLES = (*reversed(LADDER), SERVICE)

# Acts on this machine's files only (no shared store involved): anyone,
# member or not.
LOCAL = "local"

# The actions commands ask about, and what each means (refusals, docs/team.md).
ACTION_TEXT: dict[str, str] = {
    LOCAL: "acting on this machine's own files",
    "read": "reading the record (inbox, threads, contacts, drafts, the log, reports)",
    "draft": "writing, editing and discarding drafts and templates",
    "record": "adding and tagging contacts",
    "triage": "marking conversations done, reopening and snoozing them",
    "claim": "claiming conversations",
    "note": "adding notes",
    "approve": "reviewing and approving drafts",
    "send": "sending approved drafts and replies",
    "sync": "syncing with X (which also sends the automatic acknowledgements)",
    "consent": "recording consent, blocks and opt-outs, and importing contacts or archives",
    "forget": "forgetting contacts",
    "restore": "replacing the store with a backup",
    "team": "managing the team",
    "config": "changing the team's settings",
}
ACTIONS = tuple(ACTION_TEXT)

_VIEWER = frozenset({"read"})
_DRAFTER = _VIEWER | {"draft", "record", "triage", "claim", "note"}
_APPROVER = _DRAFTER | {"approve", "send", "sync"}
GRANTS: dict[str, frozenset[str]] = {
    VIEWER: _VIEWER,
    DRAFTER: _DRAFTER,
    APPROVER: _APPROVER,
    OWNER: frozenset(ACTIONS) - {LOCAL},
    # The cron host: sync (with its autoacks) and the digest; no drafting, no approving.
    SERVICE: frozenset({"read", "sync"}),
}


def roles_for(action: str) -> list[str]:
    """The roles that grant `action`, least first (the ladder, then service)."""
    return [r for r in (*LADDER, SERVICE) if action in GRANTS[r]]


def has_team(st: AppState) -> bool:
    """Whether the store has members (without one, everybody acts as owner)."""
    if not st.has_store:
        return False
    from dmtool.store import team

    return team.has_members(st.store.conn)


def role_of(st: AppState) -> str:
    """The acting operator's role: owner on a store without a team; NotAMember
    when the store has a team without them."""
    if not has_team(st):
        return OWNER
    from dmtool.store import team

    name, source = st.operator_source()
    found = team.member(st.store.conn, name) if name else None
    if found is None:
        raise _not_a_member(name, source)
    return found.role


def require(st: AppState, action: str) -> None:
    """Raise (E_NOT_A_MEMBER, E_ROLE) unless the acting operator may do `action`."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if action == LOCAL:
        return
    role = role_of(st)
    if action in GRANTS.get(role, frozenset()):
        return
    allowed = roles_for(action)
    name = st.operator()
    raise TeamRefused(
        f"not allowed: {name} is {_a(role)} on this store's team, and {ACTION_TEXT[action]} "
        f"needs the {_either(allowed)} role",
        hint="an owner can change your role: `dmtool team add "
             f"{name} --role {allowed[0]}` (`dmtool team list` shows the owners)",
        details=[{"operator": name, "role": role, "action": action, "roles": allowed}])


def allowed(st: AppState, action: str) -> bool:
    """Whether the acting operator may do `action` (False for a non-member)."""
    try:
        require(st, action)
    except (TeamRefused, NotAMember):
        return False
    return True


def _not_a_member(name: str | None, source: str) -> NotAMember:
    if name is None:
        return NotAMember("this store has a team, and dmtool cannot tell who you are",
                          hint="set DMTOOL_OPERATOR, or `dmtool config set operator.name NAME`")
    if source.startswith("database user"):
        hint = (f"the team trusts the database user (team.trust_db_user): an owner adds you "
                f"with `dmtool team add {name} --role drafter`")
    else:
        hint = (f"an owner adds you with `dmtool team add {name} --role drafter`; if you were "
                "added under another name, set DMTOOL_OPERATOR or `dmtool config set "
                "operator.name NAME` (`dmtool team whoami` says who you are)")
    return NotAMember(f"{name} (from {source}) is not a member of this store's team",
                      hint=hint)


def _a(role: str) -> str:
    return f"an {role}" if role[:1] in "aeiou" else f"a {role}"


def _either(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def has_members(st: AppState) -> bool:
    """Whether the store has team members: the team's defaults (team.approval
    "first-contact" instead of "none") follow from it."""
    return has_team(st)
