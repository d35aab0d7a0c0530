"""Concurrent verify requests of one process share ledger commits (group
commit): each still gets the results of its own items, with a receipt that
proves itself, and every request has exactly one entry."""

from __future__ import annotations

import base64
import hashlib
import threading

import pytest

from labelcheck import claims
from labelcheck.ledger import merkle, note
from labelcheck.ledger import checkpoint as ckpt
from labelcheck.ledger import keyfile as keys

THREADS, EACH = 12, 4


@pytest.fixture
def signer(app):
    signer = keys.generate_key("example-ai")
    token = app.extensions["labelcheck"].admin_token
    r = app.test_client().post("/v1/producers", json={"name": "Example AI", "vkey": signer.vkey},
                               headers={"Authorization": "Bearer " + token})
    assert r.status_code == 201, r.json
    return signer


def item(signer, n: int, *, good: bool = True) -> dict:
    sha = hashlib.sha256(b"media %d" % n).hexdigest()
    env = claims.sign_envelope(claims.build_payload(sha, "image/png", "1", issuer=signer), signer)
    return {"claim": env, "content_sha256": sha if good else "00" * 32}


def test_concurrent_single_item_requests_each_get_their_own_result_and_receipt(app, signer):
    sent = {(t, i): item(signer, t * EACH + i, good=(t + i) % 3 != 0) for t in range(THREADS) for i in range(EACH)}
    answers: dict = {}
    start = threading.Barrier(THREADS)

    def client(t: int) -> None:
        c = app.test_client()
        start.wait()
        for i in range(EACH):
            r = c.post("/v1/verify", json={"items": [sent[t, i]]})
            answers[t, i] = (r.status_code, r.json)

    threads = [threading.Thread(target=client, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert len(answers) == THREADS * EACH

    c = app.test_client()
    keys_doc = c.get("/v1/keys").json
    verifier = note.Verifier.from_vkey(keys_doc["ledger_vkey"])
    indexes = []
    for key, (status, body) in answers.items():
        assert status == 200, body
        [result] = body["results"]
        expect_ok = (key[0] + key[1]) % 3 != 0
        assert result["status"] == ("verified" if expect_ok else "invalid"), result
        assert result["content_sha256"]["observed"] == sent[key]["content_sha256"]  # its own item, not another's
        receipt = result["receipt"]
        cp = ckpt.open_checkpoint(receipt["checkpoint"].encode(), verifier, origin=keys_doc["origin"])
        leaf = base64.b64decode(receipt["leaf_hash"])
        merkle.verify_inclusion(receipt["index"], cp.size, leaf, [base64.b64decode(h) for h in receipt["inclusion"]],
                                cp.root)
        line = c.get(f"/v1/entries?start={receipt['index']}&end={receipt['index'] + 1}").data.strip()
        assert merkle.leaf_hash(line) == leaf and result["claim_digest"].encode() in line
        indexes.append(receipt["index"])
    size = c.get("/v1/checkpoint").data.split(b"\n")[1]
    assert sorted(indexes) == list(range(1, int(size)))  # entry 0 registered the producer; one entry each
