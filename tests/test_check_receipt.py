"""``labelcheck ledger check-receipt``: a receipt proves itself offline, and a
log that can no longer prove it (rolled back, split view, no witness quorum)
is caught with both signed notes kept as evidence."""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
import subprocess
import threading
from contextlib import contextmanager

import pytest
from click.testing import CliRunner
from flask import Flask, Response, jsonify, request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.serving import make_server

from labelcheck.audit import receipt as receipts
from labelcheck.audit.trust import LogTrust
from labelcheck.cli import main
from labelcheck.ledger import Ledger, checkpoint, merkle, note
from labelcheck.ledger.cosignature import CosignatureSigner, add_signatures
from labelcheck.web.app import create_app
from slowclients import LABELCHECK, free_port, serve, stop

ORIGIN = "labelcheck.localhost/ledger"  # the server's default origin


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def receipt_for(ledger: Ledger, index: int) -> dict:
    """The self-proving receipt of entry ``index`` at the ledger's latest checkpoint."""
    signed = ledger.checkpoint()
    size = checkpoint.Checkpoint.parse(signed[: signed.index(b"\n\n") + 1].decode()).size
    return {"index": index, "leaf_hash": b64(ledger.leaf_hash(index)), "checkpoint": signed.decode(),
            "inclusion": [b64(h) for h in ledger.inclusion_proof(index, size)]}


def append(ledger: Ledger, n: int, tag: str = "x") -> None:
    ledger.append([{"kind": "test", "tag": tag, "n": i} for i in range(n)])


@pytest.fixture
def led(tmp_path):
    with Ledger.open_dir(tmp_path / "data", origin=ORIGIN) as ledger:
        append(ledger, 21)
        yield ledger


def check(doc, *args, input=None):
    """Run the command on ``doc`` (a dict, or raw text/bytes) given on stdin."""
    data = input if input is not None else doc if isinstance(doc, (str, bytes)) else json.dumps(doc)
    return CliRunner().invoke(main, ["ledger", "check-receipt", "-", *map(str, args)], input=data,
                              catch_exceptions=False)


def one_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


# --- offline ------------------------------------------------------------------------


def test_a_good_receipt_and_a_whole_result_check(led, tmp_path):
    rec = receipt_for(led, 13)
    r = check(rec, "--vkey", led.verifier_key)
    assert r.exit_code == 0, r.output
    assert one_line(r).startswith(f"receipt OK: entry 13 is in the log {ORIGIN} at size 21 (root ")
    result = {"status": "valid", "category": "ai_generated", "reasons": [], "receipt": rec}
    pub = tmp_path / "ledger.pub"
    pub.write_text(led.verifier_key + "\n")
    path = tmp_path / "result.json"
    path.write_text(json.dumps(result, indent=2))
    r = CliRunner().invoke(main, ["ledger", "check-receipt", str(path), "--vkey", str(pub)])
    assert r.exit_code == 0 and "entry 13" in r.output
    for index in (0, 20):  # the first and the last leaf, and a one-leaf tree
        assert check(receipt_for(led, index), "--vkey", led.verifier_key).exit_code == 0


def test_a_one_entry_log_has_an_empty_proof(tmp_path):
    with Ledger.open_dir(tmp_path / "one", origin=ORIGIN) as ledger:
        append(ledger, 1)
        rec = receipt_for(ledger, 0)
        assert rec["inclusion"] == []
        assert check(rec, "--vkey", ledger.verifier_key).exit_code == 0


def flip(text: str) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[5] ^= 0x10
    return b64(bytes(raw))


def damaged(rec: dict):
    """(what, damaged receipt, expected words of the reason)."""
    signed = rec["checkpoint"]
    text, sigs = signed.split("\n\n", 1)
    origin, size, root = text.split("\n")
    other_root = b64(bytes(32))
    yield "index+1", {**rec, "index": rec["index"] + 1}, "not proven to be in the signed tree"
    yield "index beyond size", {**rec, "index": 21}, "beyond its checkpoint's size 21"
    yield "negative index", {**rec, "index": -1}, "index is not an entry number"
    yield "index as text", {**rec, "index": "13"}, "index is not an entry number"
    yield "leaf hash", {**rec, "leaf_hash": flip(rec["leaf_hash"])}, "does not lead to the root"
    yield "leaf hash not base64", {**rec, "leaf_hash": "!!"}, "leaf_hash is not a canonical base64"
    yield "leaf hash too short", {**rec, "leaf_hash": b64(bytes(31))}, "leaf_hash is not a canonical base64"
    for i in range(len(rec["inclusion"])):
        proof = list(rec["inclusion"])
        proof[i] = flip(proof[i])
        yield f"proof hash {i}", {**rec, "inclusion": proof}, "does not lead to the root"
    yield "proof truncated", {**rec, "inclusion": rec["inclusion"][:-1]}, "inclusion proof is too short"
    yield "proof extended", {**rec, "inclusion": rec["inclusion"] + [other_root]}, "inclusion proof is too long"
    yield "proof not a list", {**rec, "inclusion": "abc"}, "inclusion proof is not a list"
    yield "root", {**rec, "checkpoint": f"{origin}\n{size}\n{other_root}\n\n{sigs}"}, "invalid signature by"
    yield "size", {**rec, "checkpoint": f"{origin}\n22\n{root}\n\n{sigs}"}, "invalid signature by"
    yield "origin", {**rec, "checkpoint": f"x{origin}\n{size}\n{root}\n\n{sigs}"}, "invalid signature by"
    name, sig = sigs.rstrip("\n").split(" ", 2)[1:]
    bad_sig = f"\u2014 {name} {flip(sig)}\n"
    yield "signature", {**rec, "checkpoint": f"{text}\n\n{bad_sig}"}, "invalid signature by"
    yield "signature line cut", {**rec, "checkpoint": signed[:-20]}, "does not verify"
    yield "signatures removed", {**rec, "checkpoint": text + "\n\n"}, "does not verify"
    yield "note cut in the text", {**rec, "checkpoint": signed[:30]}, "does not verify"
    yield "extra text line", {**rec, "checkpoint": f"{text}\nextension\n\n{sigs}"}, "invalid signature by"
    yield "junk after signatures", {**rec, "checkpoint": signed + "junk\n"}, "em dash"
    yield "blank line after signatures", {**rec, "checkpoint": signed + "\n"}, "does not verify"
    yield "no checkpoint text", {**rec, "checkpoint": ""}, "not the text of a signed note"
    yield "checkpoint not text", {**rec, "checkpoint": 5}, "not the text of a signed note"


def test_each_damaged_field_fails_with_a_reason(led):
    rec = receipt_for(led, 13)
    assert len(rec["inclusion"]) == 5
    seen = 0
    for what, bad, reason in damaged(rec):
        r = check(bad, "--vkey", led.verifier_key)
        assert r.exit_code == 1, (what, r.output)
        line = one_line(r)
        assert line.startswith("receipt does NOT check: ") and reason in line, (what, line)
        seen += 1
    assert seen == 27


def test_the_wrong_key_fails(led):
    rec = receipt_for(led, 3)
    impostor = note.Signer.generate(ORIGIN)  # the same name, another key
    r = check(rec, "--vkey", impostor.vkey)
    assert r.exit_code == 1 and "does not verify with" in r.output and "no valid signature by a known key" in r.output
    forged = {**rec, "checkpoint": note.sign(rec["checkpoint"].split("\n\n")[0] + "\n", impostor).decode()}
    r = check(forged, "--vkey", led.verifier_key)
    assert r.exit_code == 1 and impostor.key_id not in r.output and "does not verify" in r.output


def test_a_signature_by_an_unknown_key_is_ignored_as_go_does(led):
    """C2SP signed-note: verifiers skip signatures by keys they do not know
    (a witness cosignature, for instance); the log's own must still hold."""
    rec = receipt_for(led, 3)
    stranger = note.Signer.generate("stranger")
    text = rec["checkpoint"].split("\n\n")[0] + "\n"
    extra = note.sign(text, stranger).decode().split("\n\n")[1]
    assert check({**rec, "checkpoint": rec["checkpoint"] + extra}, "--vkey", led.verifier_key).exit_code == 0


def test_bad_input_exits_2(led, tmp_path):
    rec = receipt_for(led, 3)
    vkey = led.verifier_key
    cases = [
        (check("{not json", "--vkey", vkey), "not JSON"),
        (check([1, 2], "--vkey", vkey), "neither a receipt"),
        (check({"status": "valid"}, "--vkey", vkey), "neither a receipt"),
        (check({"index": 3, "leaf_hash": rec["leaf_hash"]}, "--vkey", vkey), "cannot prove itself"),
        (check('{"index": 3, "index": 4}', "--vkey", vkey), "a key twice"),
        (check(rec, "--vkey", "nonsense+"), "bad verifier key"),
        (check(rec, "--vkey", tmp_path / "missing.pub"), "cannot read verifier key file"),
        (check(rec, "--vkey", vkey, "--quorum", 1), "--quorum needs at least one --witness"),
        (check(rec, "--vkey", vkey, "--witness", vkey), "bad witness key"),  # a log key is not a witness key
        (check(rec, "--vkey", vkey, "--witness", CosignatureSigner.generate("w").vkey, "--quorum", 2),
         "quorum of 2 cannot be met by 1"),
        (check(rec, "--vkey", vkey, "--server", "ftp://127.0.0.1/"), "http:// or https://"),
        (CliRunner().invoke(main, ["ledger", "check-receipt", str(tmp_path / "nope.json"), "--vkey", vkey]),
         "cannot read"),
    ]
    for result, words in cases:
        assert result.exit_code == 2 and words in result.output, (words, result.output)
        assert "Traceback" not in result.output


# --- property tests: bit flips -------------------------------------------------------------


def _same(rec: receipts.Receipt, good: receipts.Receipt) -> bool:
    """The receipt means what the good one means (base64 pad bits of a
    signature, which signed-note readers tolerate, aside)."""
    text = lambda n: n.split(b"\n\n")[0]  # noqa: E731
    return (rec.index, rec.leaf_hash, rec.inclusion, text(rec.note)) == \
        (good.index, good.leaf_hash, good.inclusion, text(good.note))


@pytest.fixture(scope="module")
def property_receipt(tmp_path_factory):
    with Ledger.open_dir(tmp_path_factory.mktemp("prop"), origin=ORIGIN) as ledger:
        append(ledger, 21)
        yield receipt_for(ledger, 13), ledger.verifier_key


def _outcome(data: bytes, vkey: str):
    r = CliRunner().invoke(main, ["ledger", "check-receipt", "-", "--vkey", vkey], input=data)
    assert r.exception is None or isinstance(r.exception, SystemExit), r.output
    assert r.exit_code in (0, 1, 2) and "Traceback" not in r.output
    return r.exit_code


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_bit_flip_in_the_receipt_json_never_checks_unless_harmless(property_receipt, data):
    rec, vkey = property_receipt
    raw = bytearray(json.dumps(rec).encode())
    pos = data.draw(st.integers(0, len(raw) - 1))
    raw[pos] ^= 1 << data.draw(st.integers(0, 7))
    code = _outcome(bytes(raw), vkey)
    if code == 0:
        good = receipts.load_receipt(json.dumps(rec).encode())
        assert _same(receipts.load_receipt(bytes(raw)), good), raw.decode("utf-8", "replace")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_bit_flip_in_the_note_never_checks_unless_harmless(property_receipt, data):
    rec, vkey = property_receipt
    signed = bytearray(rec["checkpoint"].encode())
    pos = data.draw(st.integers(0, len(signed) - 1))
    signed[pos] ^= 1 << data.draw(st.integers(0, 7))
    doc = {**rec, "checkpoint": bytes(signed).decode("utf-8", "replace")}  # JSON carries text only
    code = _outcome(json.dumps(doc).encode(), vkey)
    if code == 0:  # only a flip in a signature's unused base64 bits can leave it checking
        assert bytes(signed).split(b"\n\n")[0] == rec["checkpoint"].encode().split(b"\n\n")[0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 2000))
def test_a_truncated_receipt_never_checks(property_receipt, cut):
    rec, vkey = property_receipt
    raw = json.dumps(rec).encode()
    assert _outcome(raw[: cut % len(raw)], vkey) in (1, 2)


# --- witnesses -------------------------------------------------------------------------------


def cosigned(signed: str, *witnesses: CosignatureSigner) -> str:
    body = signed.split("\n\n")[0].encode() + b"\n"
    return add_signatures(signed.encode(), "".join(w.cosign(body) for w in witnesses)).decode()


def test_witness_quorum_met_and_not_met(led, tmp_path):
    w1, w2, w3 = (CosignatureSigner.generate(f"witness{i}") for i in (1, 2, 3))
    (tmp_path / "w1.pub").write_text(w1.vkey + "\n")
    rec = receipt_for(led, 7)
    two = {**rec, "checkpoint": cosigned(rec["checkpoint"], w1, w2)}
    keys = ["--vkey", led.verifier_key, "--witness", tmp_path / "w1.pub", "--witness", w2.vkey,
            "--witness", w3.vkey]
    r = check(two, *keys, "--quorum", 2)
    assert r.exit_code == 0 and "signed by" in r.output and "2 of 3 witnesses" in r.output
    r = check(two, *keys)  # default: all three
    assert r.exit_code == 1 and "carries 2 of the 3 witness cosignatures required" in one_line(r)
    r = check(rec, "--vkey", led.verifier_key, "--witness", w1.vkey)
    assert r.exit_code == 1 and "carries 0 of the 1" in r.output
    assert check(two, "--vkey", led.verifier_key, "--witness", w1.vkey, "--witness", w1.vkey).exit_code == 0
    # A cosignature by a named witness that does not verify rejects the note (as Go's note.Open).
    lines = two["checkpoint"].split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith("\u2014 witness1 "))
    lines[at] = "\u2014 witness1 " + flip(lines[at].split(" ")[2])
    broken = "\n".join(lines)
    r = check({**two, "checkpoint": broken}, *keys, "--quorum", 1)
    assert r.exit_code == 1 and "does not verify" in r.output
    # Witnesses alone do not make a checkpoint: the log's own signature is required.
    only_witnesses = rec["checkpoint"].split("\n\n")[0] + "\n\n" + \
        cosigned(rec["checkpoint"], w1).split("\n\n")[1].split("\n", 1)[1]
    r = check({**rec, "checkpoint": only_witnesses}, *keys, "--quorum", 1)
    assert r.exit_code == 1 and "not signed by the log key" in r.output


def test_log_trust_rejects_unmeetable_quorums(led):
    w = CosignatureSigner.generate("w").verifier()
    log = note.Verifier.from_vkey(led.verifier_key)
    assert LogTrust(log, (w, w)).quorum == 1  # one witness counts once
    for quorum in (0, 2, -1):
        with pytest.raises(ValueError):
            LogTrust(log, (w,), quorum)


# --- against a server ---------------------------------------------------------------------------


@contextmanager
def http(app):
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(5)


def make_app(data_dir):
    return create_app({"data_dir": data_dir, "verify_rate": 0})


def app_ledger(app) -> Ledger:
    return app.extensions["labelcheck"].services.ledger


def evidence_notes(folder, vkey):
    """The notes saved in the one evidence folder, by role, opened with ``vkey``."""
    [run] = list(folder.iterdir())
    role = lambda p: "receipt" if "-receipt" in p.name else "server"  # noqa: E731
    files = {role(p) if p.suffix == ".note" else p.suffix: p for p in run.iterdir()}
    roles = {role(p): checkpoint.open_checkpoint(p.read_bytes(), note.Verifier.from_vkey(vkey))
             for p in run.iterdir() if p.suffix == ".note"}
    summary = json.loads(next(p for p in run.iterdir() if p.suffix == ".json" and "-proof-" not in p.name)
                         .read_text())
    return roles, summary, files


def test_a_server_that_grew_is_consistent(tmp_path):
    app = make_app(tmp_path / "data")
    try:
        ledger = app_ledger(app)
        append(ledger, 9)
        rec = receipt_for(ledger, 4)
        with http(app) as url:
            r = check(rec, "--vkey", ledger.verifier_key, "--server", url, "--evidence", tmp_path / "ev")
            assert r.exit_code == 0 and "unchanged at size 9" in r.output, r.output
            append(ledger, 30)
            r = check(rec, "--vkey", ledger.verifier_key, "--server", url + "/", "--evidence", tmp_path / "ev")
            assert r.exit_code == 0 and "grew from 9 to 39 entries, consistency proven" in r.output, r.output
        assert not (tmp_path / "ev").exists()
    finally:
        app.extensions["labelcheck"].services.close()


def test_a_split_view_is_caught_with_evidence(tmp_path):
    alice = make_app(tmp_path / "a")
    vkey = app_ledger(alice).verifier_key  # opening the ledger creates its key
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / "ledger.key", tmp_path / "b" / "ledger.key")  # one key, two logs
    bob = make_app(tmp_path / "b")
    try:
        assert app_ledger(bob).verifier_key == vkey
        append(app_ledger(alice), 6, "told to alice")
        rec = receipt_for(app_ledger(alice), 2)
        for extra, kind in ((0, "forked"), (5, "inconsistent")):
            append(app_ledger(bob), 6 + extra if extra == 0 else extra, "told to bob")
            evidence = tmp_path / f"ev-{kind}"
            with http(bob) as url:
                r = check(rec, "--vkey", vkey, "--server", url, "--evidence", evidence)
            assert r.exit_code == 1, r.output
            assert r.output.startswith("receipt OK")  # the receipt itself is fine; the log is not
            assert f"server {url} FAILED" in r.output and f"saved in {evidence}" in r.output
            roles, summary, _ = evidence_notes(evidence, vkey)
            assert roles["receipt"].size == 6 and roles["server"].size == 6 + extra
            assert summary["kind"] == kind and summary["receipt"]["index"] == 2 and summary["url"] == url
    finally:
        alice.extensions["labelcheck"].services.close()
        bob.extensions["labelcheck"].services.close()


def witness_front(ledger: Ledger, cosigners: list) -> Flask:
    """The log's checkpoint and proof endpoints, the checkpoint cosigned by
    ``cosigners`` (a list the test changes between requests)."""
    app = Flask("witnessed")

    @app.get("/v1/checkpoint")
    def served_checkpoint():
        return Response(cosigned(ledger.checkpoint().decode(), *cosigners), mimetype="text/plain")

    @app.get("/v1/proof/consistency")
    def consistency():
        a, b = int(request.args["from"]), int(request.args["to"])
        return jsonify({"from": a, "to": b, "hashes": [b64(h) for h in ledger.consistency_proof(a, b)]})

    return app


def test_the_server_checkpoint_needs_the_witness_quorum_too(led, tmp_path):
    w1, w2 = CosignatureSigner.generate("w1"), CosignatureSigner.generate("w2")
    cosigners = [w1, w2]
    rec = receipt_for(led, 5)
    rec["checkpoint"] = cosigned(rec["checkpoint"], w1, w2)
    keys = ["--vkey", led.verifier_key, "--witness", w1.vkey, "--witness", w2.vkey]
    with http(witness_front(led, cosigners)) as url:
        append(led, 4)
        r = check(rec, *keys, "--server", url, "--evidence", tmp_path / "ev")
        assert r.exit_code == 0 and "grew from 21 to 25" in r.output, r.output
        cosigners.remove(w2)
        r = check(rec, *keys, "--server", url, "--evidence", tmp_path / "ev")
        assert r.exit_code == 1 and "carries 1 of the 2 witness cosignatures" in r.output, r.output
        roles, summary, _ = evidence_notes(tmp_path / "ev", led.verifier_key)
        assert summary["kind"] == "no_quorum" and set(roles) == {"receipt", "server"}
        assert check(rec, *keys, "--quorum", 1, "--server", url, "--evidence", tmp_path / "ev2").exit_code == 0


def test_an_unreachable_server_is_not_evidence(led, tmp_path):
    port = free_port()  # nothing listens there
    r = check(receipt_for(led, 1), "--vkey", led.verifier_key, "--server", f"http://127.0.0.1:{port}",
              "--evidence", tmp_path / "ev")
    assert r.exit_code == 3 and "could not be checked: cannot fetch the checkpoint" in r.output
    assert not (tmp_path / "ev").exists()


def _drop_triggers(db: sqlite3.Connection) -> None:
    for table in ("entries", "hashes", "checkpoints"):
        for op in ("update", "delete"):
            db.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op}")


def test_a_rolled_back_log_served_by_labelcheck_serve_is_caught(tmp_path):
    """The operator cuts the tail out of the database (entries, their stored
    hashes and checkpoints), appends other entries and signs the new tree with
    the same key: every receipt from before the cut now fails --server."""
    data = tmp_path / "data"
    with Ledger.open_dir(data, origin=ORIGIN) as ledger:
        append(ledger, 12)
        ledger.checkpoint()
        append(ledger, 8, "soon gone")
        rec = receipt_for(ledger, 15)  # signed at size 20
        vkey = ledger.verifier_key
    db = sqlite3.connect(data / "ledger.db")
    _drop_triggers(db)
    db.execute("DELETE FROM entries WHERE idx >= 12")
    db.execute("DELETE FROM hashes WHERE id >= ?", (merkle.stored_hash_count(12),))
    db.execute("DELETE FROM checkpoints WHERE size > 12")
    db.commit()
    db.close()
    with Ledger.open_dir(data, origin=ORIGIN) as ledger:
        append(ledger, 3, "rewritten")
        ledger.checkpoint()  # size 15, signed with the same key
    (tmp_path / "receipt.json").write_text(json.dumps(rec))
    port = free_port()
    server = serve(data, port, "--workers", "1", "--origin", ORIGIN)
    try:
        url = f"http://127.0.0.1:{port}"
        done = subprocess.run([LABELCHECK, "ledger", "check-receipt", str(tmp_path / "receipt.json"),
                               "--vkey", vkey, "--server", url], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)
    finally:
        stop(server)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith("receipt OK: entry 15 is in the log") and "at size 20" in done.stdout
    assert "the log SHRANK from 20 to 15 entries" in done.stderr
    roles, summary, files = evidence_notes(tmp_path / "labelcheck-evidence", vkey)  # the default folder
    assert (roles["receipt"].size, roles["server"].size) == (20, 15)
    assert summary["kind"] == "shrunk" and summary["receipt"]["leaf_hash"] == rec["leaf_hash"]
    assert f"saved in labelcheck-evidence/{files['.json'].parent.name}/" in done.stderr


def test_check_receipt_reads_stdin_in_a_real_process(led):
    good = json.dumps({"results": [], "receipt": receipt_for(led, 20)})
    done = subprocess.run([LABELCHECK, "ledger", "check-receipt", "-", "--vkey", led.verifier_key],
                          input=good, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("receipt OK: entry 20"), done.stderr
    bad = good.replace('"index": 20', '"index": 19')
    done = subprocess.run([LABELCHECK, "ledger", "check-receipt", "-", "--vkey", led.verifier_key],
                          input=bad, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stderr.startswith("receipt does NOT check") and not done.stdout


def test_a_result_from_the_server_proves_itself(tmp_path):
    """What a client actually holds: the answer of POST /v1/verify."""
    app = make_app(tmp_path / "data")
    try:
        client = app.test_client()
        vkey = app_ledger(app).verifier_key
        answers = []
        for n in (1, 3):
            r = client.post("/v1/verify", json={"items": [{"content_sha256": f"{i:02x}" * 32} for i in range(n)]})
            assert r.status_code == 200, r.data
            answers.append(r.get_json())
        assert check(answers[0], "--vkey", vkey).exit_code == 0  # the whole answer of one result
        r = check(answers[1], "--vkey", vkey)
        assert r.exit_code == 2 and "holds 3 results" in r.output
        for result in answers[1]["results"]:
            r = check(result, "--vkey", vkey)
            assert r.exit_code == 0 and f"entry {result['receipt']['index']} is in the log" in r.output, r.output
        with http(app) as url:  # the first receipt is still in the log that grew since
            r = check(answers[0]["results"][0], "--vkey", vkey, "--server", url)
            assert r.exit_code == 0 and "consistency proven" in r.output, r.output
    finally:
        app.extensions["labelcheck"].services.close()


def test_a_server_checkpoint_that_does_not_open_or_a_lying_proof_is_evidence(led, tmp_path):
    rec = receipt_for(led, 2)
    impostor = note.Signer.generate(ORIGIN)
    lies = {"checkpoint": None, "proof": False}
    front = Flask("liar")

    @front.get("/v1/checkpoint")
    def served():
        return Response(lies["checkpoint"] or led.checkpoint(), mimetype="text/plain")

    @front.get("/v1/proof/consistency")
    def proof():
        a, b = int(request.args["from"]), int(request.args["to"])
        hashes = [b64(h) for h in led.consistency_proof(a, b)]
        if lies["proof"]:
            hashes[-1] = flip(hashes[-1])
        return jsonify({"from": a, "to": b, "hashes": hashes})

    append(led, 10)
    with http(front) as url:
        args = ["--vkey", led.verifier_key, "--server", url]
        assert check(rec, *args).exit_code == 0
        lies["proof"] = True
        r = check(rec, *args, "--evidence", tmp_path / "proof")
        assert r.exit_code == 1 and "is NOT consistent with the trusted one at size 21" in r.output, r.output
        roles, summary, _ = evidence_notes(tmp_path / "proof", led.verifier_key)
        assert (roles["receipt"].size, roles["server"].size) == (21, 31) and summary["kind"] == "inconsistent"
        [run] = list((tmp_path / "proof").iterdir())
        assert len([p for p in run.iterdir() if "-proof-21-31" in p.name]) == 1
        lies["checkpoint"] = checkpoint.sign_checkpoint(checkpoint.Checkpoint(ORIGIN, 40, bytes(32)), impostor)
        r = check(rec, *args, "--evidence", tmp_path / "forged")
        assert r.exit_code == 1 and "refused the served checkpoint" in r.output
        [run] = list((tmp_path / "forged").iterdir())
        saved = sorted(p.name.split("-", 1)[1] for p in run.iterdir())
        assert saved == ["bad_signature-receipt-21.note", "bad_signature-server.note", "bad_signature.json"]
        assert (run / next(p.name for p in run.iterdir() if p.name.endswith("-server.note"))).read_bytes() == \
            lies["checkpoint"]
