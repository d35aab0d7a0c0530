"""A real ``labelcheck serve`` (gunicorn, 2 workers) on 127.0.0.1 under
concurrent client processes: the ledger stays one contiguous, verifiable log
and every receipt proves inclusion against the served checkpoint."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from labelcheck.ledger import checkpoint as ckpt
from labelcheck.ledger import merkle, note
from labelcheck import claims
from labelcheck.ledger import keyfile as keys
from slowclients import free_port, stop, wait_healthy

REPO = Path(__file__).resolve().parents[1]
LABELCHECK = str(Path(sys.executable).with_name("labelcheck"))
# The streaming clients below send as fast as they are answered, all from
# 127.0.0.1: the per-address rate limit would stop them (it has tests of its own).
UNLIMITED = {**os.environ, "LABELCHECK_VERIFY_RATE": "0"}

CLIENT = r"""
import json, sys, requests
base, claim_file, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
items = json.load(open(claim_file))
out = []
with requests.Session() as s:
    for i in range(n):
        r = s.post(base + "/v1/verify", json={"items": items}, timeout=60)
        r.raise_for_status()
        out.extend(res["receipt"] | {"status": res["status"]} for res in r.json()["results"])
print(json.dumps(out))
"""


def check_receipt_offline(receipt: dict, verifier: note.Verifier, origin: str) -> ckpt.Checkpoint:
    """docs/protocol.md §3: open the receipt's checkpoint with the ledger key, check its inclusion proof."""
    cp = ckpt.open_checkpoint(receipt["checkpoint"].encode(), verifier, origin=origin)
    merkle.verify_inclusion(receipt["index"], cp.size, base64.b64decode(receipt["leaf_hash"]),
                            [base64.b64decode(h) for h in receipt["inclusion"]], cp.root)
    return cp


@pytest.mark.slow
def test_two_workers_concurrent_clients(tmp_path):
    data = tmp_path / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([LABELCHECK, "serve", "--port", str(port), "--data-dir", str(data),
                             "--workers", "2", "--threads", "4"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_healthy(base, proc)
        admin = {"Authorization": "Bearer " + (data / "admin.token").read_text().strip()}
        signer = keys.generate_key("gunicorn-ai")
        r = requests.post(base + "/v1/producers", json={"name": "G", "vkey": signer.vkey}, headers=admin, timeout=10)
        assert r.status_code == 201, r.text
        sha = "ab" * 32
        env = claims.sign_envelope(claims.build_payload(sha, "image/png", "1", issuer=signer), signer)
        items = [{"claim": env, "content_sha256": sha, "page_url": "https://site.example/p"}] * 5
        claim_file = tmp_path / "items.json"
        claim_file.write_text(json.dumps(items))

        clients = [subprocess.Popen([sys.executable, "-c", CLIENT, base, str(claim_file), "8"],
                                    stdout=subprocess.PIPE, text=True) for _ in range(4)]
        receipts = []
        for c in clients:
            out, _ = c.communicate(timeout=120)
            assert c.returncode == 0
            receipts.extend(json.loads(out))
        assert len(receipts) == 4 * 8 * 5
        assert {r["status"] for r in receipts} == {"verified"}
        indexes = sorted(r["index"] for r in receipts)
        assert len(set(indexes)) == len(indexes)

        keys_doc = requests.get(base + "/v1/keys", timeout=10).json()
        verifier = note.Verifier.from_vkey(keys_doc["ledger_vkey"])
        cp = ckpt.open_checkpoint(requests.get(base + "/v1/checkpoint", timeout=10).content,
                                  verifier, origin=keys_doc["origin"])
        assert cp.size == 1 + len(receipts)  # the registry entry, then every verification

        lines = requests.get(base + f"/v1/entries?start=0&end={cp.size}", timeout=10).content.splitlines()
        assert [json.loads(x)["index"] for x in lines] == list(range(cp.size))
        assert indexes == list(range(1, cp.size))  # contiguous: no gaps, no strays
        for receipt in receipts:
            leaf = merkle.leaf_hash(lines[receipt["index"]])
            assert base64.b64encode(leaf).decode() == receipt["leaf_hash"]
            proof = requests.get(base + f"/v1/proof/inclusion?index={receipt['index']}&size={cp.size}",
                                 timeout=10).json()
            merkle.verify_inclusion(receipt["index"], cp.size, leaf,
                                    [base64.b64decode(h) for h in proof["hashes"]], cp.root)
            check_receipt_offline(receipt, verifier, keys_doc["origin"])
    finally:
        output = stop(proc)
    assert "labelcheck: serving" in output and "ledger key" in output
    done = subprocess.run([LABELCHECK, "ledger", "verify", "--db", str(data / "ledger.db"),
                           "--vkey", keys_doc["ledger_vkey"]],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("how", ["env", "flag"])
def test_scripts_serve_smoke(tmp_path, how):
    """scripts/serve on a temp data dir and a free port, given in the
    environment or as --port: healthy, demo producer registered, and its
    hints name the address it really serves."""
    port = free_port()
    env = dict(os.environ, LABELCHECK_DATA_DIR=str(tmp_path / "data"), LABELCHECK_WORKERS="1")
    env.pop("LABELCHECK_PORT", None)
    args = ["--port", str(port)] if how == "flag" else []
    if how == "env":
        env["LABELCHECK_PORT"] = str(port)
    proc = subprocess.Popen([str(REPO / "scripts" / "serve"), *args], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc, timeout=60)
        producers = requests.get(base + "/v1/keys", timeout=10).json()["producers"]
        demo_key = keys.load_signer(tmp_path / "data" / "demo-producer.key")
        assert demo_key.key_id in [p["key_id"] for p in producers]
        assert requests.get(base + "/demo/", timeout=30).status_code == 200
    finally:
        output = stop(proc)
    assert f"http://127.0.0.1:{port}/demo/" in output
    assert "extension" in output
    # Enough threads by default that verifications waiting on the ledger's fsync overlap.
    assert "1 worker(s) x 16 thread(s)" in output


# Each response's receipts are written (and flushed) as soon as it is complete,
# until the server goes away.
STREAMING_CLIENT = r"""
import json, sys, requests
base, claim_file, out_path = sys.argv[1], sys.argv[2], sys.argv[3]
items = json.load(open(claim_file))
with requests.Session() as s, open(out_path, "a") as out:
    while True:
        try:
            r = s.post(base + "/v1/verify", json={"items": items}, timeout=30)
        except requests.RequestException as exc:
            print("streaming client stops:", exc, file=sys.stderr)
            break
        if r.status_code != 200:
            print("streaming client stops:", r.status_code, r.text[:500], file=sys.stderr)
            break
        out.write("".join(json.dumps(res["receipt"]) + "\n" for res in r.json()["results"]))
        out.flush()
"""


def serve(tmp_path, data, port) -> subprocess.Popen:
    return subprocess.Popen([LABELCHECK, "serve", "--port", str(port), "--data-dir", str(data),
                             "--workers", "2", "--threads", "4"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env=UNLIMITED)


@pytest.mark.slow
def test_sigkill_during_concurrent_verifies_keeps_every_receipt(tmp_path):
    """SIGKILL the whole server (master and workers) mid-stream; after restart every
    receipt a client received verifies offline, and the new checkpoint is consistent
    with each receipt's checkpoint."""
    data = tmp_path / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = serve(tmp_path, data, port)
    clients = []
    try:
        wait_healthy(base, proc)
        keys_doc = requests.get(base + "/v1/keys", timeout=10).json()
        claim_file = tmp_path / "items.json"
        claim_file.write_text(json.dumps([{"content_sha256": "cd" * 32, "page_url": "https://a.example/"}] * 3))
        clients = [subprocess.Popen([sys.executable, "-c", STREAMING_CLIENT, base, str(claim_file),
                                     str(tmp_path / f"receipts-{i}.ndjson")]) for i in range(4)]
        deadline = time.monotonic() + 60
        while sum(p.stat().st_size for p in tmp_path.glob("receipts-*.ndjson")) < 60_000:
            assert time.monotonic() < deadline, "clients got too few answers"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=20)
        for c in clients:
            c.wait(timeout=60)
    receipts = [json.loads(line) for f in sorted(tmp_path.glob("receipts-*.ndjson"))
                for line in f.read_text().splitlines()]
    assert len(receipts) >= 30

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = serve(tmp_path, data, port)
    try:
        wait_healthy(base, proc)
        assert requests.get(base + "/v1/keys", timeout=10).json()["ledger_vkey"] == keys_doc["ledger_vkey"]
        verifier = note.Verifier.from_vkey(keys_doc["ledger_vkey"])
        head = ckpt.open_checkpoint(requests.get(base + "/v1/checkpoint", timeout=10).content, verifier,
                                    origin=keys_doc["origin"])
        proofs = {}
        for receipt in receipts:
            cp = check_receipt_offline(receipt, verifier, keys_doc["origin"])
            assert cp.size <= head.size
            if cp.size not in proofs:
                r = requests.get(base + f"/v1/proof/consistency?from={cp.size}&to={head.size}", timeout=10)
                proofs[cp.size] = [base64.b64decode(h) for h in r.json()["hashes"]]
            merkle.verify_consistency(cp.size, head.size, cp.root, head.root, proofs[cp.size])
        assert requests.post(base + "/v1/verify", json={"items": [{}]}, timeout=30).status_code == 200
    finally:
        stop(proc)
    done = subprocess.run([LABELCHECK, "ledger", "verify", "--db", str(data / "ledger.db"),
                           "--vkey", keys_doc["ledger_vkey"]], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
