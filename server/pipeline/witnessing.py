"""Getting the log's checkpoints cosigned by witnesses (C2SP tlog-witness),
from inside the server.

One process per data directory runs the rounds: the holder of an exclusive
``flock`` on ``witnessing.lock``; every other process (gunicorn workers,
nodes sharing the folder) only reads the result. A round runs at most once a
second and only when the log grew: it asks each witness to cosign the
latest signed checkpoint and, when at least ``quorum`` did, writes the
checkpoint with every cosignature to ``cosigned.checkpoint`` (atomically).
``GET /v1/checkpoint`` serves that file (docs/protocol.md §10).

Nodes sharing one log on PostgreSQL each run rounds of their own; a witness
that holds a newer checkpoint of the log than the one a round offers (another
node's) is caught up with, not reported (``witness.client.cosigned_checkpoint``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable

from labelcheck.ledger import checkpoint, note
from labelcheck.ledger.log import Ledger
from labelcheck.pipeline.config import Config, ConfigError
from labelcheck.util import atomic
from labelcheck.witness.client import RemoteWitness, cosigned_checkpoint, count_cosignatures

log = logging.getLogger("labelcheck.witness")

ROUND_EVERY = 1.0  # seconds: at most one request per witness per second


def parse_witnesses(cfg: Config) -> tuple[list[RemoteWitness], int]:
    """The configured witnesses and the quorum (0 means all). Raises ConfigError."""
    try:
        witnesses = [RemoteWitness.parse(spec) for spec in cfg.witnesses]
    except ValueError as exc:
        raise ConfigError(f"--witness: {exc}") from None
    quorum = cfg.witness_quorum or len(witnesses)
    if witnesses and not 1 <= quorum <= len(witnesses):
        raise ConfigError(f"--witness-quorum {cfg.witness_quorum} needs 1 to {len(witnesses)} witnesses")
    return witnesses, quorum


class Witnessing:
    """The background rounds of one process (see the module docstring)."""

    def __init__(self, cfg: Config, ledger: Callable[[], Ledger]) -> None:
        self.config = cfg
        self.witnesses, self.quorum = parse_witnesses(cfg)
        self._ledger = ledger
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cosigned_size = -1
        self._pid = None

    @property
    def enabled(self) -> bool:
        return bool(self.witnesses)

    def start(self) -> None:
        """Start this process's thread (again after a fork)."""
        if not self.enabled or (self._thread is not None and self._pid == os.getpid()):
            return
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="labelcheck-witnessing", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        lock_path = self.config.data_dir / "witnessing.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while not self._stop.is_set():
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # another process runs the rounds
                    self._stop.wait(ROUND_EVERY * 3)
                    continue
                self._rounds()
        finally:
            os.close(fd)  # releases the lock

    def _rounds(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.round()
            except Exception:  # a round must never end the thread
                log.exception("witnessing round failed")
            self._stop.wait(max(0.0, ROUND_EVERY - (time.monotonic() - started)))

    def round(self) -> bool:
        """One round: True when a newer checkpoint reached the quorum."""
        ledger = self._ledger()
        verifier = note.Verifier.from_vkey(ledger.verifier_key)

        def newest() -> tuple[bytes, int]:
            signed = ledger.checkpoint()
            return signed, checkpoint.open_checkpoint(signed, verifier).size

        if newest()[1] <= self._cosigned_size:
            return False
        got = cosigned_checkpoint(newest, self.witnesses, self.quorum, ledger.consistency_proof)
        if got is None:
            return False
        atomic.write_bytes(self.config.cosigned_path, got[0])
        self._cosigned_size = got[1]
        return True

    def read_cosigned(self, log_vkey: str) -> bytes | None:
        """The newest checkpoint carrying a quorum, or None when there is none yet."""
        try:
            data = Path(self.config.cosigned_path).read_bytes()
        except FileNotFoundError:
            return None
        try:
            _, count = count_cosignatures(data, note.Verifier.from_vkey(log_vkey),
                                          [w.verifier for w in self.witnesses])
        except (note.NoteError, checkpoint.CheckpointError):
            log.error("cosigned.checkpoint does not open with the configured keys; not serving it")
            return None
        return data if count >= self.quorum else None
