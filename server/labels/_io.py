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


class Window:
    """Random access to a file through one cached block, so walking many small
    headers near each other costs one read, and skipping costs nothing."""

    def __init__(self, fp: BinaryIO, source: str, block: int = 16 << 10):
        self.fp, self.source, self.block = fp, source, block
        self.size = size_of(fp)
        self.base, self.buf = 0, b""

    def get(self, pos: int, n: int, what: str) -> bytes:
        if pos + n > self.size:
            raise Malformed(self.source, "truncated", f"{what} runs past the end of the file")
        if pos < self.base or pos + n > self.base + len(self.buf):
            self.fp.seek(pos)
            self.buf, self.base = self.fp.read(max(n, self.block)), pos
            if len(self.buf) < n:
                raise Malformed(self.source, "truncated", f"{what} is truncated")
        at = pos - self.base
        return self.buf[at : at + n]
