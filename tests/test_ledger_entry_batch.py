"""A batch's entry parts at once (``entry_batch.entries_parts``) against
``entry_encode.entry_parts`` record by record, itself tested against the
reference ``canonical.dumps`` (test_ledger_entry_parts.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelcheck.ledger import canonical
from labelcheck.ledger.entry_batch import entries_parts
from labelcheck.ledger.entry_encode import entry_parts
from labelcheck.ledger.log import Ledger, LedgerError
from labelcheck.util import b64

from test_ledger_entry_parts import _odd, _valid


def _each(records: list) -> list | str:
    try:
        return [entry_parts(r) for r in records]
    except canonical.CanonicalError:
        return "refused"


def _same_or_declined(records: list) -> list | None:
    got = entries_parts(records)
    if got is not None:
        assert got == _each(records)
    return got


_plain_text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters='"\\', min_codepoint=32),
                      max_size=6)
# One strategy per value type the fast path writes, strings without escapes.
_columns = st.sampled_from([
    _plain_text, st.integers(-(2**53) + 1, 2**53 - 1), st.booleans(), st.none(), st.lists(_plain_text, max_size=3),
    st.dictionaries(_plain_text, _plain_text | st.none(), max_size=2),
])


@settings(max_examples=200, deadline=None)
@given(st.lists(_columns, min_size=1, max_size=4), st.integers(1, 8), st.data())
def test_records_of_one_shape_and_kind_take_the_batch_path(columns, count, data):
    records = [{"kind": "v", **{f"k{i}": data.draw(c) for i, c in enumerate(columns)}} for _ in range(count)]
    assert _same_or_declined(records) is not None


@pytest.mark.parametrize("records", [
    [{"a": "x", "b": 1}, {"a": "y", "b": 2}],
    [{"a": "x", "b": ["p", "q"], "c": True, "d": None}, {"a": "é", "b": [], "c": False, "d": None}],
    [{"a": "x", "n": {"k": "v", "j": None}}, {"a": "y", "n": {}}],
])
def test_plain_batches_are_encoded_at_once(records):
    assert entries_parts(records) == _each(records)


@pytest.mark.parametrize("records", [
    [],  # nothing to do
    [{"a": "x", "b": 1}, {"b": 1, "a": "x", "c": 2}],  # another shape
    [{"a": "x", "b": 1}, {"a": "x", "c": 1}],  # other keys, as many
    [{"a": "x", "b": 1}, {"a": "x", 2: 1}],  # ... one not a string
    [{"a": "x", "b": 1}, {"a": "y", "b": "1"}],  # another kind
    [{"a": "x", "b": 1}, {"a": None, "b": 2}],  # a string column holding null ...
    [{"a": "x", "b": 1}, {"a": 7, "b": 2}],  # ... or a number
    [{"a": "x", "b": 1}, {"a": "tab\there", "b": 2}],  # a string needing an escape
    [{"a": "x", "b": ["q\"uote"]}, {"a": "y", "b": []}],  # ... in a list
    [{"a": "x", "b": 1}, {"a": "y", "b": 2**53}],  # an integer out of range
    [{"a": "x", "b": 1}, {"a": "\ud800", "b": 2}],  # a lone surrogate
    [{"a": "x", "b": ["p", 1]}, {"a": "y", "b": []}],  # a list not of strings
    [{"a": "x", "b": 1}, ["a", "b"]],  # not a dict
    [{"a": "x", "index": 1}, {"a": "y", "index": 2}],  # a slot set
    [{"a": None, "b": None}, {"a": None, "b": None}],  # nothing to put in
])
def test_other_batches_are_left_to_the_record_by_record_path(records):
    assert entries_parts(records) is None


class _Text(str):
    """A str subclass: written as its text, as the reference encoder writes it."""

    def __str__(self) -> str:
        return "not this"


def test_a_str_subclass_in_a_string_column_is_written_as_its_text():
    records = [{"a": "x", "b": 1}, {"a": _Text("y"), "b": 2}] * 10
    got = entries_parts(records)
    assert got == _each(records)
    assert b'"a":"y"' in got[1][0]


def test_the_same_keys_in_another_order_are_one_shape():
    records = [{"a": "x", "b": 1}, {"b": 2, "a": "y"}] * 10
    assert entries_parts(records) == _each(records)
    assert entries_parts(records)[1] == (b'{"a":"y","b":2,"index":', b',"prev":"', b'"}')


def test_the_first_bad_record_of_a_batch_is_named(tmp_path):
    with Ledger.open_dir(tmp_path, origin="batch.example/log") as led:
        with pytest.raises(LedgerError, match=r"^record 2: .*float"):
            led.append([{"a": "x", "b": 1}, {"a": "y", "b": 2}, {"a": "z", "b": 1.5}, {"a": "w", "b": 2.5}])
        assert led.size() == 0
        receipts = led.append([{"a": "x", "b": i} for i in range(5)])
        prev = ""
        for i, r in enumerate(receipts):
            assert led.entries(i, i + 1) == [canonical.dumps({"a": "x", "b": i, "index": i, "prev": prev})]
            prev = b64.encode(r.leaf_hash)
