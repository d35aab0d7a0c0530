"""Nearest PDQ hashes within a Hamming distance, sublinear in the number of
hashes: multi-index hashing (Norouzi, Punjani and Fleet, "Fast Search in
Hamming Space with Multi-Index Hashing", CVPR 2012), docs/protocol.md §12.

A 256-bit hash is cut into 16 chunks of 16 bits. If two hashes differ in at
most ``t`` bits, then by the pigeonhole principle some chunk differs in at
most ``t // 16`` bits: none for ``t <= 15``, one for ``t <= 31``. So the
candidates are the hashes that share, in some chunk, a value within
``t // 16`` bits of the query's: 16 x 17 bucket probes for ``t = 31``. Each
bucket holds about n / 65536 hashes, so a query reads about 272 n / 65536
candidates (about 4,200 for a million) instead of n, and checks each exactly.

Each chunk's buckets are a counting-sort layout (``starts`` offsets into an
``order`` array of hash numbers), built once; hashes added later wait in a
small list scanned linearly, and are merged in when it grows past an eighth
of the rest. numpy is an optional dependency: :func:`available` says whether
it is installed.
"""

from __future__ import annotations

from itertools import combinations

try:  # optional, as PDQ hashing itself is
    import numpy as np
except ImportError:
    np = None

CHUNKS = 16
BUCKETS = 1 << 16
HASH_BYTES = 32
MIN_DELTA = 4096


def available() -> bool:
    return np is not None


class PdqSearch:
    """Hashes (32 bytes each) with an integer row each; :meth:`search` finds
    those within a distance of a query."""

    def __init__(self) -> None:
        if np is None:
            raise RuntimeError("PDQ search needs numpy")
        self._rows = np.zeros(0, dtype=np.int64)
        self._hashes = np.zeros((0, 4), dtype=np.uint64)
        self._starts = np.zeros((CHUNKS, BUCKETS + 1), dtype=np.int64)
        self._order = np.zeros((CHUNKS, 0), dtype=np.int32)
        self._delta: list[tuple[int, bytes]] = []
        self._delta_arrays = None
        self.last_row = 0  # the highest row added

    def __len__(self) -> int:
        return len(self._rows) + len(self._delta)

    def add(self, items: list[tuple[int, bytes]]) -> None:
        """Add ``(row, 32-byte hash)`` pairs; rows only grow."""
        for row, digest in items:
            if len(digest) != HASH_BYTES:
                raise ValueError("a PDQ hash is 32 bytes")
            self._delta.append((row, bytes(digest)))
            self.last_row = max(self.last_row, row)
        self._delta_arrays = None
        if len(self._delta) > max(MIN_DELTA, len(self._rows) // 8):
            self._merge()

    def _merge(self) -> None:
        rows, hashes = self._arrays(self._delta)
        self._rows = np.concatenate([self._rows, rows])
        self._hashes = np.concatenate([self._hashes, hashes])
        self._delta, self._delta_arrays = [], None
        chunks = self._hashes.view(np.uint8).reshape(-1, HASH_BYTES).view(">u2").astype(np.int64)
        order = np.empty((CHUNKS, len(self._rows)), dtype=np.int32)
        for j in range(CHUNKS):
            order[j] = np.argsort(chunks[:, j], kind="stable")
            self._starts[j, 1:] = np.cumsum(np.bincount(chunks[:, j], minlength=BUCKETS))
        self._order = order

    def _arrays(self, items):
        rows = np.fromiter((r for r, _ in items), dtype=np.int64, count=len(items))
        blob = b"".join(h for _, h in items)
        return rows, np.frombuffer(blob, dtype=np.uint64).reshape(-1, 4).copy()

    def search(self, query: bytes, threshold: int, limit: int = 8) -> list[tuple[int, int]]:
        """``(distance, row)`` of up to ``limit`` hashes within ``threshold``
        bits of ``query`` (0 <= threshold < 48), nearest first."""
        if not 0 <= threshold < 3 * CHUNKS:
            raise ValueError("threshold must be 0 to 47 bits")
        q = np.frombuffer(bytes(query), dtype=np.uint64)
        found = []
        if len(self._rows):
            cands = self._candidates(query, threshold // CHUNKS)
            found.append(self._within(self._hashes[cands], self._rows[cands], q, threshold))
        if self._delta:
            if self._delta_arrays is None:
                self._delta_arrays = self._arrays(self._delta)
            rows, hashes = self._delta_arrays
            found.append(self._within(hashes, rows, q, threshold))
        if not found:
            return []
        dist = np.concatenate([d for d, _ in found])
        rows = np.concatenate([r for _, r in found])
        best = np.lexsort((rows, dist))[:limit]
        return [(int(dist[i]), int(rows[i])) for i in best]

    def _candidates(self, query: bytes, radius: int):
        """Hash numbers sharing a chunk within ``radius`` bits of the query's."""
        values = np.frombuffer(bytes(query), dtype=">u2").astype(np.int64)
        masks = np.array([0] + [sum(1 << b for b in bits) for r in range(1, radius + 1)
                                for bits in combinations(range(16), r)], dtype=np.int64)
        probes = values[:, None] ^ masks[None, :]  # (16, probes per chunk)
        chunk = np.arange(CHUNKS)[:, None]
        lo = (self._starts[chunk, probes]).ravel()
        hi = (self._starts[chunk, probes + 1]).ravel()
        base = np.repeat(np.arange(CHUNKS) * len(self._rows), probes.shape[1])
        lens = hi - lo
        total = int(lens.sum())
        if not total:
            return np.zeros(0, dtype=np.int64)
        # Positions lo..hi-1 of every probe, in one flat gather.
        starts = np.repeat(lo + base - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
        flat = self._order.ravel()[starts + np.arange(total)]
        return np.unique(flat)

    def _within(self, hashes, rows, q, threshold: int):
        dist = _popcount(hashes ^ q).sum(axis=1)
        keep = dist <= threshold
        return dist[keep], rows[keep]


def _popcount(words):
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(words).astype(np.int64)
    bits = np.unpackbits(words.view(np.uint8), axis=-1)
    return bits.reshape(words.shape[0], words.shape[1], 64).sum(axis=2)
