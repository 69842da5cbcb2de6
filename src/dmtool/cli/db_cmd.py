"""`dmtool db path | backup FILE | restore FILE | check`."""


from pathlib import Path
from typing import Annotated

import typer

from dmtool import output
from dmtool.cli.context import state
from dmtool.cli.params import JsonOpt, path_argument
from dmtool.errors import DmtoolError, StoreDamaged, UsageError

db_app = typer.Typer(help="The store: where it is, a backup, a restore, an integrity check, moving it.",
                     no_args_is_help=True)


@db_app.command("path")
def db_path(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Print where this profile's store is: its SQLite file, or its PostgreSQL URL
    (with the password masked)."""
    output.print_path(state(ctx).store_location().shown, json_)


@db_app.command("backup")
def db_backup(ctx: typer.Context, file: Annotated[Path, path_argument("Where to write.")]) -> None:
    """Write a consistent copy of the store (safe while other commands run).

    The copy is checked once written: when the store is damaged, nothing is
    written and the command fails. The store's own files (and SQLite's files
    beside any store) are refused as targets. A PostgreSQL store is dumped
    with pg_dump (custom format: restore it with pg_restore)."""
    from dmtool.services.backups import backup

    backup(state(ctx), file)
    output.info(f"backed up to {file}")


@db_app.command("restore")
def db_restore(
    ctx: typer.Context,
    file: Annotated[Path, path_argument("A backup written by `dmtool db backup`.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Replace the store with a backup, keeping the current one aside.

    The file is checked first (a damaged file or another account's store is
    refused). Holds the send and sync locks while it works. What the current
    store knows that protects people is kept, as far as it can still be read:
    every opt-out, block, opt-out review and suppression, and the ledger of
    sends (caps and duplicates count it), so a restore never brings back
    someone who opted out. Every draft that may have gone out since the
    backup (approved, being sent, or in the ledger) becomes `unknown`: `dmtool
    send ID` asks X before anything else, so no DM goes twice. The sync starts
    over: the next `dmtool sync` reads again what X still has (30 days of DMs).

    SQLite stores only: a PostgreSQL store is restored with pg_restore
    (docs/team.md), and this command says how.
    """
    from dmtool.services.backups import check_backup, restore

    st = state(ctx)
    candidate = check_backup(st, file.expanduser())
    if not yes:
        if not output.interactive():
            raise UsageError(f"restoring {file} replaces the store: it needs confirmation",
                             hint="add --yes")
        s = candidate.summary
        newest = s.get("newest_message") or "none"
        if not typer.confirm(f"Replace the store with {file} ({s['contacts']} contacts, "
                             f"{s['messages']} messages, the newest from {newest})? "
                             "The current store is kept aside."):
            raise DmtoolError("nothing restored: you did not confirm", code="E_CANCELLED")
    result = restore(st, candidate)
    output.info(f"restored the store from {result.file}")
    if result.kept_aside is not None:
        output.info(f"the store it replaced is kept at {result.kept_aside}")
    k = result.kept
    output.info(f"kept from it: {_n(k.get('opted_out', 0), 'opt-out')}, "
                f"{_n(k.get('blocked', 0), 'block')}, {_n(k.get('reviews', 0), 'opt-out review')} "
                f"and {_n(k.get('sends', 0), 'send')} the backup did not have")
    if k.get("team"):
        output.info(f"the team stays as it was: {_n(k['team'], 'member')} and its settings")
    for what in result.unreadable:
        output.info(f"warning: could not read from the replaced store: {what}")
    if result.drafts_unknown:
        ids = ", ".join(str(i) for i in result.drafts_unknown)
        output.info(f"drafts that may have gone out since the backup are now unknown ({ids}): "
                    "`dmtool send ID` asks X first")
    output.info("run `dmtool sync` to bring back what X still has since the backup")


@db_app.command("check")
def db_check(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Check the store: SQLite's integrity and foreign-key checks, or on
    PostgreSQL the schema version, constraints, indexes and triggers; and that
    no table, index or trigger is missing.

    Lists every problem found (exit 1), also when the store is too damaged to
    open; `ok` (exit 0) otherwise."""
    st = state(ctx)
    version: int | None = None
    try:
        store = st.store
        version = store.schema_version()
        problems = store.problems()
    except StoreDamaged as e:  # too damaged to open or read its version
        problems = [e.message]
    result = {"ok": not problems, "problems": problems, "schema_version": version}
    if json_:
        output.print_json(result)
    else:
        output.print_text("ok" if not problems else "\n".join(problems))
        if problems:
            output.info("hint: restore a backup with `dmtool db restore FILE`")
    if problems:
        raise typer.Exit(1)


@db_app.command("migrate-to")
def db_migrate_to(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(
        help="The empty store to copy into: postgresql://USER@HOST:PORT/DB?sslmode=verify-full, "
             "or a SQLite file (a path, or sqlite:////absolute/path).")],
    json_: JsonOpt = False,
) -> None:
    """Copy this profile's store into an empty store elsewhere, in one transaction,
    then compare every table's rows and keys. The current store is left as it was;
    the next step (`dmtool config set store.url ...`) is printed. Refused while a
    send or sync runs, or a send's outcome is unknown."""
    from dmtool.cli.progress import copy_progress
    from dmtool.services.move import move_store

    result = move_store(state(ctx), url, copy_progress(json_))
    if json_:
        output.print_json(result.to_dict())
        return
    output.print_table(["table", "rows", "checksum"],
                       [[t.table, t.rows, t.checksum] for t in result.tables])
    if result.already:
        output.info(f"already migrated: {result.target} holds this store, row for row")
    else:
        output.info(f"copied {result.source} to {result.target}; both sides agree")
    output.info(f"next: {result.next_step}")


def _n(count: int, what: str) -> str:
    return f"{count} {what}{'' if count == 1 else 's'}"


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
