"""The witness's memory: for each log origin, the latest checkpoint it
cosigned. The check against it and its update happen in one SQLite write
transaction (``BEGIN IMMEDIATE``, ``synchronous=FULL``), so two concurrent
requests can never roll the record back (tlog-witness, add-checkpoint) and a
witness killed mid-request keeps either the old record or the new one."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS latest (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    note BLOB NOT NULL
) STRICT;
"""


@dataclass(frozen=True)
class Latest:
    """The latest cosigned checkpoint of one log (size 0: none yet)."""

    size: int
    root: bytes
    note: bytes


class WitnessState:
    """``witness.db`` in the witness's data directory; one connection per
    thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        with self._connect() as db:
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            self._local.db = db
        return db

    @contextlib.contextmanager
    def transaction(self) -> Iterator["Transaction"]:
        """A write transaction: read the latest record, maybe replace it."""
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield Transaction(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def latest(self, origin: str) -> Latest | None:
        row = self._connect().execute("SELECT size, root, note FROM latest WHERE origin = ?", (origin,)).fetchone()
        return Latest(*row) if row else None

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


class Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def latest(self, origin: str) -> Latest | None:
        row = self._db.execute("SELECT size, root, note FROM latest WHERE origin = ?", (origin,)).fetchone()
        return Latest(*row) if row else None

    def record(self, origin: str, size: int, root: bytes, note: bytes) -> None:
        self._db.execute("INSERT INTO latest (origin, size, root, note) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT(origin) DO UPDATE SET size = excluded.size, root = excluded.root, "
                         "note = excluded.note", (origin, size, root, note))
