"""`dmtool team add | list | remove | whoami`: who works on this store, in which role."""

from __future__ import annotations

from typing import Annotated

import typer

from dmtool import output
from dmtool.cli.context import state
from dmtool.cli.params import JsonOpt

team_app = typer.Typer(help="Who works on this store and in which role: add, list and remove "
                            "members; who am I.\n\nA store without members behaves as it always "
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


def register(app: typer.Typer) -> None:
    app.add_typer(team_app, name="team")
