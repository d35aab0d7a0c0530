"""Background re-hashing of the whole stored log at a bounded CPU cost
(docs/protocol.md §4).

The start-up check looks at the tail only; a changed old leaf, reordered
entries, a changed interior hash or an old checkpoint whose root does not
match the entries would otherwise go on being served. ``Scrubber`` runs
``verify_store`` over the whole log in a daemon thread, pass after pass, and
sleeps between slices of work so that it uses at most ``duty`` of one CPU
(measured with the thread's own CPU clock). The first problem found is
handed to ``on_damage`` and the scrub stops.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from . import note
from .backend import DB_ERRORS, LedgerStore
from .store import StoreError
from .verify import verify_store

log = logging.getLogger(__name__)

PAUSE_BETWEEN_PASSES = 60.0  # seconds, at least, between the end of a pass and the next


class _Stopped(Exception):
    pass


class Scrubber:
    """See the module docstring. ``stop`` ends the thread within one slice."""

    def __init__(self, store: LedgerStore, verifier: note.Verifier, origin: str, *, duty: float,
                 on_damage: Callable[[str], None], pause: float = PAUSE_BETWEEN_PASSES):
        if not 0 < duty <= 1:
            raise ValueError("scrub duty must be in (0, 1]: the fraction of one CPU it may use")
        self.store, self.verifier, self.origin = store, verifier, origin
        self.duty, self.on_damage, self.pause = duty, on_damage, pause
        self.passes = 0  # complete passes that found nothing wrong
        self.checked = 0  # entries re-hashed in the current pass
        self._stop = threading.Event()
        self._cpu = 0.0
        self._thread = threading.Thread(target=self._run, name="ledger-scrub", daemon=True)

    def start(self) -> "Scrubber":
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                problem = self._one_pass()
            except _Stopped:
                return
            except (StoreError, *DB_ERRORS) as exc:
                if self._stop.is_set():  # the store was closed under us
                    return
                problem = f"the ledger could not be read back: {exc}"
            if problem:
                log.error("ledger damaged: %s", problem)
                self.on_damage(problem)
                return
            self.passes += 1
            if self._stop.wait(self.pause):
                return

    def _one_pass(self) -> str | None:
        self.checked = 0
        self._cpu = time.thread_time()
        report = verify_store(self.store, self.verifier, self.origin, pace=self._pace)
        return None if report.ok else "; ".join(report.problems)

    def _pace(self, checked: int) -> None:
        """Sleep so that the work since the last call is ``duty`` of the time."""
        self.checked = checked
        now = time.thread_time()
        used, self._cpu = now - self._cpu, now
        if self.duty < 1 and self._stop.wait(used * (1 - self.duty) / self.duty):
            raise _Stopped
        if self._stop.is_set():
            raise _Stopped
        self._cpu = time.thread_time()
