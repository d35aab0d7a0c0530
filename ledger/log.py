"""The audit ledger: an append-only, hash-chained, Merkle-tree log (docs/protocol.md §4).

``Ledger`` is what the server embeds. Its promises:

* ``append`` returns only after the entries are committed with
  ``synchronous=FULL``: an acknowledged entry survives a crash or power loss.
* A batch is one transaction: all of it or none of it.
* Many threads and many processes may append at once; writers serialise on
  SQLite's write lock (``BEGIN IMMEDIATE``), each reads the current tail inside
  its transaction, so the log stays one contiguous chain.
* Group commit: concurrent appends in one process queue up, and one thread
  (the leader) commits everything queued in a single transaction, so N
  waiting appends cost one fsync, not N (``commit``).
* Checkpoints are C2SP tlog-checkpoint notes signed with the ledger key. A new
  one is signed, at most once per ``checkpoint_interval``, when the log grew;
  the decision is taken inside a write transaction so several processes never
  sign two different heads for one size, and never a size below one signed.
* Start-up check: before anything else, the latest signed checkpoint is opened
  with the ledger key, its root recomputed from the stored hashes, and every
  entry after it (plus the few before it) re-hashed and re-chained. Damage
  stops the ledger with LedgerError instead of being signed over. The full
  recompute is ``verify`` (and ``labelcheck ledger verify``).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import BinaryIO, Callable

from . import bundle, canonical, checkpoint, keyfile, merkle, note
from .commit import CommitError, GroupCommit, Receipt
from .store import Store, StoreError
from .verify import EntryError, Progress, TreeStream, VerifyReport, check_entry, check_hashes, verify_store

DB_NAME = "ledger.db"
KEY_NAME = "ledger.key"
RECHECK_BEFORE_CHECKPOINT = 16  # leaves before the checkpoint re-hashed at start-up
RESERVED = ("index", "prev")


class LedgerError(Exception):
    """Bad arguments, a damaged database, or a write that failed (nothing written)."""


class Ledger:
    """See the module docstring. Thread-safe; one instance per process."""

    def __init__(
        self,
        db_path: str | os.PathLike,
        *,
        key_path: str | os.PathLike,
        origin: str,
        checkpoint_interval: float = 1.0,
        group_commit: bool = True,
        clock: Callable[[], float] = time.time,
    ):
        if not isinstance(origin, str) or not note.is_valid_name(origin):
            raise LedgerError(f"invalid ledger origin {origin!r}: it names the key, so no '+' and no white space")
        if not isinstance(checkpoint_interval, (int, float)) or checkpoint_interval < 0:
            raise LedgerError("checkpoint_interval must be a number of seconds >= 0")
        self.origin = origin
        self.checkpoint_interval = float(checkpoint_interval)
        self.group_commit = group_commit
        self._clock = clock
        self._seen_size = 0  # the largest log size read so far (it only grows)
        try:
            self._signer = keyfile.load_or_create(key_path, origin)
        except keyfile.KeyFileError as exc:
            raise LedgerError(str(exc)) from exc
        if self._signer.name != origin:
            raise LedgerError(f"ledger key {key_path} is for {self._signer.name!r}, not origin {origin!r}")
        self._verifier = self._signer.verifier()
        self.verifier_key = self._verifier.vkey
        self.key_id = self._verifier.key_id
        try:
            self._store = Store(db_path)
        except StoreError as exc:
            raise LedgerError(str(exc)) from exc
        self._init_threading()
        try:
            self._bind_identity()
            self._startup_check()
        except sqlite3.Error as exc:
            self._store.close()
            raise LedgerError(f"cannot open ledger {self._store.path}: {exc}") from exc
        except BaseException:
            self._store.close()
            raise

    @classmethod
    def open_dir(cls, data_dir: str | os.PathLike, *, origin: str, **kw) -> "Ledger":
        """The ledger in ``data_dir`` (``ledger.db``, ``ledger.key``), created on first use."""
        data_dir = Path(data_dir)
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(f"cannot create data directory {data_dir}: {exc}") from exc
        return cls(data_dir / DB_NAME, key_path=data_dir / KEY_NAME, origin=origin, **kw)

    def _init_threading(self) -> None:
        self._pid = os.getpid()
        self._cp_lock = threading.Lock()
        self._appender = GroupCommit(self._store, group=self.group_commit)

    @property
    def commits(self) -> int:
        """Append transactions committed by this instance (in this process)."""
        return self._appender.commits

    def _check_fork(self) -> None:
        if os.getpid() != self._pid:  # locks and queue belong to the parent's threads
            self._init_threading()

    def _bind_identity(self) -> None:
        """Record origin and key in the database on first use; refuse others after."""
        with self._store.write() as conn:
            for key, value in (("origin", self.origin), ("vkey", self.verifier_key)):
                have = self._store.meta(key, conn)
                if have is None:
                    Store.put_meta(conn, key, value)
                elif have != value:
                    raise LedgerError(
                        f"{self._store.path} belongs to a ledger with {key} {have!r}, not {value!r}: "
                        "wrong --origin or wrong ledger.key"
                    )

    # Start-up check ------------------------------------------------------

    def _startup_check(self) -> None:
        try:
            self._check_tail()
        except (StoreError, sqlite3.Error, merkle.ProofError) as exc:
            raise LedgerError(f"ledger {self._store.path} is damaged: {exc}") from exc

    def _check_tail(self) -> None:
        # One read transaction: a consistent snapshot even while other
        # processes append (WAL readers see the database as of their first read).
        with self._store.connection() as conn:
            conn.execute("BEGIN")
            try:
                self._check_tail_with(conn)
            finally:
                conn.execute("COMMIT")

    def _check_tail_with(self, conn: sqlite3.Connection) -> None:
        store = self._store
        size = store.size(conn)
        have = store.hash_count(conn)
        if have != merkle.stored_hash_count(size):
            raise StoreError(f"{size} entries need {merkle.stored_hash_count(size)} stored hashes, found {have}")
        latest = store.latest_checkpoint(conn)
        start = 0
        if latest is not None:
            cp = self._open_checkpoint(latest[1], latest[0])
            if size < cp.size:
                raise StoreError(
                    f"the database holds {size} entries but a checkpoint was signed for {cp.size}: entries were lost"
                )
            root = merkle.tree_hash(cp.size, lambda ids: store.read_hashes(ids, conn))
            if root != cp.root:
                raise StoreError(f"the stored tree at size {cp.size} does not match its signed checkpoint")
            start = max(0, cp.size - RECHECK_BEFORE_CHECKPOINT)
        self._check_entries(conn, start, size)

    def _check_entries(self, conn: sqlite3.Connection, start: int, end: int) -> None:
        """Re-hash and re-chain entries [start, end) against the stored hashes.

        Streams both tables once from ``start``, resuming the tree from its
        frontier there: O(end - start) work and O(log n) memory.
        """
        store = self._store
        ids = TreeStream.frontier_ids(start)
        need = [i for _, i in ids] + ([merkle.stored_hash_index(0, start - 1)] if start else [])
        got = store.read_hashes(need, conn)
        tree = TreeStream.resume(start, {level: h for (level, _), h in zip(ids, got)})
        prev = got[-1] if start else None
        hashes = store.iter_rows("hashes", merkle.stored_hash_index(0, start), merkle.stored_hash_count(end),
                                 conn=conn)
        n = start
        for idx, data in store.iter_rows("entries", start, end, conn=conn):
            if idx != n:
                raise StoreError(f"entry {n} is missing")
            try:
                leaf = check_entry(bytes(data), n, prev)
            except EntryError as exc:
                raise StoreError(str(exc)) from None
            if check_hashes(n, tree.add(leaf), hashes):
                raise StoreError(f"entry {n} does not match its stored hashes")
            prev, n = leaf, n + 1
        if n != end:
            raise StoreError(f"entry {n} is missing")

    def _open_checkpoint(self, data: bytes, size: int) -> checkpoint.Checkpoint:
        try:
            cp = checkpoint.open_checkpoint(data, self._verifier, origin=self.origin)
        except (checkpoint.CheckpointError, note.NoteError) as exc:
            raise StoreError(f"the checkpoint for size {size} does not verify with the ledger key: {exc}") from None
        if cp.size != size:
            raise StoreError(f"the checkpoint stored for size {size} is for size {cp.size}")
        return cp

    # Appending -----------------------------------------------------------

    def append(self, records: list[dict]) -> list[Receipt]:
        """Append ``records`` as consecutive entries; durable and atomic.

        Each record is a JSON object without ``index`` and ``prev`` (the ledger
        adds them) whose values have a canonical encoding (no floats). Returns
        one Receipt per record, in order. Raises LedgerError, with nothing
        written, on a bad record or a failed write.
        """
        records = _validate(records)
        if not records:
            return []
        self._check_fork()
        try:
            return self._appender.append(records)
        except CommitError as exc:
            raise LedgerError(str(exc)) from exc.__cause__

    # Reading -------------------------------------------------------------

    def size(self) -> int:
        return self._read(self._store.size)

    def entries(self, start: int, end: int) -> list[bytes]:
        """The exact bytes of entries ``start`` (inclusive) to ``end`` (exclusive)."""
        size = self.size()
        if not (_is_int(start) and _is_int(end) and 0 <= start <= end <= size):
            raise LedgerError(f"entries [{start!r}, {end!r}) are not within the log of size {size}")
        return self._read(self._store.entries, start, end)

    def leaf_hash(self, index: int) -> bytes:
        size = self.size()
        if not (_is_int(index) and 0 <= index < size):
            raise LedgerError(f"index {index!r} is not in the log of size {size}")
        return self._read(self._store.read_hashes, [merkle.stored_hash_index(0, index)])[0]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 §2.1.3.1 audit path of entry ``index`` in the tree of ``size``."""
        def valid(have: int) -> bool:
            return _is_int(index) and _is_int(size) and 0 <= index < size <= have

        return self._proof(merkle.prove_inclusion, index, size, valid,
                           f"no inclusion proof for index {index!r} in size {size!r}")

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 9162 §2.1.4.1 proof that tree ``old_size`` is a prefix of ``new_size``."""
        def valid(have: int) -> bool:
            return _is_int(old_size) and _is_int(new_size) and 0 <= old_size <= new_size <= have

        return self._proof(merkle.prove_consistency, old_size, new_size, valid,
                           f"no consistency proof from {old_size!r} to {new_size!r}")

    def _proof(self, prove, a: int, b: int, valid, refusal: str) -> list[bytes]:
        store = self._store
        try:
            with store.connection() as conn:  # one borrowed connection for the check and the reads
                # The log only grows, so a size seen once still holds: most
                # proofs then cost one read of O(log n) hashes and no size query.
                if not valid(self._seen_size):
                    self._seen_size = have = store.size(conn)
                    if not valid(have):
                        raise LedgerError(f"{refusal} (the log has {have} entries)")
                return prove(a, b, lambda ids: store.read_hashes(ids, conn))
        except (merkle.ProofError, StoreError, sqlite3.Error) as exc:
            raise LedgerError(f"cannot build proof: {exc}") from exc

    def _read(self, fn, *args):
        try:
            return fn(*args)
        except (StoreError, sqlite3.Error) as exc:
            raise LedgerError(f"ledger read failed: {exc}") from exc

    # Checkpoints ---------------------------------------------------------

    def checkpoint(self) -> bytes:
        """The latest signed checkpoint note, signing a newer one when due."""
        self._check_fork()
        try:
            latest = self._store.latest_checkpoint()
            if latest is not None and not self._due(latest, self._store.size()):
                return latest[1]
            with self._cp_lock:
                return self._sign_if_due()
        except (StoreError, sqlite3.Error, merkle.ProofError, checkpoint.CheckpointError) as exc:
            raise LedgerError(f"cannot produce a checkpoint: {exc}") from exc

    def _due(self, latest: tuple[int, bytes, float], size: int) -> bool:
        signed_size, _, signed_at = latest
        if size < signed_size:
            raise LedgerError(
                f"the log holds {size} entries but a checkpoint was signed for {signed_size}: "
                "refusing to sign a smaller tree (the database lost entries)"
            )
        now = self._clock()
        return size > signed_size and (now - signed_at >= self.checkpoint_interval or now < signed_at)

    def _sign_if_due(self) -> bytes:
        # A connection of its own: the append leader may be using the writer.
        with self._store.connection() as conn, self._store.write(conn):
            latest = self._store.latest_checkpoint(conn)
            size = self._store.size(conn)
            if latest is not None and not self._due(latest, size):
                return latest[1]
            root = merkle.tree_hash(size, lambda ids: self._store.read_hashes(ids, conn))
            data = checkpoint.sign_checkpoint(checkpoint.Checkpoint(self.origin, size, root), self._signer)
            Store.put_checkpoint(conn, size, data, self._clock())
        return data

    # Export and audit ----------------------------------------------------

    def export(self, out: BinaryIO, *, progress: Progress | None = None, filter=None,
               consistency_from: int | None = None) -> None:
        """Write a bundle (``ledger.bundle``) of the log at its latest checkpoint.

        With a non-empty ``filter`` (``ledger.filters.Filter``), a filtered
        bundle: the matching entries, each with its RFC 9162 §2.1.3 inclusion
        proof; ``consistency_from`` adds the §2.1.4 consistency proof from
        that earlier size.
        """
        data = self.checkpoint()
        try:
            bundle.write_bundle(out, self._store, data, self._verifier, progress=progress,
                                filter=filter, consistency_from=consistency_from)
        except (StoreError, sqlite3.Error, bundle.BundleError) as exc:
            raise LedgerError(f"export failed: {exc}") from exc

    def verify(self, *, progress: Progress | None = None) -> VerifyReport:
        """Recompute every leaf, link, stored hash and checkpoint (``ledger.verify``)."""
        try:
            return verify_store(self._store, self._verifier, self.origin, progress=progress)
        except (StoreError, sqlite3.Error) as exc:
            raise LedgerError(f"verification could not read the ledger: {exc}") from exc

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _is_int(x) -> bool:
    return type(x) is int


def _validate(records) -> list[dict]:
    """Shallow copies of ``records`` once each is known to encode canonically."""
    if not isinstance(records, (list, tuple)):
        raise LedgerError("append takes a list of records")
    out = []
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise LedgerError(f"record {i} is a {type(record).__name__}, not a JSON object")
        taken = [k for k in RESERVED if k in record]
        if taken:
            raise LedgerError(f"record {i}: {', '.join(taken)} is set by the ledger, not by callers")
        try:
            canonical.check(record)
        except canonical.CanonicalError as exc:
            raise LedgerError(f"record {i}: {exc}") from None
        out.append(dict(record))
    return out
