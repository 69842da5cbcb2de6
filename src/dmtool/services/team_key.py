"""The team key (issue 15 point 7): made by an owner, kept by each member
outside the store (DMTOOL_TEAM_KEY or the OS keyring), opening the team's X
credentials in the store (dmtool/team_credentials.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from dmtool import team_credentials as shared
from dmtool.errors import AuthError, UsageError

if TYPE_CHECKING:
    from dmtool.appstate import AppState


class NewKey(NamedTuple):
    key: str
    team: bool  # the store has a team (else the key waits for one)
    rotated: bool  # the store's credentials were re-encrypted with it
    dropped: bool  # --replace threw away credentials no key here could open
    kept_in: str | None  # the keyring's name, or None (no usable keyring)


def new(st: AppState, *, replace: bool, shown: bool = True) -> NewKey:
    """Make a new team key. Credentials already in the store are re-encrypted
    with it when the current key opens them; when none here does, only
    `replace` goes on, and throws them away (an owner then logs in again).
    `shown` False (stdout goes nowhere): refused unless the keyring keeps it,
    so that no key exists that nobody has."""
    store = st.store
    path = st.paths.credentials_file
    # Under the credentials lock: a member's refresh must not write tokens
    # under the old key after they were re-encrypted under the new one.
    with shared.locked(store):
        creds = None
        dropped = False
        if shared.stored(store):
            try:
                creds = shared.load(store, shared.require_key(st.environ, path))
            except AuthError:
                if not replace:
                    raise AuthError("the store keeps the team's X credentials and no team key "
                                    "on this machine opens them: a new key would lock them away",
                                    code="E_TEAM_KEY",
                                    hint="set the current key (`dmtool team key set`) and run "
                                         "this again to change it; or, if it is lost, `dmtool "
                                         "team key new --replace` (then `dmtool auth login`)"
                                    ) from None
                dropped = True
        key = shared.TeamKey(shared.new_key(), "new")
        kept_in = _keep(path, key)
        if kept_in is None and not shown:
            raise UsageError("`team key new` prints the new key on stdout, which goes nowhere "
                             "here, and there is no OS keyring to keep it in: nobody would have "
                             "the key",
                             hint="run it with stdout on a terminal or a file only you can read")
        if creds is not None:
            shared.save(store, creds, key)
        elif dropped:
            shared.forget(store)
    return NewKey(key.value, shared.has_team(store), creds is not None, dropped, kept_in)


def _keep(path: object, key: shared.TeamKey) -> str | None:
    """In this machine's keyring, when there is a usable one (best effort: the
    owner is shown the key either way)."""
    from pathlib import Path

    from dmtool import keyring_store

    if keyring_store.backend()[0] is None:
        return None
    try:
        return shared.save_key(Path(str(path)), key)
    except AuthError:
        return None


def set_key(st: AppState, text: str) -> str:
    """Keep a key an owner gave in this machine's keyring, after checking that
    it opens the store's credentials (if it keeps any); returns the keyring's name."""
    key = shared.check_key(text, "the key given")
    if st.has_store and shared.stored(st.store):
        shared.load(st.store, key)  # a wrong key: exit 4 here, not at the next sync
    from dmtool import keyring_store

    if keyring_store.backend()[0] is None:
        raise AuthError("there is no usable OS keyring on this machine to keep the team key in",
                        code="E_KEYRING",
                        hint=f"set {shared.KEY_ENV} in the environment of the jobs and shells "
                             "that run dmtool instead")
    return shared.save_key(st.paths.credentials_file, key)
