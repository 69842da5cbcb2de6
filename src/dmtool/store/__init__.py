"""The only SQL in dmtool: the SQLite store of one profile."""

from dmtool.store.db import Store, open_store

__all__ = ["Store", "open_store"]
