"""Atomic, durable file replacement.

A reader sees the old file or the new one, never a mix, and after a crash the
file is one of the two. The temporary file is created exclusively (``O_EXCL``
through :func:`tempfile.mkstemp`) with an unpredictable name in the target's
folder, so a symlink planted beside the target is never followed; the rename
then replaces the path itself (a symlink at the target is replaced, its
target untouched). Order: write, fsync the file, rename, fsync the folder
(POSIX rename(2) is atomic; the folder's fsync makes the rename durable).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

DEFAULT_MODE = 0o644


def existing_mode(path: Path, default: int = DEFAULT_MODE) -> int:
    """The permission bits of ``path``, or ``default`` when it does not exist."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return default


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, *, mode: int | None = None,
                  default_mode: int = DEFAULT_MODE) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``path`` when the block ends cleanly.

    ``mode``: the new file's permission bits; by default those of the file
    being replaced, or ``default_mode`` for a new one. On an exception the
    temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    final_mode = existing_mode(path, default_mode) if mode is None else mode
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fp:
            yield fp
            fp.flush()
            os.fchmod(fp.fileno(), final_mode)
            os.fsync(fp.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def write_bytes(path: str | os.PathLike, data: bytes, **kwargs) -> None:
    """Replace ``path`` with ``data`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path, **kwargs) as fp:
        fp.write(data)


def write_text(path: str | os.PathLike, text: str, **kwargs) -> None:
    """Replace ``path`` with ``text`` in UTF-8, atomically."""
    write_bytes(path, text.encode("utf-8"), **kwargs)


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename or a new file in ``folder`` durable (best effort where a
    file system cannot fsync a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
