"""RFC 9162 §2.1 tree hashing over Go's ``sumdb/tlog`` stored-hash layout.

The tree over records ``D[0:n]`` is stored as in Go's
``golang.org/x/mod/sumdb/tlog``: every complete subtree's hash is kept once it
is finished, in one append-only sequence of *stored hashes*.  When record
``n`` is added we store its leaf hash and then the hash of every subtree that
leaf completes (one per trailing 1 bit of ``n``).  Any root or proof is then a
handful of stored hashes combined: O(log n) reads, never a rebuild.

``read_hashes`` arguments everywhere are ``Callable[[list[int]], list[bytes]]``
returning the stored hashes at the given stored-hash indexes, in the order
asked.  Each operation batches its reads into a single call.

``tree_hash(0)`` is ``EMPTY_ROOT`` (SHA-256 of the empty string, RFC 9162
§2.1.1); Go returns an all-zero hash.  The proofs built on this are in
``merkle``, which re-exports this module's public names (docs/protocol.md §4).
"""

from __future__ import annotations

from hashlib import sha256
from typing import Callable, Iterable

HASH_SIZE = 32
EMPTY_ROOT = sha256(b"").digest()

ReadHashes = Callable[[list[int]], list[bytes]]

LEAF = b"\x00"
NODE = b"\x01"


class ProofError(ValueError):
    """A proof that does not verify, or arguments no proof can exist for."""


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)`` (RFC 9162 §2.1.1)."""
    return sha256(LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)`` (RFC 9162 §2.1.1)."""
    return sha256(NODE + left + right).digest()


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
    check_hash(leaf, "leaf hash")
    m = _trailing_zeros(n + 1)
    # The left siblings, smallest subtree first; read in one batch.
    indexes = [stored_hash_index(i, (n >> i) - 1) for i in range(m)]
    old = read_hashes(indexes) if indexes else []
    check_read(indexes, old)
    out = [leaf]
    h = leaf
    for sib in old:
        h = sha256(NODE + sib + h).digest()
        out.append(h)
    return out


# --- subtree decomposition --------------------------------------------------


def split(size: int) -> int:
    """The largest power of two strictly smaller than ``size`` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def subtree_index(lo: int, hi: int) -> int | None:
    """The stored index of ``[lo, hi)`` when it is one complete subtree (its
    width a power of two, as the RFC recursion aligns it), else None: the
    common case of ``range_indexes``, without a list."""
    width = hi - lo
    if width & (width - 1):
        return None
    m = hi - 1  # stored_hash_index(level, n) with m its last record
    return 2 * m - m.bit_count() + width.bit_length() - 1


def range_indexes(lo: int, hi: int, out: list[int]) -> int:
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
        h = sha256(NODE + hashes[i] + h).digest()
    return h


def hashes_for_ranges(ranges: Iterable[tuple[int, int]], read_hashes: ReadHashes) -> list[bytes]:
    indexes: list[int] = []
    counts = [range_indexes(lo, hi, indexes) for lo, hi in ranges]
    if not indexes:
        return []
    stored = read_hashes(indexes)
    check_read(indexes, stored)
    if len(counts) == len(indexes):  # every range a complete subtree: the common case
        return list(stored)
    out, at = [], 0
    for c in counts:
        out.append(stored[at] if c == 1 else _fold(stored, at, c))
        at += c
    return out


def run_ranges(first: int, end: int, size: int) -> list[tuple[int, int]]:
    """Every range whose MTH is in PATH(i, D[0:size]) (RFC 9162 §2.1.3.1)
    for some ``i`` in ``[first, end)``: one descent of the tree, visiting
    only subtrees that hold a leaf of the run."""
    out: list[tuple[int, int]] = []

    def down(lo: int, hi: int) -> None:
        while hi - lo > 1:
            mid = lo + split(hi - lo)
            out.append((mid, hi) if first < mid else (lo, mid))
            if first < mid and end > mid:  # the run spans both halves: each needs the other
                out.append((lo, mid))
                down(lo, mid)
                lo = mid
            elif first < mid:
                hi = mid
            else:
                lo = mid

    down(0, size)
    return out


def run_paths(first: int, end: int, size: int, range_hash: Callable[[int, int], bytes]) -> list[list[bytes]]:
    """PATH(i, D[0:size]) (RFC 9162 §2.1.3.1, leaf side first) for each ``i``
    in ``[first, end)``, in order, from one descent: a run of leaves shares
    most of its paths, so each range's hash (``range_hash(lo, hi)``, the MTH
    of ``D[lo:hi]``) is asked for once, not once per leaf."""
    out: list[list[bytes]] = []

    def down(lo: int, hi: int, above: list[bytes]) -> None:
        if hi - lo == 1:
            out.append(above)
            return
        mid = lo + split(hi - lo)
        if first < mid:
            down(lo, mid, [range_hash(mid, hi), *above])
        if end > mid:
            down(mid, hi, [range_hash(lo, mid), *above])

    if 0 <= first < end <= size:
        down(0, size, [])
    return out


def tree_hash(size: int, read_hashes: ReadHashes) -> bytes:
    """MTH(D[0:size]) (RFC 9162 §2.1.1) from the stored hashes."""
    check_ints(size)
    if size < 0:
        raise ProofError("tree size must not be negative")
    if size == 0:
        return EMPTY_ROOT
    return hashes_for_ranges([(0, size)], read_hashes)[0]


# --- argument checks ---------------------------------------------------------


def check_ints(*values) -> None:
    for v in values:
        if type(v) is not int:
            raise ProofError(f"tree sizes and indexes must be integers, not {v!r}")


def check_hash(h: bytes, what: str) -> None:
    if not isinstance(h, bytes) or len(h) != HASH_SIZE:
        raise ProofError(f"{what} must be {HASH_SIZE} bytes")


def check_proof(proof) -> None:
    if not isinstance(proof, (list, tuple)):
        raise ProofError("proof must be a list of hashes")
    for p in proof:
        if not isinstance(p, bytes) or len(p) != HASH_SIZE:
            raise ProofError(f"every proof hash must be {HASH_SIZE} bytes")


def check_read(indexes: list[int], hashes: list[bytes]) -> None:
    if len(hashes) != len(indexes):
        raise ProofError(f"storage returned {len(hashes)} hashes for {len(indexes)} indexes")


# --- streaming root ----------------------------------------------------------


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
            h = sha256(NODE + stack.pop() + h).digest()
            n >>= 1
        stack.append(h)
        self.size += 1

    def append_data(self, data: bytes) -> bytes:
        """Hash ``data`` as a leaf, add it, and return its leaf hash."""
        h = sha256(LEAF + data).digest()
        self.append(h)
        return h

    def root(self) -> bytes:
        """MTH of everything appended so far (EMPTY_ROOT when nothing)."""
        stack = self._stack
        if not stack:
            return EMPTY_ROOT
        h = stack[-1]
        for i in range(len(stack) - 2, -1, -1):
            h = sha256(NODE + stack[i] + h).digest()
        return h


class Frontier:
    """The tree of ``size`` leaves as its frontier: by level, the hash of the
    complete subtree of that height tiling ``[0, size)``, None where ``size``
    has a 0 bit. Adding leaves yields exactly the hashes Go's tlog stores
    (``stored_hashes``), so a commit computes them without reading any."""

    __slots__ = ("size", "hashes")

    def __init__(self, size: int, hashes: list[bytes | None]):
        self.size, self.hashes = size, hashes

    @staticmethod
    def ids(size: int) -> list[tuple[int, int]]:
        """(level, stored-hash index) of the complete subtrees tiling ``[0, size)``."""
        return [(level, stored_hash_index(level, (size >> level) - 1))
                for level in range(size.bit_length()) if size >> level & 1]

    @classmethod
    def resume(cls, size: int, by_level: dict[int, bytes]) -> "Frontier":
        return cls(size, [by_level.get(level) for level in range(size.bit_length())])

    def extend(self, leaves: list[bytes]) -> list[bytes]:
        """Add ``leaves``; the stored hashes they add, in stored-hash order
        (each leaf, then the subtrees it completes, lowest first: RFC 9162 §2.1.1)."""
        out: list[bytes] = []
        put, frontier, n = out.append, self.hashes, self.size
        for h in leaves:
            put(h)
            level, m = 0, n
            while m & 1:
                h = sha256(NODE + frontier[level] + h).digest()
                frontier[level] = None
                put(h)
                level, m = level + 1, m >> 1
            if level == len(frontier):
                frontier.append(h)
            else:
                frontier[level] = h
            n += 1
        self.size = n
        return out

    def root(self) -> bytes:
        """MTH(D[0:size]) (RFC 9162 §2.1.1): the frontier folded, smallest first."""
        acc = None
        for h in self.hashes:
            if h is not None:
                acc = h if acc is None else sha256(NODE + h + acc).digest()
        return EMPTY_ROOT if acc is None else acc
