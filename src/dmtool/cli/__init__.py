"""The command line: Typer commands that parse, call one service, and render."""

import os
import sys

from dmtool.stdstreams import reopen_closed_std_streams

# First of all, before typer or the store open any file: a closed stdin,
# stdout or stderr is reopened on /dev/null (the console entry point and
# `python -m dmtool` both come through here).
reopen_closed_std_streams()

# Rich output only on a terminal (cli.md): piped help and usage errors stay
# plain text, and scripts skip importing rich (~60 ms). TYPER_USE_RICH is
# Typer's documented switch and is read when typer is first imported.
if "TYPER_USE_RICH" not in os.environ and not (sys.stdout is not None and sys.stdout.isatty()):
    os.environ["TYPER_USE_RICH"] = "0"
