"""`db backup` and `db restore`: copies of the store that can be trusted, and
going back to one without bringing back anyone who opted out or letting a DM
go twice.

A backup is checked after it is written: a damaged store makes a damaged copy,
and a copy that is never checked is found out only when it is needed. A
restore checks the file, holds the send and sync locks, keeps the current
store aside, and carries over from it what protects people (store/backup.py:
opt-outs, blocks, reviews, the send ledger, X's pauses). Every draft that may
have gone out since the backup becomes `unknown`, so `send` asks X first; the
sync cursors start over, so the next sync reads again what X still has.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmtool import timeutil
from dmtool.errors import ConfigError, InputError, StoreDamaged, StoreError
from dmtool.services import poller
from dmtool.services.identity import K_NAMING_AFTER
from dmtool.services.ratelimits import FAMILIES
from dmtool.services.ratelimits import key as pause_key
from dmtool.services.sync import (
    K_ARCHIVE_ACCOUNT,
    K_HWM,
    K_HWM_AT,
    K_ME_ID,
    K_ME_USERNAME,
    K_MENTIONS,
    K_POSTS,
    K_PUBLIC_AT,
    K_WALK,
)
from dmtool.store import backup as bstore
from dmtool.store import contacts as cstore
from dmtool.store.db import side_files
from dmtool.store.migrations import MIGRATIONS
from dmtool.store.team import CREDENTIALS_KEY as TEAM_CREDENTIALS
from dmtool.timeutil import fmt

if TYPE_CHECKING:
    from dmtool.appstate import AppState

# Where the sync stands: reset by a restore, so the next sync reads again what
# X still has (the last 30 days of DMs) instead of stopping at a newer cursor.
SYNC_CURSORS = (K_HWM, K_HWM_AT, K_WALK, K_MENTIONS, K_POSTS, K_PUBLIC_AT, K_NAMING_AFTER)
ACCOUNT_KEYS = (K_ME_ID, K_ME_USERNAME, K_ARCHIVE_ACCOUNT)


def _own_files(db: Path) -> set[Path]:
    """The store and its side files, under every name that reaches them."""
    out: set[Path] = set()
    for base in {db.absolute(), db.resolve()}:
        out |= {base, *side_files(base)}
    return out


def _is_own(db: Path, path: Path) -> bool:
    where = {path.absolute(), path.parent.resolve() / path.name}
    return bool(where & _own_files(db))


def _side_file_of_a_store(path: Path) -> Path | None:
    """`x.db-wal`, `x.db-shm`, `x.db-journal` beside an existing `x.db`: SQLite's own."""
    for suffix in ("-wal", "-shm", "-journal"):
        if path.name.endswith(suffix):
            base = path.with_name(path.name[: -len(suffix)])
            if base.is_file():
                return base
    return None


# --- db backup ---------------------------------------------------------------------------


def _db_file(st: AppState) -> Path | None:
    """The SQLite file of this profile's store (None: a PostgreSQL store)."""
    return st.store_location().path


def backup(st: AppState, dest: Path) -> None:
    """Write a checked copy of the store to `dest` (a new file). A PostgreSQL
    store is dumped by pg_dump (PgStore.backup), which checks its own work."""
    db = _db_file(st)
    if db is not None and _is_own(db, dest):
        raise InputError(f"{dest} is this profile's store or one of SQLite's files beside it",
                         hint="write the backup to another file, e.g. in another folder")
    base = _side_file_of_a_store(dest)
    if base is not None:
        raise InputError(f"{dest} is a name SQLite uses for its own file beside {base}",
                         hint="choose another file name")
    if dest.exists() or dest.is_symlink():
        raise InputError(f"{dest} already exists", hint="choose a new file name")
    if not dest.parent.is_dir():
        raise InputError(f"no such folder: {dest.parent}", hint="create it first")
    store = st.store
    old = os.umask(0o077)
    try:
        store.backup(dest)
    finally:
        os.umask(old)
    if db is None:
        return
    _, problems = bstore.file_problems(dest)
    if problems:
        for p in (dest, *side_files(dest)):
            p.unlink(missing_ok=True)
        raise StoreDamaged(
            f"the store is damaged, so a backup would copy the damage: nothing written "
            f"({len(problems)} problem{'s' if len(problems) != 1 else ''}, first: {problems[0]})",
            hint="`dmtool db check` lists the problems; restore an earlier backup with "
                 "`dmtool db restore FILE`")


# --- db restore --------------------------------------------------------------------------


@dataclass
class Candidate:
    """A backup file that passed the checks, and what it holds."""

    file: Path
    schema_version: int
    summary: dict[str, Any]


@dataclass
class RestoreResult:
    file: Path
    kept_aside: Path | None
    kept: dict[str, int] = field(default_factory=dict)  # opted_out, blocked, reviews, sends
    drafts_unknown: list[int] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


def check_backup(st: AppState, file: Path) -> Candidate:
    """Is `file` a store this profile can go back to? InputError when not."""
    db = _db_file(st)
    if db is None:
        raise ConfigError(
            "db restore replaces a SQLite store's file; a PostgreSQL store is restored "
            "with pg_restore", code="E_STORE_RESTORE",
            hint=f"stop every dmtool on it, then `pg_restore --clean --if-exists --no-owner "
                 f"--single-transaction -d DATABASE {file}` (docs/team.md: restoring); "
                 "the next `dmtool sync` reads again what X still has")
    if _is_own(db, file):
        raise InputError(f"{file} is this profile's own store", hint="give a backup file")
    if not file.is_file():
        raise InputError(f"no such file: {file}")
    if not os.access(file, os.R_OK):
        raise InputError(f"cannot read {file}: permission denied",
                         hint="check that the file is yours")
    version, problems = bstore.file_problems(file)
    if version is None or version == 0:
        raise InputError(f"{file} is not a dmtool store" + (f" ({problems[0]})" if problems else ""),
                         hint="give a file written by `dmtool db backup`")
    if version > len(MIGRATIONS):
        raise ConfigError(f"{file} was written by a newer dmtool (schema {version})",
                          hint="upgrade dmtool to restore it")
    if problems:
        raise InputError(f"{file} is damaged: nothing restored ({problems[0]})",
                         hint="restore another backup")
    theirs = bstore.state_value_of(file, K_ME_ID) or bstore.state_value_of(file, K_ARCHIVE_ACCOUNT)
    ours = _current_account(st)
    if theirs and ours and theirs != ours:
        raise InputError(f"{file} is the store of another X account (user {theirs}); this "
                         f"profile is user {ours}: nothing restored",
                         hint="restore it into that account's profile: `dmtool --profile NAME "
                              "db restore FILE`")
    return Candidate(file, version, bstore.file_summary(file))


def _current_account(st: AppState) -> str | None:
    db = _db_file(st)
    if db is None or not db.exists():
        return None
    try:
        store = st.store
        return store.get_state(K_ME_ID) or store.get_state(K_ARCHIVE_ACCOUNT)
    except StoreError:  # a damaged store cannot say: the backup decides
        return None


def restore(st: AppState, candidate: Candidate) -> RestoreResult:
    """Replace the store with the backup (see the module's docstring)."""
    from dmtool.services.send import send_lock
    from dmtool.services.sync import sync_lock
    from dmtool.store import open_store
    from dmtool.store.db import FileLocks

    db = _db_file(st)
    assert db is not None  # check_backup refused a PostgreSQL store
    st.paths.ensure()
    # The store's locks, taken without opening it: it may be too damaged to open.
    locks = FileLocks(st.paths.state_dir, beside=db.parent)
    with sync_lock(locks, "restore: ", poller.me(st, "restore")), send_lock(st, locks=locks):
        now = fmt(timeutil.now()) or ""
        kept = _salvage(st)
        aside = _aside_name(db, now) if db.exists() else None
        tmp = db.with_name(db.name + ".restoring")
        _remove(tmp)
        old = os.umask(0o077)
        try:
            bstore.copy_file(candidate.file, tmp)
            restored = open_store(tmp)  # brings an older backup up to this version
            try:
                with restored.tx() as conn:
                    counts = bstore.merge(conn, kept)
                    unknown = bstore.unsettle_drafts(conn, now=now)
                    bstore.set_state_values(conn, [(k, None) for k in SYNC_CURSORS])
                    pauses = {pause_key(f) for f in FAMILIES}
                    bstore.set_state_values(conn, [kv for kv in kept.state if kv[0] in pauses],
                                            later=True)
                    bstore.set_state_values(conn, [kv for kv in kept.state if kv[0] in ACCOUNT_KEYS],
                                            missing_only=True)
                    # The team's X tokens as they are now: X has retired the
                    # refresh token an older backup holds.
                    bstore.set_state_values(conn, [kv for kv in kept.state
                                                   if kv[0] == TEAM_CREDENTIALS and kv[1]])
                    cstore.audit(conn, "restored", now=now, file=str(candidate.file),
                                 kept_aside=str(aside) if aside else None, drafts_unknown=unknown,
                                 unreadable=kept.unreadable, kept=counts)
                bstore.seal(restored)
            finally:
                restored.close()
        except BaseException:
            _remove(tmp)
            raise
        finally:
            os.umask(old)
        st.close()  # our connection to the old store: checkpointed and closed before it moves
        _swap(db, tmp, aside)
    return RestoreResult(candidate.file, aside, counts, unknown, kept.unreadable)


def _swap(db: Path, new: Path, aside: Path | None) -> None:
    """Put `new` in the store's place, keeping the old store as `aside`. The
    store's name never points at nothing: the old file gets its second name
    first (a hard link), then `new` replaces it in one rename."""
    if aside is not None:
        try:
            os.link(db, aside)
        except OSError:  # a filesystem without hard links: move it (a moment without a store)
            os.replace(db, aside)
        for src, dst in zip(side_files(db), side_files(aside), strict=True):
            if src.exists():  # a WAL not checkpointed belongs with the old store
                os.replace(src, dst)
    os.replace(new, db)


def _salvage(st: AppState) -> bstore.Salvage:
    """What the current store holds that the restored one must keep."""
    db = _db_file(st)
    if db is None or not db.exists():
        return bstore.Salvage()
    keys = [pause_key(f) for f in FAMILIES] + list(ACCOUNT_KEYS) + [TEAM_CREDENTIALS]
    try:
        return bstore.salvage(st.store.conn, state_keys=keys)
    except StoreError as e:  # cannot even be opened: nothing to keep from it
        return bstore.Salvage(unreadable=[f"nothing at all ({e.message})"])


def _aside_name(db: Path, now: str) -> Path:
    stamp = "".join(ch for ch in now[:19] if ch.isdigit() or ch == "T")
    aside = db.with_name(f"{db.name}.before-restore-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = db.with_name(f"{db.name}.before-restore-{stamp}-{n}")
    return aside


def _remove(path: Path) -> None:
    for p in (path, *side_files(path)):
        p.unlink(missing_ok=True)
