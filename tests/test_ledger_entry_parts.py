"""The append path's one-pass check and encoding of a record
(``entry_encode.entry_parts``) against the reference (``canonical.dumps``), and
the commit's frontier (``tree.Frontier``) against the stored-hash layout."""

from __future__ import annotations

import enum
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelcheck.ledger import canonical, merkle
from labelcheck.ledger import entry_encode
from labelcheck.ledger.entry_encode import SLOTS, entry_parts
from labelcheck.ledger.tree import Frontier

_B64 = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", max_size=44)
_scalar = (st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1)
           | st.text(st.characters(blacklist_categories=["Cs"]), max_size=12))
_valid = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                      max_leaves=8)
# Values with no canonical form, and kinds the inline writers leave to the reference.
_odd = st.sampled_from([1.5, float("nan"), 2**53, -(2**53), 2**70, "\ud800", "a\udfffb", b"x", {1, 2}, (1, "a"),
                        ["a", 1.0], ["a", "\ud800"], [None], {"k": 0.5}, {1: "x"}, object()])
_keys = st.text(max_size=8).filter(lambda k: k not in SLOTS) | st.sampled_from(["\ud800", "%s", "%", "a\x00"])


def _outcome(fn, *args):
    try:
        return "ok", fn(*args)
    except canonical.CanonicalError as exc:
        return "refused", str(exc)


def _reference(record: dict, index: int, prev: str) -> bytes:
    return canonical.dumps({**record, "index": index, "prev": prev})


def _joined(record: dict, index: int, prev: str) -> bytes:
    head, mid, tail = entry_parts(record)
    return head + b"%d" % index + mid + prev.encode() + tail


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _valid | _odd, max_size=6), st.integers(0, 2**53 - 1), _B64)
def test_entry_parts_agree_with_the_reference_on_valid_and_invalid_records(record, index, prev):
    assert _outcome(_joined, record, index, prev) == _outcome(_reference, record, index, prev)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["a", "b", "é", "z"]), _valid | _odd, min_size=2, max_size=4),
                min_size=2, max_size=6))
def test_records_of_one_shape_are_judged_each_on_its_own_values(records):
    # The first record of a shape fixes its plan; the later ones must not inherit its verdict.
    for i, record in enumerate(records):
        assert _outcome(_joined, record, i, "") == _outcome(_reference, record, i, "")


def test_a_verification_record_encodes_as_the_reference_does():
    record = {"kind": "verification", "status": "verified", "reasons": ["signature valid", "é \"quoted\"\n"],
              "registry_version": 7, "page_origin": None, "cached": False}
    assert _joined(record, 12, "AAAA+/==") == _reference(record, 12, "AAAA+/==")


@pytest.mark.parametrize("record", [
    {"a": "plain", "b": 1, "c": None, "d": True, "e": ["x", "y"], "f": []},  # no escapes: strings as they are
    {"a": "tab\there", "b": 1, "c": None, "d": False, "e": ["x", "y"], "f": []},  # a string with an escape
    {"a": "plain", "b": -(2**53) + 1, "c": None, "d": True, "e": ["x", "\"q\""], "f": []},  # a list item with one
    {"a": "é€😀", "b": 0, "c": None, "d": True, "e": ["\u2028", "\x7f"], "f": ["%s", "%d"]},  # no escape needed
    {"a": "plain", "b": 2**53, "c": None, "d": True, "e": ["x"], "f": []},  # out of range: refused
    {"a": "plain", "b": 1, "c": None, "d": True, "e": ["x", 1], "f": []},  # a list not of strings
    {"a": "plain", "b": 1, "c": None, "d": True, "e": ["x", "\udc00"], "f": []},  # a lone surrogate: refused
    {"a": "plain", "b": 1, "c": {"z": "1", "y": None, "é": "x"}, "d": True, "e": [], "f": []},  # a nested object
    {"a": "plain", "b": 1, "c": {"z": "q\"", "b": None}, "d": True, "e": [], "f": []},  # ... with an escape
    {"a": "plain", "b": 1, "c": {"z": 1, "y": {}}, "d": True, "e": [], "f": []},  # ... not of strings
    {"a": "plain", "b": 1, "c": {"z": "\ud800"}, "d": True, "e": [], "f": []},  # ... a lone surrogate: refused
    {"a": "plain", "b": 1, "c": {"z": 1.5}, "d": True, "e": [], "f": []},  # ... a float: refused
])
def test_each_way_through_one_shape_agrees_with_the_reference(record):
    for r in (record, {"a": "first of the shape", "b": 1, "c": None, "d": True, "e": ["x"], "f": []}, record):
        assert _outcome(_joined, r, 5, "QUJD") == _outcome(_reference, r, 5, "QUJD")


def test_the_servers_verification_record_takes_the_fast_path(monkeypatch):
    """The server appends this shape for every item; its nested content_sha256
    must not send it to the (three times slower) reference path."""
    record = {"kind": "verification", "time": "2026-11-27T00:00:00Z", "claim_digest": "sha256:" + "ab" * 32,
              "claim_id": "c1", "content_sha256": {"claimed": "ab" * 32, "observed": None}, "binding": "none",
              "key_id": "k", "status": "declared", "category": None, "reasons": ["x"], "page_origin": None,
              "media_origin": None, "server": "labelcheck/1", "registry_version": 3}
    expected = _reference(record, 9, "QUJD")
    monkeypatch.setattr(entry_encode, "_entry_parts_slowly", lambda r: pytest.fail("took the reference path"))
    assert _joined(record, 9, "QUJD") == expected


@pytest.mark.parametrize("record, words", [
    ({"a": 1, "index": 3}, "index is set by the ledger"),
    ({"prev": "", "a": 1}, "prev is set by the ledger"),
    ({"a": 1, "b": 1.5}, "floats"),
    ({"a": 1, "b": 2**53}, "outside"),
    ({"a": 1, "b": ["x", "\ud800"]}, "lone surrogate"),
    ({"a": 1, "\ud800": "x"}, "lone surrogate"),
    ({"a": 1, 2: "x"}, "keys must be strings"),
    ({"a": 1, "b": b"bytes"}, "not a JSON value"),
])
def test_records_without_a_canonical_form_are_refused_with_the_place_named(record, words):
    with pytest.raises(canonical.CanonicalError, match=words):
        entry_parts(record)


def test_subclasses_and_tuples_encode_as_their_plain_values():
    class Status(str, enum.Enum):
        OK = "verified"

    class Level(enum.IntEnum):
        HIGH = 3

    record = {Status.OK: Level.HIGH, "s": Status.OK, "t": ("x", 1), "n": {"z": True, "a": None}}
    plain = {"verified": 3, "s": "verified", "t": ["x", 1], "n": {"a": None, "z": True}}
    assert _joined(record, 0, "") == _reference(plain, 0, "")


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 300), st.integers(1, 70))
def test_frontier_adds_the_stored_hashes_of_the_layout(start, count):
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(start + count)]
    stored: list[bytes] = []
    for i, leaf in enumerate(leaves):
        stored += merkle.stored_hashes(i, leaf, lambda ids: [stored[j] for j in ids])
    read = lambda ids: [stored[j] for j in ids]  # noqa: E731
    ids = Frontier.ids(start)
    frontier = Frontier.resume(start, {level: h for (level, _), h in zip(ids, read([i for _, i in ids]))})
    assert frontier.root() == merkle.tree_hash(start, read)
    added = frontier.extend(leaves[start:])
    assert added == stored[merkle.stored_hash_count(start):]
    assert frontier.size == start + count and frontier.root() == merkle.tree_hash(start + count, read)


class _LooksLikeA:
    """Not a string, yet equal to "a" and hashed alike: a key with no canonical form."""

    def __eq__(self, other):
        return other == "a"

    def __hash__(self):
        return hash("a")


@pytest.mark.parametrize("first, then", [
    ({"a": 1, "b": 2}, {_LooksLikeA(): 1, "b": 2}),  # a key equal to a string is not one
    ({"a\x00b": 1, "c": 2}, {"a": 1, "b\x00c": 2}),  # the same keys joined at NUL, other keys
    ({"a": 1, "b": 2, "c": 3}, {"c": 3, "a": 1, "b": 2}),  # the same keys in another order
])
def test_a_record_is_never_taken_for_another_shape(first, then):
    for record in (first, then, first):
        assert _outcome(_joined, record, 1, "") == _outcome(_reference, record, 1, "")
