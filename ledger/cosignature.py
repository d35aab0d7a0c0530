"""Witness cosignatures: C2SP tlog-cosignature, Ed25519 ``cosignature/v1``.

A cosignature is a signed-note signature line on a checkpoint::

    — <witness name> base64(keyhash(4) || timestamp(8, big endian) || Ed25519 sig(64))

where ``keyhash = SHA-256(name || "\\n" || 0x04 || pub32)[:4]`` and the
signature covers ``"cosignature/v1\\n" "time <t>\\n"`` followed by the whole
checkpoint body (the note text, final newline included, no signature lines).
Keys use the C2SP verifier-key and signer-key strings with type byte 0x04,
so :class:`CosignatureVerifier` can be handed to :func:`note.open_note`
beside the log's own verifier (docs/protocol.md §10).
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

import nacl.signing

from labelcheck.util import b64

from . import note

ALG_COSIGNATURE_V1 = 0x04
HEADER = b"cosignature/v1\n"
MAX_TIMESTAMP = 2**63 - 1


def signed_message(body: bytes, timestamp: int) -> bytes:
    """The bytes a cosigner signs (tlog-cosignature, "Ed25519 signed message")."""
    return HEADER + b"time %d\n" % timestamp + body


def _parse_key(text: str, parts: int, what: str) -> tuple[list[str], bytes]:
    """The fields and the decoded key data of a cosignature/v1 key string."""
    if not isinstance(text, str):
        raise note.NoteError(f"{what} must be a string")
    fields = note.split_key(text.strip(), parts, what)
    try:
        raw = b64.decode(fields[-1])
    except ValueError:
        raise note.NoteError(f"malformed {what}: key data is not standard base64") from None
    if len(raw) != 33 or raw[0] != ALG_COSIGNATURE_V1:
        raise note.NoteError(f"malformed {what}: want 0x04 (cosignature/v1) and a 32-byte Ed25519 key")
    if not note.is_valid_name(fields[-3]):
        raise note.NoteError(f"malformed {what}: invalid name {fields[-3]!r}")
    note.parse_hash(fields[-2], what)
    return fields, raw


@dataclass(frozen=True)
class CosignatureVerifier:
    """A witness's public key. Duck-compatible with :class:`note.Verifier`:
    ``open_note`` accepts it and calls :meth:`verify` with the note body and
    the signature after the key hash."""

    name: str
    hash: int
    public_key: bytes

    @classmethod
    def from_vkey(cls, vkey: str) -> "CosignatureVerifier":
        """Parse ``<name>+<hash>+<base64(0x04||pub)>``; the hash must match."""
        fields, raw = _parse_key(vkey, 3, "witness verifier key")
        want = int(fields[1], 16)
        if note.key_hash(fields[0], raw) != want:
            raise note.NoteError("malformed witness verifier key: key hash does not match name and key")
        return cls(fields[0], want, raw[1:])

    @property
    def key_id(self) -> str:
        return note.key_id(self.name, self.hash)

    @property
    def vkey(self) -> str:
        return f"{self.key_id}+{b64.encode(bytes([ALG_COSIGNATURE_V1]) + self.public_key)}"

    def verify(self, body: bytes, signature: bytes) -> bool:
        """True when ``signature`` (timestamp ‖ Ed25519 signature) cosigns ``body``."""
        if len(signature) != 72:
            return False
        (timestamp,) = struct.unpack(">Q", signature[:8])
        if timestamp > MAX_TIMESTAMP:
            return False
        return note.ed25519_verify(self.public_key, signed_message(body, timestamp), signature[8:])


@dataclass(frozen=True)
class CosignatureSigner:
    """A witness's signing key (seed), written as ``PRIVATE+KEY+name+hash+base64(0x04||seed)``."""

    name: str
    hash: int
    seed: bytes

    @classmethod
    def generate(cls, name: str) -> "CosignatureSigner":
        if not note.is_valid_name(name):
            raise note.NoteError(f"invalid key name {name!r}: no '+', no white space, not empty")
        seed = nacl.signing.SigningKey.generate().encode()
        pub = nacl.signing.SigningKey(seed).verify_key.encode()
        return cls(name, note.key_hash(name, bytes([ALG_COSIGNATURE_V1]) + pub), seed)

    @classmethod
    def from_skey(cls, skey: str) -> "CosignatureSigner":
        fields, raw = _parse_key(skey, 5, "witness signer key")
        if fields[0] != "PRIVATE" or fields[1] != "KEY":
            raise note.NoteError("malformed witness signer key: must start with PRIVATE+KEY+")
        signer = cls(fields[2], int(fields[3], 16), raw[1:])
        if note.key_hash(signer.name, bytes([ALG_COSIGNATURE_V1]) + signer.public_key) != signer.hash:
            raise note.NoteError("malformed witness signer key: key hash does not match name and key")
        return signer

    @property
    def public_key(self) -> bytes:
        return nacl.signing.SigningKey(self.seed).verify_key.encode()

    @property
    def key_id(self) -> str:
        return note.key_id(self.name, self.hash)

    @property
    def skey(self) -> str:
        return f"PRIVATE+KEY+{self.key_id}+{b64.encode(bytes([ALG_COSIGNATURE_V1]) + self.seed)}"

    @property
    def vkey(self) -> str:
        return self.verifier().vkey

    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(self.name, self.hash, self.public_key)

    def cosign(self, body: bytes, timestamp: int | None = None) -> str:
        """The signature line (with its newline) cosigning the note ``body``."""
        when = int(time.time()) if timestamp is None else timestamp
        if not 0 < when <= MAX_TIMESTAMP:
            raise ValueError("a cosignature timestamp is a positive POSIX time")
        sig = nacl.signing.SigningKey(self.seed).sign(signed_message(body, when)).signature
        blob = struct.pack(">IQ", self.hash, when) + sig
        return f"{note.SIG_PREFIX}{self.name} {b64.encode(blob)}\n"


def timestamp(signature_b64: str) -> int:
    """The timestamp inside a cosignature's base64 (after the 4-byte key hash)."""
    raw = b64.decode(signature_b64)
    if len(raw) != 4 + 72:
        raise ValueError("not an Ed25519 cosignature/v1 (want 76 bytes)")
    return struct.unpack(">Q", raw[4:12])[0]


def add_signatures(signed_note: bytes, lines: str | bytes) -> bytes:
    """``signed_note`` with more signature lines appended (each ends in ``\\n``)."""
    extra = lines.encode("utf-8") if isinstance(lines, str) else lines
    if extra and not extra.endswith(b"\n"):
        raise note.NoteError("signature lines must end in a newline")
    return signed_note + extra
