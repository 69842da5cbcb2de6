"""The loopback listener `auth login` waits on for X's redirect.

It binds the redirect URI's host and port (a loopback http address), serves
in a background thread and hands the one request that finishes the login to
the caller: a GET of the callback path carrying this login's `state`. Any
other request is answered and does not end it: a favicon, a prefetch (a HEAD,
or a GET marked `Sec-Purpose`/`Purpose: prefetch`), a stale tab of an earlier
attempt (another state). The browser's request is held open until the caller
says how the login ended, so the page can say it worked, or why not.

stdlib only (http.server, threading); nothing is logged but the path: the
query carries the one-time code.
"""

from __future__ import annotations

import html
import logging
import queue
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("dmtool.login")

WAIT_S = 300.0  # how long `auth login` waits for the browser (5 minutes)
ANSWER_WAIT_S = 120.0  # how long the browser's request waits for the login to finish
LOOPBACK = {"127.0.0.1": "127.0.0.1", "localhost": "127.0.0.1", "::1": "::1"}


class CannotListen(Exception):
    """The redirect URI is not a loopback http address, or its port cannot be bound."""


def listen_address(redirect_uri: str) -> tuple[str, int, str]:
    """(host to bind, port, callback path) of a loopback http redirect URI."""
    parts = urlsplit(redirect_uri)
    host = LOOPBACK.get(parts.hostname or "")
    if parts.scheme != "http" or host is None:
        raise CannotListen(f"{redirect_uri} is not a loopback http address dmtool can listen on")
    try:
        port = parts.port or 80
    except ValueError:
        raise CannotListen(f"{redirect_uri} has no valid port") from None
    return host, port, parts.path or "/"


def _page(title: str, text: str) -> bytes:
    return ("<!doctype html><html><head><meta charset=\"utf-8\"><title>dmtool</title></head>"
            "<body style=\"font-family: sans-serif; max-width: 36em; margin: 4em auto\">"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>").encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A login run again within a minute finds the last one's connections in
    # TIME_WAIT: reuse lets it bind, and on POSIX still refuses a port another
    # program listens on. On Windows the same flag would let two listen: off.
    allow_reuse_address = sys.platform != "win32"
    listener: CallbackListener

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver would print a traceback on stderr (a browser closing early);
        # -v gets one line, and nothing of the request.
        log.debug("login listener: a request from %s failed", client_address[0])


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # a browser's idle preconnect must not hold a thread forever

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("login listener: %s %s", self.command, urlsplit(self.path).path)

    def _send(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")  # the address carries the code
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self._send(204)

    def do_GET(self) -> None:  # noqa: N802
        listener = self.server.listener
        parts = urlsplit(self.path)
        if parts.path != listener.path:
            self._send(404, _page("Not found", "dmtool is waiting for X's answer at "
                                                f"{listener.path}."))
            return
        purpose = (self.headers.get("Sec-Purpose") or self.headers.get("Purpose") or "").lower()
        if "prefetch" in purpose or "prerender" in purpose:
            self._send(204)
            return
        if parse_qs(parts.query).get("state") != [listener.state]:
            self._send(400, _page("Not this login",
                                  "This address is not the answer to the login dmtool is waiting "
                                  "for. Open the address the latest `dmtool auth login` printed."))
            return
        if not listener.take():
            self._send(409, _page("Already received",
                                  "dmtool already has this answer; see your terminal."))
            return
        listener.inbox.put(("redirect", listener.redirect_uri.split("?")[0] + "?" + parts.query))
        outcome = listener.outcome(ANSWER_WAIT_S)
        if outcome is None:
            self._send(504, _page("No answer", "dmtool did not finish; see your terminal."))
        else:
            ok, text = outcome
            self._send(200 if ok else 400,
                       _page("Logged in" if ok else "Login failed", text))
        listener.answered.set()


class CallbackListener:
    """Binds at construction (CannotListen when it cannot); `start()` serves in a
    thread; the login's redirect arrives in `inbox` as ("redirect", url)."""

    def __init__(self, redirect_uri: str, state: str, inbox: queue.Queue[tuple[str, str]]) -> None:
        host, port, self.path = listen_address(redirect_uri)
        self.redirect_uri = redirect_uri
        self.state = state
        self.inbox = inbox
        self.answered = threading.Event()
        self._taken = False
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._outcome: tuple[bool, str] | None = None
        self._thread: threading.Thread | None = None
        try:
            self._server = _Server((host, port), _Handler)
        except OSError as exc:
            raise CannotListen(f"cannot listen on {host}:{port} "
                               f"({exc.strerror or type(exc).__name__})") from None
        self._server.listener = self

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="dmtool-login-listener", daemon=True)
        self._thread.start()

    def take(self) -> bool:
        """The first matching request takes the login; any later one is turned away."""
        with self._lock:
            if self._taken:
                return False
            self._taken = True
            return True

    def outcome(self, timeout: float) -> tuple[bool, str] | None:
        self._done.wait(timeout)
        return self._outcome

    def finish(self, ok: bool, text: str) -> None:
        """Say how the login ended; the waiting browser gets a page saying so."""
        self._outcome = (ok, text)
        self._done.set()

    def close(self) -> None:
        if self._taken:
            self.answered.wait(5)  # let the browser have its page before the process ends
        if self._thread is not None:
            self._server.shutdown()
        self._server.server_close()
