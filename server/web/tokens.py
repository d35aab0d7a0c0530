"""Bearer tokens (RFC 6750) kept in files of mode 0600 in the data directory.

A token file that group or others may read is refused, as the ledger key is
(:mod:`labelcheck.ledger.keyfile`): either grants what the token guards.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import stat
import tempfile
from pathlib import Path

from werkzeug.exceptions import Forbidden, Unauthorized

from labelcheck.util.atomic import fsync_dir

TOKEN_BYTES = 32
TOKEN_MODE = 0o600


class TokenFileError(ValueError):
    """A token file that cannot be used: unreadable, empty, or open to others."""


def ensure_token(path: Path) -> str:
    """The token stored at ``path``; a new random one (mode 0600) when absent.

    The new token is written in full to a private temporary file, then
    hard-linked into place: processes starting together agree on one token
    and none reads a half-written file.
    """
    path = Path(path)
    if not path.exists():
        _create(path, secrets.token_urlsafe(TOKEN_BYTES) + "\n")
    return read_token(path)


def read_token(path: Path) -> str:
    """The token in ``path``. TokenFileError when the file cannot be read,
    holds no token, or may be read or written by group or others."""
    path = Path(path)
    try:
        with open(path, "rb") as fp:
            mode = stat.S_IMODE(os.fstat(fp.fileno()).st_mode)
            data = fp.read()
    except OSError as exc:
        raise TokenFileError(f"cannot read token file {path}: {exc.strerror or exc}") from None
    if mode & 0o077:
        raise TokenFileError(f"token file {path} is open to group or others (mode {mode:04o}); "
                             f"run: chmod 600 {path}")
    try:
        token = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise TokenFileError(f"token file {path} is not UTF-8 text") from None
    if not token:
        raise TokenFileError(f"token file {path} holds no token; remove it to have a new one made")
    return token


def _create(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fp:
            os.fchmod(fp.fileno(), TOKEN_MODE)
            fp.write(text.encode("ascii"))
            fp.flush()
            os.fsync(fp.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first: theirs is read
            os.link(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        raise TokenFileError(f"cannot create token file {path}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (RFC 6750 §2.1)."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require(header: str | None, expected: str, realm: str) -> None:
    """Raise 401 when no bearer token is given, 403 when it is not ``expected``.

    The comparison is constant-time (hmac.compare_digest) over UTF-8 bytes.
    """
    token = bearer(header)
    if token is None:
        exc = Unauthorized(f"this endpoint needs the {realm} bearer token")
        raise _with_challenge(exc, realm)
    if not hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8")):
        raise Forbidden(f"the bearer token is not the {realm} token")


def _with_challenge(exc: Unauthorized, realm: str) -> Unauthorized:
    # RFC 6750 §3: a 401 names the scheme it wants.
    exc.challenge = f'Bearer realm="labelcheck {realm}"'
    return exc
