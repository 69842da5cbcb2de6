"""OAuth 2.0 with PKCE, the login half: the authorize address, the pending
login a two-step run keeps between processes, and the code exchange.

A login is one `PendingLogin` (client, callback address, state, verifier).
`auth login` makes one and finishes it in the same run; `--print-url` saves
it (0600, beside the credentials) and `--redirect-url` finishes it in a later
process. Nothing here prints or logs the verifier, the code or a token.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from dmtool.credentials import (
    SCOPES,
    TOKEN_URL,
    Credentials,
    oauth_error,
    quiet_secret_loggers,
    token_fields,
    write_private,
)
from dmtool.errors import AuthError, ConfigError, Unavailable

if TYPE_CHECKING:
    import requests.adapters

AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"
PENDING_TTL_S = 3600  # a --print-url login not finished within an hour is dropped
PENDING_FILE = "login-pending.toml"
_AGAIN = "run dmtool auth login again"


@dataclass
class PendingLogin:
    client_id: str
    redirect_uri: str
    state: str
    code_verifier: str
    created_at: int
    client_secret: str | None = None
    store: str | None = None  # --store given with --print-url, applied when it is finished

    def __repr__(self) -> str:  # the verifier and the secret stay out of reprs and tracebacks
        return f"PendingLogin(client_id={self.client_id!r}, redirect_uri={self.redirect_uri!r})"

    @property
    def url(self) -> str:
        """The address to open: X's authorize page for this login."""
        digest = hashlib.sha256(self.code_verifier.encode("ascii")).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
        return AUTHORIZE_URL + "?" + urlencode({
            "response_type": "code", "client_id": self.client_id,
            "redirect_uri": self.redirect_uri, "scope": " ".join(SCOPES), "state": self.state,
            "code_challenge": challenge, "code_challenge_method": "S256",
        })


def start(client_id: str, client_secret: str | None, redirect_uri: str,
          now: float | None = None) -> PendingLogin:
    """A new login: a random state and a PKCE verifier (RFC 7636: 43-128 characters)."""
    return PendingLogin(client_id=client_id, redirect_uri=redirect_uri,
                        state=secrets.token_urlsafe(24), code_verifier=secrets.token_urlsafe(64),
                        created_at=int(time.time() if now is None else now),
                        client_secret=client_secret or None)


# --- the two-step form: a login kept between processes ---------------------------------


def pending_path(credentials_file: Path) -> Path:
    return Path(credentials_file).parent / PENDING_FILE


def save_pending(path: Path, pending: PendingLogin) -> None:
    import tomli_w

    doc = {k: v for k, v in asdict(pending).items() if v is not None}
    write_private(path, tomli_w.dumps(doc).encode("utf-8"))


def load_pending(path: Path, now: float | None = None) -> PendingLogin:
    """The login --print-url saved; AuthError when there is none or it has lapsed."""
    again = "run dmtool auth login --print-url, open the address, then --redirect-url"
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        pending = PendingLogin(**{k: data[k] for k in data if k in PendingLogin.__dataclass_fields__})
        if not all(isinstance(getattr(pending, k), str) for k in
                   ("client_id", "redirect_uri", "state", "code_verifier")):
            raise TypeError
    except FileNotFoundError:
        raise AuthError("no login is waiting to be finished for this profile", hint=again) from None
    except (OSError, ValueError, TypeError, UnicodeDecodeError):
        raise ConfigError(f"the waiting login in {path} is unreadable", hint=again) from None
    age = (time.time() if now is None else now) - pending.created_at
    if age > PENDING_TTL_S:
        delete_pending(path)
        raise AuthError("the login started with --print-url is more than an hour old", hint=again)
    return pending


def delete_pending(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


# --- finishing -------------------------------------------------------------------------------


def code_from(pending: PendingLogin, redirect_url: str) -> str:
    """The authorization code in the address X redirected to, once it is shown to
    belong to this login (its state); AuthError saying why not otherwise."""
    query = parse_qs(urlsplit(redirect_url.strip()).query)
    state = query.get("state", [None])[0]
    if state is not None and state != pending.state:
        raise AuthError("the address belongs to another login attempt",
                        hint="open the address printed by the latest `dmtool auth login` and use "
                             "the address it ends on")
    if "error" in query:
        reason = query["error"][0][:40]
        raise AuthError(f"X did not authorise dmtool ({reason})", hint=_AGAIN)
    if "code" not in query:
        raise AuthError("the address has no authorisation code",
                        hint="give the full address of the page X sent you to after you approved")
    if state is None:
        raise AuthError("the address has no state: it is not X's answer to this login", hint=_AGAIN)
    return query["code"][0]


def exchange(pending: PendingLogin, code: str, *, now: float | None = None,
             adapter: requests.adapters.BaseAdapter | None = None,
             observers: Sequence[Callable[[Any], None]] = ()) -> Credentials:
    """Trade the code (and the PKCE verifier) for tokens at X's token endpoint.

    The result has no user_id/username yet: the caller asks X who this is (`me()`).
    `observers` see the request as the X client's see its own (x/observe.py).
    """
    quiet_secret_loggers()
    import requests
    from oauthlib.oauth2 import OAuth2Error
    from requests.auth import HTTPBasicAuth
    from requests_oauthlib import OAuth2Session

    from dmtool.x.observe import TokenWatch

    session = OAuth2Session(pending.client_id, redirect_uri=pending.redirect_uri, scope=list(SCOPES))
    watch = TokenWatch(observers)
    session.register_compliance_hook("access_token_response", watch.hook())
    if adapter is not None:
        session.mount("https://api.x.com/", adapter)
    auth = HTTPBasicAuth(pending.client_id, pending.client_secret) if pending.client_secret else None
    started = time.time() if now is None else now
    failure: BaseException | None = None
    try:
        try:
            token = session.fetch_token(TOKEN_URL, code=code, code_verifier=pending.code_verifier,
                                        auth=auth, include_client_id=True, timeout=30)
        except Warning as w:  # oauthlib raises (not warns) when the scope set differs
            token = getattr(w, "token", None)
            if token is None:
                raise
        except BaseException as exc:
            failure = exc
            raise
        finally:
            watch.done(failure)
    except OAuth2Error as exc:
        raise AuthError(f"X refused the login ({oauth_error(exc)})", hint=_AGAIN) from None
    except requests.RequestException:
        raise Unavailable("cannot reach X to finish the login") from None
    except (ValueError, KeyError, Warning):
        raise AuthError("X answered the login with something unexpected", hint=_AGAIN) from None
    finally:
        session.close()
    _require_scopes(token)
    return Credentials(kind="oauth2", client_id=pending.client_id,
                       client_secret=pending.client_secret, **token_fields(token, started))


def _require_scopes(token: dict[str, Any]) -> None:
    raw_scope = token.get("scope")  # oauthlib turns it into a list; X sends a string
    if raw_scope is None:
        granted = set(SCOPES)
    elif isinstance(raw_scope, str):
        granted = set(raw_scope.split())
    else:
        granted = {str(s) for s in raw_scope}
    missing = [s for s in SCOPES if s not in granted]
    if missing:
        raise AuthError(f"the login did not grant {', '.join(missing)}",
                        hint="check the app's permissions, then run dmtool auth login again")
