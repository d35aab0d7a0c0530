"""Appending through the sequencer: what a node does with a PostgreSQL ledger
(docs/protocol.md §11).

``QueueAppender.append`` puts the records in ``ledger_queue`` and waits
until the leader (``sequencer``) has committed them: the row then holds the
first entry's index and the size of the signed checkpoint that covers them.
Appends made by this process's threads while a row is being queued share
the next row (group commit, as ``commit.GroupCommit`` does for SQLite): a
row costs the sequencer a lock, a mark and a collect whatever it holds.
The enqueue is one statement (the row and its NOTIFY) and commits with
``synchronous_commit = off``: it needs no fsync of its own, since nothing is
acknowledged before the sequencer's commit, which is durable and (the WAL
being one sequence) makes everything before it durable too. Were the
server to crash and lose the queued row, the waiting append fails; it was
never acknowledged. A connection that breaks while a row is being queued
leaves open whether it is in (the INSERT commits on its own): each row
carries a random token, so once the session that sent it is gone the row
is looked for, and waited for if it is there, or queued again if not.

One listener thread per process waits for ``NOTIFY ledger_done`` (and polls
every ``COLLECT_EVERY`` seconds, in case a notification was missed while it
reconnected), reads all of this process's finished rows with their
checkpoint notes, then the stored hashes their receipts need, builds the
receipts (docs/protocol.md §3: the checkpoint note and the RFC 9162 §2.1.3
inclusion proofs) and wakes the waiting threads; its next read deletes
those rows in the same statement (or, when all is quiet, a DELETE). An
append not sequenced within ``timeout`` withdraws its row if it is still
queued (then nothing was written) or, if the sequencer took it meanwhile,
returns its receipts after all.
"""

from __future__ import annotations

import json
import secrets
import threading
import time

import psycopg

from . import merkle
from .commit import CommitError, Receipt
from .pgstore import PgStore, closed_by_server, connect
from .queue_rows import STALE
from .sequencer import DONE_CHANNEL, QUEUE_CHANNEL
from .tree import hashes_for_ranges, range_indexes, run_paths, run_ranges, subtree_index

COLLECT_EVERY = 0.25  # seconds between polls while appends wait
TIMEOUT = 30.0  # seconds an append waits for the sequencer
GONE_WITHIN = 5.0  # seconds a session whose connection broke may take to end, once ended


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
    """One append's records, waiting: ``qid`` is its queue row once queued
    (shared with the appends queued beside it, which come before or after
    it in that row's order). ``wake`` is held until it is done (``finish``):
    the waiting thread alone is woken, not every thread waiting for a row."""

    __slots__ = ("count", "receipts", "error", "done", "qid", "wake")

    def __init__(self, count: int):
        self.count, self.receipts, self.error, self.done = count, None, None, False
        self.qid: int | None = None
        self.wake = threading.Lock()
        self.wake.acquire()

    def finish(self) -> None:
        """Done (receipts or error set): wake its thread. Called under the appender's lock."""
        if not self.done:
            self.done = True
            self.wake.release()


class QueueAppender:
    """This process's appends to a PostgreSQL ledger (see the module docstring)."""

    def __init__(self, store: PgStore, *, timeout: float = TIMEOUT):
        self.store, self.timeout = store, timeout
        self._cv = threading.Condition()
        self._waiting: dict[int, list[_Wait]] = {}  # queue row -> its appends, in the row's order
        self._pending: list[tuple[list[dict], _Wait]] = []  # for the next row
        self._queuing = False  # a thread is putting a row in
        self._kick = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection | None = None  # enqueue's
        self._session_id: tuple = ()  # its server pid and backend_start
        self._conn_lock = threading.Lock()

    def append(self, records: list[dict]) -> list[Receipt]:
        """Queue ``records`` (checked, without ``index`` and ``prev``) and wait
        for their receipts. Raises CommitError when they were not appended."""
        self._start_listener()
        wait = _Wait(len(records))
        with self._cv:
            self._pending.append((records, wait))
            while self._queuing and wait.qid is None and not wait.done:
                self._cv.wait()  # the thread queuing a row wakes us when it is in
            rows = None
            if wait.qid is None and not wait.done:  # ours goes in the next row, which we put in
                self._queuing, rows, self._pending = True, self._pending, []
        if rows is not None:
            self._queue_row(rows)
        if not wait.wake.acquire(timeout=self.timeout):
            with self._cv:
                row = None if wait.done else self._waiting.pop(wait.qid, None)
            if row is not None:
                self._withdraw(wait.qid, row)
            elif not wait.done:  # another of the row's appends withdraws it
                wait.wake.acquire()
        if wait.error is not None:
            raise wait.error
        return wait.receipts

    def _queue_row(self, rows: list[tuple[list[dict], _Wait]]) -> None:
        """Put the records of ``rows`` in one queue row, theirs in order."""
        waits = [wait for _, wait in rows]
        qid, error = None, None
        try:
            qid = self.enqueue([record for records, _ in rows for record in records])
        except BaseException as exc:  # whatever it was, the row's appends and the next row must not wait on
            error = exc if isinstance(exc, CommitError) else _failed(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            with self._cv:
                self._queuing = False
                for wait in waits:
                    wait.qid, wait.error = qid, error
                    if qid is None:
                        wait.finish()
                if qid is not None:
                    self._waiting[qid] = waits
                self._cv.notify_all()  # the appends it holds, and the next row's first
        self._kick.set()  # a notification may have come before the row was listed

    def enqueue(self, records: list[dict]) -> int:
        """Put ``records`` in ``ledger_queue`` as one row, with its NOTIFY:
        one statement, one round trip, on this appender's own connection
        (``_session``); the row's id. Should that connection break on the
        way, the row is looked for by its token once the session that sent
        it is gone (``_find``): found, it is this row; not, it is put in again."""
        payload = json.dumps(records, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        token = secrets.token_hex(16)
        with self._conn_lock:
            try:
                return self._insert(payload, token)
            except _Cut as exc:
                cut = exc.__cause__
            except psycopg.Error as exc:
                self._close()
                raise _failed(exc) from exc
            try:  # the row commits on its own (autocommit): it may be in
                qid = self._find(token, *self._session_id)
                return qid if qid is not None else self._insert(payload, token)
            except (_Cut, psycopg.Error) as exc:
                self._close()
                raise CommitError(f"append failed, the connection to the database was lost while queueing "
                                  f"the records: nothing was acknowledged, but they may still be appended: "
                                  f"{str(cut).strip()}") from exc

    def _insert(self, payload: str, token: str) -> int:
        """The row put in; raises _Cut when the connection broke once the
        INSERT was on its way (whether it is in is then unknown)."""
        if self._conn is not None and not self._conn.closed:
            try:
                closed_by_server(self._conn)  # e.g. the database restarted since the last row
            except psycopg.Error:
                self._conn.close()
        if self._conn is None or self._conn.closed:
            self._conn, started = _session(self.store.url)
            self._session_id = (self._conn.info.backend_pid, started)
        try:
            return self._conn.execute(
                "WITH q AS (INSERT INTO ledger_queue(records, token) VALUES (%s, %s) RETURNING id) "
                "SELECT id, pg_notify(%s, '') FROM q", (payload, token, QUEUE_CHANNEL)).fetchone()[0]
        except psycopg.Error as exc:
            if not self._conn.broken:
                raise
            self._conn.close()
            raise _Cut() from exc

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def _find(self, token: str, pid: int, started) -> int | None:
        """The id of the row queued with ``token``, if any, once the session
        (``pid``, started at ``started``) that sent it is gone: ended here
        should it linger, its INSERT is then committed or never will be."""
        with connect(self.store.url) as conn:
            deadline = time.monotonic() + GONE_WITHIN
            while conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = %s "
                               "AND (%s::timestamptz IS NULL OR backend_start = %s)", (pid, started, started)).fetchone():
                if time.monotonic() > deadline:
                    raise psycopg.OperationalError(f"the session that queued the row did not end in {GONE_WITHIN:g} s")
                time.sleep(0.05)
            row = conn.execute("SELECT id FROM ledger_queue WHERE token = %s", (token,)).fetchone()
        return None if row is None else row[0]

    def _withdraw(self, qid: int, waits: list[_Wait]) -> None:
        """Take back a row nobody sequenced in time; if it was sequenced after
        all, collect it. Either way every append the row holds is finished.
        A row neither queued nor marked is gone: the leader drops marked rows
        nobody collected (``queue_rows.STALE``, should this process have stood
        still that long), so its records may be on the log, and the error says so."""
        error: CommitError | None = None
        try:
            with self.store.connection() as conn:
                taken_back = conn.execute("DELETE FROM ledger_queue WHERE id = %s AND size IS NULL "
                                          "AND error IS NULL RETURNING id", (qid,)).fetchone()
                if taken_back is None:
                    answered = self._collect({qid: waits}, conn)
                    _forget(conn, answered)
                    if not answered:
                        error = CommitError(
                            f"the queue row of these records is gone: a row is dropped {STALE} after it was "
                            "sequenced if its node has not collected it by then, so they may have been "
                            "appended; look for them on the log before appending them again")
        except psycopg.Error as exc:
            error = _failed(exc)
        with self._cv:
            for wait in waits:
                if not wait.done:
                    wait.error = error or CommitError(
                        f"no sequencer appended the records within {self.timeout:g} s "
                        "(is the database reachable?); nothing was written")
                    wait.finish()

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
        with self._conn_lock:
            if self._conn is not None:
                self._conn.close()

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with _session(self.store.url)[0] as conn:
                    conn.execute(f"LISTEN {DONE_CHANNEL}")
                    self._serve(conn)
            except psycopg.Error:
                self._stop.wait(COLLECT_EVERY)

    def _serve(self, conn: psycopg.Connection) -> None:
        last = time.monotonic()
        answered: list[int] = []  # rows collected and answered: deleted by the next read
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
                answered = self._collect(waiting, conn, answered)
            elif answered and not self._waiting:  # quiet: no read to delete them with
                _forget(conn, answered)
                answered = []

    def _collect(self, waiting: dict[int, list[_Wait]], conn: psycopg.Connection,
                 delete: list[int] = ()) -> list[int]:
        """Finish every request in ``waiting`` whose row the sequencer marked;
        the rows answered, to delete (with the next call's ``delete``).

        Two reads: the marked rows with their checkpoint notes (the same
        statement deleting the rows ``delete`` names, answered before), then
        the stored hashes their receipts need (both append-only once marked,
        so no transaction is needed to read them alike). A row is deleted
        only once its answers are out, so should anything fail before, it
        stays for the next try; one whose deletion never comes (the node
        stopped) is dropped by the leader (``queue_rows.STALE``)."""
        rows = conn.execute(
            "WITH gone AS (DELETE FROM ledger_queue WHERE id = ANY(%s)) "
            "SELECT id, first, size, error, "
            "(SELECT note FROM ledger_checkpoints c WHERE c.size = q.size AND q.error IS NULL) "
            "FROM ledger_queue q WHERE id = ANY(%s) AND (size IS NOT NULL OR error IS NOT NULL)",
            (list(delete), list(waiting))).fetchall()
        ids = self._proof_ids([(r[1], _count(waiting[r[0]]), r[2]) for r in rows if r[3] is None])
        hashes = dict(conn.execute("SELECT id, hash FROM ledger_hashes WHERE id = ANY(%s)", (ids,)).fetchall()
                      ) if ids else {}
        if not rows:
            return []
        for qid, first, size, error, note in rows:
            waits = waiting[qid]
            if error is not None:
                for wait in waits:
                    wait.error = CommitError(f"the sequencer could not append the records, nothing was written: "
                                             f"{error}")
                continue
            try:
                tree = StoredProofs(size, hashes, first, first + _count(waits))
                for wait in waits:  # the row holds their records in this order
                    wait.receipts = [Receipt(i, hashes[merkle.stored_hash_index(0, i)], bytes(note), tree)
                                     for i in range(first, first + wait.count)]
                    first += wait.count
            except (KeyError, TypeError) as exc:  # a hash or the note missing: a damaged log
                for wait in waits:
                    wait.receipts, wait.error = None, CommitError(
                        f"appended, but its receipt could not be read back: {exc!r}")
        with self._cv:
            for qid, *_ in rows:
                for wait in waiting[qid]:
                    wait.finish()
                self._waiting.pop(qid, None)
        return [r[0] for r in rows]

    @staticmethod
    def _proof_ids(done: list[tuple[int, int, int]]) -> list[int]:
        """The stored hashes the receipts of ``done`` ((first, count, size)
        each) need: every leaf hash and every inclusion proof's hashes."""
        ids: set[int] = set()
        for first, count, size in done:
            ids.update(StoredProofs.ids_for(first, first + count, size))
        return sorted(ids)


def _forget(conn: psycopg.Connection, ids: list[int]) -> None:
    """Delete answered queue rows."""
    if ids:
        conn.execute("DELETE FROM ledger_queue WHERE id = ANY(%s)", (ids,))


def _session(url: str) -> tuple[psycopg.Connection, object]:
    """A connection whose commits wait for no WAL flush (``synchronous_commit``):
    nothing it writes is acknowledged to anyone before the sequencer's own
    durable commit, which (the WAL being one sequence) makes it durable too;
    and when its server process started (``pg_stat_activity.backend_start``)."""
    conn = connect(url)
    started = conn.execute("SELECT set_config('synchronous_commit', 'off', false), "
                           "(SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid())").fetchone()[1]
    return conn, started


def _count(waits: list[_Wait]) -> int:
    return sum(wait.count for wait in waits)


class _Cut(Exception):
    """The connection broke while a queue row's INSERT was on its way (``__cause__``)."""


def _failed(exc: BaseException) -> CommitError:
    error = CommitError(f"append failed, nothing acknowledged: {str(exc).strip()}")
    error.__cause__ = exc
    return error
