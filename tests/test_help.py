"""`dmtool --help` lists every command from COMMAND_HELP, without importing
the command modules, and says exactly what it would say with them loaded."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import typer

from dmtool.cli.app import COMMAND_HELP, COMMAND_MODULES, app, load_module_commands


def root_help(width: int, *, load_all: bool) -> str:
    group = typer.main.get_command(app)
    ctx = typer.Context(group, info_name="dmtool", terminal_width=width, max_content_width=width)
    if load_all:
        for name in COMMAND_MODULES:
            assert group.get_command(ctx, name) is not None  # type: ignore[attr-defined]
    return group.get_help(ctx)


@pytest.mark.parametrize("name", sorted(COMMAND_MODULES))
def test_each_entry_is_the_first_paragraph_of_the_commands_help(name: str) -> None:
    cmd = load_module_commands(COMMAND_MODULES[name])[name]
    first = (cmd.help or "").split("\n\n")[0]
    assert COMMAND_HELP.get(name) == " ".join(first.split()), \
        f"COMMAND_HELP[{name!r}] is out of date with the command's help"
    assert not cmd.hidden and not cmd.short_help and not cmd.deprecated


@pytest.mark.parametrize("width", [40, 80, 120, 200])
def test_help_lists_what_the_loaded_commands_would(width: int) -> None:
    assert root_help(width, load_all=False) == root_help(width, load_all=True)


def test_plain_help_imports_no_command_module() -> None:
    probe = ("import sys\nfrom dmtool.cli.app import main\nsys.argv = ['dmtool', '--help']\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "sys.stderr.write(' '.join(m for m in sys.modules if m.startswith('dmtool.cli.')))\n")
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)
    assert "Commands:" in p.stdout and "inbox" in p.stdout
    loaded = set(p.stderr.split())
    assert not loaded & {f"dmtool.cli.{m}" for m in COMMAND_MODULES.values()}


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completing_a_command_name_imports_no_command_module(shell: str) -> None:
    probe = ("import sys\nfrom dmtool.cli.app import main\nsys.argv = ['dmtool']\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "sys.stderr.write(' '.join(m for m in sys.modules if m.startswith('dmtool.cli.')))\n")
    env = dict(os.environ, _DMTOOL_COMPLETE=f"complete_{shell}", _TYPER_COMPLETE_ARGS="dmtool ",
               _TYPER_COMPLETE_FISH_ACTION="get-args", COMP_WORDS="dmtool\n", COMP_CWORD="1")
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, env=env)
    assert "inbox" in p.stdout and "send" in p.stdout
    loaded = set(p.stderr.split())
    assert not loaded & {f"dmtool.cli.{m}" for m in COMMAND_MODULES.values()}
