"""Cross-check against Go's golang.org/x/mod/sumdb/note and tlog.

tests/go/interop is a small Go program answering JSON questions with Go's own
implementation.  It is built once per session in GOPATH mode against the
Debian sources (golang-golang-x-mod-dev), with no network; the tests skip
when ``go`` or those sources are absent.
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from werkzeug.serving import make_server

from labelcheck.ledger import merkle
from labelcheck.ledger.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from labelcheck.ledger.cosignature import CosignatureSigner, add_signatures
from labelcheck.ledger.note import NoteError, Signer, Verifier, open_note, sign
from labelcheck.cli import main as cli_main
from labelcheck.web import tiles as web_tiles
from labelcheck.web.app import create_app

GOCODE = Path("/usr/share/gocode")
PROGRAM = Path(__file__).resolve().parent / "go" / "interop" / "main.go"
TILES_PROGRAM = PROGRAM.parents[1] / "tiles" / "main.go"


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def unb64(s: str | None) -> bytes:
    return base64.b64decode(s or "")


@pytest.fixture(scope="module")
def go(tmp_path_factory):
    """Run one request through the Go program; returns the decoded answer."""
    return go_program(tmp_path_factory, PROGRAM)


@pytest.fixture(scope="module")
def go_tiles(tmp_path_factory):
    """The Go tlog-tiles client (tests/go/tiles): one request, one answer."""
    return go_program(tmp_path_factory, TILES_PROGRAM)


def go_program(tmp_path_factory, program: Path):
    """Build ``program`` in GOPATH mode against the Debian sources, offline;
    returns a function running one JSON request through it."""
    go_bin = shutil.which("go")
    if go_bin is None:
        pytest.skip("go is not installed (apt install golang-go)")
    if not (GOCODE / "src/golang.org/x/mod/sumdb/tlog").is_dir():
        pytest.skip("golang.org/x/mod sources are absent (apt install golang-golang-x-mod-dev)")
    work = tmp_path_factory.mktemp("go")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GO")}
    env.update(
        GO111MODULE="off",
        GOPATH=f"{GOCODE}:{work / 'gopath'}",
        GOCACHE=str(work / "cache"),
        GOFLAGS="",
        GOPROXY="off",
        GOENV="off",
        GOTOOLCHAIN="local",
        HOME=str(work),
    )
    binary = work / program.parent.name
    build = subprocess.run(
        [go_bin, "build", "-o", str(binary), str(program)],
        cwd=work, env=env, capture_output=True, text=True, timeout=240,
    )
    assert build.returncode == 0, f"go build failed:\n{build.stderr}"

    def run(request: dict) -> dict:
        done = subprocess.run(
            [str(binary)], input=json.dumps(request), capture_output=True, text=True, timeout=120, env=env
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    return run


def build_tree(n: int, seed: int) -> tuple[merkle.MemoryHashes, list[bytes]]:
    rnd = random.Random(seed)
    leaves = [rnd.randbytes(rnd.randrange(0, 64)) for _ in range(n)]
    tree = merkle.MemoryHashes()
    for data in leaves:
        tree.append_data(data)
    return tree, leaves


# --- notes and checkpoints ---------------------------------------------------------------


def test_python_signed_checkpoints_open_in_go(go):
    ledger_key = Signer.generate("labelcheck.example/ledger")
    witness = Signer.generate("witness.example")
    tree, _ = build_tree(70, seed=1)
    notes = [
        sign_checkpoint(Checkpoint(ledger_key.name, size, tree.root(size)), ledger_key)
        for size in (0, 1, 2, 7, 8, 69, 70)
    ]
    notes.append(sign_checkpoint(Checkpoint(ledger_key.name, 70, tree.root(), ("ext \u2713",)), ledger_key))
    notes.append(sign(Checkpoint(ledger_key.name, 3, tree.root(3)).text(), witness, ledger_key))
    # A checkpoint cosigned by a C2SP tlog-witness (cosignature/v1, as GET
    # /v1/checkpoint serves it with witnesses): a client that knows only the
    # log's key opens it, the cosignature line being a signature it ignores.
    body = Checkpoint(ledger_key.name, 8, tree.root(8)).text().encode()
    notes.append(add_signatures(sign_checkpoint(Checkpoint(ledger_key.name, 8, tree.root(8)), ledger_key),
                                CosignatureSigner.generate("witness.example/w").cosign(body, timestamp=1_700_000_000)))
    tampered = notes[3].replace(b"\n7\n", b"\n6\n")
    request = {"open": [{"note": b64(n), "vkeys": [ledger_key.vkey]} for n in notes + [tampered]]}
    answers = go(request)["open"]
    for msg, answer in zip(notes, answers):
        assert answer["ok"], answer
        assert answer["sigs"] == [ledger_key.name]
        assert answer["text"] == open_checkpoint(msg, ledger_key.verifier()).text()
    assert not answers[-1]["ok"]
    with pytest.raises(NoteError):
        open_note(tampered, [ledger_key.verifier()])


def test_go_signed_notes_open_in_python(go):
    texts = [
        Checkpoint("go.example/log", 5, merkle.EMPTY_ROOT).text(),
        Checkpoint("go.example/log", 2**63 - 1, bytes(range(32)), ("extension",)).text(),
        "plain text note \u2014 with unicode\n",
    ]
    answers = go({"sign": [{"name": "go.example/log", "text": t} for t in texts]})["sign"]
    for text, answer in zip(texts, answers):
        assert not answer.get("error"), answer
        v = Verifier.from_vkey(answer["vkey"])
        assert v.vkey == answer["vkey"]
        msg = unb64(answer["note"])
        assert open_note(msg, [v]).text == text
        if text.startswith("go.example/log\n"):
            assert open_checkpoint(msg, v, origin="go.example/log") == Checkpoint.parse(text)
        with pytest.raises(NoteError):
            open_note(bytes([msg[0] ^ 0x20]) + msg[1:], [v])  # one changed letter


def test_go_and_python_agree_on_refusals(go):
    alice, bob = Signer.generate("alice"), Signer.generate("bob")
    good = sign("hello\n", alice)
    cases = [
        (good, [alice.vkey], True),
        (good, [bob.vkey], False),  # no known signature
        (sign("hello\n", bob, alice), [alice.vkey], True),  # unknown signer ignored
        (good.replace(b"hello", b"hullo"), [alice.vkey], False),  # bad signature by a known key
        (good.replace(b"\n\n", b"\n"), [alice.vkey], False),  # no signature block
        (good + good.split(b"\n\n")[1] * 100, [alice.vkey], False),  # 101 signatures
        (good.replace(b"hello", b"hel\tlo"), [alice.vkey], False),  # control character
    ]
    answers = go({"open": [{"note": b64(m), "vkeys": keys} for m, keys, _ in cases]})["open"]
    for (msg, keys, want), answer in zip(cases, answers):
        assert answer["ok"] == want, answer
        try:
            open_note(msg, [Verifier.from_vkey(k) for k in keys])
            python_ok = True
        except NoteError:
            python_ok = False
        assert python_ok == want


# --- Merkle trees and proofs -------------------------------------------------------------


def proof_pairs(size: int, rnd: random.Random) -> tuple[list[int], list[int]]:
    indexes = sorted({0, size // 2, size - 1, *rnd.sample(range(size), min(size, 4))})
    olds = sorted({1, size // 2 or 1, size - 1 or 1, size, *rnd.sample(range(1, size + 1), min(size, 3))})
    return indexes, olds


@pytest.mark.parametrize("top,sizes", [(70, range(1, 71)), (1100, [255, 256, 257, 511, 512, 513, 1024, 1025, 1100])])
def test_python_proofs_check_in_go(go, top, sizes):
    tree, leaves = build_tree(top, seed=top)
    rnd = random.Random(top)
    inclusion, consistency, flipped = [], [], []
    for size in sizes:
        root = tree.root(size)
        indexes, olds = proof_pairs(size, rnd)
        for i in indexes:
            proof = tree.prove_inclusion(i, size)
            leaf = merkle.leaf_hash(leaves[i])
            inclusion.append({"index": i, "size": size, "leaf": b64(leaf), "proof": [b64(p) for p in proof], "root": b64(root)})
        for old in olds:
            proof = tree.prove_consistency(old, size)
            consistency.append({
                "old": old, "new": size, "old_root": b64(tree.root(old)), "new_root": b64(root),
                "proof": [b64(p) for p in proof],
            })
            if proof:  # the same proof with one bit changed must fail in Go too
                bad = list(proof)
                bad[-1] = bytes([bad[-1][0] ^ 1]) + bad[-1][1:]
                flipped.append({**consistency[-1], "proof": [b64(p) for p in bad]})
    answer = go({"inclusion": inclusion, "consistency": consistency + flipped})
    assert all(a["ok"] for a in answer["inclusion"]), [a for a in answer["inclusion"] if not a["ok"]][:3]
    good, bad = answer["consistency"][: len(consistency)], answer["consistency"][len(consistency):]
    assert all(a["ok"] for a in good), [a for a in good if not a["ok"]][:3]
    assert bad and not any(a["ok"] for a in bad)


def test_go_builds_the_same_tree_and_proofs(go):
    tree, leaves = build_tree(300, seed=9)
    rnd = random.Random(9)
    sizes = [1, 2, 3, 5, 8, 70, 255, 256, 257, 300]
    inclusion = [[rnd.randrange(s), s] for s in sizes for _ in range(3)]
    consistency = [[rnd.randrange(1, s + 1), s] for s in sizes for _ in range(3)]
    answer = go({"build": {
        "leaves": [b64(x) for x in leaves], "roots": sizes,
        "inclusion": inclusion, "consistency": consistency,
    }})["build"]
    assert not answer.get("error"), answer
    assert [unb64(r) for r in answer["roots"]] == [tree.root(s) for s in sizes]
    for (i, s), go_proof in zip(inclusion, answer["inclusion"]):
        assert [unb64(p) for p in go_proof or []] == tree.prove_inclusion(i, s)
    for (old, new), go_proof in zip(consistency, answer["consistency"]):
        assert [unb64(p) for p in go_proof or []] == tree.prove_consistency(old, new)


# --- tlog-tiles: Go's TileHashReader over /tlog/ and a published folder -------------------


@pytest.fixture
def tiled_log(tmp_path):
    """A served ledger of 700 entries (signed at 300 and 700), its /tlog/ on a
    real HTTP server at 127.0.0.1, and the same log published to a folder."""
    app = create_app({"data_dir": tmp_path / "data", "verify_rate": 0, "origin": "tiles.example/log"})
    led = app.extensions["labelcheck"].services.ledger
    led.append([{"kind": "verification", "n": i, "text": "x" * (i % 50)} for i in range(300)])
    old = led.checkpoint()
    led.append([{"kind": "verification", "n": i, "text": "\u00e9" * (i % 9)} for i in range(300, 700)])
    led.checkpoint()
    runner = CliRunner().invoke(cli_main, ["ledger", "publish-tiles", "--db", str(tmp_path / "data/ledger.db"),
                                           "--out", str(tmp_path / "pub")])
    assert runner.exit_code == 0, runner.output
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield led, old, f"http://127.0.0.1:{server.server_port}/tlog/", tmp_path / "pub"
    server.shutdown()
    thread.join()
    web_tiles.close(app)
    app.extensions["labelcheck"].services.close()


def test_go_tile_hash_reader_proves_records_and_consistency(go_tiles, tiled_log):
    led, old, url, folder = tiled_log
    indexes = [0, 1, 255, 256, 299, 511, 512, 699]
    for where in ({"base": url}, {"dir": str(folder)}):
        answer = go_tiles({**where, "vkey": led.verifier_key, "old": b64(old), "records": indexes})
        assert not answer.get("error"), answer
        assert answer["size"] == 700
        assert unb64(answer["root"]) == open_checkpoint(led.checkpoint(), Verifier.from_vkey(led.verifier_key)).root
        for i, rec in zip(indexes, answer["records"]):
            assert not rec.get("error"), rec
            assert unb64(rec["data"]) == led.entries(i, i + 1)[0]
            assert [unb64(p) for p in rec["proof"]] == led.inclusion_proof(i, 700)
        assert [unb64(p) for p in answer["consistency"]] == led.consistency_proof(300, 700)


def test_go_refuses_a_changed_tile_and_a_wrong_key(go_tiles, tiled_log):
    led, _, url, folder = tiled_log
    tile = folder / "tile/0/001"
    data = bytearray(tile.read_bytes())
    data[100] ^= 1
    tile.write_bytes(bytes(data))
    answer = go_tiles({"dir": str(folder), "vkey": led.verifier_key, "records": [0, 256, 600]})
    assert not answer.get("error"), answer
    assert [bool(r.get("error")) for r in answer["records"]] == [False, True, False]
    assert "data" not in answer["records"][1]  # Go's tlog refuses the proof through the changed tile
    other = Signer.generate("tiles.example/log")
    answer = go_tiles({"base": url, "vkey": other.vkey, "records": [0]})
    assert "checkpoint" in answer["error"]
