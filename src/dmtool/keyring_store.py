"""The OS keyring (the `keyring` package) as a place for a profile's secrets.

One entry per profile: service "dmtool", account = the profile's credentials
file path (unique per DMTOOL_HOME and profile), holding the secret fields as
one JSON value, so a refresh replaces access and refresh token in one write.

`keyring` is imported here only, inside the functions, so no local command
pays for it (it loads D-Bus and crypto modules on Linux). A backend counts as
usable only when keyring itself would recommend it (priority >= 1): the
"fail" and "null" backends and plaintext files from keyrings.alt do not.

Nothing here may ever prompt: a locked Secret Service collection or a closed
KWallet is detected without unlocking (keyring itself would pop an unlock
dialog and wait, which would hang a cron job), and is an AuthError (exit 4).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from dmtool.errors import AuthError

log = logging.getLogger("dmtool.credentials")

SERVICE = "dmtool"
LOCKED_HINT = ("unlock the keyring (log in to your desktop session), or keep this profile's "
               "secrets in a file: dmtool auth login --store file")


def _keyring() -> Any:
    import keyring

    return keyring


def backend() -> tuple[Any | None, str]:
    """The usable keyring backend and its name, or None and why there is none."""
    try:
        kr = _keyring().get_keyring()
    except Exception as exc:  # a broken keyringrc or backend: not usable, say why
        return None, f"the keyring could not start ({type(exc).__name__})"
    name = _name(kr)
    try:
        priority = float(kr.priority)
    except Exception as exc:
        return None, f"{name} is not usable ({type(exc).__name__})"
    if priority < 1:
        return None, f"no usable OS keyring in this session (only {name})"
    return kr, name


def _name(kr: Any) -> str:
    cls = type(kr)
    return {"SecretService": "Secret Service", "kwallet": "KWallet", "macOS": "macOS Keychain",
            "Windows": "Windows Credential Manager", "libsecret": "Secret Service (libsecret)",
            "chainer": "keyring chain"}.get(cls.__module__.rsplit(".", 1)[-1], cls.__name__)


def require() -> tuple[Any, str]:
    """The usable backend, unlocked; AuthError (exit 4) when there is none or it is locked."""
    kr, name = backend()
    if kr is None:
        raise AuthError(name, code="E_KEYRING",
                        hint="log in with `dmtool auth login --store file` to keep the secrets "
                             "in a file readable by you only")
    _refuse_if_locked(kr, name)
    return kr, name


def _members(kr: Any) -> list[Any]:
    backends = getattr(type(kr), "backends", None)
    return list(backends) if type(kr).__module__.endswith("chainer") and backends else [kr]


def _refuse_if_locked(kr: Any, name: str) -> None:
    for member in _members(kr):
        module = type(member).__module__
        if module.endswith(("SecretService", "libsecret")):
            locked = _secret_service_locked(member)
        elif module.endswith("kwallet"):
            locked = _kwallet_closed(member)
        else:
            continue  # macOS and Windows answer without a dialog or raise KeyringLocked
        if locked:
            raise AuthError(f"the OS keyring ({name}) is locked", code="E_KEYRING_LOCKED",
                            hint=LOCKED_HINT)


def _secret_service_locked(member: Any) -> bool:
    """Whether the collection keyring would use is locked, asked without unlocking it."""
    import secretstorage

    try:
        conn = secretstorage.dbus_init()
        try:
            path = getattr(member, "preferred_collection", None)
            coll = (secretstorage.Collection(conn, path) if path
                    else secretstorage.get_default_collection(conn))
            return bool(coll.is_locked())
        finally:
            conn.close()
    except secretstorage.exceptions.SecretStorageException as exc:
        raise AuthError(f"cannot reach the OS keyring ({type(exc).__name__})", code="E_KEYRING",
                        hint=LOCKED_HINT) from None


def _kwallet_closed(member: Any) -> bool:
    """KWallet opens (and asks for its password) on first use: only use it when open."""
    import dbus

    try:
        bus = dbus.SessionBus()
        iface = dbus.Interface(bus.get_object(member.bus_name, member.object_path), "org.kde.KWallet")
        return not bool(iface.isOpen(iface.networkWallet()))
    except dbus.DBusException as exc:
        raise AuthError(f"cannot reach KWallet ({type(exc).__name__})", code="E_KEYRING",
                        hint=LOCKED_HINT) from None


def _failure(exc: Exception, doing: str) -> AuthError:
    errors = _keyring().errors
    if isinstance(exc, errors.KeyringLocked):
        return AuthError(f"the OS keyring is locked ({doing})", code="E_KEYRING_LOCKED",
                         hint=LOCKED_HINT)
    # Backend messages name D-Bus or OS failures, never a stored value; keep them short.
    return AuthError(f"the OS keyring failed while {doing} ({type(exc).__name__})",
                     code="E_KEYRING", hint=LOCKED_HINT)


def read(account: str) -> dict[str, str] | None:
    """The secrets stored for `account`, or None when the keyring has no entry."""
    kr, name = require()
    try:
        raw = kr.get_password(SERVICE, account)
    except Exception as exc:
        raise _failure(exc, "reading the credentials") from None
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise AuthError(f"the {name} entry of dmtool for this profile is not dmtool's",
                        code="E_KEYRING", hint="run dmtool auth logout, then dmtool auth login")
    log.debug("credentials: secrets read from the keyring (%s)", name)
    return data


def check(account: str) -> str:
    """Make sure the keyring can be used now (usable, unlocked, answering), by
    reading this profile's entry; returns its name. For a login, before anyone
    approves anything: a locked keyring fails here, not after the browser."""
    kr, name = require()
    try:
        kr.get_password(SERVICE, account)
    except Exception as exc:
        raise _failure(exc, "checking it") from None
    return name


def write(account: str, secrets: dict[str, str]) -> str:
    """Store the secrets (replacing any); returns the keyring's name."""
    kr, name = require()
    try:
        kr.set_password(SERVICE, account, json.dumps(secrets, sort_keys=True))
    except Exception as exc:
        raise _failure(exc, "saving the credentials") from None
    return name


def delete(account: str) -> bool:
    """Remove the entry; True if there was one. Skipped (False) without a usable keyring."""
    kr, _ = backend()
    if kr is None:
        return False
    _refuse_if_locked(kr, _name(kr))
    errors = _keyring().errors
    try:
        if kr.get_password(SERVICE, account) is None:
            return False
        kr.delete_password(SERVICE, account)
    except errors.PasswordDeleteError:
        return False
    except Exception as exc:
        raise _failure(exc, "removing the credentials") from None
    return True
