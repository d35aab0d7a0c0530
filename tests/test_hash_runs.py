"""The SQLite ledger's stored hashes in runs (ledger/hash_runs.py): one row
per commit, schema 1 files (one hash per row) still read and upgraded, and a
damaged table read the same way by every reader."""

from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner

from labelcheck.cli import main
from labelcheck.ledger import Ledger, LedgerError, merkle, note
from labelcheck.ledger import hash_runs
from labelcheck.ledger.store import Store, StoreError

ORIGIN = "runs.labelcheck.example/log"


def rows(path):
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT id, length(hash) FROM hashes ORDER BY id").fetchall()
    finally:
        db.close()


def schema(path):
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0]
    finally:
        db.close()


def test_each_commit_stores_its_hashes_in_one_row(tmp_path):
    with Ledger.open_dir(tmp_path, origin=ORIGIN) as led:
        for size in (1, 7, 100, 1):
            led.append([{"n": i} for i in range(size)])
        assert led.verify().ok
    counts = [merkle.stored_hash_count(n) for n in (0, 1, 8, 108, 109)]
    assert rows(tmp_path / "ledger.db") == [(a, (b - a) * 32) for a, b in zip(counts, counts[1:])]
    assert schema(tmp_path / "ledger.db") == "3"
    store = Store(tmp_path / "ledger.db", create=False)
    try:  # to the end, as the scan began (``end`` None)
        assert [i for i, _ in store.iter_rows("hashes", 3)] == list(range(3, counts[-1]))
    finally:
        store.close()


def _to_schema_1(path):
    """Rewrite a ledger as labelcheck wrote schema 1: one stored hash per row."""
    db = sqlite3.connect(path)
    got = list(hash_runs.scan(db, 0, 1 << 62, 1000))
    db.executescript("DROP TRIGGER hashes_no_delete; DROP TRIGGER meta_no_update; DELETE FROM hashes;"
                     "UPDATE meta SET value = '1' WHERE key = 'schema';")
    db.executemany("INSERT INTO hashes(id, hash) VALUES (?, ?)", got)
    db.commit()
    db.close()
    return got


def test_a_schema_1_ledger_reads_the_same_and_is_marked_3_when_opened_to_write(tmp_path):
    with Ledger.open_dir(tmp_path, origin=ORIGIN) as led:
        led.append([{"n": i} for i in range(13)])
        led.append([{"n": i} for i in range(5)])
        proofs = [led.inclusion_proof(i, 18) for i in range(18)], led.consistency_proof(13, 18)
    stored = _to_schema_1(tmp_path / "ledger.db")
    assert len(stored) == merkle.stored_hash_count(18) == len(rows(tmp_path / "ledger.db"))
    store = Store(tmp_path / "ledger.db", create=False)  # read only: left as it is
    try:
        assert store.read_hashes([i for i, _ in stored]) == [h for _, h in stored]
    finally:
        store.close()
    assert schema(tmp_path / "ledger.db") == "1"
    with Ledger.open_dir(tmp_path, origin=ORIGIN) as led:
        assert ([led.inclusion_proof(i, 18) for i in range(18)], led.consistency_proof(13, 18)) == proofs
        led.append([{"n": 99}])
        assert led.verify().ok and led.size() == 19
    assert schema(tmp_path / "ledger.db") == "3"
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):  # the trigger is back
        db = sqlite3.connect(tmp_path / "ledger.db")
        try:
            db.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
        finally:
            db.close()


def test_a_schema_from_a_later_labelcheck_is_refused(tmp_path):
    Ledger.open_dir(tmp_path, origin=ORIGIN).close()
    db = sqlite3.connect(tmp_path / "ledger.db")
    db.executescript("DROP TRIGGER meta_no_update; UPDATE meta SET value = '4' WHERE key = 'schema';")
    db.close()
    with pytest.raises(LedgerError, match="ledger schema '4', this labelcheck reads 1, 2 and 3"):
        Ledger.open_dir(tmp_path, origin=ORIGIN)


@pytest.fixture
def table(tmp_path):
    db = sqlite3.connect(tmp_path / "t.db")
    db.execute("CREATE TABLE hashes(id INTEGER PRIMARY KEY, hash BLOB NOT NULL)")
    yield db
    db.close()


def h(i: int) -> bytes:
    return bytes([i]) * 32


@pytest.mark.parametrize("width", [1, 2, 3, 5, 100])
def test_scan_read_and_count_agree_on_runs_of_any_length(table, width):
    for first, n in ((0, 1), (1, 4), (5, 2), (7, 9), (16, 1)):
        hash_runs.put(table, first, b"".join(h(i) for i in range(first, first + n)))
    assert hash_runs.count(table) == 17
    assert list(hash_runs.scan(table, 0, 17, width)) == [(i, h(i)) for i in range(17)]
    for lo, hi in ((0, 0), (3, 4), (2, 11), (6, 17), (16, 40), (17, 20)):
        assert list(hash_runs.scan(table, lo, hi, width)) == [(i, h(i)) for i in range(lo, min(hi, 17))]
    assert hash_runs.read(table, [16, 3, 0, 3, 17, 99]) == {16: h(16), 3: h(3), 0: h(0)}


@pytest.mark.parametrize("width", [1, 4, 100])
def test_a_damaged_table_reads_the_same_through_every_reader(table, width):
    """Overlapping runs (a row inserted inside another's run), a run cut short
    of a whole hash, and a gap: each reader sees the same hashes."""
    hash_runs.put(table, 0, b"".join(h(i) for i in range(6)))
    hash_runs.put(table, 3, h(33))  # inside the first run: it ends where this begins
    hash_runs.put(table, 4, h(4) + b"\x05" * 10)  # 1.3 hashes: no hash 5
    hash_runs.put(table, 8, h(8) + h(9))  # 5..7 missing
    seen = dict(hash_runs.scan(table, 0, 20, width))
    assert seen == {0: h(0), 1: h(1), 2: h(2), 3: h(33), 4: h(4), 8: h(8), 9: h(9)}
    assert hash_runs.read(table, list(range(20))) == seen
    assert hash_runs.count(table) == 10


def test_damage_inside_a_run_is_named_by_verify_and_at_start_up(tmp_path):
    with Ledger.open_dir(tmp_path, origin=ORIGIN) as led:
        led.append([{"n": i} for i in range(40)])
        vkey = led.verifier_key
    db = sqlite3.connect(tmp_path / "ledger.db")
    (blob,) = db.execute("SELECT hash FROM hashes WHERE id = 0").fetchone()
    db.executescript("DROP TRIGGER hashes_no_update;")
    db.execute("UPDATE hashes SET hash = ? WHERE id = 0", (blob[:-7],))  # the last hash cut short
    db.commit()
    db.close()
    result = CliRunner().invoke(main, ["ledger", "verify", "--db", str(tmp_path / "ledger.db"), "--vkey", vkey])
    last = merkle.stored_hash_count(40) - 1
    assert result.exit_code == 1 and f"stored hash {last}" in result.output and "is missing" in result.output
    with pytest.raises(LedgerError, match=f"40 entries need {last + 1} stored hashes, found {last}"):
        Ledger.open_dir(tmp_path, origin=ORIGIN)
    store = Store(tmp_path / "ledger.db", create=False)
    try:
        with pytest.raises(StoreError, match=f"stored hash {last} is missing"):
            store.read_hashes([0, last])
    finally:
        store.close()
    assert note.Verifier.from_vkey(vkey)  # the key itself was never the problem


def test_a_far_id_in_a_damaged_table_is_reached_in_one_step(table):
    """A run starting far past the tree (inserted by hand): a scan reaches it
    in one step, not a window of ids at a time."""
    hash_runs.put(table, 0, h(0) + h(1))
    hash_runs.put(table, 10**15, h(9))
    assert hash_runs.count(table) == 10**15 + 1
    assert list(hash_runs.scan(table, 0, 10**15 + 1, 1000)) == [(0, h(0)), (1, h(1)), (10**15, h(9))]
