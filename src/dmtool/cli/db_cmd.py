"""`dmtool db path | backup FILE | check`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dmtool import output
from dmtool.cli.context import state
from dmtool.cli.params import JsonOpt
from dmtool.errors import InputError

db_app = typer.Typer(help="The store: where it is, a backup, an integrity check, moving it.",
                     no_args_is_help=True)


@db_app.command("path")
def db_path(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Print where this profile's store is: its SQLite file, or its PostgreSQL URL
    (with the password masked)."""
    output.print_path(state(ctx).store_location().shown, json_)


@db_app.command("backup")
def db_backup(ctx: typer.Context, file: Annotated[Path, typer.Argument(help="Where to write.")]) -> None:
    """Write a consistent copy of the store (safe while other commands run). A
    PostgreSQL store is dumped with pg_dump (custom format: restore with pg_restore)."""
    if file.exists():
        raise InputError(f"{file} already exists", hint="choose a new file name")
    state(ctx).store.backup(file)
    output.info(f"backed up to {file}")


@db_app.command("check")
def db_check(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Check the store: SQLite's integrity and foreign-key checks, or on PostgreSQL
    the schema, constraints, indexes and triggers; and that nothing is missing."""
    store = state(ctx).store
    problems = store.problems()
    result = {"ok": not problems, "problems": problems, "schema_version": store.schema_version()}
    if json_:
        output.print_json(result)
    else:
        output.print_text("ok" if not problems else "\n".join(problems))
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


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
