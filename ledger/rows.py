"""Reading a table in key order, a chunk at a time, for either store."""

from __future__ import annotations

from typing import Callable, Iterator

MAX_KEY = 2**63 - 1
# An entry is one line of canonical JSON (docs/protocol.md §4): the SQLite
# store joins a commit's entries with newlines (entry_runs), and both stores
# refuse an entry that holds one.
NOT_ONE_LINE = "a ledger entry holds a newline byte: it is not one line of canonical JSON"


def any_newline(datas) -> bool:
    """Whether any of the entries ``datas`` holds a newline byte."""
    return any(b"\n" in data for data in datas)


def chunked(fetch: Callable[[int, int], list], start: int, end: int | None, chunk: int) -> Iterator[tuple]:
    """Rows ``(key, value)`` with key in [start, end), in key order.

    ``fetch(lo, hi)`` returns at most ``chunk`` rows with lo <= key < hi,
    ordered by key. Each chunk is its own query, so memory stays flat and no
    read transaction is held open for a whole scan.
    """
    end = MAX_KEY if end is None else end
    while True:
        rows = fetch(start, end)
        yield from rows
        if len(rows) < chunk:
            return
        start = rows[-1][0] + 1


def contiguous(rows: list[tuple[int, bytes]], start: int, end: int, missing: Callable[[str], Exception]) -> list[bytes]:
    """The values of entry rows ``start`` to ``end`` (exclusive), in order;
    ``missing(message)`` is raised for the first index absent."""
    for want, (idx, _) in enumerate(rows, start):
        if idx != want:
            raise missing(f"entry {want} is missing")
    if len(rows) != end - start:
        raise missing(f"entry {start + len(rows)} is missing")
    return [bytes(data) for _, data in rows]
