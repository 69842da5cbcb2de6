"""The per-invocation state handed to every command through ctx.obj."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import typer

from dmtool.paths import DEFAULT_PROFILE, Paths

if TYPE_CHECKING:
    from dmtool.config import Config
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
    def sandbox(self) -> bool:
        return self.config.backend == "sandbox"

    def client(self) -> XClient:
        """The X client for this profile: the sandbox or the real API (tweepy)."""
        if self._client is None:
            from dmtool.services.xconnect import connect

            self._client = connect(self)
        return self._client

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def state(ctx: typer.Context) -> AppState:
    obj: Any = ctx.find_root().obj
    if not isinstance(obj, AppState):
        obj = AppState()
        ctx.find_root().obj = obj
    return obj
