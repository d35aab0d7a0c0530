"""The witness: C2SP tlog-cosignature keys and signatures, and tlog-witness
``add-checkpoint`` answers, each status code from the spec's rules."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labelcheck.cli import main
from labelcheck.ledger import checkpoint, keyfile, merkle, note
from labelcheck.ledger.cosignature import (CosignatureSigner, CosignatureVerifier, add_signatures,
                                           signed_message, timestamp)
from labelcheck.util import b64
from labelcheck.util import gunicorn_stalls
from labelcheck.witness.app import WitnessServer, create_witness_app
from labelcheck.witness.protocol import Witness, parse_body, BadRequest
from labelcheck.witness.state import WitnessState

ORIGIN = "log.example/test"


class Log:
    """A log in memory: its tree and its signer."""

    def __init__(self, signer: note.Signer, prefix: bytes = b"entry") -> None:
        self.signer, self.tree, self.prefix = signer, merkle.MemoryHashes(), prefix

    def grow(self, n: int) -> None:
        for _ in range(n):
            self.tree.append_data(self.prefix + b" %d" % self.tree.size)

    def note(self, size: int | None = None) -> bytes:
        size = self.tree.size if size is None else size
        cp = checkpoint.Checkpoint(ORIGIN, size, self.tree.root(size))
        return checkpoint.sign_checkpoint(cp, self.signer)

    def body(self, old: int, size: int | None = None, proof: list[bytes] | None = None) -> bytes:
        size = self.tree.size if size is None else size
        if proof is None:
            proof = self.tree.prove_consistency(old, size) if 0 < old < size else []
        head = "".join(f"{b64.encode(h)}\n" for h in proof)
        return f"old {old}\n{head}\n".encode() + self.note(size)


@pytest.fixture
def log_signer():
    return note.Signer.generate(ORIGIN)


@pytest.fixture
def witness(tmp_path, log_signer):
    signer = CosignatureSigner.generate("witness.example/w1")
    return Witness(signer, {ORIGIN: [log_signer.verifier()]}, WitnessState(tmp_path / "witness.db"))


# --- cosignatures ------------------------------------------------------------


def test_key_id_is_the_spec_formula():
    signer = CosignatureSigner.generate("witness.example/w1")
    want = hashlib.sha256(b"witness.example/w1\n\x04" + signer.public_key).digest()[:4]
    assert signer.hash == struct.unpack(">I", want)[0]
    verifier = CosignatureVerifier.from_vkey(signer.vkey)
    assert verifier == signer.verifier()
    assert b64.decode(signer.vkey.split("+", 2)[2])[0] == 0x04
    assert CosignatureSigner.from_skey(signer.skey) == signer


def test_cosignature_opens_beside_the_log_signature(log_signer):
    witness = CosignatureSigner.generate("witness.example/w1")
    signed = checkpoint.sign_checkpoint(checkpoint.Checkpoint(ORIGIN, 3, b"\x01" * 32), log_signer)
    body = signed[: signed.index(b"\n\n") + 1]
    line = witness.cosign(body, timestamp=1679315147)
    cosigned = add_signatures(signed, line)
    opened = note.open_note(cosigned, [log_signer.verifier(), witness.verifier()])
    assert {s.name for s in opened.sigs} == {ORIGIN, "witness.example/w1"}
    assert timestamp(line.split(" ")[2].strip()) == 1679315147
    # The message is the spec's: header, time line, then the note body.
    assert signed_message(body, 7) == b"cosignature/v1\ntime 7\n" + body


def test_cosignature_fails_on_other_time_other_body_or_as_a_log_key(log_signer):
    witness = CosignatureSigner.generate("witness.example/w1")
    body = b"log.example/test\n3\n" + b64.encode(b"\x01" * 32).encode() + b"\n"
    raw = b64.decode(witness.cosign(body, timestamp=100).split(" ")[2].strip())
    v = witness.verifier()
    assert v.verify(body, raw[4:])
    assert not v.verify(body, struct.pack(">Q", 101) + raw[12:])  # another time
    assert not v.verify(body.replace(b"3\n", b"4\n"), raw[4:])
    # An Ed25519 note verifier with the same key material must not accept it.
    plain = note.Verifier(witness.name, witness.hash, witness.public_key)
    assert not plain.verify(body, raw[4:])


@given(st.integers(min_value=1, max_value=255), st.integers(min_value=0, max_value=71),
       st.integers(min_value=0, max_value=71))
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
def test_a_changed_cosignature_never_verifies(mask, at, keep):
    """Any bit flip in the timestamp or signature, and any truncation, fails."""
    body = b"log.example/test\n9\n" + b64.encode(b"\x02" * 32).encode() + b"\n"
    sig = b64.decode(_SIGNER.cosign(body, timestamp=1).split(" ")[2].strip())[4:]
    flipped = sig[:at] + bytes([sig[at] ^ mask]) + sig[at + 1:]
    assert not _SIGNER.verifier().verify(body, flipped)
    assert not _SIGNER.verifier().verify(body, sig[:keep])
    assert not _SIGNER.verifier().verify(body, sig + b"\0")


_SIGNER = CosignatureSigner.generate("witness.example/prop")


@pytest.mark.parametrize("bad", [
    "witness.example/w1+00000000+AQ==",  # wrong length
    "witness.example/w1+zzzzzzzz+" + b64.encode(b"\x04" + b"\0" * 32),  # hash not hex
])
def test_malformed_witness_keys_are_refused(bad):
    with pytest.raises(note.NoteError):
        CosignatureVerifier.from_vkey(bad)


def test_a_log_key_is_not_a_witness_key(log_signer):
    with pytest.raises(note.NoteError, match="0x04"):
        CosignatureVerifier.from_vkey(log_signer.vkey)


# --- add-checkpoint ------------------------------------------------------------


def test_first_checkpoint_is_cosigned_and_recorded(witness, log_signer):
    log = Log(log_signer)
    log.grow(5)
    answer = witness.add_checkpoint(log.body(0))
    assert answer.status == 200, answer.body
    assert answer.body.startswith("\u2014 witness.example/w1 ") and answer.body.endswith("\n")
    cosigned = add_signatures(log.note(), answer.body)
    opened = note.open_note(cosigned, [witness.signer.verifier()])
    assert [s.name for s in opened.sigs] == ["witness.example/w1"]
    assert witness.state.latest(ORIGIN).size == 5


def test_growth_needs_a_valid_consistency_proof(witness, log_signer):
    log = Log(log_signer)
    log.grow(5)
    assert witness.add_checkpoint(log.body(0)).status == 200
    log.grow(8)
    bad = log.tree.prove_consistency(5, 13)
    bad[0] = bytes(32)
    answer = witness.add_checkpoint(log.body(5, proof=bad))
    assert answer.status == 422
    assert witness.state.latest(ORIGIN).size == 5  # nothing recorded
    assert witness.add_checkpoint(log.body(5)).status == 200
    assert witness.state.latest(ORIGIN).size == 13


def test_stale_old_size_is_409_with_the_latest_size(witness, log_signer):
    log = Log(log_signer)
    log.grow(4)
    assert witness.add_checkpoint(log.body(0)).status == 200
    log.grow(2)
    answer = witness.add_checkpoint(log.body(0))  # the log forgot what it sent
    assert (answer.status, answer.body, answer.content_type) == (409, "4\n", "text/x.tlog.size")
    assert witness.add_checkpoint(log.body(4)).status == 200


def test_unknown_origin_is_404_and_unsigned_is_403(witness, log_signer):
    other = note.Signer.generate("other.example/log")
    cp = checkpoint.Checkpoint("other.example/log", 0, merkle.EMPTY_ROOT)
    assert witness.add_checkpoint(b"old 0\n\n" + checkpoint.sign_checkpoint(cp, other)).status == 404
    impostor = note.Signer.generate(ORIGIN)  # same name, other key
    log = Log(impostor)
    log.grow(1)
    assert witness.add_checkpoint(log.body(0)).status == 403
    # A trusted key's signature that fails to verify is 403 too.
    good = Log(log_signer)
    good.grow(1)
    body = bytearray(good.body(0))
    body[-5] = ord("A") if body[-5] != ord("A") else ord("B")
    assert witness.add_checkpoint(bytes(body)).status == 403


def test_old_size_above_checkpoint_is_400(witness, log_signer):
    log = Log(log_signer)
    log.grow(3)
    assert witness.add_checkpoint(log.body(5, size=3, proof=[])).status == 400


def test_same_size_other_root_is_refused(witness, log_signer):
    log = Log(log_signer)
    log.grow(3)
    assert witness.add_checkpoint(log.body(0)).status == 200
    fork = Log(log_signer, prefix=b"fork")
    fork.grow(3)
    assert witness.add_checkpoint(fork.body(3, proof=[])).status == 422


def test_empty_tree_must_have_the_empty_root(witness, log_signer):
    cp = checkpoint.Checkpoint(ORIGIN, 0, b"\x07" * 32)
    assert witness.add_checkpoint(b"old 0\n\n" + checkpoint.sign_checkpoint(cp, log_signer)).status == 422
    log = Log(log_signer)
    log.grow(2)  # from the empty tree the proof must be empty
    assert witness.add_checkpoint(log.body(0, proof=[bytes(32)])).status == 422


def test_rolled_back_log_gets_nothing_cosigned(witness, log_signer):
    log = Log(log_signer)
    log.grow(10)
    assert witness.add_checkpoint(log.body(0)).status == 200
    shrunk = Log(log_signer)
    shrunk.grow(7)
    assert witness.add_checkpoint(shrunk.body(10, size=7, proof=[])).status == 400
    answer = witness.add_checkpoint(shrunk.body(7, size=7, proof=[]))
    assert (answer.status, answer.body) == (409, "10\n")
    assert witness.state.latest(ORIGIN).size == 10


def test_split_view_only_the_first_log_is_cosigned(witness, log_signer):
    """Two logs, same key and origin, different entries: the witness cosigns
    whichever it sees first and nothing of the other."""
    honest, evil = Log(log_signer), Log(log_signer, prefix=b"evil")
    honest.grow(6)
    evil.grow(6)
    assert witness.add_checkpoint(honest.body(0)).status == 200
    assert witness.add_checkpoint(evil.body(0)).status == 409
    assert witness.add_checkpoint(evil.body(6, proof=[])).status == 422
    evil.grow(3)
    assert witness.add_checkpoint(evil.body(6, proof=evil.tree.prove_consistency(6, 9))).status == 422
    assert witness.state.latest(ORIGIN).root == honest.tree.root(6)


@pytest.mark.parametrize("body", [
    b"", b"old 0\n", b"old 01\n\nx", b"old -1\n\nx", b"olds 0\n\nx", b"old 0\nnot base64\n\nx",
    b"old 0\n" + b"AAAA\n" + b"\nx", b"\xff\xfe\n\n", b"old 0\n" + (b64.encode(bytes(32)) + "\n").encode() * 64 + b"\nx",
    b"old 99999999999999999999\n\nx",
])
def test_malformed_bodies_are_400(witness, body):
    with pytest.raises(BadRequest):
        parse_body(body)
    assert witness.add_checkpoint(body).status == 400


@given(st.binary(max_size=300))
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_body_gets_an_answer_never_an_exception(body):
    answer = _PROP_WITNESS.add_checkpoint(body)
    assert answer.status in (200, 400, 403, 404, 409, 422)


_PROP_DIR = Path(os.environ.get("TMPDIR", "/tmp")) / f"labelcheck-witness-prop-{os.getpid()}.db"
_PROP_WITNESS = Witness(_SIGNER, {ORIGIN: [note.Signer.generate(ORIGIN).verifier()]}, WitnessState(_PROP_DIR))


def test_concurrent_submissions_never_roll_back(witness, log_signer):
    """Many threads race with old sizes they believe in; every 200 is for a
    size at least as large as any cosigned before it, and the record ends at
    the largest cosigned size."""
    log = Log(log_signer)
    log.grow(40)
    cosigned, lock = [], threading.Lock()

    def submit(size):
        for old in range(0, size + 1, 4):
            answer = witness.add_checkpoint(log.body(old, size=size))
            if answer.status == 200:
                with lock:
                    cosigned.append(size)
                return

    threads = [threading.Thread(target=submit, args=(s,)) for s in range(4, 41, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cosigned and witness.state.latest(ORIGIN).size == max(cosigned)
    assert cosigned == sorted(cosigned)  # the record only ever grew


def test_witness_killed_mid_request_keeps_a_consistent_record(tmp_path, log_signer):
    """SIGKILL a process cosigning in a loop; the record is then one of the
    checkpoints it cosigned, whole, and the witness carries on from it."""
    db = tmp_path / "witness.db"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_witness import Log, ORIGIN
        from labelcheck.ledger import note
        from labelcheck.ledger.cosignature import CosignatureSigner
        from labelcheck.witness.protocol import Witness
        from labelcheck.witness.state import WitnessState
        signer = note.Signer.from_skey({log_signer.skey!r})
        w = Witness(CosignatureSigner.generate("w"), {{ORIGIN: [signer.verifier()]}}, WitnessState({str(db)!r}))
        log, old = Log(signer), 0
        print("ready", flush=True)
        while True:
            log.grow(1)
            assert w.add_checkpoint(log.body(old)).status == 200
            old = log.tree.size
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    threading.Event().wait(0.5)
    child.send_signal(signal.SIGKILL)
    child.wait()
    state = WitnessState(db)
    latest = state.latest(ORIGIN)
    assert latest is not None and latest.size > 0
    cp = checkpoint.open_checkpoint(latest.note, log_signer.verifier())
    assert (cp.size, cp.root) == (latest.size, latest.root)
    replay = Log(log_signer)
    replay.grow(latest.size)
    assert replay.tree.root(latest.size) == latest.root
    replay.grow(2)
    w = Witness(CosignatureSigner.generate("w"), {ORIGIN: [log_signer.verifier()]}, state)
    assert w.add_checkpoint(replay.body(latest.size)).status == 200


def test_http_add_checkpoint(witness, log_signer):
    client = create_witness_app(witness).test_client()
    log = Log(log_signer)
    log.grow(2)
    r = client.post("/add-checkpoint", data=log.body(0))
    assert r.status_code == 200 and r.data.decode().startswith("\u2014 ")
    r = client.post("/add-checkpoint", data=log.body(0))
    assert r.status_code == 409 and r.headers["Content-Type"] == "text/x.tlog.size" and r.data == b"2\n"
    # Every error in the witness's own form: a line of text, not an HTML page.
    for r, status in ((client.post("/add-checkpoint", data=b"x" * (70 * 1024)), 413),
                      (client.get("/add-checkpoint"), 405), (client.get("/nowhere"), 404)):
        assert r.status_code == status and r.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert r.data.endswith(b"\n") and b"<" not in r.data
    assert set(client.get("/add-checkpoint").headers["Allow"].split(", ")) == {"OPTIONS", "POST"}


@pytest.mark.slow
def test_witness_cli_keygen_and_serve(tmp_path, log_signer):
    """`labelcheck witness keygen` then `serve`, spoken to over real HTTP."""
    (tmp_path / "log.pub").write_text(log_signer.vkey + "\n")
    result = CliRunner().invoke(main, ["witness", "keygen", "witness.example/w1", "--out", str(tmp_path / "keys")])
    assert result.exit_code == 0, result.output
    key = tmp_path / "keys" / "witness.example" / "w1.key"
    assert key.stat().st_mode & 0o777 == 0o600
    vkey = (tmp_path / "keys" / "witness.example" / "w1.pub").read_text().strip()
    again = CliRunner().invoke(main, ["witness", "keygen", "witness.example/w1", "--out", str(tmp_path / "keys")])
    assert again.exit_code == 2 and "refusing to overwrite" in again.output

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(Path(sys.executable).with_name("labelcheck")), "witness", "serve", "--data-dir",
                             str(tmp_path / "w"), "--port", str(port), "--key", str(key),
                             "--log", str(tmp_path / "log.pub")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                requests.get(url + "/healthz", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        log = Log(log_signer)
        log.grow(3)
        r = requests.post(url + "/add-checkpoint", data=log.body(0), timeout=5)
        assert r.status_code == 200, r.text
        cosigned = add_signatures(log.note(), r.text)
        opened = note.open_note(cosigned, [log_signer.verifier(), CosignatureVerifier.from_vkey(vkey)])
        assert len(opened.sigs) == 2
        # What gunicorn refuses itself: a line of text too, and no client address in the log.
        refused = requests.get(url + "/healthz", headers={"X-Big": "a" * 9000}, timeout=5)
        assert refused.status_code == 431 and refused.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert refused.text.endswith("\n") and "<" not in refused.text
        # A transfer coding gunicorn lets through: refused, its bytes never taken as the checkpoint.
        body = log.body(0)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(b"POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                        b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
            answer = b""
            while chunk := raw.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 501 ") and b"transfer coding gzip is not supported" in answer
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    refusals = [line for line in out.splitlines() if "Invalid request" in line]
    assert refusals and not [line for line in refusals if "127.0.0.1" in line], out


def test_witness_serve_refuses_a_log_key_as_its_own_key(tmp_path, log_signer):
    key, _ = keyfile.write_key_pair(log_signer, tmp_path)
    result = CliRunner().invoke(main, ["witness", "serve", "--data-dir", str(tmp_path / "w"), "--key", str(key),
                                       "--log", log_signer.vkey])
    assert result.exit_code == 2 and "0x04" in result.output


def test_the_witness_server_runs_through_a_stall_as_the_verification_server_does(monkeypatch):
    """``labelcheck witness serve`` uses the gunicorn worker and arbiter that
    answer requests sent while the whole server was stopped
    (tests/test_slow_clients.py shows them on ``labelcheck serve``)."""
    server = WitnessServer(Flask("w"), "127.0.0.1", 0)
    assert issubclass(server.cfg.worker_class, gunicorn_stalls.StallTolerantThreadWorker)
    ran = []
    monkeypatch.setattr(gunicorn_stalls, "serve", ran.append)
    server.run()
    assert ran == [server]
