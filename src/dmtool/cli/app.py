"""The root command: global options, the command tree, and the one place
where errors become a message and an exit code."""


import os
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from dmtool import __version__
from dmtool.appstate import AppState
from dmtool.cli.context import state
from dmtool.errors import DmtoolError, InputError

# Which module defines each top-level command. A command's module is imported
# (and its Typer parameters built) only when that command runs: a cron
# `dmtool digest` pays for one module, not for all of them. Help lists them all.
COMMAND_MODULES: dict[str, str] = {
    "auth": "auth", "config": "config_cmd", "paths": "config_cmd", "sync": "sync_cmd",
    "contacts": "contacts", "check": "check_cmd",
    "inbox": "conversations", "thread": "conversations", "done": "conversations",
    "reopen": "conversations", "digest": "conversations", "snooze": "conversations",
    "unsnooze": "conversations",
    "draft": "drafts", "drafts": "drafts", "review": "drafts", "send": "drafts",
    "templates": "drafts", "log": "log_cmd", "reply": "reply",
    "demo": "demo", "sandbox": "sandbox_cmd", "db": "db_cmd",
    "import": "archive", "report": "report_cmd", "profiles": "profiles_cmd",
    "search": "search_cmd", "claim": "claims_cmd", "release": "claims_cmd", "team": "team_cmd",
    "usage": "usage_cmd",
}


# The only commands that may create a profile that does not exist yet
# (issue 11): any other command on an unknown profile is an error listing them.
CREATES_PROFILE = frozenset({"auth login", "config set", "demo", "sync", "profiles add"})


# What `dmtool --help` lists for each command: the first paragraph of its help.
# Listing from here spares a plain `--help` importing every module and building
# every command (tests/test_help.py checks each entry against the command).
# A command missing here is still listed right, by loading its module.
COMMAND_HELP: dict[str, str] = {
    "auth": "Log in to X, see which account a profile uses, log out.",
    "config": "Read and change settings (config.toml of the profile).",
    "paths": "Print the folders and files dmtool uses for this profile.",
    "sync": "Pull DMs, mentions of you and your public replies; update contacts, consent "
            "evidence and opt-outs.",
    "contacts": "Your contact record: people, tags, notes and consent.",
    "check": "May I DM this person now? Exit 0 yes, 3 no, with the reasons.",
    "inbox": "Conversations, the ones waiting for your reply first, then by last activity; marks "
             "which need a reply and the contact's state. Filters combine.",
    "thread": "The conversation with one contact, oldest first. Marks it read unless --peek.",
    "done": "Mark a conversation done (it reopens when they write again).",
    "reopen": "Reopen a conversation marked done.",
    "snooze": "Hide a conversation from the inbox and the digest's waiting list until then, or "
              "until they write again. `inbox --snoozed` lists them.",
    "unsnooze": "Show a snoozed conversation in the inbox again.",
    "digest": "What came in since the last digest: new messages, opt-out reviews, conversations "
              "waiting for a reply, opt-outs, failed sends. Prints nothing when nothing is new "
              "(so cron mails only news), unless --json.",
    "draft": "Write a draft DM to one contact. Refused (exit 3) when they may not be DMed; lint "
             "findings are shown. Nothing is sent: review and send it next. A handle not in your "
             "record is looked up on X once, as `check` does.",
    "drafts": "Your drafts: list, show, edit and discard them.",
    "review": "Review drafts: the text, the contact, the consent evidence, the last messages and "
              "every finding; approve, edit, reject or skip each. Scripts use `review ID "
              "--approve | --reject [--reason TEXT]`.",
    "send": "Send exactly one approved draft, after checking the policy and the lint again. On a "
            "terminal it shows the text and asks y/N; elsewhere it needs --yes; a first contact "
            "always needs your confirmation on a terminal.",
    "reply": "Answer someone whose message is the last one: draft, approve and send in one step, "
             "with the same checks and audit as `draft`, `review` and `send`.",
    "templates": "Saved replies with {name}-style variables; a template only ever makes a draft.",
    "log": "The audit log, newest first: every send, refusal, approval, rejection, opt-out and "
           "consent record, with who did it.",
    "search": "Search message text, notes, and contacts' names and handles, newest first.",
    "demo": "Create (or reset) the `demo` profile on the built-in sandbox X and walk through sync, "
            "inbox, check, draft, review, send and digest, with a refused cold DM on the way. "
            "Needs no account and no network; runs unattended when not on a terminal.",
    "sandbox": "The built-in sandbox X of a sandbox profile: make someone DM you.",
    "db": "The store: where it is, a backup, a restore, an integrity check, moving it.",
    "report": "Messages in and out per day, time to your first reply, open conversations by "
              "age, and opt-outs, over the last N days.",
    "import": "Bring history into the local record from outside dmtool.",
    "profiles": "List the profiles (one per X account) and add one.",
    "claim": "Claim a conversation: while the claim lasts, other people's drafts, replies and "
             "sends to this contact are refused (exit 3, E_CLAIMED) unless they add --force. "
             "Drafting to them renews it; claiming again extends it.",
    "release": "End your claim on a conversation (another person's only with --force).",
    "team": "Who works on this store and in which role: add, list and remove members; who "
            "am I; the team key of the shared X credentials.",
    "usage": "What dmtool's requests to X cost: per UTC day and endpoint family, the requests, "
             "the units read or sent before and after X's same-day rule, the estimated cost; the "
             "month so far; the budgets and what is left.",
}


def load_module_commands(module_name: str, only: str | None = None) -> dict[str, Any]:
    """Build the click commands one cli module registers, by name; with `only`,
    just that one (Typer reads every parameter of a command to build it)."""
    import importlib

    from dmtool.cli.usage import use_everywhere

    module = importlib.import_module(f"dmtool.cli.{module_name}")
    holder = typer.Typer()
    module.register(holder)
    use_everywhere(holder)  # usage lines say HANDLE, as the reference does
    if only is not None:
        commands = [c for c in holder.registered_commands if c.name == only]
        groups = [g for g in holder.registered_groups if g.name == only]
        if commands or groups:
            holder.registered_commands, holder.registered_groups = commands, groups
    loaded = dict(typer.main.get_group(holder).commands)
    for name, cmd in loaded.items():
        _guard(name, cmd)
    return loaded


def _guard(path: str, cmd: Any) -> None:
    """Every command checks the operator's role before it runs (cli/access.py)."""
    from dmtool.cli.access import guard

    subcommands = getattr(cmd, "commands", None)
    if subcommands is not None:
        for name, sub in subcommands.items():
            _guard(f"{path} {name}", sub)
    elif cmd.callback is not None:
        cmd.callback = guard(cmd.callback, path)


class DmtoolGroup(TyperGroup):
    """The root group: loads commands lazily, and turns every DmtoolError into
    one line on stderr (or a JSON error) and its exit code. Commands never
    catch errors to print them."""

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMAND_MODULES))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is None and cmd_name in COMMAND_MODULES:
            for name, loaded in load_module_commands(COMMAND_MODULES[cmd_name], cmd_name).items():
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

    def _short_helps(self, ctx: Any, names: list[str], limit: int) -> list[tuple[str, str]]:
        """(name, one-line help) of each visible command of `names`: from
        COMMAND_HELP unless the command is loaded already, so listing commands
        (plain --help, a TAB after `dmtool`) loads no command module."""
        from typer._click.utils import make_default_short_help

        rows = []
        for name in names:
            cmd = self.commands.get(name)
            if cmd is None and name in COMMAND_HELP:
                rows.append((name, make_default_short_help(COMMAND_HELP[name], limit)))
                continue
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit)))
        return rows

    def shell_complete(self, ctx: Any, incomplete: str) -> list[Any]:
        """A TAB after `dmtool`: the commands with their one-line help, then
        the root options, as Typer offers them."""
        from typer._click.shell_completion import CompletionItem

        names = [n for n in self.list_commands(ctx) if n.startswith(incomplete)]
        items = [CompletionItem(n, help=h) for n, h in self._short_helps(ctx, names, 45)]
        # The options: what TyperGroup adds after its commands (Command's own list).
        items.extend(super(TyperGroup, self).shell_complete(ctx, incomplete))
        return items

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The command list of plain (piped) help, as Typer writes it."""
        from gettext import gettext as _

        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        with formatter.section(_("Commands")):
            formatter.write_dl(self._short_helps(ctx, names, limit))

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Scan the arguments once (cli/argscan.py): global options after the
        command move before it, and only the real --json makes errors JSON."""
        from dmtool.cli.argscan import scan

        scanned = scan(args, lambda path: self._shape(ctx, path))
        ctx.meta["dmtool.json"] = scanned.json
        ctx.meta["dmtool.path"] = scanned.path
        if scanned.error and not ctx.resilient_parsing:
            _usage_error(ctx, scanned.error)
        return super().parse_args(ctx, scanned.args)

    def _shape(self, ctx: Any, path: tuple[str, ...]) -> Any:
        """The shape of the command at `path` for the scanner (None: unknown).
        Resolving a command loads its module, as running it would anyway."""
        from dmtool.cli.argscan import Shape
        from dmtool.cli.reporting import FORMAT_IS_OUTPUT

        cmd: Any = self
        for name in path:
            get = getattr(cmd, "get_command", None)
            cmd = get(ctx, name) if get is not None else None
            if cmd is None:
                return None
        values: dict[str, int] = {}
        options: set[str] = set()
        for p in cmd.params:
            if p.param_type_name != "option":
                continue
            options.update(p.opts, p.secondary_opts)
            if not p.is_flag and not p.count:
                values.update(dict.fromkeys(p.opts, p.nargs))
        return Shape(group=hasattr(cmd, "get_command"), value_options=values,
                     options=frozenset(options), format_is_output=" ".join(path) in FORMAT_IS_OUTPUT)

    def invoke(self, ctx: Any) -> Any:
        _collect_again()
        try:
            return super().invoke(ctx)
        except DmtoolError as e:
            _report(ctx, e)
            raise typer.Exit(e.exit_code) from None
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
                err: DmtoolError = InputError("text that is not valid UTF-8 (check the "
                                              "terminal's or file's encoding)")
                _report(ctx, err)
                raise typer.Exit(err.exit_code) from None
            from dmtool.logs import redact

            said = str(e)  # cut: it may quote a huge argument (issue 11 point 9)
            said = said if len(said) <= 300 else said[:300] + "…"
            err = DmtoolError(redact(f"unexpected {type(e).__name__}: {said}"),
                              code="E_INTERNAL",
                              hint="set DMTOOL_DEBUG=1 to see the traceback, and please report it")
            _report(ctx, err)
            raise typer.Exit(1) from None
        finally:
            obj = ctx.obj
            if isinstance(obj, AppState):
                obj.close()


# Set by dmtool/__main__.py, which turns the cyclic garbage collector off for start-up.
collector_off_for_start = False


def _collect_again() -> None:
    """The command is about to run: when dmtool/__main__.py turned the cyclic
    garbage collector off for start-up, freeze what start-up made (later
    collections skip it: modules and commands live as long as the process)
    and turn the collector back on."""
    global collector_off_for_start
    if collector_off_for_start:
        import gc

        collector_off_for_start = False
        gc.freeze()
        gc.enable()


def _usage_error(ctx: Any, message: str) -> None:
    """A usage error found before Typer parses (exit 2), JSON with --json."""
    from dmtool import output

    if ctx.meta.get("dmtool.json"):
        output.error_json("E_USAGE", message)
    else:
        output.error_line(message, "see `dmtool --help`")
    raise typer.Exit(2)


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
        budget = getattr(e, "budget", None)
        if budget:  # E_BUDGET: which budget, what it has spent and its limit (US dollars)
            extra.update(budget=budget, spent=getattr(e, "spent", None),
                         limit=getattr(e, "limit", None))
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
    st.profile = DEFAULT_PROFILE if profile is None else check_profile_name(profile)
    st.creates_profile = " ".join(ctx.meta.get("dmtool.path", ())) in CREATES_PROFILE
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
