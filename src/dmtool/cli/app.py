"""The root command: global options, the command tree, and the one place
where errors become a message and an exit code."""

from __future__ import annotations

import os
import sqlite3
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from dmtool import __version__
from dmtool.appstate import AppState
from dmtool.cli.context import state
from dmtool.errors import Busy, DmtoolError, InputError

_JSON_FLAG = "--json"


def _wants_json(args: list[str]) -> bool:
    if _JSON_FLAG in args or "--format=json" in args:
        return True
    return any(a == "--format" and b == "json" for a, b in zip(args, args[1:], strict=False))


# Which module defines each top-level command. A command's module is imported
# (and its Typer parameters built) only when that command runs: a cron
# `dmtool digest` pays for one module, not for all of them. Help lists them all.
COMMAND_MODULES: dict[str, str] = {
    "auth": "auth", "config": "config_cmd", "paths": "config_cmd", "sync": "sync_cmd",
    "contacts": "contacts", "check": "contacts",
    "inbox": "conversations", "thread": "conversations", "done": "conversations",
    "reopen": "conversations", "digest": "conversations",
    "draft": "drafts", "drafts": "drafts", "review": "drafts", "send": "drafts",
    "templates": "drafts", "log": "drafts",
    "demo": "demo", "db": "db_cmd",
    "import": "archive", "report": "report_cmd",
}


def load_module_commands(module_name: str) -> dict[str, Any]:
    """Build the click commands one cli module registers, by name."""
    import importlib

    module = importlib.import_module(f"dmtool.cli.{module_name}")
    holder = typer.Typer()
    module.register(holder)
    return dict(typer.main.get_group(holder).commands)


class DmtoolGroup(TyperGroup):
    """The root group: loads commands lazily, and turns every DmtoolError into
    one line on stderr (or a JSON error) and its exit code. Commands never
    catch errors to print them."""

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMAND_MODULES))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is None and cmd_name in COMMAND_MODULES:
            for name, loaded in load_module_commands(COMMAND_MODULES[cmd_name]).items():
                self.commands.setdefault(name, loaded)
            cmd = self.commands.get(cmd_name)
        return cmd

    def _main_shell_completion(self, ctx_args: Any, prog_name: str,
                               complete_var: str | None = None) -> None:
        var = complete_var or f"_{prog_name}_COMPLETE".replace("-", "_").upper()
        if os.environ.get(var):  # a TAB, not a command: answer in our shells' formats
            from dmtool.cli.completion import use_dmtool_shells

            use_dmtool_shells()
        super()._main_shell_completion(ctx_args, prog_name, complete_var)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta["dmtool.json"] = _wants_json(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except DmtoolError as e:
            _report(ctx, e)
            raise typer.Exit(e.exit_code) from None
        except sqlite3.OperationalError as e:
            err: DmtoolError = (
                Busy("the store is busy in another dmtool process", hint="try again in a moment")
                if "locked" in str(e) else DmtoolError(f"store error: {e}",
                                                       hint="run `dmtool db check`"))
            _report(ctx, err)
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt:
            sys.stderr.write("interrupted\n")
            raise typer.Exit(130) from None
        except Exception as e:
            # Typer's own exits and usage errors carry their exit codes; with
            # --json a usage error is a JSON error too.
            if type(e).__module__.startswith(("typer", "click")):
                fmt_message = getattr(e, "format_message", None)
                if ctx.meta.get("dmtool.json") and callable(fmt_message):
                    from dmtool import output

                    output.error_json("E_USAGE", str(fmt_message()))
                    raise typer.Exit(int(getattr(e, "exit_code", 2))) from None
                raise
            if os.environ.get("DMTOOL_DEBUG"):
                raise
            if isinstance(e, BrokenPipeError):  # `dmtool ... | head`: the reader had enough
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                raise typer.Exit(0) from None
            if isinstance(e, UnicodeError):  # e.g. an argument that is not valid UTF-8
                err = InputError("text that is not valid UTF-8 (check the terminal's or file's "
                                 "encoding)")
                _report(ctx, err)
                raise typer.Exit(err.exit_code) from None
            from dmtool.logs import redact

            err = DmtoolError(redact(f"unexpected {type(e).__name__}: {e}"),
                              code="E_INTERNAL",
                              hint="set DMTOOL_DEBUG=1 to see the traceback, and please report it")
            _report(ctx, err)
            raise typer.Exit(1) from None
        finally:
            obj = ctx.obj
            if isinstance(obj, AppState):
                obj.close()


def _report(ctx: Any, e: DmtoolError) -> None:
    from dmtool import output

    if ctx.meta.get("dmtool.json"):
        extra: dict[str, Any] = {}
        reasons = getattr(e, "reasons", None)
        if reasons:
            extra["reasons"] = reasons
        reset_at = getattr(e, "reset_at", None)
        if reset_at:  # epoch seconds from X; JSON times are RFC 3339 (cli.md)
            from datetime import UTC, datetime

            from dmtool.timeutil import fmt

            extra["reset_at"] = fmt(datetime.fromtimestamp(reset_at, UTC))
        family = getattr(e, "family", None)
        if family:  # which endpoint family X paused (errors.RATE_FAMILIES)
            extra["family"] = family
        if e.details:
            extra["details"] = e.details
        output.error_json(e.code, e.message, e.hint, **extra)
    else:
        output.error_line(e.message, e.hint)


app = typer.Typer(
    name="dmtool",
    cls=DmtoolGroup,
    help="Personal DM outreach on X: one consented conversation at a time.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(ctx: typer.Context, value: bool) -> None:
    if value and not ctx.resilient_parsing:  # not while completing
        sys.stdout.write(f"dmtool {__version__}\n")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    profile: Annotated[str | None, typer.Option(
        "--profile", "-p", envvar="DMTOOL_PROFILE", show_envvar=True,
        help="Profile (one per X account).")] = None,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Diagnostic logging on stderr (secrets redacted).")] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    """Personal DM outreach on X: one consented conversation at a time.

    dmtool keeps a local record of contacts, conversations and consent, and
    sends one reviewed DM at a time, only to people who engaged with you.
    """
    from dmtool.paths import DEFAULT_PROFILE, check_profile_name

    st = state(ctx)
    st.profile = check_profile_name(profile or DEFAULT_PROFILE)
    st.verbose = verbose
    if verbose:
        import logging

        from dmtool.logs import setup_logging

        setup_logging(logging.DEBUG)


def main() -> None:
    """Console entry point."""
    if os.environ.get("NO_COLOR"):
        os.environ.setdefault("TERM", "dumb")
    app(prog_name="dmtool")
