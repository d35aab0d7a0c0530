"""Accepting the common canonical entry without parsing it (docs/protocol.md §4).

Verifying a bundle checks that every entry line is canonical JSON
(``canonical.parse``) carrying its own ``index`` and ``prev``; parsing is most
of that cost. The entries of one log share a shape: the same sorted keys,
each holding the same kind of value. ``Shapes`` learns a shape from an entry
the full check accepted and compiles it to a byte pattern, e.g.::

    {"index":(0|[1-9][0-9]{0,15}),"kind":"[^"]*","prev":"([^"]*)",...}

A line that matches a learned pattern, holds no control character or
backslash, and is valid UTF-8 is canonical JSON whose ``index`` and ``prev``
are the pattern's two groups. The argument: the keys are written in the
pattern, strictly sorted and each once; a string with no backslash, control
character or ``"`` is its own canonical encoding (RFC 8259 §7 needs no
escape there, and the canonical form adds none); integers are admitted only
as ``0`` or ``-?[1-9][0-9]*`` (no ``-0``, no leading zero, at most 16
digits, which the parser reads exactly); ``true``, ``false``, ``null`` have
one spelling; and there is no white space. So the line is exactly the
canonical encoding of the value it holds.

A line that matches no pattern is not thereby wrong: the caller falls back
to the full check, which either explains the problem or accepts the line
(and its shape is learned). ``match`` never rejects; it only accepts.
"""

from __future__ import annotations

import re

MAX_SHAPES = 8  # a log has a handful of entry kinds; past that, the full check does the rest
# Compiling a pattern costs some 40 full checks: a hostile input of ever-new
# shapes must not make learning the bulk of the work, so each Shapes learns
# at most this many (use one per block of work).
MAX_LEARNED = 16

_UNSAFE = bytes(range(0x20)) + b"\\"  # bytes that leave the fast path: escapes and control characters
_STR = rb'"[^"]*"'  # with no backslash or control character, any such string is canonical
_INT = rb"(?:0|-?[1-9][0-9]{0,15})"
_SCALAR = rb"(?:" + _STR + rb"|" + _INT + rb"|true|false|null)"
_LIST = rb"\[(?:" + _SCALAR + rb"(?:," + _SCALAR + rb")*)?\]"


class Shapes:
    """Byte patterns of entry shapes seen, most recently matched first."""

    __slots__ = ("_patterns", "_budget")

    def __init__(self) -> None:
        self._patterns: list = []  # compiled fullmatch methods
        self._budget = MAX_LEARNED

    def match(self, data: bytes) -> tuple[bytes, bytes] | None:
        """(index digits, prev text) when ``data`` is a canonical entry of a
        learned shape; None when unsure (not when wrong: see the module)."""
        if len(data.translate(None, _UNSAFE)) != len(data):
            return None
        if not data.isascii():
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                return None
        patterns = self._patterns
        for i, fullmatch in enumerate(patterns):
            m = fullmatch(data)
            if m is not None:
                if i:  # keep the likeliest first
                    patterns.insert(0, patterns.pop(i))
                return m.groups()
        return None

    def learn(self, value) -> None:
        """Add the shape of ``value``, an entry the full check accepted, if it has one."""
        pattern = shape_pattern(value) if self._budget > 0 else None
        if pattern is None or any(p.__self__.pattern == pattern for p in self._patterns):
            return
        self._budget -= 1
        self._patterns.insert(0, re.compile(pattern).fullmatch)
        del self._patterns[MAX_SHAPES:]


def shape_pattern(value) -> bytes | None:
    """The byte pattern of ``value``'s shape, or None when it has none the
    fast path handles (not a flat object with an integer ``index`` and a
    string ``prev``, or a key that would need escaping)."""
    if type(value) is not dict or type(value.get("index")) is not int or type(value.get("prev")) is not str:
        return None
    keys = list(value)
    if keys != sorted(set(keys)):
        return None
    parts = []
    for key in keys:
        raw = key.encode("utf-8")
        if '"' in key or len(raw.translate(None, _UNSAFE)) != len(raw):
            return None
        item = value[key]
        if key == "index":
            part = rb"(0|[1-9][0-9]{0,15})"
        elif key == "prev":
            part = rb'"([^"]*)"'
        else:
            part = _value_pattern(item)
            if part is None:
                return None
        parts.append(re.escape(b'"' + raw + b'":') + part)
    return rb"\{" + b",".join(parts) + rb"\}"


def _value_pattern(item) -> bytes | None:
    t = type(item)
    if t is str:
        return _STR
    if t is int:
        return _INT
    if t is bool or item is None:
        return rb"(?:true|false|null)"
    if t is list and all(type(x) in (str, int, bool) or x is None for x in item):
        return _LIST
    return None  # nested objects and lists of containers: the full check
