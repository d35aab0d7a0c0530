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
* Every commit signs: the transaction that appends entries also stores a
  C2SP tlog-checkpoint of the new size, signed with the ledger key
  (``commit``). A crash loses a whole commit or nothing, so every stored
  entry is covered by a signed checkpoint, and each append returns receipts
  carrying that checkpoint and the entry's inclusion proof in it.
* Start-up check (``startup``): the latest checkpoint against the stored
  tree and the last few entries; entries no checkpoint covers, which no
  commit leaves, mean rows were added by hand. Damage stops the ledger with
  LedgerDamaged instead of being signed over.
* Scrub: with ``scrub_duty`` > 0 a background thread re-hashes the whole log
  again and again (``scrub``), using at most that fraction of one CPU. On any
  mismatch ``damage`` says what, and appends raise LedgerDamaged. The full
  recompute on demand is ``verify`` (and ``labelcheck ledger verify``).
* What the database alone cannot show: entries deleted together with their
  stored hashes and every checkpoint that covered them (a rollback of the
  tail) leave an honest-looking shorter log. Receipts, witnesses and
  monitors holding an older checkpoint catch that (docs/protocol.md §4).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import BinaryIO, Callable

from . import bundle, canonical, checkpoint, keyfile, merkle, note
from .backend import DB_ERRORS, is_url, open_store
from .commit import CommitError, GroupCommit, Receipt, TailMismatch, checkpoint_signer
from .entry_batch import batch_parts
from .entry_encode import entry_parts
from .pgstore import PgStore
from .queue_append import QueueAppender
from .scrub import Scrubber
from .startup import check_tail, local_log_apart
from .sequencer import Sequencer
from .store import Store, StoreError
from .verify import Progress, VerifyReport, verify_store

DB_NAME = "ledger.db"
KEY_NAME = "ledger.key"
INDEX_DB_NAME = "claim_index.db"  # derived indexes beside a PostgreSQL ledger
RESERVED = ("index", "prev")


class LedgerError(Exception):
    """Bad arguments, a damaged database, or a write that failed (nothing written)."""


class LedgerDamaged(LedgerError):
    """The stored log does not match itself or its signed checkpoints: nothing
    more is appended (``str(exc)`` names the damage)."""


class Ledger:
    """See the module docstring. Thread-safe; one instance per process."""

    def __init__(
        self,
        db_path: str | os.PathLike,
        *,
        key_path: str | os.PathLike,
        origin: str,
        group_commit: bool = True,
        scrub_duty: float = 0.0,
        clock: Callable[[], float] = time.time,
    ):
        if not isinstance(origin, str) or not note.is_valid_name(origin):
            raise LedgerError(f"invalid ledger origin {origin!r}: it names the key, so no '+' and no white space")
        if not isinstance(scrub_duty, (int, float)) or not 0 <= scrub_duty <= 1:
            raise LedgerError("scrub_duty must be a fraction of one CPU in [0, 1] (0: no background check)")
        self.origin = origin
        self.group_commit = group_commit
        self.scrub_duty = float(scrub_duty)
        self.damage: str | None = None  # what the background check found wrong, if anything
        self._scrubber: Scrubber | None = None
        self._clock = clock
        self._seen_size = 0  # the largest log size read so far (it only grows)
        self._index_path: Path | None = None
        self._index_store: Store | None = None
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
            self._store = open_store(db_path)
        except StoreError as exc:
            raise LedgerError(str(exc)) from exc
        try:
            self._bind_identity()
            self._startup_check()
            self._init_threading()
        except DB_ERRORS as exc:
            self._store.close()
            raise LedgerError(f"cannot open ledger {self._store.path}: {exc}") from exc
        except BaseException:
            self._store.close()
            raise

    @classmethod
    def open_dir(cls, data_dir: str | os.PathLike, *, origin: str, database: str | None = None,
                 **kw) -> "Ledger":
        """The ledger in ``data_dir`` (``ledger.db``, ``ledger.key``), created on
        first use; with ``database`` (a PostgreSQL URL) the log is there and
        only the key in ``data_dir`` (every node holds the same one)."""
        data_dir = Path(data_dir)
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(f"cannot create data directory {data_dir}: {exc}") from exc
        if database and not is_url(database):
            raise LedgerError("the ledger database must be a postgresql:// URL (without one: ledger.db in the data dir)")
        ledger = cls(database or data_dir / DB_NAME, key_path=data_dir / KEY_NAME, origin=origin, **kw)
        ledger._index_path = data_dir / INDEX_DB_NAME
        if database and (why := local_log_apart(data_dir / DB_NAME, ledger.verifier_key, ledger.store)):
            ledger.close()
            raise LedgerError(why)
        return ledger

    def _init_threading(self) -> None:
        self._pid = os.getpid()
        self._cp_lock = threading.Lock()
        shared = isinstance(self._store, PgStore)  # many nodes: appends go through the sequencer
        self._appender = GroupCommit(self._store, sign=checkpoint_signer(self.origin, self._signer),
                                     group=self.group_commit and not shared, refuse=self._refuse_if_damaged,
                                     clock=self._clock)
        self._sequencer = Sequencer(self._store, self._appender).start() if shared else None
        self._queue = QueueAppender(self._store) if shared else None
        self._scrubber = None
        if self.scrub_duty > 0 and self.damage is None:
            self._scrubber = Scrubber(self._store, self._verifier, self.origin, duty=self.scrub_duty,
                                      on_damage=self._damaged).start()

    def _damaged(self, problem: str) -> None:
        self.damage = problem

    def _refuse_if_damaged(self) -> None:
        if self.damage is not None:
            raise LedgerDamaged(f"ledger {self._store.path} is damaged, nothing more is appended: {self.damage}")

    @property
    def commits(self) -> int:
        """Append transactions committed by this instance (in this process;
        with PostgreSQL, those it committed as the sequencer)."""
        return self._appender.commits if self._sequencer is None else self._sequencer.commits

    @property
    def store(self):
        """The ledger's store (``backend.LedgerStore``), for readers such as tiles."""
        return self._store

    @property
    def index_store(self) -> Store:
        """Where indexes derived from the entries live (``claim_index``): the
        ledger's own SQLite file, or with PostgreSQL a SQLite file of this
        node's data directory (rebuilt from the shared log when behind)."""
        if not isinstance(self._store, PgStore):
            return self._store
        if self._index_store is None:
            if self._index_path is None:
                raise LedgerError("a ledger on PostgreSQL keeps its indexes in a data directory: use open_dir")
            try:
                self._index_store = Store(self._index_path, tables=False)
            except StoreError as exc:
                raise LedgerError(str(exc)) from exc
        return self._index_store

    @property
    def sequencer(self) -> Sequencer | None:
        """This process's sequencer thread (PostgreSQL only)."""
        return self._sequencer

    @property
    def unreachable(self) -> str | None:
        """Why the database cannot be reached, while this process's sequencer
        finds it so (PostgreSQL; None for SQLite)."""
        return None if self._sequencer is None else self._sequencer.unreachable

    def _check_fork(self) -> None:
        if os.getpid() != self._pid:  # locks and queue belong to the parent's threads
            self._init_threading()

    def _bind_identity(self) -> None:
        """Record origin and key in the database on first use; refuse others after.

        Once recorded (they never change) they are only read: a node starts
        without the write lock, which a leader stopped inside a commit
        (SIGSTOP, a paused VM) holds until another node's sequencer ends its
        session (``lease``): a node starting alone beside it would wait for ever."""
        if self._identity_matches(None):
            return
        with self._store.write() as conn:
            if not self._identity_matches(conn):
                for key, value in (("origin", self.origin), ("vkey", self.verifier_key)):
                    if self._store.meta(key, conn) is None:
                        self._store.put_meta(conn, key, value)

    def _identity_matches(self, conn) -> bool:
        """Whether origin and key are both recorded as this ledger's; False
        when one is missing; LedgerError when one is another's."""
        matches = True
        for key, value in (("origin", self.origin), ("vkey", self.verifier_key)):
            have = self._store.meta(key, conn)
            if have is None:
                matches = False
            elif have != value:
                raise LedgerError(
                    f"{self._store.path} belongs to a ledger with {key} {have!r}, not {value!r}: "
                    "wrong --origin or wrong ledger.key"
                )
        return matches

    # Start-up check ------------------------------------------------------

    def _startup_check(self) -> None:
        try:
            check_tail(self._store, self._verifier, self.origin)
        except (StoreError, merkle.ProofError) as exc:
            raise LedgerDamaged(f"ledger {self._store.path} is damaged: {exc}") from exc

    # Appending -----------------------------------------------------------

    def append(self, records: list[dict]) -> list[Receipt]:
        """Append ``records`` as consecutive entries; durable and atomic.

        Each record is a JSON object without ``index`` and ``prev`` (the ledger
        adds them) whose values have a canonical encoding (no floats). Returns
        one Receipt per record, in order, each with the signed checkpoint of
        its commit and its inclusion proof in it. Raises LedgerError, with
        nothing written, on a bad record or a failed write; LedgerDamaged
        once the log was found damaged.
        """
        parts = _validate(records)
        if not parts:
            return []
        self._check_fork()
        self._refuse_if_damaged()
        try:
            if self._sequencer is None:
                return self._appender.append(parts)
            # The leader's process commits its own appends in memory; any
            # other queues them (sequencer).
            got = self._sequencer.append(parts)
            return got if got is not None else self._queue.append([dict(r) for r in records])
        except CommitError as exc:
            if isinstance(exc.__cause__, TailMismatch):
                self._damaged(str(exc.__cause__))
            if isinstance(exc.__cause__, (LedgerDamaged, TailMismatch)):
                self._refuse_if_damaged()
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
        except (merkle.ProofError, StoreError, *DB_ERRORS) as exc:
            raise LedgerError(f"cannot build proof: {exc}") from exc

    def _read(self, fn, *args):
        try:
            return fn(*args)
        except (StoreError, *DB_ERRORS) as exc:
            raise LedgerError(f"ledger read failed: {exc}") from exc

    # Checkpoints ---------------------------------------------------------

    def checkpoint(self) -> bytes:
        """The latest signed checkpoint note (every commit stores one; an
        empty log gets one of size 0 on first asking)."""
        self._check_fork()
        try:
            latest = self._store.latest_checkpoint()
            if latest is not None:
                return latest[1]
            with self._cp_lock:
                return self._sign_empty()
        except (StoreError, *DB_ERRORS, checkpoint.CheckpointError) as exc:
            raise LedgerError(f"cannot produce a checkpoint: {exc}") from exc

    def _sign_empty(self) -> bytes:
        # A connection of its own: the append leader may be using the writer.
        with self._store.connection() as conn, self._store.write(conn):
            latest = self._store.latest_checkpoint(conn)
            if latest is not None:  # a commit won the race
                return latest[1]
            if self._store.size(conn):
                raise LedgerDamaged(f"ledger {self._store.path} holds entries but no signed checkpoint")
            data = checkpoint_signer(self.origin, self._signer)(0, merkle.EMPTY_ROOT)
            self._store.put_checkpoint(conn, 0, data, self._clock())
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
        except (StoreError, *DB_ERRORS, bundle.BundleError) as exc:
            raise LedgerError(f"export failed: {exc}") from exc

    def verify(self, *, progress: Progress | None = None) -> VerifyReport:
        """Recompute every leaf, link, stored hash and checkpoint (``ledger.verify``)."""
        try:
            return verify_store(self._store, self._verifier, self.origin, progress=progress)
        except (StoreError, *DB_ERRORS) as exc:
            raise LedgerError(f"verification could not read the ledger: {exc}") from exc

    def close(self) -> None:
        if os.getpid() == self._pid:
            for thread in (self._scrubber, self._sequencer, self._queue):
                if thread is not None:
                    thread.stop()
        if self._index_store is not None:
            self._index_store.close()
        self._store.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _is_int(x) -> bool:
    return type(x) is int


def _validate(records) -> list:
    """Each record's ``entry_parts`` (its check and encoding in one pass):
    for the whole batch at once when it can (``entry_batch``), else record
    by record, the first bad one named."""
    if not isinstance(records, (list, tuple)):
        raise LedgerError("append takes a list of records")
    out = batch_parts(records)
    if out is not None:
        return out
    out = []
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise LedgerError(f"record {i} is a {type(record).__name__}, not a JSON object")
        if "index" in record or "prev" in record:
            taken = [k for k in RESERVED if k in record]
            raise LedgerError(f"record {i}: {', '.join(taken)} is set by the ledger, not by callers")
        try:
            out.append(entry_parts(record))
        except canonical.CanonicalError as exc:
            raise LedgerError(f"record {i}: {exc}") from None
    return out
