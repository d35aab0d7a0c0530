"""Canonical JSON for ledger entries (docs/protocol.md §4).

An entry is one line of canonical JSON and its exact bytes are the Merkle leaf
data, so there must be exactly one byte string for each value:

* UTF-8, no byte-order mark; non-ASCII characters written as themselves;
* object keys sorted by Unicode code point, each key a string, no duplicates;
* no insignificant white space: separators ``,`` and ``:``;
* strings escape only ``"``, ``\\`` and control characters (``\\n``, ``\\r``,
  ``\\t``, ``\\b``, ``\\f``, else ``\\u00xx`` in lower-case hex), exactly as
  Python's ``json`` module writes them with ``ensure_ascii=False``;
* numbers are integers within the I-JSON safe range ±(2**53 − 1)
  (RFC 7493 §2.2), so every JSON implementation reads them exactly; no floats,
  no NaN or Infinity (RFC 8259 §6 has no such values);
* values are objects, arrays, strings, integers, ``true``, ``false``, ``null``.

This is RFC 8785 (JCS) restricted to integers, except that JCS orders keys by
UTF-16 code units: the two orders differ only for keys that mix characters
above U+FFFF with ones in U+E000..U+FFFF.

``parse`` is the strict inverse: it accepts a byte string only when it is
exactly the canonical encoding of the value it holds (it decodes, re-encodes
and compares, which also catches duplicate keys, white space, key order and
needless escapes).
"""

from __future__ import annotations

import json
from json.encoder import c_make_encoder, encode_basestring

MAX_SAFE_INT = 2**53 - 1
MAX_DEPTH = 64  # entries are shallow; a deep value is a mistake, not data


class CanonicalError(ValueError):
    """A value that has no canonical encoding, or bytes that are not one."""


def _no_float(text: str):
    raise CanonicalError(f"floats are not allowed in ledger entries: {text}")


def _no_constant(text: str):
    raise CanonicalError(f"{text} is not allowed in ledger entries")


# Built once: json.JSONEncoder.encode would rebuild its C encoder per call.
if c_make_encoder is not None:  # CPython always has it
    _encode_chunks = c_make_encoder(None, None, encode_basestring, None, ":", ",", True, False, False)

    def _encode_str(value) -> str:
        return "".join(_encode_chunks(value, 0))

else:  # pragma: no cover - pure-Python json
    _encode_str = json.JSONEncoder(
        ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    ).encode

_scan = json.JSONDecoder(parse_float=_no_float, parse_constant=_no_constant).scan_once


def _check(value, path: str, depth: int) -> None:
    """Refuse anything without a canonical encoding; ``path`` names the spot.

    Written for speed (appends run it on every record): exact type tests
    first, ``isascii`` (O(1) in CPython) before the surrogate check, and the
    path string is only built on the way into a container.
    """
    t = type(value)
    if t is dict:
        if depth >= MAX_DEPTH:
            raise CanonicalError(f"{path}: nested deeper than {MAX_DEPTH}")
        for key, item in value.items():
            if type(key) is not str:
                if not isinstance(key, str):
                    raise CanonicalError(f"{path}: object keys must be strings (got {type(key).__name__} {key!r})")
            if not key.isascii():
                _check_str(key, path)
            t = type(item)  # the common flat cases inline: no call per value
            if t is str:
                if not item.isascii():
                    _check_str(item, _join(path, key))
            elif t is int:
                if not -MAX_SAFE_INT <= item <= MAX_SAFE_INT:
                    raise CanonicalError(f"{_join(path, key)}: integer {item} is outside ±(2**53 - 1)")
            elif t is list and depth + 1 < MAX_DEPTH:  # a list of ASCII strings inline too
                for i, x in enumerate(item):
                    if type(x) is not str or not x.isascii():
                        _check_scalar_or(x, _join(path, key), i, depth + 1)
            elif item is not None and t is not bool:
                _check_scalar_or(item, path, key, depth)
    elif t is list or t is tuple:
        if depth >= MAX_DEPTH:
            raise CanonicalError(f"{path}: nested deeper than {MAX_DEPTH}")
        for i, item in enumerate(value):
            _check_scalar_or(item, path, i, depth)
    else:
        _check_scalar_or(value, path, None, depth - 1)


def _check_scalar_or(value, path: str, at, depth: int) -> None:
    t = type(value)
    if t is str:
        if not value.isascii():
            _check_str(value, _join(path, at))
    elif t is int:
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            raise CanonicalError(f"{_join(path, at)}: integer {value} is outside ±(2**53 - 1)")
    elif value is None or t is bool:
        pass
    elif t is dict or t is list or t is tuple:
        _check(value, _join(path, at), depth + 1)
    elif isinstance(value, float):
        raise CanonicalError(f"{_join(path, at)}: floats are not allowed (got {value!r}); use an integer or a string")
    elif isinstance(value, (str, int)):  # subclasses (enums and the like): judge the plain value
        _check_scalar_or(str(value) if isinstance(value, str) else int(value), path, at, depth)
    elif isinstance(value, (dict, list, tuple)):
        _check(value, _join(path, at), depth + 1)
    else:
        raise CanonicalError(f"{_join(path, at)}: {type(value).__name__} is not a JSON value")


def _join(path: str, at) -> str:
    if at is None:
        return path
    return f"{path}[{at}]" if isinstance(at, int) else f"{path}.{at}"


def _check_str(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalError(f"{path}: string is not valid Unicode (lone surrogate)") from exc


def check(value) -> None:
    """Raise CanonicalError, naming the place, unless ``value`` has a canonical encoding."""
    _check(value, "$", 0)


def encode(value) -> bytes:
    """The canonical encoding of a ``value`` already passed by ``check``."""
    return _encode_str(value).encode("utf-8")


def dumps(value) -> bytes:
    """The canonical encoding of ``value``; CanonicalError if it has none."""
    _check(value, "$", 0)
    return encode(value)


def parse(data: bytes):
    """The value whose canonical encoding is exactly ``data``.

    Raises CanonicalError when ``data`` is not valid JSON, holds a float or a
    non-finite number, or is valid JSON written in any other than the
    canonical form. (The integer range is enforced when writing, by
    ``dumps``; a hash check, not this parser, is what catches tampering.)

    Verifiers call this once per entry, so the common case is inline and
    cheap: text without a backslash is judged without re-encoding (the
    argument is below); anything else is re-encoded and compared. Failures
    are re-examined by ``_refuse`` for a precise message.

    Without a backslash every ``"`` delimits a string and no string holds an
    escape, so each string token is already canonical (the parser refuses raw
    control characters) and the even pieces of ``text.split('"')`` are all the
    text outside strings. The parser admits integers only as
    ``-?(0|[1-9][0-9]*)`` (floats are refused), canonical except ``-0``; and
    ``true``, ``false``, ``null`` have one spelling. So the text is canonical
    exactly when, outside strings, there is no white space and no ``-0``, and
    every object's keys are strictly increasing: the parsed dicts keep text
    order, so their keys must be sorted, and their count must equal the
    number of ``:`` outside strings (one per key), so that none was a
    duplicate collapsed by the parser.
    """
    try:
        text = data.decode("utf-8")
        value, end = _scan(text, 0)
    except Exception:  # noqa: BLE001 - any failure is re-examined for its message
        return _parse_slowly(data)
    if end == len(text):
        if "\\" not in text:
            outside = "".join(text.split('"')[::2])
            if not (" " in outside or "-0" in outside or "\n" in outside or "\r" in outside or "\t" in outside):
                objects = outside.count("{")
                if objects == 1 and type(value) is dict:  # one flat object: the usual entry
                    keys = list(value)
                    if (keys == _last_keys[0] or keys == sorted(keys)) and len(keys) == outside.count(":"):
                        _last_keys[0] = keys  # entries of a log share their keys: no sort next time
                        return value
                elif not objects or _keys_in_order(value) == outside.count(":"):
                    return value
        elif _encode_str(value) == text:
            return value
    return _parse_slowly(data)


_last_keys: list[list[str] | None] = [None]  # the keys of an object last found sorted


def _parse_slowly(data: bytes):
    """``parse`` by decoding, re-encoding and comparing: the reference the
    fast path must agree with, and the source of precise error messages."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CanonicalError(f"not UTF-8 at byte {exc.start}") from None
    try:
        value, end = _scan(text, 0)
    except StopIteration as exc:
        raise CanonicalError(f"not JSON at character {exc.value}") from None
    except CanonicalError:
        raise
    except json.JSONDecodeError as exc:
        raise CanonicalError(f"not JSON: {exc.msg} at character {exc.pos}") from None
    except ValueError as exc:  # an integer too long to convert
        raise CanonicalError(f"not JSON: {exc}") from None
    except RecursionError:
        raise CanonicalError("nested too deeply") from None
    if end != len(text):
        raise CanonicalError(f"trailing data at character {end}")
    try:
        again = _encode_str(value)
    except (ValueError, TypeError, RecursionError) as exc:
        raise CanonicalError(f"no canonical form: {exc}") from None
    if again == text:
        return value
    raise CanonicalError(f"not in canonical form (first difference at character {_diff_at(again, text)})")


def _keys_in_order(value, depth: int = 0) -> int:
    """The number of keys in all objects within ``value``; -1 if one object's
    keys are not in sorted order or objects are nested deeper than MAX_DEPTH
    (left to ``_parse_slowly``)."""
    if depth > MAX_DEPTH:
        return -1
    count = 0
    t = type(value)
    if t is dict:
        keys = list(value)
        if keys != sorted(keys):
            return -1
        count = len(keys)
        items = value.values()
    elif t is list:
        items = value
    else:
        return 0
    for item in items:
        t = type(item)
        if t is dict or t is list:
            n = _keys_in_order(item, depth + 1)
            if n < 0:
                return -1
            count += n
    return count


def _diff_at(a: str, b: str) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))
