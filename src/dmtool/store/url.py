"""Where a store lives: a SQLite file, or a PostgreSQL database named by a URL.

`store.url` in a profile's config (or DMTOOL_DATABASE_URL, which overrides
it) selects the store; empty means the profile's own SQLite file. Nothing
here imports a driver. A URL may carry a password: `shown` masks it, and
every message that names a store uses `shown`.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

from dmtool.errors import ConfigError
from dmtool.record import Record

PG_SCHEMES = ("postgresql", "postgres")
# Compiled by `re` on first use (its cache keeps them): a local command's
# start-up compiles no pattern (tests/test_lean_start.py).
_PASSWORD_IN_NETLOC = r"(?i)\b([a-z][a-z0-9+.-]*://[^:@/?#\s]*):[^@/?#\s]*@"
_PASSWORD_PARAM = r"(?i)(\bpassword=)[^&\s]+"


def mask(text: str) -> str:
    """A URL (or any text holding one) with its password replaced by ***."""
    text = re.sub(_PASSWORD_IN_NETLOC, r"\1:***@", text)
    return re.sub(_PASSWORD_PARAM, r"\1***", text)


class StoreLocation(Record):
    __slots__ = ("engine", "path", "url")
    engine: str  # "sqlite" or "postgresql"
    path: Path | None  # the SQLite file
    url: str | None  # the PostgreSQL URL, secrets and all: never print it

    def __init__(self, engine: str, path: Path | None = None, url: str | None = None) -> None:
        self.engine = engine
        self.path = path
        self.url = url

    @property
    def shown(self) -> str:
        """What messages and `db path` print: the path, or the URL masked."""
        return str(self.path) if self.path is not None else mask(self.url or "")

    @property
    def is_postgres(self) -> bool:
        return self.engine == "postgresql"


def parse(value: str, *, where: str = "store.url") -> StoreLocation:
    """A store URL: postgresql://..., sqlite:///path, or a plain file path."""
    text = value.strip()
    scheme = text.split(":", 1)[0].lower() if "://" in text or text.startswith("sqlite:") else ""
    if scheme in PG_SCHEMES:
        return StoreLocation("postgresql", url=text)
    if scheme == "sqlite":
        rest = text[len("sqlite:"):]
        # SQLAlchemy's convention: sqlite:///relative.db, sqlite:////absolute.db
        path = unquote(rest[3:] if rest.startswith("///") else rest)
        if not path:
            raise ConfigError(f"{where}: {mask(text)} names no file",
                              hint="write sqlite:////absolute/path/dmtool.db")
        return StoreLocation("sqlite", path=Path(path).expanduser())
    if scheme:
        raise ConfigError(f"{where}: {mask(text)} is not a store URL dmtool knows",
                          hint="use postgresql://USER@HOST:PORT/DATABASE, or a SQLite file path")
    return StoreLocation("sqlite", path=Path(text).expanduser())


def resolve(configured: str | None, env_url: str | None, default: Path, *,
            env_name: str = "DMTOOL_DATABASE_URL") -> StoreLocation:
    """The environment's URL first, then the configured one, else the default file."""
    if env_url and env_url.strip():
        return parse(env_url, where=env_name)
    if configured and configured.strip():
        return parse(configured)
    return StoreLocation("sqlite", path=default)
