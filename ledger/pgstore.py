"""PostgreSQL storage for the ledger (docs/protocol.md §11): the same tables
and reads as the SQLite ``store``, shared by any number of server nodes.

Tables (``pg_schema``, migrated at open): ``ledger_meta``,
``ledger_entries(idx, data)``, ``ledger_hashes(id, hash)`` in Go tlog's
stored-hash layout, ``ledger_checkpoints(size, note, signed_at)``, each
refusing UPDATE, DELETE and TRUNCATE, and ``ledger_queue`` (``sequencer``).

Connections come from a psycopg-pool pool, in autocommit mode; ``write()``
is one transaction that first takes a transaction-level advisory lock, so
writers on every node take turns as SQLite's ``BEGIN IMMEDIATE`` makes them
(in practice the sequencer is the only writer of entries). Commits are
durable when the server's ``synchronous_commit`` is on (its default), which
``PgStore`` checks at open. The pool is made again after a fork: a
connection never crosses one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import select
from itertools import accumulate
from typing import Callable, Iterator
from urllib.parse import unquote

import psycopg
from psycopg_pool import ConnectionPool

from . import lease, pg_schema, rows
from .rows import NOT_ONE_LINE, any_newline
from .store import StoreError

log = logging.getLogger(__name__)

WRITE_LOCK = 0x6C6162656C636B02  # pg_advisory_xact_lock key of ledger writers
# A writer other than the sequencer (a node's start, ``ledger migrate``)
# that stops inside its transaction with its socket open (SIGSTOP, a paused
# VM) would hold WRITE_LOCK, and every commit, for ever: the server ends a
# session idle inside such a transaction this long (the sequencer's own
# commits are bounded by its lease, ``lease``).
STOPPED_WRITER = 45.0  # seconds
POOL_MAX = 8
PUBLISH_LOCK = 0x6C6162656C636B04  # pg_advisory_xact_lock key of claim publishers (``held``)
# Seconds a read waits for a pooled connection: with the database unreachable,
# reads fail after this rather than holding their request for long.
POOL_WAIT = 5.0
# Seconds a pool goes on retrying a connection that failed, on its back-off
# of 1, 2, 4 ... s, before giving up until it is next asked for one (then at
# once): after a longer outage, the first requests once the database is back
# would otherwise wait for the next retry, seconds away, past POOL_WAIT.
RECONNECT = 2.0
CONNECT_TIMEOUT = 10  # seconds
# TCP keepalives: a node whose host vanished (no FIN, no RST) is noticed by the
# server within about idle + interval * count seconds, and its locks released.
KEEPALIVE = {"keepalives": 1, "keepalives_idle": 2, "keepalives_interval": 1, "keepalives_count": 2,
             "tcp_user_timeout": 5000, "connect_timeout": CONNECT_TIMEOUT}
_TABLES = {"entries": ("ledger_entries", "idx", "data"), "hashes": ("ledger_hashes", "id", "hash"),
           "checkpoints": ("ledger_checkpoints", "size", "note")}


def display_url(url: str) -> str:
    """``url`` without its password, fit for messages and logs."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(unparsable URL)"
    user, host, port = info.get("user", ""), info.get("host", ""), info.get("port", "")
    return f"postgresql://{user + '@' if user else ''}{host}{':' + str(port) if port else ''}/{info.get('dbname', '')}"


def url_passwords(url: str) -> set[str]:
    """The password written in ``url``, as written and percent-decoded, found
    by reading the URL as text (it may not parse): the user info up to its
    last ``@``, and any ``password=`` parameter."""
    found = []
    userinfo = re.match(r"[A-Za-z][A-Za-z0-9+.-]*://(.*)@", url)
    if userinfo and ":" in userinfo.group(1):
        found.append(userinfo.group(1).split(":", 1)[1])
    found += re.findall(r"[?&]password=([^&#]*)", url)
    return {v for s in found for v in (s, unquote(s)) if v}


def redact(text: str, url: str) -> str:
    """``text``, a message about ``url``, without the password written in it:
    libpq quotes a URL it cannot parse whole in its error."""
    for secret in sorted(url_passwords(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def connect(url: str, **kw) -> psycopg.Connection:
    """One autocommit connection with the ledger's connection options."""
    return psycopg.connect(url, autocommit=True, **KEEPALIVE, **kw)


class PgStore:
    """The ledger in the PostgreSQL database at ``url`` (see the module docstring)."""

    def __init__(self, url: str, *, create: bool = True):
        self.url, self.path = url, display_url(url)
        self._pid, self._pool_ = os.getpid(), None
        try:
            with connect(url) as conn:
                if create:
                    pg_schema.migrate(conn)
                self._check(conn)
        except (psycopg.Error, pg_schema.SchemaError) as exc:
            raise StoreError(f"{self.path}: {redact(str(exc).strip(), url)}") from None  # the cause quotes the URL

    def _check(self, conn: psycopg.Connection) -> None:
        version = pg_schema.applied(conn)
        if version == 0:
            raise psycopg.ProgrammingError("not a labelcheck ledger (no ledger schema migrations applied)")
        if version > pg_schema.LATEST:
            raise pg_schema.SchemaError(f"ledger schema version {version}, this labelcheck knows {pg_schema.LATEST}")
        if version < pg_schema.LATEST:
            raise pg_schema.SchemaError(f"ledger schema version {version} needs migrating: start a server once")
        schema = self.meta("schema", conn)
        if schema != pg_schema.META_SCHEMA:
            raise pg_schema.SchemaError(f"ledger schema {schema!r}, this labelcheck reads {pg_schema.META_SCHEMA!r}")
        sync = conn.execute("SHOW synchronous_commit").fetchone()[0]
        if sync in ("off", "local") and os.environ.get("LABELCHECK_ALLOW_ASYNC_COMMIT") != "1":
            raise pg_schema.SchemaError(f"synchronous_commit is {sync}: an acknowledged entry could be lost")

    # Connections ---------------------------------------------------------

    def _pool(self) -> ConnectionPool:
        if self._pool_ is None or self._pid != os.getpid():
            self._pid = os.getpid()  # after a fork the parent's pool is not ours to close
            self._pool_ = ConnectionPool(self.url, min_size=1, max_size=POOL_MAX, open=True,
                                         kwargs={"autocommit": True, **KEEPALIVE}, timeout=POOL_WAIT,
                                         reconnect_timeout=RECONNECT, check=closed_by_server,
                                         name="labelcheck-ledger")
        return self._pool_

    @contextlib.contextmanager
    def connection(self, conn: psycopg.Connection | None = None) -> Iterator[psycopg.Connection]:
        """``conn`` itself, or a connection borrowed from the pool for the block."""
        if conn is not None:
            yield conn
            return
        with self._pool().connection() as conn:
            yield conn

    @contextlib.contextmanager
    def held(self, key: int, seconds: float) -> Iterator[None]:
        """An advisory lock of every node on this database for the block, in
        a transaction of its own. Waiting for it ends after ``seconds``
        (psycopg's LockNotAvailable), and so does a holder's session that
        stands still inside the block (SIGSTOP, a paused VM): no node holds
        the others up for longer."""
        with self.connection() as c, c.transaction():
            ms = str(int(seconds * 1000))
            c.execute("SELECT set_config('lock_timeout', %s, true), "
                      "set_config('idle_in_transaction_session_timeout', %s, true)", (ms, ms))
            c.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
            yield

    @contextlib.contextmanager
    def write(self, conn: psycopg.Connection | None = None, *,
              then: Callable[[psycopg.Connection], None] | None = None) -> Iterator[psycopg.Connection]:
        """One write transaction, every other writer of this database waiting;
        ``then(conn)`` once it committed (in pipeline mode, sent behind the
        COMMIT: see ``pipelined_transaction``)."""
        with self.connection(conn) as c:
            if _pipelined(c):
                with pipelined_transaction(c, then=then):
                    c.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                    yield c
                return
            with c.transaction():
                _lock_for_writing(c)
                yield c
            if then is not None:
                try:
                    then(c)
                except psycopg.Error as exc:  # the commit stands, as in pipeline mode
                    log.warning("ledger: after a commit: %s", str(exc).strip())

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[psycopg.Connection]:
        """Reads that all see one state (a REPEATABLE READ transaction)."""
        with self.connection() as c, c.transaction():
            c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield c

    def close(self) -> None:
        if self._pool_ is not None and self._pid == os.getpid():
            self._pool_.close()
        self._pool_ = None

    # Reads ---------------------------------------------------------------

    def _one(self, sql: str, args=(), conn=None):
        with self.connection(conn) as c:
            return c.execute(sql, args).fetchone()

    def meta(self, key: str, conn=None) -> str | None:
        row = self._one("SELECT value FROM ledger_meta WHERE key = %s", (key,), conn)
        return row[0] if row else None

    def size(self, conn=None) -> int:
        row = self._one("SELECT max(idx) FROM ledger_entries", (), conn)
        return 0 if row[0] is None else row[0] + 1

    def hash_count(self, conn=None) -> int:
        row = self._one("SELECT max(id) FROM ledger_hashes", (), conn)
        return 0 if row[0] is None else row[0] + 1

    def read_hashes(self, ids: list[int], conn=None) -> list[bytes]:
        """Stored hashes by stored-hash index, in the order asked."""
        if not ids:
            return []
        with self.connection(conn) as c:
            found = dict(c.execute("SELECT id, hash FROM ledger_hashes WHERE id = ANY(%s)", (list(ids),)))
        try:
            return [found[i] for i in ids]
        except KeyError as exc:
            raise StoreError(f"stored hash {exc.args[0]} is missing") from None

    def entries(self, start: int, end: int, conn=None) -> list[bytes]:
        with self.connection(conn) as c:
            found = c.execute("SELECT idx, data FROM ledger_entries WHERE idx >= %s AND idx < %s ORDER BY idx",
                             (start, end)).fetchall()
        return rows.contiguous(found, start, end, StoreError)

    def iter_rows(self, table: str, start: int = 0, end: int | None = None, *, conn=None,
                  chunk: int = 10_000) -> Iterator[tuple[int, bytes]]:
        """(key, blob) rows of ``entries``, ``hashes`` or ``checkpoints``, key
        in [start, end), in key order, read in chunks by key range."""
        name, key, col = _TABLES[table]
        sql = f"SELECT {key}, {col} FROM {name} WHERE {key} >= %s AND {key} < %s ORDER BY {key} LIMIT {chunk}"
        with self.connection(conn) as c:
            yield from rows.chunked(lambda lo, hi: c.execute(sql, (lo, hi)).fetchall(), start, end, chunk)

    def entries_holding(self, needle: bytes, start: int, end: int, *,
                        chunk: int = 10_000) -> Iterator[tuple[int, bytes]]:
        """``(index, bytes)`` of the entries in [start, end) holding ``needle``,
        in order; the database does the filtering, so only those are sent."""
        sql = ("SELECT idx, data FROM ledger_entries WHERE idx >= %s AND idx < %s "
               f"AND position(%s::bytea IN data) > 0 ORDER BY idx LIMIT {chunk}")
        with self.connection() as c:
            for idx, data in rows.chunked(lambda lo, hi: c.execute(sql, (lo, hi, needle)).fetchall(), start, end,
                                          chunk):
                yield idx, bytes(data)

    _SIZES = "SELECT (SELECT max(idx) FROM ledger_entries), (SELECT max(size) FROM ledger_checkpoints)"

    def sizes(self, conn=None) -> tuple[int, int]:
        """(entries, size of the latest checkpoint, 0 when none), in one statement."""
        return _sizes(self._one(self._SIZES, (), conn))

    def sizes_later(self, conn: psycopg.Connection) -> Callable[[object], tuple[int, int]]:
        """``sizes`` sent now and read when the returned function is called: in
        pipeline mode it goes in the same round trip as what is sent next."""
        cur = conn.execute(self._SIZES)
        return lambda _conn: _sizes(cur.fetchone())

    def latest_checkpoint(self, conn=None) -> tuple[int, bytes, float] | None:
        row = self._one("SELECT size, note, signed_at FROM ledger_checkpoints ORDER BY size DESC LIMIT 1", (), conn)
        return None if row is None else (row[0], bytes(row[1]), row[2])

    def checkpoint_at(self, size: int, conn=None) -> bytes | None:
        row = self._one("SELECT note FROM ledger_checkpoints WHERE size = %s", (size,), conn)
        return None if row is None else bytes(row[0])

    # Writes (inside ``write()``) ----------------------------------------

    @staticmethod
    def put_meta(conn: psycopg.Connection, key: str, value: str) -> None:
        conn.execute("INSERT INTO ledger_meta(key, value) VALUES (%s, %s)", (key, value))

    @staticmethod
    def put_entries(conn: psycopg.Connection, rows: list[tuple[int, bytes]]) -> None:
        if not rows:
            return
        if any_newline(r[1] for r in rows):
            raise StoreError(NOT_ONE_LINE)
        if _pipelined(conn):  # COPY cannot run in pipeline mode: one INSERT of arrays instead
            conn.execute("INSERT INTO ledger_entries (idx, data) SELECT * FROM unnest(%b::int8[], %b::bytea[])",
                         ([r[0] for r in rows], [r[1] for r in rows]))
            return
        _copy(conn, "COPY ledger_entries (idx, data) FROM STDIN (FORMAT BINARY)", rows)

    # A run of consecutive rows in one statement, cut from one blob by the
    # server: the client sends one bytea and the offsets as the text of an
    # array (made by C-level joins), not an array of values, each adapted in
    # Python (a fraction of the cost per row).
    _PUT_ENTRY_RUN = ("INSERT INTO ledger_entries (idx, data) SELECT %b::int8 + o - 1, substring(%b::bytea FROM s + 1 "
                      "FOR e - s) FROM unnest(%t::int4[], %t::int4[]) WITH ORDINALITY AS t(s, e, o)")
    _PUT_HASH_RUN = ("INSERT INTO ledger_hashes (id, hash) SELECT %b::int8 + i, substring(%b::bytea FROM i * 32 + 1 "
                     "FOR 32) FROM generate_series(0, %b::int4 - 1) AS i")

    @staticmethod
    def put_entry_run(conn: psycopg.Connection, first: int, datas: list[bytes]) -> None:
        """Insert entries ``datas`` at indexes ``first``, ``first + 1``, ..."""
        if not datas:
            return
        if _pipelined(conn):
            if any_newline(datas):
                raise StoreError(NOT_ONE_LINE)
            ends = ",".join(map(str, accumulate(map(len, datas))))
            starts = "0," + ends[:ends.rfind(",")] if len(datas) > 1 else "0"
            conn.execute(PgStore._PUT_ENTRY_RUN, (first, b"".join(datas), "{" + starts + "}", "{" + ends + "}"))
            return
        PgStore.put_entries(conn, list(enumerate(datas, first)))

    @staticmethod
    def put_hashes(conn: psycopg.Connection, rows: list[tuple[int, bytes]]) -> None:
        _copy(conn, "COPY ledger_hashes (id, hash) FROM STDIN (FORMAT BINARY)", rows)

    @staticmethod
    def put_hash_run(conn: psycopg.Connection, first_id: int, hashes: list[bytes]) -> None:
        """Insert ``hashes`` (32 bytes each) at ids ``first_id``, ``first_id + 1``, ..."""
        if not hashes:
            return
        if set(map(len, hashes)) != {32}:
            raise StoreError("stored hashes are 32 bytes each")
        if _pipelined(conn):
            conn.execute(PgStore._PUT_HASH_RUN, (first_id, b"".join(hashes), len(hashes)))
            return
        PgStore.put_hashes(conn, list(enumerate(hashes, first_id)))

    @staticmethod
    def put_checkpoint(conn: psycopg.Connection, size: int, note: bytes, signed_at: float) -> None:
        conn.execute("INSERT INTO ledger_checkpoints(size, note, signed_at) VALUES (%s, %s, %s)",
                     (size, note, signed_at))


def _lock_for_writing(conn: psycopg.Connection) -> None:
    """Take ``WRITE_LOCK`` for this transaction (outside the sequencer: a
    node's start, ``ledger migrate``). While it waits, every ``LEASE / 3``
    seconds it ends the session of a leader silent inside a commit past its
    lease (``lease.end_stale_holder``), as a following node would: with none
    running, this writer would otherwise wait for ever behind a leader
    stopped there (SIGSTOP, a paused VM)."""
    limit = conn.execute("SELECT current_setting('lock_timeout')").fetchone()[0]
    while True:
        try:
            with conn.transaction():  # a savepoint: a wait that times out undoes only itself
                conn.execute("SELECT set_config('lock_timeout', %s, true)", (str(int(lease.LEASE * 1000 / 3)),))
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            break
        except psycopg.errors.LockNotAvailable:
            lease.end_stale_holder(conn, lease.SEQUENCER_LOCK, lease.LEASE)
    conn.execute("SELECT set_config('lock_timeout', %s, true), "
                 "set_config('idle_in_transaction_session_timeout', %s, true)",
                 (limit, str(int(STOPPED_WRITER * 1000))))


def _sizes(row: tuple) -> tuple[int, int]:
    n, signed = row
    return (0 if n is None else n + 1), (signed or 0)


@contextlib.contextmanager
def pipelined_transaction(conn: psycopg.Connection, *, durable: bool = True,
                          then: Callable[[psycopg.Connection], None] | None = None) -> Iterator[psycopg.Connection]:
    """One transaction in pipeline mode whose BEGIN and COMMIT go out with
    the statements next to them: the block's statements cost no round trip
    unless their results are read, and the COMMIT one (psycopg's
    ``transaction()`` waits for one more on entering and on leaving). Any
    statement's error is raised on leaving, the transaction rolled back.
    ``durable=False``: the commit waits for no WAL flush (``synchronous_commit``).
    ``then(conn)``: statements sent behind the COMMIT, in its round trip (the
    server skips them when the transaction failed); should they fail, the
    commit stands: they are rolled back and logged, not raised."""
    committed = None
    try:
        with conn.pipeline():  # leaving a pipeline block, nested or not, syncs: the one wait
            conn.execute("BEGIN")
            if not durable:
                conn.execute("SET LOCAL synchronous_commit = off")
            yield conn
            committed = conn.execute("COMMIT")
            if then is not None:
                then(conn)
    except BaseException as exc:
        with contextlib.suppress(psycopg.Error):  # a lost connection has nothing to roll back
            with conn.pipeline():
                conn.execute("ROLLBACK")
        if _committed(committed) and isinstance(exc, psycopg.Error):  # what failed came after the COMMIT
            log.warning("ledger: after a commit: %s", str(exc).strip())
            return
        raise


def _committed(cur) -> bool:
    """Whether ``cur`` holds the result of a COMMIT that committed."""
    result = None if cur is None else cur.pgresult
    return result is not None and result.status == psycopg.pq.ExecStatus.COMMAND_OK and cur.statusmessage == "COMMIT"


def closed_by_server(conn: psycopg.Connection) -> None:
    """A pool's check on lending an idle connection, mostly without a round
    trip: a server that restarted or ended the session (``pg_terminate_backend``)
    has sent its goodbye and closed the socket, so only an idle connection
    with something to read is asked, and refused if closed (the pool then
    lends another, or makes one). Without it every connection idle across a
    database restart fails one request after the restart."""
    if select.select([conn.fileno()], [], [], 0)[0]:
        conn.execute("")  # something came while idle: one round trip tells (OperationalError when closed)


def _pipelined(conn: psycopg.Connection) -> bool:
    """Whether ``conn`` is in pipeline mode (statements sent without waiting)."""
    return conn.pgconn.pipeline_status != psycopg.pq.PipelineStatus.OFF


def _copy(conn: psycopg.Connection, sql: str, rows: list[tuple[int, bytes]]) -> None:
    """Rows through COPY: the bulk path, one round trip for the batch."""
    if not rows:
        return
    with conn.cursor() as cur, cur.copy(sql) as copy:
        copy.set_types(["int8", "bytea"])
        for row in rows:
            copy.write_row(row)
