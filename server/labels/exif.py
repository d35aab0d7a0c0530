"""EXIF (TIFF structure, CIPA DC-008): the UserComment tag holding a GB 45438 label.

Only IFD0 and the Exif IFD it points to are walked, every offset checked
against the blob, so a hostile EXIF block costs at most one pass over it.
"""

from __future__ import annotations

import json
import struct

from . import aigc
from .signals import Malformed, Signal
from .xmp import label_signal

SOURCE = "gb45438_exif"
EXIF_IFD_POINTER = 0x8769
USER_COMMENT = 0x9286
MAX_ENTRIES = 1024
TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}


def user_comment_span(blob: bytes) -> tuple[int, int, str] | None:
    """``(offset, length, byte_order)`` of UserComment's value within ``blob``."""
    base = 6 if blob.startswith(b"Exif\x00\x00") else 0
    t = blob[base:]
    if t[:4] == b"II*\x00":
        bo = "<"
    elif t[:4] == b"MM\x00*":
        bo = ">"
    else:
        raise Malformed(SOURCE, "exif_invalid", "EXIF block has no TIFF header")
    if len(t) < 8:
        raise Malformed(SOURCE, "truncated", "EXIF TIFF header is truncated")

    def entries(offset: int):
        if offset + 2 > len(t):
            raise Malformed(SOURCE, "truncated", "EXIF IFD offset is past the end")
        (count,) = struct.unpack_from(bo + "H", t, offset)
        if count > MAX_ENTRIES or offset + 2 + 12 * count > len(t):
            raise Malformed(SOURCE, "bad_length", f"EXIF IFD claims {count} entries")
        for i in range(count):
            yield struct.unpack_from(bo + "HHII", t, offset + 2 + 12 * i), offset + 2 + 12 * i

    (ifd0,) = struct.unpack_from(bo + "I", t, 4)
    exif_ifd = None
    for (tag, _typ, _count, value), _pos in entries(ifd0):
        if tag == EXIF_IFD_POINTER:
            exif_ifd = value
    if exif_ifd is None:
        return None
    for (tag, typ, count, value), pos in entries(exif_ifd):
        if tag != USER_COMMENT:
            continue
        size = TYPE_SIZES.get(typ, 1) * count
        start = pos + 8 if size <= 4 else value
        if start + size > len(t):
            raise Malformed(SOURCE, "truncated", "EXIF UserComment runs past the end")
        return base + start, size, bo
    return None


def decode_comment(raw: bytes, byte_order: str) -> str:
    """UserComment text: an 8-byte character-code header, then the text."""
    code, text = raw[:8], raw[8:]
    if code.startswith(b"UNICODE"):
        if text[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return text.decode("utf-16", "replace")
        return text.decode("utf-16-le" if byte_order == "<" else "utf-16-be", "replace")
    # ASCII, undefined and JIS headers: writers commonly put UTF-8 here.
    return text.decode("utf-8", "replace")


def _looks_like_label(text: str) -> bool:
    """A GB 45438 label: the ``{"AIGC": {...}}`` wrapper, or the bare object
    (a JSON object with ``Label`` and ``ContentProducer`` or ``ProduceID``),
    as the page meta tag accepts. Other comments are not labels."""
    text = text.strip().strip("\x00").strip()
    if not text.startswith("{"):
        return False
    if "AIGC" in text:
        return True
    if '"Label"' not in text or len(text) > aigc.MAX_JSON:
        return False
    try:
        obj = json.loads(text)
    except ValueError:
        return False
    return isinstance(obj, dict) and "Label" in obj and ("ContentProducer" in obj or "ProduceID" in obj)


def signals(blob: bytes, container: str) -> list[Signal]:
    """A GB 45438 signal when UserComment holds a label (either form)."""
    span = user_comment_span(blob)
    if span is None:
        return []
    offset, length, bo = span
    text = decode_comment(blob[offset : offset + length], bo)
    if not _looks_like_label(text):
        return []
    return [label_signal(SOURCE, text.strip().strip("\x00"), container=container)]


def blank_label(blob: bytes) -> bytes:
    """``blob`` with an AIGC UserComment overwritten by spaces, same length.

    Used before writing a new label, so a file never carries two labels
    that may disagree; the TIFF structure is untouched. Raises Malformed when
    the EXIF block is too damaged to tell whether it holds a label.
    """
    span = user_comment_span(blob)
    if span is None:
        return blob
    offset, length, bo = span
    if length < 8 or not _looks_like_label(decode_comment(blob[offset : offset + length], bo)):
        return blob
    blank = b"ASCII\x00\x00\x00" + b" " * (length - 8)
    return blob[:offset] + blank + blob[offset + length :]

