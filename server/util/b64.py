"""Base64 (RFC 4648): the standard alphabet with padding (§4) for hashes,
signatures and DSSE payloads; the URL-safe alphabet without padding (§5)
for the ``data-labelcheck-claim`` attribute."""

from __future__ import annotations

import base64
import binascii


def encode(data: bytes) -> str:
    """Standard base64 with padding (RFC 4648 §4)."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def decode_strict(text: str) -> bytes:
    """Standard base64 in its one canonical form: padding required, no white
    space, zero pad bits (so one byte string has exactly one text).
    Raises ValueError otherwise."""
    try:
        raw = text.encode("ascii")
        data = binascii.a2b_base64(raw, strict_mode=True)
    except (UnicodeEncodeError, binascii.Error, AttributeError):
        raise ValueError("not standard base64 (RFC 4648 §4, with padding)") from None
    if binascii.b2a_base64(data, newline=False) != raw:
        raise ValueError("not canonical standard base64")
    return data


def decode(text: str) -> bytes:
    """Standard base64, padding required, other characters refused
    (RFC 4648 §3.3); non-canonical pad bits are tolerated. Raises ValueError."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, AttributeError):
        raise ValueError("not standard base64") from None


def urlsafe_encode(data: bytes) -> str:
    """URL-safe base64 without padding (RFC 4648 §5, §3.2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def urlsafe_decode(text: str) -> bytes:
    """URL-safe base64, padding optional; other characters refused.
    Raises ValueError."""
    try:
        raw = text.encode("ascii")
    except (UnicodeEncodeError, AttributeError):
        raise ValueError("not URL-safe base64") from None
    if not raw or raw.rstrip(b"=").strip(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"):
        raise ValueError("not URL-safe base64")
    try:
        return base64.urlsafe_b64decode(raw.rstrip(b"=") + b"=" * (-len(raw.rstrip(b"=")) % 4))
    except binascii.Error:
        raise ValueError("not URL-safe base64") from None
