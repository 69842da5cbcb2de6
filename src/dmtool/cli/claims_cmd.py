"""`dmtool claim` and `dmtool release`: "I am answering this one", for a while."""

from __future__ import annotations

from typing import Annotated

import typer

from dmtool import output
from dmtool.cli.context import state
from dmtool.cli.params import HandleArg, minutes_option

ForceClaimOpt = Annotated[bool, typer.Option(
    "--force", help="Take over another person's live claim (recorded in the log under your "
                    "name).")]


def claim_cmd(
    ctx: typer.Context,
    handle: HandleArg,
    minutes: Annotated[int, minutes_option(
        "How long the claim lasts, 1 to 1440 minutes; drafting to them renews it.")] = 30,
    force: ForceClaimOpt = False,
) -> None:
    """Claim a conversation: while the claim lasts, other people's drafts,
    replies and sends to this contact are refused (exit 3, E_CLAIMED) unless
    they add --force. Drafting to them renews it; claiming again extends it."""
    from dmtool.services.claims import claim

    st = state(ctx)
    contact, c = claim(st, handle, minutes=minutes, force=force)
    output.info(f"@{contact.handle}: claimed by {c.operator} until {st.zone.show(c.until)} "
                f"({st.zone.name})")


def release_cmd(
    ctx: typer.Context,
    handle: HandleArg,
    force: Annotated[bool, typer.Option(
        "--force", help="Release another person's claim (recorded in the log under your "
                        "name).")] = False,
) -> None:
    """End your claim on a conversation (another person's only with --force)."""
    from dmtool.services.claims import release

    contact, held = release(state(ctx), handle, force=force)
    output.info(f"@{contact.handle}: " + (f"released ({held.operator}'s claim)"
                                          if held is not None else "was not claimed"))


def register(app: typer.Typer) -> None:
    app.command("claim")(claim_cmd)
    app.command("release")(release_cmd)
