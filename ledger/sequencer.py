"""One sequencer for every node sharing a PostgreSQL ledger (docs/protocol.md §11).

Nodes do not append to the log themselves: they queue their records in
``ledger_queue`` (``queue_append``) and wait. Every server process runs a
``Sequencer`` thread, and the one whose connection holds the session-level
advisory lock ``SEQUENCER_LOCK`` is the leader: it takes everything queued,
from all nodes, in batches, and commits each batch as one transaction that
appends the entries and their stored hashes, stores one signed checkpoint of
the new size (``commit.GroupCommit``), records each queued request's first
index and that size in its queue row, and sends ``NOTIFY ledger_done``.

Why nothing acknowledged is lost: a request is acknowledged only once the
transaction that appended it (with its checkpoint) has committed, and the
queue rows are read ``FOR UPDATE`` and marked in that same transaction. A
leader killed mid-commit rolls back as a whole; its session ends, so
PostgreSQL releases the advisory lock, and the rows are still queued for the
next leader. Followers try the lock every ``POLL`` seconds, so one takes over
within ``POLL`` plus the time the server needs to notice the dead
connection: at once for a killed process (the kernel closes its socket),
within the TCP keepalive and user timeout (``pgstore.KEEPALIVE``) for a host
that vanished; and within a few seconds for a leader that stopped with
its socket open (SIGSTOP, a paused VM, a hang), whose session a follower
ends once it is silent past its lease (``lease``). A stale leader could
not fork the log either: a commit reads the tail inside the write
transaction, under ``pgstore.WRITE_LOCK``, or writes at the size the
leader's own last commit left (below), and the primary keys refuse an
index already taken, failing the whole transaction.

The leader's own process skips the queue: ``Sequencer.append`` hands its
encoded records to the leader thread in memory, and they go into the next
commit beside the queued rows, their receipts built from that commit's own
hashes (``commit.CommitTree``). They are acknowledged on the same durable
commit; should the process stop leading before a commit took them, they
are handed back to be queued, nothing having been written. Should its
connection be lost during a commit that took them, they wait to learn
whether that commit was written (``cut_off``), and are answered from it or
queued again.

A commit of the leader's own appends alone, while no queued request can be
waiting (the last read of the queue found it drained, and no notification
came since that read was sent), neither reads the queue nor the tail: it
writes at the size its previous commit left, so the whole commit goes out
in one round trip. Should another writer have appended meanwhile, the
taken indexes fail it whole (``commit.StaleTail``), and it is made again
the usual way.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time

import psycopg

from . import lease
from .commit import CommitError, GroupCommit, Receipt, Request, StaleTail
from .cut_off import CutOff, InDoubt
from .pgstore import PgStore, connect
from .queue_rows import sweep, take_rows

log = logging.getLogger(__name__)

SEQUENCER_LOCK = lease.SEQUENCER_LOCK  # pg_try_advisory_lock key of the leader
QUEUE_CHANNEL, DONE_CHANNEL = "ledger_queue", "ledger_done"
POLL = 0.5  # seconds between a follower's tries of the lock, and a leader's idle waits
MAX_ROWS = 1000  # queued requests per commit
SWEEP_EVERY = 60.0  # seconds between a leader's drops of uncollected rows (``queue_rows.sweep``)
TIMEOUT = 30.0  # seconds a leader's own append waits to be taken into a commit


class Sequencer:
    """The leader-or-follower thread of one process (see the module docstring)."""

    def __init__(self, store: PgStore, appender: GroupCommit, *, poll: float = POLL):
        self.store, self.appender, self.poll = store, appender, poll
        self.lease = lease.LEASE  # seconds
        appender.on_write = self._record_results
        appender.after_commit = self._announce_taken
        self.leader = False
        self.led_since: float | None = None  # time.monotonic() when this thread became leader
        self.sweep_every = SWEEP_EVERY
        self.commits = 0
        # Why the database cannot be reached, while it cannot (None once connected).
        self.unreachable: str | None = None
        self._stop = threading.Event()
        self._conn: psycopg.Connection | None = None
        self._taken: list[int] = []  # queue ids of the commit under way
        # Notifications heard, and their count when a read of the queue that
        # found it drained was sent (None: unknown): while the two are equal,
        # no queued request can be waiting.
        self._heard = 0
        self._drained_at: int | None = None
        self._signed = 0  # the size its checkpoint signs
        # This process's own appends while it leads (``append``), guarded by
        # ``_lock`` together with ``leader``; a byte on the pipe wakes the thread.
        self._own: list[Request] = []
        self._in_doubt: InDoubt | None = None  # a commit of own appends cut off after it was sent
        self._lock = threading.Lock()  # each waiting append has its own wake-up (``_finish``)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._thread = threading.Thread(target=self._run, name="ledger-sequencer", daemon=True)

    def start(self) -> "Sequencer":
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._lock:
            self._wake()  # out of an idle wait at once
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        with self._lock:  # the pipe is closed once nothing can use it (a closed number may be reused)
            if self._wake_w is not None and not self._thread.is_alive():
                os.close(self._wake_r)
                os.close(self._wake_w)
                self._wake_r = self._wake_w = None

    def append(self, records: list[tuple[bytes, bytes, bytes]], timeout: float = TIMEOUT) -> list[Receipt] | None:
        """Append ``records`` (``entry_encode.entry_parts`` each) in this
        leader's next commit; their receipts, or None when this process does
        not lead (or stopped before a commit took them: nothing was written,
        queue them instead). Raises CommitError when the commit failed."""
        req = Request(records)
        req.wake = wake = threading.Lock()  # released once it is done (``_finish``): its thread alone wakes
        wake.acquire()
        with self._lock:
            if not self.leader:
                return None
            self._own.append(req)
            self._wake()  # under the lock: ``stop`` closes the pipe under it
        if not wake.acquire(timeout=timeout):
            with self._lock:
                if req in self._own:  # never taken: nothing written
                    self._own.remove(req)
                    raise CommitError(f"the sequencer took no records within {timeout:g} s; nothing was written")
            wake.acquire()  # a commit took it: it ends done either way
        return None if req.receipts is None and req.error is None else req.result()

    def _wake(self) -> None:
        if self._wake_w is None:  # stopped
            return
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, OSError):  # full (a wake-up is pending anyway) or closed
            pass

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with connect(self.store.url) as conn:
                    self._conn, self.unreachable = conn, None
                    self._follow_then_lead(conn)
            except psycopg.Error as exc:
                if not self._stop.is_set():
                    self.unreachable = str(exc).strip()
                    log.warning("ledger sequencer: %s; retrying", self.unreachable)
            except Exception:  # a bug must not end the thread: this process would never sequence again
                if not self._stop.is_set():
                    log.exception("ledger sequencer: unexpected error; it starts again on a new connection")
            finally:
                self._conn, self.led_since = None, None
                self._stop_leading()
            if self._in_doubt is not None:
                self._settle(None)
            self._stop.wait(self.poll)
        if self._in_doubt is not None:  # stopped meanwhile: its appends must not wait for ever
            self._settle(None)

    def _stop_leading(self) -> None:
        """No longer the leader: own appends no commit took are handed back
        (to be queued), or fail when the ledger is closing."""
        with self._lock:
            self.leader = False
            for req in self._own:
                if self._stop.is_set():
                    req.error = CommitError("the ledger was closed before the records were appended; "
                                            "nothing was written")
                req.done = True
            _finish(self._own)
            self._own = []

    def _settle(self, conn: psycopg.Connection | None) -> None:
        """Learn, once the log can tell, whether the commit cut off after it
        was sent was written (``cut_off``); give up when closing or after
        ``cut_off.TIMEOUT`` (with no ``conn``: the database out of reach)."""
        doubt = self._in_doubt
        written = None if conn is None else doubt.settle(self.store, conn, lease.holder(conn, SEQUENCER_LOCK))
        if written is None:  # its session may still commit it, or the log is out of reach
            if not (self._stop.is_set() or doubt.expired()):
                return
            doubt.fail(CommitError("append failed, the connection to the database was lost: nothing was "
                                   f"acknowledged, and whether the commit was written is unknown: {doubt.cut}"))
        log.warning("ledger sequencer: a commit %s: %s", {True: "was written", False: "was not written; its appends "
                    "are queued again", None: "has an unknown outcome"}[written], doubt.cut)
        with self._lock:
            self._in_doubt = None
            _finish(doubt.requests)

    def _follow_then_lead(self, conn: psycopg.Connection) -> None:
        checked = time.monotonic()
        while not self._stop.is_set():
            if self._in_doubt is not None:
                self._settle(conn)
            if conn.execute("SELECT pg_try_advisory_lock(%s)", (SEQUENCER_LOCK,)).fetchone()[0]:
                if self._in_doubt is not None:  # this session holds the lock: the one that sent it is gone
                    self._settle(conn)
                break
            if time.monotonic() - checked >= self.lease / 3:  # the lock's holder, silent too long?
                lease.end_stale_holder(conn, SEQUENCER_LOCK, self.lease)
                checked = time.monotonic()
            self._stop.wait(self.poll)
        else:
            return
        with self._lock:
            self.leader, self.led_since = True, time.monotonic()
        log.info("ledger sequencer: this process leads")
        self.appender.forget_tail()  # others led meanwhile
        self._drained_at = None
        # Notifications reach the handler whenever the connection reads from
        # the server, also while it runs the sequencer's own statements.
        woken = threading.Event()

        def heard(_notification) -> None:
            self._heard += 1
            woken.set()

        conn.add_notify_handler(heard)
        conn.execute(f"LISTEN {QUEUE_CHANNEL}")
        sweep(conn)
        # Pipeline mode for as long as it leads: statements whose results are
        # not needed at once go out without waiting, so a commit costs two
        # round trips (the queue rows with the sizes, then the writes with
        # COMMIT), not one per statement (nor one more for leaving the mode).
        with conn.pipeline():
            self._lead(conn, woken)

    def _lead(self, conn: psycopg.Connection, woken: threading.Event) -> None:
        swept = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - swept >= self.sweep_every:
                with conn.pipeline():  # answered on leaving: a failure shows here, not in a commit
                    sweep(conn)
                swept = time.monotonic()
            woken.clear()
            # After a commit that took queued rows, one more try at once: a
            # request queued meanwhile (on any node) is taken without waiting
            # for its notification; an empty try writes nothing. (This
            # process's own appends wake the thread through the pipe.)
            if self._commit_once(conn) or woken.is_set():
                continue
            self._idle(conn)

    def _idle(self, conn: psycopg.Connection) -> None:
        """Sleep until the server sends something (a notification), an own
        append wakes the thread, or ``poll`` seconds passed; every ``lease /
        2`` seconds of it, one statement keeps the session within its lease.
        What woke us is read and dropped here, so that the commit it starts
        does not count it as news and try once more for nothing."""
        until = time.monotonic() + self.poll
        while not self._stop.is_set():
            left = until - time.monotonic()
            if left <= 0:
                return
            ready = select.select([conn.fileno(), self._wake_r], [], [], min(left, self.lease / 2))[0]
            if self._wake_r in ready:
                _drain_pipe(self._wake_r)
            if conn.fileno() in ready:
                self._heard += _drain_notifications(conn)
            if ready:
                return
            if time.monotonic() < until:
                with conn.pipeline():  # answered on leaving: a lost connection shows here
                    conn.execute("SELECT 1")

    def _commit_once(self, conn: psycopg.Connection) -> int:
        """Sequence one batch of queued requests and this process's own; how
        many queued rows it took."""
        ids: list[int] = []
        self._taken = ids
        unread: list[Request] = []  # own appends of a commit written at a size not read back
        taken: list[Request] = []  # own appends this commit took

        def take(tx: psycopg.Connection) -> tuple[list[Request], list[list[dict]], object]:
            size = self.appender.tail_size()
            if size is not None and self._drained_at == self._heard:
                with self._lock:
                    own, self._own = self._own, []
                if own:  # nothing queued can be waiting: no read at all (see the module docstring)
                    unread.extend(own)
                    taken.extend(own)
                    return own, [], lambda _tx: (size, size)
            else:
                own = []
            heard = self._heard
            cur = tx.execute("SELECT id, records FROM ledger_queue WHERE size IS NULL AND error IS NULL "
                             "ORDER BY id LIMIT %s FOR UPDATE", (MAX_ROWS,))
            sizes = self.store.sizes_later(tx)
            rows = cur.fetchall()
            queued = take_rows(rows, ids)  # before taking our own: nothing here raises
            self._drained_at = heard if len(rows) < MAX_ROWS and len(queued) == len(rows) else None
            with self._lock:
                own, self._own = own + self._own, []
            taken.extend(own)
            return own, queued, sizes

        try:
            results, n = self.appender.commit_batch(
                take, conn, stale=lambda exc: bool(unread) and isinstance(exc, psycopg.errors.UniqueViolation))
        except StaleTail as exc:
            log.warning("ledger sequencer: %s (%s); committing again after reading the tail", exc, exc.__cause__)
            with self._lock:  # not done: they go first into the next commit
                self._own[:0] = unread
            self._drained_at = None
            return 1
        except CutOff as exc:  # its own appends are handed back, or wait to learn the outcome (``cut_off``)
            with self._lock:
                if exc.sent:
                    self._in_doubt = InDoubt(exc, taken)
                else:
                    self._own[:0] = taken
            raise exc.__cause__ from None
        finally:
            with self._lock:  # own appends this commit took are done (or failed), unless StaleTail
                _finish([req for req in taken if req.done])
        if n == 0:
            return 0
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            self._fail(conn, failed[0], ids)
            return len(ids)
        self.commits += 1
        return len(ids)

    def _announce_taken(self, conn: psycopg.Connection) -> None:
        """Once a commit that took queued rows committed: NOTIFY ledger_done,
        sent behind its COMMIT in the same round trip (``store.write``'s
        ``then``), so neither a round trip of its own nor the next commit's
        start waits for it (psycopg syncs on entering a transaction while
        anything sent is unanswered)."""
        if self._taken:
            _announce(conn, str(self._signed))

    def _record_results(self, tx: psycopg.Connection, done: list, size: int) -> None:
        """Inside the commit: each queued row's first index and the signed size."""
        ids = self._taken  # the rows take() locked, in the same order, after this process's own
        self._signed = size
        if not ids:
            return
        tx.execute("UPDATE ledger_queue q SET first = v.first, size = %s "
                   "FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, first) WHERE q.id = v.id",
                   (size, ids, [first for _, first in done[len(done) - len(ids):]]))

    def _fail(self, conn: psycopg.Connection, error: BaseException, ids: list[int]) -> None:
        """A commit that failed for a reason other than the connection (a
        damaged ledger, a record that does not encode): its requests get the
        error instead of being retried for ever. A lost connection is raised,
        so the rows stay queued for whoever leads next."""
        cause = error.__cause__ if isinstance(error, CommitError) else error
        if isinstance(cause, psycopg.OperationalError):
            # Queued rows stay for whoever leads next; this process's own
            # appends in the commit fail with it (a lost connection raised
            # ``cut_off.CutOff`` instead: they are retried).
            raise cause
        log.error("ledger sequencer: commit failed: %s", error)
        if not ids:  # this process's own appends only: they have the error
            return
        with conn.transaction():
            conn.execute("UPDATE ledger_queue SET error = %s WHERE id = ANY(%s) AND size IS NULL",
                         (str(error), ids))
        _announce(conn, "error")


def _finish(requests: list[Request]) -> None:
    """Wake the threads of own appends now done (``Sequencer.append``)."""
    for req in requests:
        if req.wake is not None:
            req.wake.release()
            req.wake = None  # released once


def _announce(conn: psycopg.Connection, payload: str) -> None:
    """``NOTIFY ledger_done`` once the queue rows are marked, in a transaction
    of its own that waits for no WAL flush: PostgreSQL serialises the commits
    of transactions that notify, holding a lock across the commit's flush, so
    a notifying commit would make every node's queueing wait for our fsync.
    Should we die before it, the waiting nodes poll (``queue_append``).

    Sent in pipeline mode: after a commit, behind its COMMIT in the same
    round trip (a failure there is logged, the commit standing); after a
    failed commit (``_fail``), on its own, answered at the next sync."""
    for sql in ("BEGIN", "SELECT set_config('synchronous_commit', 'off', true), pg_notify(%s, %s)", "COMMIT"):
        conn.execute(sql, (DONE_CHANNEL, payload) if "%s" in sql else None)


def _drain_pipe(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _drain_notifications(conn: psycopg.Connection) -> int:
    """Read what the server sent and drop the notifications in it (libpq's
    PQconsumeInput, PQnotifies); how many. A lost connection raises psycopg.Error."""
    pgconn = conn.pgconn
    pgconn.consume_input()
    count = 0
    while pgconn.notifies() is not None:
        count += 1
    return count
