"""Generate the command reference (docs/commands.md) from the CLI itself.

    python -m dmtool.cli.reference > docs/commands.md

tests/test_docs.py fails when the checked-in file drifts from the code.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import typer


def _param_row(p: Any) -> str | None:
    if getattr(p, "hidden", False) or p.name == "help":
        return None
    if p.param_type_name == "argument":
        name = f"`{(p.metavar or p.name.upper())}`"
        kind = "argument" + ("" if p.required else ", optional")
    else:
        name = ", ".join(f"`{o}`" for o in [*p.opts, *p.secondary_opts])
        kind = "flag" if p.is_flag else "option"
        if p.multiple:
            kind += ", repeatable"
        if p.required:
            kind += ", required"
    help_text = (getattr(p, "help", None) or "").replace("\n", " ").replace("|", "\\|")
    default = getattr(p, "default", None)
    if default not in (None, False, (), []) and not callable(default) and not p.is_flag:
        help_text += f" Default: `{default}`."
    envvar = getattr(p, "envvar", None)
    if envvar:
        help_text += f" Environment: `{envvar}`."
    return f"| {name} | {kind} | {help_text.strip()} |"


def _usage(path: str, cmd: Any) -> str:
    pieces = []
    for p in cmd.params:
        if p.param_type_name == "argument":
            n = (p.metavar or p.name.upper())
            pieces.append(n if p.required else f"[{n}]")
    opts = any(p.param_type_name == "option" and p.name != "help" for p in cmd.params)
    return " ".join([path] + (["[OPTIONS]"] if opts else []) + pieces)


def subcommands(cmd: Any) -> dict[str, Any] | None:
    """A group's visible commands by name, sorted; None when `cmd` is not a group."""
    if not hasattr(cmd, "list_commands"):
        return None
    ctx = typer.Context(cmd)  # ask the group itself, so lazily loaded commands appear
    found = {n: cmd.get_command(ctx, n) for n in sorted(cmd.list_commands(ctx))}
    return {n: c for n, c in found.items() if not getattr(c, "hidden", False)}


def leaf_commands(cmd: Any = None, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every command that runs (not the groups), as ("contacts list", command):
    the walk this reference is generated from, for tests that must cover every
    command, including ones added later."""
    if cmd is None:
        from dmtool.cli.app import app

        cmd = typer.main.get_command(app)
    children = subcommands(cmd)
    if children is None:
        yield path, cmd
        return
    for name, sub in children.items():
        yield from leaf_commands(sub, f"{path} {name}".strip())


def _walk(cmd: Any, path: str, out: list[str], level: int) -> None:
    doc = inspect.cleandoc(cmd.help or "")
    out.append(f"{'#' * level} `{path}`\n")
    if doc:
        out.append(doc + "\n")
    commands = subcommands(cmd)
    if commands is None:
        out.append(f"```\n{_usage(path, cmd)}\n```\n")
    rows = [r for r in (_param_row(p) for p in cmd.params) if r]
    if rows:
        out.append("| name | kind | meaning |\n|---|---|---|")
        out.extend(rows)
        out.append("")
    for name, sub in (commands or {}).items():
        _walk(sub, f"{path} {name}", out, min(level + 1, 4))


def render() -> str:
    from dmtool.cli.app import app

    root = typer.main.get_command(app)
    out = ["# Command reference\n",
           "Generated from the CLI by `python -m dmtool.cli.reference > docs/commands.md`;",
           "a test fails when it drifts. Exit codes and JSON fields: see the user guide.\n"]
    _walk(root, "dmtool", out, 2)
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(render())
