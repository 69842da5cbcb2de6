"""The per-invocation state (profile, paths, config, store, X client) that
every command hands to the services, and how a profile's X client is opened.

It sits below both cli/ (which builds it from the command line) and services/
(which use it), so neither has to import the other.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from dmtool.paths import DEFAULT_PROFILE, Paths

if TYPE_CHECKING:
    from dmtool.config import Config, TeamSettings
    from dmtool.localtime import DisplayZone
    from dmtool.store import Store
    from dmtool.store.url import StoreLocation
    from dmtool.x.types import XClient

# A profile on the real X takes its store from here (over `store.url`)...
DATABASE_URL_ENV = "DMTOOL_DATABASE_URL"
# ...and a sandbox profile only from here: a team's URL in the environment or
# in config.toml must never receive a fake X's data.
SANDBOX_DATABASE_URL_ENV = "DMTOOL_SANDBOX_DATABASE_URL"


class AppState:
    # A plain class: a dataclass would be generated and compiled at every start-up.
    def __init__(self, profile: str = DEFAULT_PROFILE, *, verbose: bool = False,
                 creates_profile: bool = False, environ: Mapping[str, str] | None = None) -> None:
        self.profile = profile
        self.verbose = verbose
        # Only a few commands may bring a new profile into being (cli/app.py
        # CREATES_PROFILE); any other refuses a profile that does not exist, so a
        # typo in --profile never silently starts an empty record.
        self.creates_profile = creates_profile
        self.environ: Mapping[str, str] = dict(os.environ) if environ is None else environ
        self._paths: Paths | None = None
        self._config: Config | None = None
        self._store: Store | None = None
        self._client: XClient | None = None
        self._zone: DisplayZone | None = None
        self._operator: tuple[str | None, str] | None = None
        # What services keep for one invocation (the request ledger): by name,
        # with what to do before the store closes.
        self._extensions: dict[str, object] = {}
        self._on_close: list[Callable[[], None]] = []

    @property
    def paths(self) -> Paths:
        if self._paths is None:
            self._paths = Paths.resolve(self.profile, self.environ)
        return self._paths

    def require_profile(self) -> None:
        """NotFound, with the list of profiles, unless this profile exists or
        this command may create it."""
        if self.creates_profile or self.paths.exists():
            return
        from dmtool.errors import NotFound
        from dmtool.paths import list_profiles

        names = list_profiles(self.environ)
        raise NotFound(f"no profile {self.profile!r} (profiles: {', '.join(names)})",
                       hint=f"check the name, or create it with `dmtool profiles add {self.profile}`",
                       details=[{"profile": n} for n in names])

    @property
    def config(self) -> Config:
        if self._config is None:
            from dmtool.config import Config

            self.require_profile()
            self._config = Config.load(self.paths.config_file)
            self._config.team_loader = self._team_settings
        return self._config

    def _team_settings(self) -> TeamSettings | None:
        """The settings the store's team shares (None: no store, or no members)."""
        if not self.has_store:
            return None
        from dmtool.config import team_settings
        from dmtool.store import team

        conn = self.store.conn
        if not team.has_members(conn):
            return None
        rows = ((s.key, s.raw, s.set_at, s.set_by) for s in team.settings(conn))
        return team_settings(rows, f"the team store {self.store.location.shown}")

    def operator(self) -> str | None:
        """Who is acting (dmtool.actor), or None when nothing can name them."""
        return self.operator_source()[0]

    def operator_source(self) -> tuple[str | None, str]:
        """(the operator, where the name comes from): DMTOOL_OPERATOR, else
        config operator.name, else the login name; on a team store with
        team.trust_db_user, the database user whatever those say."""
        if self._operator is None:
            from dmtool import actor

            if self.config.get("team.trust_db_user"):
                self._operator = (self.store.db_user(), "database user (team.trust_db_user)")
            else:
                name = self.environ.get(actor.ENV, "").strip()
                configured = str(self.config.get("operator.name") or "").strip()
                if name:
                    self._operator = (name, actor.ENV)
                elif configured:
                    self._operator = (configured, "operator.name")
                else:
                    self._operator = (actor.operator_name(self.environ), "login name")
        return self._operator

    @property
    def store(self) -> Store:
        if self._store is None:
            from dmtool.errors import StoreError
            from dmtool.store import open_store

            self.config  # noqa: B018 - a broken config.toml must fail before anything runs
            location = self.store_location()
            try:
                self.paths.ensure()
            except StoreError:  # a folder it cannot create: reading an existing store still works
                if not self.has_store:
                    raise
            self._store = open_store(location, lock_dir=self.paths.state_dir,
                                     progress=_upgrade_note())
            if self.creates_profile and not self.paths.exists():
                # A store on a server leaves no file here: the config.toml says the profile exists.
                self.paths.config_file.touch(mode=0o600)
            # Whoever this invocation writes audit entries for (dmtool.actor).
            from dmtool import actor

            actor.set_operator(self.operator)
        return self._store

    def store_location(self) -> StoreLocation:
        """Where this profile's store is: DMTOOL_DATABASE_URL, else `store.url`,
        else the profile's SQLite file. Sandbox profiles (and so `demo`) ignore
        both and read DMTOOL_SANDBOX_DATABASE_URL only."""
        from dmtool.store.url import resolve

        if not (self.creates_profile or self.paths.exists()):
            # `paths` and `db path` say where a new profile's store would be; it has no config.
            return resolve(None, self.environ.get(DATABASE_URL_ENV), self.paths.db_file)
        if self.sandbox:
            return resolve(None, self.environ.get(SANDBOX_DATABASE_URL_ENV), self.paths.db_file,
                           env_name=SANDBOX_DATABASE_URL_ENV)
        return resolve(str(self.config.get("store.url") or ""), self.environ.get(DATABASE_URL_ENV),
                       self.paths.db_file)

    @property
    def has_store(self) -> bool:
        """Whether a store exists yet (commands that only read need not create one)."""
        if self._store is not None:
            return True
        location = self.store_location()
        return location.is_postgres or (location.path is not None and location.path.exists())

    @property
    def zone(self) -> DisplayZone:
        """The zone text output shows times in: display.timezone, else TZ, else
        the system's. Resolved on first use: JSON output never needs it."""
        if self._zone is None:
            from dmtool.errors import ConfigError
            from dmtool.localtime import UnknownZone, resolve

            configured = str(self.config.get("display.timezone") or "")
            try:
                self._zone = resolve(configured, self.environ)
            except UnknownZone as e:
                raise ConfigError(f"{self.paths.config_file}: config key 'display.timezone': {e}",
                                  hint='`dmtool config set display.timezone Asia/Tokyo`, or "" '
                                       "to follow TZ") from None
        return self._zone

    @property
    def sandbox(self) -> bool:
        return self.config.backend == "sandbox"

    def can_reach_x(self) -> bool:
        """Whether this profile has a way to ask X at all: the sandbox, or
        credentials in the environment or the credentials file (which may say
        they are in the keyring). Reads files only: no keyring, no network; a
        broken credentials file is a ConfigError."""
        if self.sandbox:
            return True
        from dmtool.credentials import has_credentials

        if has_credentials(self.paths.credentials_file, self.environ):
            return True
        if not self.has_store:
            return False
        from dmtool import team_credentials

        return team_credentials.stored(self.store)

    def client(self) -> XClient:
        """The X client for this profile: the sandbox or the real API (tweepy)."""
        if self._client is None:
            self._client = connect(self)
        return self._client

    def extension(self, name: str) -> object | None:
        return self._extensions.get(name)

    def set_extension(self, name: str, value: object,
                      on_close: Callable[[], None] | None = None) -> None:
        """Keep `value` for this invocation; `on_close` runs before the store closes."""
        self._extensions[name] = value
        if on_close is not None:
            self._on_close.append(on_close)

    def close(self) -> None:
        hooks, self._on_close = self._on_close, []
        for hook in hooks:
            hook()
        self._extensions.clear()
        if self._store is not None:
            self._store.close()
            self._store = None
            from dmtool import actor

            actor.set_operator(None)


def _upgrade_note() -> Callable[[str], None] | None:
    """Where a long store upgrade (building the search index) says it is still
    working: a line rewritten in place on a terminal; nothing elsewhere."""
    import sys

    if not sys.stderr.isatty():
        return None

    shown = 0

    def note(text: str) -> None:
        nonlocal shown
        line = text.rstrip("\n")
        sys.stderr.write("\r" + line.ljust(shown) + text[len(line):])  # spaces over a longer one
        sys.stderr.flush()
        shown = 0 if text.endswith("\n") else len(line)

    return note


def ensure_sandbox_world(st: AppState) -> None:
    """A sandbox profile with no world yet gets an empty one with an account."""
    from dmtool.x.sandbox import SANDBOX_ME, SandboxWorld

    path = st.paths.sandbox_file
    if not path.exists():
        st.paths.ensure()
        world = SandboxWorld.create(path)
        world.set_me(*SANDBOX_ME)


def connect(st: AppState) -> XClient:
    """Open the profile's X client (tweepy and requests are imported only here)."""
    from dmtool.x.client import open_client

    if st.sandbox:
        ensure_sandbox_world(st)
        return open_client(None, st.paths.sandbox_file, retry_backoff=0.0)
    from dmtool.credentials import from_environment, load_credentials, save_credentials

    path = st.paths.credentials_file
    # The order: the environment, then the team store, then the keyring or the file.
    creds = from_environment(st.environ)
    if creds is None and st.has_store:
        from dmtool import team_credentials as shared

        if shared.stored(st.store):
            key = shared.require_key(st.environ, path)
            place = shared.SharedPlace(st.store, key)
            team = place.read()
            if team is not None:
                check_account(st, team.user_id)
            return open_client(team, None, save_credentials=place.save, shared_credentials=place)
    if creds is None:
        creds = load_credentials(path, st.environ)
    if creds is not None:
        check_account(st, creds.user_id or _oauth1_user(creds.access_token))
    return open_client(creds, None, save_credentials=lambda c: save_credentials(path, c),
                       credentials_path=path)


def _oauth1_user(token: str | None) -> str | None:
    """An OAuth 1.0a access token starts with its user's id: "12345-AbC..."."""
    head = (token or "").partition("-")[0]
    return head if head.isdigit() and "-" in (token or "") else None


def check_account(st: AppState, user_id: str | None) -> None:
    """A store belongs to one X account (recorded at the first sync or login):
    credentials of another account are refused before any request, so two
    brands' conversations never mix in one store (a shared team store above all)."""
    if not user_id or not st.has_store:
        return
    stored = st.store.get_state("me_id")
    if stored and stored != user_id:
        from dmtool.errors import ConfigError

        who = st.store.get_state("me_username") or stored
        raise ConfigError(
            f"this store belongs to @{who} (X user {stored}), but profile {st.profile!r}'s "
            f"credentials are X user {user_id}'s; nothing was asked of X",
            code="E_ACCOUNT_MISMATCH",
            hint=f"log in as @{who} (`dmtool auth login`), or give this account its own store "
                 "(store.url, docs/team.md)")
