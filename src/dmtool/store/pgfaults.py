"""PostgreSQL's failures as dmtool's errors: what store/faults.py is for SQLite.

The same classes, decided by the SQLSTATE the server sends (never the
message, which the server may translate), so that nothing above store/
sees a psycopg2 exception and a person gets the same line and exit code
whichever engine answers:
- disk_full (53100)                         -> DiskFull
- read_only_sql_transaction (25006), a standby or a read-only database
                                            -> StoreReadOnly
- lock_not_available (55P03: lock_timeout), deadlock_detected (40P01),
  serialization_failure (40001)             -> StoreBusy. The server rolled the
  whole transaction back, so running the command again is safe; nothing
  retries by itself. Where the transaction follows an X request (recording
  a DM X accepted), services/send.py says that instead: E_SEND_UNKNOWN, and
  the next send reconciles.
- data_corrupted (XX001), index_corrupted (XX002), a table the migrations
  create that is gone (42P01)               -> StoreDamaged
- a lost or refused connection (class 08, an OperationalError or
  InterfaceError without a code), the server shutting down (57P01-57P03),
  out of memory or connections (53200, 53300, 53400) -> StoreUnavailable
  (exit 5: temporary)
- insufficient_privilege (42501)            -> a ConfigError: the role's grants
Anything else (a bad query, a constraint dmtool should have checked) is a bug:
it stays what it is, and the CLI reports it as internal.

Imported by store/pg.py only, so never on the SQLite default's path.
"""

from __future__ import annotations

import re
from typing import NoReturn

from dmtool.errors import (
    ConfigError,
    DiskFull,
    StoreBusy,
    StoreDamaged,
    StoreReadOnly,
    StoreUnavailable,
)
from dmtool.store.faults import DAMAGE_HINT
from dmtool.store.url import StoreLocation, mask

BUSY = frozenset({"55P03", "40P01", "40001"})
DAMAGED = frozenset({"XX001", "XX002"})
UNAVAILABLE = frozenset({"57P01", "57P02", "57P03", "53200", "53300", "53400"})
_RELATION = re.compile(r'relation "(?:[^".]+\.)?([^"]+)" does not exist')


def first_line(e: BaseException) -> str:
    """The error's first line, any URL in it masked."""
    text = str(e).strip().splitlines()
    return mask(text[0] if text else type(e).__name__)


def _missing_table(e: BaseException) -> str | None:
    """The dmtool table an undefined_table error names, if the migrations create it."""
    from dmtool.store.pgcheck import expected_objects

    m = _RELATION.search(str(e))
    if m is None:
        return None
    name = m.group(1)
    return name if ("table", name) in expected_objects() else None


def translate(e: BaseException, location: StoreLocation) -> BaseException:
    """dmtool's error for a psycopg2 error on the store at `location`; `e`
    itself for a bug (see the module's docstring)."""
    import psycopg2

    code = getattr(e, "pgcode", None) or ""
    where = location.shown
    if code == "53100":
        return DiskFull(f"disk full: the PostgreSQL server of {where} cannot write",
                        hint="free space on the server (or ask its administrator), then run "
                             "the command again")
    if code == "25006":
        return StoreReadOnly(f"cannot write to the PostgreSQL store {where}: the server is "
                             "read-only (a standby, or default_transaction_read_only)",
                             hint="point store.url at the primary server; commands that only "
                                  "read still work")
    if code in BUSY:
        return StoreBusy("the store is busy in another dmtool process (nothing of this step "
                         "was written)", hint="try again in a moment")
    if code in DAMAGED:
        return StoreDamaged(f"the PostgreSQL store {where} is damaged: {first_line(e)}",
                            hint="restore a dump with pg_restore (docs/team.md); `dmtool db "
                                 "check` lists what it can see")
    if code == "42P01" and (table := _missing_table(e)) is not None:
        return StoreDamaged(f"the store {where} is damaged: it has no table {table}",
                            hint=DAMAGE_HINT.replace("`dmtool db restore FILE`",
                                                     "pg_restore (docs/team.md)"))
    if code == "42501":
        return ConfigError(f"the PostgreSQL role may not do this in {where}: {first_line(e)}",
                           code="E_STORE_PRIVILEGE", hint="see docs/team.md for the grants")
    if code in UNAVAILABLE:
        return StoreUnavailable(f"the PostgreSQL server of {where} cannot serve now: "
                                f"{first_line(e)}", hint="run the command again in a moment")
    if code.startswith("08") or (not code and isinstance(
            e, psycopg2.OperationalError | psycopg2.InterfaceError)):
        return StoreUnavailable(f"lost the connection to the PostgreSQL store {where}: "
                                f"{first_line(e)}", hint="check the server and the network, then "
                                                         "run the command again")
    return e


def reraise(e: BaseException, location: StoreLocation) -> NoReturn:
    """Raise dmtool's error for `e` (chained to it), or `e` itself for a bug."""
    err = translate(e, location)
    if err is e:
        raise e
    raise err from e
