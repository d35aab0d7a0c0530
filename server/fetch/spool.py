"""A fetched body kept for its analysis: in memory while small, else on disk.

``tempfile.SpooledTemporaryFile`` copies every chunk into a ``BytesIO`` and
is a file object of its own per fetch; most media bodies are small, so the
chunks are kept as they came and joined once for reading, and only a body
that grows past ``in_memory`` bytes moves to an anonymous temporary file.
"""

from __future__ import annotations

import io
import tempfile
from typing import BinaryIO


class Spool:
    def __init__(self, in_memory: int):
        self.in_memory = in_memory
        self.size = 0
        self._parts: list[bytes] = []
        self._file: BinaryIO | None = None

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self._file is None and self.size > self.in_memory:
            self._file = tempfile.TemporaryFile()
            self._file.writelines(self._parts)
            self._parts = []
        if self._file is not None:
            self._file.write(chunk)
        else:
            self._parts.append(chunk)

    def reader(self) -> BinaryIO:
        """The body from its first byte (a file object to read and seek)."""
        if self._file is not None:
            self._file.seek(0)
            return self._file
        return io.BytesIO(b"".join(self._parts))

    def close(self) -> None:
        self._parts = []
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> "Spool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
