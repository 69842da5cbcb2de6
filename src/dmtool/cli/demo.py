"""`dmtool demo`: try the whole flow on the sandbox X, no account needed."""

from __future__ import annotations

import sys

import typer

from dmtool import output


def demo_cmd() -> None:
    """Create (or reset) the `demo` profile on the built-in sandbox X and walk
    through sync, inbox, check, draft, review, send and digest, with a refused
    cold DM on the way. Needs no account and no network; runs unattended when
    not on a terminal."""
    from dmtool.services.demo import run_demo

    def write(text: str) -> None:
        output.print_text(text)
        sys.stdout.flush()  # narration must come before the next step's own output

    def confirm_reset(changes: list[str]) -> bool:
        return typer.confirm(f"The demo profile holds work that is not the demo's "
                             f"({', '.join(changes)}). Wipe it and start the demo again?",
                             default=False)

    interactive = output.interactive()
    run_demo(interactive=interactive, write=write,
             confirm_reset=confirm_reset if interactive else None)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)
