"""The console entry point (pyproject's `dmtool`) and `python -m dmtool`.

Start-up makes tens of thousands of objects (typer, click and dmtool's own
modules, a command's parameters) and frees almost none: the cyclic garbage
collector, run every 700 allocations, would only scan them again and again.
It is off until the command runs (cli/app.py: DmtoolGroup.invoke freezes what
start-up made and turns it back on), so a long command (sync, the poller)
collects as usual. Imported as a library (tests, CliRunner), dmtool leaves
the collector alone: only this module turns it off, and says so to the CLI
(a flag, not a look at sys.modules: `python -m dmtool` runs this file as
`__main__`, under another name).
"""

import gc

gc.disable()

from dmtool.cli import app  # noqa: E402  (after gc.disable(): the imports are the start-up)

app.collector_off_for_start = True
main = app.main

if __name__ == "__main__":
    main()
