"""How `auth login` gets X's answer to one OAuth 2.0 login on a terminal or off it:
the loopback listener (a browser on this machine), a paste at a visible
prompt (--no-browser, a taken port, a remote shell), and where the secrets go.

Both sources can race: on a terminal the listener waits while a line typed
at the prompt is taken as a paste, whichever comes first.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import typer

from dmtool import output
from dmtool.errors import AuthError, DmtoolError, UsageError

if TYPE_CHECKING:
    from dmtool.appstate import AppState
    from dmtool.credentials import Store
    from dmtool.login_listener import CallbackListener
    from dmtool.oauth_login import PendingLogin

log = logging.getLogger("dmtool.login")


def choose_store(st: AppState, wanted: str | None) -> Store:
    """Where the secrets of this login go. Decided before the browser opens, so a
    locked keyring stops the login (exit 4) before anyone approves anything.

    Default: the keyring on a terminal with a usable, unlocked one; else the file
    (off a terminal: a script or a job has no keyring session to count on)."""
    from dmtool import keyring_store
    from dmtool.credentials import keyring_account

    account = keyring_account(st.paths.credentials_file)
    if wanted == "file":
        return "file"
    if wanted == "keyring":
        keyring_store.check(account)
        return "keyring"
    if not output.interactive():
        log.debug("auth login off a terminal: the secrets go to the file")
        return "file"
    kr, why = keyring_store.backend()
    if kr is None:
        log.debug("auth login: %s; the secrets go to the file", why)
        return "file"
    try:
        keyring_store.check(account)
    except AuthError as exc:
        output.info(f"note: {exc.message}; the secrets go to the file instead")
        return "file"
    return "keyring"


def can_open_browser(environ: Mapping[str, str]) -> bool:
    """A browser can show up here: one is named ($BROWSER), or there is a desktop."""
    if environ.get("BROWSER"):
        return True
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


def _open_browser(url: str) -> None:
    import webbrowser

    def run() -> None:
        try:
            opened = webbrowser.open(url)
        except Exception:  # a broken browser setup: the address is printed anyway
            opened = False
        if not opened:
            output.info("(could not open a browser: open the address yourself)")

    # A browser command may wait for its window (BROWSER=...%s): never block the wait.
    threading.Thread(target=run, name="dmtool-browser", daemon=True).start()


def paste(prompt: str = "address") -> str:
    """The address X sent the browser to, typed at a visible prompt: it is no
    secret from the person at the screen, and seeing it avoids half pastes."""
    pasted = str(typer.prompt(prompt, default="", show_default=False)).strip()
    if not pasted:
        raise UsageError("no address was pasted", hint="run dmtool auth login again")
    return pasted


def _read_pastes(inbox: queue.Queue[tuple[str, str]]) -> None:
    for line in sys.stdin:
        if line.strip():
            inbox.put(("paste", line.strip()))
            return


class Redirect:
    """X's answer (the address it redirected to), and a way to tell the waiting
    browser how the login ended."""

    def __init__(self, url: str, listener: CallbackListener | None) -> None:
        self.url = url
        self._listener = listener
        self.told = False

    def tell(self, ok: bool, text: str) -> None:
        if self._listener is not None and not self.told:
            self._listener.finish(ok, text)
        self.told = True


def _pasted(login: PendingLogin, why: str | None) -> Redirect:
    if why:
        output.info(f"note: {why}; paste the address instead.")
    output.info("Open this address on any device, approve dmtool, then paste the address your "
                "browser ends on (an error page there is expected):")
    output.info(f"  {login.url}")
    return Redirect(paste(), None)


@contextlib.contextmanager
def redirect(login: PendingLogin, st: AppState, no_browser: bool) -> Iterator[Redirect]:
    """X's answer to `login`, from the listener or a paste. The listener, when
    there is one, stays open until the block ends, so the browser's page can say
    how the login ended (`Redirect.tell`)."""
    from dmtool import login_listener

    interactive = output.interactive()
    if no_browser:
        if not interactive:
            raise UsageError("--no-browser needs a terminal to paste the address into",
                             hint="use --print-url, then --redirect-url URL, to log in from a script")
        yield _pasted(login, None)
        return
    inbox: queue.Queue[tuple[str, str]] = queue.Queue()
    try:
        listener = login_listener.CallbackListener(login.redirect_uri, login.state, inbox)
    except login_listener.CannotListen as exc:
        if not interactive:
            raise AuthError(f"{exc}, so dmtool cannot receive X's redirect",
                            hint="free the port, or pass --redirect-uri with another callback "
                                 "registered for your app, or use --print-url then "
                                 "--redirect-url URL") from None
        yield _pasted(login, str(exc))
        return
    got: Redirect | None = None
    try:
        listener.start()
        output.info("Open this address in a browser and approve dmtool:")
        output.info(f"  {login.url}")
        if can_open_browser(st.environ):
            output.info("(opening your browser)")
            _open_browser(login.url)
        minutes = max(1, round(login_listener.WAIT_S / 60))
        wait = f"{minutes} minute" + ("s" if minutes > 1 else "")
        output.info(f"Waiting for X to send your browser back to {login.redirect_uri} "
                    f"(up to {wait}).")
        if interactive:
            sys.stderr.write("If the browser runs on another machine, paste the address it ends "
                             "on here and press Enter: ")
            sys.stderr.flush()
            threading.Thread(target=_read_pastes, args=(inbox,), name="dmtool-paste",
                             daemon=True).start()
        try:
            source, url = inbox.get(timeout=login_listener.WAIT_S)
        except queue.Empty:
            raise AuthError(f"no answer from X within {wait}",
                            hint="run `dmtool auth login --no-browser` and paste the address your "
                                 "browser ends on, or use --print-url then --redirect-url URL") from None
        if interactive and source == "redirect":
            sys.stderr.write("\n")
        got = Redirect(url, listener if source == "redirect" else None)
        try:
            yield got
        except DmtoolError as exc:
            got.tell(False, exc.message + (f" ({exc.hint})" if exc.hint else ""))
            raise
    finally:
        if got is None or not got.told:
            listener.finish(False, "dmtool stopped before the login finished; see the terminal.")
        listener.close()
