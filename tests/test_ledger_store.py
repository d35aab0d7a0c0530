"""The Ledger API: canonical entries, appends, proofs, checkpoints, keys, threads."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import stat
import threading

import pytest

from entry_edits import split_runs
from hash_edits import cut_hashes
from hypothesis import given, settings
from hypothesis import strategies as st

from labelcheck.ledger import Ledger, LedgerDamaged, LedgerError, canonical, merkle, rows
from labelcheck.ledger.checkpoint import open_checkpoint
from labelcheck.ledger.note import Verifier

ORIGIN = "test.example/log"


@pytest.fixture
def led(tmp_path):
    ledger = Ledger.open_dir(tmp_path / "data", origin=ORIGIN)
    yield ledger
    ledger.close()


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


# Canonical JSON -----------------------------------------------------------


def test_canonical_encoding_is_sorted_compact_utf8():
    assert canonical.dumps({"b": [1, True, None], "a": "é\n\"", "c": {"z": -3, "y": ""}}) == (
        '{"a":"é\\n\\"","b":[1,true,null],"c":{"y":"","z":-3}}'.encode()
    )
    value = {"k": ["x", {"n": 2**53 - 1}], "é": False}
    assert canonical.parse(canonical.dumps(value)) == value


@pytest.mark.parametrize(
    "value, words",
    [
        ({"a": 1.5}, "floats"),
        ({"a": float("nan")}, "floats"),
        ({"a": float("inf")}, "floats"),
        ({1: "x"}, "keys must be strings"),
        ({"a": 2**53}, "outside"),
        ({"a": "\ud800"}, "lone surrogate"),
        ({"a": b"bytes"}, "not a JSON value"),
        ({"a": {1, 2}}, "not a JSON value"),
    ],
)
def test_values_without_canonical_form_are_refused(value, words):
    with pytest.raises(canonical.CanonicalError, match=words):
        canonical.dumps(value)


@pytest.mark.parametrize(
    "data",
    [
        b'{"a":1.0}', b'{"a":1e3}', b'{"a":NaN}', b'{"a":-Infinity}',  # no floats or non-finite numbers
        b'{"b":1,"a":2}', b'{"a":1,"a":2}', b'{"a": 1}', b' {"a":1}',  # order, duplicates, white space
        b'{"a":"\\u0041"}', b'{"a":"\\/"}', b'[-0]',  # needless escapes, negative zero
        b'{"a":1}\n', b'\xef\xbb\xbf{"a":1}', b'{"a":"\xff"}', b'', b'{"a":',  # trailing data, BOM, bad UTF-8
    ],
)
def test_parse_accepts_only_the_canonical_bytes(data):
    with pytest.raises(canonical.CanonicalError):
        canonical.parse(data)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(st.characters(blacklist_categories=["Cs"])),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(_json)
def test_canonical_round_trip_property(value):
    data = canonical.dumps(value)
    assert canonical.parse(data) == value
    assert b"\n" not in data  # one entry, one line
    for other in (b" " + data, data + b" ", data + b"\n"):  # other spellings of the same value
        with pytest.raises(canonical.CanonicalError):
            canonical.parse(other)
    if isinstance(value, dict) and len(value) > 1:
        backwards = b"{" + b",".join(canonical.dumps(k) + b":" + canonical.dumps(v)
                                     for k, v in sorted(value.items(), reverse=True)) + b"}"
        with pytest.raises(canonical.CanonicalError, match="canonical form"):
            canonical.parse(backwards)


def _outcome(parse, data):
    try:
        return ("ok", parse(data))
    except canonical.CanonicalError:
        return ("refused", None)


_DEFECTS = ["none", " ", "\n", "\t", "\r", "-0", "escape", "duplicate", "reverse"]


def _spell(value, defect: str, where: int) -> str:
    """A JSON spelling of ``value``, canonical but for ``defect`` applied
    wherever it can be: white space (placed by ``where``), ``-0`` for 0,
    needless escapes, a duplicated member, members in reverse order."""
    ws = defect if defect.isspace() else ""

    def spell(v) -> str:
        if isinstance(v, bool) or v is None:
            return json.dumps(v)
        if isinstance(v, int):
            return "-0" if v == 0 and defect == "-0" else str(v)
        if isinstance(v, str):
            out = json.dumps(v, ensure_ascii=False)
            return out.replace("a", "\\u0061").replace("/", "\\/") if defect == "escape" else out
        if isinstance(v, list):
            return "[" + ",".join(spell(x) for x in v) + (ws if where == 0 else "") + "]"
        items = sorted(v.items())
        if items and defect == "duplicate":
            items.append(items[0])
        if defect == "reverse":
            items.reverse()
        sep = ":" + ws if where == 1 else ws + ":" if where == 2 else ":"
        return "{" + (ws if where == 3 else "") + ",".join(spell(k) + sep + spell(x) for k, x in items) + "}"

    return spell(value)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=3), _json | st.just(0), min_size=1, max_size=5) | _json,
       st.sampled_from(_DEFECTS), st.integers(0, 3))
def test_parse_agrees_with_the_reference_re_encoding_check(value, defect, where):
    """The fast path of ``parse`` accepts exactly what decode, re-encode and compare accepts."""
    raw = _spell(value, defect, where).encode("utf-8")
    assert _outcome(canonical.parse, raw) == _outcome(canonical._parse_slowly, raw)


@pytest.mark.parametrize("data", [
    b'{"a":1,"b":{"c":2,"c":3}}', b'{"a":{"y":1,"x":2}}', b'[{"a":1},{"b":2,"a":1}]', b'[1, 2]',
    b'{"a":[1,-0]}', b'{"t":"x y","u":"-0"} ', b'{"b":"x y","a":2}', b'{"a":"b","a":"b"}', b'{"a" :1}',
])
def test_parse_refuses_other_spellings_of_nested_and_flat_values(data):
    with pytest.raises(canonical.CanonicalError):
        canonical.parse(data)


def test_parse_accepts_white_space_and_minus_zero_inside_strings():
    for value in ({"a": "x -0 y\t", "b": [{"c": ": ,"}]}, [" ", {"k": "{"}], {"a\\b": "\"q\""}):
        assert canonical.parse(canonical.dumps(value)) == value


# Appending ----------------------------------------------------------------


def test_entries_carry_index_and_prev_and_are_the_leaf_data(led):
    first = led.append([{"kind": "verification", "status": "ok"}, {"kind": "registry", "n": 1}])
    second = led.append([{"kind": "verification", "reasons": ["a", "b"]}])
    receipts = first + second
    assert [r.index for r in receipts] == [0, 1, 2] and led.size() == 3
    data = led.entries(0, 3)
    assert data[0] == b'{"index":0,"kind":"verification","prev":"","status":"ok"}'
    prev = ""
    for i, (entry, receipt) in enumerate(zip(data, receipts)):
        value = canonical.parse(entry)
        assert value["index"] == i and value["prev"] == prev
        assert receipt.leaf_hash == hashlib.sha256(b"\x00" + entry).digest() == led.leaf_hash(i)
        prev = b64(receipt.leaf_hash)


def test_append_does_not_change_the_callers_records(led):
    record = {"a": 1}
    led.append([record])
    assert record == {"a": 1}


@pytest.mark.parametrize(
    "records, words",
    [
        ([{"ok": 1}, {"x": 1.5}], "record 1: \\$.x: floats"),
        ([{"ok": 1}, {"nested": {"deep": [float("nan")]}}], "floats"),
        ([{"ok": 1}, {7: "x"}], "keys must be strings"),
        ([{"index": 3}], "set by the ledger"),
        ([{"prev": ""}], "set by the ledger"),
        ([["not", "an", "object"]], "not a JSON object"),
        ({"a": 1}, "list of records"),
    ],
)
def test_bad_records_are_refused_and_nothing_is_written(led, records, words):
    led.append([{"before": True}])
    with pytest.raises(LedgerError, match=words):
        led.append(records)
    assert led.size() == 1
    assert led.append([{"after": True}])[0].index == 1
    assert led.verify().ok


def test_a_batch_is_atomic_when_the_write_fails(led, tmp_path):
    led.append([{"n": 0}, {"n": 1}])
    db = sqlite3.connect(tmp_path / "data" / "ledger.db")
    db.execute("CREATE TRIGGER fail BEFORE INSERT ON entries WHEN NEW.idx >= 5 "  # the run holding entry 5
               "BEGIN SELECT RAISE(ABORT, 'simulated disk failure'); END")
    db.commit()
    with pytest.raises(LedgerError, match="nothing was written.*simulated disk failure"):
        led.append([{"n": i} for i in range(2, 10)])
    assert led.size() == 2
    db.execute("DROP TRIGGER fail")
    db.commit()
    db.close()
    assert [r.index for r in led.append([{"n": 2}, {"n": 3}])] == [2, 3]
    assert led.verify().ok


def test_entries_survive_reopening(tmp_path):
    with Ledger.open_dir(tmp_path / "d", origin=ORIGIN) as a:
        receipts = a.append([{"n": i} for i in range(10)])
        data = a.entries(0, 10)
    with Ledger.open_dir(tmp_path / "d", origin=ORIGIN) as b:
        assert b.size() == 10 and b.entries(0, 10) == data
        assert [b.leaf_hash(i) for i in range(10)] == [r.leaf_hash for r in receipts]
        assert b.append([{"n": 10}])[0].index == 10
        assert b.verify().ok


def test_triggers_refuse_update_and_delete(led, tmp_path):
    led.append([{"n": 0}])
    led.checkpoint()
    from labelcheck.ledger.store import connect

    db = connect(tmp_path / "data" / "ledger.db")
    for sql in (
        "UPDATE entries SET data = x'00'",
        "DELETE FROM entries",
        "UPDATE hashes SET hash = x'00'",
        "DELETE FROM hashes",
        "DELETE FROM checkpoints",
        "UPDATE meta SET value = 'x'",
        "INSERT OR REPLACE INTO entries(idx, data) VALUES (0, x'00')",
    ):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(sql)
    db.close()
    assert led.entries(0, 1)[0].startswith(b'{"index":0')


def test_reads_refuse_out_of_range_arguments(led):
    led.append([{"n": i} for i in range(5)])
    for call in (
        lambda: led.entries(3, 6), lambda: led.entries(-1, 2), lambda: led.entries(4, 3),
        lambda: led.leaf_hash(5), lambda: led.leaf_hash(True),
        lambda: led.inclusion_proof(5, 5), lambda: led.inclusion_proof(0, 6), lambda: led.inclusion_proof(0, 0),
        lambda: led.consistency_proof(3, 6), lambda: led.consistency_proof(4, 3),
    ):
        with pytest.raises(LedgerError):
            call()


def test_proofs_verify_against_the_recomputed_tree(led):
    led.append([{"n": i} for i in range(37)])
    tree = merkle.MemoryHashes()
    for data in led.entries(0, 37):
        tree.append_data(data)
    for size in (1, 2, 7, 8, 9, 16, 31, 37):
        root = tree.root(size)
        for index in {0, size // 2, size - 1}:
            merkle.verify_inclusion(index, size, led.leaf_hash(index), led.inclusion_proof(index, size), root)
        for old in {0, 1, size // 3, size - 1, size}:
            merkle.verify_consistency(old, size, tree.root(old), root, led.consistency_proof(old, size))


# Checkpoints --------------------------------------------------------------


def test_every_commit_stores_a_signed_checkpoint_of_its_size(tmp_path):
    now = [1000.0]
    led = Ledger.open_dir(tmp_path / "d", origin=ORIGIN, clock=lambda: now[0])
    verifier = Verifier.from_vkey(led.verifier_key)

    def head():
        return open_checkpoint(led.checkpoint(), verifier, origin=ORIGIN).size

    assert head() == 0  # the empty log gets its checkpoint
    led.append([{"n": 0}])
    assert head() == 1  # no waiting for an interval: the commit signed
    led.append([{"n": 1}, {"n": 2}])
    assert head() == 3
    first = led.checkpoint()
    assert led.checkpoint() == first  # no growth, no new signature
    sizes = [r[0] for r in sqlite3.connect(tmp_path / "d" / "ledger.db").execute("SELECT size FROM checkpoints")]
    assert sizes == [0, 1, 3]
    led.close()


def test_receipts_carry_the_commits_checkpoint_and_an_inclusion_proof(led):
    verifier = Verifier.from_vkey(led.verifier_key)
    for batch in (1, 2, 3, 7, 16, 1, 30):
        receipts = led.append([{"n": i} for i in range(batch)])
        assert len({r.checkpoint for r in receipts}) == 1
        cp = open_checkpoint(receipts[0].checkpoint, verifier, origin=ORIGIN)
        assert cp.size == led.size() == receipts[-1].index + 1
        for r in receipts:
            merkle.verify_inclusion(r.index, cp.size, r.leaf_hash, r.inclusion, cp.root)
            assert r.inclusion == led.inclusion_proof(r.index, cp.size)
        with pytest.raises(merkle.ProofError):  # the proof is for this leaf only
            merkle.verify_inclusion(receipts[0].index, cp.size, merkle.leaf_hash(b"other"),
                                    receipts[0].inclusion, cp.root)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 300).flatmap(lambda size: st.tuples(
    st.just(size), st.integers(0, size - 1)).flatmap(lambda t: st.tuples(
        st.just(t[0]), st.just(t[1]), st.integers(t[1] + 1, t[0])))))
def test_proofs_of_a_run_of_leaves_are_each_leafs_own_proof(case):
    # Receipts build every proof of a commit in one descent (run_paths) from
    # the hashes run_ranges names: both must agree with the per-leaf proof.
    from labelcheck.ledger.tree import hashes_for_ranges, range_indexes, run_paths, run_ranges
    from labelcheck.ledger.verify import TreeStream
    size, first, end = case
    tree, stored = TreeStream(), []
    for i in range(size):
        stored.extend(tree.add(merkle.leaf_hash(b"%d" % i)))
    read = lambda ids: [stored[i] for i in ids]  # noqa: E731
    paths = run_paths(first, end, size, lambda lo, hi: hashes_for_ranges([(lo, hi)], read)[0])
    assert paths == [merkle.prove_inclusion(i, size, read) for i in range(first, end)]
    named, needed = [], []
    for lo, hi in run_ranges(first, end, size):
        range_indexes(lo, hi, named)
    for i in range(first, end):
        for lo, hi in merkle.inclusion_ranges(i, size):
            range_indexes(lo, hi, needed)
    assert set(named) == set(needed)
    assert run_paths(first, size + 1, size, lambda lo, hi: b"") == []  # a run outside the tree has no proofs


def test_group_commit_receipts_share_one_checkpoint_per_commit(led):
    out, barrier = [], threading.Barrier(8)

    def work(t):
        barrier.wait()
        for i in range(10):
            out.extend(led.append([{"t": t, "i": i}]))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    verifier = Verifier.from_vkey(led.verifier_key)
    checkpoints = {r.checkpoint for r in out}
    stored = sqlite3.connect(led._store.path).execute("SELECT count(*) FROM checkpoints").fetchone()[0]
    assert len(checkpoints) == led.commits == stored  # one signature per commit, not per entry
    for r in out:
        cp = open_checkpoint(r.checkpoint, verifier, origin=ORIGIN)
        merkle.verify_inclusion(r.index, cp.size, r.leaf_hash, r.inclusion, cp.root)


def test_checkpoint_root_is_the_tree_root_and_opens_with_the_vkey(led):
    led.append([{"n": i} for i in range(11)])
    cp = open_checkpoint(led.checkpoint(), Verifier.from_vkey(led.verifier_key), origin=ORIGIN)
    tree = merkle.MemoryHashes()
    for data in led.entries(0, 11):
        tree.append_data(data)
    assert (cp.size, cp.root) == (11, tree.root())
    assert led.verifier_key.startswith(led.key_id + "+") and led.key_id.startswith(ORIGIN + "+")


def test_never_signs_a_size_smaller_than_one_signed(led, tmp_path):
    led.append([{"n": i} for i in range(6)])
    db = sqlite3.connect(tmp_path / "data" / "ledger.db")
    db.executescript("DROP TRIGGER entries_no_delete; DROP TRIGGER hashes_no_delete; DROP TRIGGER hashes_no_update;")
    split_runs(db)
    db.execute("DELETE FROM entries WHERE idx >= 4")
    cut_hashes(db, merkle.stored_hash_count(4))
    db.commit()
    db.close()
    with pytest.raises(LedgerDamaged, match="holds 4 entries but its latest signed checkpoint is for 6"):
        led.append([{"n": 4}])
    assert "entries were removed" in led.damage
    with pytest.raises(LedgerDamaged, match="nothing more is appended"):  # and it stays refused
        led.append([{"n": 4}])
    assert led.size() == 4
    with pytest.raises(LedgerError, match="checkpoint was signed for 6: entries were lost"):
        Ledger.open_dir(tmp_path / "data", origin=ORIGIN)


# Keys and identity ----------------------------------------------------------


def test_key_file_is_private_and_reused(tmp_path):
    with Ledger.open_dir(tmp_path / "d", origin=ORIGIN) as a:
        vkey = a.verifier_key
    key = tmp_path / "d" / "ledger.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith(f"PRIVATE+KEY+{ORIGIN}+")
    with Ledger.open_dir(tmp_path / "d", origin=ORIGIN) as b:
        assert b.verifier_key == vkey
    os.chmod(key, 0o644)
    with pytest.raises(LedgerError, match="readable by others"):
        Ledger.open_dir(tmp_path / "d", origin=ORIGIN)


def test_a_ledger_refuses_another_origin_or_key(tmp_path):
    Ledger.open_dir(tmp_path / "d", origin=ORIGIN).close()
    with pytest.raises(LedgerError, match="is for 'test.example/log', not origin 'other.example'"):
        Ledger.open_dir(tmp_path / "d", origin="other.example")
    with pytest.raises(LedgerError, match="wrong --origin or wrong ledger.key"):
        Ledger(tmp_path / "d" / "ledger.db", key_path=tmp_path / "other.key", origin="other.example")
    with pytest.raises(LedgerError, match="invalid ledger origin"):
        Ledger.open_dir(tmp_path / "e", origin="has space")


def test_not_a_ledger_database_is_refused(tmp_path):
    path = tmp_path / "x.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE entries(x)")
    db.close()
    with pytest.raises(LedgerError):
        Ledger(path, key_path=tmp_path / "k", origin=ORIGIN)
    (tmp_path / "junk.db").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(LedgerError):
        Ledger(tmp_path / "junk.db", key_path=tmp_path / "k", origin=ORIGIN)


# Threads and group commit -----------------------------------------------


def _hammer(led, threads: int, each: int) -> list[int]:
    got: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def work(t):
        start.wait()
        for k in range(each):
            (r,) = led.append([{"thread": t, "k": k}])
            with lock:
                got.append(r.index)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return got


def test_group_commit_shares_transactions_across_threads(led):
    got = _hammer(led, threads=8, each=25)
    assert sorted(got) == list(range(200)) and led.size() == 200
    assert led.commits < 200, "every append paid its own transaction: no group commit"
    assert led.verify().ok


def test_failed_group_commits_fail_only_their_appends_and_hand_the_lead_on(led, monkeypatch):
    """Every third commit fails: the appends it took raise CommitError, the
    ones queued behind it still commit, and no thread is left waiting."""
    appender = led._appender
    real = appender.refuse
    calls = iter(range(10**6))

    def flaky():
        real()
        if next(calls) % 3 == 2:
            raise OSError("disk on fire")

    monkeypatch.setattr(appender, "refuse", flaky)
    ok, failed, lock = [], [], threading.Lock()

    def work(t: int) -> None:
        for k in range(20):
            try:
                (r,) = led.append([{"thread": t, "k": k}])
            except LedgerError as exc:
                assert "disk on fire" in str(exc.__cause__ or exc)
                with lock:
                    failed.append((t, k))
            else:
                with lock:
                    ok.append(r.index)

    workers = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert not any(w.is_alive() for w in workers), "an append never returned"
    assert failed and len(ok) + len(failed) == 160
    assert sorted(ok) == list(range(len(ok))) and led.size() == len(ok)
    monkeypatch.setattr(appender, "refuse", real)
    assert led.verify().ok


def test_threads_without_group_commit_stay_contiguous(tmp_path):
    with Ledger.open_dir(tmp_path / "d", origin=ORIGIN, group_commit=False) as led:
        got = _hammer(led, threads=4, each=15)
        assert sorted(got) == list(range(60)) and led.commits == 60
        assert led.verify().ok


def test_short_lived_threads_do_not_leak_connections(led):
    led.append([{"n": 0}])
    fds = len(os.listdir("/proc/self/fd"))
    for _ in range(40):
        t = threading.Thread(target=lambda: (led.size(), led.inclusion_proof(0, 1), led.checkpoint()))
        t.start()
        t.join()
    assert len(os.listdir("/proc/self/fd")) <= fds + 3 * led._store.POOL_IDLE


def test_a_ledger_opened_before_fork_works_in_both_processes(led):
    """As under ``gunicorn --preload``: connections are never shared across fork()."""
    led.append([{"who": "parent", "n": 0}])
    pid = os.fork()
    if pid == 0:
        try:
            led.append([{"who": "child", "n": i} for i in range(5)])
            os._exit(0 if led.size() >= 6 else 1)
        except BaseException:
            os._exit(2)
    led.append([{"who": "parent", "n": 1}])
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert led.size() == 7 and led.verify().ok


def test_start_up_check_and_verify_are_not_fooled_by_concurrent_appends(tmp_path):
    """Another process's appends land mid-check: that must never look like damage."""
    writer = Ledger.open_dir(tmp_path / "d", origin=ORIGIN)
    writer.append([{"n": 0}])
    stop = threading.Event()

    def keep_appending():
        k = 0
        while not stop.is_set():
            writer.append([{"n": k}, {"n": k + 1}])
            if k % 10 == 0:
                writer.checkpoint()
            k += 2

    t = threading.Thread(target=keep_appending)
    t.start()
    try:
        for _ in range(4):
            with Ledger.open_dir(tmp_path / "d", origin=ORIGIN) as reader:
                report = reader.verify()
                assert report.ok, report.summary()
    finally:
        stop.set()
        t.join()
    assert writer.verify().ok
    writer.close()


def test_two_ledgers_on_one_database_continue_each_others_tail(tmp_path):
    """Each instance starts its next commit from its own last one only while no
    other writer has appended since."""
    a = Ledger.open_dir(tmp_path / "data", origin=ORIGIN)
    b = Ledger.open_dir(tmp_path / "data", origin=ORIGIN)
    try:
        got = []
        for i, size in enumerate([1, 3, 1, 1, 2, 5, 1]):
            got += [r.index for r in (a if i % 3 else b).append([{"i": i, "k": k} for k in range(size)])]
        assert got == list(range(14))
        for led in (a, b):
            report = led.verify()
            assert report.ok and report.size == 14, report.summary()
    finally:
        a.close()
        b.close()


def test_a_run_of_stored_hashes_must_be_whole_sha256_hashes(tmp_path):
    from labelcheck.ledger.store import Store, StoreError

    store = Store(tmp_path / "h.db")
    try:
        with store.write() as conn:
            Store.put_hash_run(conn, 0, [bytes([i]) * 32 for i in range(3)])
        assert store.read_hashes([2, 0, 1]) == [b"\x02" * 32, b"\x00" * 32, b"\x01" * 32]
        with pytest.raises(StoreError, match="32 bytes"), store.write() as conn:
            Store.put_hash_run(conn, 3, [b"\x03" * 32, b"short"])
        assert store.hash_count() == 3  # the failed run left nothing behind
    finally:
        store.close()


@pytest.mark.parametrize("n, chunk", [(0, 3), (1, 3), (3, 3), (7, 3), (9, 3)])
def test_chunked_reads_every_row_once_in_key_order(n, chunk):
    """The chunked reader both stores use: whole chunks, a last partial one,
    exactly one chunk, and an empty table."""
    table = [(k, b"%d" % k) for k in range(0, 2 * n, 2)]  # keys with gaps
    calls = []

    def fetch(lo, hi):
        calls.append((lo, hi))
        return [r for r in table if lo <= r[0] < hi][:chunk]

    assert list(rows.chunked(fetch, 0, None, chunk)) == table
    assert list(rows.chunked(fetch, 3, 9, chunk)) == [r for r in table if 3 <= r[0] < 9]
    assert len(calls) <= n // chunk + 3
