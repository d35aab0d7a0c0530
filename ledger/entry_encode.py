"""A record's canonical entry bytes, checked and encoded in one pass
(docs/protocol.md §4): the append path's encoder.

An entry is the record with ``"index"`` and ``"prev"`` added, in canonical
JSON (``canonical``). Appends check every record before its commit (a bad one
must fail alone, not the commit it would share) and encode it inside; so the
check encodes too, leaving the two slots open: ``entry_parts`` returns
``(head, mid, tail)``, and the commit writes ``head + index + mid + prev +
tail``.

``canonical.dumps`` is the reference: for every record, ``entry_parts``
either gives the bytes ``dumps`` gives for the entry, or raises the error
``dumps`` raises for the record. It is fast only where it is sure: anything
it does not recognise goes to ``canonical.check`` and the reference encoder.
"""

from __future__ import annotations

from json.encoder import encode_basestring
from operator import call, itemgetter

from .canonical import MAX_SAFE_INT, CanonicalError, check, encode

SLOTS = ("index", "prev")  # the members the ledger adds to every record
_SHAPES_MAX, _KINDS_MAX = 64, 16  # records of a log come in a few shapes
_NONE = type(None)


def entry_parts(record: dict) -> tuple[bytes, bytes, bytes]:
    """``(head, mid, tail)`` with ``head + b"%d" % index + mid + prev + tail``
    the canonical encoding of ``record`` with ``"index": index`` and ``"prev":
    prev`` added, for any integer ``index`` and any ``prev`` in the base64
    alphabet (whose characters need no escape). CanonicalError, the very error
    ``canonical.dumps`` gives, unless ``record`` is a dict without those two
    keys and with a canonical encoding.

    Mostly C calls: records of one shape (the same keys in the same order)
    share their sorted keys, and their values are taken in that order in one
    call; records whose values have the same types share the text around
    them. When no string needs an escape (one test over all of them) the
    strings go between it as they are; else each value has its writer
    (``encode_basestring`` and the like) and a format string puts them in.
    Integers are range-checked; lists must hold strings only, and nested
    objects strings or nulls only (other values, and any doubt, go to the
    reference path). A lone surrogate in a
    key or a string is caught by the final UTF-8 encoding. The slots are cut
    at NUL characters, which canonical text never holds raw.
    """
    if type(record) is dict:
        try:
            # Shapes are found by their keys joined at NULs: the join refuses
            # keys that are not strings, and two key lists that join alike
            # but differ fail the getter (KeyError) unless they are the same set.
            shape = _shapes.get("\0".join(record)) or _shape(record)
            if shape is not None:
                get, kinds, _ = shape
                values = get(record)
                types = tuple(map(type, values))
                kind = kinds.get(types) or _kind(shape, types)
                if kind is not None:
                    text = _plain(kind, values)
                    if text is None:
                        text = kind[0] % tuple(map(call, kind[1], values))
                    head, mid, tail = text.encode("utf-8").split(b"\0")
                    return head, mid, tail
        except (_Other, ValueError, TypeError, KeyError):  # ValueError: a lone surrogate (UnicodeEncodeError)
            pass
    return _entry_parts_slowly(record)


def _plain(kind: tuple, values: tuple) -> str | None:
    """The entry text when no string needs an escape, else None."""
    _, _, template, args_of, strings_of, fixes = kind
    text = "".join(strings_of(values))
    if len(encode_basestring(text)) != len(text) + 2:
        return None
    args = args_of(values)
    if fixes:
        args = list(args)
        for i, t in fixes:
            v = args[i]
            if t is int:
                if not -MAX_SAFE_INT <= v <= MAX_SAFE_INT:
                    raise _Other
                args[i] = int.__repr__(v)
            elif t is bool:
                args[i] = "true" if v else "false"
            elif t is dict:
                args[i] = _flat(v)
            elif v:  # a list: of strings without escapes (join refuses anything but strings)
                inner = '","'.join(v)
                if len(encode_basestring(inner)) != len(inner) + 2 * len(v):
                    return None
                args[i] = '["' + inner + '"]'
            else:
                args[i] = "[]"
    out = template.copy()  # the text around the values, with a hole for each
    out[1::2] = args
    return "".join(out)


class _Other(Exception):
    """A value the inline writers leave to the reference path."""


def _int(v: int) -> str:
    if -MAX_SAFE_INT <= v <= MAX_SAFE_INT:
        return int.__repr__(v)
    raise _Other


def _strings(v: list) -> str:
    for x in v:
        if type(x) is not str:
            raise _Other
    return "[" + ",".join(map(encode_basestring, v)) + "]"


def _flat(v: dict) -> str:
    """A nested object of string keys and string or null values (the
    verification entry's ``content_sha256``), keys in code point order."""
    for k, x in v.items():
        if type(k) is not str or (type(x) is not str and x is not None):
            raise _Other
    return "{" + ",".join(encode_basestring(k) + ":" + ("null" if v[k] is None else encode_basestring(v[k]))
                          for k in sorted(v)) + "}"


_WRITERS = {str: encode_basestring, int: _int, list: _strings, dict: _flat, _NONE: lambda v: "null",
            bool: {True: "true", False: "false"}.__getitem__}
_shapes: dict[tuple, tuple] = {}


def _shape(record: dict) -> tuple | None:
    """(getter of the values in sorted key order, kinds by value types, the
    text around each value) for records with these keys; None for keys not
    plain strings, or fewer than two (the reference path takes those)."""
    keys = list(record)
    if len(keys) < 2 or any(type(k) is not str for k in keys) or any(s in record for s in SLOTS):
        return None
    around, text, sep, order = [], "", "{", []
    for key in sorted(keys + list(SLOTS)):
        text += sep + encode_basestring(key) + ":"
        sep = ","
        if key == "index":
            text += "\0"
        elif key == "prev":
            text += '"\0"'
        else:
            around.append(text)
            text = ""
            order.append(key)
    around.append(text + "}")
    shape = (itemgetter(*order), {}, around)
    if len(_shapes) >= _SHAPES_MAX:
        _shapes.clear()
    _shapes["\0".join(keys)] = shape
    return shape


def _kind(shape: tuple, types: tuple) -> tuple | None:
    """For records of ``shape`` whose values have ``types``: (format string
    for the writers, the writers, the text around the holes for ``_plain``,
    getters of what fills them and of the strings, which of those to check or
    write); None when a type has no writer."""
    _, kinds, around = shape
    writers = tuple(_WRITERS.get(t) for t in types)
    if None in writers:
        return None
    fmt = "%s".join(a.replace("%", "%%") for a in around)
    template, text, args, strings, fixes = [], around[0], [], [], []
    for i, t in enumerate(types):
        if t is _NONE:
            text += "null" + around[i + 1]
            continue
        if t is str:
            strings.append(i)
            template += [text + '"', None]
            text = '"' + around[i + 1]
        else:  # int (a range to check), bool, list and dict (to write)
            fixes.append((len(args), t))
            template += [text, None]
            text = around[i + 1]
        args.append(i)
    template.append(text)
    kind = (fmt, writers, template, _getter(args), _getter(strings), tuple(fixes))
    if len(kinds) >= _KINDS_MAX:
        kinds.clear()
    kinds[types] = kind
    return kind


def _getter(positions: list[int]):
    """A function of the values tuple giving those at ``positions``, as a tuple."""
    if len(positions) == 1:
        (i,) = positions
        return lambda values: (values[i],)
    return itemgetter(*positions) if positions else lambda values: ()


def _entry_parts_slowly(record) -> tuple[bytes, bytes, bytes]:
    """``entry_parts`` by ``check`` and the reference encoder, value by value."""
    if not isinstance(record, dict):
        raise CanonicalError(f"$: an entry is a JSON object, not {type(record).__name__}")
    taken = [s for s in SLOTS if s in record]
    if taken:
        raise CanonicalError(f"$: {', '.join(taken)} is set by the ledger")
    check(record)
    plain = {str.__str__(k): v for k, v in record.items()}  # str subclasses as their plain text
    out, parts, sep = [], [], "{"
    for key in sorted(list(plain) + list(SLOTS)):
        out.append(sep + encode_basestring(key) + ":")
        sep = ","
        if key in SLOTS:
            parts.append("".join(out) + ('"' if parts else ""))
            out = ['"'] if parts[1:] else []
        else:
            out.append(encode(plain[key]).decode("utf-8"))
    parts.append("".join(out) + "}")
    return tuple(p.encode("utf-8") for p in parts)
