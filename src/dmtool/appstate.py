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
    from dmtool.localtime import DisplayZone
    from dmtool.store import Store
    from dmtool.x.types import XClient


@dataclass
class AppState:
    profile: str = DEFAULT_PROFILE
    verbose: bool = False
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    _paths: Paths | None = None
    _config: Config | None = None
    _store: Store | None = None
    _client: XClient | None = None
    _zone: DisplayZone | None = None

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

            self.config  # noqa: B018 - a broken config.toml must fail before anything runs
            self.paths.ensure()
            self._store = open_store(self.paths.db_file)
        return self._store

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
    return open_client(creds, None, save_credentials=lambda c: save_credentials(path, c),
                       credentials_path=path)
