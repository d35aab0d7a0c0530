"""Key files in the C2SP signed-note key formats (docs/protocol.md §2, §8).

A signer key file holds the signer key of Go's ``golang.org/x/mod/sumdb/note``
(``PRIVATE+KEY+name+hash+base64(0x01||seed)``), a ``.pub`` file the verifier
key (``name+hash+base64(0x01||pub)``), so the ledger key and producer keys
share one format and interoperate with Go's note tooling. The formats live
in :mod:`labelcheck.ledger.note`; this module reads and writes the files.

* The ledger key (:func:`load`, :func:`load_or_create`): mode 0600, created
  on first use. Several processes may start at once (gunicorn workers), so
  the key is written in full to a private temporary file and hard-linked
  into place: the link succeeds, or another process won and its key is read.
* Producer keys (:func:`generate_key`, :func:`write_key_pair`,
  :func:`load_signer`, :func:`load_verifier`): ``NAME.key`` (0600) and
  ``NAME.pub`` under an output folder. A key name may hold ``/``
  (``example.com/acme``, as in C2SP names); the files then go into
  sub-folders, never outside the output folder.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from labelcheck.util.atomic import fsync_dir

from . import note

KEY_MODE = 0o600
KEY_SUFFIX = ".key"
PUB_SUFFIX = ".pub"
MAX_KEY_FILE_BYTES = 4096  # a key line is < 200 bytes; refuse to slurp big files


class KeyFileError(ValueError):
    """A key file that is missing, unreadable, unsafe, or does not hold a
    valid key; or a key name that cannot be a file name."""


# --- the ledger key ------------------------------------------------------------


def load(path: str | os.PathLike) -> note.Signer:
    """The ledger's signer key; refused when others may read the file."""
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
        _create_shared(path, generate_key(name).skey + "\n")
    return load(path)


def _create_shared(path: Path, text: str) -> None:
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
        fsync_dir(path.parent)
    except OSError as exc:
        raise KeyFileError(f"cannot create ledger key {path}: {exc}") from exc
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


# --- producer keys ----------------------------------------------------------------


def generate_key(name: str) -> note.Signer:
    """A fresh Ed25519 key named ``name`` (no '+', no white space, not empty).

    Raises :class:`KeyFileError` for an invalid name.
    """
    try:
        return note.Signer.generate(name)
    except note.NoteError as exc:
        raise KeyFileError(str(exc)) from None


def key_pair_paths(name: str, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """``out_dir/NAME.key`` and ``out_dir/NAME.pub``, ``/`` in NAME making folders.

    Raises :class:`KeyFileError` when a part of NAME is empty, ``.`` or
    ``..`` (which includes an absolute NAME): such a NAME would place the
    files elsewhere than under ``out_dir``.
    """
    if "\0" in name:
        raise KeyFileError(f"key name {name!r} holds a NUL character, which no file name can")
    if name.startswith("/"):
        raise KeyFileError(f"key name {name!r} is an absolute path; its files must stay inside {out_dir}")
    parts = name.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            why = "an empty part" if not part else f"a {part!r} part"
            raise KeyFileError(f"key name {name!r} has {why}; its files must stay inside {out_dir}")
    folder = Path(out_dir).joinpath(*parts[:-1])
    return folder / f"{parts[-1]}{KEY_SUFFIX}", folder / f"{parts[-1]}{PUB_SUFFIX}"


def write_key_pair(signer: note.Signer, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``out_dir/NAME.key`` (mode 0600) and ``out_dir/NAME.pub``.

    The private key file is created with mode 0600 by ``open(2)`` itself, so
    it is never readable by others, not even between create and chmod. Neither
    file is overwritten: an existing key is someone's identity. Folders named
    by ``/`` in NAME are created; one that leads outside ``out_dir`` (a
    symbolic link) is refused. Raises :class:`KeyFileError` when a file
    exists, NAME cannot be a path under ``out_dir``, or a folder is unusable.
    """
    key_path, pub_path = key_pair_paths(signer.name, out_dir)
    _make_folders_inside(Path(out_dir), key_path.parent)
    for path in (key_path, pub_path):
        if os.path.lexists(path):
            raise KeyFileError(f"{path} already exists; refusing to overwrite a key")
    _write_new(key_path, signer.skey + "\n", KEY_MODE)
    try:
        _write_new(pub_path, signer.vkey + "\n", 0o644)
    except KeyFileError:
        key_path.unlink(missing_ok=True)  # no half-written pair left behind
        raise
    return key_path, pub_path


def _make_folders_inside(out: Path, folder: Path) -> None:
    """Create ``out`` and ``folder`` (below it), refusing any folder that
    resolves outside ``out``: checked before each folder is used."""
    current = out
    try:
        out.mkdir(parents=True, exist_ok=True)
        root = out.resolve(strict=True)
        for part in folder.relative_to(out).parts:
            current = current / part
            if os.path.lexists(current) and not current.resolve().is_relative_to(root):
                raise KeyFileError(f"{current} leads outside {out}; refusing to write a key there")
            current.mkdir(exist_ok=True)
    except OSError as exc:
        raise KeyFileError(f"cannot create directory {current}: {exc.strerror}") from None


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


def load_signer(path: str | os.PathLike, parse=note.Signer.from_skey):
    """Read a signer key file (``PRIVATE+KEY+…``) with ``parse`` (a note
    signer by default; a witness's cosignature signer is parsed the same way
    from its own type byte). Raises :class:`KeyFileError`."""
    text = _read_key_file(path, "signer key")
    try:
        return parse(text)
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
