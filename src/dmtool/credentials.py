"""X credentials: where they are read from, saved, masked and refreshed.

The order they are read in: the environment (OAuth 1.0a, all four keys), then
the profile's credentials file, which holds the secrets itself (`store =
"file"`, 0600) or says they are in the OS keyring (`store = "keyring"`: the
file then keeps only what is not secret: kind, client id, account, expiry).
So a profile whose secrets are in the file never loads `keyring` (cron and
local commands stay fast), and one whose secrets are in the keyring fails with
a clear exit 4 where the keyring cannot be reached, never with "no credentials".

Secrets never reach a message, a repr or a log line: errors name the file or
the field, never a value. tweepy/requests-oauthlib/keyring are imported lazily
so that local commands stay fast.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from dmtool.errors import NO_SPACE, AuthError, Busy, ConfigError, RateLimited, Unavailable, write_failed

if TYPE_CHECKING:
    import requests.adapters

log = logging.getLogger("dmtool.credentials")

Kind = Literal["oauth2", "oauth1", "sandbox"]
Source = Literal["file", "env", "keyring", "team"]  # team: the team store (team_credentials.py)
Store = Literal["file", "keyring"]
STORES: tuple[Store, ...] = ("keyring", "file")

SCOPES = ("dm.read", "dm.write", "tweet.read", "users.read", "offline.access")
TOKEN_URL = "https://api.x.com/2/oauth2/token"
REFRESH_MARGIN_S = 300  # refresh when the access token expires within 5 minutes
LOCK_WAIT_S = 60  # another process refreshing takes seconds; beyond this something is stuck

ENV_OAUTH1 = ("X_API_KEY", "X_API_SECRET", "X_ACCESS_TOKEN", "X_ACCESS_TOKEN_SECRET")
SECRET_FIELDS = frozenset(
    {
        "client_secret",
        "access_token",
        "refresh_token",
        "api_key",
        "api_secret",
        "access_token_secret",
    }
)
_STR_FIELDS = (
    "client_id",
    "client_secret",
    "access_token",
    "refresh_token",
    "api_key",
    "api_secret",
    "access_token_secret",
    "user_id",
    "username",
)
_REQUIRED: dict[str, tuple[str, ...]] = {
    "oauth2": ("access_token",),
    "oauth1": ("api_key", "api_secret", "access_token", "access_token_secret"),
    "sandbox": (),
}


def mask(secret: str | None) -> str:
    """Show enough of a secret to recognise it, never enough to use it."""
    if not secret:
        return ""
    if len(secret) < 16:
        return "****"
    return f"****{secret[-4:]}"  # the tail only: a known prefix would narrow a guess


@dataclass
class Credentials:
    kind: Kind
    client_id: str | None = None
    client_secret: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None
    expires_at: int | None = None  # epoch seconds (OAuth 2.0 access token)
    api_key: str | None = None
    api_secret: str | None = None
    access_token_secret: str | None = None
    user_id: str | None = None
    username: str | None = None
    source: Source = "file"

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            shown = mask(value) if f.name in SECRET_FIELDS else value
            parts.append(f"{f.name}={shown!r}")
        return f"Credentials({', '.join(parts)})"

    __str__ = __repr__

    def describe(self) -> dict[str, Any]:
        """A JSON-ready view for `auth status`: secrets masked, expiry in RFC 3339."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name in SECRET_FIELDS:
                out[f.name] = mask(value)
            elif f.name == "expires_at":
                out[f.name] = datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            else:
                out[f.name] = value
        return out

    def expires_within(self, now: float, seconds: float) -> bool:
        return self.expires_at is not None and self.expires_at - now <= seconds


# --- environment, file and keyring ------------------------------------------------------


def keyring_account(path: Path) -> str:
    """The keyring entry of a profile: named by its credentials file, unique per home and profile."""
    return str(Path(path).expanduser().absolute())


class SharedPlace(Protocol):
    """Where credentials shared by several machines are kept (the team store):
    a refresh holds `lock()`, re-reads with `read()`, then saves."""

    def lock(self) -> contextlib.AbstractContextManager[None]: ...

    def read(self) -> Credentials | None: ...


def from_environment(environ: Mapping[str, str]) -> Credentials | None:
    """OAuth 1.0a keys from the environment (all four), else None."""
    return _from_env(environ)


def _from_env(environ: Mapping[str, str]) -> Credentials | None:
    present = [name for name in ENV_OAUTH1 if environ.get(name)]
    if len(present) == len(ENV_OAUTH1):
        return Credentials(
            kind="oauth1",
            api_key=environ["X_API_KEY"],
            api_secret=environ["X_API_SECRET"],
            access_token=environ["X_ACCESS_TOKEN"],
            access_token_secret=environ["X_ACCESS_TOKEN_SECRET"],
            source="env",
        )
    if present:
        # A half-set environment is almost always a mistake: say so rather than
        # silently using another account's file.
        missing = ", ".join(name for name in ENV_OAUTH1 if name not in present)
        raise ConfigError(
            f"incomplete OAuth 1.0a environment: {missing} not set",
            hint="set all four of " + ", ".join(ENV_OAUTH1) + " or none of them",
        )
    return None


def load_credentials(path: Path, environ: Mapping[str, str]) -> Credentials | None:
    """Credentials from the environment, else the keyring or the file (as the
    file says); None if there are none."""
    creds = _from_env(environ)
    if creds is not None:
        log.debug("credentials: from the environment (X_API_KEY...)")
        return creds
    creds = _read_saved(Path(path))
    if creds is not None and creds.kind == "oauth2":
        # X_CLIENT_ID/X_CLIENT_SECRET may supply what an older file lacks (refresh needs them).
        if not creds.client_id and environ.get("X_CLIENT_ID"):
            creds.client_id = environ["X_CLIENT_ID"]
        if not creds.client_secret and environ.get("X_CLIENT_SECRET"):
            creds.client_secret = environ["X_CLIENT_SECRET"]
    return creds


def has_credentials(path: Path, environ: Mapping[str, str]) -> bool:
    """Whether a profile has credentials, from the environment and the file alone
    (a file that points at the keyring counts): no keyring, no network."""
    if _from_env(environ) is not None:
        return True
    raw = _read_bytes(Path(path))
    if raw is None:
        return False
    _parse(raw, Path(path), secrets_elsewhere=True)
    return True


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read credentials file {path}: {exc.strerror}",
                          hint="it must be a file readable by you; run dmtool auth login to "
                               "write a new one") from None


def _read_saved(path: Path) -> Credentials | None:
    """What `auth login` saved: the file, with its secrets from the keyring when it says so."""
    raw = _read_bytes(path)
    if raw is None:
        return None
    _warn_if_readable_by_others(path)
    creds = _parse(raw, path, secrets_elsewhere=True)
    if creds.source != "keyring":
        log.debug("credentials: from the file %s (secrets kept in the file, not the keyring)", path)
        _check_required(creds, path)
        return creds
    from dmtool import keyring_store

    try:
        secrets = keyring_store.read(keyring_account(path))
    except AuthError as exc:
        exc.message = f"the credentials of this profile are in the OS keyring: {exc.message}"
        raise
    if secrets is None:
        raise AuthError("the credentials of this profile were saved in the OS keyring, which no "
                        "longer has them", hint="run dmtool auth login")
    for name in SECRET_FIELDS:
        if secrets.get(name):
            setattr(creds, name, secrets[name])
    _check_required(creds, path)
    return creds


def _parse(raw: bytes, path: Path, *, secrets_elsewhere: bool = False) -> Credentials:
    import tomllib  # here: a local command that only asks whether there are any never loads it

    bad = f"credentials file {path} is malformed"
    hint = "fix it or run dmtool auth login to write a new one"
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{bad}: not UTF-8 text", hint=hint) from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib messages end with "(at line N, column M)"; keep only the position
        # so no fragment of the file's contents is echoed.
        where = re.search(r"line \d+, column \d+", str(exc))
        at = f" at {where.group(0)}" if where else ""
        raise ConfigError(f"{bad}: not valid TOML{at}", hint=hint) from None

    kind = data.get("kind")
    if kind not in _REQUIRED:
        raise ConfigError(f"{bad}: 'kind' must be oauth2, oauth1 or sandbox", hint=hint)
    store = data.get("store", "file")
    if store not in STORES:
        raise ConfigError(f"{bad}: 'store' must be keyring or file", hint=hint)
    values: dict[str, Any] = {"kind": kind, "source": store}
    for name in _STR_FIELDS:
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ConfigError(f"{bad}: '{name}' must be a string", hint=hint)
        values[name] = value
    expires_at = data.get("expires_at")
    if expires_at is not None:
        if isinstance(expires_at, bool) or not isinstance(expires_at, int | float):
            raise ConfigError(f"{bad}: 'expires_at' must be a number (epoch seconds)", hint=hint)
        values["expires_at"] = int(expires_at)
    creds = Credentials(**values)
    if not secrets_elsewhere:
        _check_required(creds, path)
    return creds


def _check_required(creds: Credentials, path: Path) -> None:
    missing = [name for name in _REQUIRED[creds.kind] if not getattr(creds, name)]
    if missing:
        where = "the keyring entry" if creds.source == "keyring" else f"credentials file {path}"
        raise ConfigError(f"{where} is malformed: missing {', '.join(missing)} for kind {creds.kind}",
                          hint="fix it or run dmtool auth login to write a new one")


def _warn_if_readable_by_others(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("credentials file %s is readable by others; run chmod 600 on it", path)


def write_private(path: Path, data: bytes) -> None:
    """Write atomically; the file is created 0600 (never briefly wider) in a 0700 folder.
    A folder or an unwritable place in the way is a ConfigError naming the path."""
    path = Path(path)
    parent = path.parent
    tmp = parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(parent, 0o700)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)  # in case a umask or ACL widened it
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
    except OSError as exc:
        if exc.errno in NO_SPACE:  # a full disk says so, as every write of dmtool's does
            raise write_failed(path, exc) from None
        raise ConfigError(f"cannot write {path}: {exc.strerror or type(exc).__name__}",
                          hint="it must be a file (not a folder) in a folder you can write") from None
    with contextlib.suppress(OSError):
        dir_fd = os.open(parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def save_credentials(path: Path, creds: Credentials, store: Store | None = None) -> None:
    """Save where `store` says (default: where they came from, else the file).

    With the keyring, the secrets go there first and the file then records
    the rest and `store = "keyring"`: a crash in between leaves the old file,
    which still names a working place.
    """
    import tomli_w

    where: Store = store or ("keyring" if creds.source == "keyring" else "file")
    doc: dict[str, Any] = {}
    for f in fields(creds):
        value = getattr(creds, f.name)
        if f.name == "source" or value is None:
            continue
        if where == "keyring" and f.name in SECRET_FIELDS:
            continue
        doc[f.name] = value
    if where == "keyring":
        from dmtool import keyring_store

        secrets = {name: getattr(creds, name) for name in SECRET_FIELDS if getattr(creds, name)}
        keyring_store.write(keyring_account(path), secrets)
        doc["store"] = "keyring"
    write_private(Path(path), tomli_w.dumps(doc).encode("utf-8"))


def forget_other_store(path: Path, kept: Store) -> bool:
    """After a login saved to `kept`: remove a copy the keyring still holds from
    an earlier login (file logins) so no stale secret stays behind."""
    if kept == "keyring":
        return False
    from dmtool import keyring_store

    try:
        return keyring_store.delete(keyring_account(path))
    except AuthError as exc:  # a locked keyring: the new login stands; say what is left
        log.warning("could not remove the old keyring entry: %s", exc.message)
        return False


def delete_credentials(path: Path) -> list[str]:
    """Remove the profile's saved credentials from the keyring and the file;
    the places they were removed from. A keyring that must be reached but is
    locked fails first, so nothing is half removed."""
    path = Path(path)
    removed: list[str] = []
    from dmtool import keyring_store

    in_keyring = False
    with contextlib.suppress(ConfigError):  # a broken file is still removed
        raw = None if path.is_dir() else _read_bytes(path)
        in_keyring = raw is not None and _parse(raw, path, secrets_elsewhere=True).source == "keyring"
    if in_keyring:
        keyring_store.require()  # locked or unreachable: refuse before removing anything
    try:
        if keyring_store.delete(keyring_account(path)):
            removed.append("keyring")
    except AuthError:
        if in_keyring:
            raise
        log.debug("credentials: the keyring could not be checked for a stale entry")
    try:
        path.unlink()
        removed.append("file")
    except FileNotFoundError:
        pass
    except OSError as exc:
        what = "it is a folder" if path.is_dir() else (exc.strerror or type(exc).__name__)
        raise ConfigError(f"cannot remove credentials file {path}: {what}",
                          hint="remove or rename it yourself, then run dmtool auth login") from None
    return removed


# --- logging hygiene --------------------------------------------------------


def quiet_secret_loggers() -> None:
    """Keep third-party DEBUG logs (which print headers, bodies and tokens) off, whatever -v does.

    tweepy.client logs the Authorization header, requests_oauthlib logs token
    bodies, oauthlib logs signed parameters: raising their level stops those
    records at the source, independent of any handler or formatter.
    """
    for name in ("tweepy", "requests_oauthlib", "oauthlib"):
        logger = logging.getLogger(name)
        if logger.level < logging.INFO:
            logger.setLevel(logging.INFO)


# --- OAuth 2.0 ------------------------------------------------------------------


def _now_epoch(now: float | datetime) -> float:
    return now.timestamp() if isinstance(now, datetime) else float(now)


def token_fields(token: Mapping[str, Any], now: float) -> dict[str, Any]:
    out: dict[str, Any] = {"access_token": token["access_token"]}
    if token.get("refresh_token"):
        out["refresh_token"] = token["refresh_token"]
    expires_in = token.get("expires_in")
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        out["expires_at"] = int(now + expires_in)
    elif isinstance(token.get("expires_at"), int | float):
        out["expires_at"] = int(token["expires_at"])
    return out


def oauth_error(exc: Exception) -> str:
    # oauthlib errors carry `error` (e.g. invalid_grant): a code, never a token.
    code = getattr(exc, "error", None)
    return code if isinstance(code, str) and code else type(exc).__name__


def _status_hook(response: Any) -> Any:
    """Turn transport-level failures of the token endpoint into dmtool errors before parsing."""
    status = getattr(response, "status_code", 200)
    if status == 429:
        raise RateLimited("X rate-limited the token refresh; try again in a few minutes")
    if status >= 500:
        raise Unavailable(f"X's token endpoint is unavailable (HTTP {status})")
    return response


def refresh_if_needed(
    creds: Credentials,
    now: float | datetime,
    save: Callable[[Credentials], None] | None,
    *,
    force: bool = False,
    adapter: requests.adapters.BaseAdapter | None = None,
    path: Path | None = None,
    observers: Sequence[Callable[[Any], None]] = (),
    shared: SharedPlace | None = None,
) -> Credentials:
    """Return fresh OAuth 2.0 credentials, refreshing (and saving) when expiring within 5 minutes.

    `observers` see the token request as the X client's observers see its own
    (x/observe.py: `-v` and the ledger).

    `force=True` refreshes regardless of expiry (the client does this once after a 401).
    Other kinds are returned unchanged. `adapter` is mounted on the token session (tests).
    With `path` (the credentials file), the refresh holds a lock on it and first
    re-reads it: X retires a refresh token once used, so when another dmtool
    process has just refreshed, its saved token is taken instead of spending the
    old one (which X would refuse). With `shared` (the team store) and
    credentials read from there, the same happens under its lock and with its copy.
    """
    epoch = _now_epoch(now)
    if creds.kind != "oauth2":
        return creds
    if not force and not creds.expires_within(epoch, REFRESH_MARGIN_S):
        return creds
    place: SharedPlace | None = None
    if shared is not None and creds.source == "team":
        place = shared
    elif path is not None and creds.source in ("file", "keyring"):
        place = _ProfileFile(Path(path))
    if place is not None:
        # One refresh at a time per profile (or per team store): X retires a
        # refresh token once used, so the second process must take the first
        # one's tokens, not spend the old refresh token again (which X would refuse).
        with place.lock():
            saved = place.read()
            if saved is not None and saved.kind == "oauth2":
                if saved.access_token != creds.access_token and \
                        not saved.expires_within(epoch, REFRESH_MARGIN_S):
                    log.debug("credentials: another process refreshed the access token; using it")
                    return saved
                creds = replace(creds, refresh_token=saved.refresh_token or creds.refresh_token)
            # The new tokens are saved (by `save`) before this returns, still under
            # the lock: the rotated refresh token is on disk before anything uses
            # the new access token.
            return refresh_if_needed(creds, now, save, force=True, adapter=adapter,
                                     observers=observers)
    if not creds.refresh_token:
        raise AuthError(
            "the X access token has expired and there is no refresh token",
            hint="run dmtool auth login",
        )
    if not creds.client_id:
        raise AuthError(
            "cannot refresh the X access token: no client id stored",
            hint="set X_CLIENT_ID or run dmtool auth login",
        )

    quiet_secret_loggers()
    import requests
    from oauthlib.oauth2 import OAuth2Error
    from tweepy import OAuth2UserHandler

    # scope=None: X keeps the granted scopes on refresh, and oauthlib would
    # otherwise raise on any difference in scope ordering.
    handler = OAuth2UserHandler(
        client_id=creds.client_id,
        redirect_uri="http://127.0.0.1/",
        scope=None,
        client_secret=creds.client_secret,
    )
    from dmtool.x.observe import TokenWatch

    # Seen like the client's own requests (-v, the ledger), with its status
    # noted before _status_hook may raise on it.
    watch = TokenWatch(observers)
    handler.register_compliance_hook("refresh_token_response", watch.hook(_status_hook))
    if adapter is not None:
        _mount(handler, adapter)
    failure: BaseException | None = None
    try:
        token = handler.refresh_token(
            TOKEN_URL,
            refresh_token=creds.refresh_token,
            client_id=creds.client_id,
            auth=handler.auth,
            timeout=30,
        )
    except (RateLimited, Unavailable) as exc:
        failure = exc
        raise
    except OAuth2Error as exc:
        failure = exc
        raise AuthError(
            f"X refused to refresh the access token ({oauth_error(exc)})",
            hint="run dmtool auth login",
        ) from None
    except requests.RequestException as exc:
        failure = exc
        raise Unavailable("cannot reach X to refresh the access token") from None
    except (ValueError, KeyError) as exc:
        failure = exc
        raise AuthError(
            "X answered the token refresh with something unexpected",
            hint="run dmtool auth login",
        ) from None
    finally:
        handler.close()
        watch.done(failure)

    fresh = replace(creds, **token_fields(token, epoch))
    if save is not None and fresh.source in ("file", "keyring", "team"):
        save(fresh)
    log.debug("refreshed the OAuth 2.0 access token")
    return fresh


class _ProfileFile:
    """The profile's own credentials (file or keyring) as a place to refresh in."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lock(self) -> contextlib.AbstractContextManager[None]:
        return credentials_lock(self.path)

    def read(self) -> Credentials | None:
        return _read_saved(self.path)


@contextlib.contextmanager
def credentials_lock(path: Path) -> Iterator[None]:
    """Hold the profile's refresh lock (a sibling `.lock` file; the system frees it
    when a process dies: dmtool/locks.py). Busy (exit 5) when another process
    holds it too long."""
    from dmtool.locks import LockTimeout, file_lock

    lock_path = Path(f"{path}.lock")
    with contextlib.ExitStack() as held:
        try:
            lock_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            held.enter_context(file_lock(lock_path, timeout=LOCK_WAIT_S))
        except OSError as e:
            raise write_failed(lock_path, e) from None
        except LockTimeout:
            raise Busy("another dmtool process has been refreshing the X token for a "
                       "minute", hint="try again in a moment") from None
        yield


def _mount(session: Any, adapter: requests.adapters.BaseAdapter) -> None:
    session.mount("https://api.x.com/", adapter)
    session.mount("https://api.twitter.com/", adapter)
