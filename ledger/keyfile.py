"""The ledger's signing key file: a C2SP signer-key string, mode 0600.

Created on first use. Several processes may start at once (gunicorn
workers), so the key is written in full to a private temporary file and then
hard-linked into place: the link either succeeds, or another process won and
its key is read instead. No process ever sees a half-written key.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from . import note

KEY_MODE = 0o600


class KeyFileError(Exception):
    """The key file cannot be read, written, or is not a signer key."""


def load(path: str | os.PathLike) -> note.Signer:
    path = Path(path)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text("ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read ledger key {path}: {exc}") from exc
    if mode & 0o077:
        raise KeyFileError(f"ledger key {path} is readable by others (mode {mode:04o}); chmod 600 it")
    try:
        return note.Signer.from_skey(text)
    except note.NoteError as exc:
        raise KeyFileError(f"ledger key {path}: {exc}") from exc


def load_or_create(path: str | os.PathLike, name: str) -> note.Signer:
    """The signer in ``path``, or a new one named ``name`` written there."""
    path = Path(path)
    if not path.exists():
        try:
            signer = note.Signer.generate(name)
        except note.NoteError as exc:
            raise KeyFileError(str(exc)) from exc
        _create(path, signer.skey + "\n")
    return load(path)


def _create(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_MODE)
        try:
            os.write(fd, text.encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first; load() reads theirs
        _fsync_dir(path.parent)
    except OSError as exc:
        raise KeyFileError(f"cannot create ledger key {path}: {exc}") from exc
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
