"""Bounded reads from a seekable binary file, raising Malformed on short data."""

from __future__ import annotations

import os
from typing import BinaryIO

from .signals import Malformed


def size_of(fp: BinaryIO) -> int:
    here = fp.tell()
    end = fp.seek(0, os.SEEK_END)
    fp.seek(here)
    return end


def read_exact(fp: BinaryIO, n: int, source: str, what: str) -> bytes:
    data = fp.read(n)
    if len(data) != n:
        raise Malformed(source, "truncated", f"{what} is truncated ({len(data)} of {n} bytes)")
    return data


def read_bounded(fp: BinaryIO, n: int, limit: int, source: str, what: str) -> bytes:
    """Read ``n`` bytes of a metadata payload, refusing over ``limit``."""
    if n > limit:
        raise Malformed(source, "too_large", f"{what} is {n} bytes, limit {limit}")
    return read_exact(fp, n, source, what)


BLOCK = 16 << 10


class Window:
    """Random access to a file through one cached block, so walking many small
    headers near each other costs one read, and skipping costs nothing.

    ``head`` is what a read of ``BLOCK`` bytes at offset 0 returned, when the
    caller has done it already (the format sniff), so the walk starts without
    another read. The file size is learnt from a short read (the end of the
    file) and otherwise looked up only when a caller asks for it.
    """

    def __init__(self, fp: BinaryIO, source: str, head: bytes = b"", block: int = BLOCK):
        self.fp, self.source, self.block = fp, source, block
        self.base, self.buf = 0, head
        self._size: int | None = len(head) if head and len(head) < BLOCK else None

    @property
    def size(self) -> int:
        if self._size is None:
            self._size = size_of(self.fp)
        return self._size

    def get(self, pos: int, n: int, what: str) -> bytes:
        at = pos - self.base
        if at >= 0 and at + n <= len(self.buf):  # cached: within the file by construction
            return self.buf[at : at + n]
        if self._size is not None and pos + n > self._size:
            raise Malformed(self.source, "truncated", f"{what} runs past the end of the file")
        self.fp.seek(pos)
        want = max(n, self.block)
        self.buf, self.base = self.fp.read(want), pos
        if len(self.buf) < want:  # a short read ends at the end of the file
            self._size = pos + len(self.buf)
            if len(self.buf) < n:
                raise Malformed(self.source, "truncated", f"{what} runs past the end of the file")
        return self.buf[:n]
