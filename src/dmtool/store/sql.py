"""What store/ needs of a database connection, on either engine.

SQLite's `sqlite3.Connection` (with `sqlite3.Row`) already has this shape;
the PostgreSQL engine (store/pg.py) wraps psycopg2 to match it. Everything
above store/ types its connections as `Conn` and never learns which engine
answers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

Params = Sequence[Any] | Mapping[str, Any]


class Row(Protocol):
    """A result row: by position (`row[0]`) and by column name (`row["id"]`)."""

    def __getitem__(self, key: Any, /) -> Any: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Any]: ...
    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...
    @property
    def lastrowid(self) -> int | None: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchmany(self, size: int = ..., /) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Conn(Protocol):
    """A connection: `execute` with `?` (or `:name`) parameters, in SQLite's dialect."""

    @property
    def in_transaction(self) -> bool: ...
    def execute(self, sql: str, parameters: Params = ..., /) -> Any: ...
    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Any: ...
    def close(self) -> None: ...


class Locks(Protocol):
    """The store's named locks ("send", "sync", "digest"): Store.lock, or
    store.db.FileLocks where the SQLite store itself cannot be opened."""

    def lock(self, name: str, timeout: float | None = None) -> AbstractContextManager[None]: ...
