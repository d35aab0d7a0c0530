"""Where the producer registry is kept (docs/protocol.md §8, §11).

A ``RegistryStore`` hands out the current registry (``current()``, cheap
enough for every request) and applies changes (``change(mutate)``): under
one lock across every process (and every node) sharing the store, it reads
the registry, lets ``mutate(registry) -> ledger record | None`` change it,
keeps the change and appends the ``registry`` ledger entry, so that a change
is in force exactly when its entry is on the ledger.

- ``FileRegistryStore``: ``trust.json`` in the data directory, changed under
  ``trust.lock`` (flock) and written atomically; re-read when the file
  changes on disk, so every worker sees every other's changes.
- ``registry_pg.PgRegistryStore``: tables in the PostgreSQL database shared
  by every server node (``--database``).

``registry.open_registry_store(cfg)`` picks one by ``cfg.database``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labelcheck.claims.trust import TrustRegistry
from labelcheck.util.locks import file_lock

log = logging.getLogger("labelcheck")

Mutate = Callable[[TrustRegistry], "dict | None"]


class RegistryStore:
    """The interface both stores implement."""

    def current(self) -> TrustRegistry:
        """The registry now (at most the store's staleness bound old).
        A registry that cannot be read at the first call raises; later, the
        last good one is kept and the failure logged."""
        raise NotImplementedError

    def change(self, mutate: Mutate, ledger: Callable[[], Any]) -> tuple[Any, Any]:
        """Apply ``mutate`` and append its record to ``ledger()``, both or
        neither: ``(record, receipt)``, or ``(None, None)`` when ``mutate``
        found nothing to change. Exceptions from ``mutate`` or the append
        leave the registry as it was."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections (nothing for a file)."""


def registry_lock(data_dir: Path):
    """An exclusive lock across processes for read-modify-write of trust.json."""
    return file_lock(Path(data_dir) / "trust.lock")


def load_registry(path: Path) -> TrustRegistry:
    """trust.json, or an empty registry when there is none yet."""
    if not path.exists():
        return TrustRegistry.from_dict({"producers": []})
    return TrustRegistry.load(path)


class FileRegistryStore(RegistryStore):
    """``trust.json`` (see the module docstring)."""

    def __init__(self, data_dir: Path, path: Path) -> None:
        self.data_dir = Path(data_dir)
        self.path = Path(path)
        self._lock = threading.Lock()
        self._registry: TrustRegistry | None = None
        self._stamp = None

    def current(self) -> TrustRegistry:
        stamp = _stat_stamp(self.path)
        if self._registry is None or stamp != self._stamp:
            with self._lock:
                if self._registry is None or stamp != self._stamp:
                    self._reload(stamp)
        return self._registry

    def _reload(self, stamp) -> None:
        """Read trust.json. A file damaged while serving (a hand edit gone
        wrong) keeps the last good registry, loudly; at start-up it is fatal."""
        try:
            self._registry = load_registry(self.path)
        except ValueError as exc:
            if self._registry is None:
                raise
            log.error("keeping the last good trust registry: %s", exc)
        self._stamp = stamp

    def change(self, mutate: Mutate, ledger: Callable[[], Any]) -> tuple[Any, Any]:
        """Save trust.json atomically, then append; if the append fails,
        trust.json is put back as it was."""
        path = self.path
        with registry_lock(self.data_dir):
            before = path.read_bytes() if path.exists() else None
            registry = load_registry(path)
            record = mutate(registry)
            if record is None:
                return None, None
            registry.save(path)
            try:
                receipt = ledger().append([record])[0]
            except BaseException:
                if before is None:
                    path.unlink(missing_ok=True)
                else:
                    TrustRegistry.parse(before, str(path)).save(path)
                raise
        return record, receipt


def _stat_stamp(path: Path):
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)
