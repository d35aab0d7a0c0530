"""SQLite storage for the ledger: entries, stored tree hashes, checkpoints.

Tables (created through sqlite-utils):

* ``meta(key, value)``: ``origin``, ``vkey`` (the checkpoint verifier key) and
  ``schema``; written once.
* ``entries(idx INTEGER PRIMARY KEY, data BLOB)``: the leaves' exact bytes
  (one line of canonical JSON each, no newline). A row holds a run of them,
  the entries ending at ``idx``, joined by newlines: all a commit adds, or
  64 KiB of them (``entry_runs``; schemas 1 and 2 held one per row).
* ``hashes(id INTEGER PRIMARY KEY, hash BLOB)``: the tree's stored hashes, by
  the stored-hash index of Go's ``sumdb/tlog`` (``merkle.stored_hash_index``):
  every leaf hash and every interior hash of a complete subtree, written when
  the subtree completes, so any proof needs only O(log n) reads. A row holds
  a run of them, the hashes ``id``, ``id + 1``, ... end to end: all a commit
  adds (``hash_runs``; schema 1 held one per row).
* ``checkpoints(size INTEGER PRIMARY KEY, note BLOB, signed_at REAL)``: every
  signed checkpoint note, with the Unix time it was signed.

Triggers refuse UPDATE and DELETE on all four. (They stop mistakes and keep
honest code honest; they cannot stop someone who edits the file directly.
What catches that is ``verify`` against a signed checkpoint.) Connections turn
on ``recursive_triggers`` so that ``INSERT OR REPLACE`` fires them too.

Durability: WAL journal, ``synchronous=FULL`` (the WAL is fsynced at every
commit), and a busy timeout so that several processes can share the file;
writers take the lock up front with ``BEGIN IMMEDIATE``.

Writers queue on a lock of their own first: ``flock`` on the sidecar file
``<db>.lock`` (and a thread lock inside one process), taken before ``BEGIN
IMMEDIATE`` and released after ``COMMIT``. SQLite's busy handler polls with
sleeps of up to 100 ms, so a writer in another process could sleep long after
the lock was free; a blocked ``flock`` wakes as soon as it is released (the
kernel releases it too when a holder dies, even by SIGKILL). It only orders
writers: SQLite's own lock still guards the data, so a writer without it
(the sqlite3 shell, a read-only user who cannot open the lock file) is still
safe, merely slower.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from pathlib import Path
from typing import Callable, Iterator

import sqlite_utils

from . import entry_runs, hash_runs, rows
from .rows import NOT_ONE_LINE, any_newline

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: SQLite's busy handler alone
    fcntl = None

SCHEMA = "3"
# Schema 1 stored one hash per row, schemas 1 and 2 one entry per row: runs
# of one, so still read as they are. Opened to write, such a file is marked
# 3, which an older labelcheck refuses rather than misreading longer runs.
READS = ("1", "2", "3")
BUSY_TIMEOUT_MS = 60_000
TABLES = ("meta", "entries", "hashes", "checkpoints")

class StoreError(Exception):
    """The database is missing, not a ledger, or inconsistent with itself."""


def connect(path: str | os.PathLike) -> sqlite3.Connection:
    """A connection with the ledger's pragmas, in explicit-transaction mode."""
    conn = sqlite3.connect(
        str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA recursive_triggers=ON")
    return conn


def _create_schema(conn: sqlite3.Connection) -> None:
    db = sqlite_utils.Database(conn, execute_plugins=False)
    db["meta"].create({"key": str, "value": str}, pk="key", not_null={"value"}, if_not_exists=True)
    db["entries"].create({"idx": int, "data": bytes}, pk="idx", not_null={"data"}, if_not_exists=True)
    db["hashes"].create({"id": int, "hash": bytes}, pk="id", not_null={"hash"}, if_not_exists=True)
    db["checkpoints"].create(
        {"size": int, "note": bytes, "signed_at": float},
        pk="size",
        not_null={"note", "signed_at"},
        if_not_exists=True,
    )
    for table in TABLES:
        for op in ("UPDATE", "DELETE"):
            _refuse(conn, table, op)


def _refuse(conn: sqlite3.Connection, table: str, op: str) -> None:
    conn.execute(
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: {op} on {table} refused'); END"
    )


def _mark_schema(conn: sqlite3.Connection) -> None:
    """Mark a schema 1 or 2 file as 3 before writing runs to it (see READS);
    the trigger refusing updates of ``meta`` is lifted for that one update."""
    conn.execute("DROP TRIGGER IF EXISTS meta_no_update")
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (SCHEMA,))
    _refuse(conn, "meta", "UPDATE")


class Store:
    """One ledger database file: a writer connection and a pool of readers.
    (``tables=False``: the same file handling without the ledger's tables.)

    SQLite connections are not used by two threads at once: readers are
    borrowed from a small pool for the length of one call, so a server that
    runs each request in a new thread does not leak a connection per thread.
    """

    POOL_IDLE = 8  # idle reader connections kept open

    def __init__(self, path: str | os.PathLike, *, create: bool = True, tables: bool = True):
        self.path = Path(path)
        if not create and not self.path.exists():
            raise StoreError(f"no ledger database at {self.path}")
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._write_turn = threading.Lock()  # writers of this process, before the file lock
        self._lock_fd: int | None = None
        self._idle: list[sqlite3.Connection] = []
        self._closed = False
        try:
            self.conn = connect(self.path)
            if create:
                self._init(tables)
            if tables:
                self._check_schema()
        except sqlite3.DatabaseError as exc:
            if hasattr(self, "conn"):
                self.conn.close()
            raise StoreError(f"{self.path}: {exc}") from exc

    def _init(self, tables: bool = True) -> None:
        if self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            self.conn.execute("PRAGMA journal_mode=WAL")
        if not tables:  # a file for derived tables only (the claim index beside a PostgreSQL ledger)
            return
        with self.write():
            _create_schema(self.conn)
            self.conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?)", (SCHEMA,)
            )
            if self.meta("schema", self.conn) in ("1", "2"):
                _mark_schema(self.conn)

    def _check_schema(self) -> None:
        have = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        missing = [t for t in TABLES if t not in have]
        if missing:
            raise StoreError(f"{self.path} is not a labelcheck ledger (no table {', '.join(missing)})")
        schema = self.meta("schema", self.conn)
        if schema not in READS:
            raise StoreError(f"{self.path}: ledger schema {schema!r}, "
                             f"this labelcheck reads {', '.join(READS[:-1])} and {READS[-1]}")

    # Connections ---------------------------------------------------------

    def _after_fork(self) -> None:
        # A connection must never cross fork(): forget the parent's (closing
        # them here could disturb the parent's locks) and start afresh.
        # The lock file's descriptor is shared with the parent too: a lock
        # taken through it would not exclude the parent, so open another.
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._write_turn = threading.Lock()
        self._lock_fd = None
        self._idle = []
        self.conn = connect(self.path)

    @contextlib.contextmanager
    def connection(self, conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        """``conn`` itself, or a reader borrowed from the pool for the block."""
        if conn is not None:
            yield conn
            return
        if os.getpid() != self._pid:
            self._after_fork()
        if self._closed:
            raise StoreError(f"the ledger database {self.path} is closed")
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = connect(self.path)
        try:
            yield conn
        finally:
            if conn.in_transaction:  # a failed block must not pin an old snapshot
                conn.execute("ROLLBACK")
            with self._lock:
                if len(self._idle) < self.POOL_IDLE and not self._closed:
                    self._idle.append(conn)
                    conn = None
            if conn is not None:
                conn.close()

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A reader holding one read transaction: every read in the block sees
        the same state, even while other processes append (WAL snapshot)."""
        with self.connection() as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    def writer(self) -> sqlite3.Connection:
        if os.getpid() != self._pid:
            self._after_fork()
        return self.conn

    @contextlib.contextmanager
    def write(self, conn: sqlite3.Connection | None = None, *,
              then: Callable[[sqlite3.Connection], None] | None = None) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the database write lock from the
        start; ``then(conn)`` once it committed, still holding it."""
        if os.getpid() != self._pid:
            self._after_fork()
        conn = conn or self.writer()
        with self._write_turn:
            fd = self._writer_lock_fd()
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)  # blocks without polling; see the module docstring
                except OSError:  # a file system without flock (ENOLCK): SQLite's locking alone
                    fd = None
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                if then is not None:
                    then(conn)
            finally:
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)

    def _writer_lock_fd(self) -> int | None:
        """The open lock file, or None where there is none to be had."""
        if self._lock_fd is None and fcntl is not None and not self._closed:
            try:
                self._lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError:  # read-only directory or file: SQLite's locking alone
                return None
        return self._lock_fd

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns, self._idle = self._idle, []
        if os.getpid() == self._pid:
            for conn in conns + [self.conn]:
                conn.close()
            with self._write_turn:
                fd, self._lock_fd = self._lock_fd, None
            if fd is not None:
                os.close(fd)

    # Reads ---------------------------------------------------------------

    def meta(self, key: str, conn: sqlite3.Connection | None = None) -> str | None:
        with self.connection(conn) as c:
            row = c.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def size(self, conn: sqlite3.Connection | None = None) -> int:
        """Number of entries: one more than the highest index."""
        with self.connection(conn) as c:
            row = c.execute("SELECT max(idx) FROM entries").fetchone()
        return 0 if row[0] is None else row[0] + 1

    def hash_count(self, conn: sqlite3.Connection | None = None) -> int:
        with self.connection(conn) as c:
            return hash_runs.count(c)

    def read_hashes(self, ids: list[int], conn: sqlite3.Connection | None = None) -> list[bytes]:
        """Stored hashes by stored-hash index, in the order asked."""
        if not ids:
            return []
        with self.connection(conn) as c:
            found = hash_runs.read(c, ids)
        try:
            return [found[i] for i in ids]
        except KeyError as exc:
            raise StoreError(f"stored hash {exc.args[0]} is missing") from None

    def entries(self, start: int, end: int, conn: sqlite3.Connection | None = None) -> list[bytes]:
        with self.connection(conn) as c:
            found = entry_runs.read(c, start, end)
        return rows.contiguous(found, start, end, StoreError)

    def iter_rows(self, table: str, start: int = 0, end: int | None = None, *,
                  conn: sqlite3.Connection | None = None, chunk: int = 10_000) -> Iterator[tuple[int, bytes]]:
        """(key, blob) rows of ``entries``, ``hashes`` or ``checkpoints`` with
        ``start <= key < end``, in key order.

        Reads in chunks by key range, so memory stays flat and no read
        transaction is held open for the whole scan.
        """
        runs = {"hashes": hash_runs.scan, "entries": entry_runs.scan}.get(table)
        if runs is not None:  # one hash or entry per row yielded, from the runs
            with self.connection(conn) as c:
                yield from runs(c, start, rows.MAX_KEY if end is None else end, chunk)
            return
        key, col = {"checkpoints": ("size", "note")}[table]
        sql = f"SELECT {key}, {col} FROM {table} WHERE {key} >= ? AND {key} < ? ORDER BY {key} LIMIT {chunk}"
        with self.connection(conn) as c:
            yield from rows.chunked(lambda lo, hi: c.execute(sql, (lo, hi)).fetchall(), start, end, chunk)

    def entries_holding(self, needle: bytes, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        """``(index, bytes)`` of the entries in [start, end) holding ``needle``, in order."""
        return ((i, data) for i, data in self.iter_rows("entries", start, end) if needle in data)

    def sizes(self, conn: sqlite3.Connection | None = None) -> tuple[int, int]:
        """(entries, size of the latest checkpoint, 0 when none), in one statement."""
        with self.connection(conn) as c:
            n, signed = c.execute(
                "SELECT (SELECT max(idx) FROM entries), (SELECT max(size) FROM checkpoints)").fetchone()
        return (0 if n is None else n + 1), (signed or 0)

    def latest_checkpoint(self, conn: sqlite3.Connection | None = None) -> tuple[int, bytes, float] | None:
        """(size, note, signed_at) of the largest signed checkpoint, or None."""
        with self.connection(conn) as c:
            row = c.execute("SELECT size, note, signed_at FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()
        return None if row is None else (row[0], bytes(row[1]), row[2])

    # Writes (inside ``write()``) ----------------------------------------

    @staticmethod
    def put_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
        conn.execute("INSERT INTO meta(key, value) VALUES (?, ?)", (key, value))

    @staticmethod
    def put_entries(conn: sqlite3.Connection, rows: list[tuple[int, bytes]]) -> None:
        """Insert entries ``(idx, data)``, in index order, one per row (runs of one)."""
        if any_newline(data for _, data in rows):
            raise StoreError(NOT_ONE_LINE)
        if rows:
            try:
                entry_runs.check_after_last(conn, rows[0][0])
            except ValueError as exc:
                raise StoreError(str(exc)) from None
        conn.executemany("INSERT INTO entries(idx, data) VALUES (?, ?)", rows)

    @staticmethod
    def put_hashes(conn: sqlite3.Connection, rows: list[tuple[int, bytes]]) -> None:
        """Insert stored hashes ``(id, hash)`` one per row (runs of one)."""
        conn.executemany("INSERT INTO hashes(id, hash) VALUES (?, ?)", rows)

    @staticmethod
    def put_entry_run(conn: sqlite3.Connection, first: int, datas: list[bytes]) -> None:
        """Insert entries ``datas`` at indexes ``first``, ``first + 1``, ...: in
        runs, one row per commit or per 64 KiB of it (``entry_runs.put``)."""
        try:
            entry_runs.put(conn, first, datas)
        except ValueError as exc:
            raise StoreError(str(exc)) from None

    @staticmethod
    def put_hash_run(conn: sqlite3.Connection, first_id: int, hashes: list[bytes]) -> None:
        """Insert ``hashes`` (SHA-256, 32 bytes each) at ids ``first_id``, ``first_id + 1``, ...: one row."""
        if not hashes:
            return
        blob = b"".join(hashes)
        if len(blob) != hash_runs.WIDTH * len(hashes):
            raise StoreError("stored hashes are 32 bytes each")
        hash_runs.put(conn, first_id, blob)

    @staticmethod
    def put_checkpoint(conn: sqlite3.Connection, size: int, note: bytes, signed_at: float) -> None:
        conn.execute("INSERT INTO checkpoints(size, note, signed_at) VALUES (?, ?, ?)", (size, note, signed_at))
