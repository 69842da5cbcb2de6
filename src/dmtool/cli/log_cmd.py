"""`dmtool log`: the audit log, with filters."""


from typing import Annotated, Any

import typer

from dmtool import output
from dmtool.cli.completion import complete_handle
from dmtool.cli.context import state
from dmtool.cli.params import JsonOpt, limit_option, resolve_since, since_option


def _detail_text(detail: dict[str, Any]) -> str:
    parts = []
    for k, v in detail.items():
        if k == "text" or v is None or v == "":
            continue  # the approved text is in the draft; keep the line short
        parts.append(f"{k}={v}")
    return " ".join(parts)


def log_cmd(
    ctx: typer.Context,
    json_: JsonOpt = False,
    limit: Annotated[int, limit_option("At most this many entries (0: all).", "--limit", "-n")]
    = 50,
    contact: Annotated[str | None, typer.Option(
        "--contact", metavar="HANDLE", autocompletion=complete_handle,
        help="Only entries about this contact (also one you have since forgotten).")] = None,
    since: Annotated[str | None, since_option(
        "Only since then: a duration back (30m, 24h, 7d) or a date or time "
        "(2026-11-01, 2026-11-01T09:00; local unless it has an offset).")] = None,
    action: Annotated[list[str] | None, typer.Option(
        "--action", metavar="A",
        help="Only this action (sent, refused, approved, opted_out, hook_failed, ...); "
             "repeat for several.")] = None,
    actor_: Annotated[str | None, typer.Option(
        "--actor", metavar="NAME",
        help="Only what NAME did: an operator, or `sync` and `autoack` for what sync "
             "does on its own.")] = None,
) -> None:
    """The audit log, newest first: every send, refusal, approval, rejection,
    opt-out and consent record, with who did it.

    The filters combine. Each entry's `actor` is the operator (DMTOOL_OPERATOR,
    else config operator.name, else your login name), or `sync` and `autoack`;
    entries written before dmtool recorded it have none.
    """
    from dmtool import timeutil
    from dmtool.models import clean_handle
    from dmtool.store import audit
    from dmtool.store import contacts as cstore

    st = state(ctx)
    conn = st.store.conn
    user_id = handle = None
    if contact is not None:
        handle = clean_handle(contact)
        known = cstore.find(conn, handle)
        if known is not None:
            user_id, handle = known.user_id, known.handle
    start = resolve_since(st, since, timeutil.now()) if since is not None else None
    f = audit.Filter(user_id=user_id, handle=handle, since=timeutil.fmt(start),
                     actions=tuple(action or ()), actor=actor_)
    entries = audit.entries(conn, f, limit or None)
    if json_:
        output.print_json(entries)
        return
    if not entries and f.actions:
        unknown = sorted(set(f.actions) - set(audit.actions(conn)))
        if unknown:
            output.info(f"the log has no action {', '.join(unknown)}; it has: "
                        f"{', '.join(audit.actions(conn))}")
            return
    output.print_table(
        ["at", "action", "contact", "draft", "codes", "detail", "actor"],
        [[st.zone.show(e["at"], seconds=True), e["action"], "@" + e["handle"] if e["handle"] else "",
          e["draft_id"], " ".join(e["codes"]), _detail_text(e["detail"]), e["actor"]]
         for e in entries],
        empty="no entries match" if (contact or since or action or actor_)
        else "the audit log is empty")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("log")(log_cmd)
