"""What one server process holds: its config, the ledger (opened lazily, per
process, so no SQLite connection crosses a gunicorn fork), the trust registry
(its store, ``registry_store``: trust.json re-read whenever it changes on
disk, or PostgreSQL polled for changes, so every worker and every node sees
changes made by any other) and the media fetcher. Flask-free."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from labelcheck.claims.trust import TrustRegistry
from labelcheck.fetch import FetchPolicy, MediaFetcher
from labelcheck.ledger import note
from labelcheck.ledger.backend import StoreError, is_url, refuse_other_urls
from labelcheck.ledger.log import Ledger
from labelcheck.pipeline.claim_lookup import MediaReader, RegistryLookup
from labelcheck.pipeline.config import Config, ConfigError
from labelcheck.pipeline.registry import open_registry_store
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
    if cfg.database and not is_url(cfg.database):
        try:
            refuse_other_urls(cfg.database)  # names the scheme only: the URL may hold a password
        except StoreError as exc:
            raise ConfigError(f"database: {exc}") from None
        raise ConfigError(f"database: {cfg.database[:40]!r} is not a postgresql:// URL "
                          "(without --database, the ledger is ledger.db in the data directory)")
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
        self.registry_store = open_registry_store(cfg, lambda: self.ledger)
        self._lookup: RegistryLookup | None = None

    @property
    def ledger(self) -> Ledger:
        """This process's ledger, opened on first use after any fork."""
        pid = os.getpid()
        if self._ledger is None or self._ledger_pid != pid:
            with self._lock:
                if self._ledger is None or self._ledger_pid != pid:
                    cfg = self.config
                    self._ledger = Ledger.open_dir(cfg.data_dir, origin=cfg.origin, database=cfg.database or None,
                                                   scrub_duty=cfg.ledger_scrub_duty)
                    self._ledger_pid = pid
        return self._ledger

    def close(self) -> None:
        with self._lock:
            if self._ledger is not None and self._ledger_pid == os.getpid():
                self._ledger.close()
            self._ledger = None
            self._lookup = None
        self.registry_store.close()

    @property
    def registry_lookup(self) -> RegistryLookup:
        """The claim registry's index (docs/protocol.md §12), in this
        process's ledger database; brought up to date with the ledger on first use."""
        ledger = self.ledger
        lookup = self._lookup
        if lookup is None or lookup.index.ledger is not ledger:
            with self._lock:
                if self._lookup is None or self._lookup.index.ledger is not ledger:
                    self._lookup = RegistryLookup(ledger, follow=ledger.sequencer is not None)
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
        """The trust registry as of now (docs/protocol.md §8, §11)."""
        return self.registry_store.current()

    def change_registry(self, mutate: Callable[[TrustRegistry], dict | None]) -> tuple[Any, Any]:
        """Apply ``mutate(registry) -> ledger record`` under the registry's
        lock (shared by every process and node) and append the ``registry``
        ledger entry: both or neither. ``(None, None)`` when ``mutate``
        found nothing to change."""
        return self.registry_store.change(mutate, lambda: self.ledger)
