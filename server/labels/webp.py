"""WebP (RIFF container, RFC 9649 §2.7): labels in the ``XMP `` and ``EXIF`` chunks.

Metadata needs the extended format: a ``VP8X`` chunk first, with the XMP flag
(bit 2 of the flags byte) set when an ``XMP `` chunk is present (RFC 9649
§2.7.1). A simple-format file (one ``VP8 ``/``VP8L`` chunk) gains a VP8X chunk
whose canvas size comes from the bitstream header. C2PA stores live in a
``C2PA`` chunk.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from . import exif, xmp
from ._io import read_bounded, read_exact, size_of
from .budget import Found
from .signals import Malformed

SOURCE = "gb45438_xmp"
MAX_CHUNKS = 1 << 16
MAX_META = xmp.MAX_XMP
XMP_FLAG = 0x04
ALPHA_FLAG = 0x10
IMAGE_CHUNKS = (b"VP8 ", b"VP8L", b"ALPH", b"ANIM", b"ANMF", b"ICCP")


def scan(fp: BinaryIO, found: Found) -> bool:
    """Append the labels in ``fp``'s chunks; True when a C2PA store is present."""
    budget = found.budget
    total = size_of(fp)
    fp.seek(0)
    head = read_exact(fp, 12, SOURCE, "WebP header")
    if head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        raise Malformed(SOURCE, "bad_signature", "not a WebP file")
    end = min(total, 8 + struct.unpack_from("<I", head, 4)[0])
    c2pa = False
    for _ in range(MAX_CHUNKS):
        if fp.tell() + 8 > end:
            return c2pa
        budget.tick(SOURCE)
        fourcc, size = struct.unpack("<4sI", read_exact(fp, 8, SOURCE, "WebP chunk header"))
        if fp.tell() + size > end:
            raise Malformed(SOURCE, "bad_length", f"WebP chunk {fourcc!r} runs past the end")
        if fourcc == b"C2PA":
            c2pa = True
        if fourcc not in (b"XMP ", b"EXIF"):
            fp.seek(size + (size & 1), 1)
            continue
        body = read_bounded(fp, size, MAX_META, SOURCE, f"WebP {fourcc.decode().strip()} chunk")
        budget.spend_bytes(size, SOURCE, f"WebP {fourcc.decode().strip()} chunk")
        fp.seek(size & 1, 1)
        if fourcc == b"XMP ":
            found.extend(xmp.signals(body, "webp", budget))
        else:
            try:
                found.extend(exif.signals(body, "webp"))
            except Malformed as exc:
                found.append(exc.signal())
    raise Malformed(SOURCE, "too_many_segments", "too many WebP chunks")


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """``[(fourcc, body)]`` of every chunk in a WebP file."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise Malformed(SOURCE, "bad_signature", "not a WebP file")
    end = 8 + struct.unpack_from("<I", data, 4)[0]
    if end > len(data):
        raise Malformed(SOURCE, "truncated", "WebP file is shorter than its RIFF size")
    pos, out = 12, []
    while pos + 8 <= end:
        fourcc, size = struct.unpack_from("<4sI", data, pos)
        if pos + 8 + size > end:
            raise Malformed(SOURCE, "bad_length", f"WebP chunk {fourcc!r} runs past the end")
        out.append((fourcc, data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size & 1)
    if not out:
        raise Malformed(SOURCE, "truncated", "WebP file has no chunks")
    return out


def _chunk(fourcc: bytes, body: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) & 1 else b"")


def canvas(fourcc: bytes, body: bytes) -> tuple[int, int, bool]:
    """``(width, height, has_alpha)`` from a VP8 (RFC 6386 §9.1) or VP8L header."""
    if fourcc == b"VP8 " and len(body) >= 10 and body[3:6] == b"\x9d\x01\x2a":
        w, h = struct.unpack_from("<HH", body, 6)
        return w & 0x3FFF, h & 0x3FFF, False
    if fourcc == b"VP8L" and len(body) >= 5 and body[0] == 0x2F:
        (bits,) = struct.unpack_from("<I", body, 1)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool(bits >> 28 & 1)
    raise Malformed(SOURCE, "bad_encoding", f"cannot read the canvas size from {fourcc!r}")


def embed(data: bytes, label: dict) -> bytes:
    """``data`` with one ``XMP `` chunk carrying ``label`` and the VP8X XMP flag set.

    Image chunks are copied byte for byte; the XMP chunk goes after the image
    data and any EXIF chunk, where RFC 9649 §2.7 orders it.
    """
    items = chunks(data)
    existing = next((body for fourcc, body in items if fourcc == b"XMP "), None)
    items = [(f, exif.blank_label(b) if f == b"EXIF" else b) for f, b in items if f != b"XMP "]
    if items[0][0] != b"VP8X":
        w, h, alpha = canvas(*items[0])
        flags = ALPHA_FLAG if alpha else 0
        items.insert(0, (b"VP8X", bytes([flags, 0, 0, 0]) + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")))
    vp8x = bytearray(items[0][1])
    if len(vp8x) < 10:
        raise Malformed(SOURCE, "truncated", "WebP VP8X chunk is truncated")
    vp8x[0] |= XMP_FLAG
    items[0] = (b"VP8X", bytes(vp8x))
    at = 1 + max((i for i, (f, _b) in enumerate(items) if i and f in IMAGE_CHUNKS + (b"EXIF",)), default=0)
    items.insert(at, (b"XMP ", xmp.with_label(existing, label)))
    body = b"WEBP" + b"".join(_chunk(f, b) for f, b in items)
    return b"RIFF" + struct.pack("<I", len(body)) + body
