"""Strict JSON reading of claims (RFC 8259): the orjson read-back path
must give exactly what the strict reader gives, and refuse nothing less."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelcheck.claims import ClaimError
from labelcheck.claims.strictjson import _NO, _loads_slowly, _read_back, dumps_compact, loads_strict

SCALARS = st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text() | \
    st.floats(allow_nan=False, allow_infinity=False)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) |
                      st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


def same(a, b) -> bool:
    """Equal values of equal types, dict keys in the same order, at every depth."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def outcome(raw: bytes):
    try:
        return "ok", _loads_slowly(raw, "x")
    except ClaimError as exc:
        return "error", exc.detail


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_compact_text_reads_back_as_the_strict_reader_reads_it(value):
    raw = dumps_compact(value)
    kind, strict = outcome(raw)
    got = loads_strict(raw, "x")
    assert kind == "ok" and same(got, strict)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=40) | VALUES.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")))
def test_the_fast_path_accepts_only_what_the_strict_reader_accepts_alike(raw):
    fast = _read_back(raw)
    if fast is not _NO:
        kind, strict = outcome(raw)
        assert kind == "ok" and same(fast, strict)


@pytest.mark.parametrize("raw, code", [
    (b'{"a":1,"a":1}', "duplicate_key"),          # compact, as orjson would write the rest
    (b'{"p":{"b":1,"b":1}}', "duplicate_key"),    # nested
    (b'[NaN]', "not_json"),
    (b'[Infinity]', "not_json"),
    (b'"\\ud800"', "not_json"),                   # a lone surrogate escape
    (b'"\xed\xa0\x80"', "not_json"),              # a surrogate encoded as UTF-8
    (b'"\xff"', "not_json"),
    (b'[' * 5000 + b']' * 5000, "not_json"),
])
def test_refusals_hold_for_compact_text(raw, code):
    with pytest.raises(ClaimError) as err:
        loads_strict(raw, "payload")
    assert (err.value.code, err.value.detail) == ("malformed", code)


def test_numbers_orjson_would_change_go_to_the_strict_reader():
    for raw, value in [(b'[18446744073709551616]', [2**64]), (b'[-9223372036854775809]', [-(2**63) - 1]),
                       (b'[1e5]', [100000.0]), (b'-0', 0), (b'{"a": 1}', {"a": 1}), (b'"\\/"', "/")]:
        assert _read_back(raw) is _NO
        assert same(loads_strict(raw, "x"), value)


def test_deep_nesting_is_refused_alike_by_both_readers():
    # orjson would take 1000 levels; the standard library's reader refuses them.
    deep = b"[" * 1000 + b"]" * 1000
    assert _read_back(deep) is _NO
    with pytest.raises(ClaimError) as err:
        loads_strict(deep, "payload")
    assert err.value.detail == "not_json"
    assert loads_strict(b"[" * 100 + b"]" * 100, "x") == json.loads(b"[" * 100 + b"]" * 100)


def test_a_claim_payload_takes_the_fast_path():
    raw = dumps_compact({"v": 1, "issuer": "a+0000abcd", "content": {"sha256": "00" * 32}, "aigc": {"Label": "1"},
                         "note": "合成 \u2028 \x7f \n"})
    assert _read_back(raw) is not _NO
    assert same(loads_strict(raw, "x"), json.loads(raw))
