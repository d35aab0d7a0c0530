"""Producer key files in the C2SP signed-note key formats (docs/protocol.md §2, §8).

``NAME.key`` holds the signer key of Go's ``golang.org/x/mod/sumdb/note``
(``PRIVATE+KEY+name+hash+base64(0x01||seed)``), ``NAME.pub`` the verifier key
(``name+hash+base64(0x01||pub)``), so producer keys and the ledger key share
one format and interoperate with Go's note tooling. The formats themselves
live in :mod:`ledger.note`; this module only reads and writes the files.
"""

from __future__ import annotations

import os
from pathlib import Path

from labelcheck.ledger import note

KEY_SUFFIX = ".key"
PUB_SUFFIX = ".pub"
MAX_KEY_FILE_BYTES = 4096  # a key line is < 200 bytes; refuse to slurp big files


class KeyFileError(ValueError):
    """A key file that is missing, unreadable, or does not hold a valid key."""


def generate_key(name: str) -> note.Signer:
    """A fresh Ed25519 key named ``name`` (no '+', no white space, not empty).

    Raises :class:`KeyFileError` for an invalid name.
    """
    try:
        return note.Signer.generate(name)
    except note.NoteError as exc:
        raise KeyFileError(str(exc)) from None


def write_key_pair(signer: note.Signer, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``out_dir/NAME.key`` (mode 0600) and ``out_dir/NAME.pub``.

    The private key file is created with mode 0600 by ``open(2)`` itself, so
    it is never readable by others, not even between create and chmod. Neither
    file is overwritten: an existing key is someone's identity. Raises
    :class:`KeyFileError` when a file exists or the directory is unusable.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KeyFileError(f"cannot create directory {out}: {exc.strerror}") from None
    key_path = out / f"{signer.name}{KEY_SUFFIX}"
    pub_path = out / f"{signer.name}{PUB_SUFFIX}"
    for path in (key_path, pub_path):
        if path.exists():
            raise KeyFileError(f"{path} already exists; refusing to overwrite a key")
    _write_new(key_path, signer.skey + "\n", 0o600)
    try:
        _write_new(pub_path, signer.vkey + "\n", 0o644)
    except KeyFileError:
        key_path.unlink(missing_ok=True)  # no half-written pair left behind
        raise
    return key_path, pub_path


def _write_new(path: Path, text: str, mode: int) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a key") from None
    except OSError as exc:
        raise KeyFileError(f"cannot create {path}: {exc.strerror}") from None
    try:
        os.fchmod(fd, mode)  # the umask may have removed bits we want (never added any)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise KeyFileError(f"cannot write {path}: {exc.strerror}") from None


def _read_key_file(path: str | os.PathLike, what: str) -> str:
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_KEY_FILE_BYTES + 1)
    except FileNotFoundError:
        raise KeyFileError(f"{what} file {path} does not exist") from None
    except IsADirectoryError:
        raise KeyFileError(f"{what} file {path} is a directory") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read {what} file {path}: {exc.strerror}") from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"{path} is too large to be a {what} file")
    try:
        return data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise KeyFileError(f"{path} is not a {what} file (not ASCII text)") from None


def load_signer(path: str | os.PathLike) -> note.Signer:
    """Read a signer key file (``PRIVATE+KEY+…``). Raises :class:`KeyFileError`."""
    text = _read_key_file(path, "signer key")
    try:
        return note.Signer.from_skey(text)
    except note.NoteError as exc:
        hint = " (this looks like a public .pub key)" if not text.startswith("PRIVATE+") else ""
        raise KeyFileError(f"{path}: {exc}{hint}") from None


def load_verifier(path_or_vkey: str | os.PathLike) -> note.Verifier:
    """A verifier from a ``.pub`` file or from a verifier-key string itself.

    A ``str`` that names an existing file is read as a file; any other ``str``
    is parsed as a verifier key. ``Path`` objects are always files. Raises
    :class:`KeyFileError`.
    """
    if isinstance(path_or_vkey, str) and not os.path.exists(path_or_vkey) and "+" in path_or_vkey:
        text, where = path_or_vkey.strip(), "verifier key"
    else:
        text, where = _read_key_file(path_or_vkey, "verifier key"), str(path_or_vkey)
    if text.startswith("PRIVATE+KEY+"):
        raise KeyFileError(f"{where}: this is a private signer key, not a verifier key")
    try:
        return note.Verifier.from_vkey(text)
    except note.NoteError as exc:
        raise KeyFileError(f"{where}: {exc}") from None
