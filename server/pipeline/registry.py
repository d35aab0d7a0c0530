"""Changes to the producer registry, each recorded as a ``registry`` ledger
entry (docs/protocol.md §4), and the store that keeps it (trust.json or
PostgreSQL, §11). Flask-free: the HTTP API and the demo both use it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from labelcheck.claims.trust import Producer, TrustError, TrustRegistry
from labelcheck.pipeline.config import Config
from labelcheck.pipeline.errors import InvalidRequest, NotRegistered, RegistryConflict
from labelcheck.pipeline.registry_pg import PgRegistryStore
from labelcheck.pipeline.registry_store import FileRegistryStore, RegistryStore, load_registry, registry_lock
from labelcheck.util.times import format_time, parse_time

__all__ = ["load_registry", "open_registry_store", "producer_json", "registry_add", "registry_lock",
           "registry_record", "registry_revoke"]


def open_registry_store(cfg: Config, ledger: Callable[[], Any] | None = None) -> RegistryStore:
    """Where ``cfg`` keeps the registry: PostgreSQL with ``cfg.database``
    (trust.json in the data directory imported once), else trust.json.
    ``ledger()``: the ledger, to settle a change a stopped node left."""
    if cfg.database:
        return PgRegistryStore(cfg.database, import_from=cfg.trust_path, ledger=ledger)
    return FileRegistryStore(cfg.data_dir, cfg.trust_path)


def producer_json(producer: Producer) -> dict:
    """A trust.json producer object plus its key id."""
    return producer.public_dict()


def registry_record(action: str, producer: Producer, registry: TrustRegistry, now: str) -> dict:
    """The ``registry`` ledger entry of one change (no floats, protocol §4)."""
    return {"kind": "registry", "action": action, "time": now,
            "producer": producer_json(producer), "registry_version": registry.version}


def registry_add(registry: TrustRegistry, producer: Producer, now: str) -> dict:
    """Register ``producer``; RegistryConflict when its key id already is."""
    if registry.lookup(producer.key_id) is not None:
        raise RegistryConflict(f"a producer with key id {producer.key_id} is already registered")
    registry.add(producer)
    return registry_record("add", registry.lookup(producer.key_id), registry, now)


def registry_revoke(registry: TrustRegistry, key_id: str, at: str, now: str) -> dict:
    """Revoke from ``at``; a revocation may move earlier, never later."""
    producer = registry.lookup(key_id)
    if producer is None:
        raise NotRegistered(f"no producer with key id {key_id!r} is registered")
    if producer.revoked_at is not None and producer.revoked_at <= parse_time(at, utc_only=True):
        raise RegistryConflict(f"{key_id} is already revoked from {format_time(producer.revoked_at)}")
    registry.revoke(key_id, at)
    return registry_record("revoke", registry.lookup(key_id), registry, now)


def parse_producer(body: object) -> Producer:
    """A trust.json producer object from a request body; InvalidRequest when unusable."""
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be one producer object")
    entry = dict(body)
    key_id = entry.pop("key_id", None)
    try:
        producer = Producer.from_dict(entry)
    except TrustError as exc:
        raise InvalidRequest(f"not a usable producer: {exc}") from None
    if key_id is not None and key_id != producer.key_id:
        raise InvalidRequest(f"key_id does not match the vkey (its key id is {producer.key_id})")
    return producer


def parse_revoke(body: object) -> str | None:
    """``revoked_at`` (RFC 3339) from a revoke body, or None for now."""
    if not isinstance(body, dict) or set(body) - {"revoked_at"}:
        raise InvalidRequest('the body must be {} or {"revoked_at": "<RFC 3339 time>"}')
    at = body.get("revoked_at")
    if at is None:
        return None
    try:
        return format_time(parse_time(at, utc_only=True))
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"revoked_at must be an RFC 3339 time, e.g. 2025-09-01T00:00:00Z: {exc}") from None
