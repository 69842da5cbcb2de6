"""The team on a store: its members and their roles, and the settings it shares.

Names are matched ignoring ASCII case, as `log --actor` matches actors. Who
may do what is services/roles.py; reading the shared settings as config is
appstate/config.py.
"""

from __future__ import annotations

import json
from typing import Any

from dmtool.record import Record
from dmtool.store.sql import Conn


# Records, not dataclasses nor NamedTuples: every command reads this module,
# and a dataclass costs a millisecond to define at import (dmtool/record.py).
class Member(Record):
    __slots__ = ("name", "role", "added_at", "added_by")
    name: str
    role: str
    added_at: str
    added_by: str | None

    def __init__(self, name: str, role: str, added_at: str, added_by: str | None) -> None:
        self.name = name
        self.role = role
        self.added_at = added_at
        self.added_by = added_by

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "added_at": self.added_at,
                "added_by": self.added_by}


# The sync_state row that holds the team's X credentials, encrypted with the
# team key (dmtool/team_credentials.py): a name here so that code which only
# carries the row over (db restore) need not load the credentials module.
CREDENTIALS_KEY = "team_credentials"


def has_members(conn: Conn) -> bool:
    """Whether the store has a team at all (no members: everybody acts as owner)."""
    return conn.execute("SELECT 1 FROM team_members LIMIT 1").fetchone() is not None


def members(conn: Conn) -> list[Member]:
    return [Member(*r) for r in conn.execute(
        "SELECT name, role, added_at, added_by FROM team_members ORDER BY name COLLATE NOCASE")]


def member(conn: Conn, name: str) -> Member | None:
    row = conn.execute("SELECT name, role, added_at, added_by FROM team_members "
                       "WHERE name = ? COLLATE NOCASE", (name,)).fetchone()
    return None if row is None else Member(*row)


def count_role(conn: Conn, role: str) -> int:
    return int(conn.execute("SELECT count(*) FROM team_members WHERE role = ?",
                            (role,)).fetchone()[0])


def add(conn: Conn, name: str, role: str, *, now: str, by: str | None) -> None:
    conn.execute("INSERT INTO team_members (name, role, added_at, added_by) VALUES (?, ?, ?, ?)",
                 (name, role, now, by))


def set_role(conn: Conn, name: str, role: str) -> None:
    conn.execute("UPDATE team_members SET role = ? WHERE name = ? COLLATE NOCASE", (role, name))


def remove(conn: Conn, name: str) -> None:
    conn.execute("DELETE FROM team_members WHERE name = ? COLLATE NOCASE", (name,))


# --- the shared settings -------------------------------------------------------------


class StoredSetting(Record):
    __slots__ = ("key", "raw", "set_at", "set_by")
    key: str
    raw: str  # JSON, checked by config.team_values
    set_at: str
    set_by: str | None

    def __init__(self, key: str, raw: str, set_at: str, set_by: str | None) -> None:
        self.key = key
        self.raw = raw
        self.set_at = set_at
        self.set_by = set_by


def settings(conn: Conn) -> list[StoredSetting]:
    return [StoredSetting(*r) for r in conn.execute(
        "SELECT key, value, set_at, set_by FROM team_settings ORDER BY key")]


def set_setting(conn: Conn, key: str, value: Any, *, now: str,
                by: str | None) -> None:
    conn.execute(
        "INSERT INTO team_settings (key, value, set_at, set_by) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, set_at = excluded.set_at, "
        "set_by = excluded.set_by",
        (key, json.dumps(value, ensure_ascii=False), now, by))
