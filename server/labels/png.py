"""PNG (ISO/IEC 15948, PNG 3rd edition): labels in iTXt XMP and eXIf, C2PA in caBX.

The reader walks chunk headers and seeks past image data, reading only the
metadata chunks it needs (CRC checked). XMP sits in an iTXt chunk with the
keyword ``XML:com.adobe.xmp`` (XMP Specification Part 3 §1.1.5).
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

from . import exif, xmp
from ._io import read_bounded, read_exact, size_of
from .budget import Budget, Found, Limit
from .signals import Malformed

SOURCE = "gb45438_xmp"
SIGNATURE = b"\x89PNG\r\n\x1a\n"
XMP_KEYWORD = b"XML:com.adobe.xmp"
MAX_CHUNKS = 1 << 20
MAX_META = xmp.MAX_XMP + 4096


def scan(fp: BinaryIO, found: Found) -> bool:
    """Append the labels in ``fp``'s chunks; True when a C2PA store is present."""
    budget = found.budget
    total = size_of(fp)
    fp.seek(0)
    if fp.read(8) != SIGNATURE:
        raise Malformed(SOURCE, "bad_signature", "not a PNG")
    c2pa = False
    for _ in range(MAX_CHUNKS):
        budget.tick(SOURCE)
        length, ctype = struct.unpack(">I4s", read_exact(fp, 8, SOURCE, "PNG chunk header"))
        if length > 0x7FFFFFFF or fp.tell() + length + 4 > total:
            raise Malformed(SOURCE, "bad_length", f"PNG chunk {ctype!r} claims {length} bytes")
        if ctype == b"IEND":
            return c2pa
        if ctype == b"caBX":
            c2pa = True
        if ctype not in (b"iTXt", b"eXIf"):
            fp.seek(length + 4, 1)
            continue
        start = fp.tell()
        if ctype == b"iTXt" and fp.read(len(XMP_KEYWORD) + 1) != XMP_KEYWORD + b"\x00":
            fp.seek(start + length + 4)  # another text chunk: not ours to judge
            continue
        fp.seek(start)
        body = read_bounded(fp, length, MAX_META, SOURCE, f"PNG {ctype.decode()} chunk")
        budget.spend_bytes(length, SOURCE, f"PNG {ctype.decode()} chunk")
        (crc,) = struct.unpack(">I", read_exact(fp, 4, SOURCE, "PNG CRC"))
        if zlib.crc32(ctype + body) != crc:
            found.append(Malformed(SOURCE, "bad_crc", f"PNG {ctype.decode()} chunk CRC mismatch").signal())
            continue
        if ctype == b"eXIf":
            try:
                found.extend(exif.signals(body, "png"))
            except Malformed as exc:
                found.append(exc.signal())
        elif body.startswith(XMP_KEYWORD + b"\x00"):
            try:
                found.extend(xmp.signals(itxt_text(body, budget), "png", budget))
            except Limit:
                raise  # the file's budget is spent: stop reading
            except Malformed as exc:
                found.append(exc.signal())
    raise Malformed(SOURCE, "too_many_segments", "too many PNG chunks")


def itxt_text(body: bytes, budget: Budget | None = None) -> bytes:
    """The text of an iTXt chunk body, inflated when compressed: at most
    ``xmp.MAX_XMP`` bytes, and the inflated bytes are charged to ``budget``."""
    try:
        keyword_end = body.index(b"\x00")
        flag, method = body[keyword_end + 1], body[keyword_end + 2]
        lang_end = body.index(b"\x00", keyword_end + 3)
        text_start = body.index(b"\x00", lang_end + 1) + 1
    except (ValueError, IndexError):
        raise Malformed(SOURCE, "truncated", "PNG iTXt chunk is truncated") from None
    text = body[text_start:]
    if not flag:
        return text
    if method != 0:
        raise Malformed(SOURCE, "bad_encoding", f"PNG iTXt compression method {method}")
    budget = budget or Budget()
    room = min(xmp.MAX_XMP, budget.bytes_left)
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(text, room + 1)  # never more than room + 1 bytes in memory
    except zlib.error as exc:
        raise Malformed(SOURCE, "bad_encoding", f"PNG iTXt does not inflate: {exc}") from None
    budget.spend_bytes(len(out), SOURCE, "PNG iTXt inflated text")
    if len(out) > xmp.MAX_XMP:
        raise Malformed(SOURCE, "xmp_too_large", "compressed XMP inflates past the limit")
    return out


def chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    """``[(type, start, end)]`` of every chunk (end includes the CRC)."""
    if data[:8] != SIGNATURE:
        raise Malformed(SOURCE, "bad_signature", "not a PNG")
    pos, out = 8, []
    while pos < len(data):
        if pos + 12 > len(data):
            raise Malformed(SOURCE, "truncated", "PNG chunk is truncated")
        length, ctype = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            raise Malformed(SOURCE, "bad_length", f"PNG chunk {ctype!r} runs past the end")
        out.append((ctype, pos, end))
        pos = end
        if ctype == b"IEND":
            break
    if not out or out[0][0] != b"IHDR" or out[-1][0] != b"IEND":
        raise Malformed(SOURCE, "truncated", "PNG lacks IHDR or IEND")
    return out


def chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def embed(data: bytes, label: dict) -> bytes:
    """``data`` with one uncompressed XMP iTXt chunk carrying ``label``, after IHDR.

    Every other chunk is copied byte for byte (IDAT untouched); earlier XMP
    iTXt chunks are dropped (their other properties carried over) and an
    eXIf UserComment label is blanked.
    """
    out, existing = [], None
    for ctype, start, end in chunks(data):
        body = data[start + 8 : end - 4]
        if ctype == b"iTXt" and body.startswith(XMP_KEYWORD + b"\x00"):
            if existing is None:
                existing = itxt_text(body)
            continue
        if ctype == b"eXIf":
            blanked = exif.blank_label(body)
            out.append(chunk(ctype, blanked) if blanked != body else data[start:end])
            continue
        out.append(data[start:end])
    packet = xmp.with_label(existing, label)
    itxt = chunk(b"iTXt", XMP_KEYWORD + b"\x00\x00\x00\x00\x00" + packet)
    return SIGNATURE + out[0] + itxt + b"".join(out[1:])
