"""The producer registry in PostgreSQL (docs/protocol.md §11), shared by every
server node on one database.

Tables (migration component ``registry`` in ``schema_migrations``):

- ``registry_producers(key_id, entry, position)``: one ``trust.json``
  producer object (§8) per key, in registration order;
- ``registry_state``: one row, ``version`` (bumped by every change) and
  ``registry_version`` (the SHA-256 of §4, the same bytes as from
  ``trust.json``, since both go through ``TrustRegistry``);
- ``registry_intents(registry_version, record, ledger_from)``: a change
  whose ledger entry is being appended.

Reading: each process keeps the registry in memory and, when it is over
``poll`` seconds old (0.25 s), asks for ``version`` (one tiny query) and
reloads on a change. So a change on any node is in force on every node
within ``poll`` plus a query, well under a second.

Changing (``change``): the ``registry_state`` row is locked
(``SELECT … FOR UPDATE``) for the whole change, so changes from every node
take turns and none is lost. Under it: the intent is committed on its own,
the record is appended to the ledger, and the producer row, the new
version and the removal of the intent commit together. A node that dies
between the append and that commit leaves an intent behind; whoever takes
the lock next (or calls ``settle``) first withdraws the record if it still
waits in the PostgreSQL ledger's queue, then looks for it on the ledger
from ``ledger_from`` on, and applies the change when it is there or drops
the intent when it is not. The registry version after a change names it
(states only grow: keys are added, revocations move earlier), so each
change is on the ledger once, and in the registry exactly when it is.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from labelcheck.claims.trust import Producer, TrustError, TrustRegistry
from labelcheck.ledger.pg_schema import apply_migrations
from labelcheck.ledger.pgstore import KEEPALIVE, POOL_WAIT, RECONNECT, closed_by_server, display_url
from labelcheck.pipeline.registry_store import Mutate, RegistryStore

log = logging.getLogger("labelcheck")

COMPONENT = "registry"
POLL = 0.25  # seconds a process serves its registry before asking for the version
# A change holds the registry's row lock while its ledger append waits (at
# most the sequencer's 30 s). A session idle inside a transaction for longer
# is a node's that stopped mid-change (SIGSTOP, a paused VM, a hang) with its
# socket open: the server ends it, rather than every node's changes waiting
# for it for ever; the next change settles its intent.
IDLE_IN_CHANGE = 45.0  # seconds
SCAN = 1000  # ledger entries read at a time when settling an intent
_EMPTY_VERSION = TrustRegistry().version

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "producer registry", [
        "CREATE TABLE registry_producers (key_id text PRIMARY KEY, entry text NOT NULL, "
        "position bigint NOT NULL)",
        "CREATE TABLE registry_state (id smallint PRIMARY KEY CHECK (id = 1), version bigint NOT NULL, "
        "registry_version text NOT NULL)",
        f"INSERT INTO registry_state VALUES (1, 0, '{_EMPTY_VERSION}')",
        "CREATE TABLE registry_intents (registry_version text PRIMARY KEY, record text NOT NULL, "
        "ledger_from bigint NOT NULL, made_at timestamptz NOT NULL DEFAULT now())",
    ]),
]


class PgRegistryStore(RegistryStore):
    """See the module docstring. ``import_from``: a ``trust.json`` copied in
    once, when the database's registry has never been written."""

    def __init__(self, url: str, *, import_from: Path | None = None, poll: float = POLL,
                 ledger: Callable[[], Any] | None = None) -> None:
        self.url = url
        self.ledger = ledger  # to settle a stopped node's change while polling
        self.where = display_url(url)
        self.import_from = import_from
        self.poll = poll
        self._pid: int | None = None
        self._pool_: ConnectionPool | None = None
        self._pool_lock = threading.Lock()
        self._lock = threading.Lock()  # the in-memory registry
        self._change_lock = threading.Lock()  # one change at a time per process: two connections each
        self._registry: TrustRegistry | None = None
        self._version: int | None = None
        self._checked = 0.0

    # Connections and schema ----------------------------------------------

    def _pool(self) -> ConnectionPool:
        if self._pool_ is None or self._pid != os.getpid():
            with self._pool_lock:
                if self._pool_ is None or self._pid != os.getpid():
                    # after a fork the parent's pool is not ours to close
                    pool = ConnectionPool(self.url, min_size=1, max_size=4, open=True, timeout=POOL_WAIT,
                                          kwargs={"autocommit": True, **KEEPALIVE}, check=closed_by_server,
                                          reconnect_timeout=RECONNECT, configure=_end_stopped_changes,
                                          name="labelcheck-registry")
                    try:
                        with pool.connection() as conn:
                            migrate(conn)
                            self._import(conn)
                    except BaseException:
                        pool.close()
                        raise
                    self._pool_, self._pid = pool, os.getpid()
        return self._pool_

    def _import(self, conn: psycopg.Connection) -> None:
        """Copy ``import_from`` in when the registry was never written, so an
        operator moving to PostgreSQL keeps their producers. Not a change:
        each producer's entry is on the ledger already (it was migrated)."""
        path = self.import_from
        if path is None or not path.exists():
            return
        with conn.transaction():
            version = _lock_state(conn)
            count = conn.execute("SELECT count(*) FROM registry_producers").fetchone()[0]
            if version != 0 or count:
                self._left_out(conn, path)
                return
            registry = TrustRegistry.load(path)
            if not len(registry):
                return
            for position, producer in enumerate(registry.producers, 1):
                _put(conn, producer, position)
            conn.execute("UPDATE registry_state SET version = 1, registry_version = %s WHERE id = 1",
                         (registry.version,))
        log.warning("imported %d producers from %s into the registry in %s (registry version %s); "
                    "the file is not read again", len(registry), path, self.where, registry.version)

    def _left_out(self, conn: psycopg.Connection, path: Path) -> None:
        """Warn about producers of a node's own ``trust.json`` that the
        database's registry does not hold: with ``--database`` the file is
        not read, so they are not in force on this node."""
        try:
            mine = {p.key_id for p in TrustRegistry.load(path).producers}
        except (TrustError, OSError, ValueError):
            mine = set()
        held = {row[0] for row in conn.execute("SELECT key_id FROM registry_producers")}
        missing = sorted(mine - held)
        if missing:
            log.warning("%s lists producers the registry in %s does not hold (%d: %s); with a database the "
                        "file is not read: register them there (POST /v1/producers)", path, self.where,
                        len(missing), ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else ""))

    def close(self) -> None:
        if self._pool_ is not None and self._pid == os.getpid():
            self._pool_.close()
        self._pool_ = None

    # Reading -----------------------------------------------------------------

    def current(self) -> TrustRegistry:
        registry = self._registry
        if registry is not None and time.monotonic() - self._checked < self.poll:
            return registry
        if not self._lock.acquire(blocking=registry is None):
            return registry  # another thread is asking; this one serves the one it has
        try:
            if self._registry is None or time.monotonic() - self._checked >= self.poll:
                self._refresh()
        except (psycopg.Error, TrustError) as exc:
            if self._registry is None:
                raise
            log.error("keeping the last good producer registry: %s: %s", self.where, exc)
        finally:
            self._lock.release()
        return self._registry

    def _refresh(self) -> None:
        started = time.monotonic()
        pool = self._pool()
        with pool.connection() as conn:
            version, pending = conn.execute("SELECT version, EXISTS (SELECT FROM registry_intents) "
                                            "FROM registry_state WHERE id = 1").fetchone()
            if pending and self.ledger is not None and self._settle_if_idle(conn):
                version = None  # read again below
            if version != self._version or self._registry is None:
                self._version, self._registry = _read(conn)
        self._checked = started

    # Changing ----------------------------------------------------------------

    def change(self, mutate: Mutate, ledger: Callable[[], Any]) -> tuple[Any, Any]:
        with self._change_lock:
            try:
                return self._change(mutate, ledger)
            except _AppendFailed as failed:
                try:
                    self.settle(ledger)  # was it written after all? then the change stands
                except Exception as exc:  # left for the next change or start to settle
                    log.error("registry change not settled yet: %s", exc)
                raise failed.__cause__ from None

    def _change(self, mutate: Mutate, ledger: Callable[[], Any]) -> tuple[Any, Any]:
        pool = self._pool()
        with pool.connection() as conn, conn.transaction():
            _lock_state(conn)
            self._settle(conn, ledger)
            version, registry = _read(conn)
            record = mutate(registry)
            if record is None:
                return None, None
            producer = registry.lookup(record["producer"]["key_id"])
            with pool.connection() as aside:  # committed now: it must outlive this transaction
                aside.execute("INSERT INTO registry_intents (registry_version, record, ledger_from) "
                              "VALUES (%s, %s, %s)", (registry.version, json.dumps(record), ledger().size()))
            try:
                receipt = ledger().append([record])[0]
            except BaseException as exc:
                raise _AppendFailed() from exc
            self._apply(conn, producer, version, registry.version)
        with self._lock:
            self._version, self._registry, self._checked = version + 1, registry, time.monotonic()
        return record, receipt

    @staticmethod
    def _apply(conn: psycopg.Connection, producer: Producer, version: int, registry_version: str) -> None:
        """Keep ``producer`` as the change to ``registry_version`` and retire its intent."""
        _put(conn, producer)
        conn.execute("UPDATE registry_state SET version = version + 1, registry_version = %s WHERE id = 1",
                     (registry_version,))
        conn.execute("DELETE FROM registry_intents WHERE registry_version = %s", (registry_version,))

    def _settle_if_idle(self, conn: psycopg.Connection) -> bool:
        """Settle now unless a change is under way (it holds the lock and
        will retire its own intent); whether it did."""
        with conn.transaction():
            if conn.execute("SELECT FROM registry_state WHERE id = 1 FOR UPDATE SKIP LOCKED").fetchone() is None:
                return False
            self._settle(conn, self.ledger)
        return True

    def settle(self, ledger: Callable[[], Any]) -> None:
        """Resolve the intents a stopped node left (see the module docstring)."""
        with self._pool().connection() as conn, conn.transaction():
            _lock_state(conn)
            self._settle(conn, ledger)
        with self._lock:
            self._checked = 0.0  # read again on next use

    def _settle(self, conn: psycopg.Connection, ledger: Callable[[], Any]) -> None:
        rows = conn.execute("SELECT registry_version, record, ledger_from FROM registry_intents").fetchall()
        for registry_version, text, start in rows:
            record = json.loads(text)
            _withdraw_queued(conn, registry_version)
            if _on_ledger(ledger(), registry_version, start):
                version, registry = _read(conn)
                entry = {k: v for k, v in record["producer"].items() if k != "key_id"}
                producer = Producer.from_dict(entry)
                registry._set(producer)
                if registry.version != registry_version:
                    log.error("registry change %s does not follow the stored registry", registry_version)
                self._apply(conn, producer, version, registry_version)
                log.warning("registry change %s (%s %s) was on the ledger but not yet in the registry: applied",
                            registry_version, record["action"], producer.key_id)
            else:
                conn.execute("DELETE FROM registry_intents WHERE registry_version = %s", (registry_version,))
                log.warning("registry change %s never reached the ledger: dropped", registry_version)


def _end_stopped_changes(conn: psycopg.Connection) -> None:
    """Have the server end this session once idle inside a transaction for
    ``IDLE_IN_CHANGE`` seconds (see there)."""
    conn.execute("SELECT set_config('idle_in_transaction_session_timeout', %s, false)",
                 (str(int(IDLE_IN_CHANGE * 1000)),))


class _AppendFailed(Exception):
    """The ledger append of a change raised (its ``__cause__``)."""


def _lock_state(conn: psycopg.Connection) -> int:
    """Lock the registry for a change (every node waits); its version."""
    return conn.execute("SELECT version FROM registry_state WHERE id = 1 FOR UPDATE").fetchone()[0]


def _read(conn: psycopg.Connection) -> tuple[int, TrustRegistry]:
    """(version, registry) as of one statement."""
    rows = conn.execute("SELECT s.version, s.registry_version, p.entry FROM registry_state s "
                        "LEFT JOIN registry_producers p ON true ORDER BY p.position").fetchall()
    version, stored = rows[0][0], rows[0][1]
    registry = TrustRegistry.from_dict({"producers": [json.loads(r[2]) for r in rows if r[2] is not None]})
    if registry.version != stored:
        log.error("the registry's rows give version %s, its state row says %s: changed by hand?",
                  registry.version, stored)
    return version, registry


def _put(conn: psycopg.Connection, producer: Producer, position: int | None = None) -> None:
    """Insert or update ``producer``; a new one goes last (or at ``position``)."""
    conn.execute("INSERT INTO registry_producers (key_id, entry, position) VALUES (%s, %s, "
                 "coalesce(%s, (SELECT coalesce(max(position), 0) + 1 FROM registry_producers))) "
                 "ON CONFLICT (key_id) DO UPDATE SET entry = EXCLUDED.entry",
                 (producer.key_id, json.dumps(producer.to_dict(), ensure_ascii=False), position))


def _withdraw_queued(conn: psycopg.Connection, registry_version: str) -> None:
    """Take back the change's record if it still waits in the PostgreSQL
    ledger's queue (``ledger.sequencer``), so no sequencer appends it after
    we looked. A row the sequencer is committing is waited for, and then is
    on the ledger."""
    if conn.execute("SELECT to_regclass('ledger_queue')").fetchone()[0] is None:
        return  # a SQLite ledger appends synchronously: nothing can land later
    conn.execute("DELETE FROM ledger_queue WHERE size IS NULL AND error IS NULL AND records LIKE %s",
                 (f'%"registry_version":"{registry_version}"%',))


def _on_ledger(ledger: Any, registry_version: str, start: int) -> bool:
    """Whether the ledger holds, from ``start`` on, the ``registry`` entry of
    the change to ``registry_version``."""
    needle = registry_version.encode()
    end = ledger.size()
    while start < end:
        stop = min(end, start + SCAN)
        for blob in ledger.entries(start, stop):
            if needle in blob:
                entry = json.loads(blob)
                if entry.get("kind") == "registry" and entry.get("registry_version") == registry_version:
                    return True
        start = stop
    return False


def migrate(conn: psycopg.Connection) -> int:
    """Apply the registry's missing migrations (``conn`` in autocommit mode),
    taking turns with every other node and with the ledger's migrations."""
    return apply_migrations(conn, COMPONENT, MIGRATIONS)