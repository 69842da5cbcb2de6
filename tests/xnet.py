"""X's hosts answered by a sandbox world, for code that opens its own requests
sessions (the login's token exchange, the client that checks who logged in):
`route_x_to_sandbox` in this process, `on_sandbox_command` for a dmtool
subprocess, and a browser that approves on the sandbox's authorize page."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from tests.conftest import REPO

X_PREFIXES = ("https://api.x.com/", "https://api.twitter.com/", "https://x.com/",
              "https://twitter.com/")


def route_x_to_sandbox(world_path: Path | str) -> Any:
    """Every requests session answers X's hosts from the world (and nothing else
    changes: loopback addresses still go over real sockets). Returns an undo."""
    import requests

    from dmtool.x.sandbox import SandboxAdapter

    adapter = SandboxAdapter(world_path)
    original = requests.Session.get_adapter

    def get_adapter(self: requests.Session, url: str) -> Any:
        if url.lower().startswith(X_PREFIXES):
            return adapter
        return original(self, url)

    requests.Session.get_adapter = get_adapter  # type: ignore[method-assign]

    def undo() -> None:
        requests.Session.get_adapter = original  # type: ignore[method-assign]

    return undo


def on_sandbox_command(world_path: Path | str) -> list[str]:
    """The command line of a dmtool whose X is the world (tests/on_sandbox.py)."""
    return [sys.executable, "-m", "tests.on_sandbox", str(world_path)]


def subprocess_env(**extra: str) -> dict[str, str]:
    """os.environ (the test's, already cleaned by conftest) plus the repo on the
    path, so a subprocess can import tests.* (the harness, the test keyring)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def browser(world_path: Path | str) -> Any:
    """A requests session that plays the user's browser: X's pages come from the
    world, anything else (dmtool's listener) over real loopback sockets."""
    import requests

    from dmtool.x.sandbox import SandboxAdapter

    session = requests.Session()
    session.trust_env = False  # no proxy between the "browser" and 127.0.0.1
    adapter = SandboxAdapter(world_path)
    for prefix in X_PREFIXES:
        session.mount(prefix, adapter)
    return session


def approve(world_path: Path | str, authorize_url: str) -> str:
    """Open the authorize address and approve (or deny, as the world says):
    the address X redirects the browser to, not followed."""
    with browser(world_path) as session:
        r = session.get(authorize_url, allow_redirects=False)
    assert r.status_code == 302, (r.status_code, r.text)
    return str(r.headers["location"])
