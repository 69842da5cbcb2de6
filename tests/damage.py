"""Damaging a real store file, page by page, for the tests of a damaged store.

A table's pages are found by walking its b-tree from the root page named in
sqlite_master (SQLite's file format), so no optional SQLite feature is needed.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def page_size(db_file: Path) -> int:
    raw = int.from_bytes(db_file.read_bytes()[16:18], "big")
    return 65536 if raw == 1 else raw


def _varint_len(data: bytes, at: int) -> int:
    for i in range(9):
        if data[at + i] < 0x80:
            return i + 1
    return 9


def table_pages(db_file: Path, table: str) -> tuple[int, list[int]]:
    """(root page, leaf pages in key order) of a table of a closed store."""
    conn = sqlite3.connect(db_file)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = ?",
                            (table,)).fetchone()[0]
    finally:
        conn.close()
    data = db_file.read_bytes()
    size = page_size(db_file)

    def walk(page: int) -> list[int]:
        base = (page - 1) * size
        head = base + (100 if page == 1 else 0)
        kind = data[head]
        if kind == 0x0D:  # a leaf of a table b-tree
            return [page]
        assert kind == 0x05, f"page {page} of {table} is not a table b-tree page ({kind:#x})"
        cells = int.from_bytes(data[head + 3:head + 5], "big")
        right = int.from_bytes(data[head + 8:head + 12], "big")
        leaves: list[int] = []
        for i in range(cells):
            ptr = int.from_bytes(data[head + 12 + 2 * i:head + 14 + 2 * i], "big")
            leaves += walk(int.from_bytes(data[base + ptr:base + ptr + 4], "big"))
        return leaves + walk(right)

    return root, walk(root)


def corrupt_page(db_file: Path, page: int) -> None:
    """Overwrite one page with bytes no b-tree page can hold."""
    size = page_size(db_file)
    with db_file.open("r+b") as f:
        f.seek((page - 1) * size)
        f.write(b"\xa5" * size)


def corrupt_header(db_file: Path) -> None:
    """The file no longer starts as an SQLite database."""
    with db_file.open("r+b") as f:
        f.write(b"this is not a database at all")
