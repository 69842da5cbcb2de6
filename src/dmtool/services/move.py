"""`dmtool db migrate-to URL`: copy this profile's store into an empty store
elsewhere (SQLite to PostgreSQL, or back to a SQLite file so a team can leave).

The source is left as it was. While copying, the send and sync locks are
held (no DM leaves, no sync writes), and a draft whose send is unsettled
(`sending`, `unknown`) refuses the move: its outcome must be known first.
A non-empty target is refused unless it is a complete earlier copy of this
very store (the same store id, the same rows and keys): "already migrated".
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dmtool.errors import Busy, InputError
from dmtool.models import UNSETTLED
from dmtool.store import copy as scopy
from dmtool.store import drafts as dstore
from dmtool.store.url import StoreLocation, parse

if TYPE_CHECKING:
    from dmtool.appstate import AppState
    from dmtool.store.copy import Progress, TableCheck

LOCK_WAIT_S = 10.0


@dataclass
class MoveResult:
    source: str
    target: str
    engine: str
    already: bool = False
    tables: list[TableCheck] = field(default_factory=list)
    next_step: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target, "engine": self.engine,
                "already_migrated": self.already, "tables": [t.to_dict() for t in self.tables],
                "next": self.next_step}


def _next_step(st: AppState, target: StoreLocation) -> str:
    if target.is_postgres:
        return (f"dmtool config set store.url '{target.shown}'  (keep the password in ~/.pgpass "
                "or PGPASSWORD, not in config.toml)")
    if target.path is not None and target.path.resolve() == st.paths.db_file.resolve():
        return "dmtool config set store.url ''"
    return f"dmtool config set store.url 'sqlite:///{target.path}'"


def move_store(st: AppState, url: str, progress: Progress | None = None) -> MoveResult:
    from dmtool.locks import LockTimeout
    from dmtool.store import open_store

    target = parse(url, where="the target")
    source = st.store
    if target.shown == source.location.shown or (
            target.path is not None and source.location.path is not None
            and target.path.resolve() == source.location.path.resolve()):
        raise InputError("the target is this profile's own store", hint="name another store")
    if target.path is not None and target.path.exists() and target.path.is_dir():
        raise InputError(f"{target.path} is a folder", hint="name a file for the SQLite store")
    result = MoveResult(source.location.shown, target.shown, target.engine,
                        next_step=_next_step(st, target))
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(source.lock("send", LOCK_WAIT_S))
            held.enter_context(source.lock("sync", 0))
        except LockTimeout:
            raise Busy("a send or a sync is running on this store",
                       hint="run the move again when it has finished") from None
        unsettled = dstore.list_drafts(source.conn, UNSETTLED)
        if unsettled:
            d = unsettled[0]
            raise InputError(f"draft {d.id}'s send is {d.status}: its outcome must be known "
                             "before the store moves", code="E_UNSETTLED",
                             hint=f"run `dmtool send {d.id}` to settle it, then move the store")
        dest = open_store(target)
        held.callback(dest.close)
        with source.snapshot():
            if not scopy.is_empty(dest):
                if dest.get_state("store_id") == source.get_state("store_id") and \
                        _same(source, dest):
                    result.already = True
                    result.tables = [scopy.check(dest, t) for t in scopy.tables(dest)]
                    return result
                raise InputError(f"the target store {target.shown} is not empty",
                                 code="E_TARGET_NOT_EMPTY",
                                 hint="migrate into a new, empty database (or schema, or file)")
            result.tables = scopy.copy_all(source, dest, progress)
    return result


def _same(a: Any, b: Any) -> bool:
    names = scopy.tables(a)
    return names == scopy.tables(b) and all(scopy.check(a, t) == scopy.check(b, t) for t in names)
