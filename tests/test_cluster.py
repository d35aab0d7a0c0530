"""Two ``labelcheck serve`` nodes on one PostgreSQL ledger (docs/protocol.md §11):
concurrent clients on both, the sequencing node killed with SIGKILL mid-load
(another node takes over within 5 s), or stopped with SIGSTOP, its socket
open (another node ends its silent session and takes over within 8 s; once
continued, it follows and answers again). The log stays one contiguous
verified chain and every receipt a client holds checks offline."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import psycopg
import pytest
import requests

from labelcheck.ledger import note
from test_gunicorn import LABELCHECK, STREAMING_CLIENT, UNLIMITED, check_receipt_offline, free_port, stop, wait_healthy


def _lines(path) -> int:
    with open(path) as f:
        return sum(1 for _ in f)


def node(tmp_path, data, port, url) -> subprocess.Popen:
    return subprocess.Popen([LABELCHECK, "serve", "--port", str(port), "--data-dir", str(data), "--database", url,
                             "--workers", "2", "--threads", "4"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env=UNLIMITED)


def leader_port(url: str) -> int | None:
    """The client TCP port of the connection holding the sequencer's advisory lock
    (ledger.sequencer.SEQUENCER_LOCK; pg_locks shows its low 32 bits as objid)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                           "WHERE l.locktype = 'advisory' AND l.objid = %s AND l.granted",
                           (0x6C6162656C636B03 & 0xFFFFFFFF,)).fetchone()
    return None if row is None else row[0]


def owner_of_port(port: int, procs: dict) -> str | None:
    """Which node's process group has the TCP connection from ``port``."""
    out = subprocess.run(["ss", "-tnpH", f"sport = :{port}"], capture_output=True, text=True).stdout
    for name, proc in procs.items():
        pids = {proc.pid} | {int(p) for p in subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True,
                                                             text=True).stdout.split()}
        if any(f"pid={p}," in out for p in pids):
            return name
    return None


@pytest.mark.slow
@pytest.mark.parametrize("how, within", [(signal.SIGKILL, 5), (signal.SIGSTOP, 8)], ids=["SIGKILL", "SIGSTOP"])
def test_two_nodes_one_log_sequencer_killed(tmp_path, postgres, how, within):
    url = postgres.create_database(f"cluster_{how.name.lower()}")
    a, b = tmp_path / "a", tmp_path / "b"
    procs = {"a": node(tmp_path, a, free_port(), url)}
    ports = {"a": int(procs["a"].args[3])}
    wait_healthy(f"http://127.0.0.1:{ports['a']}", procs["a"])
    b.mkdir()
    shutil.copy2(a / "ledger.key", b / "ledger.key")  # every node signs with the same key
    ports["b"] = free_port()
    procs["b"] = node(tmp_path, b, ports["b"], url)
    clients = []
    try:
        wait_healthy(f"http://127.0.0.1:{ports['b']}", procs["b"])
        keys_doc = requests.get(f"http://127.0.0.1:{ports['a']}/v1/keys", timeout=10).json()
        assert requests.get(f"http://127.0.0.1:{ports['b']}/v1/keys", timeout=10).json() == keys_doc
        items = tmp_path / "items.json"
        items.write_text(json.dumps([{"content_sha256": "cd" * 32, "page_url": "https://a.example/"}] * 2))
        clients = [subprocess.Popen([sys.executable, "-c", STREAMING_CLIENT, f"http://127.0.0.1:{ports[n]}",
                                     str(items), str(tmp_path / f"receipts-{n}-{i}.ndjson")])
                   for n in ("a", "b") for i in range(2)]
        deadline = time.monotonic() + 60
        while sum(p.stat().st_size for p in tmp_path.glob("receipts-*.ndjson")) < 40_000:
            assert time.monotonic() < deadline, "clients got too few answers"
            time.sleep(0.05)
        leader = owner_of_port(leader_port(url), procs)
        assert leader in procs
        other = "b" if leader == "a" else "a"
        before = sum(map(_lines, tmp_path.glob(f"receipts-{other}-*.ndjson")))
        killed_at = time.monotonic()
        os.killpg(procs[leader].pid, how)
        if how == signal.SIGKILL:
            procs[leader].communicate(timeout=20)
        while leader_port(url) is None or owner_of_port(leader_port(url), procs) != other:
            assert time.monotonic() - killed_at < within, f"no node took over within {within} s"
            time.sleep(0.05)
        takeover = time.monotonic() - killed_at
        while sum(map(_lines, tmp_path.glob(f"receipts-{other}-*.ndjson"))) < before + 20:
            assert time.monotonic() - killed_at < 20, "the surviving node stopped answering"
            time.sleep(0.05)
        print(f"takeover after {how.name}: {takeover:.2f} s")
        if how == signal.SIGSTOP:  # continued, the stopped node follows and answers again
            held = {f: _lines(f) for f in tmp_path.glob(f"receipts-{leader}-*.ndjson")}
            os.killpg(procs[leader].pid, signal.SIGCONT)
            deadline = time.monotonic() + 20
            while True:
                got = requests.post(f"http://127.0.0.1:{ports[leader]}/v1/verify", timeout=30,
                                    json={"items": json.loads(items.read_text())})
                if got.status_code == 200:
                    break  # its own answer, checked below with the clients'
                assert got.status_code == 503 and time.monotonic() < deadline, got.text
                time.sleep(0.2)
            (tmp_path / f"receipts-{leader}-continued.ndjson").write_text(
                "".join(json.dumps(r["receipt"]) + "\n" for r in got.json()["results"]))
            assert owner_of_port(leader_port(url), procs) == other  # it did not take the lead back
            # The requests it held when it stopped, in commits its session's
            # end cut off, were answered, not failed: its clients (which stop
            # at an error) go on.
            while any(_lines(f) < n + 4 for f, n in held.items()):
                assert all(c.poll() is None for c in clients), "a client got an error (see its stderr)"
                assert time.monotonic() < deadline + 20, "the continued node's clients got no more answers"
                time.sleep(0.05)
    finally:
        for name, proc in procs.items():
            if proc.poll() is None:
                print(f"--- node {name}, its log's end (shown when the test fails) ---\n{stop(proc)[-6000:]}")
        for c in clients:
            c.wait(timeout=60)
    receipts = [json.loads(line) for f in sorted(tmp_path.glob("receipts-*.ndjson"))
                for line in f.read_text().splitlines() if line.strip()]
    assert len(receipts) >= 40
    verifier = note.Verifier.from_vkey(keys_doc["ledger_vkey"])
    for receipt in receipts:
        check_receipt_offline(receipt, verifier, keys_doc["origin"])
    one = tmp_path / "one-receipt.json"
    one.write_text(json.dumps(receipts[-1]))
    checked = subprocess.run([LABELCHECK, "ledger", "check-receipt", str(one), "--vkey", keys_doc["ledger_vkey"]],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    with psycopg.connect(url) as conn:
        n, lo, hi = conn.execute("SELECT count(*), min(idx), max(idx) FROM ledger_entries").fetchone()
    assert (lo, hi) == (0, n - 1)  # contiguous
    assert len({r["index"] for r in receipts}) == len(receipts)
    done = subprocess.run([LABELCHECK, "ledger", "verify", "--db", url, "--vkey", keys_doc["ledger_vkey"]],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
