"""What reading one file may cost: metadata bytes, labels, XML elements, time.

Every reader is linear in the bytes it reads; the budget bounds those bytes
(and what inflating them yields), so a hostile file costs at most a fixed
amount whatever its size or shape. Running out ends the reading with a
``malformed`` signal whose second reason is ``limit`` and whose
``detail.limit`` names what ran out (``bytes``, ``items``, ``elements``,
``time``); the signals found before it are kept.

``Found`` is the list the readers append to: each signal is one item.
"""

from __future__ import annotations

import time

from .signals import Malformed, Signal

MAX_BYTES = 32 << 20  # metadata read into memory or inflated, per file
MAX_ITEMS = 64  # signals (labels, packets, damaged blocks), per file
MAX_ELEMENTS = 200_000  # XML start tags in XMP packets, per file
SECONDS = 2.0  # wall time, per file


class Limit(Malformed):
    """A budget ran out: the reading stops here (``code`` is ``limit``)."""

    def __init__(self, source: str, what: str, message: str):
        super().__init__(source, "limit", message)
        self.what = what

    def signal(self) -> Signal:
        signal = super().signal()
        signal.detail["limit"] = self.what
        return signal


class Budget:
    """The allowance of one ``read_labels`` call (see the module doc)."""

    __slots__ = ("bytes_left", "items_left", "elements_left", "deadline", "_clock")

    def __init__(self, *, max_bytes: int = MAX_BYTES, max_items: int = MAX_ITEMS,
                 max_elements: int = MAX_ELEMENTS, seconds: float = SECONDS, clock=time.monotonic):
        self.bytes_left = max_bytes
        self.items_left = max_items
        self.elements_left = max_elements
        self._clock = clock
        self.deadline = clock() + seconds

    def spend_bytes(self, n: int, source: str, what: str) -> None:
        """Charge ``n`` bytes about to be read or inflated (before doing it)."""
        if n > self.bytes_left:
            raise Limit(source, "bytes", f"{what}: the file's metadata exceeds the reading budget")
        self.bytes_left -= n
        self.tick(source)

    def tick(self, source: str) -> None:
        """Stop when the time allowed for this file has passed."""
        if self._clock() > self.deadline:
            raise Limit(source, "time", "reading the file's metadata took too long")


class Found:
    """The signals of one file; each one appended spends an item."""

    __slots__ = ("budget", "signals")

    def __init__(self, budget: Budget):
        self.budget = budget
        self.signals: list[Signal] = []

    def append(self, signal: Signal) -> None:
        budget = self.budget
        if budget.items_left <= 0:
            raise Limit(signal.source, "items", f"over {len(self.signals)} labels or metadata blocks in one file")
        budget.items_left -= 1
        self.signals.append(signal)

    def extend(self, signals) -> None:
        for signal in signals:
            self.append(signal)

    def __len__(self) -> int:
        return len(self.signals)
