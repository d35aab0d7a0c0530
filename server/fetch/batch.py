"""Several fetches under one deadline: the fetches of one verify request
share ``seconds`` in all, run at most ``per_request`` at a time (and at most
the fetcher's ``max_concurrent`` in the whole process), and whatever has
not finished when the deadline passes answers ``deadline`` at once.

The calling thread fetches too, taking URLs from the same list as its
helpers from the fetcher's pool: it would otherwise only wait, and a batch
of quick fetches costs one thread hand-off per helper rather than per URL.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from typing import BinaryIO, Callable, Sequence

from labelcheck.fetch.fetcher import MediaFetcher
from labelcheck.fetch.policy import FetchResult

# A fetch cut off at the deadline returns on its own (its sockets are shut
# down); this is the longest the request waits for that on top of it.
GRACE = 0.25


def fetch_all(fetcher: MediaFetcher, urls: Sequence[str], analyze: Callable[[BinaryIO], object] | None = None,
              *, seconds: float, per_request: int = 8) -> list[FetchResult]:
    """Results for ``urls``, in order, within ``seconds`` (plus :data:`GRACE`)."""
    end = time.monotonic() + seconds
    results: list[FetchResult | None] = [None] * len(urls)
    queue = _Queue(len(urls))

    def work() -> None:
        while (i := queue.take(end)) is not None:
            results[i] = fetcher.fetch(urls[i], analyze, deadline=end)

    helpers = [fetcher.executor().submit(work) for _ in range(min(max(1, per_request), len(urls)) - 1)]
    try:
        work()
        concurrent.futures.wait(helpers, timeout=max(0.0, end - time.monotonic()) + GRACE)
    finally:
        queue.close()  # helpers still queued or running start nothing more
    return [r if r is not None else _late(url, seconds) for url, r in zip(urls, results)]


class _Queue:
    """Indexes 0..n-1, each taken once, none after ``end`` or ``close``."""

    def __init__(self, n: int):
        self._next, self._n, self._lock = 0, n, threading.Lock()

    def take(self, end: float) -> int | None:
        with self._lock:
            if self._next >= self._n or time.monotonic() >= end:
                return None
            self._next += 1
            return self._next - 1

    def close(self) -> None:
        with self._lock:
            self._n = 0


def _late(url: str, seconds: float) -> FetchResult:
    return FetchResult.failed(url, "deadline", f"the request's {seconds:g} s for fetching media ran out "
                                               "before this one was done")
