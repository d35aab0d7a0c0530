"""Callbacks at a monotonic time, run by one daemon thread per process.

A :class:`threading.Timer` per fetch or per request read costs a thread
start each; this keeps one heap and one thread (started lazily, and again
in a forked child, where the parent's thread does not exist).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)

class Alarm:
    """One scheduled callback; :meth:`cancel` before it runs stops it."""

    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callable[[], None]):
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self) -> None:
        global _cancelled
        if not self.cancelled:
            self.cancelled = True
            _cancelled += 1


_lock = threading.Condition()
_heap: list[tuple[float, int, Alarm]] = []
_order = itertools.count()
_thread_pid: int | None = None
_cancelled = 0  # cancelled alarms still in the heap (approximate: counted without the lock)


def at(when: float, callback: Callable[[], None]) -> Alarm:
    """Run ``callback()`` once ``time.monotonic()`` reaches ``when``."""
    global _thread_pid
    alarm = Alarm(when, callback)
    with _lock:
        _compact()
        heapq.heappush(_heap, (when, next(_order), alarm))
        if _thread_pid != os.getpid():
            _thread_pid = os.getpid()
            threading.Thread(target=_run, name="labelcheck-alarm", daemon=True).start()
        elif _heap[0][2] is alarm:
            _lock.notify()
    return alarm


def _compact() -> None:
    """Drop cancelled alarms once they are most of a big heap (cancelling is lazy)."""
    global _heap, _cancelled
    if len(_heap) > 1024 and _cancelled * 2 > len(_heap):
        _heap = [entry for entry in _heap if not entry[2].cancelled]
        heapq.heapify(_heap)
        _cancelled = 0


def after(seconds: float, callback: Callable[[], None]) -> Alarm:
    return at(time.monotonic() + seconds, callback)


def _run() -> None:
    while True:
        with _lock:
            while _heap and _heap[0][2].cancelled:
                heapq.heappop(_heap)
                _uncount()
            if not _heap:
                _lock.wait()
                continue
            delay = _heap[0][0] - time.monotonic()
            if delay > 0:
                _lock.wait(delay)
                continue
            alarm = heapq.heappop(_heap)[2]
        try:
            alarm.callback()
        except Exception:  # an alarm's failure must not stop the others
            log.exception("alarm callback failed")


def _uncount() -> None:
    global _cancelled
    _cancelled = max(0, _cancelled - 1)
