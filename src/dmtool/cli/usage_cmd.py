"""`dmtool usage`: what dmtool's requests to X cost, per UTC day and endpoint
family, the month so far and the budgets. A local read of the ledger."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dmtool import output
from dmtool.cli.context import state
from dmtool.cli.params import JsonOpt, days_option
from dmtool.errors import UsageError

if TYPE_CHECKING:
    from dmtool.services.usage import Usage
    from dmtool.store.ledger import Units

BAR_WIDTH = 24


def usage_cmd(
    ctx: typer.Context,
    days: Annotated[int | None, days_option(
        "The last N UTC days, today included: 1 to 3650 (default 7).")] = None,
    month: Annotated[str | None, typer.Option(
        "--month", metavar="YYYY-MM", help="One UTC calendar month instead, e.g. 2026-03.")]
    = None,
    json_: JsonOpt = False,
) -> None:
    """What dmtool's requests to X cost: per UTC day and endpoint family, the
    requests, the units read or sent before and after X's same-day rule, the
    estimated cost; the month so far; the budgets and what is left.

    An estimate from dmtool's own requests: the bill is X's, and X bills per
    developer app (other profiles or tools on the same app are not here).
    """
    from dmtool import timeutil
    from dmtool.services import budget
    from dmtool.services.usage import build_usage

    if days is not None and month is not None:
        raise UsageError("--days and --month do not go together", hint="give one of them")
    st = state(ctx)
    u = build_usage(st.store.conn, sandbox=st.sandbox,
                    prices=budget.Prices.from_config(st.config),
                    limits=budget.Limits.from_config(st.config), now=timeutil.now(),
                    days=days, month=month)
    if json_:
        output.print_json(u.to_dict())
    elif output.stdout_is_tty():
        _print_rich(u, st.zone.show(u.since) if u.since else None)
    else:
        _print_plain(u, st.zone.stamp(u.since) if u.since else "")


def _units_text(units: Units, kind_of: str = "billable") -> str:
    counts = units.billable if kind_of == "billable" else units.raw
    names = {"dm_events": "DM event", "users": "user", "posts": "post", "sends": "send"}
    parts = [f"{n} {names[k]}{'' if n == 1 else 's'}" for k, n in counts.items() if n]
    return ", ".join(parts) or "-"


def _print_plain(u: Usage, since: str) -> None:
    """Piped: tab-separated records, the key first. Day rows are `date,
    family, requests, units, billable units, usd` (units of every kind
    together; `--json` has them apart)."""
    from dmtool.services.budget import ESTIMATE_NOTE

    def row(key: list[Any], units: Units) -> list[Any]:
        return [*key, units.requests, sum(units.raw.values()), sum(units.billable.values()),
                f"{u.prices.cost(units.billable):.6f}"]

    rows: list[list[Any]] = []
    for d in u.days:
        rows += [row([d.date, f], units) for f, units in sorted(d.families.items())]
    rows.append(row(["total", "all"], u.total()))
    rows.append(row(["month", u.month], u.month_units))
    for p in u.periods:
        rows.append(["budget", p.name, "" if p.limit is None else p.limit,
                     f"{p.spent:.6f}", "" if p.left is None else f"{p.left:.6f}"])
    rows += [["since", since], ["backend", u.backend], ["note", ESTIMATE_NOTE]]
    output.print_table([], rows)


def _bar(value: float, top: float) -> str:
    if value <= 0 or top <= 0:
        return ""
    return "█" * max(1, round(value * BAR_WIDTH / top))


def _print_rich(u: Usage, since: str | None) -> None:
    from datetime import date

    from rich.console import Console
    from rich.table import Table

    from dmtool.services.budget import ESTIMATE_NOTE, summary, usd
    from dmtool.services.usage import FAMILY_NAMES

    console = Console(no_color=bool(os.environ.get("NO_COLOR")), highlight=False)
    where = "the sandbox X" if u.backend == "sandbox" else "X"
    console.print(f"[bold]Requests to {where}[/] ({u.first_day} to {u.last_day}, UTC days)")
    costs = [u.prices.cost(d.total().billable) for d in u.days]
    top = max(costs, default=0.0)
    chart = Table(show_edge=False, header_style="bold", box=None, pad_edge=False)
    for name, justify in (("day", "left"), ("requests", "right"), ("read", "right"),
                          ("billed", "right"), ("cost", "right"), ("", "left")):
        chart.add_column(name, justify=justify)  # type: ignore[arg-type]
    for d, cost in zip(u.days, costs, strict=True):
        t = d.total()
        chart.add_row(date.fromisoformat(d.date).strftime("%a %d %b"), str(t.requests),
                      str(sum(t.raw.values())), str(sum(t.billable.values())), usd(cost),
                      f"[cyan]{_bar(cost, top)}[/]")
    total = u.total()
    chart.add_row("[bold]total[/]", f"[bold]{total.requests}[/]", str(sum(total.raw.values())),
                  str(sum(total.billable.values())), f"[bold]{usd(u.prices.cost(total.billable))}[/]",
                  "")
    console.print(chart)
    families = u.families()
    if families:
        console.print()
        console.print("[bold]By endpoint family[/] (billed after X's same-day rule)")
        by = Table(show_edge=False, header_style="bold", box=None, pad_edge=False)
        for name in ("family", "requests", "billed", "cost"):
            by.add_column(name, justify="left" if name in ("family", "billed") else "right")
        for f, units in families.items():
            by.add_row(FAMILY_NAMES.get(f, f), str(units.requests), _units_text(units),
                       usd(u.prices.cost(units.billable)))
        console.print(by)
    console.print()
    console.print(f"[bold]Month {u.month}[/] so far: {u.month_units.requests} requests, "
                  f"{usd(u.prices.cost(u.month_units.billable))}")
    console.print(f"[bold]Budget[/] (UTC): {summary(u.periods)}")
    console.print()
    has = f"data since {since}" if since else "no requests recorded yet"
    console.print(f"This is {ESTIMATE_NOTE}. The ledger has {has}.")


def register(app: typer.Typer) -> None:
    app.command("usage")(usage_cmd)
