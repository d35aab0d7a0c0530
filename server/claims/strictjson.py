"""JSON as claims read and write it (RFC 8259), stricter than :mod:`json`.

Reading refuses what RFC 8259 leaves open and an attacker could exploit:
duplicate object keys (§4: names SHOULD be unique; two readers could pick
different values), ``NaN``/``Infinity`` (not JSON), text that is not UTF-8
(§8.1) and escapes of lone UTF-16 surrogates (§8.2: not Unicode).

Claims are written compact (``dumps_compact``), and text that orjson writes
back byte for byte from what it read holds none of those: each object's
keys once (a duplicate would be missing from the rewrite), no constants, no
escapes of surrogates, UTF-8. So such text takes orjson's reading (about a
third of the cost); any other text, and any doubt, the strict reader.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from labelcheck.claims.errors import malformed, show

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):  # rare: only then find which key
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


# One decoder for all: json.loads(**kwargs) would build a new one per call.
_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)


_NO = object()
_MAX_BRACKETS = 256  # a claim has a handful


def _read_back(raw: bytes) -> Any:
    """orjson's reading of ``raw`` when orjson writes it back exactly as
    ``raw``; else ``_NO`` (let the strict reader decide and explain).
    Text with many brackets goes to the strict reader too: orjson nests up
    to 1024 levels, the standard library's reader about 990, and the two
    must refuse alike."""
    if raw.count(b"[") + raw.count(b"{") > _MAX_BRACKETS:
        return _NO
    try:
        value = orjson.loads(raw)
        return value if orjson.dumps(value) == raw else _NO
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):  # orjson has its own depth limit
        return _NO


def loads_strict(data: bytes | str, what: str) -> Any:
    """JSON (RFC 8259) as UTF-8, refusing duplicate keys, NaN/Infinity and lone surrogates.

    Raises :class:`~labelcheck.claims.errors.ClaimError` (``malformed``)
    naming ``what`` and why.
    """
    try:
        raw = data if isinstance(data, bytes) else data.encode("utf-8")
    except UnicodeError:
        raise malformed(what, "is not valid UTF-8", "not_json") from None
    fast = _read_back(raw)
    return fast if fast is not _NO else _loads_slowly(raw, what)


def _loads_slowly(raw: bytes, what: str) -> Any:
    """``loads_strict`` by the standard library's reader, with the checks."""
    try:
        text = raw.decode("utf-8")
    except UnicodeError:
        raise malformed(what, "is not valid UTF-8", "not_json") from None
    try:
        value = _DECODER.decode(text)
    except _DuplicateKey as exc:
        raise malformed(what, f"has a duplicate JSON key {show(exc.key)}", "duplicate_key") from None
    except RecursionError:
        raise malformed(what, "is nested too deeply", "not_json") from None
    except ValueError as exc:  # JSONDecodeError, huge integers, NaN
        raise malformed(what, f"is not valid JSON: {exc}", "not_json") from None
    if _SURROGATE_ESCAPE.search(raw):  # rare; only then pay for the full check
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise malformed(what, "holds an unpaired UTF-16 surrogate escape", "not_json") from None
    return value


def dumps_compact(value: Any) -> bytes:
    """Compact UTF-8 JSON, the form claims are written in."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
