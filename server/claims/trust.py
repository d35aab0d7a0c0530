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
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import nacl.signing

from labelcheck.ledger import note
from labelcheck.claims import sigcache
from labelcheck.claims.errors import ClaimError
from labelcheck.claims.strictjson import loads_strict
from labelcheck.util.atomic import write_text
from labelcheck.util.text import is_unicode
from labelcheck.util.times import as_utc, format_time, parse_time, utc_now

ROLES = ("producer", "propagator")
PRODUCER_FIELDS = ("name", "vkey", "filing", "roles", "revoked_at")
MAX_TRUST_FILE_BYTES = 16 * 1024 * 1024
MAX_TEXT = 200  # characters of a name or a filing number


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
        _check_text("name", self.name, required=True)
        try:
            verifier = note.Verifier.from_vkey(self.vkey)
        except note.NoteError as exc:
            raise TrustError("invalid", f"vkey: {exc}", field="vkey") from None
        if self.filing is not None:
            _check_text("filing", self.filing, required=False)
        roles = self.roles
        if isinstance(roles, str) or not isinstance(roles, (list, tuple)) or not roles:
            raise TrustError("invalid", f"roles: must be a non-empty list of {ROLES}", field="roles")
        for role in roles:
            if role not in ROLES:
                raise TrustError("invalid", f"roles: {_quote(role)} is not one of {', '.join(ROLES)}", field="roles")
        if len(set(roles)) != len(roles):
            raise TrustError("invalid", "roles: lists a role twice", field="roles")
        revoked = None if self.revoked_at is None else revocation_time(self.revoked_at)
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
        return sigcache.verify(self._verify_key, message, signature)

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
        return cls.parse(raw, str(path))

    @classmethod
    def parse(cls, raw: bytes, source: str = "trust.json") -> "TrustRegistry":
        """A registry from the bytes of a ``trust.json`` document, wherever it
        is stored; errors name ``source``, the entry and the field."""
        if len(raw) > MAX_TRUST_FILE_BYTES:
            raise TrustError("invalid", f"trust file {source} is over {MAX_TRUST_FILE_BYTES} bytes")
        try:
            data = loads_strict(raw, "trust file")
        except ClaimError as exc:
            raise TrustError("invalid", f"{source}: {exc.message}") from None
        try:
            return cls.from_dict(data)
        except TrustError as exc:
            raise TrustError(exc.code, f"{source}: {exc.message}", field=exc.field) from None

    def to_json(self) -> str:
        """The ``trust.json`` text (indented, entries in registration order)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n"

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically (:mod:`labelcheck.util.atomic`): readers see the
        old file or the new one, never a mix. An existing file keeps its
        mode; a new one gets 0644 (the registry is public)."""
        write_text(path, self.to_json(), default_mode=0o644)

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
            version = self._version = hashlib.sha256(self.canonical_json()).hexdigest()
        return version

    def canonical_json(self) -> bytes:
        """What ``version`` hashes (docs/protocol.md §4): ``{"producers": [...]}``
        with sorted keys, no white space, non-ASCII as itself, entries by vkey.
        The same bytes whichever store holds the registry."""
        entries = sorted((p.to_dict() for p in self._by_id.values()), key=lambda d: d["vkey"])
        canon = json.dumps({"producers": entries}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return canon.encode("utf-8")

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
        when = utc_now().replace(microsecond=0) if at is None else revocation_time(at)
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


def revocation_time(value: Any) -> datetime:
    """``revoked_at`` as an aware UTC datetime in whole seconds (the file's
    precision): an RFC 3339 UTC string (RFC 3339 §5.6) or a datetime.
    Raises :class:`TrustError` (``invalid``)."""
    if isinstance(value, str):
        try:
            when = parse_time(value, utc_only=True)
        except ValueError as exc:
            raise TrustError("invalid", f"revoked_at: {exc}", field="revoked_at") from None
    elif isinstance(value, datetime):
        try:
            when = as_utc(value)
        except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is before year 1 in UTC
            raise TrustError("invalid", "revoked_at: out of range in UTC", field="revoked_at") from None
    else:
        raise TrustError("invalid", "revoked_at: must be an RFC 3339 time or null", field="revoked_at")
    return when.replace(microsecond=0)


def _check_text(name: str, value: Any, *, required: bool) -> None:
    """A name or filing: Unicode text (no lone surrogates, which UTF-8 cannot
    carry) of at most MAX_TEXT characters, without control characters."""
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > MAX_TEXT:
        empty = "non-empty " if required else ""
        null = " or null" if not required else ""
        raise TrustError("invalid", f"{name}: must be a {empty}string of at most {MAX_TEXT} characters{null}",
                         field=name)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise TrustError("invalid", f"{name}: must not hold control characters", field=name)
    if not is_unicode(value):
        raise TrustError("invalid", f"{name}: must be Unicode text (it holds a lone surrogate)", field=name)


def _quote(value: Any) -> str:
    """``value`` for a message, safe to print whatever it holds."""
    return ascii(value)[:60] if isinstance(value, str) else type(value).__name__
