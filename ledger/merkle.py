"""Merkle proofs, RFC 6962 / RFC 9162 §2.1.3 and §2.1.4, over the stored-hash
layout of ``tree`` (Go's ``sumdb/tlog``), and an in-memory stored tree.

This is the module callers import: it re-exports ``tree``'s hashing, layout,
``tree_hash`` and ``RootBuilder``, so one name reaches all of it
(docs/protocol.md §4).

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

from .tree import (
    EMPTY_ROOT,
    HASH_SIZE,
    NODE,
    ProofError,
    ReadHashes,
    RootBuilder,
    check_hash,
    check_ints,
    check_proof,
    hashes_for_ranges,
    leaf_hash,
    node_hash,
    split,
    split_stored_hash_index,
    stored_hash_count,
    stored_hash_index,
    stored_hashes,
    tree_hash,
)

__all__ = [
    "EMPTY_ROOT", "HASH_SIZE", "MemoryHashes", "ProofError", "ReadHashes", "RootBuilder", "leaf_hash",
    "node_hash", "prove_consistency", "prove_inclusion", "split_stored_hash_index", "stored_hash_count",
    "stored_hash_index", "stored_hashes", "tree_hash", "verify_consistency", "verify_inclusion",
]


# --- inclusion proofs (RFC 9162 §2.1.3) --------------------------------------


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The ranges whose MTH form PATH(index, D[0:size]), leaf side first."""
    lo, hi = 0, size
    ranges = []
    while hi - lo > 1:
        k = split(hi - lo)
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
    check_ints(index, size)
    if size < 1:
        raise ProofError(f"no inclusion proof in a tree of size {size}")
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    return hashes_for_ranges(inclusion_ranges(index, size), read_hashes)


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> None:
    """Check that leaf hash ``leaf`` is record ``index`` of the tree ``(size, root)``.

    RFC 9162 §2.1.3.2, step by step.  Raises ProofError unless it holds.
    Note the proof binds index and size only through the path's shape: the
    size itself is bound to the root by the signed checkpoint.
    """
    check_hash(leaf, "leaf hash")
    check_hash(root, "root hash")
    check_proof(proof)
    check_ints(index, size)
    if size < 1 or not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = sha256(NODE + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = sha256(NODE + r + p).digest()
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
        k = split(size)
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
    check_ints(old_size, new_size)
    if old_size < 0 or new_size < 0:
        raise ProofError("tree sizes must not be negative")
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    return hashes_for_ranges(_consistency_ranges(old_size, new_size), read_hashes)


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> None:
    """Check that the tree ``(new_size, new_root)`` extends ``(old_size, old_root)``.

    RFC 9162 §2.1.4.2, step by step.  Equal sizes need the empty proof and
    equal roots; ``old_size == 0`` needs the empty proof and ``old_root ==
    EMPTY_ROOT``.  Raises ProofError unless it holds.
    """
    check_hash(old_root, "old root")
    check_hash(new_root, "new root")
    check_proof(proof)
    check_ints(old_size, new_size)
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
            fr = sha256(NODE + c + fr).digest()
            sr = sha256(NODE + c + sr).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = sha256(NODE + sr + c).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != old_root:
        raise ProofError("consistency proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("consistency proof does not lead to the new root")


# --- an in-memory stored tree -----------------------------------------------


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
