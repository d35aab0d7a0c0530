"""The SQLite ledger's entries in runs (ledger/entry_runs.py): one row per
commit keyed by its last index, schema 2 files (one entry per row) still
read and upgraded, and a damaged table read the same way by every reader
and named by verify."""

from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner
from entry_edits import split_runs
from hypothesis import given, settings, strategies as st
from test_hash_runs import schema

from labelcheck.cli import main
from labelcheck.ledger import Ledger, LedgerError, entry_runs
from labelcheck.ledger.store import Store, StoreError

ORIGIN = "runs.labelcheck.example/log"


def rows(path):
    db = sqlite3.connect(path)
    try:
        return [(k, bytes(d).count(b"\n") + 1) for k, d in db.execute("SELECT idx, data FROM entries ORDER BY idx")]
    finally:
        db.close()


def test_each_commit_stores_its_entries_in_one_row_keyed_by_its_last_index(tmp_path):
    with Ledger.open_dir(tmp_path, origin=ORIGIN) as led:
        for size in (1, 7, 100, 1):
            led.append([{"n": i} for i in range(size)])
        assert led.verify().ok
        everything = led.entries(0, 109)
        assert [led.entries(i, i + 1)[0] for i in range(109)] == everything
        assert led.entries(5, 60) == everything[5:60]
    assert rows(tmp_path / "ledger.db") == [(0, 1), (7, 7), (107, 100), (108, 1)]
    assert schema(tmp_path / "ledger.db") == "3"
    store = Store(tmp_path / "ledger.db", create=False)
    try:  # to the end, as the scan began (``end`` None), from inside a run
        assert [d for _, d in store.iter_rows("entries", 3)] == everything[3:]
        assert [i for i, _ in store.iter_rows("entries", 3, 9, chunk=2)] == list(range(3, 9))
        assert store.size() == 109
    finally:
        store.close()


def _to_schema_2(path):
    """Rewrite a ledger as labelcheck wrote schema 2: one entry per row."""
    db = sqlite3.connect(path)
    db.executescript("DROP TRIGGER entries_no_delete; DROP TRIGGER meta_no_update;"
                     "UPDATE meta SET value = '2' WHERE key = 'schema';")
    split_runs(db)
    got = [d for _, d in entry_runs.scan(db, 0, 1 << 62, 1000)]
    db.commit()
    db.close()
    return got


def test_a_schema_2_ledger_reads_the_same_and_is_marked_3_when_opened_to_write(tmp_path):
    with Ledger.open_dir(tmp_path, origin=ORIGIN) as led:
        led.append([{"n": i} for i in range(13)])
        led.append([{"n": i} for i in range(5)])
        before = led.entries(0, 18)
    assert _to_schema_2(tmp_path / "ledger.db") == before
    assert rows(tmp_path / "ledger.db") == [(i, 1) for i in range(18)]
    store = Store(tmp_path / "ledger.db", create=False)  # read only: left as it is
    try:
        assert store.entries(0, 18) == before and store.size() == 18
    finally:
        store.close()
    assert schema(tmp_path / "ledger.db") == "2"
    with Ledger.open_dir(tmp_path, origin=ORIGIN) as led:
        assert led.entries(0, 18) == before
        led.append([{"n": 99}, {"n": 100}])
        assert led.verify().ok and led.size() == 20
    assert schema(tmp_path / "ledger.db") == "3"
    assert rows(tmp_path / "ledger.db")[-2:] == [(17, 1), (19, 2)]


@pytest.fixture
def table():
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE entries(idx INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    yield db
    db.close()


def e(i: int) -> bytes:
    return b'{"i":%d}' % i


@pytest.mark.parametrize("width", [1, 2, 3, 5, 100])
def test_scan_and_read_agree_on_runs_of_any_length(table, width):
    for first, n in ((0, 1), (1, 4), (5, 2), (7, 9), (16, 1)):
        entry_runs.put(table, first, [e(i) for i in range(first, first + n)])
    assert list(entry_runs.scan(table, 0, 17, width)) == [(i, e(i)) for i in range(17)]
    for lo, hi in ((0, 0), (3, 4), (2, 11), (6, 17), (16, 40), (17, 20), (9, 3)):
        want = [(i, e(i)) for i in range(lo, min(hi, 17))]
        assert list(entry_runs.scan(table, lo, hi, width)) == want
        assert entry_runs.read(table, lo, hi) == want


@pytest.mark.parametrize("sizes", [[10] * 30, [70, 3, 200, 1, 1, 90, 40], [300], [0, 0, 0], [150, 150]])
def test_a_long_commit_is_cut_into_runs_of_run_bytes(table, monkeypatch, sizes):
    """At most RUN_BYTES a row, unless one entry alone is longer; read back the same."""
    monkeypatch.setattr(entry_runs, "RUN_BYTES", 100)
    datas = [b"%d" % i + b"x" * max(0, n - 1) for i, n in enumerate(sizes)]
    entry_runs.put(table, 3, datas)
    stored = table.execute("SELECT idx, data FROM entries ORDER BY idx").fetchall()
    assert stored[-1][0] == 3 + len(datas) - 1
    assert all(len(d) <= 100 or b"\n" not in d for _, d in stored)
    assert len(stored) == 1 or sum(map(len, datas)) + len(datas) - 1 > 100
    assert entry_runs.read(table, 0, 50) == list(enumerate(datas, 3))
    assert [entry_runs.read(table, i, i + 1) for i in range(3, 3 + len(datas))] == [[e] for e in enumerate(datas, 3)]


def test_a_run_is_refused_over_stored_indexes_or_with_a_line_break(table):
    entry_runs.put(table, 0, [e(0), e(1)])
    with pytest.raises(ValueError, match="entry 1 is stored already"):
        entry_runs.put(table, 1, [e(1), e(2)])
    with pytest.raises(ValueError, match="not one line"):
        entry_runs.put(table, 2, [e(2), b'{"i":\n3}'])
    entry_runs.put(table, 2, [])  # nothing to write
    assert entry_runs.read(table, 0, 10) == [(0, e(0)), (1, e(1))]


def test_a_damaged_table_reads_the_same_through_every_reader(table):
    """A run with more lines than it covers (a row inserted inside another's
    run), a run with fewer (a gap), and a line break added inside a run:
    each reader sees the same entries."""
    table.execute("INSERT INTO entries VALUES (5, ?)", (b"\n".join(e(i) for i in range(6)),))
    table.execute("INSERT INTO entries VALUES (2, ?)", (e(22),))  # inside the first run: it now covers 3..5
    table.execute("INSERT INTO entries VALUES (9, ?)", (e(8) + b"\n" + e(9),))  # 6 and 7 missing
    table.execute("INSERT INTO entries VALUES (11, ?)", (b"x\ny\nz",))  # three lines for 10..11: "x" is not read
    seen = {2: e(22), 3: e(3), 4: e(4), 5: e(5), 8: e(8), 9: e(9), 10: b"y", 11: b"z"}
    for width in (1, 3, 100):
        assert dict(entry_runs.scan(table, 0, 20, width)) == seen
    assert dict(entry_runs.read(table, 0, 20)) == seen
    assert all(dict(entry_runs.read(table, lo, lo + 2)) == {i: d for i, d in seen.items() if lo <= i < lo + 2}
               for lo in range(12))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 30)), max_size=8),
       st.integers(0, 45), st.integers(0, 45), st.integers(1, 7))
def test_read_and_scan_agree_on_any_layout(layout, start, end, width):
    """Whatever rows a table holds (runs longer or shorter than their cover),
    read and scan give the same entries, each the line its row aligns to it."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE entries(idx INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    for key, n in dict(layout).items():
        db.execute("INSERT INTO entries VALUES (?, ?)", (key, b"\n".join(b"%d.%d" % (key, j) for j in range(n))))
    keys = sorted(dict(layout))
    want = []
    for prev, key in zip([-1] + keys, keys):
        n = dict(layout)[key]
        lines = [b"%d.%d" % (key, j) for j in range(n)] or [b""]  # an empty blob is one empty line
        for i in range(max(prev + 1, key - len(lines) + 1, start), min(key + 1, end)):
            want.append((i, lines[len(lines) - 1 - (key - i)]))
    got = entry_runs.read(db, start, end)
    assert got == want
    assert list(entry_runs.scan(db, start, end, width)) == want
    for i in range(start, min(end, start + 3)):  # single entries: found from their run's end
        assert entry_runs.read(db, i, i + 1) == [w for w in want if w[0] == i]
    db.close()


# --- damage found -----------------------------------------------------------------


@pytest.fixture
def damaged(tmp_path):
    """A ledger of 30 entries in commits of 20 and 10, and a way to edit its rows."""
    with Ledger.open_dir(tmp_path, origin=ORIGIN) as led:
        led.append([{"tag": "abc", "n": i} for i in range(20)])
        led.append([{"tag": "abc", "n": i} for i in range(20, 30)])
        vkey = led.verifier_key
    db = sqlite3.connect(tmp_path / "ledger.db")
    db.execute("DROP TRIGGER entries_no_update")
    (run,) = db.execute("SELECT data FROM entries WHERE idx = 19").fetchone()

    def edit(lines: list[bytes]) -> tuple[int, str]:
        db.execute("UPDATE entries SET data = ? WHERE idx = 19", (b"\n".join(lines),))
        db.commit()
        db.close()
        done = CliRunner().invoke(main, ["ledger", "verify", "--db", str(tmp_path / "ledger.db"), "--vkey", vkey])
        return done.exit_code, done.output

    return bytes(run).split(b"\n"), edit


def test_a_changed_byte_inside_a_run_is_named(damaged):
    lines, edit = damaged
    lines[7] = lines[7].replace(b"abc", b"abd")
    code, out = edit(lines)
    assert code == 1 and "entry 7: its bytes do not match its stored leaf hash" in out


def test_an_entry_slipped_into_a_run_is_named(damaged):
    """A forged line inside a run shifts the lines before it down an index."""
    lines, edit = damaged
    code, out = edit(lines[:10] + [b'{"forged":true}'] + lines[10:])
    assert code == 1 and "entry 0: carries index 1: entries are out of order, missing or inserted" in out


def test_a_line_dropped_from_a_run_leaves_an_entry_missing(damaged):
    lines, edit = damaged
    code, out = edit(lines[:4] + lines[5:])
    assert code == 1 and "entry 0 is missing (the next stored entry is 1)" in out


def test_a_run_cut_short_at_its_end_is_caught_at_start_up(tmp_path):
    with Ledger.open_dir(tmp_path, origin=ORIGIN) as led:
        led.append([{"n": i} for i in range(10)])
    db = sqlite3.connect(tmp_path / "ledger.db")
    db.executescript("DROP TRIGGER entries_no_update;")
    (run,) = db.execute("SELECT data FROM entries WHERE idx = 9").fetchone()
    db.execute("UPDATE entries SET data = ? WHERE idx = 9", (bytes(run).rsplit(b"\n", 1)[0],))
    db.commit()
    db.close()
    with pytest.raises(LedgerError, match="damaged"):
        Ledger.open_dir(tmp_path, origin=ORIGIN)
    store = Store(tmp_path / "ledger.db", create=False)
    try:
        with pytest.raises(StoreError, match="entry 0 is missing"):
            store.entries(0, 10)
    finally:
        store.close()


def test_a_far_key_in_a_damaged_table_is_reached_in_one_step(table):
    """A row keyed far past the log (inserted by hand) makes the log look that
    long: a scan reaches it in one step, not a window of keys at a time."""
    entry_runs.put(table, 0, [e(0), e(1)])
    table.execute("INSERT INTO entries VALUES (?, ?)", (10**15, e(99)))
    assert list(entry_runs.scan(table, 0, 10**15 + 1, 1000)) == [(0, e(0)), (1, e(1)), (10**15, e(99))]
    assert entry_runs.read(table, 1, 10**15 + 1) == [(1, e(1)), (10**15, e(99))]
