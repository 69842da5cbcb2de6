"""Who may do what on a shared store (issue 15).

Every command that changes something asks `require(st, action)` before it
acts. A store with no team members behaves as before: everybody may do
everything. The team workflow fills in members and roles; until then this
allows every action.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dmtool.appstate import AppState

# The actions commands ask about (the team's roles grant them).
ACTIONS = ("read", "draft", "claim", "note", "approve", "send", "sync", "consent", "forget",
           "team", "config")


def require(st: AppState, action: str) -> None:
    """Raise (E_ROLE, E_NOT_A_MEMBER) unless the acting operator may do `action`."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")


def has_members(st: AppState) -> bool:
    """Whether the store has team members (issue 15 point 1). With none, the
    team's defaults stay those of one person (team.approval "none"). The team
    workflow fills it in; until then there are none."""
    return False
