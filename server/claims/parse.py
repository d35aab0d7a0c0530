"""A claim's structure checked without keys: :func:`parse_envelope` (docs/protocol.md §2)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from labelcheck.claims.envelope import decode_envelope
from labelcheck.claims.payload import decode_payload, payload_problems
from labelcheck.claims.verdict import LABEL_CATEGORY


@dataclass(frozen=True)
class ParsedClaim:
    """A structurally valid claim; its signatures are not yet checked."""

    payload_type: str
    payload: bytes
    body: dict[str, Any]
    signatures: tuple[tuple[str, bytes], ...]
    issued_at: datetime
    expires_at: datetime | None

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.payload).hexdigest()

    @property
    def id(self) -> str:
        return self.body["id"]

    @property
    def issuer(self) -> str:
        return self.body["issuer"]

    @property
    def keyids(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.signatures)

    @property
    def content_sha256(self) -> str:
        return self.body["content"]["sha256"]

    @property
    def media_type(self) -> str:
        return self.body["content"]["media_type"]

    @property
    def label(self) -> dict[str, Any]:
        return self.body["aigc"]

    @property
    def category(self) -> str:
        return LABEL_CATEGORY[self.body["aigc"]["Label"]]


def parse_envelope(data: bytes | str | dict) -> ParsedClaim:
    """Decode and check a claim's structure (no keys needed).

    Raises :class:`~labelcheck.claims.errors.ClaimError` with the first
    problem found: ``oversized``, ``malformed`` (with ``detail``),
    ``issuer_not_signer``, ``label_invalid`` or ``consent_missing``, naming
    the field and why.
    """
    env = decode_envelope(data)
    body = decode_payload(env.payload)
    parsed, problems = payload_problems(body, env.keyids)
    if problems:
        raise problems[0]
    return ParsedClaim(env.payload_type, env.payload, body, env.signatures,
                       parsed["issued_at"], parsed.get("expires_at"))
