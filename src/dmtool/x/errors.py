"""Errors specific to the X boundary (the shared hierarchy lives in dmtool.errors)."""

from __future__ import annotations

from dmtool.errors import Unavailable


class SendOutcomeUnknown(Unavailable):
    """A send left this machine but no answer came back (timeout, dropped connection, 5xx).

    X may or may not have delivered the DM, and X has no idempotency key, so the
    caller must mark the draft `unknown` and reconcile by reading the
    conversation; it must never resend blindly. Exit code 5 like Unavailable.
    """

    code = "E_SEND_UNKNOWN"
