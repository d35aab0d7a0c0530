"""Merkle tree hashing and proofs, RFC 6962 / RFC 9162 §2.1.

The tree over records ``D[0:n]`` is stored as in Go's
``golang.org/x/mod/sumdb/tlog``: every complete subtree's hash is kept once it
is finished, in one append-only sequence of *stored hashes*.  When record
``n`` is added we store its leaf hash and then the hash of every subtree that
leaf completes (one per trailing 1 bit of ``n``).  Any root or proof is then a
handful of stored hashes combined: O(log n) reads, never a rebuild.

``read_hashes`` arguments everywhere are ``Callable[[list[int]], list[bytes]]``
returning the stored hashes at the given stored-hash indexes, in the order
asked.  Each operation batches its reads into a single call.

Differences from Go's tlog, on purpose:

* ``tree_hash(0)`` is ``EMPTY_ROOT`` (SHA-256 of the empty string, RFC 9162
  §2.1.1); Go returns an all-zero hash.
* A consistency proof from size 0 is not defined by RFC 9162 (Go refuses it).
  Here the empty tree is trivially a prefix of every tree: ``prove_consistency
  (0, n)`` is the empty proof, and ``verify_consistency(0, n, ...)`` accepts
  only an empty proof with ``old_root == EMPTY_ROOT``, whatever ``new_root``.
"""

from __future__ import annotations

from hashlib import sha256
from typing import Callable, Iterable

HASH_SIZE = 32
EMPTY_ROOT = sha256(b"").digest()

ReadHashes = Callable[[list[int]], list[bytes]]

_LEAF = b"\x00"
_NODE = b"\x01"


class ProofError(ValueError):
    """A proof that does not verify, or arguments no proof can exist for."""


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)`` (RFC 9162 §2.1.1)."""
    return sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)`` (RFC 9162 §2.1.1)."""
    return sha256(_NODE + left + right).digest()


# --- stored hash layout (tlog.StoredHashIndex and friends) -------------------


def stored_hash_index(level: int, n: int) -> int:
    """Index in the stored-hash sequence of the ``n``-th hash at ``level``.

    Level ``level``'s hash ``n`` covers records ``[n<<level, (n+1)<<level)``
    and is stored right after the leaf of its last record, ``m = (n+1<<level)-1``.
    Leaf ``m`` sits at ``m + m//2 + m//4 + ... = 2m - popcount(m)``.
    """
    if level < 0 or n < 0:
        raise ValueError("stored_hash_index: negative level or index")
    m = ((n + 1) << level) - 1
    return 2 * m - m.bit_count() + level


def split_stored_hash_index(index: int) -> tuple[int, int]:
    """Inverse of ``stored_hash_index``: the ``(level, n)`` stored at ``index``."""
    if index < 0:
        raise ValueError("split_stored_hash_index: negative index")
    # Leaf m is stored at 2m - popcount(m) <= index; find the last such m.
    m = index // 2
    at = 2 * m - m.bit_count()
    while True:
        # Record m stores 1 + trailing_zeros(m+1) hashes.
        nxt = at + 1 + _trailing_zeros(m + 1)
        if nxt > index:
            break
        m += 1
        at = 2 * m - m.bit_count()
    level = index - at
    return level, m >> level


def stored_hash_count(n: int) -> int:
    """How many hashes are stored for a tree of ``n`` records."""
    if n < 0:
        raise ValueError("stored_hash_count: negative size")
    # Each record m adds 1 + trailing_zeros(m+1); the sum over m < n is 2n - popcount(n).
    return 2 * n - n.bit_count()


def _trailing_zeros(x: int) -> int:
    return (x & -x).bit_length() - 1


def stored_hashes(n: int, leaf: bytes, read_hashes: ReadHashes) -> list[bytes]:
    """Hashes to append to storage when adding record ``n`` with leaf hash ``leaf``.

    As ``tlog.StoredHashesForRecordHash``: the leaf hash, then the hash of each
    subtree completed by it, from the smallest up.  Storage must hold exactly
    ``stored_hash_count(n)`` hashes before, and ``stored_hash_count(n + 1)`` after.
    """
    if n < 0:
        raise ValueError("stored_hashes: negative record index")
    _check_hash(leaf, "leaf hash")
    m = _trailing_zeros(n + 1)
    # The left siblings, smallest subtree first; read in one batch.
    indexes = [stored_hash_index(i, (n >> i) - 1) for i in range(m)]
    old = read_hashes(indexes) if indexes else []
    _check_read(indexes, old)
    out = [leaf]
    h = leaf
    for sib in old:
        h = sha256(_NODE + sib + h).digest()
        out.append(h)
    return out


# --- subtree decomposition --------------------------------------------------


def _split(size: int) -> int:
    """The largest power of two strictly smaller than ``size`` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def _range_indexes(lo: int, hi: int, out: list[int]) -> int:
    """Append the stored indexes of the complete subtrees tiling ``[lo, hi)``.

    ``[lo, hi)`` is a range the RFC recursion visits, so ``lo`` is aligned to
    the largest power of two not above ``hi - lo`` and the tiling is the binary
    digits of ``hi - lo``, largest first.  Returns how many were appended.
    """
    count = 0
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        m = lo + (1 << level) - 1  # last record of the subtree
        out.append(2 * m - m.bit_count() + level)
        lo += 1 << level
        count += 1
    return count


def _fold(hashes: list[bytes], start: int, count: int) -> bytes:
    """MTH of a range from its tiling hashes: ``node(c1, node(c2, ... c_k))``."""
    h = hashes[start + count - 1]
    for i in range(start + count - 2, start - 1, -1):
        h = sha256(_NODE + hashes[i] + h).digest()
    return h


def _hashes_for_ranges(ranges: Iterable[tuple[int, int]], read_hashes: ReadHashes) -> list[bytes]:
    indexes: list[int] = []
    counts = [_range_indexes(lo, hi, indexes) for lo, hi in ranges]
    if not indexes:
        return []
    stored = read_hashes(indexes)
    _check_read(indexes, stored)
    if len(counts) == len(indexes):  # every range a complete subtree: the common case
        return list(stored)
    out, at = [], 0
    for c in counts:
        out.append(stored[at] if c == 1 else _fold(stored, at, c))
        at += c
    return out


def tree_hash(size: int, read_hashes: ReadHashes) -> bytes:
    """MTH(D[0:size]) (RFC 9162 §2.1.1) from the stored hashes."""
    _check_ints(size)
    if size < 0:
        raise ProofError("tree size must not be negative")
    if size == 0:
        return EMPTY_ROOT
    return _hashes_for_ranges([(0, size)], read_hashes)[0]


# --- inclusion proofs (RFC 9162 §2.1.3) --------------------------------------


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The ranges whose MTH form PATH(index, D[0:size]), leaf side first."""
    lo, hi = 0, size
    ranges = []
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()
    return ranges


def prove_inclusion(index: int, size: int, read_hashes: ReadHashes) -> list[bytes]:
    """The audit path PATH(index, D[0:size]) (RFC 9162 §2.1.3.1)."""
    _check_ints(index, size)
    if size < 1:
        raise ProofError(f"no inclusion proof in a tree of size {size}")
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    return _hashes_for_ranges(_inclusion_ranges(index, size), read_hashes)


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> None:
    """Check that leaf hash ``leaf`` is record ``index`` of the tree ``(size, root)``.

    RFC 9162 §2.1.3.2, step by step.  Raises ProofError unless it holds.
    Note the proof binds index and size only through the path's shape: the
    size itself is bound to the root by the signed checkpoint.
    """
    _check_hash(leaf, "leaf hash")
    _check_hash(root, "root hash")
    _check_proof(proof)
    _check_ints(index, size)
    if size < 1 or not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = sha256(_NODE + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = sha256(_NODE + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    if r != root:
        raise ProofError("inclusion proof does not lead to the root")


# --- consistency proofs (RFC 9162 §2.1.4) ------------------------------------


def _consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """The ranges whose MTH form PROOF(old, D[0:new]) (RFC 9162 §2.1.4.1)."""
    lo, hi, complete = 0, new, True
    tail = []
    while True:
        size = hi - lo
        m = old - lo
        if m == size:
            # SUBPROOF(m, D[m], b): nothing when the old tree is this subtree
            # itself (the verifier holds its root), else the subtree's root.
            head = [] if complete else [(lo, hi)]
            break
        k = _split(size)
        if m <= k:
            tail.append((lo + k, hi))
            hi = lo + k
        else:
            tail.append((lo, lo + k))
            lo += k
            complete = False
    tail.reverse()
    return head + tail


def prove_consistency(old_size: int, new_size: int, read_hashes: ReadHashes) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) (RFC 9162 §2.1.4.1).

    Equal sizes and ``old_size == 0`` give the empty proof (see module doc).
    """
    _check_ints(old_size, new_size)
    if old_size < 0 or new_size < 0:
        raise ProofError("tree sizes must not be negative")
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    return _hashes_for_ranges(_consistency_ranges(old_size, new_size), read_hashes)


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> None:
    """Check that the tree ``(new_size, new_root)`` extends ``(old_size, old_root)``.

    RFC 9162 §2.1.4.2, step by step.  Equal sizes need the empty proof and
    equal roots; ``old_size == 0`` needs the empty proof and ``old_root ==
    EMPTY_ROOT``.  Raises ProofError unless it holds.
    """
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    _check_proof(proof)
    _check_ints(old_size, new_size)
    if old_size < 0 or new_size < 0:
        raise ProofError("tree sizes must not be negative")
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == 0:
        if proof:
            raise ProofError("a consistency proof from the empty tree must be empty")
        if old_root != EMPTY_ROOT:
            raise ProofError("old root of the empty tree must be SHA-256 of nothing")
        return
    if old_size == new_size:
        if proof:
            raise ProofError("a consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError("trees of equal size have different roots")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is a node
        proof = [old_root, *proof]
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = sha256(_NODE + c + fr).digest()
            sr = sha256(_NODE + c + sr).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = sha256(_NODE + sr + c).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != old_root:
        raise ProofError("consistency proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("consistency proof does not lead to the new root")


# --- argument checks ---------------------------------------------------------


def _check_ints(*values) -> None:
    for v in values:
        if type(v) is not int:
            raise ProofError(f"tree sizes and indexes must be integers, not {v!r}")


def _check_hash(h: bytes, what: str) -> None:
    if not isinstance(h, bytes) or len(h) != HASH_SIZE:
        raise ProofError(f"{what} must be {HASH_SIZE} bytes")


def _check_proof(proof) -> None:
    if not isinstance(proof, (list, tuple)):
        raise ProofError("proof must be a list of hashes")
    for p in proof:
        if not isinstance(p, bytes) or len(p) != HASH_SIZE:
            raise ProofError(f"every proof hash must be {HASH_SIZE} bytes")


def _check_read(indexes: list[int], hashes: list[bytes]) -> None:
    if len(hashes) != len(indexes):
        raise ProofError(f"storage returned {len(hashes)} hashes for {len(indexes)} indexes")


# --- streaming and in-memory trees -------------------------------------------


class RootBuilder:
    """The root of leaf hashes appended in order, in O(log n) memory.

    Keeps a compact range: the roots of the complete subtrees tiling
    ``[0, size)``, largest first, exactly the hashes ``stored_hashes`` would
    combine.  Used to verify a bundle of entries without any storage.
    """

    __slots__ = ("size", "_stack")

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[bytes] = []

    def append(self, leaf: bytes) -> None:
        """Add the next leaf hash (32 bytes; not checked, for speed)."""
        stack = self._stack
        n = self.size
        h = leaf
        while n & 1:  # each trailing 1 bit completes a subtree with its left sibling
            h = sha256(_NODE + stack.pop() + h).digest()
            n >>= 1
        stack.append(h)
        self.size += 1

    def append_data(self, data: bytes) -> bytes:
        """Hash ``data`` as a leaf, add it, and return its leaf hash."""
        h = sha256(_LEAF + data).digest()
        self.append(h)
        return h

    def root(self) -> bytes:
        """MTH of everything appended so far (EMPTY_ROOT when nothing)."""
        stack = self._stack
        if not stack:
            return EMPTY_ROOT
        h = stack[-1]
        for i in range(len(stack) - 2, -1, -1):
            h = sha256(_NODE + stack[i] + h).digest()
        return h


class MemoryHashes:
    """An in-memory stored-hash list, laid out as storage would be."""

    def __init__(self) -> None:
        self.hashes: list[bytes] = []
        self.size = 0

    def append_leaf(self, leaf: bytes) -> int:
        """Add the record with leaf hash ``leaf``; returns its index."""
        n = self.size
        self.hashes.extend(stored_hashes(n, leaf, self.read_hashes))
        self.size = n + 1
        return n

    def append_data(self, data: bytes) -> int:
        """Add the record ``data`` (hashed as a leaf); returns its index."""
        return self.append_leaf(leaf_hash(data))

    def read_hashes(self, indexes: list[int]) -> list[bytes]:
        hashes = self.hashes
        if indexes and min(indexes) < 0:
            raise ProofError("negative stored hash index")
        try:
            return [hashes[i] for i in indexes]
        except IndexError:
            raise ProofError("stored hash index beyond the stored tree") from None

    def root(self, size: int | None = None) -> bytes:
        return tree_hash(self.size if size is None else size, self.read_hashes)

    def prove_inclusion(self, index: int, size: int | None = None) -> list[bytes]:
        return prove_inclusion(index, self.size if size is None else size, self.read_hashes)

    def prove_consistency(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        new = self.size if new_size is None else new_size
        return prove_consistency(old_size, new, self.read_hashes)
