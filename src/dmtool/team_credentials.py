"""Shared X credentials on a team store (issue 15 point 7).

X rotates the OAuth 2.0 refresh token at every refresh, so two machines that
each keep their own copy lock each other out within a day. On a store with
team members, the account's OAuth 2.0 tokens therefore live in the store,
encrypted (Fernet, from `cryptography`: AES-128-CBC with an HMAC, so a wrong
key is told from damage) with a key the database never sees: the team key,
from `DMTOOL_TEAM_KEY` or this machine's OS keyring. Whoever needs a
refresh takes the store's credentials lock, re-reads, refreshes once and
writes back (credentials.refresh_if_needed with a `SharedPlace`).

`cryptography` and `keyring` are imported inside the functions that need
them: only commands that talk to X (and `auth status`, `team key`) on a team
store that keeps credentials ever load them. The key and the tokens never
reach a message, a log line or a traceback: errors name where the key came
from, never a value, and both are registered for redaction in -v logs.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmtool.credentials import LOCK_WAIT_S, Credentials, keyring_account
from dmtool.errors import AuthError, Busy, InputError
from dmtool.record import Record
from dmtool.store.team import CREDENTIALS_KEY

if TYPE_CHECKING:
    from dmtool.store import Store

log = logging.getLogger("dmtool.credentials")

KEY_ENV = "DMTOOL_TEAM_KEY"
STATE_KEY = CREDENTIALS_KEY  # sync_state row: one Fernet token (the credentials' JSON)
KEYRING_FIELD = "team_key"
FROM_KEYRING = "the OS keyring"

_NO_KEY_HINT = ("ask an owner of the team for the team key, then run `dmtool team key set` "
                f"(it keeps it in the OS keyring) or set {KEY_ENV}")
_WRONG_KEY_HINT = ("ask an owner for the current team key (`dmtool team key set`); an owner who "
                   "lost it runs `dmtool team key new --replace`, then `dmtool auth login`")


class TeamKey(Record):
    __slots__ = ("value", "source")
    value: str
    source: str  # KEY_ENV or FROM_KEYRING

    def __init__(self, value: str, source: str) -> None:
        self.value = value
        self.source = source


def key_account(credentials_file: Path) -> str:
    """This machine's keyring entry for the team key of a profile."""
    return keyring_account(credentials_file) + "#team-key"


def has_team(store: Store) -> bool:
    from dmtool.store import team

    return team.has_members(store.conn)


def stored(store: Store) -> bool:
    """Whether this store keeps the team's X credentials (no decryption, no import)."""
    return has_team(store) and store.get_state(STATE_KEY) is not None


def find_key(environ: Mapping[str, str], credentials_file: Path) -> TeamKey | None:
    """The team key: DMTOOL_TEAM_KEY, else this machine's OS keyring; None
    when neither has one (or there is no usable keyring)."""
    value = (environ.get(KEY_ENV) or "").strip()
    if value:
        return _registered(TeamKey(value, KEY_ENV))
    from dmtool import keyring_store

    kr, _ = keyring_store.backend()
    if kr is None:
        return None
    try:
        secrets = keyring_store.read(key_account(credentials_file))
    except AuthError as exc:  # locked or unreachable: as good as none here, but say why in -v
        log.debug("team key: the keyring could not be read (%s)", exc.code)
        return None
    value = (secrets or {}).get(KEYRING_FIELD, "")
    return _registered(TeamKey(value, FROM_KEYRING)) if value else None


def require_key(environ: Mapping[str, str], credentials_file: Path) -> TeamKey:
    key = find_key(environ, credentials_file)
    if key is None:
        raise AuthError("this store keeps the team's X credentials, encrypted with the team key, "
                        "and this machine has no team key", code="E_TEAM_KEY", hint=_NO_KEY_HINT)
    return key


def _registered(key: TeamKey) -> TeamKey:
    from dmtool.logs import register_secret

    register_secret(key.value)
    return key


def _fernet(key: TeamKey) -> Any:
    from cryptography.fernet import Fernet

    try:
        return Fernet(key.value.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise AuthError(f"the team key from {key.source} is not a team key (44 characters "
                        "made by `dmtool team key new`)", code="E_TEAM_KEY",
                        hint=_WRONG_KEY_HINT) from None


def new_key() -> str:
    """A new team key (url-safe base64 of 32 random bytes)."""
    from cryptography.fernet import Fernet

    return str(Fernet.generate_key().decode("ascii"))


def check_key(text: str, source: str) -> TeamKey:
    """A typed key, checked for its form: InputError (exit 1) if it is not one."""
    key = TeamKey(text.strip(), source)
    try:
        _fernet(key)
    except AuthError:
        raise InputError("that is not a team key (44 characters made by `dmtool team key new`)",
                         hint="copy it again, whole, from the owner who made it") from None
    return _registered(key)


def save_key(credentials_file: Path, key: TeamKey) -> str:
    """Keep the key in this machine's OS keyring; returns the keyring's name."""
    from dmtool import keyring_store

    return keyring_store.write(key_account(credentials_file), {KEYRING_FIELD: key.value})


def load(store: Store, key: TeamKey) -> Credentials | None:
    """The team's credentials from the store (source "team"), or None when it keeps none."""
    blob = store.get_state(STATE_KEY)
    if blob is None:
        return None
    from cryptography.fernet import InvalidToken

    try:
        plain = _fernet(key).decrypt(blob.encode("ascii"))
    except (InvalidToken, UnicodeEncodeError):
        raise AuthError(f"the team key from {key.source} does not open this store's X "
                        "credentials", code="E_TEAM_KEY", hint=_WRONG_KEY_HINT) from None
    try:
        data = json.loads(plain)
        creds = Credentials(**{f.name: data[f.name] for f in fields(Credentials)
                               if f.name in data and f.name != "source"}, source="team")
    except (ValueError, TypeError):
        raise AuthError("the team's X credentials in the store are not dmtool's",
                        code="E_TEAM_KEY", hint="an owner runs `dmtool auth login`") from None
    from dmtool.logs import register_secret

    for name in ("access_token", "refresh_token", "client_secret"):
        register_secret(getattr(creds, name))
    return creds


def save(store: Store, creds: Credentials, key: TeamKey) -> None:
    """Encrypt and write the credentials into the store, in one transaction."""
    doc = {f.name: getattr(creds, f.name) for f in fields(creds)
           if f.name != "source" and getattr(creds, f.name) is not None}
    blob = _fernet(key).encrypt(json.dumps(doc, sort_keys=True).encode("utf-8")).decode("ascii")
    with store.tx():
        store.set_state(STATE_KEY, blob)


def forget(store: Store) -> None:
    with store.tx():
        store.set_state(STATE_KEY, None)  # a NULL value reads as no credentials


@contextlib.contextmanager
def locked(store: Store) -> Iterator[None]:
    """Hold the store's "credentials" lock (a token refresh, a change of key):
    a file beside the SQLite file, which every member who opens it meets; on
    PostgreSQL an advisory lock the server frees if the holder's connection dies."""
    from dmtool.locks import LockTimeout

    held = contextlib.ExitStack()
    try:
        held.enter_context(store.lock("credentials", timeout=LOCK_WAIT_S))
    except LockTimeout:
        raise Busy("another dmtool process has been refreshing the team's X token for a "
                   "minute", hint="try again in a moment") from None
    with held:
        yield


class SharedPlace:
    """Where a refresh of the team's tokens is serialized and re-read
    (credentials.refresh_if_needed): the store's credentials lock, which the
    kernel frees if the holder dies, and the store itself."""

    def __init__(self, store: Store, key: TeamKey) -> None:
        self.store = store
        self.key = key

    def lock(self) -> contextlib.AbstractContextManager[None]:
        return locked(self.store)

    def read(self) -> Credentials | None:
        return load(self.store, self.key)

    def save(self, creds: Credentials) -> None:
        save(self.store, creds, self.key)
