"""Appending to the ledger's store: one transaction per batch, group commit,
a signed checkpoint at every commit.

``GroupCommit.append`` writes records as consecutive entries (docs/protocol.md
§4: each gets its ``index`` and, as ``prev``, the base64 leaf hash of the
entry before it), the RFC 9162 §2.1.1 hashes they add to the stored tree, and
a C2SP tlog-checkpoint of the new size signed with the ledger key, in one
``BEGIN IMMEDIATE`` transaction committed with ``synchronous=FULL``. So every
stored entry is covered by a signed checkpoint: a crash loses a whole commit
or nothing, and an entry no checkpoint covers was put there by hand.

Group commit: concurrent appends in one process queue up, and one thread (the
leader) commits everything queued in a single transaction, so N waiting
appends cost one fsync and one signature, not N (the scheme of database group
commit, as in PostgreSQL's commit_delay or MySQL's binlog group commit).
Writers in other processes serialise on the store's write lock; each transaction
reads the current tail inside it, so the log stays one contiguous chain.

Each entry comes back with a ``Receipt`` (docs/protocol.md §3): its index,
leaf hash, the commit's signed checkpoint and the RFC 9162 §2.1.3 inclusion
proof of the leaf in that checkpoint's tree. The proofs of one commit are
computed from memory only, lazily, outside the write lock (``CommitTree``).
"""

from __future__ import annotations

import threading
import time
from binascii import b2a_base64
from hashlib import sha256
from typing import Callable

from . import checkpoint, merkle, note
from .backend import LedgerStore
from .cut_off import CutOff
from .queue_rows import encode_rows
from .tree import NODE, Frontier, range_indexes, run_paths, subtree_index

# RFC 9162 §2.1.1 leaf hash SHA-256(0x00 || entry): copies of a hash that
# has taken the prefix (no concatenated copy of each entry to hash).
_LEAF = sha256(b"\x00")

# Signs the tree (size, root) of a commit: the signed note bytes.
Sign = Callable[[int, bytes], bytes]


class CommitError(Exception):
    """The append transaction failed: nothing was written, or (its database
    connection lost) nothing was acknowledged; the message says which and
    ``__cause__`` why."""


class TailMismatch(Exception):
    """The latest signed checkpoint is not of the log's size: rows were
    removed or added by hand. Nothing is appended (or signed) over that."""


class StaleTail(Exception):
    """A commit written at the size this instance's last commit left (not
    read back) found those indexes taken: another writer appended since.
    Nothing was written and its requests are not done: commit them again
    after reading the tail (``__cause__``: the database's refusal)."""


def checkpoint_signer(origin: str, signer: note.Signer) -> Sign:
    """A ``Sign`` for the ledger named ``origin`` (C2SP tlog-checkpoint)."""
    def sign(size: int, root: bytes) -> bytes:
        return checkpoint.sign_checkpoint(checkpoint.Checkpoint(origin, size, root), signer)
    return sign


class CommitTree:
    """The stored hashes one commit knows without reading: the frontier of the
    tree before it (by stored-hash index) and every hash it added, from
    ``base`` on. Enough for the inclusion proof of any of its leaves
    ``[first, size)`` in the tree of ``size``: a sibling subtree left of a new
    leaf is either a frontier subtree or ends among the new leaves, so its
    hash is here. The proofs of all its leaves are built together, on first use.
    """

    __slots__ = ("size", "first", "base", "added", "frontier", "_paths", "_lock")

    def __init__(self, size: int, base: int, added: list[bytes], frontier: dict[int, bytes], first: int):
        self.size, self.base, self.added, self.frontier, self.first = size, base, added, frontier, first
        self._paths: list[list[bytes]] | None = None
        self._lock = threading.Lock()

    def _stored(self, sid: int) -> bytes:
        return self.added[sid - self.base] if sid >= self.base else self.frontier[sid]

    def _range_hash(self, lo: int, hi: int) -> bytes:
        sid = subtree_index(lo, hi)
        if sid is not None:  # a complete subtree (most are): one stored hash
            return self._stored(sid)
        ids: list[int] = []
        got = self._stored(ids[-1]) if range_indexes(lo, hi, ids) else b""
        for sid in reversed(ids[:-1]):  # MTH of an incomplete range (it ends at ``size``), RFC 9162 §2.1.1
            got = sha256(NODE + self._stored(sid) + got).digest()
        return got

    def inclusion(self, index: int) -> list[bytes]:
        """PATH(index, D[0:size]) (RFC 9162 §2.1.3.1) of a leaf of this commit."""
        with self._lock:
            if self._paths is None:
                self._paths = run_paths(self.first, self.size, self.size, self._range_hash)
        return self._paths[index - self.first]


class Receipt:
    """What an append returns for one entry (docs/protocol.md §3): ``index``,
    ``leaf_hash``, ``checkpoint`` (the signed note of the commit's tree, of
    ``size`` entries) and ``inclusion``, the RFC 9162 §2.1.3 proof of the leaf
    in that tree (computed on first use)."""

    __slots__ = ("index", "leaf_hash", "checkpoint", "_tree", "_proof")

    def __init__(self, index: int, leaf_hash: bytes, checkpoint: bytes, tree: CommitTree):
        self.index, self.leaf_hash, self.checkpoint = index, leaf_hash, checkpoint
        self._tree, self._proof = tree, None

    @property
    def size(self) -> int:
        return self._tree.size

    @property
    def inclusion(self) -> list[bytes]:
        if self._proof is None:
            self._proof = self._tree.inclusion(self.index)
        return list(self._proof)

    def __repr__(self) -> str:
        return f"Receipt(index={self.index}, size={self.size})"


class Request:
    """One append waiting for its commit: its encoded records, then its
    receipts or its error (``done`` once either is set)."""

    __slots__ = ("records", "receipts", "error", "done", "wake")

    def __init__(self, records: list[dict]):
        self.records = records
        self.receipts: list[Receipt] | None = None
        self.error: BaseException | None = None
        self.done = False
        self.wake: threading.Lock | None = None  # held while a GroupCommit.append waits

    def result(self) -> list[Receipt]:
        if self.error is not None:
            raise self.error
        return self.receipts


class GroupCommit:
    """Appends to ``store`` from many threads; see the module docstring.

    ``sign`` signs each commit's checkpoint (``checkpoint_signer``); None
    stores no checkpoint (benchmarks measure the cost of signing with it).
    ``refuse`` is called with the lock held before each commit and may raise
    to stop appends (a ledger found damaged). ``on_write(conn, [(request,
    first index)], size)`` runs inside each commit's transaction, after the
    checkpoint is stored (the sequencer records its results there). Holds
    locks and a queue of this process's threads: make a new one in a forked child.
    """

    def __init__(self, store: LedgerStore, *, sign: Sign | None, group: bool = True,
                 refuse: Callable[[], None] = lambda: None, clock: Callable[[], float] = time.time,
                 on_write: Callable[[object, list, int], None] | None = None):
        self.store, self.group, self.sign, self.refuse, self.clock = store, group, sign, refuse, clock
        self.on_write = on_write
        self._cv = threading.Condition()
        self._queue: list[Request] = []
        self._leader = False
        self._write_lock = threading.Lock()  # the writer connection, when not grouping
        # (size, tree, last leaf) as this instance's last commit left the log:
        # while no other writer has appended since, the next commit starts from
        # it instead of reading the frontier back. Only the committing thread uses it.
        self._tail: tuple[int, Frontier, bytes] | None = None
        self.commits = 0  # append transactions committed
        # Statements to send once a commit committed, in its round trip where
        # the store can (``store.write``'s ``then``): the sequencer's NOTIFY.
        self.after_commit: Callable | None = None

    def append(self, records: list[tuple[bytes, bytes, bytes]]) -> list[Receipt]:
        """Append ``records``, each given as its ``entry_encode.entry_parts``
        (so checked already); one Receipt per record. Raises CommitError."""
        req = Request(records)
        if not self.group:
            with self._write_lock:
                self._commit(lambda _conn: [req])
            return req.result()
        with self._cv:
            self._queue.append(req)
            waits = self._leader
            if waits:
                req.wake = threading.Lock()
                req.wake.acquire()
            self._leader = True
        if waits:
            # Woken exactly once: by the leader whose commit took this
            # request (done), or handed the lead (not done, still queued).
            req.wake.acquire()
            if req.done:
                return req.result()
        taken: list[Request] = []

        def take(_conn) -> list[Request]:
            batch = self._take_queue()
            taken.extend(batch)
            return batch

        try:
            self._commit(take)
        finally:
            self._hand_over(req, taken)
        return req.result()

    def _hand_over(self, leader: Request, taken: list[Request]) -> None:
        """After a commit: wake the appends it took, and hand the lead to
        the first one still queued (if any), so no thread wakes only to find
        its request not done yet and wait again."""
        for other in taken:
            if other is not leader and other.wake is not None:
                other.wake.release()
        with self._cv:
            if leader in self._queue:  # the commit stopped before taking anything (an interrupt)
                self._queue.remove(leader)
            if self._queue:
                self._queue[0].wake.release()  # the new leader; the leader flag stays set
            else:
                self._leader = False

    def tail_size(self) -> int | None:
        """The log's size as this instance's last commit left it, while no
        failure since made it unsure; None otherwise."""
        tail = self._tail
        return None if tail is None else tail[0]

    def forget_tail(self) -> None:
        """Read the tail back at the next commit (another writer may have appended)."""
        self._tail = None

    def commit_batch(self, take: Callable[[object], tuple[list[Request], list[list[dict]], Callable | None]],
                     conn=None, *, stale: Callable[[BaseException], bool] | None = None) -> tuple[list, int]:
        """One commit, now, on this thread (the sequencer's path): ``take(conn)``
        runs inside the write transaction and returns requests already
        encoded (this process's own), other requests' records (dicts,
        encoded here: one that does not encode fails the commit) and
        optionally the store's ``sizes`` already asked for (``sizes_later``),
        or known (the ``tail_size``, both sizes, written at unread: then
        ``stale(error)`` says whether a failure means that indexes were
        taken, and StaleTail is raised with the requests left not done).
        Raises CutOff, the requests left not done, when the connection was
        lost. Returns (per request, in that order, its receipts or its error; how many)."""
        got: list[Request] = []
        sizes: list[Callable] = []

        def requests(tx) -> list[Request]:
            if tx is None:  # the commit failed: what was taken, if anything, fails with it
                return got
            ready, records, asked = take(tx)
            sizes.extend([asked] if asked is not None else [])
            # Every request first, the rows' still empty: should an encoding
            # fail, they all fail with the commit (and the caller marks the rows).
            rows = [Request([]) for _ in records]
            got.extend(ready)
            got.extend(rows)
            for req, parts in zip(rows, encode_rows(records)):
                req.records = parts
            return got

        with self._write_lock:
            self._commit(requests, conn, lambda tx: (sizes[0] if sizes else self.store.sizes)(tx), stale,
                         hand_back=True)
        return [req.error if req.error is not None else req.receipts for req in got], len(got)

    def _take_queue(self) -> list[Request]:
        """Everything queued so far: the leader takes it once it holds the
        write lock, so appends that arrived while it waited share its commit."""
        with self._cv:
            batch, self._queue = self._queue, []
        return batch

    def _start(self, conn, n: int) -> tuple[Frontier, bytes | None]:
        """The tree and last leaf at size ``n``: this instance's own tail when
        no other writer appended since, else the frontier read back."""
        tail, self._tail = self._tail, None
        if tail is not None and tail[0] == n:  # append-only: same size, same tail
            return tail[1], tail[2]
        # The frontier (and the last leaf, for "prev") is all a batch needs
        # to read: every later hash is computed here (RFC 9162 §2.1.1).
        ids = Frontier.ids(n)
        need = [i for _, i in ids] + ([merkle.stored_hash_index(0, n - 1)] if n else [])
        got = self.store.read_hashes(need, conn)
        tree = Frontier.resume(n, {level: h for (level, _), h in zip(ids, got)})
        return tree, (got[-1] if n else None)

    def _commit(self, take: Callable[[object], list[Request]], conn=None, sizes: Callable | None = None,
                stale: Callable[[BaseException], bool] | None = None, hand_back: bool = False) -> None:
        """Write the requests ``take(conn)`` returns, in one transaction (on
        ``conn`` when given); fill in their results. ``take`` runs once the
        write lock is held; after a failure, ``take(None)`` gives what fails
        with it (what it took, or what waits when it took nothing).
        ``sizes(conn)`` reads the log's and the latest checkpoint's sizes
        (``store.sizes`` unless given); ``stale``: see ``commit_batch``;
        ``hand_back``: raise CutOff (see ``commit_batch``)."""
        store = self.store
        batch: list[Request] = []
        sent = False  # the block ran to its end: leaving it sends the COMMIT
        try:
            with store.write(conn, then=self.after_commit) as tx:
                conn = tx
                pid = conn.info.backend_pid if hand_back else None
                batch = take(conn)
                if not batch:  # nothing queued (the sequencer's idle try): nothing to sign
                    return
                self.refuse()
                n, signed_size = (sizes or store.sizes)(conn)
                if self.sign is not None and signed_size != n:
                    raise TailMismatch(
                        f"the log holds {n} entries but its latest signed checkpoint is for {signed_size}: "
                        + ("entries were removed" if signed_size > n else "entries were inserted by hand"))
                tree, prev = self._start(conn, n)
                frontier = {sid: tree.hashes[level] for level, sid in Frontier.ids(n)}
                base = merkle.stored_hash_count(n)  # each leaf's hashes follow the last one's
                entries: list[bytes] = []  # of the whole commit, from index n on
                leaves: list[bytes] = []
                put_entry, put_leaf, join, leaf_hash = entries.append, leaves.append, b"".join, _LEAF.copy
                p = b"" if prev is None else b2a_base64(prev, newline=False)
                for req in batch:
                    for head, mid, tail in req.records:
                        data = join((head, b"%d" % n, mid, p, tail))  # "index": n, "prev": p
                        h = leaf_hash()
                        h.update(data)
                        prev = h.digest()
                        put_entry(data)
                        put_leaf(prev)
                        p, n = b2a_base64(prev, newline=False), n + 1
                hashes = tree.extend(leaves)  # stored hashes base, base + 1, ...
                store.put_entry_run(conn, n - len(entries), entries)
                store.put_hash_run(conn, base, hashes)
                signed = b""
                if self.sign is not None and entries:
                    signed = self.sign(n, tree.root())
                    store.put_checkpoint(conn, n, signed, self.clock())
                firsts = _firsts(batch, n - len(entries))
                if self.on_write is not None:
                    self.on_write(conn, [(req, first if req.records else None) for req, first in zip(batch, firsts)], n)
                sent = True
            if prev is not None:
                self._tail = (n, tree, prev)  # committed: the next commit may start here
        except BaseException as exc:
            if batch and stale is not None and isinstance(exc, Exception) and stale(exc):
                raise StaleTail("another writer appended since this instance's last commit") from exc
            if batch and hand_back and getattr(conn, "broken", False) and isinstance(exc, Exception):
                if not sent:  # no COMMIT went out: nothing was written
                    raise CutOff(False) from exc
                start = n - len(entries)
                tree_ = CommitTree(n, base, hashes, frontier, start)
                raise CutOff(True, pid, start, leaves,
                             lambda: _receipts(batch, firsts, start, leaves, signed, tree_)) from exc
            error = exc if isinstance(exc, CommitError) else CommitError(_failure(exc, conn, sent))
            if error is not exc:
                error.__cause__ = exc
            batch = batch or take(None)  # the lock was not had: fail what waits, the caller's own included
            for req in batch:
                req.error, req.done = error, True
            if not isinstance(exc, Exception):
                raise
            return
        self.commits += 1
        start = n - len(entries)
        _receipts(batch, firsts, start, leaves, signed, CommitTree(n, base, hashes, frontier, start))


def _receipts(batch: list[Request], firsts: list[int], start: int, leaves: list[bytes], signed: bytes,
              tree: CommitTree) -> None:
    """Each request of a commit that wrote ``leaves`` from index ``start`` done, with its receipts."""
    for req, first in zip(batch, firsts):
        req.receipts = [Receipt(i, leaves[i - start], signed, tree) for i in range(first, first + len(req.records))]
        req.done = True


def _failure(exc: BaseException, conn, sent: bool) -> str:
    """Why a commit failed. A database connection that broke (psycopg's
    ``broken``) once the COMMIT was ``sent`` may have taken it with it,
    applied or not: nothing was acknowledged, and whether it was written is
    the database's to tell. Before that, a transaction never committed."""
    if sent and getattr(conn, "broken", False):
        return (f"append failed, the connection to the database was lost: nothing was acknowledged, "
                f"and whether the commit was written is unknown: {exc}")
    return f"append failed, nothing was written: {exc}"


def _firsts(batch: list[Request], first: int) -> list[int]:
    """The index of each request's first entry, the requests written in order from ``first``."""
    out = []
    for req in batch:
        out.append(first)
        first += len(req.records)
    return out
