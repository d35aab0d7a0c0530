"""JPEG (ITU-T T.81, JFIF/EXIF): find labels in APP segments, write the XMP label.

Only the marker segments before the first SOS are walked; entropy-coded
data is never read. XMP lives in APP1 with the ``http://ns.adobe.com/xap/1.0/``
namespace header (XMP Specification Part 3 §1.1.3), EXIF in APP1 ``Exif\\0\\0``,
C2PA manifest stores in APP11 JUMBF segments (C2PA 2.1 §A.3.3).
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from . import exif, xmp
from ._io import Window
from .budget import Found
from .signals import Malformed

SOURCE = "gb45438_xmp"
XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
EXIF_HEADER = b"Exif\x00\x00"
MAX_SEGMENTS = 4096
MAX_PAYLOAD = 65533
STANDALONE = {0x01, 0xD8} | set(range(0xD0, 0xD8))


# Markers whose segments the reader only steps over: every marker with a
# length except the APP1 (XMP, EXIF) and APP11 (C2PA) it reads.
_STEP_OVER = frozenset(range(256)) - STANDALONE - {0xFF, 0xD9, 0xDA, 0xE1, 0xEB}
_unpack_segment = struct.Struct(">BBH").unpack_from  # FF, marker, length
_READ = {0xE1: "JPEG segment 0xe1", 0xEB: "JPEG segment 0xeb"}  # what the segments read are called in errors


def scan(fp: BinaryIO, found: Found, head: bytes = b"", fd: int | None = None) -> bool:
    """Append the labels in ``fp``'s APP segments; True when a C2PA store is present.

    ``head``: the file's first bytes, when the caller has read them already;
    ``fd``: ``fp``'s descriptor when it may be read with ``pread`` (``_io.direct_fd``).
    """
    budget = found.budget
    w = Window(fp, SOURCE, head, fd)
    if w.get(0, 2, "JPEG SOI") != b"\xff\xd8":
        raise Malformed(SOURCE, "bad_marker", "not a JPEG (no SOI)")
    c2pa, pos, count = False, 2, 0
    while count < MAX_SEGMENTS:
        # Step over table segments (DQT, DHT, SOF, APP0...) that begin and end
        # inside the cached block; anything else takes the checked path below.
        buf, base = w.buf, w.base
        at, end = pos - base, len(buf)
        if at >= 0:
            for stepped in range(MAX_SEGMENTS - count):  # counted: the segment bound holds here too
                if at + 4 > end:
                    break
                ff, marker, length = _unpack_segment(buf, at)
                if ff != 0xFF or marker not in _STEP_OVER or length < 2 or at + 2 + length > end:
                    break
                at += 2 + length
            else:
                stepped = MAX_SEGMENTS - count
            count += stepped
            pos = base + at
        if count >= MAX_SEGMENTS:
            break
        count += 1
        # Marker and length in one read: FF, marker, length (2 bytes).
        at = pos - base
        if 0 <= at <= len(buf) - 4:
            seg = buf[at : at + 4]
        elif pos + 2 > w.size:
            raise Malformed(SOURCE, "truncated", "JPEG ends before its image data")
        else:
            seg = w.get(pos, min(4, w.size - pos), "JPEG marker")
        if seg[0] != 0xFF:
            raise Malformed(SOURCE, "bad_marker", f"JPEG marker expected at {pos}")
        marker = seg[1]
        if marker == 0xFF:  # fill bytes before a marker (T.81 §B.1.1.2)
            pos += 1
            continue
        pos += 2
        if marker == 0xDA or marker == 0xD9:
            return c2pa
        if marker in STANDALONE:
            continue
        if len(seg) < 4:
            raise Malformed(SOURCE, "truncated", "JPEG segment length is truncated")
        length = (seg[2] << 8) | seg[3]
        if length < 2:
            raise Malformed(SOURCE, "bad_length", f"JPEG segment {marker:#04x} has length {length}")
        if marker == 0xE1 or marker == 0xEB:
            what = _READ[marker]
            budget.spend_bytes(length - 2, SOURCE, what)
            payload = w.get(pos + 2, length - 2, what)
            if marker == 0xEB:
                c2pa = c2pa or (payload[:2] == b"JP" and b"jumb" in payload[:16])
            elif payload.startswith(XMP_HEADER):
                found.extend(xmp.signals(payload[len(XMP_HEADER) :], "jpeg", budget))
            elif payload.startswith(EXIF_HEADER):
                try:
                    found.extend(exif.signals(payload, "jpeg"))
                except Malformed as exc:
                    found.append(exc.signal())
        elif pos + length > w.base + len(w.buf) and pos + length > w.size:
            raise Malformed(SOURCE, "truncated", f"JPEG segment {marker:#04x} runs past the end")
        pos += length
    raise Malformed(SOURCE, "too_many_segments", f"over {MAX_SEGMENTS} JPEG segments")


def segments(data: bytes) -> tuple[list[tuple[int, int, int]], int]:
    """``([(marker, start, end)], sos)``: header segments and where SOS begins."""
    if data[:2] != b"\xff\xd8":
        raise Malformed(SOURCE, "bad_marker", "not a JPEG (no SOI)")
    pos, out = 2, []
    for _ in range(MAX_SEGMENTS):
        start = pos
        if pos >= len(data) or data[pos] != 0xFF:
            raise Malformed(SOURCE, "truncated" if pos >= len(data) else "bad_marker", "JPEG marker expected")
        while pos < len(data) and data[pos] == 0xFF:
            pos += 1
        if pos >= len(data):
            raise Malformed(SOURCE, "truncated", "JPEG ends inside a marker")
        marker = data[pos]
        pos += 1
        if marker in (0xD9, 0xDA):
            return out, start
        if marker in STANDALONE:
            out.append((marker, start, pos))
            continue
        if pos + 2 > len(data):
            raise Malformed(SOURCE, "truncated", "JPEG segment length is truncated")
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2 or pos + length > len(data):
            raise Malformed(SOURCE, "bad_length", f"JPEG segment {marker:#04x} has a bad length")
        out.append((marker, start, pos + length))
        pos += length
    raise Malformed(SOURCE, "too_many_segments", f"over {MAX_SEGMENTS} JPEG segments")


def embed(data: bytes, label: dict) -> bytes:
    """``data`` with one XMP APP1 carrying ``label``; scan data copied verbatim.

    An existing XMP packet keeps its other properties and its place; without
    one, the new APP1 goes after the leading APP0/APP1 segments (JFIF and
    EXIF must stay first). An EXIF UserComment label is blanked.
    """
    segs, sos = segments(data)
    head, existing, insert_at = [], None, None
    for marker, start, end in segs:
        seg = data[start:end]
        payload = seg[4:]
        if marker == 0xE1 and payload.startswith(XMP_HEADER):
            if existing is None:
                existing = payload[len(XMP_HEADER) :]
                insert_at = len(head)
            continue  # every main XMP packet is replaced by the one new packet
        if marker == 0xE1 and payload.startswith(EXIF_HEADER):
            seg = seg[:4] + exif.blank_label(payload)
        head.append((marker, seg))
    if insert_at is None:
        insert_at = 0
        while insert_at < len(head) and head[insert_at][0] in (0xE0, 0xE1):
            insert_at += 1
    packet = XMP_HEADER + xmp.with_label(existing, label)
    if len(packet) > MAX_PAYLOAD:
        raise Malformed(SOURCE, "too_large", f"XMP packet needs {len(packet)} bytes, a JPEG APP1 holds {MAX_PAYLOAD}")
    app1 = b"\xff\xe1" + struct.pack(">H", len(packet) + 2) + packet
    head.insert(insert_at, (0xE1, app1))
    return b"\xff\xd8" + b"".join(seg for _m, seg in head) + data[sos:]
