"""Changes to the producer registry, each recorded as a ``registry`` ledger
entry (docs/protocol.md §4), and the store that keeps it (trust.json or
PostgreSQL, §11). Flask-free: the HTTP API and the demo both use it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from labelcheck.claims.trust import Producer, TrustRegistry
from labelcheck.pipeline.config import Config
from labelcheck.pipeline.errors import NotRegistered, RegistryConflict
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
