"""Label claims: DSSE envelopes, payload rules, and one test per failure reason."""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labelcheck import claims
from labelcheck.claims import ClaimError, build_payload, parse_envelope, sign_envelope, verify_claim
from labelcheck.ledger.keyfile import generate_key
from labelcheck.claims.trust import Producer, TrustRegistry

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
MEDIA = b"\x89PNG\r\n\x1a\n pretend image bytes"
SHA = hashlib.sha256(MEDIA).hexdigest()
CONSENT = hashlib.sha256(b"consent record").hexdigest()

PRODUCER = generate_key("acme-ai")
PROPAGATOR = generate_key("video-site")
STRANGER = generate_key("stranger")


@pytest.fixture
def registry() -> TrustRegistry:
    return TrustRegistry([
        Producer("Acme AI", PRODUCER.vkey, filing="FILING-0001"),
        Producer("Video Site", PROPAGATOR.vkey, roles=["propagator"]),
    ])


def body(**changes):
    """A valid payload at NOW, with fields changed (None deletes a field)."""
    b = build_payload(SHA, "image/png", "1", issuer=PRODUCER, now=NOW)
    for key, value in changes.items():
        target, _, leaf = key.rpartition("__")
        obj = b[target] if target else b
        if value is None:
            obj.pop(leaf, None)
        else:
            obj[leaf] = value
    return b


def envelope_bytes(payload, *signers) -> bytes:
    """Sign any payload (dict or bytes), skipping build_payload's checks."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signed = claims.pae(claims.PAYLOAD_TYPE, raw)
    sigs = [{"keyid": s.key_id, "sig": base64.b64encode(s.sign(signed)).decode()} for s in signers or (PRODUCER,)]
    env = {"payloadType": claims.PAYLOAD_TYPE, "payload": base64.b64encode(raw).decode(), "signatures": sigs}
    return json.dumps(env).encode()


def check(data, registry, *, sha=SHA, now=NOW):
    return verify_claim(data, registry, content_sha256=sha, now=now)


def assert_invalid(verdict, reason, field=None):
    assert verdict.status == "invalid", verdict.to_dict()
    assert reason in verdict.reasons, verdict.to_dict()
    if field is not None:
        assert any(m.startswith(field) for m in verdict.messages), verdict.messages


# --- DSSE ---------------------------------------------------------------------------


def test_pae_matches_dsse_spec_example():
    # DSSE protocol.md, "Test vectors".
    got = claims.pae("http://example.com/HelloWorld", b"hello world")
    assert got == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def test_pae_counts_bytes_not_characters():
    assert claims.pae("t/é", b"\x00\xff") == b"DSSEv1 4 t/\xc3\xa9 2 \x00\xff"


def test_round_trip_verified(registry):
    env = sign_envelope(body(), PRODUCER)
    assert env["payloadType"] == claims.PAYLOAD_TYPE
    assert env["signatures"][0]["keyid"] == PRODUCER.key_id
    v = check(env, registry)
    assert v.status == "verified" and v.category == "confirmed"
    assert v.reasons == ["signature_ok", "content_match"]
    assert v.producer == {"name": "Acme AI", "key_id": PRODUCER.key_id, "filing": "FILING-0001"}
    assert v.content_sha256 == SHA and v.media_type == "image/png" and v.label["Label"] == "1"
    assert v.claim_digest == hashlib.sha256(base64.b64decode(env["payload"])).hexdigest()
    # bytes, str and dict inputs agree
    assert check(json.dumps(env), registry).to_dict() == v.to_dict()
    assert check(json.dumps(env).encode(), registry).to_dict() == v.to_dict()


def test_several_signatures_round_trip(registry):
    env = sign_envelope(body(), PRODUCER, PROPAGATOR)
    assert [s["keyid"] for s in env["signatures"]] == [PRODUCER.key_id, PROPAGATOR.key_id]
    v = check(env, registry)
    assert v.status == "verified"
    assert v.countersigners == [PROPAGATOR.key_id]
    assert "countersignature_ok" in v.reasons


def test_add_signature_keeps_digest_and_verifies(registry):
    env = sign_envelope(body(), PRODUCER)
    countersigned = claims.add_signature(env, PROPAGATOR)
    assert len(env["signatures"]) == 1  # the original is not changed
    assert claims.claim_digest(countersigned) == claims.claim_digest(env)
    assert check(countersigned, registry).countersigners == [PROPAGATOR.key_id]
    with pytest.raises(ClaimError, match="already signed"):
        claims.add_signature(countersigned, PROPAGATOR)


def test_parse_envelope_returns_fields():
    parsed = parse_envelope(sign_envelope(body(), PRODUCER, PROPAGATOR))
    assert parsed.issuer == PRODUCER.key_id and parsed.content_sha256 == SHA
    assert parsed.issued_at == NOW and parsed.expires_at is None
    assert parsed.keyids == (PRODUCER.key_id, PROPAGATOR.key_id)
    assert parsed.category == "confirmed" and parsed.media_type == "image/png"


def test_without_served_hash_signature_checks_but_unverified(registry):
    v = verify_claim(sign_envelope(body(), PRODUCER), registry, now=NOW)
    assert v.status == "unverified"
    assert v.reasons == ["signature_ok"]


@pytest.mark.parametrize("label, category", [("1", "confirmed"), ("2", "possible"), ("3", "suspected")])
def test_category_follows_label(registry, label, category):
    v = check(sign_envelope(body(aigc__Label=label), PRODUCER), registry)
    assert v.status == "verified" and v.category == category


def test_category_is_kept_on_invalid_results(registry):
    v = check(sign_envelope(body(aigc__Label="2"), PRODUCER), registry, sha="0" * 64)
    assert v.status == "invalid" and v.category == "possible"


# --- one test per failure reason ----------------------------------------------------------


def test_oversized(registry):
    big = body(note="x" * claims.MAX_ENVELOPE_BYTES)
    v = check(envelope_bytes(big), registry)
    assert_invalid(v, "oversized")
    with pytest.raises(ClaimError) as err:
        parse_envelope(envelope_bytes(big))
    assert err.value.code == "oversized"
    with pytest.raises(ClaimError):  # signing refuses to make one
        sign_envelope(big, PRODUCER)


def test_not_json(registry):
    v = check(b'{"payloadType": ', registry)
    assert_invalid(v, "malformed", "envelope")
    assert "not_json" in v.reasons


def test_payload_type_wrong(registry):
    env = sign_envelope(body(), PRODUCER)
    env["payloadType"] = "application/json"
    v = check(env, registry)
    assert_invalid(v, "payload_type_invalid", "payloadType")
    assert "malformed" in v.reasons


@pytest.mark.parametrize("bad", ["not base64!", "eyJ2Ijox=", "eyJ2IjoxfQ", "eyJ2IjoxfR==", "eyJ2I-oxfQ=="])
def test_payload_not_base64(registry, bad):
    env = sign_envelope(body(), PRODUCER)
    env["payload"] = bad
    v = check(env, registry)
    assert_invalid(v, "not_base64", "payload")


def test_signature_not_base64_or_wrong_length(registry):
    env = sign_envelope(body(), PRODUCER)
    env["signatures"][0]["sig"] = env["signatures"][0]["sig"].replace("+", "-").replace("/", "_") + "%"
    assert_invalid(check(env, registry), "not_base64", "signatures[0].sig")
    env["signatures"][0]["sig"] = base64.b64encode(b"\x00" * 63).decode()
    assert_invalid(check(env, registry), "malformed", "signatures[0].sig")


@pytest.mark.parametrize("sigs", [[], None, "x", [{"sig": "AA=="}], [{"keyid": "no-hash", "sig": "AA=="}]])
def test_signatures_list_malformed(registry, sigs):
    env = sign_envelope(body(), PRODUCER)
    env["signatures"] = sigs
    assert_invalid(check(env, registry), "malformed", "signatures")


def test_same_key_signing_twice_is_malformed(registry):
    env = sign_envelope(body(), PRODUCER)
    env["signatures"].append(dict(env["signatures"][0]))
    assert_invalid(check(env, registry), "malformed", "signatures[1].keyid")


def test_duplicate_key_in_envelope(registry):
    env = sign_envelope(body(), PRODUCER)
    text = json.dumps(env)
    dup = text[:-1] + ', "payloadType": "application/json"}'
    v = check(dup, registry)
    assert_invalid(v, "duplicate_key", "envelope")


def test_duplicate_key_in_payload(registry):
    raw = json.dumps(body())[:-1] + ', "issuer": "other+00000000"}'
    v = check(envelope_bytes(raw.encode()), registry)
    assert_invalid(v, "duplicate_key", "payload")
    assert "signature_ok" not in v.reasons  # never judged on ambiguous content


def test_duplicate_key_nested_in_payload(registry):
    raw = json.dumps(body()).replace('"Label": "1"', '"Label": "1", "Label": "3"')
    assert_invalid(check(envelope_bytes(raw.encode()), registry), "duplicate_key")


def test_payload_not_an_object(registry):
    assert_invalid(check(envelope_bytes(b"[1, 2]"), registry), "malformed", "payload")


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"v": 2}, "v"),
        ({"v": True}, "v"),
        ({"id": ""}, "id"),
        ({"issued_at": None}, "issued_at"),
        ({"issued_at": "2026-03-01T12:00:00+08:00"}, "issued_at"),
        ({"issued_at": "2026-02-30T12:00:00Z"}, "issued_at"),
        ({"issued_at": "\u0662\u0660\u0662\u0666-03-01T12:00:00Z"}, "issued_at"),
        ({"expires_at": "2026-03-01T11:00:00Z"}, "expires_at"),
        ({"issuer": 7}, "issuer"),
        ({"content": None}, "content"),
        ({"content__sha256": SHA.upper()}, "content.sha256"),
        ({"content__media_type": "png"}, "content.media_type"),
        ({"aigc__ContentProducer": None}, "aigc.ContentProducer"),
        ({"aigc__ProduceID": 5}, "aigc.ProduceID"),
        ({"synthesis": ["deepfake"]}, "synthesis"),
        ({"consent": {"obtained": "yes"}}, "consent"),
        ({"assessment": {"ref": "A-1", "sha256": "zz"}}, "assessment.sha256"),
        ({"filing": 12}, "filing"),
    ],
)
def test_payload_field_malformed(registry, changes, field):
    v = check(envelope_bytes(body(**changes)), registry)
    assert_invalid(v, "malformed", field)
    with pytest.raises(ClaimError) as err:
        parse_envelope(envelope_bytes(body(**changes)))
    assert err.value.code == "malformed" and err.value.field == field



@pytest.mark.parametrize("when, says", [
    ("2026-03-01T12:00:00+08:00", "in UTC (Z), not offset +08:00"),
    ("2026-03-01 12:00:00Z", "RFC 3339 time like 2025-09-01T12:00:00Z, got '2026-03-01 12:00:00Z'"),
    ("2026-02-30T12:00:00Z", "not a valid date and time"),
    (20260301, "RFC 3339 time string"),
])
def test_time_problems_say_what_is_wrong(registry, when, says):
    v = check(envelope_bytes(body(issued_at=when)), registry)
    assert any(m.startswith("issued_at: ") and says in m for m in v.messages), v.messages


def test_claims_in_early_years_are_written_with_four_digit_years(registry):
    then = datetime(999, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    b = build_payload(SHA, "image/png", "1", issuer=PRODUCER, now=then, expires_at=timedelta(days=1))
    assert (b["issued_at"], b["expires_at"]) == ("0999-01-02T03:04:05Z", "0999-01-03T03:04:05Z")
    v = verify_claim(sign_envelope(b, PRODUCER), registry, content_sha256=SHA, now=then)
    assert v.status == "verified", v.messages
    later = verify_claim(sign_envelope(b, PRODUCER), registry, content_sha256=SHA, now=NOW)
    assert "expired" in later.reasons and any("0999-01-03T03:04:05Z" in m for m in later.messages)


def test_the_public_api_is_explicit():
    assert sorted(claims.__all__) == sorted(set(claims.__all__))
    for name in claims.__all__:
        assert getattr(claims, name) is not None, name
    for gone in ("labelcheck.claims.core", "labelcheck.claims.keys"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(gone)
    assert claims.parse_envelope(claims.sign_envelope(body(), PRODUCER)).issuer == PRODUCER.key_id

def test_signature_invalid(registry):
    env = sign_envelope(body(), PRODUCER)
    tampered = body(aigc__Label="3")  # same signature, different bytes
    env["payload"] = base64.b64encode(json.dumps(tampered).encode()).decode()
    v = check(env, registry)
    assert_invalid(v, "signature_invalid", "signatures")
    assert "signature_ok" not in v.reasons


def test_signature_by_another_key_under_producer_keyid(registry):
    env_json = json.loads(envelope_bytes(body(), STRANGER))
    env_json["signatures"][0]["keyid"] = PRODUCER.key_id
    assert_invalid(check(env_json, registry), "signature_invalid")


def test_unknown_key(registry):
    v = check(sign_envelope(body(issuer=STRANGER.key_id), STRANGER), registry)
    assert_invalid(v, "unknown_key", "issuer")
    assert v.producer is None and v.key_id == STRANGER.key_id


def test_revoked_key_after_revocation(registry):
    registry.revoke(PRODUCER.key_id, NOW - timedelta(days=1))
    v = check(sign_envelope(body(), PRODUCER), registry)
    assert_invalid(v, "revoked_key", "issuer")


def test_claim_issued_at_revocation_time_is_revoked(registry):
    registry.revoke(PRODUCER.key_id, NOW)
    assert_invalid(check(sign_envelope(body(), PRODUCER), registry), "revoked_key")


def test_claim_issued_before_revocation_stays_valid_and_says_so(registry):
    registry.revoke(PRODUCER.key_id, NOW + timedelta(days=1))
    v = check(sign_envelope(body(), PRODUCER), registry, now=NOW + timedelta(days=2))
    assert v.status == "verified"
    assert "key_revoked_later" in v.reasons
    assert any("revoked" in m for m in v.messages)


def test_issuer_not_signer(registry):
    raw = body(issuer=PROPAGATOR.key_id)
    v = check(envelope_bytes(raw, PRODUCER), registry)
    assert_invalid(v, "issuer_not_signer", "issuer")
    with pytest.raises(ClaimError) as err:
        parse_envelope(envelope_bytes(raw, PRODUCER))
    assert err.value.code == "issuer_not_signer"


def test_issuer_must_be_registered_as_producer(registry):
    raw = body(issuer=PROPAGATOR.key_id)
    v = check(envelope_bytes(raw, PROPAGATOR), registry)
    assert_invalid(v, "not_producer", "issuer")
    assert "signature_ok" in v.reasons


@pytest.mark.parametrize("label", ["0", "4", 1, None, "１"])
def test_label_invalid(registry, label):
    v = check(envelope_bytes(body(aigc__Label=label)), registry)
    assert_invalid(v, "label_invalid", "aigc.Label")
    assert v.category is None
    with pytest.raises(ClaimError) as err:
        parse_envelope(envelope_bytes(body(aigc__Label=label)))
    assert err.value.code == "label_invalid"


@pytest.mark.parametrize(
    "synthesis, consent",
    [
        (["face"], None),
        (["voice", "text_imitation"], None),
        (["face"], {"obtained": False, "record_sha256": CONSENT}),
        (["voice"], {"obtained": True}),
    ],
)
def test_consent_missing(registry, synthesis, consent):
    v = check(envelope_bytes(body(synthesis=synthesis, consent=consent)), registry)
    assert_invalid(v, "consent_missing", "consent")
    with pytest.raises(ClaimError) as err:
        build_payload(SHA, "image/png", "1", issuer=PRODUCER, synthesis=synthesis, consent=consent)
    assert err.value.code == "consent_missing"


def test_consent_given_for_face_verifies(registry):
    b = build_payload(SHA, "image/png", "1", issuer=PRODUCER, now=NOW, synthesis=["face", "voice"], consent=CONSENT)
    assert b["consent"] == {"obtained": True, "record_sha256": CONSENT}
    assert check(sign_envelope(b, PRODUCER), registry).status == "verified"


def test_expired(registry):
    b = build_payload(SHA, "image/png", "1", issuer=PRODUCER, now=NOW, expires_at=timedelta(days=30))
    assert b["expires_at"] == "2026-03-31T12:00:00Z"
    env = sign_envelope(b, PRODUCER)
    assert check(env, registry, now=NOW + timedelta(days=29)).status == "verified"
    v = check(env, registry, now=NOW + timedelta(days=30))
    assert_invalid(v, "expired", "expires_at")


def test_not_yet_valid(registry):
    env = sign_envelope(body(), PRODUCER)
    assert check(env, registry, now=NOW - timedelta(minutes=4)).status == "verified"  # within clock skew
    v = check(env, registry, now=NOW - claims.CLOCK_SKEW - timedelta(seconds=1))
    assert_invalid(v, "not_yet_valid", "issued_at")


def test_content_mismatch(registry):
    v = check(sign_envelope(body(), PRODUCER), registry, sha=hashlib.sha256(b"other").hexdigest())
    assert_invalid(v, "content_mismatch", "content.sha256")
    assert "signature_ok" in v.reasons


def test_content_hash_compared_case_insensitively_and_nonsense_is_a_mismatch(registry):
    env = sign_envelope(body(), PRODUCER)
    assert check(env, registry, sha=SHA.upper()).status == "verified"
    assert_invalid(check(env, registry, sha="not a hash"), "content_mismatch")


def test_countersignature_invalid(registry):
    env = sign_envelope(body(), PRODUCER, PROPAGATOR)
    env["signatures"][1]["sig"] = env["signatures"][0]["sig"]
    assert_invalid(check(env, registry), "countersignature_invalid", "signatures")


def test_unknown_countersigner_is_reported_not_fatal(registry):
    v = check(sign_envelope(body(), PRODUCER, STRANGER), registry)
    assert v.status == "verified"
    assert "countersigner_unknown" in v.reasons and v.countersigners == []


def test_countersigner_without_propagator_role_is_not_counted(registry):
    registry.add(Producer("Other AI", STRANGER.vkey, roles=["producer"]))
    v = check(sign_envelope(body(), PRODUCER, STRANGER), registry)
    assert v.status == "verified"
    assert "countersigner_not_propagator" in v.reasons and v.countersigners == []


def test_revoked_countersigner_is_not_counted(registry):
    registry.revoke(PROPAGATOR.key_id, NOW - timedelta(hours=1))
    v = check(sign_envelope(body(), PRODUCER, PROPAGATOR), registry)
    assert v.status == "verified"
    assert "countersigner_revoked" in v.reasons and v.countersigners == []


def test_several_failures_are_all_reported(registry):
    raw = body(aigc__Label="9", synthesis=["face"], expires_at="2026-03-02T00:00:00Z")
    v = check(envelope_bytes(raw), registry, sha="0" * 64, now=NOW + timedelta(days=2))
    for reason in ("label_invalid", "consent_missing", "expired", "content_mismatch", "signature_ok"):
        assert reason in v.reasons
    assert len(v.messages) >= 4


@pytest.mark.parametrize("data", [None, 42, [], "", b"", "[]", b"\xff\xfe", {"payload": 1}])
def test_non_envelopes_are_malformed_not_errors(registry, data):
    v = verify_claim(data, registry)
    assert_invalid(v, "malformed")
    with pytest.raises(ClaimError):
        parse_envelope(data)


# --- building -----------------------------------------------------------------------


def test_build_payload_fields():
    b = build_payload(
        SHA, "video/mp4", 2, issuer=PRODUCER.key_id, now=NOW, url="https://example.org/v.mp4",
        filing="F-9", assessment={"ref": "SA-1", "sha256": CONSENT}, producer_code="ACME01",
        produce_id="job-7", id="urn:uuid:00000000-0000-4000-8000-000000000000",
        digital_source_type="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
        aigc={"ContentPropagator": "SITE01"},
    )
    assert b["v"] == 1 and b["issued_at"] == "2026-03-01T12:00:00Z" and b["issuer"] == PRODUCER.key_id
    assert b["id"] == "urn:uuid:00000000-0000-4000-8000-000000000000"
    assert b["content"] == {"sha256": SHA, "media_type": "video/mp4", "url": "https://example.org/v.mp4"}
    assert b["aigc"] == {"Label": "2", "ContentProducer": "ACME01", "ProduceID": "job-7", "ContentPropagator": "SITE01"}
    assert b["filing"] == "F-9" and b["assessment"]["ref"] == "SA-1"


def test_build_payload_defaults_and_unique_ids():
    a = build_payload(SHA, "image/png", "1", issuer=PRODUCER)
    b = build_payload(SHA, "image/png", "1", issuer=PRODUCER)
    assert a["id"].startswith("urn:uuid:") and a["id"] != b["id"]
    assert a["aigc"]["ContentProducer"] == "acme-ai" and a["aigc"]["ProduceID"] == a["id"]
    assert "expires_at" not in a and "synthesis" not in a


@pytest.mark.parametrize(
    "args, kwargs, field",
    [
        (("abc", "image/png", "1"), {}, "content.sha256"),
        ((SHA, "image/png", "7"), {}, "aigc.Label"),
        ((SHA, "image/png", "1"), {"issuer": "nope"}, "issuer"),
        ((SHA, "image/png", "1"), {"v": 2}, "v"),
    ],
)
def test_build_payload_refuses_bad_input(args, kwargs, field):
    kwargs.setdefault("issuer", PRODUCER)
    with pytest.raises(ClaimError) as err:
        build_payload(*args, **kwargs)
    assert err.value.field == field


def test_sign_envelope_refuses_a_producer_other_than_the_issuer():
    with pytest.raises(ClaimError) as err:
        sign_envelope(body(), PROPAGATOR, PRODUCER)
    assert err.value.code == "issuer_not_signer"
    with pytest.raises(ClaimError):
        sign_envelope(body())


def test_payload_bytes_are_signed_as_given(registry):
    raw = json.dumps(body(), indent=3, sort_keys=True).encode()
    env = sign_envelope(raw, PRODUCER)
    assert base64.b64decode(env["payload"]) == raw
    assert check(env, registry).status == "verified"


def test_data_attribute_round_trip(registry):
    env = sign_envelope(body(), PRODUCER)
    attr = claims.to_data_attribute(env)
    assert "=" not in attr and "+" not in attr and "/" not in attr
    assert json.loads(claims.from_data_attribute(attr)) == env
    padded = attr + "=" * (-len(attr) % 4)
    assert check(claims.from_data_attribute(padded), registry).status == "verified"
    with pytest.raises(ClaimError):
        claims.from_data_attribute("not/base64url+")


# --- arbitrary input ------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
FIELD_NAMES = ["v", "id", "issued_at", "expires_at", "issuer", "content", "aigc", "synthesis", "consent",
               "sha256", "media_type", "Label", "obtained", "record_sha256"]
payload_like = st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=8), json_values, max_size=8)


@st.composite
def envelope_like(draw):
    """Envelope-shaped JSON: right keys, random or half-right values."""
    payload = draw(st.one_of(payload_like.map(lambda d: json.dumps(d).encode()), st.binary(max_size=64),
                             st.just(json.dumps(body()).encode())))
    env = {
        "payloadType": draw(st.sampled_from([claims.PAYLOAD_TYPE, "x", 3])),
        "payload": draw(st.one_of(st.just(base64.b64encode(payload).decode()), json_values)),
        "signatures": draw(st.one_of(
            st.lists(st.fixed_dictionaries({
                "keyid": st.sampled_from([PRODUCER.key_id, PROPAGATOR.key_id, "a+00000000"]) | json_values,
                "sig": st.binary(min_size=64, max_size=64).map(lambda b: base64.b64encode(b).decode()) | json_values,
            }), max_size=3),
            json_values,
        )),
    }
    for key in draw(st.lists(st.sampled_from(list(env)), max_size=1)):
        del env[key]
    return env


def _only_verdicts_or_claim_errors(data, registry):
    v = verify_claim(data, registry, content_sha256=SHA, now=NOW)
    assert v.status == "invalid", v.to_dict()
    assert "internal_error" not in v.reasons
    json.dumps(v.to_dict())  # always serialisable
    try:
        parse_envelope(data)
    except ClaimError as exc:
        assert exc.code in claims.FAILURES and exc.message
    else:
        # Well formed by chance (right shape, random signature): then the
        # signature is what must fail, never pass.
        assert "signature_ok" not in v.reasons, v.to_dict()
        assert {"signature_invalid", "unknown_key"} & set(v.reasons), v.to_dict()


HYPOTHESIS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@HYPOTHESIS
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes(registry, data):
    _only_verdicts_or_claim_errors(data, registry)


@HYPOTHESIS
@given(value=json_values)
def test_arbitrary_json(registry, value):
    _only_verdicts_or_claim_errors(json.dumps(value), registry)
    if isinstance(value, dict):
        _only_verdicts_or_claim_errors(value, registry)


@HYPOTHESIS
@given(env=envelope_like())
def test_arbitrary_envelope_shaped_json(registry, env):
    _only_verdicts_or_claim_errors(json.dumps(env).encode(), registry)
    _only_verdicts_or_claim_errors(env, registry)


@HYPOTHESIS
@given(payload=payload_like)
def test_arbitrary_signed_payloads(registry, payload):
    """Well-signed envelopes around random payloads: judged, never crash."""
    data = envelope_bytes(json.dumps(payload).encode())
    v = verify_claim(data, registry, content_sha256=SHA, now=NOW)
    assert v.status == "invalid" and "internal_error" not in v.reasons
    with pytest.raises(ClaimError):
        parse_envelope(data)


# --- benchmark ------------------------------------------------------------------------


def test_benchmark_runs_at_tiny_size():
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts/benchmarks/claims.py"), "--claims", "20", "--seconds", "0.05"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["benchmark"] == "claims"
    assert result["claims_per_s"] > 0 and result["raw_verifies_per_s"] > 0 and result["ratio"] > 0


@pytest.mark.parametrize(
    "call",
    [
        lambda: build_payload(SHA, "image/png", "1", issuer=PRODUCER, expires_at=12),
        lambda: build_payload(SHA, "image/png", "1", issuer=PRODUCER, now="today"),
        lambda: build_payload(SHA, "image/png", "1", issuer=PRODUCER, synthesis="face"),
        lambda: build_payload(None, None, None, issuer=None),
        lambda: sign_envelope({"issuer": PRODUCER.key_id, "x": {1, 2}}, PRODUCER),
        lambda: sign_envelope("text", PRODUCER),
        lambda: claims.add_signature("not an envelope", PRODUCER),
        lambda: claims.add_signature({"payloadType": "x", "payload": "", "signatures": []}, PRODUCER),
        lambda: claims.claim_digest(b"[]"),
    ],
)
def test_api_misuse_raises_only_claim_error(call):
    with pytest.raises(ClaimError):
        call()
