"""``labelcheck ledger verify | export | verify-bundle`` and the benchmark's smoke run."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from labelcheck.ledger import Ledger, merkle
from labelcheck.ledger.note import Signer
from labelcheck.cli import main

ORIGIN = "cli.example/log"
REPO = Path(__file__).resolve().parents[1]
LABELCHECK = Path(sys.executable).with_name("labelcheck")


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    with Ledger.open_dir(d, origin=ORIGIN) as led:
        led.append([{"kind": "verification", "n": i} for i in range(12)])
        (tmp_path / "ledger.pub").write_text(led.verifier_key + "\n")
    return d


def run(*args, input=None):
    result = CliRunner().invoke(main, ["ledger", *map(str, args)], input=input)
    assert "Traceback" not in result.output
    return result


def test_help_lists_the_commands():
    out = run("--help").output
    assert "verify" in out and "export" in out and "verify-bundle" in out


def test_export_then_verify_bundle(data_dir, tmp_path):
    out = tmp_path / "b.ndjson"
    result = run("export", "--db", data_dir / "ledger.db", "--out", out)
    assert result.exit_code == 0, result.output
    vkey = (tmp_path / "ledger.pub").read_text().strip()
    for key in (tmp_path / "ledger.pub", vkey):  # a file or the key itself
        result = run("verify-bundle", out, "--vkey", key)
        assert result.exit_code == 0, result.output
        assert f"complete log of 12 entries, origin {ORIGIN}" in result.output


def test_export_to_stdout_and_verify_from_stdin(data_dir, tmp_path):
    result = CliRunner().invoke(main, ["ledger", "export", "--db", str(data_dir / "ledger.db"), "--out", "-"])
    assert result.exit_code == 0
    bundle = result.stdout_bytes
    assert bundle.count(b"\n") == 13 and json.loads(bundle.split(b"\n")[0])["size"] == 12
    result = run("verify-bundle", "-", "--vkey", tmp_path / "ledger.pub", input=bundle)
    assert result.exit_code == 0 and "complete log of 12 entries" in result.output


def test_export_without_the_key_covers_every_commit(data_dir, tmp_path):
    with Ledger.open_dir(data_dir, origin=ORIGIN) as led:
        led.append([{"n": 12}])  # signed by its own commit
    (data_dir / "ledger.key").rename(tmp_path / "elsewhere.key")
    out = tmp_path / "b.ndjson"
    assert run("export", "--db", data_dir / "ledger.db", "--out", out).exit_code == 0
    result = run("verify-bundle", out, "--vkey", tmp_path / "ledger.pub")
    assert result.exit_code == 0 and "complete log of 13 entries" in result.output


def test_a_tampered_bundle_exits_1_naming_the_entry(data_dir, tmp_path):
    out = tmp_path / "b.ndjson"
    run("export", "--db", data_dir / "ledger.db", "--out", out)
    out.write_bytes(out.read_bytes().replace(b'"n":5', b'"n":6', 1))
    result = run("verify-bundle", out, "--vkey", tmp_path / "ledger.pub")
    assert result.exit_code == 1
    assert "bundle verification FAILED: entry 6: prev" in result.output


def test_a_trusted_checkpoint_catches_a_rolled_back_log(data_dir, tmp_path):
    with Ledger.open_dir(data_dir, origin=ORIGIN) as led:
        led.append([{"n": i} for i in range(12, 15)])
        (tmp_path / "trusted.cp").write_bytes(led.checkpoint())
        key = led.verifier_key
    db = sqlite3.connect(data_dir / "ledger.db")  # back to the commit at 12, its checkpoints too
    db.executescript("DROP TRIGGER entries_no_delete; DROP TRIGGER hashes_no_delete; DROP TRIGGER checkpoints_no_delete;"
                     f"DELETE FROM entries WHERE idx >= 12; DELETE FROM hashes WHERE id >= {merkle.stored_hash_count(12)};"
                     "DELETE FROM checkpoints WHERE size > 12;")
    db.close()
    out = tmp_path / "b.ndjson"
    assert run("export", "--db", data_dir / "ledger.db", "--out", out).exit_code == 0
    assert run("verify-bundle", out, "--vkey", key).exit_code == 0
    result = run("verify-bundle", out, "--vkey", key, "--trusted-checkpoint", tmp_path / "trusted.cp")
    assert result.exit_code == 1 and "the log was truncated or rolled back" in result.output


@pytest.mark.parametrize(
    "args, words",
    [
        (["verify", "--db", "{tmp}/missing.db", "--trust-db-key"], "no ledger database at"),
        (["verify", "--db", "{tmp}/junk.db", "--vkey", "{tmp}/ledger.pub"], "junk.db"),
        (["verify", "--db", "{data}/ledger.db"], "needs --vkey VKEY or --trusted-checkpoint FILE"),
        (["verify", "--db", "{data}/ledger.db", "--trusted-checkpoint", "{tmp}/nope"],
         "cannot read trusted checkpoint"),
        (["verify", "--db", "{data}/ledger.db", "--vkey", "nope+00000000+AAAA"], "bad verifier key"),
        (["export", "--db", "{tmp}/missing.db", "--out", "{tmp}/x"], "no ledger database at"),
        (["export", "--db", "{data}/ledger.db", "--out", "{tmp}/no/such/dir/x"], "cannot write"),
        (["verify-bundle", "{tmp}/missing.ndjson", "--vkey", "{tmp}/ledger.pub"], "cannot read bundle"),
        (["verify-bundle", "{tmp}/ledger.pub", "--vkey", "{tmp}/missing.pub"], "cannot read verifier key file"),
        (["verify-bundle", "{tmp}/ledger.pub", "--vkey", "{tmp}/ledger.pub", "--trusted-checkpoint", "{tmp}/nope"],
         "cannot read trusted checkpoint"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(data_dir, tmp_path, args, words):
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 50)
    args = [a.format(tmp=tmp_path, data=data_dir) for a in args]
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert words in result.output


def test_verify_with_an_explicit_key_that_did_not_sign_fails(data_dir):
    result = run("verify", "--db", data_dir / "ledger.db", "--vkey", Signer.generate(ORIGIN).vkey)
    assert result.exit_code == 1 and "checkpoint for size 12: note has no valid signature" in result.output


def test_verify_refuses_the_key_inside_the_database_unless_told(data_dir, tmp_path):
    """Whoever rewrites the database can re-sign it with a key of their own and record that key."""
    forged = Signer.generate(ORIGIN)
    db = sqlite3.connect(data_dir / "ledger.db")
    db.execute("DROP TRIGGER meta_no_update")
    db.execute("UPDATE meta SET value = ? WHERE key = 'vkey'", (forged.vkey,))
    db.commit()
    db.close()
    refused = run("verify", "--db", data_dir / "ledger.db")
    assert refused.exit_code == 2 and len(refused.output.strip().splitlines()) == 1
    assert "--trust-db-key" in refused.output
    assert run("verify", "--db", data_dir / "ledger.db", "--vkey", tmp_path / "ledger.pub").exit_code == 0
    told = run("verify", "--db", data_dir / "ledger.db", "--trust-db-key")
    assert told.exit_code == 1 and "no valid signature" in told.output  # the recorded key signed nothing here


def test_verify_against_a_trusted_checkpoint(data_dir, tmp_path):
    with Ledger.open_dir(data_dir, origin=ORIGIN) as led:
        (tmp_path / "old.cp").write_bytes(led.checkpoint())
        led.append([{"kind": "verification", "n": 12}])
    ok = run("verify", "--db", data_dir / "ledger.db", "--trusted-checkpoint", tmp_path / "old.cp")
    assert ok.exit_code == 0, ok.output
    assert "extends the trusted checkpoint of size 12" in ok.output
    # Rolled back to an earlier commit with its checkpoints: the database alone looks honest...
    (tmp_path / "other").mkdir()
    with Ledger(tmp_path / "other" / "ledger.db", origin=ORIGIN, key_path=data_dir / "ledger.key") as other:
        other.append([{"kind": "verification", "n": i} for i in range(5)])
    shorter = tmp_path / "other" / "ledger.db"
    assert run("verify", "--db", shorter, "--vkey", tmp_path / "ledger.pub").exit_code == 0
    bad = run("verify", "--db", shorter, "--trusted-checkpoint", tmp_path / "old.cp")
    assert bad.exit_code == 1 and "a checkpoint for 12 was trusted before: the log was truncated" in bad.output


def test_real_process_verify_and_a_clean_error(data_dir, tmp_path):
    ok = subprocess.run([str(LABELCHECK), "ledger", "verify", "--db", str(data_dir / "ledger.db"),
                         "--vkey", str(tmp_path / "ledger.pub")], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "ledger OK: 12 entries, signed checkpoint at size 12" in ok.stdout
    bad = subprocess.run([str(LABELCHECK), "ledger", "verify-bundle", str(tmp_path / "none"), "--vkey", "x"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "Error:" in bad.stderr


def test_benchmark_runs_at_a_tiny_size(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts/benchmarks/ledger.py"), "--size", "500", "--batches", "2",
         "--singles", "3", "--proofs", "20", "--cache", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["benchmark"] == "ledger" and figures["bundle_verify"]["entries"] == 500
    assert figures["append_batch100"]["ratio"] > 0 and figures["proofs"]["inclusion"]["p99_ms"] > 0
