"""Server configuration: one frozen value built from defaults, the environment
(``LABELCHECK_<FLAG>``) and explicit overrides (command-line flags, tests).

Names follow docs/protocol.md §8: ``LABELCHECK_DATA_DIR``, ``LABELCHECK_ORIGIN``,
``LABELCHECK_FETCH_ALLOW`` (space or comma separated), ``LABELCHECK_DEMO`` …
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

ENV_PREFIX = "LABELCHECK_"
MIB = 1024 * 1024

# The extension's origins (Chromium and Firefox); "*" stands for one
# extension id: letters, digits and dashes, never a dot or a slash.
EXTENSION_ORIGINS = ("chrome-extension://*", "moz-extension://*")


class ConfigError(ValueError):
    """A configuration value that cannot be used."""


@dataclass(frozen=True)
class Config:
    data_dir: Path = Path("data")
    # A postgresql:// URL: the ledger and the producer registry in PostgreSQL,
    # shared by every node; None: SQLite files in data_dir (docs/protocol.md §11).
    database: str | None = None
    origin: str = "labelcheck.localhost/ledger"  # ledger origin line and key name
    cors_origins: tuple[str, ...] = ()  # extra allowed origins (glob "*" = one label)
    max_body: int = MIB  # bytes per request body
    max_items: int = 100  # items per POST /v1/verify
    fetch_allow: tuple[str, ...] = ()  # hosts / CIDRs the fetcher may reach despite §6
    fetch_max_bytes: int = 50 * MIB
    c2pa_anchors: Path | None = None  # PEM trust anchors for C2PA
    demo: bool = False
    # Token bucket per client address on POST /v1/verify (requests per second,
    # burst), kept in memory only. 0 turns it off.
    verify_rate: float = 10.0
    verify_burst: int = 50
    # Peers (addresses or CIDRs) whose X-Forwarded-For / X-Real-IP name the
    # client: the front server, such as nginx on the same host.
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    fetch_deadline: float = 20.0  # seconds all media fetches of one verify request share
    client_read_timeout: float = 10.0  # seconds to receive a request's headers and body (serve)
    # Share of one CPU each server process spends re-hashing the whole ledger
    # in the background (0 turns the check off).
    ledger_scrub_duty: float = 0.02
    # C2SP tlog-witness: "VKEY=URL" each (URL: the witness's submission
    # prefix); GET /v1/checkpoint then serves the newest checkpoint cosigned
    # by witness_quorum of them (0: all).
    witnesses: tuple[str, ...] = ()
    witness_quorum: int = 0
    # Serving (labelcheck serve)
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    # Threads per worker: a verification waits on the ledger's durable commit
    # (fsync) and on media fetches; with more threads than cores those waits
    # overlap and concurrent appends share one group commit.
    threads: int = 16
    # With as many workers as CPUs, each worker on a CPU of its own (web.cpus).
    pin_workers: bool = True

    @property
    def ledger_db(self) -> Path:
        return self.data_dir / "ledger.db"

    @property
    def ledger_location(self) -> str | Path:
        """Where the ledger is: the database URL, else ledger.db in the data dir."""
        return self.database or self.ledger_db

    @property
    def trust_path(self) -> Path:
        return self.data_dir / "trust.json"

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / "admin.token"

    @property
    def regulator_token_path(self) -> Path:
        return self.data_dir / "regulator.token"

    @property
    def cosigned_path(self) -> Path:
        return self.data_dir / "cosigned.checkpoint"

    @property
    def demo_key_path(self) -> Path:
        return self.data_dir / "demo-producer.key"

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None,
             environ: Mapping[str, str] | None = None) -> "Config":
        """Defaults, then ``LABELCHECK_*`` from ``environ``, then ``overrides``
        (entries whose value is None are ignored, as click passes them)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = raw
        for key, value in (overrides or {}).items():
            if key not in _FIELD_TYPES:
                raise ConfigError(f"unknown configuration key {key!r}")
            if value is not None and value != ():
                values[key] = value
        return cls(**{k: _coerce(k, v) for k, v in values.items()})


_FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(Config)}


def _coerce(name: str, value: Any) -> Any:
    kind = _FIELD_TYPES[name]
    try:
        if kind == "Path":
            return Path(value)
        if kind == "Path | None":
            return Path(value) if value not in (None, "") else None
        if kind == "bool":
            return _bool(value)
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "tuple[str, ...]":
            return _strings(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{ENV_PREFIX}{name.upper()}: cannot use {value!r}: {exc}") from None


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true/false")


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return tuple(str(v) for v in value if str(v))
