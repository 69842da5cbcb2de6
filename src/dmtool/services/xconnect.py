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
