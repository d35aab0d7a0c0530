"""Writing ledger bundles: the complete log, or a filter's entries with their proofs.

``write_bundle`` streams format ``labelcheck-bundle/1`` (described in
``bundle``; docs/protocol.md §4) from the store in one pass with flat memory:
a complete bundle is the header and every entry's exact bytes; a filtered one
is the header (with the filter, and an RFC 9162 §2.1.4 consistency proof when
asked) and one line per matching entry with its §2.1.3 inclusion proof, read
from the stored tree hashes.
"""

from __future__ import annotations

import json
from typing import BinaryIO

from labelcheck.util import b64

from . import canonical, checkpoint, merkle, note
from .bundle_report import FORMAT, BundleError
from .filters import Filter
from .store import StoreError
from .verify import PROGRESS_EVERY, Progress

_LINE = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def write_bundle(out: BinaryIO, store, checkpoint_note: bytes, verifier: note.Verifier,
                 *, progress: Progress | None = None, filter: Filter | None = None,
                 consistency_from: int | None = None) -> None:
    """Stream the bundle of ``store`` at the signed ``checkpoint_note`` to ``out``.

    With a non-empty ``filter``, a filtered bundle of the matching entries and
    their inclusion proofs; ``consistency_from`` (filtered only) adds the
    consistency proof from that earlier size to the checkpoint's.
    """
    try:
        cp = checkpoint.open_checkpoint(checkpoint_note, verifier)
    except (checkpoint.CheckpointError, note.NoteError) as exc:
        raise BundleError(f"the checkpoint to export does not verify: {exc}") from exc
    header = {
        "checkpoint": checkpoint_note.decode("utf-8"),
        "complete": True,
        "format": FORMAT,
        "origin": cp.origin,
        "size": cp.size,
        "vkey": verifier.vkey,
    }
    if filter is not None and not filter.empty:
        return _write_filtered(out, store, cp, header, filter, consistency_from, progress)
    if consistency_from is not None:
        raise BundleError("a complete bundle needs no consistency proof (it recomputes every root)")
    out.write(canonical.dumps(header) + b"\n")
    n, pending = 0, []
    for idx, data in store.iter_rows("entries", 0, cp.size):
        if idx != n:
            raise StoreError(f"entry {n} is missing")
        pending.append(data)
        n += 1
        if n % PROGRESS_EVERY == 0:  # one write per block of lines, not per line
            out.write(b"\n".join(pending) + b"\n")
            pending.clear()
            if progress:
                progress(n, cp.size)
    if pending:
        out.write(b"\n".join(pending) + b"\n")
    if n != cp.size:
        raise StoreError(f"the database holds {n} entries, fewer than its checkpoint's {cp.size}")
    if progress:
        progress(n, cp.size)


class _StoredProofs:
    """Inclusion proofs from the stored tree hashes over one borrowed connection.

    Proofs of nearby entries share most of their hashes (the higher
    subtrees), so the hashes of the previous proof are kept (O(log N) of
    them) and only the others are read.
    """

    def __init__(self, store, conn):
        self.store, self.conn, self.cache = store, conn, {}

    def read(self, ids: list[int]) -> list[bytes]:
        missing = [i for i in ids if i not in self.cache]
        got = dict(zip(missing, self.store.read_hashes(missing, self.conn))) if missing else {}
        cache = self.cache
        self.cache = {i: got[i] if i in got else cache[i] for i in ids}
        return [bytes(self.cache[i]) for i in ids]

    def inclusion(self, index: int, size: int) -> list[str]:
        return [b64.encode(h) for h in merkle.prove_inclusion(index, size, self.read)]

    def consistency(self, old: int, new: int) -> list[str]:
        return [b64.encode(h) for h in merkle.prove_consistency(old, new, self.read)]


def _write_filtered(out: BinaryIO, store, cp: checkpoint.Checkpoint, header: dict, filt: Filter,
                    consistency_from: int | None, progress: Progress | None) -> None:
    header["complete"], header["filter"] = False, filt.to_json()
    match, dumps = filt.matcher(), _LINE.encode
    with store.connection() as conn:
        proofs = _StoredProofs(store, conn)
        if consistency_from is not None:
            if type(consistency_from) is not int or not 0 <= consistency_from <= cp.size:
                raise BundleError(f"no consistency proof from size {consistency_from!r} to {cp.size}")
            header["consistency"] = {"from": consistency_from,
                                     "hashes": proofs.consistency(consistency_from, cp.size)}
        out.write(canonical.dumps(header) + b"\n")
        n = 0
        for idx, data in store.iter_rows("entries", 0, cp.size):
            if idx != n:
                raise StoreError(f"entry {n} is missing")
            n += 1
            if match(data):
                line = {"entry": bytes(data).decode("utf-8"), "inclusion": proofs.inclusion(idx, cp.size),
                        "index": idx}
                out.write(dumps(line).encode("utf-8") + b"\n")
            if progress and n % PROGRESS_EVERY == 0:
                progress(n, cp.size)
    if n != cp.size:
        raise StoreError(f"the database holds {n} entries, fewer than its checkpoint's {cp.size}")
    if progress:
        progress(n, cp.size)
