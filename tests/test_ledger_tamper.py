"""Tampering with the database file itself, as an operator with sqlite3 could.

Triggers are dropped and rows edited with plain sqlite3; every change must be
caught by ``labelcheck ledger verify`` (exit 1, naming the problem), by the
start-up check, or, for a log cut short along with its checkpoints, by an
outside verifier holding an older trusted checkpoint.
"""

from __future__ import annotations

import base64
import io
import sqlite3

import pytest
from click.testing import CliRunner
from entry_edits import read_entry, split_runs
from hash_edits import cut_hashes, set_hash

from labelcheck.ledger import Ledger, LedgerDamaged, LedgerError, canonical, merkle, note, verify_bundle
from labelcheck.cli import main

ORIGIN = "tamper.example/log"
SIZE = 30


@pytest.fixture
def data_dir(tmp_path):
    """A ledger of 30 entries in two commits: checkpoints signed at 20 and 30."""
    d = tmp_path / "data"
    with Ledger.open_dir(d, origin=ORIGIN) as led:
        led.append([{"tag": "abc", "n": i} for i in range(20)])
        led.append([{"tag": "abc", "n": i} for i in range(20, SIZE)])
    return d


def edit(data_dir, *statements):
    """Each statement is (sql, args) or a function of the connection (``hash_edits``);
    entries are one per row for the statements (``entry_edits``)."""
    db = sqlite3.connect(data_dir / "ledger.db")
    for table in ("entries", "hashes", "checkpoints"):
        db.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
        db.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    split_runs(db)
    for step in statements:
        if callable(step):
            step(db)
            continue
        sql, *args = step
        db.execute(sql, *args)
    db.commit()
    db.close()


def entry(data_dir, i) -> bytes:
    db = sqlite3.connect(data_dir / "ledger.db")
    data = read_entry(db, i)
    db.close()
    return data


def cli_verify(data_dir):
    vkey = note.Signer.from_skey((data_dir / "ledger.key").read_text()).vkey  # the operator's, not the db's
    result = CliRunner().invoke(main, ["ledger", "verify", "--db", str(data_dir / "ledger.db"), "--vkey", vkey])
    return result.exit_code, result.output


def test_untouched_ledger_verifies(data_dir):
    code, out = cli_verify(data_dir)
    assert code == 0, out
    assert "ledger OK: 30 entries, signed checkpoint at size 30, 2 checkpoints checked" in out


def test_a_changed_byte_is_caught(data_dir):
    edit(data_dir, ("UPDATE entries SET data = ? WHERE idx = 7", (entry(data_dir, 7).replace(b"abc", b"abd"),)))
    code, out = cli_verify(data_dir)
    assert code == 1
    assert "entry 7: its bytes do not match its stored leaf hash" in out


def test_a_changed_byte_with_its_leaf_hash_rewritten_breaks_the_chain(data_dir):
    changed = entry(data_dir, 7).replace(b"abc", b"abd")
    edit(data_dir,
         ("UPDATE entries SET data = ? WHERE idx = 7", (changed,)),
         lambda db: set_hash(db, merkle.stored_hash_index(0, 7), merkle.leaf_hash(changed)))
    code, out = cli_verify(data_dir)
    assert code == 1 and "entry 7: stored hash" in out and "does not match the entries" in out


def test_a_deleted_entry_is_caught(data_dir):
    edit(data_dir, ("DELETE FROM entries WHERE idx = 12",))
    code, out = cli_verify(data_dir)
    assert code == 1 and "entry 12 is missing" in out


def test_two_swapped_entries_are_caught(data_dir):
    a, b = entry(data_dir, 5), entry(data_dir, 6)
    edit(data_dir,
         ("UPDATE entries SET data = ? WHERE idx = 5", (b,)),
         ("UPDATE entries SET data = ? WHERE idx = 6", (a,)))
    code, out = cli_verify(data_dir)
    assert code == 1 and "entry 5: carries index 6" in out


def test_an_inserted_entry_is_caught(data_dir):
    forged = entry(data_dir, 10).replace(b"abc", b"xyz")
    rows = [(i, entry(data_dir, i)) for i in range(10, SIZE)]
    edit(data_dir, ("DELETE FROM entries WHERE idx >= 10",),
         *[("INSERT INTO entries(idx, data) VALUES (?, ?)", (i + 1, d)) for i, d in rows],
         ("INSERT INTO entries(idx, data) VALUES (10, ?)", (forged,)))
    code, out = cli_verify(data_dir)
    assert code == 1 and "entry 10: its bytes do not match" in out


def test_an_entry_appended_behind_the_ledgers_back_is_caught(data_dir):
    prev = merkle.leaf_hash(entry(data_dir, SIZE - 1))
    forged = b'{"index":30,"prev":"' + base64.b64encode(prev) + b'","tag":"forged"}'
    edit(data_dir, ("INSERT INTO entries(idx, data) VALUES (30, ?)", (forged,)))
    code, out = cli_verify(data_dir)
    assert code == 1 and "entry 30: stored hash" in out and "is missing" in out
    with pytest.raises(LedgerError, match="31 entries need"):
        Ledger.open_dir(data_dir, origin=ORIGIN)


def test_a_consistently_rewritten_log_fails_its_signature(data_dir):
    """Change an entry, re-chain all later ones and recompute every hash: only the signature can tell."""
    entries, tree, prev = [], merkle.MemoryHashes(), ""
    for i in range(SIZE):
        value = canonical.parse(entry(data_dir, i))
        value["prev"] = prev
        if i == 3:
            value["tag"] = "abd"
        entries.append(canonical.dumps(value))
        tree.append_data(entries[-1])
        prev = base64.b64encode(merkle.leaf_hash(entries[-1])).decode()
    edit(data_dir, *[("UPDATE entries SET data = ? WHERE idx = ?", (d, i)) for i, d in enumerate(entries)],
         lambda db: [set_hash(db, i, h) for i, h in enumerate(tree.hashes)])
    code, out = cli_verify(data_dir)
    assert code == 1
    assert "checkpoint for size 20: signed root" in out and "but the entries give" in out
    with pytest.raises(LedgerError, match="does not match its signed checkpoint"):
        Ledger.open_dir(data_dir, origin=ORIGIN)


def test_a_truncated_tail_is_caught_by_verify_and_at_start_up(data_dir):
    edit(data_dir, ("DELETE FROM entries WHERE idx >= 25",),
         lambda db: cut_hashes(db, merkle.stored_hash_count(25)))
    code, out = cli_verify(data_dir)
    assert code == 1 and "signed for 30 entries but the log holds only 25" in out
    with pytest.raises(LedgerError, match="holds 25 entries but a checkpoint was signed for 30"):
        Ledger.open_dir(data_dir, origin=ORIGIN)


def test_a_tail_truncated_between_commits_is_caught_by_verify_and_at_start_up(data_dir):
    """Cut inside the last commit, with the checkpoints past the cut: entries 20..24 are left
    covered by no checkpoint, which no commit leaves behind."""
    edit(data_dir, ("DELETE FROM entries WHERE idx >= 25",),
         lambda db: cut_hashes(db, merkle.stored_hash_count(25)),
         ("DELETE FROM checkpoints WHERE size > 20",))
    code, out = cli_verify(data_dir)
    assert code == 1 and "entries 20 to 24 are covered by no signed checkpoint" in out
    with pytest.raises(LedgerDamaged, match="entries 20 to 24 are covered by no signed checkpoint"):
        Ledger.open_dir(data_dir, origin=ORIGIN)


def test_an_uncovered_entry_added_with_its_hashes_is_refused(data_dir):
    """A well-formed entry and its stored hashes inserted by hand: chained and hashed
    correctly, but no commit signed it."""
    tree = merkle.MemoryHashes()
    for i in range(SIZE):
        tree.append_data(entry(data_dir, i))
    prev = merkle.leaf_hash(entry(data_dir, SIZE - 1))
    forged = b'{"index":30,"prev":"' + base64.b64encode(prev) + b'","tag":"forged"}'
    tree.append_data(forged)
    edit(data_dir, ("INSERT INTO entries(idx, data) VALUES (30, ?)", (forged,)),
         *[("INSERT INTO hashes(id, hash) VALUES (?, ?)", (i, tree.hashes[i]))
           for i in range(merkle.stored_hash_count(SIZE), merkle.stored_hash_count(SIZE + 1))])
    code, out = cli_verify(data_dir)
    assert code == 1 and "entries 30 to 30 are covered by no signed checkpoint" in out
    with pytest.raises(LedgerDamaged, match="inserted by hand"):
        Ledger.open_dir(data_dir, origin=ORIGIN)


def test_a_tail_rolled_back_to_a_commit_is_caught_only_by_a_trusted_checkpoint(data_dir):
    """Entries, hashes and checkpoints after the commit at 20 deleted together: the
    database alone cannot tell (docs/protocol.md §4); an older signed head can."""
    with Ledger.open_dir(data_dir, origin=ORIGIN) as led:
        trusted = led.checkpoint()  # a monitor saved this head (size 30)
        vkey = led.verifier_key
    edit(data_dir, ("DELETE FROM entries WHERE idx >= 20",),
         ("DELETE FROM hashes WHERE id >= ?", (merkle.stored_hash_count(20),)),
         ("DELETE FROM checkpoints WHERE size > 20",))
    # The database alone now looks like an honest log of 20 entries...
    assert cli_verify(data_dir)[0] == 0
    with Ledger.open_dir(data_dir, origin=ORIGIN) as led:
        out = io.BytesIO()
        led.export(out)
    out.seek(0)
    assert verify_bundle(out, vkey).ok
    # ...but not to anyone holding the older signed head.
    out.seek(0)
    report = verify_bundle(out, vkey, trusted_checkpoint=trusted)
    assert not report.ok
    assert "has 20 entries but a checkpoint for 30 was trusted before: the log was truncated" in report.summary()


def test_a_changed_tail_entry_stops_the_ledger_at_start_up(data_dir):
    with Ledger.open_dir(data_dir, origin=ORIGIN) as led:
        led.append([{"tag": "abc", "n": 30}])  # the last commit: re-hashed at start-up
    edit(data_dir, ("UPDATE entries SET data = ? WHERE idx = 30", (entry(data_dir, 30).replace(b"abc", b"abd"),)))
    with pytest.raises(LedgerError, match="is damaged: entry 30 does not match its stored hashes"):
        Ledger.open_dir(data_dir, origin=ORIGIN)


def test_a_replaced_checkpoint_signature_is_caught(data_dir):
    other = sqlite3.connect(data_dir / "ledger.db").execute(
        "SELECT note FROM checkpoints WHERE size = 20").fetchone()[0]
    edit(data_dir, ("UPDATE checkpoints SET note = ? WHERE size = 30", (other,)))
    code, out = cli_verify(data_dir)
    assert code == 1 and "checkpoint row for size 30 holds a note for size 20" in out
    with pytest.raises(LedgerError, match="stored for size 30 is for size 20"):
        Ledger.open_dir(data_dir, origin=ORIGIN)


def test_stray_stored_hashes_are_caught(data_dir):
    edit(data_dir, ("INSERT INTO hashes(id, hash) VALUES (?, ?)", (merkle.stored_hash_count(SIZE), b"\0" * 32)))
    code, out = cli_verify(data_dir)
    assert code == 1 and "belong to no entry" in out
    with pytest.raises(LedgerError, match="30 entries need 56 stored hashes, found 57"):
        Ledger.open_dir(data_dir, origin=ORIGIN)
