"""A batch of records' canonical entry parts at once (docs/protocol.md §4):
``entry_encode.entry_parts`` for a whole append, in C calls per batch
rather than per record.

An append's records mostly share one shape (the same keys in the same
order) and one kind (the same value types): then the values are taken by
one getter over all records, the strings of all of them are tested for
escapes at once, each non-string column is written in one pass (integers
range-checked by their minimum and maximum), and all the entries' text is
made by one join of the kind's template repeated, then cut at its NULs.

``entries_parts(records)`` is ``[entry_parts(r) for r in records]`` or
None: it answers only where every record takes ``entry_parts``'s fast path
in the same way, and leaves anything else (another shape, another kind, a
string needing an escape, an out-of-range integer, a lone surrogate, a
non-dict) to the caller's record-by-record path, which then judges each
record alone and names the first bad one.
"""

from __future__ import annotations

from itertools import chain

from .entry_encode import MAX_SAFE_INT, _flat, _kind, _Other, _shape, _shapes

# Below this many records the per-batch setup costs more than it saves
# (measured on the benchmark's verification records: one record 9.0 µs at
# once against 3.7 by entry_parts, three 12.1 against 10.7, four 13.4
# against 14.3, ten 22.4 against 35.4): ``batch_parts`` leaves smaller
# appends to the record-by-record path.
BATCH_MIN = 4

_BOOL = {True: "true", False: "false"}.__getitem__
_ESCAPED = bytes(range(32)) + b'"\\'  # what encode_basestring escapes (UTF-8 puts no other character below 0x80 here)


def _plain(text: str) -> bool:
    """Whether no character of ``text`` needs an escape in JSON (a lone
    surrogate raises UnicodeEncodeError): one C pass deleting those bytes."""
    data = text.encode("utf-8")
    return len(data.translate(None, _ESCAPED)) == len(data)


def batch_parts(records: list) -> list[tuple[bytes, bytes, bytes]] | None:
    """``entries_parts`` for an append of at least ``BATCH_MIN`` records (where
    it gains), else None: the callers' record-by-record path."""
    return entries_parts(records) if len(records) >= BATCH_MIN else None


def entries_parts(records: list) -> list[tuple[bytes, bytes, bytes]] | None:
    """``[entry_parts(r) for r in records]`` when every record is a dict of
    one shape and kind with no string needing an escape; None otherwise."""
    if not records or set(map(type, records)) != {dict} or len(set(map(len, records))) != 1:
        return None
    try:
        first = records[0]
        shape = _shapes.get("\0".join(first)) or _shape(first)  # TypeError: a key that is not a string
        if shape is None:
            return None
        get, kinds, _ = shape
        # By column: the values in sorted key order. As many keys as the
        # first record's and each of them (else KeyError): the same keys.
        columns = list(zip(*map(get, records)))
        # A column whose first value is a string is not tested here: the
        # join of all the strings in _encode refuses anything else
        # (TypeError), and writes a str subclass as its text, as the
        # reference encoder does.
        types = tuple(str if type(column[0]) is str else _one_type(column) for column in columns)
        kind = kinds.get(types) or _kind(shape, types)
        if kind is None:
            return None
        return _encode(kind, columns, len(records))
    except (_Other, ValueError, TypeError, KeyError):  # ValueError: a lone surrogate (UnicodeEncodeError)
        return None


def _one_type(column: tuple) -> type:
    """The one type of every value in ``column``; TypeError when they differ."""
    types = set(map(type, column))
    if len(types) != 1:
        raise TypeError("values of more than one type")
    return types.pop()


def _encode(kind: tuple, columns: list[tuple], count: int) -> list[tuple[bytes, bytes, bytes]] | None:
    """The parts of ``count`` records of one ``kind`` (``entry_encode._kind``)
    from their values by column (the kind's getters take columns as they take one record's values)."""
    _, _, template, args_of, strings_of, fixes = kind
    if len(template) < 3:  # no value to put in (all null): the record-by-record path
        return None
    if not _plain("".join(chain.from_iterable(strings_of(columns)))):  # a string needs an escape
        return None
    args = list(args_of(columns))  # the columns that fill the template's holes, in order
    for i, t in fixes:
        column = _column(t, args[i])
        if column is None:
            return None
        args[i] = column
    # The template once per record, the records separated by a NUL: the
    # holes stay at the odd places, and each record's text holds two NULs (its slots).
    unit = template[1:-1] + [template[-1] + "\0" + template[0]]
    out = [template[0]] + unit * (count - 1) + template[1:]
    out[1::2] = list(chain.from_iterable(zip(*args)))
    parts = "".join(out).encode("utf-8").split(b"\0")
    return list(zip(parts[0::3], parts[1::3], parts[2::3]))


def _column(t: type, column: tuple) -> list[str] | None:
    """The text of a column of non-string values of type ``t``, or None to
    leave the batch to the record-by-record path."""
    if t is int:
        if -MAX_SAFE_INT <= min(column) and max(column) <= MAX_SAFE_INT:
            return list(map(int.__repr__, column))
        return None
    if t is bool:
        return list(map(_BOOL, column))
    if t is list:  # of strings without escapes (the join refuses anything but strings)
        if not _plain("".join(chain.from_iterable(column))):
            return None
        return ['["' + '","'.join(v) + '"]' if v else "[]" for v in column]
    if t is dict:
        return list(map(_flat, column))  # _Other: not of strings and nulls
    return None
