"""The per-invocation state (profile, paths, config, store, X client) that
every command hands to the services, and how a profile's X client is opened.

It sits below both cli/ (which builds it from the command line) and services/
(which use it), so neither has to import the other.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dmtool.paths import DEFAULT_PROFILE, Paths

if TYPE_CHECKING:
    from dmtool.config import Config
    from dmtool.store import Store
    from dmtool.store.url import StoreLocation
    from dmtool.x.types import XClient

# A profile on the real X takes its store from here (over `store.url`)...
DATABASE_URL_ENV = "DMTOOL_DATABASE_URL"
# ...and a sandbox profile only from here: a team's URL in the environment or
# in config.toml must never receive a fake X's data.
SANDBOX_DATABASE_URL_ENV = "DMTOOL_SANDBOX_DATABASE_URL"


@dataclass
class AppState:
    profile: str = DEFAULT_PROFILE
    verbose: bool = False
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    _paths: Paths | None = None
    _config: Config | None = None
    _store: Store | None = None
    _client: XClient | None = None

    @property
    def paths(self) -> Paths:
        if self._paths is None:
            self._paths = Paths.resolve(self.profile, self.environ)
        return self._paths

    @property
    def config(self) -> Config:
        if self._config is None:
            from dmtool.config import Config

            self._config = Config.load(self.paths.config_file)
        return self._config

    @property
    def store(self) -> Store:
        if self._store is None:
            from dmtool.store import open_store

            location = self.store_location()  # a broken config.toml fails before anything runs
            self.paths.ensure()
            self._store = open_store(location, lock_dir=self.paths.state_dir)
        return self._store

    def store_location(self) -> StoreLocation:
        """Where this profile's store is: DMTOOL_DATABASE_URL, else `store.url`,
        else the profile's SQLite file. Sandbox profiles (and so `demo`) ignore
        both and read DMTOOL_SANDBOX_DATABASE_URL only."""
        from dmtool.store.url import resolve

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
    def sandbox(self) -> bool:
        return self.config.backend == "sandbox"

    def can_reach_x(self) -> bool:
        """Whether this profile has a way to ask X at all: the sandbox, or
        credentials in the environment or the credentials file. Reads files
        only, no network; a broken credentials file is a ConfigError."""
        if self.sandbox:
            return True
        from dmtool.credentials import load_credentials

        return load_credentials(self.paths.credentials_file, self.environ) is not None

    def client(self) -> XClient:
        """The X client for this profile: the sandbox or the real API (tweepy)."""
        if self._client is None:
            self._client = connect(self)
        return self._client

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


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
    from dmtool.credentials import load_credentials, save_credentials

    path = st.paths.credentials_file
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
