"""The Typer glue: every command finds the invocation's AppState on ctx.obj."""

from __future__ import annotations

from typing import Any

import typer

from dmtool.appstate import AppState


def state(ctx: typer.Context) -> AppState:
    obj: Any = ctx.find_root().obj
    if not isinstance(obj, AppState):
        obj = AppState()
        ctx.find_root().obj = obj
    return obj
