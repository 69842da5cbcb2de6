"""`dmtool config ...` and `dmtool paths`."""

from __future__ import annotations

import json

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
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | str):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


@config_app.command("show")
def config_show(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Every setting with its value; those set in config.toml are marked."""
    from dmtool.config import schema

    cfg = state(ctx).config
    eff = {k: _masked(k, v) for k, v in cfg.effective().items()}
    if json_:
        output.print_json(eff)
        return
    rows = [[k, _show_value(v), "set" if k in cfg.values else "default", schema()[k].help]
            for k, v in eff.items()]
    output.print_table(["key", "value", "source", "meaning"], rows)


@config_app.command("get")
def config_get(ctx: typer.Context, key: str, json_: JsonOpt = False) -> None:
    """Print one setting's value."""
    from dmtool.config import setting

    if setting(key) is None:
        raise InputError(f"unknown config key {key!r}", hint="see `dmtool config show` for the keys")
    value = _masked(key, state(ctx).config.get(key))
    if json_:
        output.print_json(value)
    else:
        output.print_text(_show_value(value).strip('"') if isinstance(value, str) else _show_value(value))


@config_app.command("set")
def config_set(ctx: typer.Context, key: str, value: str) -> None:
    """Change one setting (checked against its type and range; exit 1 when it is
    refused, and config.toml is left as it was)."""
    st = state(ctx)
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
