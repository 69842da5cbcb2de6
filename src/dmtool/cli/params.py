"""Arguments several command modules share, with their shell completion."""

from __future__ import annotations

from typing import Annotated

import typer

from dmtool.cli.completion import complete_handle, complete_template

# --json means the same on every command that reports: one JSON document on stdout.
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
HandleArg = Annotated[str, typer.Argument(help="X handle, with or without @.",
                                          autocompletion=complete_handle)]
TemplateArg = Annotated[str, typer.Argument(help="Template name.",
                                            autocompletion=complete_template)]
