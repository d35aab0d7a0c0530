"""Hand edits of a SQLite ledger's entries, for the tamper tests.

A row of ``entries`` holds a run of consecutive entries (``ledger/entry_runs.py``).
``split_runs`` rewrites the table with one entry per row, the layout schema 2
wrote and the store still reads, so that a test can then change, delete or
insert single entries with plain SQL, as an attacker editing the file would.
The triggers must be dropped first.
"""

from __future__ import annotations

import sqlite3

from labelcheck.ledger import entry_runs


def split_runs(db: sqlite3.Connection) -> None:
    """Every entry in a row of its own, keyed by its index."""
    got = list(entry_runs.scan(db, 0, 1 << 62, 1000))
    db.execute("DELETE FROM entries")
    db.executemany("INSERT INTO entries(idx, data) VALUES (?, ?)", got)


def read_entry(db: sqlite3.Connection, i: int) -> bytes:
    """The stored bytes of entry ``i``, whatever run holds it."""
    ((_, data),) = entry_runs.read(db, i, i + 1)
    return data
