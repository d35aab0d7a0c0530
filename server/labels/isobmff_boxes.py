"""ISO/IEC 14496-12 §4.2 box headers: walking the boxes of a file or a buffer, writing one.

A box is a 32-bit big-endian size (header included), a four-character type,
and for size 1 a 64-bit size after the type; size 0 runs to the end of the
enclosing range. Every walk refuses a box that runs past its range
(``bad_length``) and stops after ``MAX_BOXES`` boxes.
"""

from __future__ import annotations

import struct
from typing import Iterator

from ._io import Window
from .signals import Malformed

SOURCE = "gb45438_mp4"
MAX_BOXES = 1 << 16
MAX_FILE = 1 << 62  # beyond any file (off_t is 63 bits): never read at such offsets

_HEADER = struct.Struct(">I4s")
_LARGE = struct.Struct(">Q")
_unpack_header = _HEADER.unpack_from


def _odd_size(size: int, large: bytes | None, pos: int, end: int, btype: bytes) -> tuple[int, int]:
    """``(size, header_length)`` of a box whose 32-bit size is not a plain
    in-range length: 1 (a 64-bit size follows), 0 (to the end) or bad."""
    header = 8
    if size == 1:
        if large is None or len(large) < 8:
            raise Malformed(SOURCE, "truncated", "MP4 box size is truncated")
        (size,) = _LARGE.unpack(large[:8])
        header = 16
    elif size == 0:
        size = end - pos
    if size < header or pos + size > end:
        raise Malformed(SOURCE, "bad_length", f"MP4 box {btype!r} at {pos} has size {size}")
    return size, header


def _walk(w: Window, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """Yield ``(type, payload_start, box_end)`` of the boxes in ``[start, end)``."""
    pos, count = start, 0
    while pos + 8 <= end:
        at = pos - w.base
        if 0 <= at <= len(w.buf) - 8:  # in the cached block: no call for it
            size, btype = _unpack_header(w.buf, at)
        else:
            size, btype = _HEADER.unpack(w.get(pos, 8, "MP4 box header"))
        header = 8
        if size < 8 or pos + size > end:
            large = w.get(pos + 8, 8, "MP4 box size") if size == 1 else None
            size, header = _odd_size(size, large, pos, end, btype)
        yield btype, pos + header, pos + size
        pos += size
        count += 1
        if count == MAX_BOXES:
            raise Malformed(SOURCE, "too_many_segments", "too many MP4 boxes")


def _walk_file(w: Window) -> Iterator[tuple[bytes, int, int]]:
    """``_walk(w, 0, w.size)`` without looking the size up (an fstat costs
    about what a read does): whether the file reaches a box's end is told by
    the cached block or by reading the block there (``Window.reaches``),
    where the next header is. Same boxes, same errors as with the size."""
    pos, count = 0, 0
    while True:
        buf = w.buf
        at = pos - w.base
        if 0 <= at <= len(buf) - 8:  # in the cached block: no call for it
            size, btype = _unpack_header(buf, at)
        elif w.reaches(pos + 8):
            size, btype = _HEADER.unpack(w.get(pos, 8, "MP4 box header"))
        else:
            return
        header = 8
        if size < 8 or (pos + size > w.base + len(w.buf) and not w.reaches(pos + size)):
            large = w.get(pos + 8, 8, "MP4 box size") if size == 1 else None
            size, header = _odd_size(size, large, pos, _end_for(w, pos, large), btype)
        yield btype, pos + header, pos + size
        pos += size
        count += 1
        if count == MAX_BOXES:
            raise Malformed(SOURCE, "too_many_segments", "too many MP4 boxes")


def _end_for(w: Window, pos: int, large: bytes | None) -> int:
    """An end of the walk's range that gives ``_odd_size`` its exact verdict:
    a 64-bit size (a big ``mdat``) that the file reaches is its own end; else
    the file's size, looked up (size 0, bad sizes, boxes past the end)."""
    if large is not None and len(large) >= 8:
        (size,) = _LARGE.unpack(large[:8])
        if 16 <= size < MAX_FILE and w.reaches(pos + size):
            return pos + size
    return w.size


def _children(buf: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """``[(type, payload_start, box_end)]`` of the boxes in ``buf[start:end]``."""
    if end - start > 8 * MAX_BOXES:  # room for too many boxes: count them
        return [(t, s, e) for t, _b, s, e in _boxes(buf, start, end)]
    out, pos = [], start
    while pos + 8 <= end:
        size, btype = _unpack_header(buf, pos)
        if 8 <= size and pos + size <= end:
            out.append((btype, pos + 8, pos + size))
        else:
            size, header = _odd_size(size, buf[pos + 8 : min(pos + 16, end)] if size == 1 else None, pos, end, btype)
            out.append((btype, pos + header, pos + size))
        pos += size
    return out


def _boxes(buf: bytes, start: int, end: int) -> list[tuple[bytes, int, int, int]]:
    """``[(type, box_start, payload_start, box_end)]`` of the boxes in ``buf[start:end]``."""
    out, pos = [], start
    while pos + 8 <= end:
        size, btype = struct.unpack_from(">I4s", buf, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise Malformed(SOURCE, "truncated", "MP4 box size is truncated")
            (size,) = struct.unpack_from(">Q", buf, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise Malformed(SOURCE, "bad_length", f"MP4 box {btype!r} has size {size}")
        out.append((btype, pos, pos + header, pos + size))
        pos += size
        if len(out) > MAX_BOXES:
            raise Malformed(SOURCE, "too_many_segments", "too many MP4 boxes")
    return out


def box(btype: bytes, payload: bytes) -> bytes:
    if len(payload) + 8 < 1 << 32:
        return struct.pack(">I4s", len(payload) + 8, btype) + payload
    return struct.pack(">I4sQ", 1, btype, len(payload) + 16) + payload
