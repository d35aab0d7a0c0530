"""Appending to the ledger's store: one transaction per batch, group commit.

``GroupCommit.append`` writes records as consecutive entries (docs/protocol.md
§4: each gets its ``index`` and, as ``prev``, the base64 leaf hash of the
entry before it) and the RFC 9162 §2.1.1 hashes they add to the stored tree,
in one ``BEGIN IMMEDIATE`` transaction committed with ``synchronous=FULL``.

Group commit: concurrent appends in one process queue up, and one thread (the
leader) commits everything queued in a single transaction, so N waiting
appends cost one fsync, not N (the scheme of database group commit, as in
PostgreSQL's commit_delay or MySQL's binlog group commit). Writers in other
processes serialise on SQLite's write lock; each transaction reads the
current tail inside it, so the log stays one contiguous chain.
"""

from __future__ import annotations

import threading
from binascii import b2a_base64
from hashlib import sha256
from typing import Callable, NamedTuple

from . import canonical, merkle
from .store import Store
from .verify import TreeStream


class CommitError(Exception):
    """The append transaction failed; nothing was written (``__cause__`` says why)."""


class Receipt(NamedTuple):
    index: int
    leaf_hash: bytes


class _Request:
    __slots__ = ("records", "receipts", "error", "done")

    def __init__(self, records: list[dict]):
        self.records = records
        self.receipts: list[Receipt] | None = None
        self.error: BaseException | None = None
        self.done = False

    def result(self) -> list[Receipt]:
        if self.error is not None:
            raise self.error
        return self.receipts


class GroupCommit:
    """Appends to ``store`` from many threads; see the module docstring.

    Holds locks and a queue of this process's threads: make a new one in a
    forked child.
    """

    def __init__(self, store: Store, *, group: bool = True):
        self.store, self.group = store, group
        self._cv = threading.Condition()
        self._queue: list[_Request] = []
        self._leader = False
        self._write_lock = threading.Lock()  # the writer connection, when not grouping
        # (size, tree, last leaf) as this instance's last commit left the log:
        # while no other writer has appended since, the next commit starts from
        # it instead of reading the frontier back. Only the committing thread uses it.
        self._tail: tuple[int, TreeStream, bytes] | None = None
        self.commits = 0  # append transactions committed

    def append(self, records: list[dict]) -> list[Receipt]:
        """Append ``records`` (checked, without ``index`` and ``prev``; the dicts
        are filled in); one Receipt per record. Raises CommitError."""
        req = _Request(records)
        if not self.group:
            with self._write_lock:
                self._commit(lambda: [req])
            return req.result()
        with self._cv:
            self._queue.append(req)
            while self._leader and not req.done:
                self._cv.wait()
            if req.done:
                return req.result()
            self._leader = True
        try:
            self._commit(self._take_queue)
        finally:
            with self._cv:
                self._leader = False
                self._cv.notify_all()
        return req.result()

    def _take_queue(self) -> list[_Request]:
        """Everything queued so far: the leader takes it once it holds the
        write lock, so appends that arrived while it waited share its commit."""
        with self._cv:
            batch, self._queue = self._queue, []
        return batch

    def _commit(self, take: Callable[[], list[_Request]]) -> None:
        """Write the requests ``take()`` returns, in one transaction; fill in
        their results. ``take`` runs once the write lock is held."""
        store = self.store
        batch: list[_Request] = []
        try:
            with store.write() as conn:
                batch = take()
                n = store.size(conn)
                tail, self._tail = self._tail, None
                if tail is not None and tail[0] == n:  # append-only: same size, same tail
                    _, tree, prev = tail
                else:
                    # The frontier (and the last leaf, for "prev") is all a batch needs
                    # to read: every later hash is computed here (RFC 9162 §2.1.1).
                    ids = TreeStream.frontier_ids(n)
                    need = [i for _, i in ids] + ([merkle.stored_hash_index(0, n - 1)] if n else [])
                    got = store.read_hashes(need, conn)
                    tree = TreeStream.resume(n, {level: h for (level, _), h in zip(ids, got)})
                    prev = got[-1] if n else None
                base = merkle.stored_hash_count(n)  # each leaf's hashes follow the last one's
                entries: list[tuple[int, bytes]] = []
                hashes: list[bytes] = []  # stored hashes base, base + 1, ...
                results = []
                encode, add, put_hashes, put_entry = canonical.encode, tree.add, hashes.extend, entries.append
                for req in batch:
                    receipts = []
                    for record in req.records:
                        record["index"] = n
                        record["prev"] = "" if prev is None else b2a_base64(prev, newline=False).decode()
                        data = encode(record)
                        leaf = sha256(b"\x00" + data).digest()  # RFC 9162 §2.1.1 leaf hash
                        put_hashes(add(leaf))
                        put_entry((n, data))
                        receipts.append(Receipt(n, leaf))
                        prev, n = leaf, n + 1
                    results.append(receipts)
                Store.put_entries(conn, entries)
                Store.put_hash_run(conn, base, hashes)
            if prev is not None:
                self._tail = (n, tree, prev)  # committed: the next commit may start here
        except BaseException as exc:
            error = CommitError(f"append failed, nothing was written: {exc}")
            error.__cause__ = exc
            batch = batch or take()  # the lock was not had: fail what waits, the caller's own included
            for req in batch:
                req.error, req.done = error, True
            if not isinstance(exc, Exception):
                raise
            return
        self.commits += 1
        for req, receipts in zip(batch, results):
            req.receipts, req.done = receipts, True
