"""Changes to the producer registry, each recorded as a ``registry`` ledger
entry (docs/protocol.md §4). Flask-free: the HTTP API and the demo both use it."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from labelcheck.claims.trust import Producer, TrustRegistry
from labelcheck.pipeline.errors import NotRegistered, RegistryConflict
from labelcheck.util.times import format_time, parse_time


@contextlib.contextmanager
def registry_lock(data_dir: Path) -> Iterator[None]:
    """An exclusive lock across processes for read-modify-write of trust.json."""
    fd = os.open(Path(data_dir) / "trust.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def load_registry(path: Path) -> TrustRegistry:
    """trust.json, or an empty registry when there is none yet."""
    if not path.exists():
        return TrustRegistry.from_dict({"producers": []})
    return TrustRegistry.load(path)


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
