"""The ledger's start-up check (docs/protocol.md §4): cheap, before anything is appended.

The latest signed checkpoint is opened with the ledger key and its root
recomputed from the stored hashes; the last few entries it covers are
re-hashed and re-chained. Every commit stores a checkpoint of its new size in
the same transaction (``commit``), so no honest history leaves entries past
the latest checkpoint: such a tail was inserted by hand (or the checkpoints
covering it deleted), and is refused. The whole log is re-hashed later, in
the background (``scrub``), and by ``verify``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from . import checkpoint, merkle, note
from .backend import LedgerStore
from .store import Store, StoreError
from .verify import EntryError, TreeStream, check_entry, check_hashes

RECHECK_BEFORE_CHECKPOINT = 16  # leaves before the checkpoint re-hashed at start-up


def check_tail(store: LedgerStore, verifier: note.Verifier, origin: str) -> None:
    """Raise StoreError naming the damage; see the module docstring."""
    # One read transaction: a consistent snapshot even while other
    # processes append (WAL readers see the database as of their first read).
    with store.snapshot() as conn:
        _check_tail_with(store, conn, verifier, origin)


def _check_tail_with(store: LedgerStore, conn, verifier: note.Verifier, origin: str) -> None:
    size = store.size(conn)
    have = store.hash_count(conn)
    if have != merkle.stored_hash_count(size):
        raise StoreError(f"{size} entries need {merkle.stored_hash_count(size)} stored hashes, found {have}")
    latest = store.latest_checkpoint(conn)
    signed = 0
    if latest is not None:
        cp = open_stored_checkpoint(latest[1], latest[0], verifier, origin)
        if size < cp.size:
            raise StoreError(
                f"the database holds {size} entries but a checkpoint was signed for {cp.size}: entries were lost"
            )
        root = merkle.tree_hash(cp.size, lambda ids: store.read_hashes(ids, conn))
        if root != cp.root:
            raise StoreError(f"the stored tree at size {cp.size} does not match its signed checkpoint")
        signed = cp.size
    if size > signed:
        raise StoreError(
            f"entries {signed} to {size - 1} are covered by no signed checkpoint; every commit signs one, "
            "so they were inserted by hand or the checkpoints covering them deleted"
        )
    check_entries(store, conn, max(0, signed - RECHECK_BEFORE_CHECKPOINT), size)


def check_entries(store: LedgerStore, conn, start: int, end: int) -> None:
    """Re-hash and re-chain entries [start, end) against the stored hashes.

    Streams both tables once from ``start``, resuming the tree from its
    frontier there: O(end - start) work and O(log n) memory.
    """
    ids = TreeStream.frontier_ids(start)
    need = [i for _, i in ids] + ([merkle.stored_hash_index(0, start - 1)] if start else [])
    got = store.read_hashes(need, conn)
    tree = TreeStream.resume(start, {level: h for (level, _), h in zip(ids, got)})
    prev = got[-1] if start else None
    hashes = store.iter_rows("hashes", merkle.stored_hash_index(0, start), merkle.stored_hash_count(end), conn=conn)
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


def open_stored_checkpoint(data: bytes, size: int, verifier: note.Verifier, origin: str) -> checkpoint.Checkpoint:
    """The checkpoint stored in the row for ``size``, once it verifies and is for that size."""
    try:
        cp = checkpoint.open_checkpoint(data, verifier, origin=origin)
    except (checkpoint.CheckpointError, note.NoteError) as exc:
        raise StoreError(f"the checkpoint for size {size} does not verify with the ledger key: {exc}") from None
    if cp.size != size:
        raise StoreError(f"the checkpoint stored for size {size} is for size {cp.size}")
    return cp


def local_log_apart(local: Path, vkey: str, shared: LedgerStore) -> str | None:
    """Why a node on a shared database must not start: ``local`` (its data
    directory's ``ledger.db``) holds a log signed with the same key that the
    shared log does not contain: entries not copied yet (the database is
    empty or shorter), or another history (a different root at the local
    log's newest checkpoint). Either way one key would sign two histories:
    what monitors and witnesses call a split view (docs/protocol.md §11).
    None when there is nothing to fear (no such file, another key, empty)."""
    if not local.exists():
        return None
    try:
        store = Store(local, create=False)
    except (StoreError, sqlite3.Error):
        return None  # not a ledger this key signed (or unreadable): nothing of this log to lose
    try:
        latest = store.latest_checkpoint() if store.meta("vkey") == vkey else None
    except sqlite3.Error:
        latest = None
    finally:
        store.close()
    if latest is None or latest[0] == 0:
        return None
    size, have = latest[0], shared.size()
    copy = f"copy it there first (labelcheck ledger migrate --from {local} --to URL), or move {local} away"
    if have < size:
        return (f"{local} holds {size} entries signed with this ledger key, the database only {have}: {copy} "
                "(a log begun anew there under the same key would be another history)")
    try:
        root = checkpoint.open_checkpoint(latest[1], note.Verifier.from_vkey(vkey)).root
    except (checkpoint.CheckpointError, note.NoteError):
        return None  # not signed by this key after all
    if merkle.tree_hash(size, shared.read_hashes) != root:
        return (f"{local} and the database hold different histories signed with this ledger key (their trees "
                f"differ at size {size}): move {local} away if it is abandoned, and keep it as evidence")
    return None
