"""Full recomputation of a ledger database: the check an auditor relies on.

``verify_store`` reads every entry and every stored hash once, in order, with
flat memory, and checks:

* each entry is canonical JSON (``canonical.parse``) carrying its own
  ``index`` and, as ``prev``, the base64 leaf hash of the entry before it
  (docs/protocol.md §4);
* each stored hash equals the one recomputed from the entries: the leaf hash
  ``SHA-256(0x00 ‖ entry)`` and every interior hash of a complete subtree
  ``SHA-256(0x01 ‖ l ‖ r)`` (RFC 9162 §2.1.1), at the stored-hash index of Go's
  ``sumdb/tlog``; no hash is missing or extra;
* every signed checkpoint opens with the verifier key, names the ledger's
  origin, and its root equals the root recomputed at its size; no checkpoint
  is for more entries than the database holds (a truncated log);
* the latest checkpoint covers every entry: each commit stores one of its
  new size in the same transaction, so entries past it were added by hand.

It stops at the first bad entry or hash, since everything after it would
fail too, and names it.
"""

from __future__ import annotations

import hashlib
from binascii import b2a_base64
from dataclasses import dataclass, field
from typing import Callable, Iterator

from labelcheck.util import b64

from . import canonical, checkpoint, merkle, note

Progress = Callable[[int, int], None]
PROGRESS_EVERY = 16_384
PACE_EVERY = 512  # entries between calls of ``pace``


class EntryError(Exception):
    """Entry ``index`` is malformed or out of place in the chain."""

    def __init__(self, index: int, detail: str):
        super().__init__(f"entry {index}: {detail}")
        self.index = index


def parse_entry(data: bytes, index: int) -> dict:
    """The value of entry ``index`` once it is canonical JSON carrying that index."""
    try:
        value = canonical.parse(data)
    except canonical.CanonicalError as exc:
        raise EntryError(index, f"not canonical JSON: {exc}") from None
    if type(value) is not dict:
        raise EntryError(index, "is not a JSON object")
    got = value.get("index")
    if type(got) is not int or got != index:
        raise EntryError(index, f"carries index {got!r}: entries are out of order, missing or inserted")
    return value


def check_prev(value: dict, index: int, prev_leaf: bytes | None) -> None:
    """``prev`` must be the base64 leaf hash of entry ``index - 1`` ("" for entry 0)."""
    want = "" if prev_leaf is None else b64.encode(prev_leaf)
    if value.get("prev") != want:
        raise EntryError(
            index,
            f"prev {value.get('prev')!r} is not the leaf hash of entry {index - 1} ({want!r}): "
            f"the chain is broken (entry {index - 1} or this entry was changed)",
        )


def check_value(data: bytes, index: int, prev_leaf: bytes | None) -> dict:
    """The value of ``data`` after checking it is entry ``index`` of the chain.

    ``prev_leaf`` is the leaf hash of entry ``index - 1`` (None for entry 0).
    Raises EntryError naming what is wrong. (Verifiers call this once per
    entry: the good case is inline, the checks that explain a failure run
    only after one.)
    """
    try:
        value = _parse(data)
    except canonical.CanonicalError:
        value = None
    if (
        type(value) is dict
        and value.get("index") == index
        and type(value["index"]) is int
        # b64.encode, inline: this runs once per entry
        and value.get("prev") == ("" if prev_leaf is None else b2a_base64(prev_leaf, newline=False).decode("ascii"))
    ):
        return value
    value = parse_entry(data, index)  # from here on, raises naming the problem
    check_prev(value, index, prev_leaf)
    return value


def check_entry(data: bytes, index: int, prev_leaf: bytes | None) -> bytes:
    """The RFC 9162 §2.1.1 leaf hash of ``data`` once ``check_value`` accepts it."""
    check_value(data, index, prev_leaf)
    return _sha256(b"\x00" + data).digest()


_parse = canonical.parse
_sha256 = hashlib.sha256


class TreeStream:
    """RFC 9162 tree hashing over leaves given in order, with O(log n) memory.

    ``add`` returns the hashes Go's tlog stores for the new leaf (the leaf
    hash, then each subtree it completes, lowest first) and ``root`` is the
    tree hash of the leaves so far.
    """

    def __init__(self):
        self.size = 0
        self._frontier: list[bytes | None] = []  # by level: a complete subtree waiting for its sibling

    @staticmethod
    def frontier_ids(size: int) -> list[tuple[int, int]]:
        """(level, stored-hash index) of the complete subtrees tiling ``[0, size)``."""
        return [(level, merkle.stored_hash_index(level, (size >> level) - 1))
                for level in range(size.bit_length()) if size >> level & 1]

    @classmethod
    def resume(cls, size: int, frontier: dict[int, bytes]) -> "TreeStream":
        """Continue a tree of ``size`` leaves from its frontier hashes, by level."""
        tree = cls()
        tree.size = size
        tree._frontier = [frontier.get(level) for level in range(size.bit_length())]
        return tree

    def frontier_hash(self, level: int) -> bytes:
        """The complete subtree at ``level`` of the frontier (``frontier_ids``)."""
        return self._frontier[level]

    def add(self, leaf: bytes) -> list[bytes]:
        out, h, level, n = [leaf], leaf, 0, self.size
        while n >> level & 1:
            h = _sha256(b"\x01" + self._frontier[level] + h).digest()  # RFC 9162 §2.1.1 node hash
            self._frontier[level] = None
            out.append(h)
            level += 1
        if level == len(self._frontier):
            self._frontier.append(h)
        else:
            self._frontier[level] = h
        self.size += 1
        return out

    def root(self) -> bytes:
        acc = None
        for h in self._frontier:
            if h is not None:
                acc = h if acc is None else merkle.node_hash(h, acc)
        return merkle.EMPTY_ROOT if acc is None else acc


@dataclass
class VerifyReport:
    """What ``verify_store`` found. ``ok`` only when every check held."""

    size: int = 0
    checkpoint_size: int | None = None  # the largest signed checkpoint
    checkpoints: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    first_bad_index: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if not self.ok:
            return "ledger verification FAILED: " + "; ".join(self.problems)
        signed = "no signed checkpoint" if self.checkpoint_size is None else (
            f"signed checkpoint at size {self.checkpoint_size}"
        )
        return f"ledger OK: {self.size} entries, {signed}, {self.checkpoints} checkpoints checked"


def verify_store(store, verifier: note.Verifier, origin: str, *, progress: Progress | None = None,
                 pace: Callable[[int], None] | None = None) -> VerifyReport:
    """Recompute everything in ``store``; see the module docstring.

    ``pace(entries checked)`` is called every PACE_EVERY entries: it may
    sleep, to bound the cost of a background check, or raise to stop it.
    """
    report = VerifyReport()
    # The scan covers the log as it was when it began: appends made meanwhile
    # (the server may be running) are left for the next run.
    total = store.size()
    hashes = store.iter_rows("hashes", 0, merkle.stored_hash_count(total))
    cps = store.iter_rows("checkpoints", 0, total + 1)
    next_cp = next(cps, None)
    tree, prev, n = TreeStream(), None, 0

    def check_checkpoints() -> None:
        nonlocal next_cp
        while next_cp is not None and next_cp[0] == n:
            _check_checkpoint(report, next_cp, tree.root(), verifier, origin)
            next_cp = next(cps, None)

    check_checkpoints()
    for idx, data in store.iter_rows("entries", 0, total):
        if idx != n:
            return _bad(report, n, f"entry {n} is missing (the next stored entry is {idx})")
        try:
            leaf = check_entry(bytes(data), n, prev)
        except EntryError as exc:
            return _bad(report, n, str(exc))
        problem = check_hashes(n, tree.add(leaf), hashes)
        if problem:
            return _bad(report, n, problem)
        prev, n = leaf, n + 1
        report.size = n
        check_checkpoints()
        if progress and n % PROGRESS_EVERY == 0:
            progress(n, total)
        if pace and n % PACE_EVERY == 0:
            pace(n)
    # Read in this order, so that appends landing meanwhile cannot look like damage.
    latest = store.latest_checkpoint()
    have = store.hash_count()
    now = store.size()
    if have > merkle.stored_hash_count(max(n, now)):
        report.problems.append(f"stored hashes beyond {merkle.stored_hash_count(max(n, now))} belong to no entry")
    if next_cp is not None or (latest is not None and latest[0] > max(n, now)):
        size = next_cp[0] if next_cp is not None else latest[0]
        report.problems.append(
            f"a checkpoint was signed for {size} entries but the log holds only {n}: "
            "entries were removed (truncated log)"
        )
    signed = report.checkpoint_size or 0
    if n > signed and report.ok:
        report.problems.append(
            f"entries {signed} to {n - 1} are covered by no signed checkpoint; every commit signs one, "
            "so they were inserted by hand or the checkpoints covering them deleted"
        )
    if progress:
        progress(n, total)
    return report


def _bad(report: VerifyReport, index: int, problem: str) -> VerifyReport:
    report.problems.append(problem)
    report.first_bad_index = index
    return report


def check_hashes(n: int, want: list[bytes], rows: Iterator[tuple[int, bytes]]) -> str | None:
    """Compare the hashes stored for entry ``n`` (next in ``rows``) with ``want``; a problem or None."""
    base = merkle.stored_hash_index(0, n)
    for level, h in enumerate(want):
        row = next(rows, None)
        if row is None or row[0] != base + level:
            return f"entry {n}: stored hash {base + level} (level {level}) is missing"
        if bytes(row[1]) != h:
            if level == 0:
                return f"entry {n}: its bytes do not match its stored leaf hash (the entry was changed)"
            return f"entry {n}: stored hash {base + level} (level {level}) does not match the entries"
    return None


def _check_checkpoint(report: VerifyReport, row, root: bytes, verifier: note.Verifier, origin: str) -> None:
    size, data = row[0], bytes(row[1])
    report.checkpoints += 1
    try:
        cp = checkpoint.open_checkpoint(data, verifier, origin=origin)
    except (checkpoint.CheckpointError, note.NoteError) as exc:
        report.problems.append(f"checkpoint for size {size}: {exc}")
        return
    if cp.size != size:
        report.problems.append(f"checkpoint row for size {size} holds a note for size {cp.size}")
    elif cp.root != root:
        report.problems.append(
            f"checkpoint for size {size}: signed root {b64.encode(cp.root)} but the entries give {b64.encode(root)}"
        )
    else:
        report.checkpoint_size = size
