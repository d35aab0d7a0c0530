"""C2SP tlog-tiles: the log as static tiles of hashes and bundles of entries.

A hash tile is the ``n``-th run of 256 consecutive Merkle tree hashes at tree
level ``8 * L`` (C2SP tlog-tiles, "Merkle Tree"): exactly the hashes Go's
``sumdb/tlog`` stores at those levels, so a tile is one read of the stored
hashes (``tree.stored_hash_index``).  An entry bundle holds the entries of a
level-0 tile, each as a 2-byte big-endian length and its leaf bytes (the
canonical JSON line without its newline).  A tile of fewer than 256 hashes is
partial (``.p/<W>``).  Paths, relative to the log's prefix (docs/protocol.md
§10)::

    tile/<L>/<N>[.p/<W>]        tile/entries/<N>[.p/<W>]

where ``<N>`` is written in 3-digit path elements, all but the last prefixed
with ``x`` (1234067 -> ``x001/x234/067``).  Parsing is strict: only the one
canonical spelling of a tile is accepted (as Go's ``tlog.ParseTilePath``).

Reads go through a *source*: anything with ``read_hashes(ids)`` and
``entries(start, end)``, as ``store.Store`` has.  ``TileHashes`` goes the
other way: the stored hashes of a tree rebuilt from its tiles alone, so any
RFC 9162 proof can be computed by a client holding only tiles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Protocol

from .tree import HASH_SIZE, node_hash, split_stored_hash_index, stored_hash_index

HEIGHT = 8  # tree levels per tile
WIDTH = 1 << HEIGHT  # hashes in a full tile
MAX_LEVEL = 63
ENTRIES = -1  # the level of entry bundles
MAX_ENTRY = 0xFFFF  # the longest entry a 2-byte length can frame
MAX_SEGMENTS = 7  # of <N>: up to 10**21 tiles, far past any 64-bit tree size
PATH_BASE = 1000

_DECIMAL = re.compile(r"(0|[1-9][0-9]{0,2})\Z")  # L and W: no leading zeros
_SEGMENT = re.compile(r"x?[0-9]{3}\Z")


class TileError(ValueError):
    """A malformed tile path or entry bundle, or an entry no bundle can hold."""


class TileMissing(LookupError):
    """A well-formed tile that the log of this size does not have (yet)."""


class Source(Protocol):
    def read_hashes(self, ids: list[int]) -> list[bytes]: ...

    def entries(self, start: int, end: int) -> list[bytes]: ...


@dataclass(frozen=True)
class Tile:
    """Tile ``n`` of ``level`` (``ENTRIES`` for an entry bundle), ``width`` wide."""

    level: int
    n: int
    width: int = WIDTH

    def __post_init__(self) -> None:
        if not (ENTRIES <= self.level <= MAX_LEVEL and 0 <= self.n and 1 <= self.width <= WIDTH):
            raise TileError(f"no such tile: level {self.level}, number {self.n}, width {self.width}")

    @property
    def full(self) -> bool:
        return self.width == WIDTH

    @property
    def path(self) -> str:
        """The C2SP tlog-tiles path, relative to the log's prefix."""
        level = "entries" if self.level == ENTRIES else str(self.level)
        suffix = "" if self.full else f".p/{self.width}"
        return f"tile/{level}/{encode_index(self.n)}{suffix}"

    @property
    def start(self) -> int:
        """The first hash (at level ``8 * level``) or entry the tile holds."""
        return self.n * WIDTH

    def end_entry(self) -> int:
        """One past the last entry this tile's hashes cover: the log must be
        at least this large for the tile to exist."""
        return (self.start + self.width) << (HEIGHT * max(self.level, 0))

    def hash_ids(self) -> list[int]:
        """The stored-hash indexes of the tile's hashes, in order."""
        level = HEIGHT * self.level
        return [stored_hash_index(level, k) for k in range(self.start, self.start + self.width)]


def encode_index(n: int) -> str:
    """``n`` as 3-digit path elements, ``x`` before all but the last."""
    if type(n) is not int or n < 0:
        raise TileError(f"tile number must be a non-negative integer, not {n!r}")
    text = f"{n % PATH_BASE:03d}"
    while n >= PATH_BASE:
        n //= PATH_BASE
        text = f"x{n % PATH_BASE:03d}/{text}"
    return text


def parse_path(path: str) -> Tile:
    """The tile named by ``path`` (``tile/...``); TileError unless canonical."""
    if not isinstance(path, str) or not path.isascii():
        raise TileError("a tile path is ASCII text")
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile" or len(parts) > 3 + MAX_SEGMENTS:
        raise TileError(f"not a tile path: {path[:120]!r}")
    level = ENTRIES if parts[1] == "entries" else _decimal(parts[1], "level")
    width, segments = WIDTH, parts[2:]
    if len(segments) >= 2 and segments[-2].endswith(".p"):
        width = _decimal(segments[-1], "width")
        segments = segments[:-2] + [segments[-2][:-2]]
    if len(segments) > MAX_SEGMENTS:
        raise TileError(f"tile number of more than {MAX_SEGMENTS} path elements: {path[:120]!r}")
    n = 0
    for seg in segments:
        if not _SEGMENT.match(seg):
            raise TileError(f"bad tile number element {seg[:20]!r}")
        n = n * PATH_BASE + int(seg.lstrip("x"))
    try:
        tile = Tile(level, n, width)
    except TileError:
        raise TileError(f"not a tile path: {path[:120]!r}") from None
    if tile.path != path:
        raise TileError(f"not the canonical tile path: {path[:120]!r} (that tile is {tile.path})")
    return tile


def _decimal(text: str, what: str) -> int:
    if not _DECIMAL.match(text):
        raise TileError(f"bad tile {what} {text[:20]!r}")
    return int(text)


# --- tiles of a log ---------------------------------------------------------


def tiles_for_size(size: int) -> list[Tile]:
    """Every tile and entry bundle of a tree of ``size``: full tiles, then
    the partial one (if any) of each level, entry bundles first."""
    out = []
    for level in range(ENTRIES, MAX_LEVEL + 1):
        hashes = size >> (HEIGHT * max(level, 0))
        if hashes == 0:
            break
        out.extend(Tile(level, n) for n in range(hashes // WIDTH))
        if hashes % WIDTH:
            out.append(Tile(level, hashes // WIDTH, hashes % WIDTH))
    return out


def read_tile(tile: Tile, size: int, source: Source) -> bytes:
    """The bytes of ``tile`` in the log of ``size`` entries read from ``source``.

    TileMissing when the log is too small for it; TileError when an entry is
    too long to frame in a bundle.
    """
    if tile.end_entry() > size:
        raise TileMissing(f"{tile.path} is not in the log of size {size}")
    if tile.level == ENTRIES:
        return encode_bundle(source.entries(tile.start, tile.start + tile.width), first=tile.start)
    return b"".join(source.read_hashes(tile.hash_ids()))


def encode_bundle(entries: list[bytes], *, first: int = 0) -> bytes:
    """An entry bundle: each entry as a uint16 big-endian length, then its bytes."""
    parts = []
    for i, data in enumerate(entries):
        if len(data) > MAX_ENTRY:
            raise TileError(f"entry {first + i} is {len(data)} bytes: an entry bundle frames at most {MAX_ENTRY}")
        parts.append(len(data).to_bytes(2, "big"))
        parts.append(data)
    return b"".join(parts)


def decode_bundle(data: bytes, width: int | None = None) -> list[bytes]:
    """The entries of a bundle; TileError if it is cut short, has bytes over,
    or (given ``width``) holds another number of entries."""
    out, at = [], 0
    while at < len(data):
        if at + 2 > len(data):
            raise TileError("entry bundle ends inside a length")
        end = at + 2 + int.from_bytes(data[at:at + 2], "big")
        if end > len(data):
            raise TileError(f"entry {len(out)} of the bundle is cut short")
        out.append(bytes(data[at + 2:end]))
        at = end
    if width is not None and len(out) != width:
        raise TileError(f"entry bundle holds {len(out)} entries, not {width}")
    return out


# --- proofs from tiles alone ------------------------------------------------


class TileHashes:
    """``read_hashes`` for the tree of ``size`` entries, from its tiles.

    ``fetch(tile) -> bytes`` returns a tile's data (from a server, a folder,
    anywhere).  As Go's ``tlog.TileHashReader`` minus the authentication: the
    hashes are whatever the tiles say, so proofs built from them must be
    checked against a signed root (``merkle.verify_inclusion`` /
    ``verify_consistency``), which is where a lying tile shows.
    """

    def __init__(self, size: int, fetch: Callable[[Tile], bytes]):
        self.size = size
        self._fetch = fetch
        self._tiles: dict[Tile, bytes] = {}

    def __call__(self, ids: list[int]) -> list[bytes]:
        return [self.hash(i) for i in ids]

    def hash(self, index: int) -> bytes:
        """The stored hash at ``index``: a perfect subtree of one tile's hashes."""
        level, k = split_stored_hash_index(index)
        tile_level, inner = divmod(level, HEIGHT)
        n = (k << inner) >> HEIGHT  # tile number at tile_level
        first = (k << inner) - n * WIDTH  # first tile hash under this subtree
        count = 1 << inner
        available = (self.size >> (HEIGHT * tile_level)) - n * WIDTH
        if first + count > min(available, WIDTH):
            raise TileMissing(f"stored hash {index} is not in the tree of size {self.size}")
        data = self.tile(Tile(tile_level, n, min(available, WIDTH)))
        hashes = [data[i:i + HASH_SIZE] for i in range(first * HASH_SIZE, (first + count) * HASH_SIZE, HASH_SIZE)]
        while len(hashes) > 1:
            hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
        return hashes[0]

    def tile(self, tile: Tile) -> bytes:
        data = self._tiles.get(tile)
        if data is None:
            data = self._fetch(tile)
            if len(data) != tile.width * HASH_SIZE:
                raise TileError(f"{tile.path} is {len(data)} bytes, not {tile.width * HASH_SIZE}")
            self._tiles[tile] = data
        return data
