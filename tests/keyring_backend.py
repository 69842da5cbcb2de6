"""A keyring backend for tests: a JSON file shared by every process of a test
(DMTOOL_TEST_KEYRING names it), that can be locked like a real keyring.

Installed with keyring.set_keyring() in-process, or for a subprocess with
PYTHON_KEYRING_BACKEND=tests.keyring_backend.FileKeyring (keyring's own way
to choose a backend). Locked (a `.locked` file beside it): every call raises
KeyringLocked, as keyring does when a keyring stays locked, and counts the
attempt, so a test can show dmtool never even asked.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from keyring.backend import KeyringBackend
from keyring.errors import KeyringLocked, PasswordDeleteError


class FileKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]  # "recommended": dmtool counts it as usable

    @property
    def path(self) -> Path:
        return Path(os.environ["DMTOOL_TEST_KEYRING"])

    @property
    def lock_marker(self) -> Path:
        return self.path.with_name(self.path.name + ".locked")

    @contextmanager
    def _entries(self, write: bool) -> Iterator[dict[str, Any]]:
        if self.lock_marker.exists():
            with open(self.path.with_name(self.path.name + ".attempts"), "a") as fh:
                fh.write("x")
            raise KeyringLocked("the test keyring is locked")
        fd = os.open(self.path.with_name(self.path.name + ".flock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            data = json.loads(self.path.read_text()) if self.path.exists() else {}
            yield data
            if write:
                self.path.write_text(json.dumps(data))
        finally:
            os.close(fd)

    def get_password(self, service: str, username: str) -> str | None:
        with self._entries(write=False) as data:
            return data.get(service, {}).get(username)  # type: ignore[no-any-return]

    def set_password(self, service: str, username: str, password: str) -> None:
        with self._entries(write=True) as data:
            data.setdefault(service, {})[username] = password

    def delete_password(self, service: str, username: str) -> None:
        with self._entries(write=True) as data:
            if username not in data.get(service, {}):
                raise PasswordDeleteError("no such password")
            del data[service][username]


def entries(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def attempts_while_locked(path: Path) -> int:
    marker = path.with_name(path.name + ".attempts")
    return len(marker.read_text()) if marker.exists() else 0
