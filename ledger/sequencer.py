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
that vanished. A stale leader could not fork the log either: every commit
reads the tail inside the write transaction, under ``pgstore.WRITE_LOCK``.
"""

from __future__ import annotations

import json
import logging
import select
import threading
import time

import psycopg

from .commit import CommitError, GroupCommit
from .pgstore import PgStore, connect

log = logging.getLogger(__name__)

SEQUENCER_LOCK = 0x6C6162656C636B03  # pg_try_advisory_lock key of the leader
QUEUE_CHANNEL, DONE_CHANNEL = "ledger_queue", "ledger_done"
POLL = 0.5  # seconds between a follower's tries of the lock, and a leader's idle waits
MAX_ROWS = 1000  # queued requests per commit
STALE = "10 minutes"  # finished queue rows nobody collected (their node died) are dropped after this


class Sequencer:
    """The leader-or-follower thread of one process (see the module docstring)."""

    def __init__(self, store: PgStore, appender: GroupCommit, *, poll: float = POLL):
        self.store, self.appender, self.poll = store, appender, poll
        appender.on_write = self._record_results
        self.leader = False
        self.led_since: float | None = None  # time.monotonic() when this thread became leader
        self.commits = 0
        self._stop = threading.Event()
        self._conn: psycopg.Connection | None = None
        self._taken: list[int] = []  # queue ids of the commit under way
        self._thread = threading.Thread(target=self._run, name="ledger-sequencer", daemon=True)

    def start(self) -> "Sequencer":
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with connect(self.store.url) as conn:
                    self._conn = conn
                    self._follow_then_lead(conn)
            except psycopg.Error as exc:
                if not self._stop.is_set():
                    log.warning("ledger sequencer: %s; retrying", str(exc).strip())
            finally:
                self._conn, self.leader, self.led_since = None, False, None
            self._stop.wait(self.poll)

    def _follow_then_lead(self, conn: psycopg.Connection) -> None:
        while not self._stop.is_set():
            if conn.execute("SELECT pg_try_advisory_lock(%s)", (SEQUENCER_LOCK,)).fetchone()[0]:
                break
            self._stop.wait(self.poll)
        else:
            return
        self.leader, self.led_since = True, time.monotonic()
        log.info("ledger sequencer: this process leads")
        # Notifications reach the handler whenever the connection reads from
        # the server, also while it runs the sequencer's own statements.
        woken = threading.Event()
        conn.add_notify_handler(lambda _n: woken.set())
        conn.execute(f"LISTEN {QUEUE_CHANNEL}")
        conn.execute("DELETE FROM ledger_queue WHERE size IS NOT NULL AND queued_at < now() - %s::interval",
                     (STALE,))
        while not self._stop.is_set():
            woken.clear()
            # After a commit that took something, one more try at once: a
            # request queued meanwhile (on any node) is taken without waiting
            # for its notification; an empty try writes nothing.
            if self._commit_once(conn) or woken.is_set():
                continue
            # Idle: sleep until the server sends something (a notification).
            # What woke us is read and dropped here, so that the commit it
            # starts does not count it as news and try once more for nothing.
            if select.select([conn.fileno()], [], [], self.poll)[0]:
                _drain_notifications(conn)

    def _commit_once(self, conn: psycopg.Connection) -> int:
        """Sequence one batch of queued requests; how many there were."""
        ids: list[int] = []
        self._taken = ids

        def take(tx: psycopg.Connection) -> list[list[dict]]:
            rows = tx.execute("SELECT id, records FROM ledger_queue WHERE size IS NULL AND error IS NULL "
                              "ORDER BY id LIMIT %s FOR UPDATE", (MAX_ROWS,)).fetchall()
            ids.extend(r[0] for r in rows)
            return [json.loads(r[1]) for r in rows]

        # Pipeline mode: statements whose results are not needed at once go
        # out without waiting, so a commit costs three round trips (the
        # queue rows, the sizes, then the writes with COMMIT), not one per statement.
        with conn.pipeline():
            results, n = self.appender.commit_batch(take, conn)
        if n == 0:
            return 0
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            self._fail(conn, failed[0], ids)
        else:
            self.commits += 1
        return n

    def _record_results(self, tx: psycopg.Connection, done: list, size: int) -> None:
        """Inside the commit: each queued row's first index and the signed size."""
        ids = self._taken  # the rows take() locked, in the same order
        tx.execute("UPDATE ledger_queue q SET first = v.first, size = %s "
                   "FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, first) WHERE q.id = v.id",
                   (size, ids, [first for _, first in done]))
        tx.execute("SELECT pg_notify(%s, %s)", (DONE_CHANNEL, str(size)))

    def _fail(self, conn: psycopg.Connection, error: BaseException, ids: list[int]) -> None:
        """A commit that failed for a reason other than the connection (a
        damaged ledger, a record that does not encode): its requests get the
        error instead of being retried for ever. A lost connection is raised,
        so the rows stay queued for whoever leads next."""
        cause = error.__cause__ if isinstance(error, CommitError) else error
        if isinstance(cause, psycopg.OperationalError):
            raise cause
        log.error("ledger sequencer: commit failed: %s", error)
        with conn.transaction():
            conn.execute("UPDATE ledger_queue SET error = %s WHERE id = ANY(%s) AND size IS NULL",
                         (str(error), ids))
            conn.execute("SELECT pg_notify(%s, 'error')", (DONE_CHANNEL,))


def _drain_notifications(conn: psycopg.Connection) -> None:
    """Read what the server sent and drop the notifications in it (libpq's
    PQconsumeInput, PQnotifies); a lost connection raises psycopg.Error."""
    pgconn = conn.pgconn
    pgconn.consume_input()
    while pgconn.notifies() is not None:
        pass
