"""Copying a ledger from one store to another, verifying as it goes
(``labelcheck ledger migrate``, docs/protocol.md §11).

``migrate(source, target)`` copies entries, stored hashes and signed
checkpoints from ``source`` (normally the SQLite ``ledger.db``) to ``target``
(normally PostgreSQL), up to the source's newest signed checkpoint:

* every entry is re-hashed and re-chained (``verify.check_entry``) and its
  RFC 9162 stored hashes recomputed and compared with the source's;
* every checkpoint copied opens with the ledger key and its root is the
  recomputed one at its size;
* each transaction ends at a checkpoint's size, so the target is at every
  moment a valid, fully signed ledger (a server may open it after any
  interruption) and a second run resumes where the first stopped;
* a target that already holds a different log (another origin or key, or
  entries that are not the source's) is refused, never mixed with it;
* at the end the target's root and newest checkpoint are the source's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import checkpoint, merkle, note
from .backend import LedgerStore
from .startup import open_stored_checkpoint
from .store import StoreError
from .verify import EntryError, TreeStream, check_entry, check_hashes

CHUNK = 10_000  # entries per transaction, at least (rounded up to a checkpoint's size)


class MigrateError(Exception):
    """The copy was refused or the source does not verify; the target keeps
    what it held, plus whole verified commits."""


@dataclass
class MigrateReport:
    size: int  # entries in the target afterwards
    copied: int  # entries this run copied
    checkpoints: int  # checkpoints this run copied
    ahead: int = 0  # entries the target holds beyond the source's newest checkpoint (appended there since)

    def summary(self) -> str:
        if self.ahead:
            return (f"nothing to copy: the target already holds the source's {self.size - self.ahead} entries, "
                    f"and {self.ahead} more appended there since (the same log, signed with the same key)")
        done = f"{self.copied} entries and {self.checkpoints} checkpoints copied" if self.copied or self.checkpoints \
            else "nothing to copy: the target already holds the whole log"
        return f"ledger migrated: {done}; the target holds {self.size} entries, signed, as the source"


def migrate(source: LedgerStore, target: LedgerStore, *, vkey: str | None = None,
            progress: Callable[[int, int], None] | None = None) -> MigrateReport:
    """See the module docstring. ``vkey``: the ledger key to check against
    (default: the one recorded in the source)."""
    origin, verifier = _identity(source, vkey)
    latest = source.latest_checkpoint()
    if latest is None:
        raise MigrateError(f"{source.path} has no signed checkpoint: nothing verified to copy")
    final = _open(latest[1], latest[0], verifier, origin)
    _bind(target, origin, verifier.vkey)
    have = _check_prefix(source, target, final)
    if have > final.size:  # the servers on the target appended since: nothing of the source is missing
        return MigrateReport(have, 0, 0, ahead=have - final.size)
    cps = [(size, bytes(data)) for size, data in source.iter_rows("checkpoints", have + (have > 0), final.size + 1)]
    tree, prev = _resume(target, have)
    copied = copied_cps = 0
    while cps:
        group = [cps.pop(0)]
        while cps and group[-1][0] - have < CHUNK:
            group.append(cps.pop(0))
        end = group[-1][0]
        with target.write() as conn:
            prev = _copy_range(source, target, conn, have, end, tree, prev, group, verifier, origin)
        copied, copied_cps, have = copied + end - have, copied_cps + len(group), end
        if progress:
            progress(have, final.size)
    if merkle.tree_hash(final.size, target.read_hashes) != final.root or \
            target.latest_checkpoint()[1] != latest[1]:
        raise MigrateError("after copying, the target's tree is not the source's newest checkpoint")
    return MigrateReport(final.size, copied, copied_cps)


def _identity(source: LedgerStore, vkey: str | None) -> tuple[str, note.Verifier]:
    origin, recorded = source.meta("origin"), source.meta("vkey")
    if origin is None or recorded is None:
        raise MigrateError(f"{source.path} has no origin or key recorded: it was never opened by a labelcheck server")
    try:
        verifier = note.Verifier.from_vkey(vkey or recorded)
    except note.NoteError as exc:
        raise MigrateError(f"bad ledger key: {exc}") from None
    if verifier.vkey != recorded:
        raise MigrateError(f"{source.path} records key {recorded!r}, not the one given")
    return origin, verifier


def _open(data: bytes, size: int, verifier: note.Verifier, origin: str) -> checkpoint.Checkpoint:
    """The source's checkpoint row for ``size``, verified (startup's check)."""
    try:
        return open_stored_checkpoint(data, size, verifier, origin)
    except StoreError as exc:
        raise MigrateError(f"the source: {exc}") from None


def _bind(target: LedgerStore, origin: str, vkey: str) -> None:
    """Record the log's origin and key in the target, or refuse another log's."""
    with target.write() as conn:
        for key, value in (("origin", origin), ("vkey", vkey)):
            have = target.meta(key, conn)
            if have is None:
                target.put_meta(conn, key, value)
            elif have != value:
                raise MigrateError(f"{target.path} holds another log ({key} {have!r}, not {value!r}): refused")


def _check_prefix(source: LedgerStore, target: LedgerStore, final: checkpoint.Checkpoint) -> int:
    """The target's size, once its log is a prefix of the source's, ending
    at a checkpoint, or extends it (servers appended to the target since an
    earlier copy: the source's tree at its newest checkpoint is the
    target's at that size, RFC 9162 §2.1.1)."""
    size = final.size
    have, signed = target.sizes()
    if have == 0:
        return 0
    if signed != have:
        raise MigrateError(f"{target.path} holds {have} entries, signed up to {signed}: refused")
    if have > size:
        same = _extends(source, target, final)
    else:
        same = merkle.tree_hash(have, target.read_hashes) == merkle.tree_hash(have, source.read_hashes) \
            and target.entries(have - 1, have) == source.entries(have - 1, have)
    if not same:
        raise MigrateError(f"{target.path} holds entries that differ from the source's: refused")
    return have


def _extends(source: LedgerStore, target: LedgerStore, final: checkpoint.Checkpoint) -> bool:
    """Whether the target's log, longer than the source's, begins with it."""
    size = final.size
    return size == 0 or (merkle.tree_hash(size, target.read_hashes) == final.root
                         and target.entries(size - 1, size) == source.entries(size - 1, size))


def _resume(target: LedgerStore, size: int) -> tuple[TreeStream, bytes | None]:
    ids = TreeStream.frontier_ids(size)
    need = [i for _, i in ids] + ([merkle.stored_hash_index(0, size - 1)] if size else [])
    got = target.read_hashes(need)
    return TreeStream.resume(size, {level: h for (level, _), h in zip(ids, got)}), (got[-1] if size else None)


def _copy_range(source, target, conn, start: int, end: int, tree: TreeStream, prev: bytes | None,
                cps: list[tuple[int, bytes]], verifier: note.Verifier, origin: str) -> bytes | None:
    """Copy entries [start, end) and the checkpoints ``cps`` within, verified, on ``conn``."""
    hashes = source.iter_rows("hashes", merkle.stored_hash_index(0, start), merkle.stored_hash_count(end))
    pending_cps = list(cps)
    base, out_hashes, rows, n = merkle.stored_hash_count(start), [], [], start
    for idx, data in source.iter_rows("entries", start, end):
        data = bytes(data)
        if idx != n:
            raise MigrateError(f"source entry {n} is missing")
        try:
            leaf = check_entry(data, n, prev)
        except EntryError as exc:
            raise MigrateError(f"source {exc}") from None
        new = tree.add(leaf)
        problem = check_hashes(n, new, hashes)
        if problem:
            raise MigrateError(f"source {problem}")
        out_hashes.extend(new)
        rows.append((n, data))
        prev, n = leaf, n + 1
        while pending_cps and pending_cps[0][0] == n:
            size, note_data = pending_cps.pop(0)
            if _open(note_data, size, verifier, origin).root != tree.root():
                raise MigrateError(f"the source's checkpoint for size {size} is not the root of its entries")
        if len(rows) >= CHUNK:
            target.put_entries(conn, rows)
            target.put_hash_run(conn, base, out_hashes)
            base, out_hashes, rows = base + len(out_hashes), [], []
    if n != end:
        raise MigrateError(f"source entry {n} is missing")
    target.put_entries(conn, rows)
    target.put_hash_run(conn, base, out_hashes)
    if start == 0 and cps and cps[0][0] == 0:  # the empty tree's checkpoint, before any entry
        _open(cps[0][1], 0, verifier, origin)
    for size, note_data in cps:
        target.put_checkpoint(conn, size, note_data, 0.0)
    return prev
