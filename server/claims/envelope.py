"""DSSE v1 envelopes of label claims (docs/protocol.md §2).

The envelope (https://github.com/secure-systems-lab/dsse, envelope.md)::

    {"payloadType": PAYLOAD_TYPE, "payload": b64(body),
     "signatures": [{"keyid": "name+hash8hex", "sig": b64(Ed25519(PAE))}]}

Stricter than DSSE: only standard base64 in its canonical form (RFC 4648
§4), duplicate JSON keys refused, a 64 KiB cap, key ids required and each
signing once. Also the ``data-labelcheck-claim`` attribute form: base64url
of the compact envelope JSON (RFC 4648 §5; docs/protocol.md §2, place 1).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, NamedTuple

from labelcheck.claims.errors import ClaimError, kind, malformed, show
from labelcheck.claims.strictjson import dumps_compact, loads_strict
from labelcheck.util import b64
from labelcheck.util.text import is_unicode

PAYLOAD_TYPE = "application/vnd.labelcheck.claim+json"
MAX_ENVELOPE_BYTES = 64 * 1024
MAX_SIGNATURES = 100
KEY_ID = re.compile(r"[^\s+]{1,200}\+[0-9a-f]{8}")
_DATA_ATTRIBUTE = re.compile(r"[A-Za-z0-9_-]*={0,2}")


class Envelope(NamedTuple):
    """A decoded envelope whose structure is valid; signatures not yet checked."""

    payload_type: str
    payload: bytes
    signatures: tuple[tuple[str, bytes], ...]  # (keyid, 64-byte signature)
    keyids: tuple[str, ...]


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 Pre-Authentication Encoding (DSSE protocol.md).

    ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``, lengths as ASCII
    decimal byte counts of the UTF-8 type and the raw body.
    """
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def decode_base64(text: Any, field: str) -> bytes:
    """Standard base64 (RFC 4648 §4) with padding, in canonical form only.

    Raises ClaimError (``malformed``/``not_base64``) naming ``field``.
    """
    if not isinstance(text, str):
        raise malformed(field, f"must be a base64 string, got {kind(text)}", "not_base64")
    try:
        return b64.decode_strict(text)
    except ValueError as exc:
        raise malformed(field, f"is {exc}", "not_base64") from None


def envelope_size(data: Any) -> int | None:
    """The envelope's size in bytes as written; None when it cannot be told."""
    if isinstance(data, bytes):
        return len(data)
    if isinstance(data, str):
        return len(data) if len(data) > MAX_ENVELOPE_BYTES * 4 else len(data.encode("utf-8", "surrogatepass"))
    if isinstance(data, dict):
        try:
            return len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))
        except (TypeError, ValueError, RecursionError):
            return None
    return None


def size_bound(value: Any, depth: int = 0) -> int | None:
    """An upper bound on the compact JSON size of ``value`` in bytes, from its
    strings' lengths alone (no encoding); None when its shape is not plain
    JSON text (numbers, deep nesting), where only writing it out can tell.

    Each character takes at most 6 bytes as written (a ``\\uXXXX`` escape;
    UTF-8 needs at most 4), so a string of n characters takes at most 6n + 2.
    """
    kind_ = type(value)
    if kind_ is str:
        return 6 * len(value) + 2
    if value is None or kind_ is bool:
        return 5
    if depth >= 4:
        return None
    if kind_ is dict:
        total = 2 + len(value)  # braces, and a comma or less per member (colons are counted with keys)
        for key, member in value.items():
            if type(key) is not str:
                return None
            # Strings, most members, without a call.
            inner = 6 * len(member) + 2 if type(member) is str else size_bound(member, depth + 1)
            if inner is None:
                return None
            total += 6 * len(key) + 3 + inner
        return total
    if kind_ is list:
        total = 2 + len(value)
        for member in value:
            inner = 6 * len(member) + 2 if type(member) is str else size_bound(member, depth + 1)
            if inner is None:
                return None
            total += inner
        return total
    return None


def decode_envelope(data: Any) -> Envelope:
    """Check the DSSE envelope's structure and decode it; raises ClaimError."""
    if type(data) is bytes:
        size = len(data)
    elif type(data) is dict and (bound := size_bound(data)) is not None and bound <= MAX_ENVELOPE_BYTES:
        size = None  # within the cap, however it is written: no need to write it out
    else:
        size = envelope_size(data)
    if size is not None and size > MAX_ENVELOPE_BYTES:
        raise ClaimError(
            "oversized", f"envelope is {size} bytes, over the {MAX_ENVELOPE_BYTES}-byte limit"
        )
    if isinstance(data, (bytes, str)):
        data = loads_strict(data, "envelope")
    elif not isinstance(data, dict):
        raise malformed(None, f"envelope must be JSON text or an object, got {kind(data)}")
    if not isinstance(data, dict):
        raise malformed(None, f"envelope must be a JSON object, got {kind(data)}")
    ptype = data.get("payloadType")
    if ptype != PAYLOAD_TYPE:
        raise malformed(
            "payloadType", f"must be {PAYLOAD_TYPE!r}, got {show(ptype)}", "payload_type_invalid"
        )
    if "payload" not in data:
        raise malformed("payload", "is missing")
    payload = decode_base64(data["payload"], "payload")
    signatures, keyids = _decode_signatures(data.get("signatures"))
    return Envelope(ptype, payload, signatures, keyids)


def _decode_signatures(sigs: Any) -> tuple[tuple[tuple[str, bytes], ...], tuple[str, ...]]:
    """The ``(keyid, signature)`` pairs, and the key ids alone."""
    if not isinstance(sigs, list) or not sigs:
        raise malformed("signatures", "must be a non-empty list")
    if len(sigs) > MAX_SIGNATURES:
        raise malformed("signatures", f"has more than {MAX_SIGNATURES} entries")
    out: list[tuple[str, bytes]] = []
    seen: dict[str, None] = {}  # the key ids in order
    for i, entry in enumerate(sigs):
        if type(entry) is not dict:
            raise malformed(f"signatures[{i}]", f"must be an object, got {kind(entry)}")
        keyid = entry.get("keyid")
        if type(keyid) is not str or KEY_ID.fullmatch(keyid) is None or not is_unicode(keyid):
            raise malformed(f"signatures[{i}].keyid", f"must be a key id 'name+hash8hex', got {show(keyid)}")
        if keyid in seen:
            raise malformed(f"signatures[{i}].keyid", f"{keyid} signs more than once")
        seen[keyid] = None
        sig = decode_base64(entry.get("sig"), "signatures[%d].sig" % i)
        if len(sig) != 64:
            raise malformed(f"signatures[{i}].sig", f"must be a 64-byte Ed25519 signature, got {len(sig)} bytes")
        out.append((keyid, sig))
    return tuple(out), tuple(seen)


def claim_digest(data: bytes | str | dict) -> str:
    """SHA-256 hex of the envelope's payload bytes: the claim's stable id.

    Independent of signature order and of countersignatures added later.
    Raises :class:`ClaimError` when the envelope cannot be decoded.
    """
    return hashlib.sha256(decode_envelope(data).payload).hexdigest()


def to_data_attribute(envelope: dict[str, Any]) -> str:
    """base64url (no padding) of the compact envelope JSON (docs/protocol.md §2, place 1)."""
    return b64.urlsafe_encode(dumps_compact(envelope))


def from_data_attribute(value: str) -> bytes:
    """The envelope JSON bytes of a ``data-labelcheck-claim`` value (padding optional).

    An empty value gives no bytes (which the claim check calls malformed).
    Raises :class:`ClaimError` (``malformed``/``not_base64``, or ``oversized``).
    """
    if not isinstance(value, str):
        raise malformed("data-labelcheck-claim", f"must be a string, got {kind(value)}")
    text = value.strip()
    if len(text) > MAX_ENVELOPE_BYTES * 2:
        raise ClaimError("oversized", "data-labelcheck-claim value is far over the size limit")
    if not _DATA_ATTRIBUTE.fullmatch(text):
        raise malformed("data-labelcheck-claim", "is not base64url", "not_base64")
    if not text.rstrip("="):
        return b""
    try:
        return b64.urlsafe_decode(text)
    except ValueError:
        raise malformed("data-labelcheck-claim", "is not base64url", "not_base64") from None

