"""`dmtool import archive`: X's "download your data" archive into the local record."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dmtool import output
from dmtool.cli.context import state

if TYPE_CHECKING:
    from dmtool.services.archive import ImportResult

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]

import_app = typer.Typer(help="Bring history into the local record from outside dmtool.",
                         no_args_is_help=True)


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def summary(r: ImportResult) -> str:
    """The one line a person reads."""
    parts = [_plural(r.conversations, "conversation"),
             f"{_plural(r.messages_new, 'new message')} ({r.messages_skipped} skipped)",
             _plural(r.replies_new, "new reply", "new replies"),
             _plural(r.evidence_new, "new consent record"),
             _plural(r.contacts_new, "new contact")]
    line = f"imported the archive of @{r.account}: {', '.join(parts)}"
    if r.opted_out:
        line += "; opted out: " + ", ".join("@" + h for h in r.opted_out)
    return line


@import_app.command("archive")
def import_archive_cmd(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(
        help="The archive zip from X, or the folder it unpacks to.", metavar="PATH")],
    json_: JsonOpt = False,
) -> None:
    """Import X's "download your data" archive: DM history older than the API's
    30 days and your public replies become messages and consent evidence.

    Reads data/account.js, data/direct-messages*.js and data/tweets*.js; group
    chats are skipped. STOP and START in the history apply as in a sync. A
    reply of yours counts as consent only with a mention from that person
    already synced. Idempotent: importing again adds nothing. A damaged archive
    is refused whole, naming the file.
    """
    from dmtool.services.archive import run_import

    result = run_import(state(ctx), path)
    if json_:
        output.print_json(result.to_dict())
        return
    output.print_text(summary(result))
    for skipped in result.skipped_files:
        output.info(f"skipped group chats: {skipped}")
    if result.contacts_new:
        output.info("new contacts are named user_<id> (the archive has no handles) until "
                    "`dmtool sync` sees them")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(import_app, name="import")
