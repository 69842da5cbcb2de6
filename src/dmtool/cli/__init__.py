"""The command line: Typer commands that parse, call one service, and render."""

import os
import sys

# Rich output only on a terminal (cli.md): piped help and usage errors stay
# plain text, and scripts skip importing rich (~60 ms). TYPER_USE_RICH is
# Typer's documented switch and is read when typer is first imported.
if "TYPER_USE_RICH" not in os.environ and not sys.stdout.isatty():
    os.environ["TYPER_USE_RICH"] = "0"
