"""Choosing and opening the X client of a profile: the sandbox or the real API."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dmtool.cli.context import AppState
    from dmtool.x.types import XClient

SANDBOX_ME = ("1000000000000000001", "you", "You (sandbox)")


def ensure_sandbox_world(st: AppState) -> None:
    """A sandbox profile with no world yet gets an empty one with an account."""
    from dmtool.x.sandbox import SandboxWorld

    path = st.paths.sandbox_file
    if not path.exists():
        st.paths.ensure()
        world = SandboxWorld.create(path)
        world.set_me(*SANDBOX_ME)


def can_reach_x(st: AppState) -> bool:
    """Whether this profile has a way to ask X at all: the sandbox, or credentials
    in the environment or the credentials file. Reads files only, no network;
    a broken credentials file is a ConfigError, as everywhere."""
    if st.sandbox:
        return True
    from dmtool.credentials import load_credentials

    return load_credentials(st.paths.credentials_file, st.environ) is not None


def connect(st: AppState) -> XClient:
    from dmtool.x.client import open_client

    if st.sandbox:
        ensure_sandbox_world(st)
        return open_client(None, st.paths.sandbox_file, retry_backoff=0.0)
    from dmtool.credentials import load_credentials, save_credentials

    path = st.paths.credentials_file
    creds = load_credentials(path, st.environ)
    return open_client(creds, None, save_credentials=lambda c: save_credentials(path, c),
                       credentials_path=path)
