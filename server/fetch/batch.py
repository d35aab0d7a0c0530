"""Several fetches under one deadline: the fetches of one verify request
share ``seconds`` in all, run at most ``per_request`` at a time (and at most
the fetcher's ``max_concurrent`` in the whole process), and whatever has
not finished when the deadline passes answers ``deadline`` at once.
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
    room = threading.BoundedSemaphore(max(1, per_request))
    pool = fetcher.executor()
    futures = []

    def one(i: int) -> None:
        try:
            results[i] = fetcher.fetch(urls[i], analyze, deadline=end)
        finally:
            room.release()

    for i in range(len(urls)):
        if not room.acquire(timeout=max(0.0, end - time.monotonic())):
            break  # the deadline passed with no room: the rest never start
        futures.append(pool.submit(one, i))
    concurrent.futures.wait(futures, timeout=max(0.0, end - time.monotonic()) + GRACE)
    return [r if r is not None else _late(url, seconds) for url, r in zip(urls, results)]


def _late(url: str, seconds: float) -> FetchResult:
    return FetchResult.failed(url, "deadline", f"the request's {seconds:g} s for fetching media ran out "
                                               "before this one was done")
