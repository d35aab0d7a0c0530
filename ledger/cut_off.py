"""A leader's commit whose database connection was lost, and what became of
it (docs/protocol.md §11).

A leader stopped with its socket open (SIGSTOP, a paused VM) has its session
ended by a follower (``lease``); it learns so only once it runs again, as
its next commit writes. Its own appends in that commit (``sequencer``) need
not fail: cut off before its COMMIT went out, nothing was written, nor can
be, and they are queued again. Cut off after, the commit may or may not have
been applied; but once the session that sent it is gone (it no longer holds
the leader's lock, which only its end releases), nothing of it can commit
any more, and the log tells which: its indexes hold the commit's leaf
hashes, or the commit is not there. The appends get their receipts, or are
queued again. So a cut costs a retry, never a duplicate nor an error, unless
the database stays out of reach for ``TIMEOUT`` seconds.
"""

from __future__ import annotations

import time
from typing import Callable

from . import merkle

TIMEOUT = 30.0  # seconds a cut-off commit's appends wait to learn its outcome


class CutOff(Exception):
    """A commit whose database connection was lost; its requests are not
    done. ``sent``: whether its COMMIT had gone out, in the session ``pid``;
    then its entries, at indexes from ``start``, have the RFC 9162 §2.1.1
    leaf hashes ``leaves``, and ``finish()`` gives its requests their
    receipts (``__cause__``: the connection's error)."""

    def __init__(self, sent: bool, pid: int | None = None, start: int = 0, leaves: list[bytes] = (),
                 finish: Callable[[], None] | None = None):
        when = "after" if sent else "before"
        super().__init__(f"the connection to the database was lost {when} the commit was sent")
        self.sent, self.pid, self.start, self.leaves, self.finish = sent, pid, start, list(leaves), finish

    def written(self, store, conn) -> bool:
        """Whether the log holds this commit's entries: its indexes hold its
        leaf hashes. Only an answer once session ``pid`` is gone."""
        end = self.start + len(self.leaves)
        if store.size(conn) < end:
            return False
        ids = [merkle.stored_hash_index(0, i) for i in range(self.start, end)]
        return store.read_hashes(ids, conn) == self.leaves


class InDoubt:
    """The requests of a ``CutOff`` commit sent before the cut, until the
    log says whether it was written (or ``TIMEOUT`` passed)."""

    def __init__(self, cut: CutOff, requests: list, clock: Callable[[], float] = time.monotonic):
        self.cut, self.requests, self.clock = cut, requests, clock
        self.until = clock() + TIMEOUT

    def settle(self, store, conn, holder: int | None) -> bool | None:
        """With the leader's lock now held by ``holder`` (a server pid, or
        None): whether the commit was written, its requests done (with
        receipts, or with neither receipts nor an error: to be queued again);
        None while the session that sent it may still commit it."""
        if holder == self.cut.pid:
            return None
        written = self.cut.written(store, conn)
        if written:
            self.cut.finish()
        for req in self.requests:
            req.done = True
        return written

    def expired(self) -> bool:
        return self.clock() >= self.until

    def fail(self, error: BaseException) -> None:
        """Give up: the outcome stays unknown, and the requests say so."""
        for req in self.requests:
            req.error, req.done = error, True
