"""C2SP signed notes (https://c2sp.org/signed-note), Ed25519 only.

Byte-compatible with Go's ``golang.org/x/mod/sumdb/note``:

* signer key   ``PRIVATE+KEY+<name>+<hash8hex>+<base64(0x01 || seed32)>``
* verifier key ``<name>+<hash8hex>+<base64(0x01 || pub32)>``
* key hash     first 4 bytes (big-endian uint32) of
  ``SHA-256(name || 0x0A || 0x01 || pub32)``
* a note is its text (UTF-8, ending in a newline), a blank line, then one
  line per signature: ``— <name> <base64(keyhash4 || sig64)>``.

The key id used across labelcheck is ``<name>+<hash8hex>``: the verifier key
without its key material.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass, field

import nacl.exceptions
import nacl.signing

from labelcheck.util import b64

ALG_ED25519 = 0x01
SIG_PREFIX = "\u2014 "  # em dash and space, as in the spec
MAX_SIGNATURES = 100  # Go's note.Open refuses more; so do we


class NoteError(ValueError):
    """A malformed key or note, or a signature that does not verify."""


class UnverifiedNoteError(NoteError):
    """The note is well formed but carries no signature by a known key."""

    def __init__(self, note: "Note"):
        super().__init__("note has no valid signature by a known key")
        self.note = note


def is_valid_name(name: str) -> bool:
    """A key name is non-empty, has no '+' and no white space (C2SP §Keys)."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def key_hash(name: str, key: bytes) -> int:
    """The 32-bit key hash of ``name`` and ``key`` (algorithm byte + public key)."""
    digest = hashlib.sha256(name.encode() + b"\n" + key).digest()
    return struct.unpack(">I", digest[:4])[0]


def key_id(name: str, hash32: int) -> str:
    """``name+hash8hex``: the verifier key without its key material."""
    return f"{name}+{hash32:08x}"


def _b64decode(text: str) -> bytes:
    try:
        return b64.decode(text)
    except ValueError as exc:
        raise NoteError(f"not standard base64: {text[:40]!r}") from exc


def split_key(text: str, parts: int, what: str) -> list[str]:
    """The ``parts`` '+'-separated fields of a C2SP key string (the last,
    base64 key data, may itself hold '+')."""
    fields = text.split("+", parts - 1)  # base64 key data may itself hold '+'
    if len(fields) != parts:
        raise NoteError(f"malformed {what}: expected {parts} '+'-separated fields")
    return fields


def parse_hash(text: str, what: str) -> int:
    """A key hash written as 8 lowercase hex digits."""
    if len(text) != 8 or any(c not in "0123456789abcdef" for c in text):
        raise NoteError(f"malformed {what}: key hash must be 8 lowercase hex digits")
    return int(text, 16)


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is a valid Ed25519 (RFC 8032) signature of ``message``."""
    if len(signature) != 64:
        return False
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except nacl.exceptions.BadSignatureError:
        return False
    return True


@dataclass(frozen=True)
class Verifier:
    """An Ed25519 verifier parsed from a C2SP verifier-key string."""

    name: str
    hash: int
    public_key: bytes  # 32 bytes

    def __post_init__(self):
        if not isinstance(self.name, str) or not is_valid_name(self.name):
            raise NoteError(f"invalid key name {self.name!r}: no '+', no white space, not empty")
        if not isinstance(self.public_key, bytes) or len(self.public_key) != 32:
            raise NoteError("an Ed25519 public key is 32 bytes")

    @classmethod
    def from_vkey(cls, vkey: str) -> "Verifier":
        """Parse ``<name>+<hash>+<base64(0x01||pub)>``; the hash must match."""
        if not isinstance(vkey, str):
            raise NoteError("verifier key must be a string")
        name, hash_hex, data = split_key(vkey.strip(), 3, "verifier key")
        if not is_valid_name(name):
            raise NoteError(f"malformed verifier key: invalid name {name!r}")
        want = parse_hash(hash_hex, "verifier key")
        raw = _b64decode(data)
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("malformed verifier key: want 0x01 followed by a 32-byte Ed25519 key")
        if key_hash(name, raw) != want:
            raise NoteError("malformed verifier key: key hash does not match name and key")
        return cls(name, want, raw[1:])

    @property
    def key_id(self) -> str:
        return key_id(self.name, self.hash)

    @property
    def vkey(self) -> str:
        data = b64.encode(bytes([ALG_ED25519]) + self.public_key)
        return f"{self.key_id}+{data}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True when ``signature`` is a valid Ed25519 signature of ``message``."""
        return ed25519_verify(self.public_key, message, signature)


@dataclass(frozen=True)
class Signer:
    """An Ed25519 signer parsed from (or written as) a C2SP signer-key string."""

    name: str
    hash: int
    seed: bytes  # 32 bytes
    _key: nacl.signing.SigningKey = field(repr=False, compare=False, default=None)

    def __post_init__(self):
        if not isinstance(self.name, str) or not is_valid_name(self.name):
            raise NoteError(f"invalid key name {self.name!r}: no '+', no white space, not empty")
        if not isinstance(self.seed, bytes) or len(self.seed) != 32:
            raise NoteError("an Ed25519 seed is 32 bytes")
        object.__setattr__(self, "_key", nacl.signing.SigningKey(self.seed))

    @classmethod
    def generate(cls, name: str) -> "Signer":
        """A fresh key pair named ``name``."""
        if not is_valid_name(name):
            raise NoteError(f"invalid key name {name!r}: no '+', no white space, not empty")
        seed = nacl.signing.SigningKey.generate().encode()
        pub = nacl.signing.SigningKey(seed).verify_key.encode()
        return cls(name, key_hash(name, bytes([ALG_ED25519]) + pub), seed)

    @classmethod
    def from_skey(cls, skey: str) -> "Signer":
        """Parse ``PRIVATE+KEY+<name>+<hash>+<base64(0x01||seed)>``."""
        if not isinstance(skey, str):
            raise NoteError("signer key must be a string")
        p1, p2, name, hash_hex, data = split_key(skey.strip(), 5, "signer key")
        if (p1, p2) != ("PRIVATE", "KEY"):
            raise NoteError("malformed signer key: must start with PRIVATE+KEY+")
        if not is_valid_name(name):
            raise NoteError(f"malformed signer key: invalid name {name!r}")
        want = parse_hash(hash_hex, "signer key")
        raw = _b64decode(data)
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("malformed signer key: want 0x01 followed by a 32-byte seed")
        signer = cls(name, want, raw[1:])
        if key_hash(name, bytes([ALG_ED25519]) + signer.public_key) != want:
            raise NoteError("malformed signer key: key hash does not match name and key")
        return signer

    @property
    def public_key(self) -> bytes:
        return self._key.verify_key.encode()

    @property
    def key_id(self) -> str:
        return key_id(self.name, self.hash)

    @property
    def skey(self) -> str:
        data = b64.encode(bytes([ALG_ED25519]) + self.seed)
        return f"PRIVATE+KEY+{self.key_id}+{data}"

    @property
    def vkey(self) -> str:
        return self.verifier().vkey

    def verifier(self) -> Verifier:
        return Verifier(self.name, self.hash, self.public_key)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message`` (RFC 8032 §5.1.6)."""
        return self._key.sign(message).signature


@dataclass(frozen=True)
class Signature:
    name: str
    hash: int
    base64: str


@dataclass
class Note:
    """An opened note: its text and the signatures found on it."""

    text: str
    sigs: list[Signature] = field(default_factory=list)
    unverified_sigs: list[Signature] = field(default_factory=list)


_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")  # control characters but newline


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end in a newline")
    if _CONTROL.search(text):
        raise NoteError("note text must not hold control characters other than newline")


def sign(text: str, *signers: Signer) -> bytes:
    """Sign ``text`` with every signer; returns the note's exact bytes."""
    _check_text(text)
    body = text.encode("utf-8")
    lines = []
    for s in signers:
        sig = struct.pack(">I", s.hash) + s.sign(body)
        lines.append(f"{SIG_PREFIX}{s.name} {b64.encode(sig)}\n")
    return body + b"\n" + "".join(lines).encode("utf-8")


def open_note(msg: bytes, verifiers: list[Verifier] | tuple[Verifier, ...]) -> Note:
    """Parse ``msg`` and check its signatures against ``verifiers``.

    As Go's ``note.Open``: signatures by unknown keys are kept as unverified
    and otherwise ignored; a signature by a known key that does not verify is
    an error; a note with no verified signature raises UnverifiedNoteError.
    """
    try:
        whole = msg.decode("utf-8")
    except (UnicodeDecodeError, AttributeError) as exc:
        raise NoteError("note is not valid UTF-8") from exc
    if any(ord(c) < 0x20 and c != "\n" for c in whole):
        raise NoteError("note holds control characters other than newline")
    split = whole.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no signature block after a blank line")
    text, block = whole[: split + 1], whole[split + 2 :]
    if not block.endswith("\n"):
        raise NoteError("signature block must end in a newline")
    known: dict[tuple[str, int], Verifier] = {}
    ambiguous = set()
    for v in verifiers:
        other = known.setdefault((v.name, v.hash), v)
        if other.public_key != v.public_key:  # as Go: two keys, one name and hash
            ambiguous.add((v.name, v.hash))
    note, seen, count = Note(text), set(), 0
    body = text.encode("utf-8")
    for line in block[:-1].split("\n"):
        name, sig, text64 = _parse_sig_line(line)
        count += 1
        if count > MAX_SIGNATURES:
            raise NoteError(f"note has more than {MAX_SIGNATURES} signatures")
        hash32 = struct.unpack(">I", sig[:4])[0]
        entry = Signature(name, hash32, text64)
        v = known.get((name, hash32))
        if (name, hash32) in ambiguous:
            raise NoteError(f"ambiguous verifier: several keys named {key_id(name, hash32)}")
        if v is None:
            if entry not in note.unverified_sigs:
                note.unverified_sigs.append(entry)
            continue
        if (name, hash32) in seen:
            continue
        seen.add((name, hash32))
        if not v.verify(body, sig[4:]):
            raise NoteError(f"invalid signature by {v.key_id}")
        note.sigs.append(entry)
    if not note.sigs:
        raise UnverifiedNoteError(note)
    return note


def _parse_sig_line(line: str) -> tuple[str, bytes, str]:
    if not line.startswith(SIG_PREFIX):
        raise NoteError("signature line must start with an em dash and a space")
    name, _, text64 = line[len(SIG_PREFIX) :].partition(" ")
    if not is_valid_name(name) or not text64:
        raise NoteError(f"malformed signature line: {line[:80]!r}")
    sig = _b64decode(text64)
    if len(sig) < 5:
        raise NoteError("signature too short")
    return name, sig, text64
