"""``labelcheck ledger migrate --from ledger.db --to postgresql://...``
(docs/protocol.md §11): a verified copy, refused onto another log, resumable."""

from __future__ import annotations

import itertools
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from labelcheck.ledger.backend import open_store
from labelcheck.ledger.log import Ledger, LedgerError

ORIGIN = "migrate.example/log"
LABELCHECK = str(Path(sys.executable).with_name("labelcheck"))
_names = itertools.count()


def make_source(data_dir: Path, n: int, origin: str = ORIGIN) -> str:
    with Ledger.open_dir(data_dir, origin=origin) as led:
        for i in range(0, n, 7):
            led.append([{"kind": "verification", "n": j} for j in range(i, min(n, i + 7))])
        return led.verifier_key


def migrate(src: Path, url: str) -> subprocess.CompletedProcess:
    return subprocess.run([LABELCHECK, "ledger", "migrate", "--from", str(src), "--to", url],
                          capture_output=True, text=True, timeout=120)


def test_a_verified_copy_serves_the_same_log(tmp_path, postgres):
    vkey = make_source(tmp_path, 100)
    url = postgres.create_database(f"migrate_{next(_names)}")
    done = migrate(tmp_path / "ledger.db", url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "100 entries" in done.stdout
    src, dst = open_store(tmp_path / "ledger.db", create=False), open_store(url, create=False)
    try:
        assert list(dst.iter_rows("entries")) == [(i, bytes(d)) for i, d in src.iter_rows("entries")]
        assert dst.latest_checkpoint()[1] == src.latest_checkpoint()[1]
        assert [r[0] for r in dst.iter_rows("checkpoints")] == [r[0] for r in src.iter_rows("checkpoints")]
    finally:
        src.close()
        dst.close()
    verify = subprocess.run([LABELCHECK, "ledger", "verify", "--db", url, "--vkey", vkey],
                            capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # The same key opens it and appends continue the same chain.
    with Ledger.open_dir(tmp_path, origin=ORIGIN, database=url) as led:
        assert led.append([{"kind": "verification", "n": 100}])[0].index == 100
        assert led.verify().ok


def test_another_log_in_the_target_is_refused(tmp_path, postgres):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    make_source(tmp_path / "a", 10)
    make_source(tmp_path / "b", 10)  # same origin, another key
    url = postgres.create_database(f"migrate_{next(_names)}")
    assert migrate(tmp_path / "a" / "ledger.db", url).returncode == 0
    done = migrate(tmp_path / "b" / "ledger.db", url)
    assert done.returncode == 1
    assert "holds another log" in done.stderr


def test_differing_entries_in_the_target_are_refused(tmp_path, postgres):
    make_source(tmp_path, 10)
    url = postgres.create_database(f"migrate_{next(_names)}")
    (tmp_path / "node").mkdir()  # a node holding the same key, started on the empty database
    (tmp_path / "node" / "ledger.key").write_bytes((tmp_path / "ledger.key").read_bytes())
    (tmp_path / "node" / "ledger.key").chmod(0o600)
    with Ledger.open_dir(tmp_path / "node", origin=ORIGIN, database=url) as led:  # same key and origin, other entries
        led.append([{"kind": "verification", "other": True}])
    done = migrate(tmp_path / "ledger.db", url)
    assert done.returncode == 1
    assert "differ" in done.stderr
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM ledger_entries").fetchone()[0] == 1


def test_migrate_resumes_and_is_idempotent(tmp_path, postgres):
    make_source(tmp_path, 30)
    url = postgres.create_database(f"migrate_{next(_names)}")
    assert migrate(tmp_path / "ledger.db", url).returncode == 0
    again = migrate(tmp_path / "ledger.db", url)
    assert again.returncode == 0 and "nothing to copy" in again.stdout
    with Ledger.open_dir(tmp_path, origin=ORIGIN) as led:  # the source grew meanwhile
        led.append([{"kind": "verification", "n": k} for k in range(30, 45)])
    more = migrate(tmp_path / "ledger.db", url)
    assert more.returncode == 0, more.stderr
    assert "15 entries" in more.stdout and "45 entries" in more.stdout
    dst = open_store(url, create=False)
    try:
        assert dst.size() == 45
    finally:
        dst.close()


def test_a_target_that_servers_appended_to_since_needs_nothing_and_a_diverged_one_is_refused(tmp_path, postgres):
    make_source(tmp_path, 20)
    url = postgres.create_database(f"migrate_{next(_names)}")
    assert migrate(tmp_path / "ledger.db", url).returncode == 0
    with Ledger.open_dir(tmp_path, origin=ORIGIN, database=url) as led:  # the nodes serve it now
        led.append([{"kind": "verification", "on": "postgresql", "n": k} for k in range(5)])
    again = migrate(tmp_path / "ledger.db", url)  # the README's command, run once more
    assert again.returncode == 0, again.stderr
    assert "nothing to copy" in again.stdout and "20 entries" in again.stdout and "5 more" in again.stdout
    with Ledger.open_dir(tmp_path, origin=ORIGIN) as led:  # the old node appended too: two logs now
        led.append([{"kind": "verification", "on": "sqlite", "n": k} for k in range(3)])
    for source_size in (23, 28):  # shorter than the target, then longer
        if source_size == 28:
            with Ledger.open_dir(tmp_path, origin=ORIGIN) as led:
                led.append([{"kind": "verification", "on": "sqlite", "n": k} for k in range(5)])
        done = migrate(tmp_path / "ledger.db", url)
        assert done.returncode == 1, done.stdout
        assert "differ" in done.stderr
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM ledger_entries").fetchone()[0] == 25


def test_a_node_will_not_start_beside_the_same_keys_log_that_the_database_lacks(tmp_path, postgres):
    """A ledger.db in the data directory signed with the same key whose
    entries the database does not hold (it is empty, shorter, or another
    history): starting would make a second history under one key. The node
    refuses, naming the migrate command; once copied it starts. A ledger.db
    of another key, or an empty one, is no reason to refuse."""
    make_source(tmp_path, 12)
    url = postgres.create_database(f"migrate_{next(_names)}")
    with pytest.raises(LedgerError, match="ledger migrate --from .*ledger.db"):
        Ledger.open_dir(tmp_path, origin=ORIGIN, database=url)
    served = subprocess.run([LABELCHECK, "serve", "--data-dir", str(tmp_path), "--origin", ORIGIN, "--port", "1",
                             "--database", url], capture_output=True, text=True, timeout=60)
    assert served.returncode != 0 and "another history" in served.stderr, served.stderr
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM ledger_entries").fetchone()[0] == 0
    assert migrate(tmp_path / "ledger.db", url).returncode == 0
    with Ledger.open_dir(tmp_path, origin=ORIGIN, database=url) as led:
        assert led.size() == 12
    with Ledger.open_dir(tmp_path, origin=ORIGIN) as local:  # ledger.db appended to after the copy
        local.append([{"kind": "verification", "n": k} for k in range(12, 14)])
    with pytest.raises(LedgerError, match="holds 14 entries .* the database only 12"):
        Ledger.open_dir(tmp_path, origin=ORIGIN, database=url)
    assert migrate(tmp_path / "ledger.db", url).returncode == 0  # the rest copied: the node starts
    with Ledger.open_dir(tmp_path, origin=ORIGIN, database=url) as led:
        led.append([{"kind": "verification", "on": "postgresql"}] * 6)  # 20 there
    with Ledger.open_dir(tmp_path, origin=ORIGIN) as local:  # and 17 here, from 14 on another history
        local.append([{"kind": "verification", "on": "sqlite"}] * 3)
    with pytest.raises(LedgerError, match="different histories"):
        Ledger.open_dir(tmp_path, origin=ORIGIN, database=url)
    (tmp_path / "other").mkdir()
    make_source(tmp_path / "other", 3)  # another key's ledger.db
    (tmp_path / "other" / "ledger.key").unlink()
    (tmp_path / "other" / "ledger.key").write_bytes((tmp_path / "ledger.key").read_bytes())
    (tmp_path / "other" / "ledger.key").chmod(0o600)
    with Ledger.open_dir(tmp_path / "other", origin=ORIGIN, database=postgres.create_database(
            f"migrate_{next(_names)}")) as led:
        assert led.size() == 0


def test_a_damaged_source_stops_the_copy(tmp_path, postgres):
    make_source(tmp_path, 20)
    conn = sqlite3.connect(tmp_path / "ledger.db")
    conn.execute("DROP TRIGGER entries_no_update")
    # The row holding entry 15 (a run: the SQLite store keeps a commit's entries in one row).
    conn.execute("UPDATE entries SET data = CAST(replace(CAST(data AS TEXT), '\"n\":15', '\"n\":99') AS BLOB) "
                 "WHERE idx = (SELECT min(idx) FROM entries WHERE idx >= 15)")
    conn.commit()
    conn.close()
    url = postgres.create_database(f"migrate_{next(_names)}")
    done = migrate(tmp_path / "ledger.db", url)
    assert done.returncode == 1
    assert "entry 15" in done.stderr
    with psycopg.connect(url) as conn:  # whole verified commits only, each ending at a checkpoint
        n = conn.execute("SELECT count(*) FROM ledger_entries").fetchone()[0]
        signed = conn.execute("SELECT coalesce(max(size), 0) FROM ledger_checkpoints").fetchone()[0]
    assert n == signed and n <= 15
