"""The SQLite store's ``entries`` table: runs of consecutive entries.

A row ``(idx, data)`` holds the entries that end at index ``idx``: its data
is their exact bytes joined by a newline (an entry is one line of canonical
JSON, which never holds a newline byte: docs/protocol.md §4), so a commit
writes its entries as one row, or one per 64 KiB of them. One row per entry
cost SQLite a B-tree cell each, about a tenth of a commit of 100 entries.
The key is the run's last index, so the log's size is still ``max(idx) +
1``, one index seek.

Schema 1 and 2 files hold one entry per row: runs of one, read as they are.

A damaged table reads consistently everywhere (read, scan): a row's run
covers the indexes after the previous row's key up to its own, aligned to
its end; lines beyond that cover are not read, and indexes it does not
reach are missing. What is then missing or wrong, ``verify`` names.
"""

from __future__ import annotations

import sqlite3
from bisect import bisect_left
from itertools import accumulate
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
_INSERT = "INSERT INTO entries(idx, data) VALUES (?, ?)"
# A run's size at most (unless one entry is longer): what a read of one of
# its entries reads. A registry match reads back one published claim; with
# claims published 100 at a time (1.5 KB each), one read took 18 us from
# runs of 64 KiB, 10 from runs of 16 KiB (about 5 with one row per entry).
# Appends of 100 entries of 500 bytes took 5% more CPU in runs of 16 KiB
# than in one of 64: the appends count more.
RUN_BYTES = 64 * 1024


def put(conn: sqlite3.Connection, first: int, datas: list[bytes]) -> None:
    """The entries ``datas`` at indexes ``first``, ``first + 1``, ...: one row,
    or one per ``RUN_BYTES`` or so. Refuses (ValueError) an entry holding a
    newline, which would read as two, and a run over stored indexes, which
    its key alone would not collide with."""
    if not datas:
        return
    blob = SEP.join(datas)
    if blob.count(SEP) != len(datas) - 1:
        raise ValueError(NOT_ONE_LINE)
    check_after_last(conn, first)
    if len(blob) <= RUN_BYTES:
        conn.execute(_INSERT, (first + len(datas) - 1, blob))
        return
    conn.executemany(_INSERT, _runs(first, datas, blob))


def check_after_last(conn: sqlite3.Connection, first: int) -> None:
    """ValueError unless entry ``first`` would come after every stored one."""
    last = conn.execute(_LAST).fetchone()[0]
    if last is not None and last >= first:
        raise ValueError(f"entry {first} is stored already (the log ends at {last})")


def _runs(first: int, datas: list[bytes], blob: bytes) -> list[tuple[int, bytes]]:
    """``(key, data)`` rows for a commit longer than RUN_BYTES: cut at the
    first entry ending past each multiple of it (so a run holds at least one)."""
    ends = list(accumulate(len(d) + 1 for d in datas))  # each entry's end in ``blob``, and its newline
    rows, start, k = [], 0, 0
    while k < len(datas):
        k = max(k + 1, bisect_left(ends, ends[k - 1] + RUN_BYTES if k else RUN_BYTES))
        k = min(k, len(datas))
        rows.append((first + k - 1, blob[start:ends[k - 1] - 1]))
        start = ends[k - 1]
    return rows


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
        got = conn.execute(_WINDOW, (lo, hi)).fetchall()
        for key, data in got:
            yield from _split(prev, key, data, start, end)
            prev = key
        # None keyed here: on to the next row's key in one step (a damaged
        # table's gap, or a long run), but not past the last window's start.
        lo = hi if got else min(_next_key(conn, hi), end - 1)


def _next_key(conn: sqlite3.Connection, at: int) -> int:
    """The first key from ``at`` on (``at`` when none)."""
    key = conn.execute(_COVERING, (at,)).fetchone()[0]
    return at if key is None else key


def _split(prev: int, key: int, data: bytes, start: int, end: int) -> list[tuple[int, bytes]]:
    """The entries of the row ``key`` within [start, end): its lines aligned
    to end at ``key``, none at or before ``prev`` (the previous row's key)."""
    cover = key - prev  # the indexes this row may hold
    lo, hi = max(start, key - cover + 1), min(end, key + 1)
    if lo >= hi:
        return []
    if (hi - lo) * 8 < cover:  # a few entries of a long run (one read): found from its end
        return _from_end(key, data, lo, hi)
    lines = data.split(SEP)
    offset = len(lines) - 1 - key  # line of index i: lines[offset + i]
    return [(i, lines[offset + i]) for i in range(max(lo, key - len(lines) + 1), hi)]


def _from_end(key: int, data: bytes, lo: int, hi: int) -> list[tuple[int, bytes]]:
    """``_split``'s entries ``lo <= i < hi`` of the run ending at ``key``,
    walking back line by line from the end (its last line is ``key``'s)
    rather than cutting every line out: splitting 100 lines of 1.5 KB cost
    four times the read of the row."""
    end = len(data)  # where the line of index ``key`` ends
    for _ in range(key - hi + 1):
        end = data.rfind(SEP, 0, end)  # now where the line before ends
        if end < 0:  # fewer lines: none of the entries asked is there
            return []
    out = []
    for i in range(hi - 1, lo - 1, -1):
        begin = data.rfind(SEP, 0, end)
        out.append((i, data[begin + 1:end]))
        if begin < 0:  # that was the first line: the entries before it are missing
            break
        end = begin
    out.reverse()
    return out
