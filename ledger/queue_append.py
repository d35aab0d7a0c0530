"""Appending through the sequencer: what a node does with a PostgreSQL ledger
(docs/protocol.md §11).

``QueueAppender.append`` puts the records in ``ledger_queue`` as one row and
waits until the leader (``sequencer``) has committed them: the row then holds
the first entry's index and the size of the signed checkpoint that covers
them. The enqueue commits with ``synchronous_commit = off``: it needs no
fsync of its own, since nothing is acknowledged before the sequencer's
commit, which is durable and (the WAL being one sequence) makes everything
before it durable too. Were the server to crash and lose the queued row, the
waiting append fails; it was never acknowledged.

One listener thread per process waits for ``NOTIFY ledger_done`` (and polls
every ``COLLECT_EVERY`` seconds, in case a notification was missed while it
reconnected), takes all of this process's finished rows in one transaction
(deleting them, with their checkpoint notes, then one read of the stored
hashes), builds their receipts (docs/protocol.md §3: the checkpoint note and
the RFC 9162 §2.1.3 inclusion proofs) and wakes the waiting threads. An append not sequenced within ``timeout`` withdraws its
row if it is still queued (then nothing was written) or, if the sequencer
took it meanwhile, returns its receipts after all.
"""

from __future__ import annotations

import json
import threading
import time

import psycopg

from . import merkle
from .commit import CommitError, Receipt
from .pgstore import PgStore, connect, pipelined_transaction
from .sequencer import DONE_CHANNEL, QUEUE_CHANNEL
from .tree import hashes_for_ranges, range_indexes, run_paths, run_ranges, subtree_index

COLLECT_EVERY = 0.25  # seconds between polls while appends wait
TIMEOUT = 30.0  # seconds an append waits for the sequencer


class StoredProofs:
    """Inclusion proofs in the tree of ``size`` of the leaves ``[first, end)``,
    from hashes read up front (a ``Receipt``'s tree: ``size`` and
    ``inclusion(index)``). The run's proofs are built together on first use."""

    __slots__ = ("size", "first", "end", "hashes", "_paths", "_lock")

    def __init__(self, size: int, hashes: dict[int, bytes], first: int, end: int):
        self.size, self.hashes, self.first, self.end = size, hashes, first, end
        self._paths: list[list[bytes]] | None = None
        self._lock = threading.Lock()

    @staticmethod
    def ids_for(first: int, end: int, size: int) -> set[int]:
        """The stored hashes the receipts of leaves ``[first, end)`` need:
        their leaf hashes and their inclusion proofs' hashes."""
        out: list[int] = [2 * i - i.bit_count() for i in range(first, end)]  # leaf i (tree.stored_hash_index)
        for lo, hi in run_ranges(first, end, size):
            range_indexes(lo, hi, out)
        return set(out)

    def _range_hash(self, lo: int, hi: int) -> bytes:
        sid = subtree_index(lo, hi)
        if sid is not None:  # a complete subtree (most are): one stored hash
            return self.hashes[sid]
        return hashes_for_ranges([(lo, hi)], lambda ids: [self.hashes[i] for i in ids])[0]

    def inclusion(self, index: int) -> list[bytes]:
        with self._lock:
            if self._paths is None:
                self._paths = run_paths(self.first, self.end, self.size, self._range_hash)
        return self._paths[index - self.first]


class _Wait:
    __slots__ = ("count", "receipts", "error", "done")

    def __init__(self, count: int):
        self.count, self.receipts, self.error, self.done = count, None, None, False


class QueueAppender:
    """This process's appends to a PostgreSQL ledger (see the module docstring)."""

    def __init__(self, store: PgStore, *, timeout: float = TIMEOUT):
        self.store, self.timeout = store, timeout
        self._cv = threading.Condition()
        self._waiting: dict[int, _Wait] = {}
        self._kick = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def append(self, records: list[dict]) -> list[Receipt]:
        """Queue ``records`` (checked, without ``index`` and ``prev``) and wait
        for their receipts. Raises CommitError when they were not appended."""
        self._start_listener()
        wait = _Wait(len(records))
        qid = self.enqueue(records)
        with self._cv:
            self._waiting[qid] = wait
        self._kick.set()  # a notification may have come before we were listed
        deadline = time.monotonic() + self.timeout
        with self._cv:
            while not wait.done and time.monotonic() < deadline:
                self._cv.wait(deadline - time.monotonic())
            if not wait.done:
                self._waiting.pop(qid, None)
        if not wait.done:
            self._withdraw(qid, wait)
        if wait.error is not None:
            raise wait.error
        return wait.receipts

    def enqueue(self, records: list[dict]) -> int:
        """Put ``records`` in ``ledger_queue`` as one row (one round trip); its id."""
        payload = json.dumps(records, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        try:
            with self.store.connection() as conn:
                with pipelined_transaction(conn, durable=False):
                    cur = conn.execute("INSERT INTO ledger_queue(records) VALUES (%s) RETURNING id", (payload,))
                    conn.execute("SELECT pg_notify(%s, '')", (QUEUE_CHANNEL,))
                return cur.fetchone()[0]
        except psycopg.Error as exc:
            raise _failed(exc) from exc

    def _withdraw(self, qid: int, wait: _Wait) -> None:
        """Take back a row nobody sequenced in time; if it was sequenced after all, collect it."""
        try:
            with self.store.connection() as conn:
                gone = conn.execute("DELETE FROM ledger_queue WHERE id = %s AND size IS NULL AND error IS NULL "
                                    "RETURNING id", (qid,)).fetchone()
            if gone is None:
                self._collect({qid: wait})
                if wait.done:
                    return
        except psycopg.Error as exc:
            wait.error = _failed(exc)
            return
        wait.error = CommitError(f"no sequencer appended the records within {self.timeout:g} s "
                                 "(is the database reachable?); nothing was written")

    # The listener --------------------------------------------------------

    def _start_listener(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._cv:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._listen, name="ledger-receipts", daemon=True)
                    self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with connect(self.store.url) as conn:
                    conn.execute(f"LISTEN {DONE_CHANNEL}")
                    self._serve(conn)
            except psycopg.Error:
                self._stop.wait(COLLECT_EVERY)

    def _serve(self, conn: psycopg.Connection) -> None:
        last = time.monotonic()
        while not self._stop.is_set():
            heard = False
            for _ in conn.notifies(timeout=0.05 if self._waiting else 0.5, stop_after=1):
                heard = True
            now = time.monotonic()
            if self._waiting and (heard or self._kick.is_set() or now - last >= COLLECT_EVERY):
                self._kick.clear()
                last = now
                with self._cv:
                    waiting = dict(self._waiting)
                self._collect(waiting)

    def _collect(self, waiting: dict[int, _Wait]) -> None:
        """Finish every request in ``waiting`` whose row the sequencer marked.

        One transaction, two round trips (pipeline mode): the finished rows
        are deleted, returning their results and checkpoint notes, then the
        stored hashes their receipts need are read and the deletion
        committed. Should anything fail, the rows stay for the next try."""
        with self.store.connection() as conn:
            with pipelined_transaction(conn, durable=False):
                rows = conn.execute(
                    "DELETE FROM ledger_queue q WHERE id = ANY(%s) AND (size IS NOT NULL OR error IS NOT NULL) "
                    "RETURNING id, first, size, error, "
                    "(SELECT note FROM ledger_checkpoints c WHERE c.size = q.size AND q.error IS NULL)",
                    (list(waiting),)).fetchall()
                ids = self._proof_ids([(r[1], waiting[r[0]].count, r[2]) for r in rows if r[3] is None])
                cur = conn.execute("SELECT id, hash FROM ledger_hashes WHERE id = ANY(%s)", (ids,)) if ids else None
            hashes = dict(cur.fetchall()) if cur is not None else {}
        if not rows:
            return
        for qid, first, size, error, note in rows:
            wait = waiting[qid]
            if error is not None:
                wait.error = CommitError(f"the sequencer could not append the records, nothing was written: {error}")
            else:
                try:
                    tree = StoredProofs(size, hashes, first, first + wait.count)
                    wait.receipts = [Receipt(i, hashes[merkle.stored_hash_index(0, i)], bytes(note), tree)
                                     for i in range(first, first + wait.count)]
                except (KeyError, TypeError) as exc:  # a hash or the note missing: a damaged log
                    wait.error = CommitError(f"appended, but its receipt could not be read back: {exc!r}")
        with self._cv:
            for qid, *_ in rows:
                waiting[qid].done = True
                self._waiting.pop(qid, None)
            self._cv.notify_all()

    @staticmethod
    def _proof_ids(done: list[tuple[int, int, int]]) -> list[int]:
        """The stored hashes the receipts of ``done`` ((first, count, size)
        each) need: every leaf hash and every inclusion proof's hashes."""
        ids: set[int] = set()
        for first, count, size in done:
            ids.update(StoredProofs.ids_for(first, first + count, size))
        return sorted(ids)


def _failed(exc: BaseException) -> CommitError:
    error = CommitError(f"append failed, nothing acknowledged: {str(exc).strip()}")
    error.__cause__ = exc
    return error
