"""docs/protocol.md §2 implemented a second time, from the text alone, against the project.

The ``ind_*`` functions below use only PyNaCl, base64, json and hashlib: their
own key hash and key ids, their own PAE, their own envelope. Claims they make
must verify with the project's code, and the project's claims must verify
with them. If the two ever disagree, one of them misreads the design.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import datetime, timezone

import nacl.exceptions
import nacl.signing
import pytest

PAYLOAD_TYPE = "application/vnd.labelcheck.claim+json"
MEDIA = b"GIF89a independent pixels"
MEDIA_SHA = hashlib.sha256(MEDIA).hexdigest()


# --- the independent implementation ----------------------------------------------------


def ind_key_hash(name: str, pub: bytes) -> str:
    """hex(SHA-256(name || 0x0A || 0x01 || pub32)[:4])."""
    return hashlib.sha256(name.encode() + b"\x0a" + b"\x01" + pub).digest()[:4].hex()


def ind_vkey(name: str, pub: bytes) -> str:
    return f"{name}+{ind_key_hash(name, pub)}+" + base64.b64encode(b"\x01" + pub).decode()


def ind_skey(name: str, seed: bytes, pub: bytes) -> str:
    return f"PRIVATE+KEY+{name}+{ind_key_hash(name, pub)}+" + base64.b64encode(b"\x01" + seed).decode()


def ind_parse_vkey(vkey: str) -> tuple[str, bytes]:
    """(key id, public key) of a verifier key, after checking its hash."""
    name, hash_hex, data = vkey.split("+", 2)
    raw = base64.b64decode(data, validate=True)
    assert len(raw) == 33 and raw[0] == 1
    assert ind_key_hash(name, raw[1:]) == hash_hex
    return f"{name}+{hash_hex}", raw[1:]


def ind_pae(payload_type: str, body: bytes) -> bytes:
    t = payload_type.encode()
    return b" ".join([b"DSSEv1", str(len(t)).encode(), t, str(len(body)).encode(), body])


class IndKey:
    def __init__(self, name: str):
        self.name = name
        self.sk = nacl.signing.SigningKey.generate()
        self.pub = self.sk.verify_key.encode()
        self.keyid = f"{name}+{ind_key_hash(name, self.pub)}"
        self.vkey = ind_vkey(name, self.pub)
        self.skey = ind_skey(name, self.sk.encode(), self.pub)


def ind_claim(key: IndKey, *, label="1", sha=MEDIA_SHA, issued_at=None, countersigners=(), sign_raw=False) -> bytes:
    body = {
        "v": 1,
        "id": "urn:uuid:6f1c2c55-0d5b-4c1e-9a55-0000000000aa",
        "issued_at": issued_at or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "issuer": key.keyid,
        "content": {"sha256": sha, "media_type": "image/gif"},
        "aigc": {"Label": label, "ContentProducer": "IND01", "ProduceID": "ind-1"},
        "synthesis": ["other_generation"],
    }
    payload = json.dumps(body, indent=1).encode()  # any layout: signatures cover bytes
    signed = payload if sign_raw else ind_pae(PAYLOAD_TYPE, payload)
    sigs = [{"keyid": k.keyid, "sig": base64.b64encode(k.sk.sign(signed).signature).decode()}
            for k in (key, *countersigners)]
    return json.dumps({"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode(),
                       "signatures": sigs}).encode()


def ind_verify(envelope: bytes | dict, trusted_vkeys: list[str], served_sha: str) -> dict:
    """Verify a claim as docs/protocol.md §2 describes; returns the payload or raises AssertionError."""
    env = json.loads(envelope) if isinstance(envelope, bytes) else envelope
    assert env["payloadType"] == PAYLOAD_TYPE
    payload = base64.b64decode(env["payload"], validate=True)
    trusted = dict(ind_parse_vkey(v) for v in trusted_vkeys)
    body = json.loads(payload)
    assert body["v"] == 1 and body["aigc"]["Label"] in ("1", "2", "3")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["issued_at"])
    first = env["signatures"][0]
    assert first["keyid"] == body["issuer"], "the producer signs first"
    pub = trusted[first["keyid"]]
    try:
        nacl.signing.VerifyKey(pub).verify(ind_pae(env["payloadType"], payload), base64.b64decode(first["sig"]))
    except nacl.exceptions.BadSignatureError:
        raise AssertionError("bad signature") from None
    assert body["content"]["sha256"] == served_sha
    return body


# --- the two against each other ------------------------------------------------------------


def project_registry(*entries):
    from labelcheck.claims.trust import TrustRegistry

    return TrustRegistry.from_dict({"producers": [dict(e) for e in entries]})


def test_independent_claim_verifies_with_project():
    from labelcheck.claims import verify_claim

    key = IndKey("ind-producer")
    registry = project_registry({"name": "Independent", "vkey": key.vkey, "filing": "IND-F"})
    assert registry.lookup(key.keyid) is not None  # same key id derivation
    verdict = verify_claim(ind_claim(key), registry, content_sha256=MEDIA_SHA)
    assert verdict.status == "verified", verdict.to_dict()
    assert verdict.category == "confirmed" and verdict.key_id == key.keyid
    assert verdict.producer == {"name": "Independent", "key_id": key.keyid, "filing": "IND-F"}
    assert verdict.claim_digest == hashlib.sha256(base64.b64decode(json.loads(ind_claim(key))["payload"])).hexdigest()


def test_independent_countersignature_counts_with_project():
    from labelcheck.claims import verify_claim

    producer, platform = IndKey("ind-producer"), IndKey("ind-platform")
    registry = project_registry({"name": "P", "vkey": producer.vkey},
                                {"name": "Platform", "vkey": platform.vkey, "roles": ["propagator"]})
    verdict = verify_claim(ind_claim(producer, countersigners=[platform]), registry, content_sha256=MEDIA_SHA)
    assert verdict.status == "verified" and verdict.countersigners == [platform.keyid]


def test_project_rejects_independent_claims_that_are_wrong():
    from labelcheck.claims import verify_claim

    key = IndKey("ind-producer")
    registry = project_registry({"name": "Independent", "vkey": key.vkey})
    no_pae = verify_claim(ind_claim(key, sign_raw=True), registry, content_sha256=MEDIA_SHA)
    assert no_pae.status == "invalid" and "signature_invalid" in no_pae.reasons
    other = verify_claim(ind_claim(key), registry, content_sha256=hashlib.sha256(b"x").hexdigest())
    assert other.status == "invalid" and "content_mismatch" in other.reasons
    label = verify_claim(ind_claim(key, label="5"), registry, content_sha256=MEDIA_SHA)
    assert "label_invalid" in label.reasons


def test_independent_key_files_load_in_project(tmp_path):
    from labelcheck.ledger.keyfile import load_signer, load_verifier

    key = IndKey("ind-file")
    (tmp_path / "ind-file.key").write_text(key.skey + "\n")
    signer = load_signer(tmp_path / "ind-file.key")
    assert signer.key_id == key.keyid and signer.vkey == key.vkey
    assert load_verifier(key.vkey).key_id == key.keyid


def test_project_claim_verifies_with_independent(tmp_path):
    from labelcheck.claims import build_payload, sign_envelope
    from labelcheck.ledger.keyfile import generate_key, write_key_pair

    signer = generate_key("proj-producer")
    _, pub_path = write_key_pair(signer, tmp_path)
    vkey = pub_path.read_text().strip()
    body = build_payload(MEDIA_SHA, "image/gif", "2", issuer=signer, synthesis=["face"],
                         consent=hashlib.sha256(b"consent").hexdigest())
    envelope = sign_envelope(body, signer)
    got = ind_verify(json.dumps(envelope).encode(), [vkey], MEDIA_SHA)
    assert got["aigc"]["Label"] == "2" and got["issuer"] == ind_parse_vkey(vkey)[0]
    assert got["consent"]["obtained"] is True


def test_project_countersigned_claim_verifies_with_independent(tmp_path):
    from labelcheck.claims import build_payload, sign_envelope
    from labelcheck.ledger.keyfile import generate_key

    producer, platform = generate_key("proj-producer"), generate_key("proj-platform")
    envelope = sign_envelope(build_payload(MEDIA_SHA, "image/gif", "1", issuer=producer), producer, platform)
    ind_verify(envelope, [producer.vkey, platform.vkey], MEDIA_SHA)
    # The independent side checks the countersignature too.
    keyid, pub = ind_parse_vkey(platform.vkey)
    second = envelope["signatures"][1]
    assert second["keyid"] == keyid
    nacl.signing.VerifyKey(pub).verify(ind_pae(PAYLOAD_TYPE, base64.b64decode(envelope["payload"])),
                                       base64.b64decode(second["sig"]))


def test_independent_rejects_tampered_project_claim():
    from labelcheck.claims import build_payload, sign_envelope
    from labelcheck.ledger.keyfile import generate_key

    signer = generate_key("proj-producer")
    envelope = sign_envelope(build_payload(MEDIA_SHA, "image/gif", "1", issuer=signer), signer)
    body = json.loads(base64.b64decode(envelope["payload"]))
    body["aigc"]["Label"] = "3"
    envelope["payload"] = base64.b64encode(json.dumps(body).encode()).decode()
    with pytest.raises(AssertionError, match="bad signature"):
        ind_verify(envelope, [signer.vkey], MEDIA_SHA)


def test_pae_agrees_on_the_dsse_example():
    from labelcheck.claims import pae

    example = ("http://example.com/HelloWorld", b"hello world")
    assert ind_pae(*example) == pae(*example) == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
