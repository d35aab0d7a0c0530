"""The SQLite store's ``hashes`` table: runs of consecutive stored hashes.

A row ``(id, hash)`` holds the stored hashes ``id``, ``id + 1``, ... (by the
stored-hash index of Go's ``sumdb/tlog``, ``merkle.stored_hash_index``),
their 32-byte SHA-256 values end to end: a commit writes all the hashes it
adds as one row, where one row per hash cost SQLite a B-tree insert each
(most of the cost of storing them). A proof still reads O(log n) rows, one
index seek per hash (RFC 9162 §2.1.3: "stored interior hashes").

Schema 1 files hold one hash per row: runs of one, read as they are.

A damaged table reads consistently everywhere (read, count, scan): a run
ends where the next row begins, and a trailing part shorter than 32 bytes
is no hash. What is then missing or wrong, ``verify`` names.
"""

from __future__ import annotations

import sqlite3
from typing import Iterator

WIDTH = 32  # bytes of one stored hash (SHA-256)

# Per id asked: the row holding it is the last one starting at or before it
# (an index seek), and the hash its slice; shorter than 32 bytes if none.
_READ = (
    f"SELECT w.value, (SELECT substr(h.hash, (w.value - h.id) * {WIDTH} + 1, {WIDTH}) FROM hashes h "
    "WHERE h.id <= w.value ORDER BY h.id DESC LIMIT 1) FROM json_each(?) w"
)
_LAST = "SELECT id, length(hash) FROM hashes ORDER BY id DESC LIMIT 1"
_HOLDING = "SELECT max(id) FROM hashes WHERE id <= ?"
_WINDOW = "SELECT id, hash FROM hashes WHERE id >= ? AND id < ? ORDER BY id"
_AFTER = "SELECT min(id) FROM hashes WHERE id >= ?"


def read(conn: sqlite3.Connection, ids: list[int]) -> dict[int, bytes]:
    """The stored hashes ``ids`` that are there, by id."""
    got = conn.execute(_READ, ("[" + ",".join(map(str, ids)) + "]",)).fetchall()
    return {i: bytes(h) for i, h in got if h is not None and len(h) == WIDTH}


def count(conn: sqlite3.Connection) -> int:
    """One more than the highest stored hash id (0 when none)."""
    row = conn.execute(_LAST).fetchone()
    return 0 if row is None else row[0] + row[1] // WIDTH


def put(conn: sqlite3.Connection, first_id: int, blob: bytes) -> None:
    """One run: the hashes in ``blob`` (32 bytes each) at ``first_id`` on."""
    conn.execute("INSERT INTO hashes(id, hash) VALUES (?, ?)", (first_id, blob))


def scan(conn: sqlite3.Connection, start: int, end: int, width: int) -> Iterator[tuple[int, bytes]]:
    """``(id, hash)`` for the stored hashes ``start <= id < end``, in order.

    Reads rows by id windows of ``width`` (so at most ``width`` hashes, plus
    one run's, are in memory at once) in separate statements, holding no
    read transaction across the scan: rows are only ever added after the
    last, so the windows still join up. Stops at the last stored hash as
    the scan began.
    """
    end = min(end, count(conn))  # rows appended later are left to a later scan
    head = conn.execute(_HOLDING, (start,)).fetchone()[0]
    lo = start if head is None else head
    held: tuple[int, bytes] | None = None
    while lo < end:
        hi = min(end, lo + width)
        got = conn.execute(_WINDOW, (lo, hi)).fetchall()
        for row in got:
            if held is not None:
                yield from _split(held, row[0], start, end)
            held = row
        if not got:  # no run starts here (a gap, or one long run): on to the next row's start in one step
            after = conn.execute(_AFTER, (hi,)).fetchone()[0]
            hi = end if after is None else max(hi, after)
        lo = hi
    if held is not None:
        yield from _split(held, end, start, end)


def _split(row: tuple[int, bytes], until: int, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """The hashes of one run within [start, end), cut where the next row begins."""
    first, blob = row[0], bytes(row[1])
    stop = min(first + len(blob) // WIDTH, until, end)
    for i in range(max(first, start), stop):
        at = (i - first) * WIDTH
        yield i, blob[at:at + WIDTH]
