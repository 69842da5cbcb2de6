"""`dmtool db path | backup FILE | check`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from dmtool import output
from dmtool.cli.context import state
from dmtool.cli.params import JsonOpt
from dmtool.errors import DmtoolError, InputError

db_app = typer.Typer(help="The local store: where it is, a backup, an integrity check.",
                     no_args_is_help=True)


@db_app.command("path")
def db_path(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Print the path of this profile's SQLite store."""
    output.print_path(state(ctx).paths.db_file, json_)


@db_app.command("backup")
def db_backup(ctx: typer.Context, file: Annotated[Path, typer.Argument(help="Where to write.")]) -> None:
    """Write a consistent copy of the store (safe while other commands run)."""
    import sqlite3

    if file.exists():
        raise InputError(f"{file} already exists", hint="choose a new file name")
    store = state(ctx).store
    old = os.umask(0o077)
    try:
        dest = sqlite3.connect(file)
        with dest:
            store.conn.backup(dest)
        dest.close()
    except sqlite3.Error as e:
        raise DmtoolError(f"backup failed: {e}") from None
    finally:
        os.umask(old)
    output.info(f"backed up to {file}")


@db_app.command("check")
def db_check(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Run SQLite's integrity and foreign-key checks."""
    from dmtool.store.db import problems_of

    store = state(ctx).store
    problems = problems_of(store.conn)
    result = {"ok": not problems, "problems": problems, "schema_version": store.schema_version()}
    if json_:
        output.print_json(result)
    else:
        output.print_text("ok" if not problems else "\n".join(problems))
    if problems:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
