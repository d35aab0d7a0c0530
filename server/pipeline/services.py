"""What one server process holds: its config, the ledger (opened lazily, per
process, so no SQLite connection crosses a gunicorn fork), the trust registry
(re-read whenever trust.json changes on disk, so every worker sees changes
made by any other) and the media fetcher. Flask-free."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labelcheck.claims.trust import TrustRegistry
from labelcheck.fetch import FetchPolicy, MediaFetcher
from labelcheck.ledger import note
from labelcheck.ledger.log import Ledger
from labelcheck.pipeline.claim_lookup import MediaReader, RegistryLookup
from labelcheck.pipeline.config import Config, ConfigError
from labelcheck.pipeline.registry import load_registry, registry_lock
from labelcheck.pipeline.verify import LabelReader
from labelcheck.pipeline.witnessing import Witnessing, parse_witnesses

log = logging.getLogger("labelcheck")


def validate(cfg: Config) -> None:
    """Refuse at start-up what would otherwise fail on every request.
    Raises ConfigError."""
    if not note.is_valid_name(cfg.origin):
        raise ConfigError(f"origin {cfg.origin!r} names the ledger key: no '+', no white space, not empty")
    try:
        fetch_policy(cfg)
    except ValueError as exc:
        raise ConfigError(f"fetch: {exc}") from None
    if cfg.c2pa_anchors is not None and not cfg.c2pa_anchors.is_file():
        raise ConfigError(f"c2pa anchors: {cfg.c2pa_anchors} is not a file")
    if cfg.max_body < 1 or cfg.max_items < 1:
        raise ConfigError("max_body and max_items must be positive")
    if not 0 < cfg.fetch_deadline < float("inf"):
        raise ConfigError("fetch_deadline must be a positive number of seconds")
    parse_witnesses(cfg)


def fetch_policy(cfg: Config) -> FetchPolicy:
    return FetchPolicy(max_bytes=cfg.fetch_max_bytes, allow=tuple(cfg.fetch_allow))


class Services:
    """The per-process services of one server (see the module docstring)."""

    def __init__(self, cfg: Config) -> None:
        self.config = cfg
        self.analyzer = MediaReader(LabelReader(cfg.c2pa_anchors),
                                    wanted=lambda sha256: self.registry_lookup.needs_pdq(sha256))
        self.witnessing = Witnessing(cfg, lambda: self.ledger)
        self._lock = threading.Lock()
        self._ledger: Ledger | None = None
        self._ledger_pid: int | None = None
        self._fetcher: MediaFetcher | None = None
        self._registry: TrustRegistry | None = None
        self._registry_stamp = None
        self._lookup: RegistryLookup | None = None

    @property
    def ledger(self) -> Ledger:
        """This process's ledger, opened on first use after any fork."""
        pid = os.getpid()
        if self._ledger is None or self._ledger_pid != pid:
            with self._lock:
                if self._ledger is None or self._ledger_pid != pid:
                    cfg = self.config
                    self._ledger = Ledger.open_dir(cfg.data_dir, origin=cfg.origin,
                                                   scrub_duty=cfg.ledger_scrub_duty)
                    self._ledger_pid = pid
        return self._ledger

    def close(self) -> None:
        with self._lock:
            if self._ledger is not None and self._ledger_pid == os.getpid():
                self._ledger.close()
            self._ledger = None
            self._lookup = None

    @property
    def registry_lookup(self) -> RegistryLookup:
        """The claim registry's index (docs/protocol.md §12), in this
        process's ledger database; brought up to date with the ledger on first use."""
        ledger = self.ledger
        lookup = self._lookup
        if lookup is None or lookup.index.ledger is not ledger:
            with self._lock:
                if self._lookup is None or self._lookup.index.ledger is not ledger:
                    self._lookup = RegistryLookup(ledger)
                lookup = self._lookup
        return lookup

    @property
    def fetcher(self) -> MediaFetcher:
        if self._fetcher is None:
            with self._lock:
                if self._fetcher is None:
                    self._fetcher = MediaFetcher(fetch_policy(self.config))
        return self._fetcher

    @property
    def registry(self) -> TrustRegistry:
        """The trust registry, re-read when trust.json changed on disk."""
        stamp = _stat_stamp(self.config.trust_path)
        if self._registry is None or stamp != self._registry_stamp:
            with self._lock:
                if self._registry is None or stamp != self._registry_stamp:
                    self._reload_registry(stamp)
        return self._registry

    def _reload_registry(self, stamp) -> None:
        """Read trust.json. A file damaged while serving (a hand edit gone
        wrong) keeps the last good registry, loudly; at start-up it is fatal."""
        try:
            self._registry = load_registry(self.config.trust_path)
        except ValueError as exc:
            if self._registry is None:
                raise
            log.error("keeping the last good trust registry: %s", exc)
        self._registry_stamp = stamp

    def change_registry(self, mutate: Callable[[TrustRegistry], dict | None]) -> tuple[Any, Any]:
        """Apply ``mutate(registry) -> ledger record`` under the registry lock:
        save trust.json atomically, then append the ``registry`` ledger entry.
        If the append fails, trust.json is put back as it was. ``(None, None)``
        when ``mutate`` found nothing to change."""
        path = self.config.trust_path
        with registry_lock(self.config.data_dir):
            before = path.read_bytes() if path.exists() else None
            registry = load_registry(path)
            record = mutate(registry)
            if record is None:
                return None, None
            registry.save(path)
            try:
                receipt = self.ledger.append([record])[0]
            except BaseException:
                if before is None:
                    path.unlink(missing_ok=True)
                else:
                    TrustRegistry.from_dict(json.loads(before)).save(path)
                raise
        return record, receipt


def _stat_stamp(path: Path):
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)
