"""The 64 KiB envelope cap on envelope objects: counted as the compact JSON
is written (docs/protocol.md §2), whether or not the quick bound decides it."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelcheck import claims
from labelcheck.claims import ClaimError, sign_envelope
from labelcheck.claims.envelope import MAX_ENVELOPE_BYTES, decode_envelope, size_bound
from labelcheck.claims.trust import Producer, TrustRegistry
from labelcheck.ledger.keyfile import generate_key

SIGNER = generate_key("size-ai")
SHA = hashlib.sha256(b"sized media").hexdigest()


def written(value) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))


def envelope() -> dict:
    return sign_envelope(claims.build_payload(SHA, "image/png", "1", issuer=SIGNER), SIGNER)


def padded(total: int, char: str) -> dict:
    """A signed envelope with an extra member making it ``total`` bytes as written."""
    env = envelope()
    env["x"] = ""
    room = total - written(env)
    per = written(char) - 2  # as written: "\\n" is two bytes
    env["x"] = char * (room // per) + "a" * (room % per)
    assert written(env) == total
    return env


json_text = st.text(st.characters(blacklist_categories=("Cs",)) | st.sampled_from(['"', "\\", "\n", "\x01", "\ud800"]))
json_values = st.recursive(st.none() | st.booleans() | json_text,
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_text, inner, max_size=4),
                           max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_size_bound_is_never_below_the_written_size(value):
    bound = size_bound(value)
    if bound is not None:
        assert bound >= written(value)


def test_size_bound_gives_up_on_numbers_and_deep_nesting():
    assert size_bound({"a": 1}) is None
    assert size_bound({"a": 1.5}) is None
    assert size_bound([[[[["deep"]]]]]) is None


@pytest.mark.parametrize("char", ["a", "é", "中", "\n"])
def test_an_envelope_object_at_the_cap_is_read_and_one_byte_over_is_refused(char):
    at_cap = padded(MAX_ENVELOPE_BYTES, char)
    assert decode_envelope(at_cap).keyids == (SIGNER.key_id,)
    over = padded(MAX_ENVELOPE_BYTES + 1, char)
    with pytest.raises(ClaimError) as err:
        decode_envelope(over)
    assert err.value.code == "oversized"
    assert f"envelope is {MAX_ENVELOPE_BYTES + 1} bytes" in err.value.message


def test_a_small_envelope_object_still_verifies():
    registry = TrustRegistry([Producer("Size AI", SIGNER.vkey)])
    verdict = claims.verify_claim(envelope(), registry, content_sha256=SHA)
    assert verdict.status == "verified", verdict.to_dict()
