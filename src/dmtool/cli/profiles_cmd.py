"""`dmtool profiles list | add NAME`: the profiles, one per X account."""


from typing import Annotated

import typer

from dmtool import output
from dmtool.cli.context import state
from dmtool.cli.params import JsonOpt
from dmtool.errors import InputError

profiles_app = typer.Typer(help="List the profiles (one per X account) and add one.",
                           no_args_is_help=True)


@profiles_app.command("list")
def profiles_list(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Every profile: `default`, and each one with a config.toml or a store.
    The one this command runs on is marked."""
    from dmtool.appstate import AppState
    from dmtool.paths import list_profiles

    st = state(ctx)
    rows = []
    for name in list_profiles(st.environ):
        other = AppState(profile=name, environ=st.environ)
        rows.append({"profile": name, "current": name == st.profile,
                     "config": other.paths.config_file.exists(),
                     "store": other.has_store})  # its SQLite file, or a store on a server
    if json_:
        output.print_json(rows)
        return
    output.print_table(["", "profile", "config.toml", "store"],
                       [["*" if r["current"] else "", r["profile"], r["config"], r["store"]]
                        for r in rows])


@profiles_app.command("add")
def profiles_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The new profile's name (letters, digits, . _ -).")],
) -> None:
    """Create a profile with an empty store. Then `dmtool --profile NAME auth
    login` (or `config set backend sandbox`) sets it up."""
    from dmtool.appstate import AppState
    from dmtool.paths import Paths, check_profile_name

    st = state(ctx)
    check_profile_name(name)
    if Paths.resolve(name, st.environ).exists():
        raise InputError(f"profile {name!r} exists already",
                         hint=f"use it with `dmtool --profile {name} ...`")
    new = AppState(profile=name, environ=st.environ, creates_profile=True)
    try:
        new.store  # noqa: B018 - opening creates the folders and the store
    finally:
        new.close()
    output.info(f"added profile {name!r}: use it with `dmtool --profile {name} ...`")


def register(app: typer.Typer) -> None:
    app.add_typer(profiles_app, name="profiles")
