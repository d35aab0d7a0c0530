"""Bearer tokens (RFC 6750) kept in files of mode 0600 in the data directory."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from werkzeug.exceptions import Forbidden, Unauthorized

TOKEN_BYTES = 32


def ensure_token(path: Path) -> str:
    """The token stored at ``path``; a new random one (mode 0600) when absent.

    Created with O_EXCL so that processes starting together agree on one token.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_token(path)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with os.fdopen(fd, "w") as fp:
        fp.write(token + "\n")
    return token


def read_token(path: Path) -> str:
    token = Path(path).read_text(encoding="utf-8").strip()
    if not token:
        raise ValueError(f"{path} holds no token")
    return token


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
