"""WAV (RIFF/WAVE): the GB 45438 label in a chunk with FourCC ``AIGC``.

Chunk layout: ``"AIGC"``, little-endian u32 size, the label's compact JSON
(UTF-8, inner object), a pad byte when the size is odd (RIFF rule); it is
written before the ``data`` chunk. The reader walks chunk headers and seeks past ``data``; C2PA stores live in a
``C2PA`` chunk.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from ._io import read_bounded, read_exact, size_of
from .budget import Found
from .signals import Malformed
from .xmp import label_signal

SOURCE = "gb45438_wav"
FOURCC = b"AIGC"
MAX_CHUNKS = 1 << 16
MAX_LABEL = 64 << 10


def scan(fp: BinaryIO, found: Found) -> bool:
    """Append the labels in ``fp``'s chunks; True when a C2PA chunk is present."""
    budget = found.budget
    total = size_of(fp)
    fp.seek(0)
    head = read_exact(fp, 12, SOURCE, "WAV header")
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise Malformed(SOURCE, "bad_signature", "not a RIFF/WAVE file")
    end = min(total, 8 + struct.unpack_from("<I", head, 4)[0])
    c2pa = False
    for _ in range(MAX_CHUNKS):
        if fp.tell() + 8 > end:
            return c2pa
        budget.tick(SOURCE)
        fourcc, size = struct.unpack("<4sI", read_exact(fp, 8, SOURCE, "WAV chunk header"))
        if fp.tell() + size > end:
            raise Malformed(SOURCE, "bad_length", f"WAV chunk {fourcc!r} runs past the end")
        if fourcc == b"C2PA":
            c2pa = True
        if fourcc != FOURCC:
            fp.seek(size + (size & 1), 1)
            continue
        body = read_bounded(fp, size, MAX_LABEL, SOURCE, "WAV AIGC chunk")
        budget.spend_bytes(size, SOURCE, "WAV AIGC chunk")
        fp.seek(size & 1, 1)
        found.append(label_signal(SOURCE, body))
    raise Malformed(SOURCE, "too_many_segments", "too many WAV chunks")


def chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    """``[(fourcc, start, end)]`` (end includes the pad byte)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise Malformed(SOURCE, "bad_signature", "not a RIFF/WAVE file")
    end = 8 + struct.unpack_from("<I", data, 4)[0]
    if end > len(data):
        raise Malformed(SOURCE, "truncated", "WAV file is shorter than its RIFF size")
    pos, out = 12, []
    while pos + 8 <= end:
        fourcc, size = struct.unpack_from("<4sI", data, pos)
        stop = pos + 8 + size + (size & 1)
        if pos + 8 + size > end:
            raise Malformed(SOURCE, "bad_length", f"WAV chunk {fourcc!r} runs past the end")
        out.append((fourcc, pos, min(stop, end)))
        pos = stop
    return out


def embed(data: bytes, value: bytes) -> bytes:
    """``data`` with one ``AIGC`` chunk, placed just before the ``data`` chunk;
    samples untouched.

    Before ``data``, because a decoder that meets a ``data`` chunk of size 0
    (a stream written without seeking back) reads samples to the end of the
    file: a label after it would be decoded as audio. Chunks after the RIFF
    size (trailing junk) are dropped; RF64 is refused.
    """
    kept = [(fourcc, data[s:e] + b"\x00" * ((e - s) & 1)) for fourcc, s, e in chunks(data) if fourcc != FOURCC]
    label = FOURCC + struct.pack("<I", len(value)) + value + (b"\x00" if len(value) & 1 else b"")
    at = next((i for i, (fourcc, _c) in enumerate(kept) if fourcc == b"data"), len(kept))
    parts = [c for _f, c in kept]
    parts.insert(at, label)
    body = b"WAVE" + b"".join(parts)
    if len(body) >= 1 << 32:
        raise Malformed(SOURCE, "too_large", "WAV file would exceed 4 GiB")
    return b"RIFF" + struct.pack("<I", len(body)) + body
