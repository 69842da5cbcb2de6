"""X credentials: load, save (0600), mask, refresh (OAuth 2.0) and PKCE login.

Secrets never reach a message, a repr or a log line: errors name the file or
the field, never a value. tweepy/requests-oauthlib are imported lazily so that
local commands stay fast.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, urlsplit, urlunsplit

from dmtool.errors import AuthError, ConfigError, RateLimited, Unavailable

if TYPE_CHECKING:
    import requests.adapters

log = logging.getLogger("dmtool.x")

Kind = Literal["oauth2", "oauth1", "sandbox"]
Source = Literal["file", "env"]

SCOPES = ("dm.read", "dm.write", "tweet.read", "users.read", "offline.access")
TOKEN_URL = "https://api.x.com/2/oauth2/token"
REFRESH_MARGIN_S = 300  # refresh when the access token expires within 5 minutes

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


# --- file and environment -------------------------------------------------


def load_credentials(path: Path, environ: Mapping[str, str]) -> Credentials | None:
    """Credentials from the environment (OAuth 1.0a, all four keys) or the file; None if neither."""
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

    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read credentials file {path}: {exc.strerror}") from None
    _warn_if_readable_by_others(path)
    creds = _parse(raw, path)
    if creds.kind == "oauth2":
        # X_CLIENT_ID/X_CLIENT_SECRET may supply what an older file lacks (refresh needs them).
        if not creds.client_id and environ.get("X_CLIENT_ID"):
            creds.client_id = environ["X_CLIENT_ID"]
        if not creds.client_secret and environ.get("X_CLIENT_SECRET"):
            creds.client_secret = environ["X_CLIENT_SECRET"]
    return creds


def _parse(raw: bytes, path: Path) -> Credentials:
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
    values: dict[str, Any] = {"kind": kind, "source": "file"}
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
    missing = [name for name in _REQUIRED[kind] if not values.get(name)]
    if missing:
        raise ConfigError(f"{bad}: missing {', '.join(missing)} for kind {kind}", hint=hint)
    return Credentials(**values)


def _warn_if_readable_by_others(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("credentials file %s is readable by others; run chmod 600 on it", path)


def save_credentials(path: Path, creds: Credentials) -> None:
    """Write atomically; the file is created 0600 (never briefly wider) in a 0700 folder."""
    import tomli_w

    path = Path(path)
    parent = path.parent
    parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(parent, 0o700)
    doc: dict[str, Any] = {}
    for f in fields(creds):
        value = getattr(creds, f.name)
        if f.name == "source" or value is None:
            continue
        doc[f.name] = value
    data = tomli_w.dumps(doc).encode("utf-8")

    tmp = parent / f".{path.name}.{os.getpid()}.tmp"
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
    with contextlib.suppress(OSError):
        dir_fd = os.open(parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def delete_credentials(path: Path) -> bool:
    """Remove the file; True if there was one."""
    try:
        Path(path).unlink()
    except FileNotFoundError:
        return False
    return True


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


def _token_to_fields(token: Mapping[str, Any], now: float) -> dict[str, Any]:
    out: dict[str, Any] = {"access_token": token["access_token"]}
    if token.get("refresh_token"):
        out["refresh_token"] = token["refresh_token"]
    expires_in = token.get("expires_in")
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        out["expires_at"] = int(now + expires_in)
    elif isinstance(token.get("expires_at"), int | float):
        out["expires_at"] = int(token["expires_at"])
    return out


def _oauth_error(exc: Exception) -> str:
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
) -> Credentials:
    """Return fresh OAuth 2.0 credentials, refreshing (and saving) when expiring within 5 minutes.

    `force=True` refreshes regardless of expiry (the client does this once after a 401).
    Other kinds are returned unchanged. `adapter` is mounted on the token session (tests).
    With `path` (the credentials file), the refresh holds a lock on it and first
    re-reads it: X retires a refresh token once used, so when another dmtool
    process has just refreshed, its saved token is taken instead of spending the
    old one (which X would refuse).
    """
    epoch = _now_epoch(now)
    if creds.kind != "oauth2":
        return creds
    if not force and not creds.expires_within(epoch, REFRESH_MARGIN_S):
        return creds
    if path is not None and creds.source == "file":
        with _file_lock(Path(f"{path}.lock")):
            on_disk = _read_file(Path(path))
            if on_disk is not None and on_disk.kind == "oauth2":
                if on_disk.access_token != creds.access_token and \
                        not on_disk.expires_within(epoch, REFRESH_MARGIN_S):
                    return on_disk  # refreshed by another process meanwhile
                creds = replace(creds, refresh_token=on_disk.refresh_token or creds.refresh_token)
            return refresh_if_needed(creds, now, save, force=True, adapter=adapter)
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
    handler.register_compliance_hook("refresh_token_response", _status_hook)
    if adapter is not None:
        _mount(handler, adapter)
    try:
        token = handler.refresh_token(
            TOKEN_URL,
            refresh_token=creds.refresh_token,
            client_id=creds.client_id,
            auth=handler.auth,
            timeout=30,
        )
    except (RateLimited, Unavailable):
        raise
    except OAuth2Error as exc:
        raise AuthError(
            f"X refused to refresh the access token ({_oauth_error(exc)})",
            hint="run dmtool auth login",
        ) from None
    except requests.RequestException:
        raise Unavailable("cannot reach X to refresh the access token") from None
    except (ValueError, KeyError):
        raise AuthError(
            "X answered the token refresh with something unexpected",
            hint="run dmtool auth login",
        ) from None
    finally:
        handler.close()

    fresh = replace(creds, **_token_to_fields(token, epoch))
    if save is not None and fresh.source == "file":
        save(fresh)
    log.debug("refreshed the OAuth 2.0 access token")
    return fresh


@contextlib.contextmanager
def _file_lock(lock_path: Path) -> Any:
    from dmtool.locks import file_lock

    with file_lock(lock_path):
        yield


def _read_file(path: Path) -> Credentials | None:
    try:
        return _parse(path.read_bytes(), path)
    except FileNotFoundError:
        return None


def _mount(session: Any, adapter: requests.adapters.BaseAdapter) -> None:
    session.mount("https://api.x.com/", adapter)
    session.mount("https://api.twitter.com/", adapter)


def start_oauth2_login(client_id: str, client_secret: str | None, redirect_uri: str) -> tuple[str, Any]:
    """Begin PKCE: return the URL to open and the handler that remembers verifier and state."""
    quiet_secret_loggers()
    from tweepy import OAuth2UserHandler

    handler = OAuth2UserHandler(
        client_id=client_id,
        redirect_uri=redirect_uri,
        scope=list(SCOPES),
        client_secret=client_secret,
    )
    return handler.get_authorization_url(), handler


def finish_oauth2_login(handler: Any, pasted_redirect_url: str, *, now: float | None = None) -> Credentials:
    """Exchange the redirect URL the user pasted back for tokens.

    The result has no user_id/username yet: the caller asks X who this is (`me()`).
    """
    import requests
    from oauthlib.oauth2 import OAuth2Error

    url = pasted_redirect_url.strip()
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if "error" in query:
        reason = query["error"][0]
        raise AuthError(f"X did not authorise dmtool ({reason[:40]})", hint="run dmtool auth login again")
    if "code" not in query:
        raise AuthError(
            "the pasted address has no authorisation code",
            hint="paste the full address of the page X sent you to after you approved",
        )
    if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1"):
        # oauthlib refuses http:// callbacks; a loopback redirect is what X allows
        # for native apps, and only the query matters for parsing.
        url = urlunsplit(("https", *parts[1:]))

    started = time.time() if now is None else now
    try:
        try:
            token = handler.fetch_token(url)
        except Warning as w:  # oauthlib raises (not warns) when the scope set differs
            token = getattr(w, "token", None)
            if token is None:
                raise
    except OAuth2Error as exc:
        raise AuthError(
            f"X refused the login ({_oauth_error(exc)})", hint="run dmtool auth login again"
        ) from None
    except requests.RequestException:
        raise Unavailable("cannot reach X to finish the login") from None
    except (ValueError, KeyError, Warning):
        raise AuthError(
            "X answered the login with something unexpected", hint="run dmtool auth login again"
        ) from None

    raw_scope = token.get("scope")  # oauthlib turns it into a list; X sends a string
    if raw_scope is None:
        granted = set(SCOPES)
    elif isinstance(raw_scope, str):
        granted = set(raw_scope.split())
    else:
        granted = {str(s) for s in raw_scope}
    missing = [s for s in SCOPES if s not in granted]
    if missing:
        raise AuthError(
            f"the login did not grant {', '.join(missing)}",
            hint="check the app's permissions, then run dmtool auth login again",
        )
    client_secret = None
    auth = getattr(handler, "auth", None)
    if auth is not None:
        client_secret = getattr(auth, "password", None)
    return Credentials(
        kind="oauth2",
        client_id=handler.client_id,
        client_secret=client_secret,
        **_token_to_fields(token, started),
    )
