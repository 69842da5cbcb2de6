"""A second pair of eyes (issue 15 point 3): who may approve a draft.

`team.approval` says which drafts need someone other than their author to
approve them: none, first contacts, or all. Unset, it is "none" on a store
without team members (one person, as before) and "first-contact" once the
store has members. Automatic acknowledgements are approved by the
configuration that switched them on, never by a person.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dmtool import actor
from dmtool.errors import PolicyRefused
from dmtool.store import contacts as cstore
from dmtool.timeutil import fmt
from dmtool.timeutil import now as clock

if TYPE_CHECKING:
    from dmtool.appstate import AppState
    from dmtool.models import Contact
    from dmtool.store.drafts import Draft

KEY = "team.approval"
AUTOACK = "autoack"  # drafting.AUTOACK: the template of acknowledgement drafts


def mode(st: AppState) -> str:
    """none, first-contact or all: as set (on a team store: in the store, never
    a member's own config.toml), else by whether the store has members."""
    if KEY in st.config.in_force():
        return str(st.config.get(KEY))
    from dmtool.services import roles

    return "first-contact" if roles.has_members(st) else "none"


def needs_another(st: AppState, *, first_contact: bool, template: str | None = None) -> bool:
    """Whether this draft must be approved by someone other than its author."""
    if template == AUTOACK:
        return False
    m = mode(st)
    return m == "all" or (m == "first-contact" and first_contact)


def why(st: AppState) -> str:
    return ("every draft needs another person's approval" if mode(st) == "all"
            else "a first message needs another person's approval")


def check_approver(st: AppState, draft: Draft, contact: Contact, *, first_contact: bool) -> None:
    """Refuse (exit 3, E_SELF_APPROVAL, audited) an approval by the draft's own
    author where team.approval asks for a second pair of eyes. A draft whose
    author is unknown (written before dmtool kept authors) is nobody's."""
    if not needs_another(st, first_contact=first_contact, template=draft.template):
        return
    me = actor.current()
    if me is not None and not actor.same_person(draft.author, me):
        return
    who = "you wrote it" if me is not None else "dmtool cannot tell who you are"
    message = (f"not approved: draft {draft.id} to @{contact.handle} needs another person's "
               f"approval, and {who} ({KEY} = {mode(st)}: {why(st)})")
    with st.store.tx() as conn:
        cstore.audit(conn, "refused", now=fmt(clock()) or "", contact=contact, draft_id=draft.id,
                     codes=["E_SELF_APPROVAL"], command="review")
    hint = (f"ask another member to run `dmtool review {draft.id} --approve`" if me is not None
            else "set DMTOOL_OPERATOR, or `dmtool config set operator.name NAME`")
    raise PolicyRefused(message, code="E_SELF_APPROVAL", hint=hint,
                        reasons=[{"code": "E_SELF_APPROVAL", "message": message}])
