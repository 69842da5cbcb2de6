"""Shell completion: handles, draft ids and template names from the store.

The callbacks run on every TAB: they read the store of the profile named
earlier on the command line (--profile / DMTOOL_PROFILE), through a
read-only connection, and never print an error into the shell; when there
is no store yet, or anything goes wrong, they offer nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import typer
from typer._click.shell_completion import CompletionItem, add_completion_class
from typer._completion_classes import BashComplete, FishComplete, ZshComplete

if TYPE_CHECKING:
    from dmtool.store.sql import Conn
    from dmtool.store.url import StoreLocation

MAX_CANDIDATES = 50
Candidates = list[tuple[str, str | None]]


def _location(ctx: typer.Context) -> StoreLocation:
    from dmtool.appstate import AppState
    from dmtool.paths import DEFAULT_PROFILE

    profile = ctx.find_root().params.get("profile") or DEFAULT_PROFILE
    return AppState(profile=profile).store_location()


def _lookup(ctx: typer.Context, query: Callable[[Conn], Candidates]) -> Candidates:
    try:
        from dmtool.store.completion import open_readonly

        conn = open_readonly(_location(ctx))
        if conn is None:
            return []
        try:
            return query(conn)
        finally:
            conn.close()
    except Exception:  # a bad profile name, a damaged or locked store: offer nothing
        return []


_UNSAFE = r"[^\w .,:@#+&/!?-]+"  # compiled (and cached by `re`) when first used


def _plain(text: str | None, width: int = 40) -> str | None:
    """Help text the shells show beside a candidate: one line, no quotes or
    shell syntax (zsh evaluates it), shortened."""
    if not text:
        return None
    text = " ".join(re.sub(_UNSAFE, " ", text).split())
    return text if len(text) <= width else text[:width - 3].rstrip() + "..."


def complete_handle(ctx: typer.Context, incomplete: str) -> Candidates:
    """Contacts by handle, case-insensitively, with or without a typed @."""
    from dmtool.store import completion as q

    at = "@" if incomplete.startswith("@") else ""
    typed = incomplete[len(at):]
    # Keep what was typed ("@", its case): the shells and Typer match
    # candidates against it; handles themselves are case-insensitive.
    return _lookup(ctx, lambda conn: [(at + typed + handle[len(typed):], _plain(name))
                                      for handle, name in q.handles(conn, typed, MAX_CANDIDATES)])


def complete_template(ctx: typer.Context, incomplete: str) -> Candidates:
    """Template names, with the start of their text."""
    from dmtool.store import completion as q

    return _lookup(ctx, lambda conn: [(name, _plain(text))
                                      for name, text in q.templates(conn, incomplete,
                                                                    MAX_CANDIDATES)])


def _drafts(ctx: typer.Context, incomplete: str, statuses: tuple[str, ...] | None) -> Candidates:
    from dmtool.store import completion as q

    return _lookup(ctx, lambda conn: [(str(i), f"{status}, to @{handle}")
                                      for i, status, handle in q.drafts(conn, incomplete, statuses,
                                                                        MAX_CANDIDATES)])


def complete_draft(ctx: typer.Context, incomplete: str) -> Candidates:
    """Any draft (show)."""
    return _drafts(ctx, incomplete, None)


def complete_editable_draft(ctx: typer.Context, incomplete: str) -> Candidates:
    from dmtool.store.drafts import EDITABLE

    return _drafts(ctx, incomplete, EDITABLE)


def complete_discardable_draft(ctx: typer.Context, incomplete: str) -> Candidates:
    from dmtool.store.drafts import DISCARDABLE

    return _drafts(ctx, incomplete, DISCARDABLE)


def complete_reviewable_draft(ctx: typer.Context, incomplete: str) -> Candidates:
    """What waits for a decision: new and approved drafts, and failed sends."""
    return _drafts(ctx, incomplete, ("draft", "approved", "failed"))


def complete_sendable_draft(ctx: typer.Context, incomplete: str) -> Candidates:
    """Approved drafts, and sends whose outcome `send` settles."""
    from dmtool.store.drafts import UNSETTLED

    return _drafts(ctx, incomplete, ("approved", *UNSETTLED))


# --- the shells -----------------------------------------------------------------------
# Typer's zsh and fish formatters pass every help text through rich (to strip
# markup), which costs a rich import on each TAB. These format the same lines
# without it. The bash one also undoes bash's split of "@ali" at the "@".


class _Bash(BashComplete):
    split_at = False

    def get_completion_args(self) -> tuple[list[str], str]:
        args, incomplete = super().get_completion_args()
        # "@" is in bash's COMP_WORDBREAKS: `thread @ali` arrives as "@", "ali",
        # and bash replaces only "ali". Complete "@ali"; answer without the "@".
        if args and args[-1] == "@":
            self.split_at = True
            return args[:-1], "@" + incomplete
        return args, incomplete

    def format_completion(self, item: CompletionItem) -> str:
        value = str(item.value)
        return value[1:] if self.split_at and value.startswith("@") else value


def _zsh_quote(s: str) -> str:
    for old, new in (('"', '""'), ("'", "''"), ("$", "\\$"), ("`", "\\`"), (":", r"\\:")):
        s = s.replace(old, new)
    return s


class _Zsh(ZshComplete):
    def format_completion(self, item: CompletionItem) -> str:
        value = f'"{_zsh_quote(str(item.value))}"'
        return f'{value}:"{_zsh_quote(" ".join(item.help.split()))}"' if item.help else value


class _Fish(FishComplete):
    def format_completion(self, item: CompletionItem) -> str:
        return f"{item.value}\t{' '.join(item.help.split())}" if item.help else str(item.value)


def use_dmtool_shells() -> None:
    """Answer bash, zsh and fish with the classes above (after Typer registered its own)."""
    add_completion_class(_Bash, "bash")
    add_completion_class(_Zsh, "zsh")
    add_completion_class(_Fish, "fish")
