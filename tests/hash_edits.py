"""Hand edits of a SQLite ledger's stored hashes, for the tamper tests.

A row of ``hashes`` holds a run of consecutive stored hashes (``ledger/hash_runs.py``):
these change one hash, or cut the table at a hash id, as an attacker editing the file
would, whatever runs the commits wrote. The triggers must be dropped first.
"""

from __future__ import annotations

import sqlite3

from labelcheck.ledger.hash_runs import WIDTH

_HOLDING = "SELECT id, hash FROM hashes WHERE id <= ? ORDER BY id DESC LIMIT 1"


def set_hash(db: sqlite3.Connection, i: int, value: bytes) -> None:
    """Stored hash ``i`` becomes ``value``."""
    first, blob = db.execute(_HOLDING, (i,)).fetchone()
    at = (i - first) * WIDTH
    assert at < len(blob), f"no stored hash {i}"
    db.execute("UPDATE hashes SET hash = ? WHERE id = ?", (bytes(blob[:at]) + value + bytes(blob[at + WIDTH:]), first))


def cut_hashes(db: sqlite3.Connection, count: int) -> None:
    """Only the stored hashes below ``count`` are left."""
    row = db.execute(_HOLDING, (count - 1,)).fetchone() if count else None
    db.execute("DELETE FROM hashes WHERE id >= ?", (count,))
    if row is not None:
        db.execute("UPDATE hashes SET hash = ? WHERE id = ?", (bytes(row[1][:(count - row[0]) * WIDTH]), row[0]))
