"""`dmtool import archive`: X's "download your data" archive into the local record."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dmtool import output
from dmtool.cli.context import state
from dmtool.cli.params import JsonOpt, path_argument
from dmtool.errors import UsageError

if TYPE_CHECKING:
    from dmtool.appstate import AppState
    from dmtool.services.archive import ImportResult


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
    if r.contacts_named:
        parts.append(f"{_plural(r.contacts_named, 'contact')} named by X")
    line = f"imported the archive of @{r.account}: {', '.join(parts)}"
    if r.opted_out:
        line += "; opted out: " + ", ".join("@" + h for h in r.opted_out)
    if r.conversations_done:
        line += (f"; {_plural(r.conversations_done, 'conversation')} quiet for 30 days filed as "
                 "done (`dmtool inbox --all` lists them)")
    return line


@import_app.command("archive")
def import_archive_cmd(
    ctx: typer.Context,
    path: Annotated[Path | None, path_argument(
        "The archive zip from X, or the folder it unpacks to.", metavar="PATH",
        show_default=False)] = None,
    discard_incomplete: Annotated[bool, typer.Option(
        "--discard-incomplete",
        help="Instead of importing: take out what an import that did not finish wrote (for "
             "when its archive is gone).")] = False,
    json_: JsonOpt = False,
    open_: Annotated[bool, typer.Option(
        "--open", help="Keep the old conversations waiting for your reply open (by default "
                       "every conversation quiet for 30 days is filed as done).")] = False,
) -> None:
    """Import X's "download your data" archive: DM history older than the API's
    30 days and your public replies become messages and consent evidence.

    Reads data/account.js, data/direct-messages*.js and data/tweets*.js; group
    chats are skipped. STOP and START in the history apply as in a sync. A
    reply of yours counts as consent only with a mention from that person
    already synced. Idempotent: importing again adds nothing. A damaged archive
    is refused whole, naming the file.

    Before it writes a message, the import records everyone in the archive; if
    it stops before the end (killed, a full disk), dmtool refuses to DM them
    (E_IMPORT_INCOMPLETE, exit 3) until the same archive is imported again to
    the end, or `--discard-incomplete` takes out what the stopped import wrote.

    Conversations it brings in that have been quiet for 30 days arrive marked
    done (`inbox --all` lists them); with --open, those waiting for your reply
    stay open.

    The archive has user ids, not handles: once the import is saved, dmtool
    asks X for the handles of contacts known only by id (one request per 100;
    never without credentials). If that fails, the import still stands: a
    warning says so and the contacts stay user_<id> until you import again
    or sync.
    """
    st = state(ctx)
    if discard_incomplete:
        if path is not None:
            raise UsageError("give either PATH or --discard-incomplete, not both",
                             hint="to finish an import instead, run it again without the flag")
        _discard(st, json_)
        return
    if path is None:
        raise UsageError("missing the archive: give PATH", hint="dmtool import archive PATH")
    from dmtool.services.archive import run_import

    result = run_import(st, path, keep_waiting=open_)
    if json_:
        output.print_json(result.to_dict())
    else:
        output.print_text(summary(result))
        for skipped in result.skipped_files:
            output.info(f"skipped group chats: {skipped}")
        if result.contacts_unnamed and result.naming_error is None:
            n = result.contacts_unnamed
            output.info(f"{_plural(n, 'contact')} {'stays' if n == 1 else 'stay'} user_<id>: X "
                        "does not know those accounts any more (deleted or suspended)")
    if result.messages_repeated:
        n = result.messages_repeated
        output.info(f"skipped {_plural(n, 'message')} whose id the archive repeats (first: "
                    f"{result.first_repeat}); counted in messages_skipped")
    for archive in result.incomplete:
        output.info(f"warning: an earlier import of {archive} is still incomplete: dmtool will "
                    "not DM the people in it until it is imported again to the end, or "
                    "`dmtool import archive --discard-incomplete` takes it out")
    if result.naming_error is not None:  # a warning, not a failure: the import is complete
        for line in naming_warning(result, path):
            output.info(line)


def _discard(st: AppState, json_: bool) -> None:
    from dmtool.services.archive import discard_incomplete

    done = discard_incomplete(st)
    if json_:
        output.print_json({"discarded": done})
        return
    if not done:
        output.info("no incomplete import: nothing to discard")
    for d in done:
        output.info(f"discarded the incomplete import of {d['archive']} (started {d['started_at']}): "
                    f"removed {_plural(d['messages'], 'message')}, {_plural(d['posts'], 'post')}, "
                    f"{_plural(d['evidence'], 'consent record')} and "
                    f"{_plural(d['contacts'], 'contact')}; opt-outs it recorded stay")


def naming_warning(r: ImportResult, path: Path) -> list[str]:
    """What went wrong with the naming step, and what to run later."""
    import shlex

    e = r.naming_error
    assert e is not None
    later = f"run `dmtool import archive {shlex.quote(str(path))}` again to name them " \
            "(nothing is imported twice)"
    hint = f"{e.hint.rstrip('.')}, then {later}" if e.hint else f"later, {later}"
    return [f"warning: imported, but {_plural(r.contacts_unnamed, 'contact')} "
            f"{'stays' if r.contacts_unnamed == 1 else 'stay'} user_<id> for now "
            f"(the archive has no handles): {e.message}",
            f"hint: {hint}"]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(import_app, name="import")
