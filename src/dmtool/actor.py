"""Who is acting: the name every audit entry records as its `actor`.

A person is `DMTOOL_OPERATOR`, else config `operator.name`, else the OS login
name (`getpass.getuser()`, which reads LOGNAME/USER and the password database:
`os.getlogin()` needs a controlling terminal and fails under cron). What sync
does on its own is `sync`, and the acknowledgements it sends `autoack`.

The invocation sets the operator once (AppState, when it opens the store);
code acting for itself (sync, autoack) says so with `acting_as`. The audit
writer reads `current()`, so no call site has to pass a name along.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar

SYNC = "sync"
AUTOACK = "autoack"
ENV = "DMTOOL_OPERATOR"

_operator: ContextVar[Callable[[], str | None] | None] = ContextVar("dmtool_operator",
                                                                   default=None)
_acting: ContextVar[str | None] = ContextVar("dmtool_acting", default=None)


def operator_name(environ: Mapping[str, str], configured: str | None = None) -> str | None:
    """The person at the keyboard (or the cron job's user): see the module doc.
    None only when the OS cannot name the user either."""
    for name in (environ.get(ENV), configured):
        if name and name.strip():
            return name.strip()
    for var in ("LOGNAME", "USER", "LNAME", "USERNAME"):  # what getpass.getuser reads first
        if environ.get(var):
            return environ[var]
    import getpass  # then the password database

    try:
        return getpass.getuser() or None
    except (OSError, KeyError, ImportError):  # no LOGNAME/USER and a uid without a passwd entry
        return None


def set_operator(resolve: Callable[[], str | None] | None) -> None:
    """How this invocation finds its operator (None: from os.environ alone).
    Resolved only when an entry is written: most commands write none, and
    getpass need not be imported for them."""
    _operator.set(resolve)


def current() -> str | None:
    """Who the next audit entry is written for."""
    acting = _acting.get()
    if acting is not None:
        return acting
    resolve = _operator.get()
    if resolve is not None:
        return resolve()
    import os

    return operator_name(os.environ)


@contextlib.contextmanager
def acting_as(name: str) -> Iterator[None]:
    """Audit what happens inside as `name` (sync, autoack)."""
    token = _acting.set(name)
    try:
        yield
    finally:
        _acting.reset(token)


def same_person(a: str | None, b: str | None) -> bool:
    """Whether two operator names are one person (names are not case-sensitive,
    as `log --actor` reads them). An unknown name is nobody's."""
    return a is not None and b is not None and a.strip().casefold() == b.strip().casefold()
