"""Text a person gives as a file or on stdin (`-`): one reader, one set of messages.

Bytes are read up to a limit (so `/dev/zero` or a wrong file cannot fill the
memory) and decoded as UTF-8 the same way whatever they come from: Python's
own stdin decoding would let bad bytes through as surrogates in a UTF-8 locale.
"""

from __future__ import annotations

import sys
from typing import BinaryIO

from dmtool.errors import InputError

_CHUNK = 1 << 20


def _read_at_most(f: BinaryIO, limit: int) -> bytes | None:
    """Up to `limit` bytes; None when there is more."""
    parts: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = f.read(min(_CHUNK, limit + 1 - size))
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
        size += len(chunk)
    return None


def _stdin_bytes(limit: int) -> bytes | None:
    stream = sys.stdin
    if stream is None:  # closed: as /dev/null
        return b""
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        return _read_at_most(buffer, limit)
    text = stream.read(limit + 1)  # a text-only stream (tests): already decoded
    data = text.encode("utf-8", "surrogateescape")
    return data if len(data) <= limit else None


def read_text(source: str, *, limit: int, what: str = "the file") -> str:
    """The UTF-8 text of the file `source`, or of stdin for "-" (a BOM is dropped).

    InputError, worded the same for both: no such file, a folder, unreadable,
    larger than `limit` bytes, not UTF-8 (with the byte's offset)."""
    name = "stdin" if source == "-" else source
    try:
        if source == "-":
            data = _stdin_bytes(limit)
        else:
            with open(source, "rb") as f:
                data = _read_at_most(f, limit)
    except FileNotFoundError:
        raise InputError(f"no such file: {source}") from None
    except IsADirectoryError:
        raise InputError(f"{source} is a folder, not a file") from None
    except OSError as e:
        raise InputError(f"cannot read {name}: {e.strerror or e}") from None
    if data is None:
        raise InputError(f"{name} is larger than {limit / (1 << 20):,.0f} MiB: too large for {what}",
                         hint="check that it is the file you meant")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{name} is not UTF-8 text (byte {e.start + 1:,} is 0x{data[e.start]:02x})",
                         hint="save it as UTF-8 (a spreadsheet calls it \"CSV UTF-8\")") from None
