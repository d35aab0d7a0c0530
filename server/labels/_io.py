"""Bounded reads from a seekable binary file, raising Malformed on short data."""

from __future__ import annotations

import io
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


def direct_fd(fp: BinaryIO) -> int | None:
    """The descriptor of ``fp`` when it is a plain file opened for reading
    (``open(path, "rb")``, or an unbuffered ``FileIO``), so that its bytes can
    be read with ``pread`` (POSIX.1-2017 pread(2)) at any offset without
    moving its position; None for anything else (BytesIO, a writable buffered
    file whose buffer may hold unwritten bytes, wrappers), read by seek and read."""
    kind = type(fp)
    if kind is io.BufferedReader:
        if type(fp.raw) is not io.FileIO:
            return None
    elif kind is not io.FileIO:
        return None
    try:
        return fp.fileno()
    except (OSError, ValueError):  # closed
        return None


def pread(fd: int, n: int, pos: int) -> bytes:
    """Up to ``n`` bytes at ``pos``: fewer only at the end of the file."""
    data = os.pread(fd, n, pos)
    if 0 < len(data) < n:  # a short read need not be the end: read on until it is
        parts = [data]
        got = len(data)
        while got < n:
            more = os.pread(fd, n - got, pos + got)
            if not more:
                break
            parts.append(more)
            got += len(more)
        data = b"".join(parts)
    return data


BLOCK = 16 << 10


class Window:
    """Random access to a file through one cached block, so walking many small
    headers near each other costs one read, and skipping costs nothing.

    ``head`` is what a read of ``BLOCK`` bytes at offset 0 returned, when the
    caller has done it already (the format sniff), so the walk starts without
    another read. The file size is learnt from a short read (the end of the
    file) and otherwise looked up only when a caller asks for it. With ``fd``
    (``direct_fd``) blocks are read with ``pread`` and the file's position
    is left alone.
    """

    __slots__ = ("fp", "fd", "source", "block", "base", "buf", "_size")

    def __init__(self, fp: BinaryIO, source: str, head: bytes = b"", fd: int | None = None, block: int = BLOCK):
        self.fp = fp
        self.fd = fd
        self.source = source
        self.block = block
        self.base = 0
        self.buf = head
        self._size: int | None = len(head) if 0 < len(head) < BLOCK else None

    @property
    def size(self) -> int:
        if self._size is None:
            self._size = size_of(self.fp) if self.fd is None else os.fstat(self.fd).st_size
        return self._size

    def reaches(self, end: int) -> bool:
        """True when the file holds at least ``end`` bytes (``end`` >= 1).

        Answered from the cached block or a known size; else the block at
        ``end - 8`` is read: one byte back there says yes, and a walk of boxes
        or segments finds its next header (at ``end``) in that block. A short
        read gives the exact size, so no size lookup (fstat) is needed."""
        if self.buf and end <= self.base + len(self.buf):
            return True
        if self._size is not None:
            return end <= self._size
        pos = max(0, end - 8)
        if self.fd is None:
            self.fp.seek(pos)
            self.buf = self.fp.read(self.block)
        else:
            self.buf = pread(self.fd, self.block, pos)
        self.base = pos
        if len(self.buf) < self.block:  # a short read ends at the end of the file
            self._size = pos + len(self.buf)
        return end <= pos + len(self.buf)

    def get(self, pos: int, n: int, what: str) -> bytes:
        at = pos - self.base
        if at >= 0 and at + n <= len(self.buf):  # cached: within the file by construction
            return self.buf[at : at + n]
        if self._size is not None and pos + n > self._size:
            raise Malformed(self.source, "truncated", f"{what} runs past the end of the file")
        want = max(n, self.block)
        if self._size is not None:  # up to a known end: no read to find it
            want = min(want, self._size - pos)
        if self.fd is None:
            self.fp.seek(pos)
            self.buf = self.fp.read(want)
        else:
            self.buf = pread(self.fd, want, pos)
        self.base = pos
        if len(self.buf) < want:  # a short read ends at the end of the file
            self._size = pos + len(self.buf)
            if len(self.buf) < n:
                raise Malformed(self.source, "truncated", f"{what} runs past the end of the file")
        return self.buf[:n]
