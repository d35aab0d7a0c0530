"""The sequencer's lock as a lease (docs/protocol.md §11).

PostgreSQL releases a session-level advisory lock when the session ends: at
once when the holding process dies (its socket closes), within the TCP
keepalive and user timeout when its host vanishes (``pgstore.KEEPALIVE``).
Neither covers a holder that stops with its socket open and its host still
answering keepalives: SIGSTOP, a paused VM, a hang. Its session sits idle,
holding the lock, and every node's appends would wait for it.

So a live holder sends a statement at least every ``LEASE / 2`` seconds
(the sequencer's idle loop), and a process that does not hold the lock
looks, every ``LEASE / 3`` seconds, for the holder's session idle for over
``LEASE`` seconds (``idle`` in ``pg_stat_activity``), or twice that inside a
transaction or in the middle of pipelined statements, waiting for the rest
(a commit computes its hashes and signature between its statements), and
ends it (``pg_terminate_backend``); so does a writer outside the sequencer
(``ledger migrate``) while it waits for the write lock
(``pgstore.WRITE_LOCK``), which a leader stopped inside a commit holds.
That releases the lock and rolls back whatever the holder had begun, none
of it acknowledged; the holder, should it wake, finds its connection gone
and follows. So a leader stopped
between commits is replaced within about ``LEASE * 4 / 3`` seconds plus a
follower's poll (3.4 s measured with two server nodes), one stopped inside
a commit within about twice that.

Ending another session needs the holder's database role (nodes share
one) or ``pg_signal_backend``; without it a warning is logged and the lock
waits for its holder, as a plain advisory lock would. (The server-side
``idle_session_timeout`` would need no such right, but PostgreSQL 15 did
not end an idle session reliably after pipelined statements here, and
PostgreSQL 13 has none.)
"""

from __future__ import annotations

import logging

import psycopg

log = logging.getLogger(__name__)

LEASE = 3.0  # seconds the holder's session may sit idle (twice that inside a transaction)
SEQUENCER_LOCK = 0x6C6162656C636B03  # pg_try_advisory_lock key of the leader (``sequencer``)

# The session holding the session-level advisory lock on a bigint key (hi, lo) in this database.
_HELD = ("l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
         "AND l.classid::bigint = %(hi)s AND l.objid::bigint = %(lo)s "
         "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())")
# That session, when silent past its lease: its pid, once ended.
_END_STALE = (
    "SELECT a.pid, pg_terminate_backend(a.pid) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE " + _HELD + " AND ((a.state = 'idle' AND a.state_change < clock_timestamp() - %(idle)s * interval '1 second') "
    "OR ((a.state LIKE 'idle in transaction%%' OR (a.state = 'active' AND a.wait_event = 'ClientRead')) "
    "AND a.state_change < clock_timestamp() - %(tx)s * interval '1 second'))"
)


def _key(key: int) -> dict:
    return {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF}


def holder(conn: psycopg.Connection, key: int) -> int | None:
    """The server pid of the session holding the advisory lock ``key``, if any."""
    row = conn.execute("SELECT l.pid FROM pg_locks l WHERE " + _HELD, _key(key)).fetchone()
    return None if row is None else row[0]


def end_stale_holder(conn: psycopg.Connection, key: int, lease: float = LEASE) -> list[int]:
    """End the session holding the advisory lock ``key`` (a bigint, as
    ``pg_try_advisory_lock(key)`` takes it) if it was silent past ``lease``
    seconds (see the module docstring); the server pids ended."""
    params = {**_key(key), "idle": lease, "tx": 2 * lease}
    try:
        with conn.transaction():  # a savepoint inside a writer's transaction: a refusal undoes only itself
            # Inside a transaction the server answers from the activity it
            # read first (stats_fetch_consistency): a live holder would look silent.
            conn.execute("SELECT pg_stat_clear_snapshot()")
            rows = conn.execute(_END_STALE, params).fetchall()
    except psycopg.errors.InsufficientPrivilege as exc:
        log.warning("the ledger sequencer's lock holder is silent, but its session cannot be ended: %s",
                    str(exc).strip())
        return []
    ended = [pid for pid, done in rows if done]
    for pid in ended:
        log.warning("the ledger sequencer's lock holder (server process %s) was silent for over %g s: "
                    "its session was ended, so that another process leads", pid, lease)
    return ended
