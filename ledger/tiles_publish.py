"""Publish the log as C2SP tlog-tiles static files (docs/protocol.md §10).

``publish`` writes ``checkpoint``, ``tile/<L>/<N>[.p/<W>]`` and
``tile/entries/<N>[.p/<W>]`` under a folder, byte for byte what the server
answers under ``/tlog/``, so any static host or CDN can serve the log.

Incremental: a tile's path fixes its content (a width of a given tile never
changes once the log has it), so a file already present is never written
again; a second run after the log grew writes only the new tiles.  Partial
tiles of older sizes stay, as C2SP tlog-tiles allows.  Every file is written
atomically (``labelcheck.util.atomic``), tiles before the checkpoint, so a
reader never sees a checkpoint whose tiles are not there yet.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from labelcheck.util.atomic import write_bytes

from . import checkpoint, merkle, note
from .tiles import Source, TileError, read_tile, tiles_for_size

CHECKPOINT = "checkpoint"
WRITERS = 8  # files written at once: each waits on its own fsync
BATCH = 64  # tiles read ahead of the writers


@dataclass
class PublishReport:
    size: int
    written: int  # tiles written by this run
    kept: int  # tiles already present
    checkpoint_written: bool

    def summary(self) -> str:
        what = "checkpoint updated" if self.checkpoint_written else "checkpoint unchanged"
        return f"log of {self.size} entries: {self.written} tiles written, {self.kept} already present, {what}"


def latest_signed(store) -> tuple[int, bytes]:
    """The latest signed checkpoint of ``store`` (a ``store.Store``), once it
    opens with the ledger key and origin recorded there and its root is the
    stored tree's: tiles are never published for a tree nobody signed."""
    origin, vkey = store.meta("origin"), store.meta("vkey")
    if origin is None or vkey is None:
        raise TileError(f"{store.path} has no origin or key recorded: it was never opened by a labelcheck server")
    latest = store.latest_checkpoint()
    if latest is None:
        raise TileError(f"{store.path} has no signed checkpoint yet")
    size, data, _ = latest
    try:
        cp = checkpoint.open_checkpoint(data, note.Verifier.from_vkey(vkey), origin=origin)
    except (checkpoint.CheckpointError, note.NoteError) as exc:
        raise TileError(f"the latest checkpoint does not verify with the ledger key: {exc}") from None
    if cp.size != size or merkle.tree_hash(size, store.read_hashes) != cp.root:
        raise TileError(f"the stored tree of size {size} does not match its signed checkpoint")
    return size, data


def publish(source: Source, note_data: bytes, size: int, out: str | Path, *,
            progress: Callable[[int, int], None] | None = None) -> PublishReport:
    """Write the tiles of the log of ``size`` entries and its checkpoint
    ``note_data`` under ``out`` (see the module docstring)."""
    out = Path(out)
    _check_same_log(out / CHECKPOINT, note_data, size)
    tiles = tiles_for_size(size)
    missing = [t for t in tiles if not (out / t.path).exists()]
    with ThreadPoolExecutor(WRITERS) as pool:
        for at in range(0, len(missing), BATCH):
            batch = missing[at:at + BATCH]
            writes = [pool.submit(_write_tile, out / t.path, read_tile(t, size, source)) for t in batch]
            for w in writes:
                w.result()
            if progress is not None:
                progress(at + len(batch), len(missing))
    written, kept = len(missing), len(tiles) - len(missing)
    cp_path = out / CHECKPOINT
    fresh = not cp_path.exists() or cp_path.read_bytes() != note_data
    if fresh:
        out.mkdir(parents=True, exist_ok=True)
        write_bytes(cp_path, note_data)
    return PublishReport(size, written, kept, fresh)


def _write_tile(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, data)


def _check_same_log(path: Path, note_data: bytes, size: int) -> None:
    """Refuse a folder that holds another log, or a larger tree of this one
    (publishing would then mix two logs' tiles, or roll the checkpoint back)."""
    try:
        old = path.read_bytes()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise TileError(f"cannot read {path}: {exc.strerror}") from None
    old_lines, new_lines = old.split(b"\n", 2), note_data.split(b"\n", 2)
    if len(old_lines) < 3 or old_lines[0] != new_lines[0]:
        raise TileError(f"{path.parent} holds another log (its checkpoint is not for {new_lines[0][:80]!r})")
    if not old_lines[1].isdigit() or int(old_lines[1]) > size:
        raise TileError(f"{path.parent} holds a larger tree ({old_lines[1][:24].decode(errors='replace')} entries) "
                        f"than this log's {size}: refusing to roll it back")
