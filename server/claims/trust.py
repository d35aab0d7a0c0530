"""The trust registry: which producer and propagator keys labelcheck believes.

``trust.json`` (docs/protocol.md §8)::

    {"producers": [{"name": str, "vkey": "<C2SP verifier key>",
                    "filing": str | null, "roles": ["producer" | "propagator", …],
                    "revoked_at": RFC 3339 | null}]}

Keys are looked up by key id (``name+hash8hex``, the verifier key without its
key material). Each entry keeps its parsed Ed25519 key, so verification costs
no parsing. ``version`` is the SHA-256 of the registry's canonical JSON and is
recorded with every verification so a result can be tied to the registry it
was checked against.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import nacl.exceptions
import nacl.signing

from labelcheck.ledger import note
from labelcheck.claims.core import ClaimError, _utc, format_time, loads_strict, parse_time, utc_now

ROLES = ("producer", "propagator")
PRODUCER_FIELDS = ("name", "vkey", "filing", "roles", "revoked_at")
MAX_TRUST_FILE_BYTES = 16 * 1024 * 1024


class TrustError(ValueError):
    """A bad registry entry, trust file, or registry operation.

    ``code`` is ``invalid`` (a malformed entry or file), ``duplicate`` (the
    key id is already registered), ``unknown`` (no such key id) or
    ``missing`` (no trust file); ``field`` names the offending field.
    """

    def __init__(self, code: str, message: str, *, field: str | None = None):
        super().__init__(message)
        self.code = code
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Producer:
    """One registered key: a producer's (signs claims) or a propagator's (countersigns)."""

    name: str
    vkey: str
    filing: str | None = None
    roles: tuple[str, ...] = ("producer",)
    revoked_at: datetime | None = None
    _verifier: note.Verifier = field(init=False, repr=False, compare=False, default=None)
    _verify_key: nacl.signing.VerifyKey = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or len(self.name) > 200:
            raise TrustError("invalid", "name: must be a non-empty string of at most 200 characters", field="name")
        if any(ord(c) < 0x20 for c in self.name):
            raise TrustError("invalid", "name: must not hold control characters", field="name")
        try:
            verifier = note.Verifier.from_vkey(self.vkey)
        except note.NoteError as exc:
            raise TrustError("invalid", f"vkey: {exc}", field="vkey") from None
        if self.filing is not None and not isinstance(self.filing, str):
            raise TrustError("invalid", "filing: must be a string or null", field="filing")
        roles = self.roles
        if isinstance(roles, str) or not isinstance(roles, (list, tuple)) or not roles:
            raise TrustError("invalid", f"roles: must be a non-empty list of {ROLES}", field="roles")
        for role in roles:
            if role not in ROLES:
                raise TrustError("invalid", f"roles: {role!r} is not one of {', '.join(ROLES)}", field="roles")
        if len(set(roles)) != len(roles):
            raise TrustError("invalid", "roles: lists a role twice", field="roles")
        revoked = self.revoked_at
        if revoked is not None:
            if isinstance(revoked, str):
                try:
                    revoked = parse_time(revoked)
                except ValueError as exc:
                    raise TrustError("invalid", f"revoked_at: {exc}", field="revoked_at") from None
            elif isinstance(revoked, datetime):
                revoked = _utc(revoked)
            else:
                raise TrustError("invalid", "revoked_at: must be an RFC 3339 time or null", field="revoked_at")
            revoked = revoked.replace(microsecond=0)  # whole seconds, as written back
        object.__setattr__(self, "vkey", verifier.vkey)
        object.__setattr__(self, "roles", tuple(roles))
        object.__setattr__(self, "revoked_at", revoked)
        object.__setattr__(self, "_verifier", verifier)
        object.__setattr__(self, "_verify_key", nacl.signing.VerifyKey(verifier.public_key))

    @property
    def key_id(self) -> str:
        return self._verifier.key_id

    @property
    def verifier(self) -> note.Verifier:
        return self._verifier

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True when ``signature`` is this key's Ed25519 signature of ``message``."""
        if len(signature) != 64:
            return False
        try:
            self._verify_key.verify(message, signature)
        except nacl.exceptions.BadSignatureError:
            return False
        return True

    @classmethod
    def from_dict(cls, entry: Any) -> "Producer":
        """An entry of ``trust.json``; ``name`` and ``vkey`` are required."""
        if not isinstance(entry, dict):
            raise TrustError("invalid", "a producer entry must be a JSON object")
        unknown = sorted(set(entry) - set(PRODUCER_FIELDS))
        if unknown:  # a typo like "revoked" must not silently leave a key trusted
            raise TrustError("invalid", f"unknown field {unknown[0]!r}", field=unknown[0])
        for name in ("name", "vkey"):
            if name not in entry:
                raise TrustError("invalid", f"{name}: is required", field=name)
        roles = entry.get("roles")
        return cls(
            name=entry["name"],
            vkey=entry["vkey"],
            filing=entry.get("filing"),
            roles=("producer",) if roles is None else roles,
            revoked_at=entry.get("revoked_at"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "vkey": self.vkey,
            "filing": self.filing,
            "roles": list(self.roles),
            "revoked_at": format_time(self.revoked_at) if self.revoked_at else None,
        }

    def public_dict(self) -> dict[str, Any]:
        """``to_dict`` plus the key id, as served by ``GET /v1/keys``."""
        return {"key_id": self.key_id, **self.to_dict()}


class TrustRegistry:
    """Registered keys by key id. Reads are lock-free; changes are serialised."""

    def __init__(self, producers: list[Producer] | tuple[Producer, ...] = ()):
        self._by_id: dict[str, Producer] = {}
        self._lock = threading.Lock()
        self._version: str | None = None
        for p in producers:
            self.add(p)

    # --- reading and writing -------------------------------------------------

    @classmethod
    def from_dict(cls, data: Any) -> "TrustRegistry":
        """A registry from ``{"producers": [...]}``; raises :class:`TrustError`."""
        if not isinstance(data, dict) or not isinstance(data.get("producers"), list):
            raise TrustError("invalid", 'a trust registry must be {"producers": [...]}')
        unknown = sorted(set(data) - {"producers"})
        if unknown:
            raise TrustError("invalid", f"unknown field {unknown[0]!r}", field=unknown[0])
        registry = cls()
        for i, entry in enumerate(data["producers"]):
            try:
                registry.add(Producer.from_dict(entry))
            except TrustError as exc:
                where = f"producers[{i}]" + (f".{exc.field}" if exc.field else "")
                raise TrustError(exc.code, f"producers[{i}]: {exc.message}", field=where) from None
        return registry

    def to_dict(self) -> dict[str, Any]:
        return {"producers": [p.to_dict() for p in self._by_id.values()]}

    @classmethod
    def load(cls, path: str | os.PathLike, *, missing_ok: bool = False) -> "TrustRegistry":
        """Read ``trust.json``. A missing file is an error unless ``missing_ok``.

        Raises :class:`TrustError` naming the file, the entry and the field.
        """
        path = Path(path)
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_TRUST_FILE_BYTES + 1)
        except FileNotFoundError:
            if missing_ok:
                return cls()
            raise TrustError("missing", f"trust file {path} does not exist") from None
        except OSError as exc:
            raise TrustError("invalid", f"cannot read trust file {path}: {exc.strerror}") from None
        if len(raw) > MAX_TRUST_FILE_BYTES:
            raise TrustError("invalid", f"trust file {path} is over {MAX_TRUST_FILE_BYTES} bytes")
        try:
            data = loads_strict(raw, "trust file")
        except ClaimError as exc:
            raise TrustError("invalid", f"{path}: {exc.message}") from None
        try:
            return cls.from_dict(data)
        except TrustError as exc:
            raise TrustError(exc.code, f"{path}: {exc.message}", field=exc.field) from None

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically: a temporary file, fsync, rename, fsync the directory.

        An existing file keeps its mode; a new one gets 0644 (the registry is
        public). Readers see the old file or the new one, never a mix.
        """
        path = Path(path)
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o644
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n"
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fchmod(f.fileno(), mode)
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    # --- queries -------------------------------------------------------------------

    def lookup(self, key_id: str) -> Producer | None:
        return self._by_id.get(key_id)

    @property
    def producers(self) -> list[Producer]:
        return list(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Producer]:
        return iter(self.producers)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._by_id

    @property
    def version(self) -> str:
        """SHA-256 hex of the canonical JSON (sorted keys, entries by key id).

        Independent of file layout and entry order; changes with any add or
        revocation.
        """
        version = self._version
        if version is None:
            entries = sorted((p.to_dict() for p in self._by_id.values()), key=lambda d: d["vkey"])
            canon = json.dumps({"producers": entries}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            version = self._version = hashlib.sha256(canon.encode("utf-8")).hexdigest()
        return version

    # --- changes -------------------------------------------------------------------

    def add(self, producer: Producer | dict[str, Any]) -> Producer:
        """Register a key. Raises :class:`TrustError` (a ValueError): code
        ``invalid`` for a bad entry or verifier key, ``duplicate`` when its key
        id is already registered."""
        if not isinstance(producer, Producer):
            producer = Producer.from_dict(producer)
        with self._lock:
            if producer.key_id in self._by_id:
                raise TrustError("duplicate", f"key {producer.key_id} is already registered", field="vkey")
            self._set(producer)
        return producer

    def revoke(self, key_id: str, at: datetime | str | None = None) -> Producer:
        """Mark a key revoked from ``at`` (default: now) and return its new entry.

        Claims issued at or after that time are refused. A revocation can be
        moved earlier, never later: revoking again with a later time keeps
        the earlier one. Raises :class:`TrustError` (``unknown``/``invalid``).
        """
        if isinstance(at, str):
            try:
                at = parse_time(at)
            except ValueError as exc:
                raise TrustError("invalid", f"revoked_at: {exc}", field="revoked_at") from None
        elif at is not None and not isinstance(at, datetime):
            raise TrustError("invalid", "revoked_at: must be an RFC 3339 time", field="revoked_at")
        when = _utc(at) if at else utc_now()
        when = when.replace(microsecond=0)  # the file keeps whole seconds
        with self._lock:
            current = self._by_id.get(key_id)
            if current is None:
                raise TrustError("unknown", f"key {key_id} is not registered")
            if current.revoked_at is not None and current.revoked_at <= when:
                return current
            updated = replace(current, revoked_at=when)
            self._set(updated)
        return updated

    def _set(self, producer: Producer) -> None:
        self._by_id[producer.key_id] = producer
        self._version = None
