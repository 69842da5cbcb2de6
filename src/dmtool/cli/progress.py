"""A progress line on a terminal (stderr), nothing elsewhere."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


def copy_progress(json_: bool) -> Callable[[str, int, int], None] | None:
    """(table, done, total) -> a line redrawn in place, at most ten times a second."""
    if json_ or not sys.stderr.isatty():
        return None
    last = [0.0]

    def show(table: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < 0.1:
            return
        last[0] = now
        width = 30
        filled = width if not total else width * done // total
        bar = "#" * filled + "-" * (width - filled)
        sys.stderr.write(f"\r{table:<16} [{bar}] {done:,}/{total:,}\033[K")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show
