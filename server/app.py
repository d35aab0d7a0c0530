"""The Flask application factory (``create_app``) and its per-process services.

Each gunicorn worker builds its own app after the fork; the SQLite ledger is
opened lazily on first use in the process that uses it, so no connection ever
crosses a fork. The trust registry is re-read whenever ``trust.json`` changes
on disk, so every worker sees registry changes made by any other.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import importlib.util
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify
from flask_cors import CORS

from server import problems, tokens
from server.config import EXTENSION_ORIGINS, Config, ConfigError

EXTENSION_KEY = "labelcheck"


def create_app(config: dict | Config | None = None) -> Flask:
    """Build the labelcheck server.

    ``config``: a Config, or a dict of Config fields layered over the
    ``LABELCHECK_*`` environment, or None for the environment alone.
    """
    cfg = config if isinstance(config, Config) else Config.load(config or {})
    validate(cfg)
    prepare_data_dir(cfg)

    app = Flask("labelcheck")
    app.config["MAX_CONTENT_LENGTH"] = cfg.max_body
    app.json.sort_keys = False
    app.extensions[EXTENSION_KEY] = svc = Services(cfg)
    svc.registry  # a damaged trust.json stops the start, not every request
    problems.register(app)

    CORS(app, origins=cors_patterns(cfg.cors_origins), allow_headers=["Content-Type", "Authorization"],
         methods=["GET", "POST", "OPTIONS"], max_age=600, vary_header=True)

    from server import api, openapi  # late: they import this module's helpers

    app.register_blueprint(api.bp)
    app.add_url_rule("/healthz", "healthz", _healthz)
    app.add_url_rule("/openapi.json", "openapi", openapi.serve)
    if cfg.demo:
        ensure_demo_producer(app.extensions[EXTENSION_KEY])
    if cfg.demo and importlib.util.find_spec("server.demo") is not None:
        importlib.import_module("server.demo").register(app, cfg)
    return app


def services(app: Flask | None = None) -> "Services":
    from flask import current_app

    return (app or current_app).extensions[EXTENSION_KEY]


def _healthz() -> Response:
    return jsonify({"status": "ok"})


def cors_patterns(extra: tuple[str, ...]) -> list[re.Pattern]:
    """Allowed CORS origins as anchored regexes; ``*`` is one DNS label or
    extension id (letters, digits, dashes), so it never spans a dot or a slash."""
    out = []
    for pattern in (*EXTENSION_ORIGINS, *extra):
        parts = [re.escape(p) for p in pattern.split("*")]
        out.append(re.compile("^" + "[A-Za-z0-9-]+".join(parts) + "$"))
    return out


def utc_now() -> str:
    """RFC 3339 UTC time, second precision (what ledger entries record)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the data directory ---------------------------------------------------


def validate(cfg: Config) -> None:
    """Refuse at start-up what would otherwise fail on every request.
    Raises ConfigError."""
    from ledger import note
    from server.fetch import FetchPolicy

    if not note.is_valid_name(cfg.origin):
        raise ConfigError(f"origin {cfg.origin!r} names the ledger key: no '+', no white space, not empty")
    try:
        FetchPolicy(max_bytes=cfg.fetch_max_bytes, allow=tuple(cfg.fetch_allow))
    except ValueError as exc:
        raise ConfigError(f"fetch: {exc}") from None
    if cfg.c2pa_anchors is not None and not cfg.c2pa_anchors.is_file():
        raise ConfigError(f"c2pa anchors: {cfg.c2pa_anchors} is not a file")
    if cfg.max_body < 1 or cfg.max_items < 1:
        raise ConfigError("max_body and max_items must be positive")


def prepare_data_dir(cfg: Config) -> None:
    """Create the data directory and the admin and regulator tokens (0600)."""
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    tokens.ensure_token(cfg.admin_token_path)
    tokens.ensure_token(cfg.regulator_token_path)


@contextlib.contextmanager
def registry_lock(cfg: Config) -> Iterator[None]:
    """An exclusive lock across processes for read-modify-write of trust.json."""
    fd = os.open(cfg.data_dir / "trust.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


class TokenBucket:
    """A per-process token bucket (rate per second, burst). It is keyed by
    nothing about the client: one bucket for the whole worker."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, max(1, burst)
        self._tokens = float(self.burst)
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        """0 when a token was taken, else the seconds until one is due."""
        if self.rate <= 0:
            return 0.0
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate


class Services:
    """What one process of the server holds: config, tokens, the ledger (opened
    lazily, per process), the trust registry (reloaded on change), the fetcher."""

    def __init__(self, cfg: Config) -> None:
        self.config = cfg
        self.admin_token = tokens.read_token(cfg.admin_token_path)
        self.regulator_token = tokens.read_token(cfg.regulator_token_path)
        self.bucket = TokenBucket(cfg.verify_rate, cfg.verify_burst)
        self._lock = threading.Lock()
        self._ledger = None
        self._ledger_pid = None
        self._fetcher = None
        self._registry = None
        self._registry_stamp = None

    # The ledger: one per process, opened after any fork.
    @property
    def ledger(self):
        pid = os.getpid()
        if self._ledger is None or self._ledger_pid != pid:
            with self._lock:
                if self._ledger is None or self._ledger_pid != pid:
                    self._ledger = open_ledger(self.config)
                    self._ledger_pid = pid
        return self._ledger

    def close(self) -> None:
        with self._lock:
            if self._ledger is not None and self._ledger_pid == os.getpid():
                self._ledger.close()
            self._ledger = None

    @property
    def fetcher(self):
        if self._fetcher is None:
            with self._lock:
                if self._fetcher is None:
                    self._fetcher = make_fetcher(self.config)
        return self._fetcher

    @property
    def analyzer(self):
        from server.verify import LabelReader

        return LabelReader(self.config.c2pa_anchors)

    # The trust registry, re-read when trust.json changes (any worker may write it).
    @property
    def registry(self):
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
            logging.getLogger("labelcheck").error("keeping the last good trust registry: %s", exc)
        self._registry_stamp = stamp

    def change_registry(self, mutate: Callable[[Any], dict]) -> tuple[dict, Any]:
        """Apply ``mutate(registry) -> ledger record`` under the registry lock:
        save trust.json atomically, then append the ``registry`` ledger entry.
        If the append fails, trust.json is put back as it was."""
        from server.trust import TrustRegistry

        path = self.config.trust_path
        with registry_lock(self.config):
            before = path.read_bytes() if path.exists() else None
            registry = load_registry(path)
            record = mutate(registry)
            if record is None:  # nothing to change
                return None, None
            registry.save(path)
            try:
                receipt = self.ledger.append([record])[0]
            except BaseException:
                if before is None:
                    path.unlink(missing_ok=True)
                else:
                    TrustRegistry.from_dict(_json_loads(before)).save(path)
                raise
        return record, receipt


DEMO_PRODUCER = "demo-producer"


def ensure_demo_producer(svc: Services):
    """The demo producer's signer: ``data/demo-producer.key`` (0600), created
    when absent and registered in trust.json (a ``registry`` ledger entry)."""
    from server import keys
    from server.api import registry_add

    cfg = svc.config
    with registry_lock(cfg):
        if not cfg.demo_key_path.exists():
            keys.write_key_pair(keys.generate_key(DEMO_PRODUCER), cfg.data_dir)
    signer = keys.load_signer(cfg.demo_key_path)
    if svc.registry.lookup(signer.key_id) is None:
        from server.trust import Producer

        producer = Producer(name="labelcheck demo producer", vkey=signer.vkey,
                            filing="DEMO-0000", roles=("producer",))

        def mutate(reg):
            if reg.lookup(producer.key_id) is not None:  # another worker won the race
                return None
            return registry_add(reg, producer, utc_now())

        svc.change_registry(mutate)
    return signer


def _json_loads(data: bytes):
    import json

    return json.loads(data)


def _stat_stamp(path: Path):
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def load_registry(path: Path):
    from server.trust import TrustRegistry

    if not path.exists():
        return TrustRegistry.from_dict({"producers": []})
    return TrustRegistry.load(path)


def open_ledger(cfg: Config):
    from ledger.log import Ledger

    return Ledger.open_dir(cfg.data_dir, origin=cfg.origin, checkpoint_interval=cfg.checkpoint_interval)


def make_fetcher(cfg: Config):
    from server.fetch import FetchPolicy, MediaFetcher

    return MediaFetcher(FetchPolicy(max_bytes=cfg.fetch_max_bytes, allow=tuple(cfg.fetch_allow)))
