"""The same ledger behaviour on both backends (docs/protocol.md §4, §11): SQLite
in the data directory and PostgreSQL (a real server, tests/pg.py). Appends
give receipts that prove themselves, proofs verify, the bundle and tiles are
byte for byte the same from either store, tampering is refused or found."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

import pg

from labelcheck.ledger import bundle, checkpoint, cut_off, merkle, note, pg_schema, pgstore
from labelcheck.ledger.backend import open_store
from labelcheck.ledger.commit import CommitError, GroupCommit
from labelcheck.ledger.sequencer import POLL
from labelcheck.ledger.entry_encode import entry_parts
from labelcheck.ledger.log import Ledger, LedgerError
from labelcheck.ledger.store import StoreError
from labelcheck.ledger.tiles import read_tile, tiles_for_size

ORIGIN = "backends.example/log"
LABELCHECK = str(Path(sys.executable).with_name("labelcheck"))
_names = itertools.count()


def clock() -> float:
    return 1_700_000_000.0


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    """Where the ledger lives: ``(data_dir, database URL or None)``."""
    if request.param == "sqlite":
        return tmp_path, None
    pg = request.getfixturevalue("postgres")
    return tmp_path, pg.create_database(f"backends_{next(_names)}")


def open_ledger(target, **kw) -> Ledger:
    data_dir, url = target
    return Ledger.open_dir(data_dir, origin=ORIGIN, database=url, clock=clock, **kw)


def records(n: int, tag: str = "r") -> list[dict]:
    return [{"kind": "verification", "tag": tag, "n": i} for i in range(n)]


def _tags(led: Ledger, start: int, end: int) -> list:
    """The ``tag`` of entries ``start`` to ``end`` (``records``), in log order."""
    return [json.loads(e)["tag"] for e in led.entries(start, end)]


def test_receipts_prove_inclusion_in_a_signed_checkpoint(target):
    with open_ledger(target) as led:
        verifier = note.Verifier.from_vkey(led.verifier_key)
        first = led.append(records(3))
        second = led.append(records(5, "s"))
        assert [r.index for r in first + second] == list(range(8))
        for r in first + second:
            cp = checkpoint.open_checkpoint(r.checkpoint, verifier, origin=ORIGIN)
            assert cp.size == r.size
            merkle.verify_inclusion(r.index, cp.size, r.leaf_hash, r.inclusion, cp.root)
        assert led.size() == 8
        assert merkle.leaf_hash(led.entries(7, 8)[0]) == second[-1].leaf_hash


def test_proofs_and_checkpoints(target):
    with open_ledger(target) as led:
        verifier = note.Verifier.from_vkey(led.verifier_key)
        old = checkpoint.open_checkpoint(led.append(records(5))[0].checkpoint, verifier)
        led.append(records(12))
        new = checkpoint.open_checkpoint(led.checkpoint(), verifier, origin=ORIGIN)
        assert new.size == 17
        merkle.verify_consistency(old.size, new.size, old.root, new.root, led.consistency_proof(5, 17))
        merkle.verify_inclusion(3, 17, led.leaf_hash(3), led.inclusion_proof(3, 17), new.root)
        with pytest.raises(LedgerError):
            led.inclusion_proof(17, 17)
        assert led.verify().ok


def test_concurrent_appends_make_one_contiguous_log(target):
    with open_ledger(target) as led:
        got: list = []

        def work(k: int) -> None:
            for i in range(10):
                got.extend(led.append(records(3, f"{k}-{i}")))

        threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(r.index for r in got) == list(range(180))
        report = led.verify()
        assert report.ok and report.size == 180, report.summary()


def test_postgresql_appends_queued_during_a_commit_wait_for_no_poll(tmp_path, postgres):
    # The sequencer tries again at once only when told a request came while
    # it committed: a lost wake-up would leave a request for the next poll
    # (made 5 s here). Receipts of requests collected together each prove
    # their own leaves.
    with open_ledger((tmp_path, postgres.create_database(f"backends_{next(_names)}"))) as led:
        led.append(records(1))  # the sequencer leads
        led.sequencer.poll = 5.0
        verifier = note.Verifier.from_vkey(led.verifier_key)
        got: list = []

        def work(k: int) -> None:
            for i in range(12):
                got.append(led.append(records(1 + (k + i) % 7, f"{k}-{i}")))

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert time.monotonic() - start < 4.0
        assert sorted(r.index for batch in got for r in batch) == list(range(1, led.size()))
        for batch in got:
            assert [r.index for r in batch] == list(range(batch[0].index, batch[0].index + len(batch)))
            for r in batch:
                cp = checkpoint.open_checkpoint(r.checkpoint, verifier, origin=ORIGIN)
                merkle.verify_inclusion(r.index, cp.size, r.leaf_hash, r.inclusion, cp.root)
        assert led.verify().ok


def test_both_backends_give_the_same_bytes(tmp_path, postgres):
    """Same key, same records: same entries, checkpoints, bundle and tiles."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = (tmp_path / "a", None)
    b = (tmp_path / "b", postgres.create_database(f"backends_{next(_names)}"))
    with open_ledger(a) as led:
        led.append(records(40))
    (tmp_path / "b" / "ledger.key").write_bytes((tmp_path / "a" / "ledger.key").read_bytes())
    (tmp_path / "b" / "ledger.key").chmod(0o600)  # every node holds the same key, private
    with open_ledger(b) as led:
        led.append(records(40))
    outs = []
    for where in (a, b):
        with open_ledger(where) as led:
            buf = io.BytesIO()
            led.export(buf)
            tiles = [read_tile(t, 40, led.store) for t in tiles_for_size(40)]
            outs.append((buf.getvalue(), tiles, led.checkpoint(), led.entries(0, 40)))
            report = bundle.verify_bundle(io.BytesIO(buf.getvalue()), led.verifier_key)
            assert report.ok, report.problems
    assert outs[0] == outs[1]


def test_a_different_key_is_refused(target):
    with open_ledger(target) as led:
        led.append(records(1))
    (target[0] / "ledger.key").unlink()  # a new key is made: not the ledger's
    with pytest.raises(LedgerError, match="belongs to a ledger with vkey"):
        open_ledger(target)


def _tamper(target, sql_sqlite: str, sql_pg: str) -> None:
    data_dir, url = target
    if url is None:
        conn = sqlite3.connect(data_dir / "ledger.db")
        try:
            conn.execute(sql_sqlite)
            conn.commit()
        finally:
            conn.close()
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql_pg)


@pytest.mark.parametrize("what", ["update", "delete"])
def test_the_database_refuses_changes_to_the_log(target, what):
    with open_ledger(target) as led:
        led.append(records(2))
    sqls = {"update": ("UPDATE entries SET data = x'00'",  # SQLite: the row holding both, a run
                       "UPDATE ledger_entries SET data = '\\x00' WHERE idx = 0"),
            "delete": ("DELETE FROM checkpoints", "DELETE FROM ledger_checkpoints")}
    with pytest.raises(Exception, match="append-only"):
        _tamper(target, *sqls[what])
    with open_ledger(target) as led:
        assert led.verify().ok


def test_a_changed_entry_is_found_by_verify(target):
    """Triggers off (the owner of the database can do that): verify finds the change."""
    with open_ledger(target) as led:
        led.append(records(4))
        vkey = led.verifier_key
    data_dir, url = target
    if url is None:
        _tamper(target, "DROP TRIGGER entries_no_update", "")
        _tamper(target, "UPDATE entries SET data = CAST(replace(CAST(data AS TEXT), '\"n\":1', '\"n\":7') AS BLOB)",
                "")  # the row holding the run of all four; only entry 1 has "n":1
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only")
            conn.execute("UPDATE ledger_entries SET data = convert_to(replace(convert_from(data, 'UTF8'), "
                         "'\"n\":1', '\"n\":7'), 'UTF8') WHERE idx = 1")
    db = str(data_dir / "ledger.db") if url is None else url
    done = subprocess.run([LABELCHECK, "ledger", "verify", "--db", db, "--vkey", vkey],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "entry 1" in done.stdout


def test_ledger_verify_reads_either_backend(target):
    with open_ledger(target) as led:
        led.append(records(30))
        vkey = led.verifier_key
    data_dir, url = target
    db = str(data_dir / "ledger.db") if url is None else url
    done = subprocess.run([LABELCHECK, "ledger", "verify", "--db", db, "--vkey", vkey],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ledger OK: 30 entries" in done.stdout


def test_a_postgresql_database_without_a_ledger_is_refused(postgres):
    url = postgres.create_database(f"backends_{next(_names)}")
    done = subprocess.run([LABELCHECK, "ledger", "verify", "--db", url, "--trust-db-key"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "not a labelcheck ledger" in done.stderr
    store = open_store(url)  # opened for writing, it is migrated and empty
    try:
        assert store.size() == 0
    finally:
        store.close()


def test_a_database_of_an_earlier_schema_is_migrated_at_start_and_its_queued_rows_kept(tmp_path, postgres):
    # Schema 2 (before queue rows had tokens), with a row an older node
    # queued: a node's start adds what is missing, and sequences the row.
    url = postgres.create_database(f"backends_{next(_names)}")
    with psycopg.connect(url, autocommit=True) as conn:
        assert pg_schema.apply_migrations(conn, pg_schema.COMPONENT, pg_schema.MIGRATIONS[:2]) == 2
        conn.execute("INSERT INTO ledger_queue(records) VALUES (%s)", (json.dumps(records(2, "older node")),))
    with Ledger.open_dir(tmp_path / "a", origin=ORIGIN, database=url) as led:
        with psycopg.connect(url, autocommit=True) as conn:
            assert pg_schema.applied(conn) == pg_schema.LATEST
        deadline = time.monotonic() + 10
        while led.size() < 2:  # the leader takes it without being asked
            assert time.monotonic() < deadline, "the older node's row was not sequenced"
            time.sleep(0.02)
        (mine,) = led.append(records(1, "newer node"))
        assert mine.index == 2 and led.verify().ok
        assert _tags(led, 0, 3) == ["older node"] * 2 + ["newer node"]


@pytest.mark.parametrize("pipelined", [False, True])
def test_runs_of_entries_and_hashes_are_stored_row_for_row(target, pipelined):
    """put_entry_run and put_hash_run (one statement for a commit's rows)
    store exactly what put_entries and put_hashes store row by row."""
    data_dir, url = target
    if pipelined and url is None:
        pytest.skip("pipeline mode is PostgreSQL's")
    store = open_store(url or data_dir / "ledger.db")
    datas = [b"", b"x", b'{"a":"\xc3\xa9\\u0000"}', bytes(range(10)) + bytes(range(11, 256)) * 3, b"\x00" * 33]
    hashes = [bytes([i]) * 32 for i in range(7)]
    try:
        with store.write() as conn:
            with conn.pipeline() if pipelined else contextlib.nullcontext():
                store.put_entry_run(conn, 0, datas)
                store.put_entry_run(conn, len(datas), [])  # nothing: no statement, no error
                store.put_hash_run(conn, 0, hashes)
        assert store.entries(0, len(datas)) == datas
        assert store.read_hashes(list(range(7))) == hashes
        assert store.size() == len(datas) and store.hash_count() == 7
        if url is None:
            with store.connection() as c:  # stored as BLOBs, as put_entries stores them
                assert {t for (t,) in c.execute("SELECT DISTINCT typeof(data) FROM entries")} == {"blob"}
                assert {t for (t,) in c.execute("SELECT DISTINCT typeof(hash) FROM hashes")} == {"blob"}
    finally:
        store.close()


def test_an_entry_of_more_than_one_line_is_refused(target):
    """An entry is one line (the SQLite store joins a run's with newlines):
    either store refuses one holding a newline, and writes nothing of its run."""
    data_dir, url = target
    store = open_store(url or data_dir / "ledger.db")
    try:
        for put in (lambda conn: store.put_entry_run(conn, 0, [b'{"n":0}', b'{"n":\n1}']),
                    lambda conn: store.put_entries(conn, [(0, b'{"n":0}'), (1, b'{"n":\n1}')])):
            with pytest.raises(StoreError, match="not one line"):
                with store.write() as conn:
                    put(conn)
            assert store.size() == 0
    finally:
        store.close()


def test_runs_of_any_length_are_stored_in_order(target):
    """Runs of lengths around 128 (PostgreSQL writes a run in one statement
    of arrays or COPY) land contiguous and in order, and a run that collides
    with a stored index writes none of its rows."""
    data_dir, url = target
    store = open_store(url or data_dir / "ledger.db")
    lengths = [1, 3, 100, 127, 128, 129, 300]
    datas = [b'{"n":%d}' % i for i in range(sum(lengths))]
    try:
        at = 0
        for k in lengths:
            with store.write() as conn:
                store.put_entry_run(conn, at, datas[at:at + k])
            at += k
        assert store.entries(0, at) == datas and store.size() == at
        with pytest.raises(Exception):  # the first of 200 rows takes a stored index
            with store.write() as conn:
                store.put_entry_run(conn, at - 1, [b"new"] * 200)
        with pytest.raises(Exception):  # and row by row (a ledger copied in)
            with store.write() as conn:
                store.put_entries(conn, [(at - 2, b"new"), (at + 5, b"new")])
        assert store.size() == at and store.entries(at - 1, at) == datas[-1:]
    finally:
        store.close()


@pytest.mark.parametrize("pipelined", [False, True])
def test_what_follows_a_commit_runs_only_when_it_committed(target, pipelined):
    # store.write's ``then``: statements behind the COMMIT (the sequencer's
    # NOTIFY). After a failed transaction they do not run (in pipeline mode
    # the server skips them); failing themselves, they leave the commit standing.
    data_dir, url = target
    if pipelined and url is None:
        pytest.skip("pipeline mode is PostgreSQL's")
    store = open_store(url or data_dir / "ledger.db")
    pipe = (lambda conn: conn.pipeline()) if pipelined else (lambda conn: contextlib.nullcontext())

    def mark(name):
        return lambda c: store.put_meta(c, name, "ran")

    try:
        with store.connection() as conn, pipe(conn):
            with store.write(conn, then=mark("after 1")):
                store.put_entry_run(conn, 0, [b"one"])
            with pytest.raises(Exception):
                with store.write(conn, then=mark("after 2")):
                    store.put_entry_run(conn, 0, [b"taken index"])  # the primary key refuses it
        assert store.meta("after 1") == "ran" and store.meta("after 2") is None and store.size() == 1
        if url is not None:
            def failing(c):  # fails on the server, behind the COMMIT
                c.execute("SELECT 1 / 0")
            with store.connection() as conn, pipe(conn):
                with store.write(conn, then=failing):
                    store.put_entry_run(conn, 1, [b"two"])
                with store.write(conn):  # the connection is fit for the next transaction
                    store.put_entry_run(conn, 2, [b"three"])
            assert store.entries(0, 3) == [b"one", b"two", b"three"]
    finally:
        store.close()


def _two_nodes(tmp_path, postgres) -> tuple[str, Ledger, Ledger]:
    """Two ledgers on one database, as two nodes: the first leads."""
    url = postgres.create_database(f"backends_{next(_names)}")
    return (url, *pg.two_nodes(tmp_path, url, ORIGIN, records(1)))


def _check_receipts(led: Ledger, batches: list) -> None:
    verifier = note.Verifier.from_vkey(led.verifier_key)
    for batch in batches:
        assert [r.index for r in batch] == list(range(batch[0].index, batch[0].index + len(batch)))
        for r in batch:
            cp = checkpoint.open_checkpoint(r.checkpoint, verifier, origin=ORIGIN)
            merkle.verify_inclusion(r.index, cp.size, r.leaf_hash, r.inclusion, cp.root)


def test_the_leaders_own_appends_skip_the_queue_and_the_others_are_queued(tmp_path, postgres):
    _, a, b = _two_nodes(tmp_path, postgres)
    queued = {"a": 0, "b": 0}
    for name, led in (("a", a), ("b", b)):
        def counting(records, _append=led._queue.append, _name=name):
            queued[_name] += 1
            return _append(records)
        led._queue.append = counting
    got: list = []
    try:
        def work(led: Ledger, k: int) -> None:
            for i in range(10):
                got.append(led.append(records(1 + (k + i) % 5, f"{k}-{i}")))

        threads = [threading.Thread(target=work, args=(led, k)) for k, led in enumerate((a, b, a, b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert queued == {"a": 0, "b": 20}  # the leader's process never queues
        assert sorted(r.index for batch in got for r in batch) == list(range(1, a.size()))
        _check_receipts(a, got)
        assert a.verify().ok
    finally:
        b.close()
        a.close()


def _slow_enqueue(led: Ledger, first_call: threading.Event, fail_row: int | None = None) -> list[int]:
    """Make ``led``'s first queue row slow (so the appends made meanwhile
    gather in the next row), and row number ``fail_row`` fail as a lost
    connection does; returns each row's record count."""
    sizes: list[int] = []

    def enqueue(records, _enqueue=led._queue.enqueue):
        sizes.append(len(records))
        if len(sizes) == 1:
            first_call.set()
            time.sleep(0.3)
        if len(sizes) == fail_row:
            raise CommitError("append failed, nothing acknowledged: the connection went away")
        return _enqueue(records)

    led._queue.enqueue = enqueue
    return sizes


def test_a_followers_concurrent_appends_share_queue_rows(tmp_path, postgres):
    # While one row is being queued, the other threads' appends gather in
    # the next: fewer rows than appends, and each append still gets the
    # receipts of its own records, in order.
    url, a, b = _two_nodes(tmp_path, postgres)
    first = threading.Event()
    sizes = _slow_enqueue(b, first)
    got: dict[str, list] = {}
    try:
        def work(tag: str, n: int) -> None:
            got[tag] = b.append(records(n, tag))

        threads = [threading.Thread(target=work, args=("t0", 2))]
        threads[0].start()
        assert first.wait(10)
        threads += [threading.Thread(target=work, args=(f"t{k}", k + 1)) for k in range(1, 5)]
        for t in threads[1:]:
            t.start()
        for t in threads:
            t.join(30)
        assert sizes == [2, 2 + 3 + 4 + 5]  # four appends, one row
        _check_receipts(a, list(got.values()))
        for tag, batch in got.items():  # each receipt is for that append's own entry
            for r in batch:
                assert json.loads(a.entries(r.index, r.index + 1)[0])["tag"] == tag
        assert sorted(r.index for batch in got.values() for r in batch) == list(range(1, a.size()))
        assert a.verify().ok
        with psycopg.connect(url) as conn:  # answered rows are deleted once all is quiet
            deadline = time.monotonic() + 5
            while conn.execute("SELECT count(*) FROM ledger_queue").fetchone()[0]:
                assert time.monotonic() < deadline, "answered queue rows were never deleted"
                time.sleep(0.05)
    finally:
        b.close()
        a.close()


def test_an_append_nobody_sequences_in_time_is_withdrawn(tmp_path, postgres):
    # The leader's commit waits for the write lock another writer holds: the
    # follower's append gives up after its timeout, takes its row back and
    # says nothing was written; nothing is, once the writer lets go.
    url, a, b = _two_nodes(tmp_path, postgres)
    blocker = psycopg.connect(url)
    try:
        blocker.execute("SELECT pg_advisory_xact_lock(%s)", (pgstore.WRITE_LOCK,))
        b._queue.timeout = 1.0
        with pytest.raises(LedgerError, match="nothing was written"):
            b.append(records(2, "too late"))
        blocker.commit()
        assert a.append(records(1, "after"))[0].index == 1  # the log went on without it
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM ledger_queue WHERE records LIKE '%%too late%%'"
                                ).fetchone()[0] == 0
        assert a.size() == 2 and a.verify().ok
    finally:
        blocker.close()
        b.close()
        a.close()


def test_an_append_whose_row_was_dropped_says_it_may_have_been_appended(tmp_path, postgres, monkeypatch):
    # A node that stood still (SIGSTOP, a paused VM) longer than the leader
    # keeps uncollected rows: its row was sequenced, then dropped. When the
    # append's wait ends, it must not say that nothing was written.
    url, a, b = _two_nodes(tmp_path, postgres)
    try:
        queue = b._queue  # its listener, started by the first append, is replaced by one that never collects
        if queue._thread is not None:
            queue._stop.set()
            queue._thread.join(5)
            queue._stop.clear()
        monkeypatch.setattr(queue, "_serve", lambda conn: queue._stop.wait())
        b._queue.timeout = 3.0
        result: list = []
        worker = threading.Thread(target=lambda: result.append(_raises(b.append, records(2, "dropped"))))
        worker.start()
        with psycopg.connect(url, autocommit=True) as conn:
            deadline = time.monotonic() + 10
            while not conn.execute("DELETE FROM ledger_queue WHERE size IS NOT NULL AND records LIKE '%%dropped%%' "
                                   "RETURNING id").fetchall():
                assert time.monotonic() < deadline, "the leader never sequenced the row"
                time.sleep(0.02)  # as the leader's sweep does, after STALE
        worker.join(15)
        (error,) = result
        assert isinstance(error, LedgerError)
        assert "may have been appended" in str(error) and "nothing was written" not in str(error)
        assert a.size() == 3  # they were
        assert _tags(a, 1, 3) == ["dropped", "dropped"]
    finally:
        b.close()
        a.close()


def test_an_append_whose_queueing_connection_is_cut_before_its_row_went_in_is_queued_again(tmp_path, postgres):
    # The queue row commits on its own: a node whose connection breaks while
    # inserting it cannot tell at once whether it went in. Its session gone,
    # the row is not there (the INSERT waited for a lock): it is queued again,
    # and appended once.
    url, a, b = _two_nodes(tmp_path, postgres)
    blocker, watcher = psycopg.connect(url), psycopg.connect(url, autocommit=True)
    try:
        blocker.execute("LOCK TABLE ledger_queue IN EXCLUSIVE MODE")  # the row's INSERT waits
        result: list = []
        worker = threading.Thread(target=lambda: result.append(_raises(b.append, records(1, "cut"))))
        worker.start()
        pid = _wait_for_lock_waiter(watcher, "INSERT INTO ledger_queue")
        watcher.execute("SELECT pg_terminate_backend(%s)", (pid,))
        _wait_for_lock_waiter(watcher, "INSERT INTO ledger_queue", other_than=pid)  # queued again, on a new session
        blocker.rollback()
        worker.join(15)
        assert result == [None]
        assert b.append(records(1, "next"))[0].index == 2
        assert _tags(a, 1, 3) == ["cut", "next"]
    finally:
        blocker.close()
        watcher.close()
        b.close()
        a.close()


def _raises(fn, *args):
    try:
        fn(*args)
    except Exception as exc:
        return exc
    return None


def test_the_leader_drops_finished_queue_rows_nobody_collected(tmp_path, postgres):
    # A node that stopped (or lost its connection) before deleting its
    # answered rows leaves them: the leader drops those older than STALE.
    url, a, b = _two_nodes(tmp_path, postgres)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            for age in ("11 minutes", "1 minute"):
                conn.execute("INSERT INTO ledger_queue(records, size, first, queued_at) "
                             "VALUES ('[]', 1, 0, now() - %s::interval)", (age,))
            conn.execute("INSERT INTO ledger_queue(records, error, queued_at) "
                         "VALUES ('[]', 'refused', now() - '1 hour'::interval)")
            a.sequencer.sweep_every = 0.1
            deadline = time.monotonic() + 10
            while conn.execute("SELECT count(*) FROM ledger_queue").fetchone()[0] != 1:
                assert time.monotonic() < deadline, "stale rows were not dropped"
                time.sleep(0.05)
            kept = conn.execute("SELECT now() - queued_at < '5 minutes'::interval FROM ledger_queue").fetchone()
            assert kept == (True,)  # the recent one stays for its node to collect
    finally:
        b.close()
        a.close()


def test_a_queue_row_that_fails_fails_every_append_in_it_and_no_other(tmp_path, postgres):
    _, a, b = _two_nodes(tmp_path, postgres)
    first = threading.Event()
    sizes = _slow_enqueue(b, first, fail_row=2)
    outcome: dict[str, object] = {}
    try:
        def work(tag: str) -> None:
            try:
                outcome[tag] = b.append(records(2, tag))
            except LedgerError as exc:
                outcome[tag] = exc

        def run(tags: list[str]) -> None:
            threads = [threading.Thread(target=work, args=(tag,)) for tag in tags]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)

        lead = threading.Thread(target=work, args=("first",))
        lead.start()
        assert first.wait(10)
        run(["failed0", "failed1", "failed2"])  # gathered in row 2, which fails
        lead.join(30)
        run(["after0", "after1"])
        assert sizes[:2] == [2, 6], sizes
        for tag in ("failed0", "failed1", "failed2"):
            assert isinstance(outcome[tag], LedgerError) and "went away" in str(outcome[tag])
        written = [outcome[tag] for tag in ("first", "after0", "after1")]
        _check_receipts(a, written)
        assert a.size() == 1 + 3 * 2 and a.verify().ok  # nothing of the failed row was written
    finally:
        b.close()
        a.close()


def test_own_appends_no_commit_took_are_queued_when_the_leader_loses_its_connection(tmp_path, postgres):
    # A writer holds the write lock, so the leader's commit waits before it
    # takes anything; its connection is then cut. The append it was given
    # is handed back, queued, and appended by whoever leads next: once.
    # (A commit that reads the queue first: the leader's last commit is
    # forgotten, so it cannot write at the size that commit left.)
    url, a, b = _two_nodes(tmp_path, postgres)
    blocker, watcher = psycopg.connect(url), psycopg.connect(url, autocommit=True)
    got: list = []
    try:
        a.sequencer.appender.forget_tail()
        blocker.execute("SELECT pg_advisory_xact_lock(%s)", (pgstore.WRITE_LOCK,))
        worker = threading.Thread(target=lambda: got.append(a.append(records(3, "handed back"))))
        worker.start()
        pid = _wait_for_lock_waiter(watcher)  # the leader's commit waits for the write lock
        assert a.sequencer._own  # given to the leader, not yet taken
        watcher.execute("SELECT pg_terminate_backend(%s)", (pid,))
        blocker.commit()
        worker.join(30)
        assert not worker.is_alive()
        (batch,) = got
        assert [r.index for r in batch] == [1, 2, 3] and a.size() == 4
        _check_receipts(a, got)
        assert a.verify().ok
    finally:
        blocker.close()
        watcher.close()
        b.close()
        a.close()


def test_the_sequencer_survives_an_unexpected_error(tmp_path, postgres, monkeypatch, caplog):
    # Not a database error: a bug in the commit path. The thread logs it,
    # starts again on a new connection, and the append it held goes through
    # (queued, or taken by the new lead): once, in order.
    url = postgres.create_database(f"backends_{next(_names)}")
    a = Ledger.open_dir(tmp_path / "a", origin=ORIGIN, database=url)
    try:
        a.append(records(1))
        real, calls = a.sequencer._commit_once, []

        def once_broken(conn):
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("injected bug")
            return real(conn)

        caplog.set_level("ERROR", logger="labelcheck.ledger.sequencer")
        monkeypatch.setattr(a.sequencer, "_commit_once", once_broken)  # the next call: this append's, or an idle try
        got = [a.append(records(2, "after the bug"))]
        deadline = time.monotonic() + 10
        while "injected bug" not in caplog.text or len(calls) < 2:  # logged, and the thread ran again
            assert time.monotonic() < deadline, f"not logged, or the thread never ran again: {caplog.text!r} {calls}"
            time.sleep(0.02)
        assert a.sequencer._thread.is_alive()
        assert [r.index for r in got[0]] == [1, 2] and a.size() == 3
        _check_receipts(a, got)
        got.append(a.append(records(1, "later")))
        assert got[1][0].index == 3 and a.verify().ok
    finally:
        a.close()


def _wait_for_lock_waiter(watcher, statement: str = "pg_advisory_xact_lock", other_than: int = 0) -> int:
    """The server pid (not ``other_than``) of the session whose ``statement`` waits for a lock."""
    deadline = time.monotonic() + 10
    while True:
        row = watcher.execute("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                              "AND query LIKE %s AND pid <> %s", (f"%{statement}%", other_than)).fetchone()
        if row is not None:
            return row[0]
        assert time.monotonic() < deadline, f"no {statement} ever waited for a lock"
        time.sleep(0.02)


def test_the_leaders_own_appends_go_out_in_one_round_trip_and_a_commit_cut_off_unwritten_is_made_again(
        tmp_path, postgres, caplog):
    # Nothing queued: the leader's own append is written at the size its last
    # commit left, without reading the queue or the tail, so it is taken at
    # once and waits for the write lock inside its commit. The connection is
    # cut there: the append fails (its commit's outcome is the server's to
    # tell, and the error says it is unknown), nothing was written, and the
    # next append goes on from the tail.
    url = postgres.create_database(f"backends_{next(_names)}")
    a = Ledger.open_dir(tmp_path / "a", origin=ORIGIN, database=url)
    blocker, watcher = psycopg.connect(url), psycopg.connect(url, autocommit=True)
    got: list = []
    try:
        a.sequencer.poll = 60.0  # no idle try of the queue may take the write lock first (it holds no append)
        time.sleep(2 * POLL)  # a wait begun with the old poll has ended
        a.append(records(1))
        a.append(records(1))  # the first commit read the queue; this one need not
        assert a.sequencer.appender.tail_size() == 2
        blocker.execute("SELECT pg_advisory_xact_lock(%s)", (pgstore.WRITE_LOCK,))

        def work() -> None:
            got.append(a.append(records(3, "in flight")))

        worker = threading.Thread(target=work)
        worker.start()
        pid = _wait_for_lock_waiter(watcher)
        assert not a.sequencer._own  # taken by a commit that read nothing
        a.sequencer.poll = POLL
        with caplog.at_level("WARNING", logger="labelcheck.ledger.sequencer"):
            watcher.execute("SELECT pg_terminate_backend(%s)", (pid,))
            blocker.commit()
            worker.join(30)
        assert not worker.is_alive() and [r.index for r in got[0]] == [2, 3, 4]
        assert "was not written; its appends are queued again" in caplog.text
        _check_receipts(a, got)
        (receipt,) = a.append(records(1, "after"))
        assert receipt.index == 5 and a.verify().ok
        assert _tags(a, 2, 6) == ["in flight"] * 3 + ["after"]
    finally:
        blocker.close()
        watcher.close()
        a.close()


def test_a_leader_cut_off_before_its_commit_went_out_queues_its_own_append_again(
        tmp_path, postgres, monkeypatch, caplog):
    # Its session was ended while it stood still (a follower ends a leader
    # silent past its lease), and the leader learns of it only as its next
    # commit writes. No COMMIT went out, so nothing was written: its own
    # append is handed back, queued and committed once, not failed.
    url = postgres.create_database(f"backends_{next(_names)}")
    a = Ledger.open_dir(tmp_path / "a", origin=ORIGIN, database=url)
    watcher = psycopg.connect(url, autocommit=True)
    try:
        a.sequencer.poll = 60.0  # no idle statement finds the cut first
        time.sleep(2 * POLL)  # a wait begun with the old poll has ended
        a.append(records(1))
        a.append(records(1))
        assert a.sequencer.appender.tail_size() == 2  # the next commit reads nothing before it writes
        real, cut = a.sequencer.store.put_entry_run, []

        def put_entry_run(conn, first, datas):
            if not cut:
                cut.append(conn.info.backend_pid)
                watcher.execute("SELECT pg_terminate_backend(%s)", cut)
                deadline = time.monotonic() + 10
                while watcher.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", cut).fetchone():
                    assert time.monotonic() < deadline, "the session was not ended"
                    time.sleep(0.02)
                a.sequencer.poll = POLL  # connecting again waits that long
            return real(conn, first, datas)

        monkeypatch.setattr(a.sequencer.store, "put_entry_run", put_entry_run)
        with caplog.at_level("WARNING", logger="labelcheck.ledger.sequencer"):
            got = a.append(records(3, "in flight"))
        assert cut and [r.index for r in got] == [2, 3, 4]
        assert "retrying" in caplog.text  # the sequencer saw the cut and connected again
        assert a.size() == 5 and a.verify().ok
        _check_receipts(a, [got])
        tags = _tags(a, 0, 5)
        assert tags.count("in flight") == 3  # once each
    finally:
        watcher.close()
        a.close()


def test_a_commit_whose_reply_was_lost_is_found_written_and_acknowledged_once(tmp_path, postgres, caplog):
    # The server applied the commit, and the connection was cut before its
    # reply reached the leader. Once that session is gone, the log holds the
    # commit's leaf hashes at its indexes: the append gets its receipts from
    # that commit and is not queued again (no duplicate).
    relay = pg.CuttingRelay(postgres.create_database(f"backends_{next(_names)}"))
    a = Ledger.open_dir(tmp_path / "a", origin=ORIGIN, database=relay.url)
    try:
        a.append(records(1))  # through the queue, should it come before this node leads:
        a.append(records(1))  # then every reply to the leader up to this one's has come through
        # The server's CommandComplete for the next commit that appends (not
        # for an idle try of the queue, which writes nothing).
        relay.arm(b"COMMIT\x00", after=b"INSERT 0 1")
        with caplog.at_level("WARNING", logger="labelcheck.ledger.sequencer"):
            got = a.append(records(3, "answer lost"))
        assert relay.cut.is_set() and "a commit was written" in caplog.text
        assert [r.index for r in got] == [2, 3, 4] and a.size() == 5
        _check_receipts(a, [got])
        (receipt,) = a.append(records(1, "after"))
        assert receipt.index == 5 and a.verify().ok
    finally:
        a.close()
        relay.close()


def test_a_commit_cut_off_while_the_database_stays_out_of_reach_says_its_outcome_is_unknown(
        tmp_path, postgres, monkeypatch):
    # The reply lost, and no connection to be had to read the log: after
    # cut_off.TIMEOUT the append fails, and says it may have been written.
    monkeypatch.setattr(cut_off, "TIMEOUT", 1.0)
    relay = pg.CuttingRelay(postgres.create_database(f"backends_{next(_names)}"))
    a = Ledger.open_dir(tmp_path / "a", origin=ORIGIN, database=relay.url)
    try:
        a.append(records(1))  # through the queue, should it come before this node leads:
        a.append(records(1))  # then every reply to the leader up to this one's has come through
        relay.arm(b"COMMIT\x00", after=b"INSERT 0 1", then_refuse=True)
        start = time.monotonic()
        with pytest.raises(LedgerError, match="whether the commit was written is unknown"):
            a.append(records(2, "unknown"))
        assert relay.cut.is_set() and time.monotonic() - start < 10
    finally:
        a.close()


@pytest.mark.parametrize("lost", ["query", "reply"])
def test_a_node_whose_queueing_was_cut_off_finds_its_row_or_queues_it_again(tmp_path, postgres, lost, caplog):
    # The connection breaks while a node queues its records: the INSERT lost
    # on the way (no row), or its reply (the row in, committed on its own).
    # Once the session that sent it is gone, the node looks for the row by
    # its token, and waits for it or queues it again: appended once.
    url = postgres.create_database(f"backends_{next(_names)}")
    relay = pg.CuttingRelay(url)
    a, b = pg.two_nodes(tmp_path, url, ORIGIN, records(1), second_url=relay.url)
    try:
        b.append(records(1, "before"))  # its queueing connection is open
        relay.arm(b"pg_notify\x00" if lost == "reply" else b"pg_notify(", replies=lost == "reply")
        got = b.append(records(3, "cut off"))
        assert relay.cut.is_set()
        assert [r.index for r in got] == [2, 3, 4] and b.size() == 5
        _check_receipts(b, [got])
        assert _tags(a, 0, 5) == ["r", "before"] + ["cut off"] * 3
        (receipt,) = b.append(records(1, "after"))
        assert receipt.index == 5 and a.verify().ok
    finally:
        b.close()
        a.close()
        relay.close()


def test_a_commit_at_a_stale_size_is_made_again_after_reading_the_tail(tmp_path, postgres, caplog):
    # Another writer appends behind the leader's back (as a leader that lost
    # its lock unknowingly would): the leader's next commit, written at the
    # size its own last commit left, finds the index taken, fails whole, and
    # is made again from the tail read back: no fork, no lost append.
    url = postgres.create_database(f"backends_{next(_names)}")
    a = Ledger.open_dir(tmp_path / "a", origin=ORIGIN, database=url)
    other = None
    try:
        a.append(records(1))
        a.append(records(1))
        assert a.sequencer.appender.tail_size() == 2
        store = pgstore.PgStore(url)
        other = GroupCommit(store, sign=a.sequencer.appender.sign, group=False)
        other.append([entry_parts(r) for r in records(2, "behind its back")])
        with caplog.at_level("WARNING", logger="labelcheck.ledger.sequencer"):
            batch = a.append(records(3, "stale"))
        assert "another writer appended" in caplog.text
        assert [r.index for r in batch] == [4, 5, 6] and a.size() == 7
        _check_receipts(a, [batch])
        assert a.verify().ok
        assert a.sequencer.appender.tail_size() == 7
    finally:
        if other is not None:
            other.store.close()
        a.close()


@pytest.mark.parametrize("text", ["not json", '{"not": "a list"}', '[{"kind": "x", "n": 1.5}]'])
def test_a_queued_row_that_does_not_encode_is_marked_and_holds_nothing_up(tmp_path, postgres, text):
    # A row written by hand (or by a broken node): the commit that takes it
    # fails, every append in that commit gets the error, the row is marked,
    # and nothing waits for ever: the next append goes through. (The leader
    # used to retry such a row for ever, and lost its own appends to it.)
    url = postgres.create_database(f"backends_{next(_names)}")
    a = Ledger.open_dir(tmp_path / "a", origin=ORIGIN, database=url)
    writer = psycopg.connect(url, autocommit=True)
    try:
        a.append(records(1))
        qid = writer.execute("INSERT INTO ledger_queue(records) VALUES (%s) RETURNING id", (text,)).fetchone()[0]
        writer.execute("SELECT pg_notify('ledger_queue', '')")
        deadline = time.monotonic() + 10
        while writer.execute("SELECT error FROM ledger_queue WHERE id = %s", (qid,)).fetchone()[0] is None:
            assert time.monotonic() < deadline, "the bad row was never marked"
            time.sleep(0.05)
        done: list = []
        worker = threading.Thread(target=lambda: done.append(a.append(records(2, "after"))))
        worker.start()
        worker.join(15)
        assert not worker.is_alive(), "an append after the bad row never finished"
        assert [r.index for r in done[0]] == [1, 2] and a.verify().ok
    finally:
        writer.close()
        a.close()


def test_entries_holding_a_needle_are_read_in_order_from_either_store(target):
    """What the claim index reads to follow a shared log: only the entries
    holding the bytes asked for, in index order, within the range."""
    with open_ledger(target) as led:
        for batch in range(6):  # runs of several commits, claims here and there
            led.append([{"kind": "claim" if (batch * 7 + i) % 5 == 0 else "verification", "n": batch * 7 + i}
                        for i in range(7)])
        store = led.store
        every = [(i, json.loads(d)) for i, d in store.entries_holding(b'"kind":"claim"', 0, 42)]
        assert [i for i, _ in every] == [i for i in range(42) if i % 5 == 0]
        assert all(value["kind"] == "claim" and value["n"] == i for i, value in every)
        assert [i for i, _ in store.entries_holding(b'"kind":"claim"', 11, 31)] == [15, 20, 25, 30]
        assert list(store.entries_holding(b'"no such bytes"', 0, 42)) == []
        if isinstance(store, pgstore.PgStore):  # across the chunks it reads by
            assert [i for i, _ in store.entries_holding(b'"kind":"claim"', 0, 42, chunk=2)] == list(range(0, 42, 5))
