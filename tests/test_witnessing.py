"""The log asks real witnesses to cosign: ``labelcheck serve --witness``
against ``labelcheck witness serve`` processes on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import subprocess
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from labelcheck.cli import main
from labelcheck.ledger import checkpoint, keyfile, note
from labelcheck.ledger.cosignature import CosignatureVerifier
from labelcheck.ledger.log import Ledger
from labelcheck.pipeline.config import Config, ConfigError
from labelcheck.pipeline.witnessing import parse_witnesses
from labelcheck.witness.client import RemoteWitness, cosigned_checkpoint, count_cosignatures
from slowclients import LABELCHECK, free_port, serve, stop, wait_healthy

pytestmark = pytest.mark.slow


def start_witness(tmp: Path, name: str, log_pub: Path) -> tuple[subprocess.Popen, str, str]:
    """A witness process; returns it, its verifier key and its URL."""
    out = tmp / name
    result = CliRunner().invoke(main, ["witness", "keygen", name, "--out", str(out)])
    assert result.exit_code == 0, result.output
    port = free_port()
    proc = subprocess.Popen([LABELCHECK, "witness", "serve", "--data-dir", str(out / "state"), "--port", str(port),
                             "--key", str(out / f"{name}.key"), "--log", str(log_pub)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, proc)
    return proc, (out / f"{name}.pub").read_text().strip(), url


def log_key(data: Path) -> Path:
    """Create the ledger's key before the server starts, so witnesses can know it."""
    signer = keyfile.load_or_create(data / "ledger.key", "labelcheck.localhost/ledger")
    pub = data.parent / "ledger.pub"
    pub.write_text(signer.vkey + "\n")
    return pub


def wait_cosigned(base: str, size: int, witnesses: list[str], timeout: float = 20.0) -> bytes:
    """Poll GET /v1/checkpoint until it covers ``size`` entries."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r = requests.get(base + "/v1/checkpoint", timeout=5)
        if r.status_code == 200:
            cp = checkpoint.Checkpoint.parse(r.content[: r.content.index(b"\n\n") + 1].decode())
            if cp.size >= size:
                return r.content
        else:
            assert r.status_code == 503 and r.headers["Content-Type"] == "application/problem+json"
        time.sleep(0.3)
    raise AssertionError(f"no checkpoint of size >= {size} was cosigned by {witnesses}")


def grow(base: str, n: int) -> int:
    """Append ``n`` verification entries; the ledger's size afterwards."""
    r = requests.post(base + "/v1/verify", json={"items": [{"content_sha256": "ab" * 32}] * n}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["results"][-1]["receipt"]["index"] + 1


def test_checkpoint_carries_a_quorum_of_cosignatures(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    pub = log_key(data)
    w1, v1, u1 = start_witness(tmp_path, "w1.example/w", pub)
    w2, v2, u2 = start_witness(tmp_path, "w2.example/w", pub)
    port = free_port()
    server = serve(data, port, "--workers", "2", "--witness", f"{v1}={u1}", "--witness", f"{v2}={u2}")
    base = f"http://127.0.0.1:{port}"
    try:
        size = grow(base, 5)
        signed = wait_cosigned(base, size, [u1, u2])
        log_verifier = note.Verifier.from_vkey(pub.read_text().strip())
        witnesses = [CosignatureVerifier.from_vkey(v1), CosignatureVerifier.from_vkey(v2)]
        cp, count = count_cosignatures(signed, log_verifier, witnesses)
        assert count == 2 and cp.size >= size
        # The log keeps going; the witnesses follow with consistency proofs.
        size = grow(base, 7)
        cp, count = count_cosignatures(wait_cosigned(base, size, [u1, u2]), log_verifier, witnesses)
        assert count == 2 and cp.size >= size
        # One witness goes away: with a quorum of 2 nothing newer is served.
        stop(w2)
        grown = grow(base, 3)
        time.sleep(3)
        served = requests.get(base + "/v1/checkpoint", timeout=5).content
        assert count_cosignatures(served, log_verifier, witnesses)[0].size < grown
    finally:
        stop(server)
        stop(w1)
        if w2.poll() is None:
            stop(w2)


def test_quorum_of_one_keeps_serving_when_a_witness_is_down(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    pub = log_key(data)
    w1, v1, u1 = start_witness(tmp_path, "w1.example/w", pub)
    dead = f"{CliRunner().invoke(main, ['witness', 'keygen', 'dead.example/w', '--out', str(tmp_path / 'd')]).output.split()[-1]}"
    port = free_port()
    server = serve(data, port, "--witness", f"{v1}={u1}", "--witness", f"{dead}=http://127.0.0.1:{free_port()}",
                   "--witness-quorum", "1")
    base = f"http://127.0.0.1:{port}"
    try:
        size = grow(base, 4)
        signed = wait_cosigned(base, size, [u1])
        log_verifier = note.Verifier.from_vkey(pub.read_text().strip())
        _, count = count_cosignatures(signed, log_verifier, [CosignatureVerifier.from_vkey(v1),
                                                             CosignatureVerifier.from_vkey(dead)])
        assert count == 1
    finally:
        stop(server)
        stop(w1)


@pytest.mark.parametrize("specs, quorum, why", [
    (("nonsense",), 0, "VKEY=URL"),
    (("a+00000000+AQ==@x=http://h",), 0, "witness key"),
    (("a+00000000+AQ===ftp://h",), 0, "VKEY=URL"),
    ((), 0, None),
])
def test_witness_configuration_is_checked(specs, quorum, why):
    cfg = Config.load({"witnesses": specs, "witness_quorum": quorum}, environ={})
    if why is None:
        assert parse_witnesses(cfg) == ([], 0)
        return
    with pytest.raises(ConfigError, match=why):
        parse_witnesses(cfg)


def test_quorum_above_the_witness_count_is_refused(tmp_path):
    vkey = CliRunner().invoke(main, ["witness", "keygen", "w.example/w", "--out", str(tmp_path)]).output.split()[-1]
    cfg = Config.load({"witnesses": (f"{vkey}=http://127.0.0.1:1",), "witness_quorum": 2}, environ={})
    with pytest.raises(ConfigError, match="quorum"):
        parse_witnesses(cfg)
    result = CliRunner().invoke(main, ["serve", "--data-dir", str(tmp_path / "d"), "--witness",
                                       f"{vkey}=http://127.0.0.1:1", "--witness-quorum", "2"])
    assert result.exit_code == 2 and "quorum" in result.output


def test_nodes_of_one_log_asking_the_same_witness_catch_up_and_a_log_behind_it_is_reported(tmp_path, caplog):
    """Nodes sharing one log (here, one ledger read by two witness clients)
    each ask the witness: one offering a checkpoint older than the witness's
    newest catches up to the log's newest without a warning; a log whose
    newest is below what the witness cosigned (a split view, a rollback)
    gets none and is reported."""
    data = tmp_path / "data"
    data.mkdir()
    pub = log_key(data)
    proc, vkey, url = start_witness(tmp_path, "w1.example/w", pub)
    try:
        with Ledger.open_dir(data, origin="labelcheck.localhost/ledger") as led:
            led.append([{"kind": "verification", "n": i} for i in range(5)])
            stale = (led.checkpoint(), 5)  # what node A read before the log grew
            led.append([{"kind": "verification", "n": i} for i in range(5, 12)])

            def newest():
                return led.checkpoint(), led.size()

            node_b, node_a = RemoteWitness.parse(f"{vkey}={url}"), RemoteWitness.parse(f"{vkey}={url}")
            assert cosigned_checkpoint(newest, [node_b], 1, led.consistency_proof)[1] == 12
            offers = iter([stale])
            with caplog.at_level(logging.WARNING, logger="labelcheck.witness"):
                got = cosigned_checkpoint(lambda: next(offers, None) or newest(), [node_a], 1, led.consistency_proof)
            assert got is not None and got[1] == 12 and not caplog.records
            log_verifier = note.Verifier.from_vkey(pub.read_text().strip())
            assert count_cosignatures(got[0], log_verifier, [CosignatureVerifier.from_vkey(vkey)])[1] == 1
            # A node whose log stops at 5 (rolled back): no cosignature, a warning.
            node_c = RemoteWitness.parse(f"{vkey}={url}")
            with caplog.at_level(logging.WARNING, logger="labelcheck.witness"):
                assert cosigned_checkpoint(lambda: stale, [node_c], 1, led.consistency_proof) is None
            assert any("seen another log" in r.getMessage() for r in caplog.records)
    finally:
        stop(proc)


def test_two_nodes_on_one_database_get_their_checkpoints_cosigned_by_one_witness(tmp_path, postgres):
    """``labelcheck serve --database`` twice, one witness: each node runs
    its own rounds, both serve cosigned checkpoints as the log grows through
    either, and neither reports a split view. (The race of two rounds is
    rare here; the test above makes it happen.)"""
    url = postgres.create_database("witnessed_nodes")
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    pub = log_key(one)
    two.mkdir()
    (two / "ledger.key").write_bytes((one / "ledger.key").read_bytes())
    (two / "ledger.key").chmod(0o600)
    proc, vkey, wurl = start_witness(tmp_path, "w1.example/w", pub)
    ports = [free_port(), free_port()]
    nodes = [serve(data, port, "--workers", "1", "--database", url, "--witness", f"{vkey}={wurl}")
             for data, port in zip((one, two), ports)]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    outputs = []
    try:
        log_verifier = note.Verifier.from_vkey(pub.read_text().strip())
        witness = [CosignatureVerifier.from_vkey(vkey)]
        for turn in range(6):  # the log grows through one node, then the other
            size = grow(bases[turn % 2], 3)
            time.sleep(0.4)  # rounds of both nodes interleave with the growth
        for base in bases:
            cp, count = count_cosignatures(wait_cosigned(base, size, [wurl]), log_verifier, witness)
            assert count == 1 and cp.size >= size
    finally:
        outputs = [stop(node) for node in nodes]
        stop(proc)
    for out in outputs:
        assert "seen another log" not in out and "Traceback" not in out, out


def test_a_fresh_receipt_checks_against_a_server_whose_witnessed_checkpoint_lags(tmp_path):
    """A receipt carries its commit's checkpoint at once; the server serves
    the newest checkpoint the witnesses cosigned, which lags (here: the
    witness is gone). ``check-receipt --server`` is then shown an older
    checkpoint, which the server proves the receipt's tree extends: no
    alarm, no evidence."""
    data = tmp_path / "data"
    data.mkdir()
    pub = log_key(data)
    witness, vkey, wurl = start_witness(tmp_path, "w1.example/w", pub)
    port = free_port()
    server = serve(data, port, "--witness", f"{vkey}={wurl}")
    base = f"http://127.0.0.1:{port}"
    try:
        cosigned = checkpoint.Checkpoint.parse(wait_cosigned(base, grow(base, 3), [wurl]).split(b"\n\n")[0].decode()
                                               + "\n")
        stop(witness)
        r = requests.post(base + "/v1/verify", json={"items": [{"content_sha256": "cd" * 32}]}, timeout=30)
        receipt = r.json()["results"][0]["receipt"]
        assert receipt["index"] >= cosigned.size
        (tmp_path / "receipt.json").write_text(json.dumps(receipt))
        done = subprocess.run([LABELCHECK, "ledger", "check-receipt", str(tmp_path / "receipt.json"),
                               "--vkey", str(pub), "--server", base], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)
    finally:
        stop(server)
        if witness.poll() is None:
            stop(witness)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"served an older checkpoint (size {cosigned.size})" in done.stdout
    assert not (tmp_path / "labelcheck-evidence").exists()
