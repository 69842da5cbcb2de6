"""One error hierarchy: every failure carries its exit code and a stable E_ code.

The CLI root turns any DmtoolError into one line on stderr (or a JSON error)
in a single place, so commands never format errors themselves.
"""

from __future__ import annotations

import errno


class DmtoolError(Exception):
    """Base class. Subclasses fix the exit code; instances may refine the code."""

    exit_code = 1
    code = "E_ERROR"

    def __init__(self, message: str, *, code: str | None = None, hint: str | None = None,
                 details: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details  # structured specifics for --json (e.g. bad import rows)
        if code is not None:
            self.code = code


class InputError(DmtoolError):
    """Bad input: a malformed file, an invalid value (exit 1)."""

    code = "E_INPUT"


class NotFound(DmtoolError):
    """A contact, draft, template or user that does not exist (exit 1)."""

    code = "E_NOT_FOUND"


class UsageError(DmtoolError):
    """Wrong call, or a confirmation is needed and --yes was not given (exit 2)."""

    exit_code = 2
    code = "E_USAGE"


class PolicyRefused(DmtoolError):
    """Refused by the consent gate, caps, duplicates or lint (exit 3)."""

    exit_code = 3
    code = "E_POLICY"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        hint: str | None = None,
        reasons: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message, code=code, hint=hint)
        self.reasons = reasons or []


class ConfigError(DmtoolError):
    """A config file or setting a human must fix (exit 4)."""

    exit_code = 4
    code = "E_CONFIG"


class AuthError(DmtoolError):
    """No credentials, expired or revoked ones, or a paid-access problem (exit 4)."""

    exit_code = 4
    code = "E_AUTH"


class TeamRefused(DmtoolError):
    """Refused by the team's rules (exit 3): a role that does not allow it
    (E_ROLE, naming the role needed), the last owner (E_LAST_OWNER)."""

    exit_code = 3
    code = "E_ROLE"


class NotAMember(DmtoolError):
    """The store has a team and the operator is not in it (exit 4): an owner
    must add them, or they must go by the name they were added under."""

    exit_code = 4
    code = "E_NOT_A_MEMBER"


class BudgetExceeded(DmtoolError):
    """A request to X could take spending past the budget the user set
    (x.budget.day_usd or x.budget.month_usd): it is not made (exit 4: a person
    raises the budget, or waits for the next UTC day or month). `budget` is
    "day" or "month"; `spent` and `limit` are in US dollars."""

    exit_code = 4
    code = "E_BUDGET"

    def __init__(self, message: str, *, budget: str, spent: float, limit: float,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.budget = budget
        self.spent = spent
        self.limit = limit


class TemporaryError(DmtoolError):
    """Something that may work later (exit 5)."""

    exit_code = 5
    code = "E_TEMPORARY"


# X limits each family of endpoints in its own window (x-api.md "Limits and
# cost"), so a 429 pauses only its family. The names are stable: sync_state
# keys and JSON use them.
RATE_FAMILIES: dict[str, str] = {
    "dm_read": "reading DMs",  # GET /2/dm_events, /2/dm_conversations/with/{id}/dm_events
    "dm_send": "sending DMs",  # POST /2/dm_conversations/with/{id}/messages
    "timelines": "reading mentions and posts",  # /2/users/{id}/mentions, /2/users/{id}/tweets
    "users": "looking up users",  # /2/users/me, /2/users, /2/users/by/username/{name}
}


class RateLimited(TemporaryError):
    """X answered 429 for one family of endpoints (RATE_FAMILIES); dmtool makes
    no request of that family until reset_at (epoch seconds)."""

    code = "E_RATE_LIMITED"

    def __init__(self, message: str, *, reset_at: int | None = None, hint: str | None = None,
                 family: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reset_at = reset_at
        self.family = family


class Unavailable(TemporaryError):
    """X is having trouble, or the network is down."""

    code = "E_UNAVAILABLE"


class StoreUnavailable(TemporaryError):
    """The store's server cannot be reached, or the connection to it was lost
    (PostgreSQL). A person-fixable store problem (bad password, no such
    database, no driver) is a ConfigError with an E_STORE_ code instead."""

    code = "E_STORE_UNAVAILABLE"


class Busy(TemporaryError):
    """Another dmtool process holds the lock this command needs."""

    code = "E_BUSY"


class DMClosed(DmtoolError):
    """X answered 403 to a send: the recipient does not accept our DMs (exit 3)."""

    exit_code = 3
    code = "E_DM_CLOSED"


# --- the store and the files under the profile's folders --------------------------
# Raised by store/ (whatever the engine) and by the code that writes dmtool's
# files, so the CLI root maps only DmtoolError and never a driver's exceptions.


class StoreError(DmtoolError):
    """The store (or a file dmtool keeps) cannot be used as it is: a person must
    act (exit 4, like a broken config), retrying the same command will not help."""

    exit_code = 4
    code = "E_STORE"


class StoreDamaged(StoreError):
    """The store's file is damaged (SQLite: corrupt, not a database)."""

    code = "E_STORE_DAMAGED"


class DiskFull(StoreError):
    """No space left where the store or a file of dmtool's is written. Nothing
    is damaged: freeing space and running the command again finishes it."""

    code = "E_DISK_FULL"


class StoreReadOnly(StoreError):
    """A write where dmtool may not write: a read-only filesystem, or folders
    and files owned by someone else. Commands that only read still work."""

    code = "E_READ_ONLY"


class StoreBusy(Busy):
    """Another process holds the store's write lock longer than dmtool waits (exit 5)."""


# A full quota is a full disk to the user.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
_NO_WRITE = frozenset({errno.EPERM, errno.EACCES, errno.EROFS})


def write_failed(path: object, e: OSError, *, what: str = "") -> DmtoolError:
    """The error for an OSError met writing `path`, decided by errno: a full disk
    says so and nothing else; a refused write says where. `what` is a lead-in
    such as "config not saved: "."""
    if e.errno in NO_SPACE:
        return DiskFull(f"{what}disk full: cannot write to {path}",
                        hint="free some space, then run the command again")
    if e.errno in _NO_WRITE:
        return StoreReadOnly(f"{what}cannot write to {path}: {e.strerror or e}",
                             hint="check that the folder is yours and not on a read-only disk; "
                                  "commands that only read still work")
    return StoreError(f"{what}cannot write to {path}: {e.strerror or e}")
