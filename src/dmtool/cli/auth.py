"""`dmtool auth login|status|logout`.

Nothing here ever prints a secret: keys and tokens are read with hidden
input, shown only masked, and registered for redaction in -v logs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from dmtool import output
from dmtool.appstate import AppState
from dmtool.cli.context import state
from dmtool.cli.params import JsonOpt
from dmtool.errors import AuthError, ConfigError, UsageError

if TYPE_CHECKING:
    from datetime import datetime

    from dmtool.credentials import Credentials
    from dmtool.x.types import XClient, XUser

DEFAULT_REDIRECT = "http://127.0.0.1:8765/callback"
_OAUTH1_FIELDS = ("api_key", "api_secret", "access_token", "access_token_secret")
# The order `auth status` shows credential fields in (secrets masked).
_SHOWN_FIELDS = ("client_id", "api_key", "api_secret", "access_token", "access_token_secret",
                 "refresh_token", "client_secret")

auth_app = typer.Typer(help="Log in to X, see which account a profile uses, log out.",
                       no_args_is_help=True)


def open_client(creds: Credentials) -> XClient:
    """The X client used to verify new credentials (tests serve it from the sandbox)."""
    from dmtool.x.client import TweepyClient

    return TweepyClient(creds)


def _protect(creds: Credentials) -> None:
    from dmtool.credentials import SECRET_FIELDS
    from dmtool.logs import register_secret

    for name in SECRET_FIELDS:
        register_secret(getattr(creds, name))


def _oauth1_credentials(st: AppState) -> Credentials:
    from dmtool.credentials import ENV_OAUTH1, Credentials

    values: dict[str, str] = {}
    missing: list[tuple[str, str]] = []
    for env_name, name in zip(ENV_OAUTH1, _OAUTH1_FIELDS, strict=True):
        value = (st.environ.get(env_name) or "").strip()
        if value:
            values[name] = value
        else:
            missing.append((env_name, name))
    if missing:
        names = ", ".join(env for env, _ in missing)
        if not output.interactive():
            raise UsageError(f"--oauth1 needs {names}",
                             hint="set them in the environment, or run on a terminal to type them")
        for env_name, name in missing:
            value = typer.prompt(env_name, hide_input=True).strip()
            if not value:
                raise UsageError(f"{env_name} is empty")
            values[name] = value
    return Credentials(kind="oauth1", api_key=values["api_key"], api_secret=values["api_secret"],
                       access_token=values["access_token"],
                       access_token_secret=values["access_token_secret"])


def _oauth2_credentials(st: AppState, client_id: str | None, redirect_uri: str,
                        redirect_url: str | None) -> Credentials:
    from dmtool.credentials import finish_oauth2_login, start_oauth2_login

    cid = (client_id or st.environ.get("X_CLIENT_ID") or "").strip()
    if redirect_url is None and not output.interactive():
        raise UsageError("OAuth 2.0 login needs a terminal to paste X's redirect address into",
                         hint="pass --redirect-url URL, or use --oauth1 with X_API_KEY, X_API_SECRET, "
                              "X_ACCESS_TOKEN and X_ACCESS_TOKEN_SECRET")
    if not cid:
        if not output.interactive():
            raise UsageError("OAuth 2.0 login needs your X app's client id",
                             hint="pass --client-id or set X_CLIENT_ID")
        cid = typer.prompt("X app client id").strip()
        if not cid:
            raise UsageError("the client id is empty")
    url, handler = start_oauth2_login(cid, st.environ.get("X_CLIENT_SECRET") or None, redirect_uri)
    output.info("Open this address, approve dmtool, then paste the address X sends you to:")
    output.info(f"  {url}")
    # The pasted address carries a one-time code: read it without echoing it back.
    pasted = redirect_url if redirect_url is not None else typer.prompt(
        "address after approval (input hidden)", hide_input=True)
    _check_state(url, pasted)
    return finish_oauth2_login(handler, pasted)


def _check_state(authorize_url: str, pasted: str) -> None:
    """PKCE ties the answer to this run's address; say so plainly instead of
    letting X's token endpoint refuse a pasted address from another attempt."""
    from urllib.parse import parse_qs, urlsplit

    sent = parse_qs(urlsplit(authorize_url).query).get("state")
    got = parse_qs(urlsplit(pasted.strip()).query)
    if "error" in got or "code" not in got:
        return  # finish_oauth2_login explains these
    if sent and got.get("state") != sent:
        raise AuthError("the pasted address belongs to another login attempt",
                        hint="approve the address printed by this run and paste where it "
                             "sends you; a login is finished in the run that started it")


def _remember_account(st: AppState, user: XUser) -> None:
    """The store of a profile belongs to one X account: refuse to mix two."""
    from dmtool.services.sync import K_ME_ID, K_ME_USERNAME

    store = st.store
    old = store.get_state(K_ME_ID)
    if old and old != user.id:
        who = store.get_state(K_ME_USERNAME) or old
        raise ConfigError(
            f"profile {st.profile!r} holds the conversations of @{who}, not @{user.username}",
            hint=f"log in to @{who}, or use another profile: dmtool --profile NAME auth login")
    with store.tx():
        store.set_state(K_ME_ID, user.id)
        store.set_state(K_ME_USERNAME, user.username)


@auth_app.command("login")
def auth_login(
    ctx: typer.Context,
    oauth1: Annotated[bool, typer.Option(
        "--oauth1", help="Use OAuth 1.0a keys (X_API_KEY, X_API_SECRET, X_ACCESS_TOKEN, "
                         "X_ACCESS_TOKEN_SECRET, or typed with hidden input).")] = False,
    client_id: Annotated[str | None, typer.Option(
        "--client-id", help="OAuth 2.0 client id of your X app (default: X_CLIENT_ID).")] = None,
    redirect_uri: Annotated[str, typer.Option(
        "--redirect-uri", help="The callback address registered for your X app.")]
    = DEFAULT_REDIRECT,
    redirect_url: Annotated[str | None, typer.Option(
        "--redirect-url", help="The address X redirected to after approval (instead of pasting it).")]
    = None,
) -> None:
    """Log in to X and save the credentials (readable by you only).

    By default OAuth 2.0 with PKCE: open the printed address, approve, and
    paste back the address X sends you to. Access tokens are refreshed
    automatically. --oauth1 uses an app's four OAuth 1.0a keys instead.
    """
    from dmtool.credentials import ENV_OAUTH1, save_credentials

    st = state(ctx)
    if st.sandbox:
        output.info("sandbox: this profile uses the built-in sandbox X; there is nothing to log in to")
        return
    from dmtool.services import ratelimits

    # Checking the credentials asks X who they belong to (a users lookup): under
    # a users pause, say so before anyone goes through the login.
    with ratelimits.guarded(st.store, "users", "not logged in", hint="log in after that time"):
        creds = (_oauth1_credentials(st) if oauth1
                 else _oauth2_credentials(st, client_id, redirect_uri, redirect_url))
        _protect(creds)
        user = open_client(creds).me()
    creds.user_id, creds.username, creds.source = user.id, user.username, "file"
    _remember_account(st, user)
    path = st.paths.credentials_file
    save_credentials(path, creds)
    output.info(f"logged in as @{user.username} (user id {user.id}); "
                f"credentials saved to {path} (readable by you only)")
    if not oauth1 and all(st.environ.get(n) for n in ENV_OAUTH1):
        output.info("note: the X_API_KEY... variables in the environment take precedence over "
                    "this login until you unset them")


def _rate_limits(st: AppState) -> dict[str, datetime | None]:
    """X's pauses per endpoint family that are still ahead (none without a store)."""
    from dmtool import timeutil
    from dmtool.services import ratelimits

    if not st.has_store:
        return dict.fromkeys(ratelimits.FAMILIES)
    return ratelimits.active(st.store.conn, timeutil.now())


def _sandbox_status(st: AppState) -> dict[str, Any]:
    from dmtool.appstate import ensure_sandbox_world
    from dmtool.x.sandbox import SandboxWorld

    ensure_sandbox_world(st)
    world = SandboxWorld(st.paths.sandbox_file).snapshot()
    me = world.get("users", {}).get(world.get("me") or "", {})
    return {"backend": "sandbox", "user_id": me.get("id"), "username": me.get("username"),
            "kind": "sandbox", "source": "sandbox", "expires_at": None}


def _cached_account(st: AppState) -> tuple[str | None, str | None]:
    """Who the profile's store says it belongs to (environment keys carry no account)."""
    from dmtool.services.sync import K_ME_ID, K_ME_USERNAME

    if not st.has_store:
        return None, None
    return st.store.get_state(K_ME_ID), st.store.get_state(K_ME_USERNAME)


def _status(st: AppState) -> dict[str, Any]:
    from dmtool.timeutil import fmt

    data = _account_status(st)
    data["rate_limits"] = {f: fmt(until) for f, until in _rate_limits(st).items()}
    return data


def _account_status(st: AppState) -> dict[str, Any]:
    from dmtool.credentials import load_credentials

    if st.sandbox:
        return _sandbox_status(st)
    creds = load_credentials(st.paths.credentials_file, st.environ)
    if creds is None:
        raise AuthError(f"no X credentials for profile {st.profile!r}",
                        hint="run `dmtool auth login`, or set X_API_KEY, X_API_SECRET, "
                             "X_ACCESS_TOKEN and X_ACCESS_TOKEN_SECRET")
    _protect(creds)
    desc = creds.describe()  # secrets masked, expiry in RFC 3339
    user_id, username = creds.user_id, creds.username
    if not user_id:
        user_id, username = _cached_account(st)
    data: dict[str, Any] = {"backend": "x", "user_id": user_id, "username": username,
                            "kind": creds.kind, "source": creds.source,
                            "expires_at": desc.get("expires_at")}
    data.update({k: desc[k] for k in _SHOWN_FIELDS if k in desc})
    return data


@auth_app.command("status")
def auth_status(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Which X account this profile uses, where its credentials come from and
    when they expire (secrets masked), and which rate-limit pauses X asked for
    are still ahead, per endpoint family. Exit 4 when there are no credentials."""
    st = state(ctx)
    data = _status(st)
    if json_:
        output.print_json(data)
        return
    if st.sandbox:
        output.print_text("sandbox: this profile uses the built-in sandbox X (no credentials needed)")
    account = f"@{data['username']} (user id {data['user_id']})" if data["user_id"] else \
        "unknown until the first `dmtool sync`"
    source = {"file": f"file {st.paths.credentials_file}",
              "env": "environment (X_API_KEY, X_API_SECRET, X_ACCESS_TOKEN, X_ACCESS_TOKEN_SECRET)",
              "sandbox": "the sandbox"}.get(data["source"], data["source"])
    expires = data["expires_at"]
    if expires and data.get("refresh_token"):
        expires += " (refreshed automatically)"
    pairs: list[tuple[str, Any]] = [("backend", data["backend"]), ("account", account),
                                    ("kind", data["kind"]), ("credentials", source)]
    if expires:
        pairs.append(("expires", expires))
    pairs += [(k.replace("_", " "), data[k]) for k in _SHOWN_FIELDS if k in data]
    pairs.append(("rate limits", _limits_text(data["rate_limits"])))
    output.print_fields(pairs)


def _limits_text(limits: dict[str, str | None]) -> str:
    from dmtool.services import ratelimits
    from dmtool.timeutil import parse

    active = [f"{ratelimits.label(f)} paused until {ratelimits.local_time(parse(at))}"
              for f, at in limits.items() if at]
    return "; ".join(active) if active else "none"


@auth_app.command("logout")
def auth_logout(ctx: typer.Context) -> None:
    """Remove this profile's saved credentials."""
    from dmtool.credentials import ENV_OAUTH1, delete_credentials

    st = state(ctx)
    if st.sandbox:
        output.info("sandbox: this profile uses the built-in sandbox X; there is nothing to log out of")
        return
    path = st.paths.credentials_file
    if delete_credentials(path):
        output.info(f"logged out: removed {path}")
    else:
        output.info("no saved credentials for this profile")
    if any(st.environ.get(n) for n in ENV_OAUTH1):
        output.info("note: X_API_KEY... are still set in the environment; dmtool uses them "
                    "until you unset them")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(auth_app, name="auth")
