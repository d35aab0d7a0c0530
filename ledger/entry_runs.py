"""The SQLite store's ``entries`` table: runs of consecutive entries.

A row ``(idx, data)`` holds the entries that end at index ``idx``: its data
is their exact bytes joined by a newline (an entry is one line of canonical
JSON, which never holds a newline byte: docs/protocol.md §4), so a commit
writes all its entries as one row. One row per entry cost SQLite a B-tree
cell each, about a tenth of a commit of 100 entries. The key is the run's
last index, so the log's size is still ``max(idx) + 1``, one index seek.

Schema 1 and 2 files hold one entry per row: runs of one, read as they are.

A damaged table reads consistently everywhere (read, scan): a row's run
covers the indexes after the previous row's key up to its own, aligned to
its end; lines beyond that cover are not read, and indexes it does not
reach are missing. What is then missing or wrong, ``verify`` names.
"""

from __future__ import annotations

import sqlite3
from typing import Iterator

from .rows import NOT_ONE_LINE

SEP = b"\n"

# The key before ``start`` (NULL when none), then the rows from the one
# covering ``start`` to the one covering ``last``, in key order (NULL first).
_READ = (
    "SELECT max(idx), NULL FROM entries WHERE idx < ?1 UNION ALL "
    "SELECT idx, data FROM entries WHERE idx >= ?1 AND idx <= "
    "coalesce((SELECT min(idx) FROM entries WHERE idx >= ?2), ?2) ORDER BY 1"
)
_BEFORE = "SELECT max(idx) FROM entries WHERE idx < ?"
_COVERING = "SELECT min(idx) FROM entries WHERE idx >= ?"
_WINDOW = "SELECT idx, data FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx"
_LAST = "SELECT max(idx) FROM entries"


def put(conn: sqlite3.Connection, first: int, datas: list[bytes]) -> None:
    """One run: the entries ``datas`` at indexes ``first``, ``first + 1``, ...
    Refuses (ValueError) an entry holding a newline, which would read as two,
    and a run over stored indexes, which its key alone would not collide with."""
    if not datas:
        return
    blob = SEP.join(datas)
    if blob.count(SEP) != len(datas) - 1:
        raise ValueError(NOT_ONE_LINE)
    last = conn.execute(_LAST).fetchone()[0]
    if last is not None and last >= first:
        raise ValueError(f"entry {first} is stored already (the log ends at {last})")
    conn.execute("INSERT INTO entries(idx, data) VALUES (?, ?)", (first + len(datas) - 1, blob))


def read(conn: sqlite3.Connection, start: int, end: int) -> list[tuple[int, bytes]]:
    """``(index, bytes)`` of the entries ``start <= index < end`` that are there, in order."""
    if start >= end:
        return []
    got = conn.execute(_READ, (start, end - 1)).fetchall()
    prev = -1 if got[0][0] is None else got[0][0]
    out: list[tuple[int, bytes]] = []
    for key, data in got[1:]:
        out.extend(_split(prev, key, data, start, end))
        prev = key
    return out


def scan(conn: sqlite3.Connection, start: int, end: int, width: int) -> Iterator[tuple[int, bytes]]:
    """``(index, bytes)`` for the entries ``start <= index < end``, in order.

    Reads rows by key windows of ``width`` (so at most ``width`` entries,
    plus one run's, are in memory at once) in separate statements, holding
    no read transaction across the scan: rows are only ever added after the
    last, so the windows still join up. Stops at the last entry as the scan
    began.
    """
    last = conn.execute(_LAST).fetchone()[0]
    end = min(end, -1 if last is None else last + 1)  # rows appended later are left to a later scan
    if start >= end:
        return
    prev = conn.execute(_BEFORE, (start,)).fetchone()[0]
    prev = -1 if prev is None else prev
    lo = start
    while lo < end:
        hi = lo + width
        if hi >= end:  # the last window: up to the row covering end - 1, wherever its run ends
            hi = conn.execute(_COVERING, (end - 1,)).fetchone()[0] + 1
        for key, data in conn.execute(_WINDOW, (lo, hi)).fetchall():
            yield from _split(prev, key, data, start, end)
            prev = key
        lo = hi


def _split(prev: int, key: int, data: bytes, start: int, end: int) -> list[tuple[int, bytes]]:
    """The entries of the row ``key`` within [start, end): its lines aligned
    to end at ``key``, none at or before ``prev`` (the previous row's key)."""
    lines = bytes(data).split(SEP)
    first = key - min(len(lines), key - prev) + 1
    offset = len(lines) - 1 - key  # line of index i: lines[offset + i]
    return [(i, lines[offset + i]) for i in range(max(first, start), min(key + 1, end))]
