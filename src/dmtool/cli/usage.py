"""Usage lines that name arguments as the reference and the docs do.

Typer writes a required argument as `{handle}` in usage lines ("Usage: dmtool
check [OPTIONS] {handle}"), while docs/commands.md, the guide and every hint
say HANDLE and DRAFT_ID. Every dmtool command is built with DmtoolCommand
(cli/app.py `load_module_commands`), which writes them the way `git` and `gh`
do: HANDLE, [TEXT], TAGS...
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand


def argument_usage(param: Any) -> str:
    """HANDLE, [TEXT] (optional) or TAGS... (several), as in docs/commands.md."""
    name = param.metavar or (param.name or "").upper()
    if param.nargs != 1:
        name += "..."
    return name if param.required else f"[{name}]"


class DmtoolCommand(TyperCommand):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for p in self.params:  # the help's "Arguments:" list says HANDLE too
            if p.param_type_name == "argument" and p.metavar is None:
                p.metavar = (p.name or "").upper()

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for p in self.get_params(ctx):
            if p.param_type_name == "argument":
                pieces.append(argument_usage(p))
            else:
                pieces.extend(p.get_usage_pieces(ctx))
        return pieces


def use_everywhere(app: typer.Typer) -> None:
    """Build every command of `app` (and its sub-apps) as a DmtoolCommand."""
    for info in app.registered_commands:
        if info.cls in (None, TyperCommand):  # not a class of its own
            info.cls = DmtoolCommand
    for group in app.registered_groups:
        if group.typer_instance is not None:
            use_everywhere(group.typer_instance)
