"""`dmtool report`: messages per day, time to first reply, open conversations
by age and opt-outs over the last N days. A local read: no X calls."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dmtool import output
from dmtool.cli.context import state
from dmtool.cli.params import JsonOpt, days_option

if TYPE_CHECKING:
    from dmtool.services.report import Report

BAR_WIDTH = 24
WEEKLY_AFTER = 35  # days; longer periods are charted a week a line
AGE_TITLES = {"<1d": "under 1 day", "1d-3d": "1-3 days", "3d-7d": "3-7 days",
              "7d-30d": "7-30 days", "30d+": "30+ days"}
EMPTY = "nothing to report yet: no messages recorded (run `dmtool sync` or `dmtool import archive`)"


def report_cmd(
    ctx: typer.Context,
    days: Annotated[int, days_option(
        "The last N days in your time zone (display.timezone, else TZ), today included: "
        "1 to 3650.")] = 30,
    by_operator: Annotated[bool, typer.Option(
        "--by-operator", help="Also per person: DMs sent, approvals given and the median time "
                              "to a first reply.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Messages in and out per day, time to your first reply, open
    conversations by age, and opt-outs, over the last N days.

    Also what dmtool's requests to X cost in the period (an estimate from its
    request ledger), in all and per conversation answered.
    """
    from dmtool.services.report import build_report
    from dmtool.timeutil import now

    st = state(ctx)
    r = build_report(st.store.conn, days, now(), st.zone, by_operator=by_operator,
                     cost_of=_cost_of(st))
    if json_:
        output.print_json(r.to_dict())
    elif r.empty:
        output.info(EMPTY)
    elif output.stdout_is_tty():
        _print_rich(r, st.zone.show)
    else:
        _print_plain(r, st.zone.stamp)


def _cost_of(st: Any) -> Any:
    """What the report's period cost on X (services/budget.py period_cost)."""
    from dmtool.services import budget

    conn, sandbox, prices = st.store.conn, st.sandbox, budget.Prices.from_config(st.config)
    return lambda since, until: budget.period_cost(conn, since, until, sandbox=sandbox,
                                                   prices=prices)


def _cost_line(r: Report, show: Any) -> str | None:
    """What the period's requests to X cost, in words (None: not computed)."""
    from dmtool.services.budget import usd
    from dmtool.timeutil import fmt

    c = r.cost
    if c is None:
        return None
    if c.since is None:
        return "no requests to X recorded (the ledger begins with dmtool 0.2)"
    text = f"{usd(c.usd)}, an estimate from dmtool's own requests"
    if c.per_conversation_answered is not None:
        text += (f"; {usd(c.per_conversation_answered)} per conversation answered "
                 f"({c.answered})")
    if c.since > (fmt(r.since) or ""):  # the ledger began within the period
        text += f"; recorded since {show(c.since)}"
    return text


def duration(seconds: float | None) -> str:
    """A short human duration: 45s, 12m, 2h 05m, 3d 4h."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def _plain_seconds(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if value == int(value) else f"{value:.3f}"


def _print_plain(r: Report, stamp: Any = str) -> None:
    """Piped: one tab-separated record a line, the key first. Days are
    `date, in, out` (dates in the zone of the last line); the rest is named as
    in the JSON."""
    fr = r.first_reply.to_dict()
    t = r.totals()
    rows: list[list[Any]] = [[d.date, d.inbound, d.outbound] for d in r.by_day]
    rows += [["total", t.inbound, t.outbound], ["autoack", t.autoack]]
    rows += [[f"first_reply_{k}", v] for k, v in fr.items() if not k.endswith("_seconds")]
    rows += [["first_reply_median_seconds", _plain_seconds(fr["median_seconds"])],
             ["first_reply_p90_seconds", _plain_seconds(fr["p90_seconds"])]]
    rows += [["open", b.label, b.waiting_for_you, b.waiting_for_them] for b in r.open_by_age]
    rows += [["opt_outs", r.opt_outs]]
    if r.cost is not None:
        c = r.cost
        rows += [["cost_usd", f"{c.usd:.6f}"], ["cost_since", stamp(c.since) if c.since else ""],
                 ["cost_per_conversation_answered", "" if c.per_conversation_answered is None
                  else f"{c.per_conversation_answered:.6f}"]]
    rows += [["timezone", r.timezone]]  # the zone of the dates above
    # operator, name (empty: not recorded), sent, approved, answered, median seconds
    rows += [["operator", o.operator or "", o.sent, o.approved, len(o.answered_seconds),
              _plain_seconds(o.median)] for o in r.by_operator or ()]
    output.print_table([], rows)


def _bar(n: int, top: int) -> str:
    if n == 0 or top == 0:
        return ""
    return "█" * max(1, round(n * BAR_WIDTH / top))


def _chart_rows(r: Report) -> list[tuple[str, int, int]]:
    """(label, in, out) a day, or a week when a day a line would not fit a screen."""
    from datetime import date

    def day(d: str, form: str) -> str:
        return date.fromisoformat(d).strftime(form)

    if r.days <= WEEKLY_AFTER:
        return [(day(d.date, "%a %d %b"), d.inbound, d.outbound) for d in r.by_day]
    weeks = [r.by_day[i:i + 7] for i in range(0, len(r.by_day), 7)]
    return [(f"{day(w[0].date, '%d %b')} - {day(w[-1].date, '%d %b')}",
             sum(d.inbound for d in w), sum(d.outbound for d in w)) for w in weeks]


def _print_rich(r: Report, show: Any = str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(no_color=bool(os.environ.get("NO_COLOR")), highlight=False)
    t = r.totals()
    last = r.by_day[-1].date
    console.print(f"[bold]Last {r.days} day{'s' if r.days != 1 else ''}[/] "
                  f"({r.by_day[0].date} to {last}, days in {r.timezone})")
    rows = _chart_rows(r)
    top = max((max(n_in, n_out) for _, n_in, n_out in rows), default=0)
    chart = Table(show_edge=False, header_style="bold", box=None, pad_edge=False)
    chart.add_column("day" if r.days <= WEEKLY_AFTER else "week")
    chart.add_column("in", justify="right")
    chart.add_column("", style="cyan", no_wrap=True)
    chart.add_column("out", justify="right")
    chart.add_column("", style="green", no_wrap=True)
    for label, n_in, n_out in rows:
        chart.add_row(label, str(n_in), _bar(n_in, top), str(n_out), _bar(n_out, top))
    chart.add_row("[bold]total[/]", f"[bold]{t.inbound}[/]", "", f"[bold]{t.outbound}[/]",
                  f"incl. {t.autoack} automatic" if t.autoack else "")
    console.print(chart)

    fr = r.first_reply
    console.print()
    console.print("[bold]Time to your first reply[/] (waits that started in the period)")
    if fr.waits == 0:
        console.print("  nobody wrote to you in the period")
    else:
        if fr.answered_seconds:
            console.print(f"  median {duration(fr.median)}, 90% within {duration(fr.p90)} "
                          f"({len(fr.answered_seconds)} answered)")
        console.print(f"  not answered: {fr.unanswered_open} still waiting, "
                      f"{fr.unanswered_closed} closed (marked done or opted out)")

    console.print()
    console.print("[bold]Open conversations by age[/] (now)")
    ages = Table(show_edge=False, header_style="bold", box=None, pad_edge=False)
    ages.add_column("")
    for b in r.open_by_age:
        ages.add_column(AGE_TITLES.get(b.label, b.label), justify="right")
    ages.add_row("waiting for you", *(str(b.waiting_for_you) for b in r.open_by_age))
    ages.add_row("waiting for them", *(str(b.waiting_for_them) for b in r.open_by_age))
    console.print(ages)

    console.print()
    console.print(f"[bold]Opt-outs[/] in the period: {r.opt_outs}")
    cost = _cost_line(r, show)
    if cost is not None:
        console.print()
        console.print(f"[bold]Cost of requests to X[/] in the period: {cost}")
    if r.by_operator is not None:
        _print_operators(console, r)


def _print_operators(console: Any, r: Report) -> None:
    from rich.table import Table
    from rich.text import Text

    console.print()
    console.print("[bold]By operator[/] (sends, approvals and first replies in the period)")
    if not r.by_operator:
        console.print("  nobody sent or approved a DM in the period")
        return
    top = max(o.sent for o in r.by_operator)
    table = Table(show_edge=False, header_style="bold", box=None, pad_edge=False)
    for name, justify in (("operator", "left"), ("sent", "right"), ("", "left"),
                          ("approved", "right"), ("first replies", "right"),
                          ("median", "right")):
        table.add_column(name, justify=justify, no_wrap=name == "")  # type: ignore[arg-type]
    for o in r.by_operator:
        table.add_row(Text(o.operator or "(not recorded)"), str(o.sent),
                      Text(_bar(o.sent, top), style="green"), str(o.approved),
                      str(len(o.answered_seconds)), duration(o.median))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
