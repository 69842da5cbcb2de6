"""`dmtool team add | list | remove | whoami`: who works on this store, in which role."""

from __future__ import annotations

from typing import Annotated

import typer

from dmtool import output
from dmtool.cli.context import state
from dmtool.cli.params import JsonOpt

team_app = typer.Typer(help="Who works on this store and in which role: add, list and remove "
                            "members; who am I; the team key of the shared X credentials.\n\n"
                            "A store without members behaves as it always "
                            "has: everybody acts as owner. Roles guard against mistakes, not "
                            "against a hostile member (docs/team.md).",
                       no_args_is_help=True)

_ROLE_HELP = ("owner (everything), approver (also approves and sends), drafter (drafts, notes, "
              "claims), viewer (reads), or service (the cron host: sync and digest).")


def _complete_role(incomplete: str) -> list[str]:
    from dmtool.services.roles import ROLES

    return [r for r in ROLES if r.startswith(incomplete)]


@team_app.command("add")
def team_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The member's name, as dmtool knows them "
                                             "(DMTOOL_OPERATOR, operator.name or login name).")],
    role: Annotated[str, typer.Option("--role", help=_ROLE_HELP,
                                      autocompletion=_complete_role)],
) -> None:
    """Add a member, or change a member's role (owners only). The first `team add`
    starts the team: you become its owner whatever NAME is, and your own team
    settings (policy, lint, autoack) become the team's."""
    from dmtool.services import team

    st = state(ctx)
    added = team.add(st, name, role)
    if added.started_by is not None:
        output.info(f"started the team on this store: {added.started_by} is its owner")
        if added.copied:
            output.info(f"the team's settings start from your config.toml: "
                        f"{', '.join(added.copied)} (on this store they are read from the store "
                        "now, whatever config.toml says)")
        if added.name.lower() != added.started_by.lower():
            output.info(f"added {added.name} as {added.role}")
        return
    if added.was is None:
        output.info(f"added {added.name} as {added.role}")
    elif added.was == added.role:
        output.info(f"{added.name} is {added.role} already: nothing changed")
    else:
        output.info(f"{added.name}: {added.was} -> {added.role}")


@team_app.command("remove")
def team_remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The member to remove.")],
) -> None:
    """Remove a member (owners only). The last owner cannot be removed."""
    from dmtool.services import team

    gone = team.remove(state(ctx), name)
    output.info(f"removed {gone.name} ({gone.role}) from the team")


@team_app.command("list")
def team_list(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """The members, their roles, and who added them when."""
    from dmtool.services import team

    st = state(ctx)
    found = team.members(st)
    if json_:
        output.print_json([m.to_dict() for m in found])
        return
    me = (st.operator() or "").lower() if found else ""
    output.print_table(
        ["", "name", "role", "added", "by"],
        [["*" if m.name.lower() == me else "", m.name, m.role, st.zone.show(m.added_at),
          m.added_by] for m in found],
        empty="no team on this store: everybody acts as owner (`dmtool team add NAME --role "
              "ROLE` starts one, with you as owner)")


@team_app.command("whoami")
def team_whoami(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Who you are to dmtool, where that name comes from, and your role here."""
    from dmtool.services import team

    me = team.whoami(state(ctx))
    if json_:
        output.print_json(me)
        return
    output.print_fields([("operator", me["operator"] or "(unknown)"), ("from", me["source"]),
                         ("role", _role_text(me))])


def _role_text(me: dict[str, object]) -> str:
    if not me["team"]:
        return "owner (this store has no team: everybody acts as owner)"
    if not me["member"]:
        return "none: not a member of this store's team"
    return str(me["role"])


key_app = typer.Typer(help="The team key: it encrypts the X credentials the team shares in the "
                           "store, and is kept outside it (DMTOOL_TEAM_KEY or the OS keyring).",
                      no_args_is_help=True)
team_app.add_typer(key_app, name="key")


@key_app.command("new")
def team_key_new(
    ctx: typer.Context,
    json_: JsonOpt = False,
    replace: Annotated[bool, typer.Option(
        "--replace", help="The current key is lost: throw away the credentials in the store, "
                          "which nothing can open any more (then `dmtool auth login`).")]
    = False,
) -> None:
    """Make a new team key (owners only) and print it, once, to give to the members.

    It is kept in this machine's OS keyring when there is one; each member
    keeps it with `dmtool team key set` or in DMTOOL_TEAM_KEY. X credentials
    already in the store are re-encrypted with the new key: members with the
    old one then need the new one.
    """
    from dmtool.services import team_key
    from dmtool.team_credentials import KEY_ENV

    st = state(ctx)
    made = team_key.new(st, replace=replace, shown=not _stdout_is_null())
    if json_:
        output.print_json({"key": made.key, "kept_in": made.kept_in, "rotated": made.rotated,
                           "dropped": made.dropped})
    else:
        output.print_text(made.key)
    where = (f"kept in {made.kept_in} on this machine" if made.kept_in else
             f"not kept on this machine (no usable OS keyring): set {KEY_ENV} to it")
    output.info(f"a new team key: {where}. It is shown this once: give it to each member over a "
                "private channel; they run `dmtool team key set` (or set "
                f"{KEY_ENV}). Keep a copy somewhere safe: without it nobody can use the team's "
                "X credentials")
    if made.rotated:
        output.info("the team's X credentials in the store are now encrypted with the new key")
    if made.dropped:
        output.info("the credentials the old key encrypted are gone: log in again with "
                    "`dmtool auth login`")
    if not made.team:
        output.info("this store has no team yet: the key is used once it has one and an owner "
                    "runs `dmtool auth login`")
    if st.environ.get(KEY_ENV):
        output.info(f"note: {KEY_ENV} is set in this environment and comes first: replace its "
                    "value with the new key")


def _stdout_is_null() -> bool:
    """Whether stdout is the null device (`>/dev/null`, or closed: see stdstreams)."""
    import os

    try:
        out, null = os.fstat(1), os.stat(os.devnull)
    except OSError:
        return True
    return (out.st_dev, out.st_ino, out.st_rdev) == (null.st_dev, null.st_ino, null.st_rdev)


@key_app.command("set")
def team_key_set(ctx: typer.Context) -> None:
    """Keep the team key an owner gave you in this machine's OS keyring. It is
    read with hidden input on a terminal, else from stdin, and checked against
    the store's X credentials first. Without a keyring, set DMTOOL_TEAM_KEY."""
    from dmtool.cli.textfile import read_text
    from dmtool.services import team_key

    st = state(ctx)
    if output.interactive():
        text = str(typer.prompt("team key", hide_input=True))
    else:
        text = read_text("-", limit=4096, what="a team key")
    kept_in = team_key.set_key(st, text)
    output.info(f"the team key is kept in {kept_in} on this machine")


def register(app: typer.Typer) -> None:
    app.add_typer(team_app, name="team")
