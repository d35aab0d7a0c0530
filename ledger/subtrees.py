"""Tree hashes of aligned ranges of leaves, combined in order (RFC 9162 §2.1.1).

The tree hash of ``n`` leaves splits them at the largest power of two below
``n``, so a complete subtree covers an aligned range ``[k·2^L, (k+1)·2^L)``.
Any range of leaves ``[a, b)`` is tiled by such aligned complete subtrees
(``range_nodes``); whoever hashed a range's leaves can hand over those few
subtree hashes instead of every leaf, and ``Frontier`` folds them into the
root exactly as if the leaves had been appended one by one (the same compact
range as ``merkle.RootBuilder``). Verifying a bundle in worker processes uses
this so the process that keeps the tree does O(log) work per block.
"""

from __future__ import annotations

from hashlib import sha256

from .tree import EMPTY_ROOT, NODE


def subtree_hash(leaves: list[bytes]) -> bytes:
    """The tree hash of a power-of-two number of leaf hashes."""
    while len(leaves) > 1:
        pairs = iter(leaves)
        leaves = [sha256(NODE + left + right).digest() for left, right in zip(pairs, pairs)]
    return leaves[0]


def range_nodes(start: int, leaves: list[bytes], cut: int = -1) -> list[tuple[int, bytes]]:
    """(level, hash) of the aligned complete subtrees tiling the leaves
    ``[start, start + len(leaves))``, in order; none straddles ``cut`` (an index
    where the caller needs the root of the leaves before it)."""
    nodes, pos, end = [], start, start + len(leaves)
    while pos < end:
        limit = cut if pos < cut < end else end
        level = 0
        while (pos >> level) & 1 == 0 and pos + (2 << level) <= limit:
            level += 1
        nodes.append((level, subtree_hash(leaves[pos - start : pos - start + (1 << level)])))
        pos += 1 << level
    return nodes


class Frontier:
    """The root of complete subtrees appended in order, in O(log n) memory."""

    __slots__ = ("size", "_stack")

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (level, hash), levels decreasing

    def append(self, level: int, h: bytes) -> None:
        """Add the subtree of 2**level leaves at the current size (a multiple of 2**level)."""
        if self.size & ((1 << level) - 1):
            raise ValueError(f"a subtree of 2**{level} leaves cannot start at {self.size}")
        self.size += 1 << level
        stack = self._stack
        while stack and stack[-1][0] == level:
            h = sha256(NODE + stack.pop()[1] + h).digest()
            level += 1
        stack.append((level, h))

    def root(self) -> bytes:
        """The tree hash of every leaf so far (EMPTY_ROOT when none)."""
        stack = self._stack
        if not stack:
            return EMPTY_ROOT
        h = stack[-1][1]
        for i in range(len(stack) - 2, -1, -1):
            h = sha256(NODE + stack[i][1] + h).digest()
        return h
