"""The sequencer's lock is a lease (ledger/lease.py, docs/protocol.md §11): a
leader that stops with its socket open (SIGSTOP, a paused VM, a hang) is
ended by a follower once its session has been silent past the lease, and
another process leads; a live leader, or a holder busy in a statement, is
never ended. On a real PostgreSQL server (tests/pg.py)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from labelcheck.ledger import checkpoint, lease, merkle, note, pgstore, queue_rows
from labelcheck.ledger.log import Ledger
from labelcheck.ledger.sequencer import SEQUENCER_LOCK

ORIGIN = "lease.example/log"
ROOT = Path(__file__).resolve().parents[1]
_names = itertools.count()


@pytest.fixture
def url(postgres):
    return postgres.create_database(f"lease_{next(_names)}")


def _holder(url: str, key: int = SEQUENCER_LOCK) -> psycopg.Connection:
    """A session holding the session-level lock ``key``, then silent."""
    conn = psycopg.connect(url, autocommit=True)
    assert conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
    return conn


def _ended(conn: psycopg.Connection) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False


def test_a_holder_silent_past_its_lease_is_ended_and_one_still_within_it_is_not(url):
    holder = _holder(url)
    with psycopg.connect(url, autocommit=True) as other:
        assert lease.end_stale_holder(other, SEQUENCER_LOCK, 60.0) == []
        time.sleep(0.6)
        (pid,) = lease.end_stale_holder(other, SEQUENCER_LOCK, 0.5)
        assert pid == holder.info.backend_pid
        deadline = time.monotonic() + 5
        while other.execute("SELECT pg_try_advisory_lock(%s)", (SEQUENCER_LOCK,)).fetchone()[0] is False:
            assert time.monotonic() < deadline, "the lock was not released"
            time.sleep(0.05)
    assert _ended(holder)


def test_a_holder_inside_a_transaction_has_twice_the_lease(url):
    holder = _holder(url)
    holder.execute("BEGIN")
    holder.execute("SELECT 1")
    with psycopg.connect(url, autocommit=True) as other:
        time.sleep(0.7)
        assert lease.end_stale_holder(other, SEQUENCER_LOCK, 0.5) == []  # idle in a transaction 0.7 s < 1 s
        time.sleep(0.5)
        assert lease.end_stale_holder(other, SEQUENCER_LOCK, 0.5) == [holder.info.backend_pid]
    assert _ended(holder)


def test_a_holder_busy_in_a_statement_is_not_ended(url):
    holder = _holder(url)
    busy = threading.Thread(target=lambda: holder.execute("SELECT pg_sleep(1.5)"))
    busy.start()
    try:
        with psycopg.connect(url, autocommit=True) as other:
            time.sleep(1.0)
            assert lease.end_stale_holder(other, SEQUENCER_LOCK, 0.3) == []
    finally:
        busy.join()
    assert not _ended(holder)
    holder.close()


def test_only_the_holder_of_that_lock_in_that_database_is_ended(url, postgres):
    elsewhere = postgres.create_database(f"lease_{next(_names)}")
    other_key, other_db = _holder(url, SEQUENCER_LOCK + 1), _holder(elsewhere)
    idle = psycopg.connect(url, autocommit=True)  # silent too, holding nothing
    time.sleep(0.5)
    with psycopg.connect(url, autocommit=True) as other:
        assert lease.end_stale_holder(other, SEQUENCER_LOCK, 0.2) == []
    assert not any(_ended(c) for c in (other_key, other_db, idle))
    for c in (other_key, other_db, idle):
        c.close()


def test_a_follower_ends_a_silent_leader_and_sequences_in_its_place(url, tmp_path):
    holder = _holder(url)  # a leader that stopped: it holds the lock and says nothing
    with Ledger.open_dir(tmp_path / "node", origin=ORIGIN, database=url) as led:
        led.sequencer.lease = 1.0
        start = time.monotonic()
        got = led.append([{"kind": "verification", "n": 1}])
        took = time.monotonic() - start
        assert got[0].index == 0 and led.sequencer.leader
        assert took < 4.0, f"took over after {took:.1f} s"
        assert led.verify().ok
    assert _ended(holder)


def test_a_live_leader_keeps_its_lease_through_long_idle_waits(url, tmp_path):
    a = Ledger.open_dir(tmp_path / "a", origin=ORIGIN, database=url)
    try:
        a.append([{"kind": "verification", "n": 0}])
        deadline = time.monotonic() + 10
        while not a.sequencer.leader:
            assert time.monotonic() < deadline, "the first node never led"
            time.sleep(0.02)
        a.sequencer.lease, a.sequencer.poll = 0.6, 30.0  # idle waits far longer than the lease
        since = a.sequencer.led_since
        time.sleep(0.5)  # a wait begun with the old poll has ended
        with psycopg.connect(url, autocommit=True) as other:
            for _ in range(8):
                time.sleep(0.25)
                assert lease.end_stale_holder(other, SEQUENCER_LOCK, 0.6) == []
        assert a.sequencer.leader and a.sequencer.led_since == since
        assert a.append([{"kind": "verification", "n": 1}])[0].index == 1
    finally:
        a.close()


_CHILD = """
import sys, time
from labelcheck.ledger import Ledger
led = Ledger.open_dir(sys.argv[1], origin=sys.argv[2], database=sys.argv[3])
led.append([{"kind": "verification", "who": "child", "n": 0}])
while not led.sequencer.leader:
    time.sleep(0.02)
print("leading", flush=True)
for line in sys.stdin:
    (r,) = led.append([{"kind": "verification", "who": "child", "n": int(line)}])
    print(r.index, flush=True)
led.close()
"""


def test_a_stopped_leading_process_is_replaced_and_follows_once_it_runs_again(url, tmp_path):
    # SIGSTOP: the process holds its socket open and its host answers
    # keepalives, so only the lease frees the lock.
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path / "child"), ORIGIN, url],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert child.stdout.readline().strip() == "leading"
        os.kill(child.pid, signal.SIGSTOP)
        (tmp_path / "node").mkdir()  # every node signs with the one ledger key
        key = tmp_path / "node" / "ledger.key"
        key.write_bytes((tmp_path / "child" / "ledger.key").read_bytes())
        key.chmod(0o600)
        with Ledger.open_dir(tmp_path / "node", origin=ORIGIN, database=url) as led:
            led.sequencer.lease = 1.0
            start = time.monotonic()
            (mine,) = led.append([{"kind": "verification", "who": "parent"}])
            assert time.monotonic() - start < 5.0
            os.kill(child.pid, signal.SIGCONT)
            child.stdin.write("1\n")
            child.stdin.flush()
            theirs = int(child.stdout.readline())  # appended again, now through the queue
            assert {mine.index, theirs} == {1, 2} and led.size() == 3
            report = led.verify()
            assert report.ok and report.size == 3, report.summary()
            cp = checkpoint.open_checkpoint(mine.checkpoint, note.Verifier.from_vkey(led.verifier_key), origin=ORIGIN)
            merkle.verify_inclusion(mine.index, cp.size, mine.leaf_hash, mine.inclusion, cp.root)
    finally:
        os.kill(child.pid, signal.SIGCONT)
        child.stdin.close()
        child.wait(30)


def test_a_writer_stopped_inside_its_transaction_holds_the_write_lock_only_until_the_server_ends_it(
        url, tmp_path, monkeypatch):
    # A node's start or ``ledger migrate`` writes outside the sequencer, under
    # the same write lock; stopped inside that transaction, it would hold up
    # every commit for as long as it stays stopped.
    monkeypatch.setattr(pgstore, "STOPPED_WRITER", 1.0)
    with Ledger.open_dir(tmp_path / "node", origin=ORIGIN, database=url) as led:
        led.append([{"kind": "verification", "n": 0}])
        other = pgstore.PgStore(url, create=False)
        inside, errors = threading.Event(), []

        def stopped_writer():
            try:
                with other.write():
                    inside.set()
                    time.sleep(6)  # stopped, its socket open
            except psycopg.Error as exc:
                errors.append(exc)

        writer = threading.Thread(target=stopped_writer)
        writer.start()
        try:
            assert inside.wait(10)
            start = time.monotonic()
            assert led.append([{"kind": "verification", "n": 1}])[0].index == 1
            assert time.monotonic() - start < 4.0
            writer.join(15)
            assert errors, "its session was not ended"
            assert led.verify().ok
        finally:
            writer.join(15)
            other.close()


def test_a_backlog_is_sequenced_in_commits_of_bounded_size(url, tmp_path, monkeypatch):
    # What a commit computes between its statements must stay well within
    # the lease, however long the queue grew: queued rows go in commits of
    # at most MAX_RECORDS records (a larger row alone), in queue order.
    monkeypatch.setattr(queue_rows, "MAX_RECORDS", 5)
    sizes = [3, 1, 1, 2, 7, 1, 3, 2]
    with Ledger.open_dir(tmp_path / "node", origin=ORIGIN, database=url) as led:
        led.append([{"kind": "verification", "n": 0}])  # it leads
        with psycopg.connect(url) as blocker, psycopg.connect(url, autocommit=True) as other:
            blocker.execute("SELECT pg_advisory_xact_lock(%s)", (pgstore.WRITE_LOCK,))  # the backlog grows
            for row, n in enumerate(sizes):
                other.execute("INSERT INTO ledger_queue (records) VALUES (%s)",
                              (json.dumps([{"kind": "verification", "row": row, "k": k} for k in range(n)]),))
            blocker.commit()
            deadline = time.monotonic() + 10
            while other.execute("SELECT count(*) FROM ledger_queue WHERE size IS NULL").fetchone()[0]:
                assert time.monotonic() < deadline, "the backlog was not sequenced"
                time.sleep(0.05)
            commits = other.execute("SELECT size FROM ledger_checkpoints WHERE size > 1 ORDER BY size").fetchall()
        grown = [b - a for a, b in zip([1] + [s for (s,) in commits], [s for (s,) in commits])]
        assert grown == [5, 2, 7, 4, 2]  # 3+1+1, 2 (2+7 > 5), 7 alone, 1+3, 2
        rows = [json.loads(e)["row"] for e in led.entries(1, led.size())]
        assert rows == sorted(rows) and len(rows) == sum(sizes)
        assert led.verify().ok


def test_a_node_starts_while_the_write_lock_is_held(url, tmp_path):
    # A leader stopped inside a commit holds the write lock until another
    # node's sequencer ends its session; a node starting beside it alone
    # must not wait for that lock to start (its sequencer is what ends it).
    with Ledger.open_dir(tmp_path / "first", origin=ORIGIN, database=url) as first:
        first.append([{"kind": "verification", "n": 0}])
        (tmp_path / "node").mkdir()
        key = tmp_path / "node" / "ledger.key"
        key.write_bytes((tmp_path / "first" / "ledger.key").read_bytes())
        key.chmod(0o600)
    holder = psycopg.connect(url)
    opened: list = []
    try:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (pgstore.WRITE_LOCK,))
        starter = threading.Thread(target=lambda: opened.append(Ledger.open_dir(tmp_path / "node", origin=ORIGIN,
                                                                                database=url)))
        starter.start()
        starter.join(10)
        assert opened, "the node waited for the write lock to start"
        assert opened[0].size() == 1
        with pytest.raises(Exception, match="belongs to a ledger with vkey"):  # another key: still refused
            Ledger.open_dir(tmp_path / "stranger", origin=ORIGIN, database=url)
    finally:
        holder.rollback()
        holder.close()
        starter.join(10)
        for led in opened:
            led.close()


def test_a_writer_ends_a_leader_stopped_inside_a_commit_when_no_node_would(url, monkeypatch):
    # A leader stopped inside a commit holds the write lock. With no other
    # node running, a writer outside the sequencer (``ledger migrate``, the
    # first node's start) ends that session once it is past its lease, as a
    # following node would, instead of waiting for ever; a live leader's
    # commit it simply waits for.
    monkeypatch.setattr(lease, "LEASE", 0.5)
    pgstore.PgStore(url).close()  # the tables
    leader = _holder(url)
    leader.execute("BEGIN")
    leader.execute("SELECT pg_advisory_xact_lock(%s)", (pgstore.WRITE_LOCK,))  # then stopped, inside its commit
    store = pgstore.PgStore(url, create=False)
    try:
        start = time.monotonic()
        with store.write() as conn:
            assert conn.execute("SELECT current_setting('lock_timeout')").fetchone() == ("0",)  # as it was
        assert time.monotonic() - start < 5.0
        assert _ended(leader)
        busy = _holder(url)  # a leader in a commit, alive: waited for, not ended
        busy.execute("BEGIN")
        busy.execute("SELECT pg_advisory_xact_lock(%s)", (pgstore.WRITE_LOCK,))

        def live_commit() -> None:  # it speaks within its lease, for longer than the lease, then commits
            for _ in range(6):
                time.sleep(0.2)
                busy.execute("SELECT 1")
            busy.commit()

        threading.Thread(target=live_commit).start()
        start = time.monotonic()
        with store.write():
            pass
        assert time.monotonic() - start >= 1.0  # it waited for that commit
        assert not _ended(busy)
        busy.close()
    finally:
        store.close()
        leader.close()
