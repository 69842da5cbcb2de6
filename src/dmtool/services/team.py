"""The team on a store: adding and removing members, who am I, and the
settings the team shares (services/roles.py says who may do what)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dmtool import actor, timeutil
from dmtool.errors import InputError, NotFound, TeamRefused, UsageError
from dmtool.services import roles
from dmtool.store import contacts as cstore
from dmtool.store import team

if TYPE_CHECKING:
    from dmtool.appstate import AppState

NAME_MAX = 64


def check_name(name: str) -> str:
    """A member's name as typed: one line, at most NAME_MAX characters, not
    `sync` or `autoack` (what sync does on its own is logged under those), no
    square brackets (a CSV export marks a note's author with them)."""
    from dmtool.textnorm import typed

    clean = typed(name, "the name", max_length=NAME_MAX, one_line=True)
    if not clean:
        raise InputError("the name is empty", hint="the name a member goes by: DMTOOL_OPERATOR, "
                                                   "operator.name or their login name")
    if clean.lower() in (actor.SYNC, actor.AUTOACK):
        raise InputError(f"{clean!r} is what the log calls sync's own work: not a member's name",
                         hint="the cron host is a member too: give it a name of its own, e.g. "
                              "`dmtool team add cron --role service`")
    if "[" in clean or "]" in clean:
        raise InputError("a member's name cannot contain [ or ]")
    return clean


def check_role(role: str) -> str:
    if role not in roles.ROLES:
        raise UsageError(f"--role must be one of {', '.join(roles.ROLES)}, not {role!r}")
    return role


@dataclass
class Added:
    name: str
    role: str
    was: str | None = None  # the role before, when it changed
    started_by: str | None = None  # the first add: who became its owner
    copied: list[str] = field(default_factory=list)  # settings copied from config.toml


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.lower() == b.lower()


def add(st: AppState, name: str, role: str) -> Added:
    """Add a member, or change a member's role. The first add starts the team:
    its caller becomes owner whatever NAME is, so nobody locks the team out,
    and the caller's own team settings (config.toml) become the team's."""
    name, role = check_name(name), check_role(role)
    me = st.operator()
    now = timeutil.fmt(timeutil.now()) or ""
    with st.store.tx() as conn:
        if not team.has_members(conn):
            return _start(st, conn, name, role, me, now)
        roles.require(st, "team")  # again, in the transaction: someone may have just started it
        found = team.member(conn, name)
        if found is None:
            team.add(conn, name, role, now=now, by=me)
            cstore.audit(conn, "team_member_added", now=now, member=name, role=role)
            return Added(name, role)
        if found.role != role:
            if found.role == roles.OWNER:
                _keep_an_owner(conn, found.name, "take the owner role from")
            team.set_role(conn, found.name, role)
            cstore.audit(conn, "team_role_changed", now=now, member=found.name, role=role,
                         was=found.role)
        return Added(found.name, role, was=found.role)


def _start(st: AppState, conn: Any, name: str, role: str, me: str | None, now: str) -> Added:
    if me is None:
        raise UsageError("dmtool cannot tell who you are, and the first member becomes the "
                         "team's owner", hint="set DMTOOL_OPERATOR, or `dmtool config set "
                                              "operator.name NAME`, then add again")
    if _same(name, me) and role != roles.OWNER:
        raise UsageError(f"the first member is whoever starts the team, as its owner: you "
                         f"({me}) cannot start it as {role}",
                         hint=f"`dmtool team add {me} --role owner` (or add someone else first: "
                              "you become the owner then)")
    me = check_name(me)
    team.add(conn, me, roles.OWNER, now=now, by=me)
    cstore.audit(conn, "team_member_added", now=now, member=me, role=roles.OWNER, first=True)
    # The caller's own team settings become the team's: starting a team must not
    # loosen a policy they had set (a lower daily cap, approvals).
    from dmtool.config import is_team_key

    copied = sorted(k for k in st.config.values if is_team_key(k))
    for key in copied:
        team.set_setting(conn, key, st.config.values[key], now=now, by=me)
    if copied:
        cstore.audit(conn, "team_settings_copied", now=now, keys=copied)
    st.config.forget_team()
    if not _same(name, me):
        team.add(conn, name, role, now=now, by=me)
        cstore.audit(conn, "team_member_added", now=now, member=name, role=role)
    return Added(name if not _same(name, me) else me, role, started_by=me, copied=copied)


def _keep_an_owner(conn: Any, name: str, what: str) -> None:
    if team.count_role(conn, roles.OWNER) <= 1:
        raise TeamRefused(f"{name} is the team's last owner: nobody could manage the team "
                          f"if you {what} them", code="E_LAST_OWNER",
                          hint=f"make someone else owner first (`dmtool team add NAME --role "
                               f"owner`), then change {name}")


def remove(st: AppState, name: str) -> team.Member:
    """Take a member off the team; the last owner stays."""
    now = timeutil.fmt(timeutil.now()) or ""
    with st.store.tx() as conn:
        found = team.member(conn, name.strip()) if team.has_members(conn) else None
        if found is None:
            raise NotFound(f"{name.strip()} is not a member of this store's team",
                           hint="`dmtool team list` shows the members")
        if found.role == roles.OWNER:
            _keep_an_owner(conn, found.name, "remove")
        team.remove(conn, found.name)
        cstore.audit(conn, "team_member_removed", now=now, member=found.name, role=found.role)
    return found


def members(st: AppState) -> list[team.Member]:
    if not st.has_store:
        return []
    return team.members(st.store.conn)


def whoami(st: AppState) -> dict[str, Any]:
    """Who this operator is, where the name comes from, and their role."""
    name, source = st.operator_source()
    is_team = roles.has_team(st)
    found = team.member(st.store.conn, name) if is_team and name else None
    role = found.role if found else (None if is_team else roles.OWNER)
    return {"operator": name, "source": source, "team": is_team, "member": found is not None,
            "role": role}


# --- the team's settings -------------------------------------------------------------


def set_setting(st: AppState, key: str, text: str) -> Any:
    """`config set` of a team key on a team store: owners only; checked as
    config.toml is, against the team's settings; written to the store."""
    roles.require(st, "config")
    if key == "team.trust_db_user":
        _check_trust(st, text)
    value = st.config.change(key, text)
    now = timeutil.fmt(timeutil.now()) or ""
    with st.store.tx() as conn:
        team.set_setting(conn, key, value, now=now, by=st.operator())
        cstore.audit(conn, "team_setting_changed", now=now, key=key, value=value)
    st.config.forget_team()
    return value


def _check_trust(st: AppState, text: str) -> None:
    """Switching team.trust_db_user on must leave an owner who can switch it
    off: the database user must be an owner already."""
    from dmtool.config import parse_value
    from dmtool.errors import ConfigError

    try:
        on = parse_value("team.trust_db_user", text)
    except ConfigError:  # change() reports a bad value in its own words
        return
    if not on:
        return
    db_user = st.store.db_user()
    found = team.member(st.store.conn, db_user) if db_user else None
    if found is None or found.role != roles.OWNER:
        raise TeamRefused(
            f"with team.trust_db_user the operator is the database user ({db_user}), "
            "who is not an owner of this team: nobody could change the team's settings",
            code="E_LAST_OWNER",
            hint=f"`dmtool team add {db_user} --role owner` first" if db_user
            else "this system cannot name the database user")
