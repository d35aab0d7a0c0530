"""What the fetcher remembers about a URL it fetched: validators for a
conditional request (RFC 9110 §13.1.1-13.1.3, RFC 9111 §4.3) and the result
they stand for, in a bounded least-recently-used map."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import BinaryIO, Callable


@dataclass(frozen=True)
class Entry:
    final_url: str
    etag: str | None
    last_modified: str | None
    sha256: str
    size: int
    media_type: str | None
    analysis: object
    analyzer: Callable[[BinaryIO], object] | None  # None: no analysis held


class ResponseCache:
    """A bounded, thread-safe least-recently-used map of URL to :class:`Entry`."""

    def __init__(self, capacity: int):
        self.capacity = max(0, int(capacity))
        self._items: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def get(self, key: str) -> Entry | None:
        with self._lock:
            entry = self._items.get(key)
            if entry is not None:
                self._items.move_to_end(key)
            return entry

    def put(self, key: str, entry: Entry) -> None:
        if self.capacity == 0:
            return
        with self._lock:
            self._items[key] = entry
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def discard(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)


def strong_etag(value: str | None) -> str | None:
    """The ETag when strong: a weak one (W/) does not promise identical bytes (RFC 9110 §8.8.1)."""
    if not value or value.startswith("W/"):
        return None
    return value
