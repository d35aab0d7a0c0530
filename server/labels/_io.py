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
