"""`dmtool sandbox ...`: the other side of a sandbox profile's X."""

from __future__ import annotations

from typing import Annotated

import typer

from dmtool import output
from dmtool.cli.context import state

sandbox_app = typer.Typer(help="The built-in sandbox X of a sandbox profile: make someone DM you.",
                          no_args_is_help=True)


@sandbox_app.command("receive")
def sandbox_receive(
    ctx: typer.Context,
    handle: Annotated[str, typer.Argument(
        help="Who writes to you: someone on the sandbox X (the demo's people: @maya_builds, "
             "@theo_writes, @quiet_quinn, @sam_stops, @closed_carla).")],
    text: Annotated[str, typer.Argument(help="What they write, e.g. STOP.")],
    at: Annotated[str | None, typer.Option(
        "--at", help="When they wrote it: ISO 8601, local time unless it has an offset "
                     "(default: now).")] = None,
    new: Annotated[bool, typer.Option(
        "--new", help="Make them a new sandbox user first if the sandbox has no such handle.")]
    = False,
) -> None:
    """Make someone on the sandbox X send you a DM (sandbox profiles only). The
    next `dmtool sync` reads it like any other DM: try STOP, or "please stop
    messaging me", and see what dmtool does."""
    from dmtool.services.sandbox import parse_time, receive

    st = state(ctx)
    when = parse_time(st, at) if at is not None else None
    r = receive(st, handle, text, when, new=new)
    if r.added:
        output.info(f"@{r.handle} is new on this sandbox X (user {r.user_id})")
    dmtool = "dmtool" if st.profile == "default" else f"dmtool --profile {st.profile}"
    output.info(f"@{r.handle} sent you a DM on the sandbox X (event {r.event_id}): "
                f"`{dmtool} sync` reads it")
    if r.outside_window:
        output.info("note: it is older than 30 days, and X (like the sandbox) returns only the "
                    "last 30 days of DMs: sync will not see it")


def register(app: typer.Typer) -> None:
    app.add_typer(sandbox_app, name="sandbox")
