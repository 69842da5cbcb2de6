"""Diagnostic logging (-v) that never shows a secret."""

from __future__ import annotations

import logging
import re

_SECRET_PATTERNS = [
    re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:@/?#\s]*:)[^@/?#\s]+(?=@)"),  # a URL's password
    re.compile(r"(?i)(\bpassword=)[^&\s]+"),
    re.compile(r"(?i)(authorization:\s*)(bearer|oauth)\s+[^\s,]+"),
    re.compile(r"(?i)((?:access_token|refresh_token|oauth_token|oauth_signature|client_secret|"
               r"api_secret|bearer_token|code_verifier|code)[\"']?\s*[=:]\s*[\"']?)[^\s&\"',]+"),
]
_known_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret so any log line containing it is redacted."""
    if value and len(value) >= 6:
        _known_secrets.add(value)


def redact(text: str) -> str:
    for s in _known_secrets:
        text = text.replace(s, "[redacted]")
    for p in _SECRET_PATTERNS:
        text = p.sub(lambda m: m.group(1) + "[redacted]", text)
    return text


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(level: int) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("dmtool: %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # urllib3 and oauthlib log request details; keep them at INFO so query
    # strings and headers never reach the terminal even with -v.
    for noisy in ("urllib3", "requests_oauthlib", "oauthlib"):
        logging.getLogger(noisy).setLevel(logging.INFO)
