"""MP3 (ID3v2.3 / ID3v2.4 tags): the GB 45438 label in a ``TXXX`` frame described ``AIGC``.

Only the tag at the start of the file is read (its size is bounded), never
the audio frames. A ``TXXX`` frame is: text encoding byte, description, the
encoding's terminator, value (ID3v2.4 §4.2.6). labelcheck writes encoding 0
(ISO-8859-1) for an ASCII label, and UTF-8 (ID3v2.4) or UTF-16 (ID3v2.3)
for one with other characters.
C2PA stores in MP3 live in a ``GEOB`` frame whose MIME type names C2PA.
"""

from __future__ import annotations

import io
import struct
from typing import BinaryIO

from ._io import Window, read_bounded
from .budget import Found
from .signals import Malformed, malformed
from .xmp import label_signal

SOURCE = "gb45438_id3"
DESCRIPTION = "AIGC"
MAX_TAG = 64 << 20
MAX_FRAME = 1 << 20
MAX_FRAMES = 4096  # frames in one tag
ENCODINGS = {0: "latin-1", 1: "utf-16", 2: "utf-16-be", 3: "utf-8"}


def syncsafe(b: bytes) -> int:
    if any(x & 0x80 for x in b):
        raise Malformed(SOURCE, "bad_length", "ID3 size is not syncsafe")
    return (b[0] << 21) | (b[1] << 14) | (b[2] << 7) | b[3]


def to_syncsafe(n: int) -> bytes:
    if n >= 1 << 28:
        raise Malformed(SOURCE, "too_large", "ID3 tag is too large")
    return bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])


def unsynchronise_undo(data: bytes) -> bytes:
    """Reverse ID3 unsynchronisation (ID3v2.4 §6.1): ``FF 00`` -> ``FF``."""
    return data.replace(b"\xff\x00", b"\xff")


def read_tag(fp: BinaryIO) -> tuple[int, int, bytes, int] | None:
    """``(major, flags, body, tag_length)`` of the ID3v2 tag at the start, or None."""
    fp.seek(0)
    head = fp.read(10)
    if len(head) < 10 or head[:3] != b"ID3":
        return None
    major, _rev, flags = head[3], head[4], head[5]
    if major not in (3, 4):
        raise Malformed(SOURCE, "unsupported", f"ID3v2.{major} tags are not supported")
    size = syncsafe(head[6:10])
    body = read_bounded(fp, size, MAX_TAG, SOURCE, "ID3 tag")
    footer = 10 if major == 4 and flags & 0x10 else 0
    return major, flags, body, 10 + size + footer


def frames(major: int, flags: int, body: bytes) -> list[tuple[bytes, int, bytes, int, int]]:
    """``[(id, frame_flags, payload, start, end)]`` of the tag's frames."""
    if major == 3 and flags & 0x80:
        body = unsynchronise_undo(body)
    pos = 0
    if flags & 0x40:  # extended header
        if len(body) < 4:
            raise Malformed(SOURCE, "truncated", "ID3 extended header is truncated")
        ext = syncsafe(body[:4]) if major == 4 else struct.unpack(">I", body[:4])[0] + 4
        if ext > len(body):
            raise Malformed(SOURCE, "bad_length", "ID3 extended header runs past the tag")
        pos = ext
    out = []
    while pos + 10 <= len(body):
        fid = body[pos : pos + 4]
        if fid == b"\x00\x00\x00\x00":
            break  # padding
        size = syncsafe(body[pos + 4 : pos + 8]) if major == 4 else struct.unpack_from(">I", body, pos + 4)[0]
        (fflags,) = struct.unpack_from(">H", body, pos + 8)
        end = pos + 10 + size
        if end > len(body):
            raise Malformed(SOURCE, "bad_length", f"ID3 frame {fid!r} runs past the tag")
        if len(out) >= MAX_FRAMES:
            raise Malformed(SOURCE, "too_many_segments", f"over {MAX_FRAMES} ID3 frames")
        out.append((fid, fflags, body[pos + 10 : end], pos, end))
        pos = end
    return out


def _split(payload: bytes) -> tuple[str, bytes, int] | None:
    """``(description, value_bytes, encoding)`` of a TXXX / GEOB-like text prefix."""
    if not payload:
        return None
    enc = payload[0]
    if enc not in ENCODINGS:
        raise Malformed(SOURCE, "bad_encoding", f"ID3 text encoding {enc}")
    rest = payload[1:]
    if enc in (1, 2):
        i = 0
        while i + 1 < len(rest) and rest[i : i + 2] != b"\x00\x00":
            i += 2
        desc, value = rest[:i], rest[i + 2 :]
    else:
        i = rest.find(b"\x00")
        desc, value = (rest, b"") if i < 0 else (rest[:i], rest[i + 1 :])
    return desc.decode(ENCODINGS[enc], "replace").lstrip("\ufeff"), value, enc


def _frame_payload(major: int, fflags: int, payload: bytes) -> bytes | None:
    """The frame's plain data, or None when it is compressed or encrypted."""
    if major == 4:
        if fflags & 0x000C:
            return None
        if fflags & 0x0001:
            payload = payload[4:]
        if fflags & 0x0002:
            payload = unsynchronise_undo(payload)
        return payload
    if fflags & 0x00C0:
        return None
    return payload[1:] if fflags & 0x0020 else payload


def scan(fp: BinaryIO, found: Found) -> bool:
    """Append the labels in the ID3v2 tag; True when a C2PA GEOB frame is present.

    Frame headers are walked and only ``TXXX`` and ``GEOB`` frames are read,
    so cover art and other bulky frames are skipped; a tag-wide
    unsynchronised ID3v2.3 tag is read whole (bounded by ``MAX_TAG``).
    """
    budget = found.budget
    w = Window(fp, SOURCE)
    head = w.get(0, min(10, w.size), "ID3 header")
    if len(head) < 10 or head[:3] != b"ID3" or head[3] == 2:
        return False  # no tag; ID3v2.2 (three-letter frames) predates TXXX labels
    major, flags = head[3], head[5]
    if major not in (3, 4):
        raise Malformed(SOURCE, "unsupported", f"ID3v2.{major} tags are not supported")
    end = 10 + syncsafe(head[6:10])
    if major == 3 and flags & 0x80:
        budget.spend_bytes(min(end - 10, MAX_TAG), SOURCE, "ID3 unsynchronised tag")
        return _scan_frames(frames(*read_tag(fp)[:3]), major, found)
    if end > w.size:
        raise Malformed(SOURCE, "truncated", "ID3 tag runs past the end of the file")
    pos = 10
    if flags & 0x40:  # extended header
        raw = w.get(pos, 4, "ID3 extended header")
        pos += syncsafe(raw) if major == 4 else struct.unpack(">I", raw)[0] + 4
    picked, count = [], 0
    while pos + 10 <= end:
        count += 1
        if count > MAX_FRAMES:
            raise Malformed(SOURCE, "too_many_segments", f"over {MAX_FRAMES} ID3 frames")
        budget.tick(SOURCE)
        fid, size, fflags = _frame_header(w.get(pos, 10, "ID3 frame header"), major)
        if fid == b"\x00\x00\x00\x00":
            break  # padding
        if pos + 10 + size > end:
            raise Malformed(SOURCE, "bad_length", f"ID3 frame {fid!r} runs past the tag")
        if fid == b"GEOB":
            picked.append((fid, fflags, w.get(pos + 10, min(size, 128), "ID3 GEOB frame"), 0, 0))
        elif fid == b"TXXX":
            if size > MAX_FRAME:
                raise Malformed(SOURCE, "too_large", f"ID3 TXXX frame is {size} bytes, limit {MAX_FRAME}")
            budget.spend_bytes(size, SOURCE, "ID3 TXXX frame")
            picked.append((fid, fflags, w.get(pos + 10, size, "ID3 TXXX frame"), 0, 0))
        pos += 10 + size
    return _scan_frames(picked, major, found)


def _frame_header(raw: bytes, major: int) -> tuple[bytes, int, int]:
    size = syncsafe(raw[4:8]) if major == 4 else struct.unpack_from(">I", raw, 4)[0]
    return raw[:4], size, struct.unpack_from(">H", raw, 8)[0]


def _scan_frames(items, major: int, found: Found) -> bool:
    c2pa = False
    for fid, fflags, raw, _s, _e in items:
        payload = _frame_payload(major, fflags, raw)
        if payload is None:
            continue
        if fid == b"GEOB":
            c2pa = c2pa or b"c2pa" in payload[:64].lower()
        elif fid == b"TXXX":
            parts = _split(payload)
            if parts is None:  # a frame is at least one byte (ID3v2.4 §4)
                found.append(malformed(SOURCE, "truncated", "ID3 TXXX frame is empty"))
                continue
            desc, value, enc = parts
            if desc == DESCRIPTION:
                text = value.decode(ENCODINGS[enc], "replace").lstrip("\ufeff").rstrip("\x00")
                found.append(label_signal(SOURCE, text))
    return c2pa


def txxx_frame(major: int, value: str) -> bytes:
    """A ``TXXX`` frame described ``AIGC``: ISO-8859-1 (encoding 0) for ASCII,
    else UTF-8 (3) in ID3v2.4 and UTF-16 with BOM (1) in ID3v2.3, which has
    no UTF-8 (ID3v2.3 §4.2, ID3v2.4 §4.2)."""
    if value.isascii():
        payload = b"\x00" + DESCRIPTION.encode("latin-1") + b"\x00" + value.encode("latin-1")
    elif major == 4:
        payload = b"\x03" + DESCRIPTION.encode("utf-8") + b"\x00" + value.encode("utf-8")
    else:
        bom = b"\xff\xfe"
        payload = b"\x01" + bom + DESCRIPTION.encode("utf-16-le") + b"\x00\x00" + bom + value.encode("utf-16-le")
    size = to_syncsafe(len(payload)) if major == 4 else struct.pack(">I", len(payload))
    return b"TXXX" + size + b"\x00\x00" + payload


def embed(data: bytes, value: str) -> bytes:
    """``data`` with one ``TXXX:AIGC`` frame; the audio after the tag is untouched.

    An existing tag keeps its version and other frames (a v2.3 tag-wide
    unsynchronisation is undone, extended header and footer are dropped);
    without a tag a new ID3v2.3 tag is prepended.
    """
    fp = io.BytesIO(data)
    tag = read_tag(fp)
    if tag is None:
        major, kept, rest = 3, [], data
    else:
        major, flags, body, length = tag
        if length > len(data):
            raise Malformed(SOURCE, "truncated", "ID3 tag runs past the end")
        plain = unsynchronise_undo(body) if major == 3 and flags & 0x80 else body
        kept = []
        for fid, fflags, raw, start, end in frames(major, flags & ~0x80, plain):
            if fid == b"TXXX":
                payload = _frame_payload(major, fflags, raw)
                if payload is not None and _split(payload)[0] == DESCRIPTION:
                    continue
            kept.append(plain[start:end])
        rest = data[length:]
    body = b"".join(kept) + txxx_frame(major, value)
    header = b"ID3" + bytes([major, 0, 0]) + to_syncsafe(len(body))
    return header + body + rest
