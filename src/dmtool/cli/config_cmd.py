"""`dmtool config ...` and `dmtool paths`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from dmtool import output
from dmtool.cli.context import state
from dmtool.cli.params import JsonOpt
from dmtool.errors import InputError

config_app = typer.Typer(help="Read and change settings (config.toml of the profile).",
                         no_args_is_help=True)


def _masked(key: str, value: object) -> object:
    """A store URL is shown without its password (config.toml keeps it, 0600)."""
    if key == "store.url" and isinstance(value, str) and value:
        from dmtool.store.url import mask

        return mask(value)
    return value


def _show_value(v: object) -> str:
    if v is None:  # an optional key that is not set
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | str):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


@config_app.command("show")
def config_show(
    ctx: typer.Context,
    json_: JsonOpt = False,
    sources: Annotated[bool, typer.Option(
        "--sources", help="Say where each value comes from: the team's store, config.toml or "
                          "the default (with --json: an object per key).")] = False,
) -> None:
    """Every setting with its value and where it comes from. On a store with a
    team, the team's settings (team.*, policy.*, lint.*, autoack.*) come from
    the store; a value config.toml sets for one of them is ignored, and said so."""
    from dmtool.config import schema

    cfg = state(ctx).config
    eff = {k: _masked(k, v) for k, v in cfg.effective().items()}
    team = cfg.team()
    ignored = cfg.ignored()
    if json_ and not sources:
        output.print_json(eff)
        return
    if json_:
        output.print_json({k: _source_object(cfg, k, v, ignored) for k, v in eff.items()})
        return
    if sources:
        rows = [[k, _show_value(v), _source_text(cfg, k, ignored)] for k, v in eff.items()]
        output.print_table(["key", "value", "source"], rows)
    else:
        rows = [[k, _show_value(v), _SHORT.get(cfg.source(k), "default"), schema()[k].help]
                for k, v in eff.items()]
        output.print_table(["key", "value", "source", "meaning"], rows)
    if ignored and team is not None:
        output.info(f"note: this store has a team, whose settings are read from the store: "
                    f"config.toml's {', '.join(sorted(ignored))} "
                    f"{'is' if len(ignored) == 1 else 'are'} ignored")


_SHORT = {"team": "team", "config.toml": "set", "default": "default"}


def _source_object(cfg: Any, key: str, value: object, ignored: dict[str, Any]) -> dict[str, Any]:
    team = cfg.team()
    set_at, set_by = (team.origin.get(key, (None, None)) if team is not None else (None, None))
    return {"value": value, "source": cfg.source(key), "set_at": set_at, "set_by": set_by,
            "ignored_local": ignored.get(key)}


def _source_text(cfg: Any, key: str, ignored: dict[str, Any]) -> str:
    source = cfg.source(key)
    team = cfg.team()
    if source == "team" and team is not None:
        set_at, set_by = team.origin[key]
        text = f"team store (set by {set_by or '?'} on {set_at[:10]})"
    elif source == "config.toml":
        text = f"config.toml ({cfg.path})"
    elif team is not None and key in team_keys():
        text = "default (the team's)"
    else:
        text = "default"
    if key in ignored:
        text += f"; config.toml's {_show_value(ignored[key])} is ignored"
    return text


def team_keys() -> set[str]:
    from dmtool.config import is_team_key, schema

    return {k for k in schema() if is_team_key(k)}


@config_app.command("get")
def config_get(ctx: typer.Context, key: str, json_: JsonOpt = False) -> None:
    """Print one setting's value."""
    from dmtool.config import setting

    if setting(key) is None:
        raise InputError(f"unknown config key {key!r}", hint="see `dmtool config show` for the keys")
    from dmtool.config import is_team_key

    st = state(ctx)
    if is_team_key(key):  # the team's, on a team store: for its members only
        from dmtool.services import roles

        roles.require(st, "read")
    value = _masked(key, st.config.get(key))
    if json_:
        output.print_json(value)
    else:
        output.print_text(_show_value(value).strip('"') if isinstance(value, str) else _show_value(value))


@config_app.command("set")
def config_set(ctx: typer.Context, key: str, value: str) -> None:
    """Change one setting (checked against its type and range; exit 1 when it is
    refused, and config.toml is left as it was). On a store with a team, a team
    setting (team.*, policy.*, lint.*, autoack.*) is written to the store, by an
    owner only."""
    from dmtool.config import is_team_key

    st = state(ctx)
    if is_team_key(key) and st.config.team() is not None:
        from dmtool.services.team import set_setting

        new = set_setting(st, key, value)
        output.info(f"{key} = {_show_value(new)} (the team's setting, in the store)")
        if key in st.config.values:
            output.info(f"note: config.toml's {key} = {_show_value(st.config.values[key])} is "
                        "ignored on this store: its team's settings are read from the store")
        return
    st.paths.ensure()
    new = st.config.set(key, value)
    output.info(f"{key} = {_show_value(_masked(key, new))}")
    if key == "store.url" and new and st.sandbox:
        output.info("note: this profile uses the sandbox X, which keeps its own store and "
                    "ignores store.url (docs/team.md)")


@config_app.command("path")
def config_path(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Print where config.toml lives."""
    output.print_path(state(ctx).paths.config_file, json_)


def paths_cmd(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Print the folders and files dmtool uses for this profile."""
    st = state(ctx)
    d = st.paths.as_dict()
    d["store"] = st.store_location().shown  # the SQLite file, or the URL without its password
    if json_:
        output.print_json(d)
    else:
        output.print_table(["what", "path"], list(d.items()))


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
    app.command("paths")(paths_cmd)
