"""Leader and followers: threads that queue work for one of them to do.

The scheme of database group commit (PostgreSQL's commit_delay, MySQL's
binlog group commit): a thread that queues work while no other leads becomes
the leader and does what is queued; the others wait, each on a lock of its
own, until a leader wakes it, either with its work done or to lead in turn
(the first still queued), so no thread wakes only to find its work not done
and wait again. Waiters are objects with a ``wake`` attribute (None, or
the lock they wait on), which this sets.
"""

from __future__ import annotations

import threading
from typing import Callable


class Turns:
    """The queue and the lead of one group of threads (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list = []
        self._leading = False

    def __len__(self) -> int:
        """How many waiters are queued (the leader's own until it takes it)."""
        return len(self._queue)

    def wait(self, waiter) -> None:
        """Queue ``waiter``; return at once when no thread leads (the caller
        leads now), else once a leader woke it: its work is done, or, when
        it is not, the caller leads."""
        with self._lock:
            self._queue.append(waiter)
            follows = self._leading
            if follows:
                waiter.wake = threading.Lock()
                waiter.wake.acquire()
            self._leading = True
        if follows:
            waiter.wake.acquire()

    def take(self, limit: int | None = None, weight: Callable[[object], int] = lambda _w: 1) -> list:
        """The leader's part: the waiters queued, from the first (its own),
        whole, up to ``limit`` by ``weight``; at least one."""
        with self._lock:
            if limit is None:
                taken = len(self._queue)
            else:
                taken, total = 0, 0
                for waiter in self._queue:
                    total += weight(waiter)
                    if taken and total > limit:
                        break
                    taken += 1
            group, self._queue = self._queue[:taken], self._queue[taken:]
        return group

    def hand_over(self, own) -> bool:
        """Give the lead to the first waiter still queued, if any. True when
        ``own`` was still queued (the leader stopped before taking it): it is
        dropped from the queue."""
        with self._lock:
            stopped = own in self._queue
            if stopped:
                self._queue.remove(own)
            if self._queue:
                self._queue[0].wake.release()  # the new leader; the lead stays taken
            else:
                self._leading = False
        return stopped

    @staticmethod
    def wake(taken: list, own) -> None:
        """Wake the waiters a leader took (their work done), but its own."""
        for waiter in taken:
            if waiter is not own and waiter.wake is not None:
                waiter.wake.release()
