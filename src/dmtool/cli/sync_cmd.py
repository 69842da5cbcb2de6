"""`dmtool sync`."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dmtool import actor, output
from dmtool.cli.context import state
from dmtool.cli.params import JsonOpt

if TYPE_CHECKING:
    from datetime import datetime

    from dmtool.appstate import AppState
    from dmtool.models import Contact
    from dmtool.services.sync import Progress, SyncResult



def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def summary(r: SyncResult, sandbox: bool) -> str:
    """The one line a human (or a cron mail) reads."""
    prefix = "sandbox: " if sandbox else ""
    parts = [_plural(r.dm_events_new, "new DM"), _plural(r.mentions_new, "new mention"),
             _plural(r.replies_new, "new reply", "new replies"),
             _plural(r.contacts_new, "new contact")]
    cost = (f"{_plural(r.dm_events_read, 'DM event')} read, {_plural(r.requests, 'request')}")
    line = f"{prefix}synced: {', '.join(parts)} ({cost})"
    if r.opted_out:
        line += "; opted out: " + ", ".join("@" + h for h in r.opted_out)
    if r.optout_review:  # `dmtool digest` and `inbox --state review-optout` list them
        line += (f"; {_plural(len(r.optout_review), 'opt-out review')} to decide: "
                 + ", ".join("@" + h for h in r.optout_review))
    if r.autoacks_sent:
        line += f"; {_plural(r.autoacks_sent, 'acknowledgement')} sent"
    limited = [d for d in r.deferred if not d.get("budget")]
    if limited:  # the stderr note says until when
        line += "; held back by X rate limits: " + ", ".join(
            str(d["what"]).replace("_", " ") for d in limited)
    budgeted = [d for d in r.deferred if d.get("budget")]
    if budgeted:
        line += "; held back by the X budget: " + ", ".join(
            str(d["what"]).replace("_", " ") for d in budgeted)
    return line


@contextmanager
def _progress() -> Iterator[Progress]:
    """A spinner on a terminal; off one, only the lines worth keeping (a rate-limit wait)."""
    if not sys.stderr.isatty():
        def note(text: str, *, transient: bool = True) -> None:
            if not transient:
                output.info(text)

        yield note
        return
    from rich.console import Console

    console = Console(stderr=True, highlight=False, no_color=bool(os.environ.get("NO_COLOR")))
    with console.status("syncing with X") as status:
        def show(text: str, *, transient: bool = True) -> None:
            if transient:
                status.update(text)
            else:
                console.print(text)

        yield show


def sync_cmd(
    ctx: typer.Context,
    json_: JsonOpt = False,
    wait: Annotated[bool, typer.Option(
        "--wait", help="On a rate limit on reading DMs (or on what --public needs), wait for "
                       "the reset (with a countdown) instead of exit 5.")]
    = False,
    public: Annotated[bool, typer.Option(
        "--public", help="Check mentions and your public replies now, even if checked within "
                         "sync.public_every_minutes.")] = False,
) -> None:
    """Pull DMs, mentions of you and your public replies; update contacts,
    consent evidence and opt-outs.

    Incremental and cost-aware: it stops at the first DM event it already has,
    and a sync with nothing new costs one request. A rate limit on reading DMs
    stops it with exit 5 and the reset time (nothing read is lost), unless
    --wait. A limit on mentions, user lookups or sending only defers that part
    (said on stderr and in the JSON `deferred` list); the DMs are still read.
    """
    from dmtool.services.sync import run_sync

    st = state(ctx)
    hook = None
    if st.config.get("autoack.enabled"):
        from dmtool.services.send import send_autoack, settle_autoacks

        with actor.acting_as(actor.AUTOACK):
            settle_autoacks(st)

        def hook(conn: object, contact: Contact, at: datetime) -> object:
            with actor.acting_as(actor.AUTOACK):
                return send_autoack(st, contact.id, at)

    from dmtool.services.poller import SyncRunning

    try:
        with _progress() as progress:
            result = run_sync(st, wait=wait, progress=progress, autoack_hook=hook, public=public)
    except SyncRunning as e:
        if e.holder is not None and e.holder.command != "sync":
            raise  # an import or a restore: this sync's work is not being done (exit 5)
        _skipped(st, e, json_)
        return
    _budget_warning(st)
    if result.hooks.failed:  # one line per sync, whatever the number (cron mails stderr)
        output.info(f"warning: hooks.on_inbound failed for {result.hooks.failed} of "
                    f"{_plural(result.hooks.ran, 'new message')} ({result.hooks.last_failure}); "
                    "see `dmtool log --action hook_failed`")
    if json_:
        output.print_json(result.to_dict())
    else:
        output.print_text(summary(result, st.sandbox))


def _skipped(st: AppState, e: Any, json_: bool) -> None:
    """Another sync holds the lock: its work is being done. Exit 0 with one line
    on stderr saying who holds it since when, and with --json the `skipped`
    document (docs/cron.md)."""
    holder = e.holder
    prefix = "sandbox: " if st.sandbox else ""
    who = holder.describe(st.zone.show) if holder else "another process"
    output.info(f"{prefix}sync skipped: another sync is running ({who})")
    if json_:
        shown = ({k: v for k, v in holder.to_dict().items() if k != "command"} if holder
                 else {"operator": None, "host": None, "since": None})
        output.print_json({"skipped": "sync_running", "holder": shown})


def _budget_warning(st: AppState) -> None:
    """At 80% of an X budget: one line on stderr, the first sync of the UTC day."""
    if st.config.get("x.budget.day_usd") is None and st.config.get("x.budget.month_usd") is None:
        return
    from dmtool.services import budget, ledger

    led = ledger.of(st)
    led.flush()
    line = budget.warn_once(st, led.periods())
    if line:
        output.info(f"warning: {line}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("sync")(sync_cmd)
