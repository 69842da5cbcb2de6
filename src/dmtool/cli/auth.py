"""`dmtool auth login|status|logout`.

Nothing here ever prints a secret: keys are read with hidden input, tokens
are shown only masked, and every secret is registered for redaction in -v
logs. The OAuth 2.0 login's wait for X's answer is in `login_flow`.
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

    from dmtool.credentials import Credentials, Store
    from dmtool.oauth_login import PendingLogin
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


def _client_id(st: AppState, client_id: str | None) -> str:
    cid = (client_id or st.environ.get("X_CLIENT_ID") or "").strip()
    if cid:
        return cid
    if not output.interactive():
        raise UsageError("OAuth 2.0 login needs your X app's client id",
                         hint="pass --client-id or set X_CLIENT_ID")
    cid = str(typer.prompt("X app client id")).strip()
    if not cid:
        raise UsageError("the client id is empty")
    return cid


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


TEAM = "team"  # where: the team store (shared credentials, docs/team.md)


def _team_login(st: AppState, oauth1: bool, store: str | None) -> bool:
    """Whether this login's tokens go to the team store: OAuth 2.0 on a store
    with a team. Checked before any browser opens: owners only (E_ROLE), a
    team key on this machine (exit 4), no --store (which names this machine)."""
    from dmtool import team_credentials
    from dmtool.services import roles

    if oauth1 or not roles.has_team(st):
        return False
    roles.require(st, "team")
    if store is not None:
        raise UsageError(f"--store {store}: on a team store the OAuth 2.0 tokens are kept in the "
                         "store, encrypted with the team key, so that every member's refresh "
                         "sees the others'",
                         hint="leave --store out; OAuth 1.0a keys (--oauth1) stay on this machine")
    team_credentials.require_key(st.environ, st.paths.credentials_file)
    return True


def _save(st: AppState, creds: Credentials, where: str) -> XUser:
    """Ask X who these credentials belong to, then save them where chosen (and
    remove a copy an earlier login left in the other place)."""
    from dmtool.credentials import ENV_OAUTH1, forget_other_store, save_credentials
    from dmtool.services import ledger

    _protect(creds)
    user = ledger.attach(st, open_client(creds)).me()  # recorded: a user read
    creds.user_id, creds.username = user.id, user.username
    _remember_account(st, user)
    if where == TEAM:
        from dmtool import team_credentials

        key = team_credentials.require_key(st.environ, st.paths.credentials_file)
        team_credentials.save(st.store, creds, key)
        output.info(f"logged in as @{user.username} (user id {user.id}); credentials saved to the "
                    f"team store, encrypted with the team key (from {key.source}): every member "
                    "with the key uses them")
        return user
    path = st.paths.credentials_file
    kept: Store = "keyring" if where == "keyring" else "file"
    save_credentials(path, creds, kept)
    forget_other_store(path, kept)
    place = ("the OS keyring (the file " + str(path) + " records only where they are)"
             if where == "keyring" else f"{path} (readable by you only)")
    output.info(f"logged in as @{user.username} (user id {user.id}); credentials saved to {place}")
    if creds.kind == "oauth2" and all(st.environ.get(n) for n in ENV_OAUTH1):
        output.info("note: the X_API_KEY... variables in the environment take precedence over "
                    "this login until you unset them")
    return user


def _finish(st: AppState, login: PendingLogin, url: str, where: str) -> XUser:
    from dmtool import oauth_login
    from dmtool.services import ledger

    code = oauth_login.code_from(login, url)
    # The token request is in the ledger too (0 units), with the users/me after it.
    return _save(st, oauth_login.exchange(login, code, observers=[ledger.of(st).record]), where)


def _check_options(oauth1: bool, no_browser: bool, print_url: bool, redirect_url: str | None,
                   client_id: str | None, redirect_uri: str) -> None:
    modes = [name for name, on in (("--oauth1", oauth1), ("--print-url", print_url),
                                   ("--redirect-url", redirect_url is not None),
                                   ("--no-browser", no_browser)) if on]
    if len(modes) > 1:
        raise UsageError(f"{' and '.join(modes)} do not go together",
                         hint="--print-url starts a login and --redirect-url URL finishes it, in "
                              "two runs; --no-browser pastes the address in one run")
    if redirect_url is not None and (client_id is not None or redirect_uri != DEFAULT_REDIRECT):
        raise UsageError("--redirect-url finishes the login --print-url started, with its client "
                         "id and callback address", hint="give those to --print-url")


@auth_app.command("login")
def auth_login(
    ctx: typer.Context,
    oauth1: Annotated[bool, typer.Option(
        "--oauth1", help="Use OAuth 1.0a keys (X_API_KEY, X_API_SECRET, X_ACCESS_TOKEN, "
                         "X_ACCESS_TOKEN_SECRET, or typed with hidden input).")] = False,
    client_id: Annotated[str | None, typer.Option(
        "--client-id", help="OAuth 2.0 client id of your X app (default: X_CLIENT_ID).")] = None,
    redirect_uri: Annotated[str, typer.Option(
        "--redirect-uri", help="The callback address registered for your X app; dmtool listens "
                               "there (a loopback http address) for X's answer.")]
    = DEFAULT_REDIRECT,
    no_browser: Annotated[bool, typer.Option(
        "--no-browser", help="Do not open a browser or listen: paste the address the browser "
                             "ends on at a prompt (a remote shell).")] = False,
    print_url: Annotated[bool, typer.Option(
        "--print-url", help="Print the address to open and keep this login waiting (step one "
                            "of two, for scripts and remote shells).")] = False,
    redirect_url: Annotated[str | None, typer.Option(
        "--redirect-url", help="Finish the login --print-url started, with the address X "
                               "redirected to after approval (step two).")] = None,
    store: Annotated[str | None, typer.Option(
        "--store", help="Where the secrets go: keyring (the OS keyring) or file (readable by "
                        "you only). Default: the keyring on a terminal when one is usable, "
                        "else the file.")] = None,
) -> None:
    """Log in to X and save the credentials (in the OS keyring or a file only you can read;
    on a team store, OAuth 2.0 tokens go to the store, encrypted with the team key: owners only).

    By default OAuth 2.0 with PKCE: dmtool prints the authorize address, opens
    your browser when there is one, and listens on the callback address until
    X sends the browser back (up to 5 minutes). On a remote shell use
    --no-browser and paste the address the browser ends on; in a script,
    --print-url then --redirect-url URL. Access tokens are refreshed
    automatically. --oauth1 uses an app's four OAuth 1.0a keys instead.
    """
    from dmtool import oauth_login
    from dmtool.cli import login_flow

    st = state(ctx)
    if st.sandbox:
        output.info("sandbox: this profile uses the built-in sandbox X; there is nothing to log in to")
        return
    if store not in (None, "keyring", "file"):
        raise UsageError(f"--store is keyring or file, not {store!r}")
    _check_options(oauth1, no_browser, print_url, redirect_url, client_id, redirect_uri)
    team = _team_login(st, oauth1, store)
    pending_file = oauth_login.pending_path(st.paths.credentials_file)
    if print_url:
        if store == "keyring":
            login_flow.choose_store(st, store)  # a locked keyring fails now, not at step two
        login = oauth_login.start(_client_id(st, client_id), st.environ.get("X_CLIENT_SECRET"),
                                  redirect_uri)
        login.store = store
        st.paths.ensure()
        oauth_login.save_pending(pending_file, login)
        output.print_text(login.url)
        output.info("Open this address, approve dmtool, then finish with: "
                    "dmtool auth login --redirect-url 'ADDRESS-YOUR-BROWSER-ENDS-ON' "
                    "(within an hour)")
        return
    from dmtool.services import ratelimits

    # Checking the credentials asks X who they belong to (a users lookup): under
    # a users pause, say so before anyone goes through the login.
    with ratelimits.guarded(st.store, "users", "not logged in", hint="log in after that time"):
        if oauth1:
            _save(st, _oauth1_credentials(st), login_flow.choose_store(st, store))
        elif redirect_url is not None:
            login = oauth_login.load_pending(pending_file)
            where = TEAM if team else login_flow.choose_store(st, store or login.store)
            _finish(st, login, redirect_url, where)
            oauth_login.delete_pending(pending_file)
        else:
            where = TEAM if team else login_flow.choose_store(st, store)
            login = oauth_login.start(_client_id(st, client_id), st.environ.get("X_CLIENT_SECRET"),
                                      redirect_uri)
            with login_flow.redirect(login, st, no_browser) as answer:
                user = _finish(st, login, answer.url, where)
                answer.tell(True, f"dmtool is logged in as @{user.username}. You can close this "
                                  "tab and go back to the terminal.")


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
            "kind": "sandbox", "source": "sandbox", "location": str(st.paths.sandbox_file),
            "expires_at": None}


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
    data["budget"] = _budget(st)
    return data


def _budget(st: AppState) -> dict[str, Any]:
    """The X budgets and what is spent in them (nothing without a store)."""
    from dmtool import timeutil
    from dmtool.services import budget

    if st.has_store:
        periods = budget.state(st)
    else:
        now, limits = timeutil.now(), budget.Limits.from_config(st.config)
        periods = [budget.Period("day", budget.utc_day(now), limits.day, 0.0),
                   budget.Period("month", budget.month_start(now), limits.month, 0.0)]
    return {p.name: p.to_dict() for p in periods}


def _credentials_in_use(st: AppState) -> tuple[Credentials | None, str | None]:
    """The credentials X calls use, in the order they are read: the environment,
    the team store, the keyring or the file; and where the team key came from."""
    from dmtool.credentials import from_environment, load_credentials

    creds = from_environment(st.environ)
    if creds is None and st.has_store:
        from dmtool import team_credentials

        if team_credentials.stored(st.store):
            key = team_credentials.require_key(st.environ, st.paths.credentials_file)
            return team_credentials.load(st.store, key), key.source
    if creds is None:
        creds = load_credentials(st.paths.credentials_file, st.environ)
    return creds, None


def _account_status(st: AppState) -> dict[str, Any]:
    if st.sandbox:
        return _sandbox_status(st)
    creds, key_source = _credentials_in_use(st)
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
                            "location": _location(st, creds.source, key_source),
                            "expires_at": desc.get("expires_at")}
    data.update({k: desc[k] for k in _SHOWN_FIELDS if k in desc})
    return data


def _location(st: AppState, source: str, key_source: str | None = None) -> str:
    """Where the secrets in use are: a file path, the keyring entry, the variables,
    the team store (and where its key comes from)."""
    from dmtool.credentials import ENV_OAUTH1, keyring_account

    path = st.paths.credentials_file
    if source == "team":
        return f"the team store, encrypted with the team key from {key_source}"
    if source == "keyring":
        from dmtool import keyring_store

        name = keyring_store.backend()[1]
        return f"{name}, service {keyring_store.SERVICE!r}, account {keyring_account(path)!r}"
    if source == "env":
        return ", ".join(ENV_OAUTH1)
    return str(path)


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
    source = {"file": f"file {data.get('location')}", "keyring": f"OS keyring ({data.get('location')})",
              "env": f"environment ({data.get('location')})",
              "team": str(data.get("location")),
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
    pairs.append(("budget", _budget_text(data["budget"])))
    output.print_fields(pairs)


def _budget_text(b: dict[str, Any]) -> str:
    from dmtool.services.budget import usd

    parts = []
    for name in ("day", "month"):
        p = b[name]
        if p["limit"] is None:
            parts.append(f"{name}: none set ({usd(p['spent'])} spent)")
        else:
            parts.append(f"{name}: {usd(p['spent'])} of {usd(p['limit'])} spent")
    return "; ".join(parts) + " (UTC; `dmtool usage` for more)"


def _limits_text(limits: dict[str, str | None]) -> str:
    from dmtool.services import ratelimits
    from dmtool.timeutil import parse

    active = [f"{ratelimits.label(f)} paused until {ratelimits.local_time(parse(at))}"
              for f, at in limits.items() if at]
    return "; ".join(active) if active else "none"


@auth_app.command("logout")
def auth_logout(ctx: typer.Context) -> None:
    """Remove this profile's saved credentials, from the OS keyring and the file."""
    from dmtool.credentials import ENV_OAUTH1, delete_credentials

    st = state(ctx)
    if st.sandbox:
        output.info("sandbox: this profile uses the built-in sandbox X; there is nothing to log out of")
        return
    path = st.paths.credentials_file
    removed = delete_credentials(path)
    if removed:
        places = {"keyring": "the OS keyring", "file": str(path)}
        output.info("logged out: removed the credentials from "
                    + " and ".join(places[p] for p in removed))
    else:
        output.info("no saved credentials for this profile")
    from dmtool import oauth_login

    oauth_login.delete_pending(oauth_login.pending_path(path))
    if st.has_store:
        from dmtool import team_credentials

        if team_credentials.stored(st.store):
            output.info("note: the team's shared X credentials stay in the store; this machine "
                        "uses them while it has the team key")
    if any(st.environ.get(n) for n in ENV_OAUTH1):
        output.info("note: X_API_KEY... are still set in the environment; dmtool uses them "
                    "until you unset them")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(auth_app, name="auth")
