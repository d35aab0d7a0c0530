"""Ledger bundles: a self-contained, streamable export verified offline.

Format ``labelcheck-bundle/1`` is NDJSON (one JSON text per line, each line
ending in ``\\n``, UTF-8):

Line 1, the header, a canonical JSON object::

    {"checkpoint": "<the signed checkpoint note, as text>",
     "complete": true,
     "format": "labelcheck-bundle/1",
     "origin": "<log origin>",
     "size": N,
     "vkey": "<C2SP verifier key of the ledger>"}

Then, for a complete bundle, N lines: entries 0..N-1, each line exactly the
entry's leaf bytes (canonical JSON never holds a raw newline), where N is the
checkpoint's size. Nothing follows the last entry.

Verifying (``verify_bundle``) needs nothing but the bundle and a verifier key
obtained independently; the ``vkey`` in the header is informational only and
never trusted. It checks the checkpoint signature and origin; every entry's
canonical form, ``index`` and ``prev`` link; the RFC 9162 root of all N
entries against the signed root; and that nothing is missing or extra. It
streams: memory stays flat whatever the size (O(log N) tree state, as
``merkle.RootBuilder``, plus a few 4 MiB blocks of lines when worker
processes share the parsing of a large bundle).

Growth only: given an older checkpoint the verifier already trusts (size T),
the verifier keeps the root of the first T entries as they stream past and
compares it with the trusted root. This is equivalent to checking an RFC 9162
§2.1.4 consistency proof from T to N, and stronger, since every entry is
recomputed rather than O(log N) hashes supplied by the exporter; it needs no
proof in the bundle, so an exporter need not know the verifier's T in
advance. A trusted checkpoint larger than N means the log was truncated or
rolled back; a different root at T means the log was forked or rewritten.

Filtered bundles (``write_bundle`` given a non-empty ``filters.Filter``):
the header says ``"complete": false`` and carries the filter as a
``"filter"`` object (``Filter.to_json``), then one line per matching entry,
in increasing index order::

    {"entry": "<leaf bytes as a JSON string>", "inclusion": ["<b64>", ...], "index": i}

each entry proven included in the checkpoint's tree by its RFC 9162 §2.1.3
inclusion proof. The exporter reads the proofs from the stored tree hashes
(O(log N) reads each, the hashes shared with the previous proof reused), so
export streams in one pass with flat memory. The verifier checks the
signature, each entry's canonical form and ``index``, that indexes strictly
increase, each inclusion proof against the signed root, and that every
entry meets the stated filter, so an exporter cannot slip in entries the
filter excludes. The ``prev`` chain is not followed (the entries are not
contiguous): inclusion in the signed tree is what binds each entry. What a
filtered bundle cannot prove is that no matching entry was left out: only a
complete bundle proves completeness. ``BundleReport.summary`` says which was
proved: "complete log of N entries" or "M entries, each included in the log
of size N".

A filtered bundle cannot recompute a trusted root, so growth is shown there
by an RFC 9162 §2.1.4 consistency proof in the header (``"consistency":
{"from": T, "hashes": [...]}``), made for a T the verifier names at export
time (``consistency_from``). Readers must refuse headers whose ``format``
they do not know.
"""

from __future__ import annotations

import collections
import hashlib
import json
import multiprocessing
import os
import threading
from binascii import a2b_base64
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

from . import canonical, checkpoint, merkle, note
from .filters import Filter, FilterError
from .store import Store, StoreError
from .verify import PROGRESS_EVERY, EntryError, Progress, b64, check_entry, check_prev, parse_entry

FORMAT = "labelcheck-bundle/1"
MAX_HEADER = 1 << 20
MAX_ENTRY = 1 << 20  # an entry line longer than this is refused, not buffered
PARALLEL_MIN = 100_000  # below this, starting worker processes costs more than it saves
BLOCK = 4 << 20  # bytes of whole lines handed to a worker at a time
MAX_LINE = 4 << 20  # a filtered line: an entry (<= 1 MiB, escaped) and its proof
_LINE = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


class BundleError(Exception):
    """An unusable argument (key, trusted checkpoint) or an unreadable bundle."""


def write_bundle(out: BinaryIO, store: Store, checkpoint_note: bytes, verifier: note.Verifier,
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

    def __init__(self, store: Store, conn):
        self.store, self.conn, self.cache = store, conn, {}

    def read(self, ids: list[int]) -> list[bytes]:
        missing = [i for i in ids if i not in self.cache]
        got = dict(zip(missing, self.store.read_hashes(missing, self.conn))) if missing else {}
        cache = self.cache
        self.cache = {i: got[i] if i in got else cache[i] for i in ids}
        return [bytes(self.cache[i]) for i in ids]

    def inclusion(self, index: int, size: int) -> list[str]:
        return [b64(h) for h in merkle.prove_inclusion(index, size, self.read)]

    def consistency(self, old: int, new: int) -> list[str]:
        return [b64(h) for h in merkle.prove_consistency(old, new, self.read)]


def _write_filtered(out: BinaryIO, store: Store, cp: checkpoint.Checkpoint, header: dict, filt: Filter,
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


@dataclass
class BundleReport:
    """What ``verify_bundle`` proved, or the first thing that failed."""

    origin: str = ""
    size: int = 0  # entries verified
    checkpoint: checkpoint.Checkpoint | None = None
    key_id: str = ""
    trusted_size: int | None = None
    problems: list[str] = field(default_factory=list)
    first_bad_index: int | None = None
    complete: bool = True
    filter: dict | None = None  # a filtered bundle's filter, as its header states it

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """What was proved: "complete log of N entries" or "M entries, each
        included in the log of size N" (a filtered bundle), or what failed."""
        if not self.ok:
            return "bundle verification FAILED: " + "; ".join(self.problems)
        signed = f"origin {self.origin}, root {b64(self.checkpoint.root)} signed by {self.key_id}"
        if self.complete:
            text = f"complete log of {self.size} entries, {signed}"
        else:
            text = (f"{self.size} entries, each included in the log of size {self.checkpoint.size}, {signed}; "
                    f"each matches the filter {Filter.parse(self.filter).describe()} (a filtered bundle "
                    "does not prove that no matching entry was left out)")
        if self.trusted_size is not None:
            text += f"; consistent with the trusted checkpoint at size {self.trusted_size} (the log only grew)"
        return text


def verify_bundle(fp: BinaryIO, vkey: str, trusted_checkpoint: bytes | None = None,
                  progress: Progress | None = None, *, workers: int | None = None) -> BundleReport:
    """Verify a bundle read from ``fp`` against the verifier key ``vkey``.

    Returns a BundleReport (``ok`` false names the first bad entry). Raises
    BundleError when ``vkey`` or ``trusted_checkpoint`` is unusable, or when
    ``fp`` cannot be read. ``workers`` forked processes check entries in
    parallel (default: one per CPU, up to 4, for bundles of PARALLEL_MIN
    entries or more; never from a multi-threaded process); the result is the
    same either way.
    """
    try:
        verifier = note.Verifier.from_vkey(vkey)
    except note.NoteError as exc:
        raise BundleError(f"bad verifier key: {exc}") from exc
    report = BundleReport(key_id=verifier.key_id)
    try:
        cp, header = _read_header(fp, verifier, report)
        if cp is None:
            return report
        trusted = _open_trusted(trusted_checkpoint, verifier, cp, report)
        if not report.ok:
            return report
        if not report.complete:
            _verify_filtered(fp, cp, header, trusted, report, progress)
            return report
        if workers is None:
            workers = min(os.cpu_count() or 1, 4) if cp.size >= PARALLEL_MIN else 1
        # Workers are forked (nothing re-imported, no __main__ guard needed of
        # callers), which is only safe while this process runs a single thread.
        if workers > 1 and threading.active_count() == 1:
            _verify_parallel(fp, cp, trusted, report, progress, workers)
        else:
            _verify_entries(fp, cp, trusted, report, progress)
    except OSError as exc:
        raise BundleError(f"cannot read the bundle: {exc}") from exc
    return report


def _read_header(fp: BinaryIO, verifier: note.Verifier,
                 report: BundleReport) -> tuple[checkpoint.Checkpoint | None, dict]:
    line = fp.readline(MAX_HEADER)
    try:
        header = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        report.problems.append("the first line is not a bundle header (JSON object)")
        return None, {}
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        got = header.get("format") if isinstance(header, dict) else None
        report.problems.append(f"unknown bundle format {got!r} (this labelcheck reads {FORMAT})")
        return None, {}
    if header.get("complete") is False:
        try:
            report.filter = Filter.parse(header.get("filter")).to_json()
        except FilterError as exc:
            report.problems.append(f"the filtered bundle's filter cannot be checked: {exc}")
            return None, {}
        report.complete = False
    elif header.get("complete") is not True:
        report.problems.append("the bundle header must say \"complete\": true or false")
        return None, {}
    text = header.get("checkpoint")
    if not isinstance(text, str):
        report.problems.append("the bundle header has no checkpoint")
        return None, {}
    try:
        cp = checkpoint.open_checkpoint(text.encode("utf-8"), verifier)
    except (checkpoint.CheckpointError, note.NoteError) as exc:
        report.problems.append(f"the bundle's checkpoint does not verify with {verifier.key_id}: {exc}")
        return None, {}
    report.checkpoint, report.origin = cp, cp.origin
    if header.get("size") != cp.size or header.get("origin") != cp.origin:
        report.problems.append("the bundle header's size or origin disagrees with its signed checkpoint")
        return None, {}
    return cp, header


def _open_trusted(data: bytes | None, verifier: note.Verifier, cp: checkpoint.Checkpoint,
                  report: BundleReport) -> checkpoint.Checkpoint | None:
    if data is None:
        return None
    try:
        trusted = checkpoint.open_checkpoint(data, verifier)
    except (checkpoint.CheckpointError, note.NoteError) as exc:
        raise BundleError(f"the trusted checkpoint does not verify with {verifier.key_id}: {exc}") from exc
    if trusted.origin != cp.origin:
        raise BundleError(f"the trusted checkpoint is for log {trusted.origin!r}, the bundle for {cp.origin!r}")
    report.trusted_size = trusted.size
    if trusted.size > cp.size:
        report.problems.append(
            f"the bundle's log has {cp.size} entries but a checkpoint for {trusted.size} was trusted before: "
            "the log was truncated or rolled back"
        )
    elif trusted.size == cp.size and trusted.root != cp.root:
        report.problems.append(f"two different signed roots for size {cp.size}: the log was forked")
    return trusted


def _verify_entries(fp: BinaryIO, cp: checkpoint.Checkpoint, trusted: checkpoint.Checkpoint | None,
                    report: BundleReport, progress: Progress | None) -> None:
    tree = merkle.RootBuilder()
    append, readline = tree.append, fp.readline
    trusted_at = trusted.size if trusted is not None else -1
    prev = None
    for n in range(cp.size):
        if n == trusted_at and tree.root() != trusted.root:
            return _bad(report, n, _fork(trusted.size))
        line = readline(MAX_ENTRY + 1)
        if not line.endswith(b"\n"):
            what = "is longer than 1 MiB" if len(line) > MAX_ENTRY else "is missing (the bundle ends early)"
            return _bad(report, n, f"entry {n} {what}")
        try:
            prev = check_entry(line[:-1], n, prev)
        except EntryError as exc:
            return _bad(report, n, str(exc))
        append(prev)
        report.size = n + 1
        if progress and report.size % PROGRESS_EVERY == 0:
            progress(report.size, cp.size)
    if readline(1) and not (cp.size == trusted_at and tree.root() != trusted.root):
        report.problems.append(f"data after entry {cp.size - 1}, the last one the checkpoint covers")
        return None
    return _check_root(tree, cp, trusted, trusted_at, report, progress)


def _check_root(tree: merkle.RootBuilder, cp: checkpoint.Checkpoint, trusted: checkpoint.Checkpoint | None,
                trusted_at: int, report: BundleReport, progress: Progress | None) -> None:
    """After the last entry: the root at the trusted size (if it is the whole
    log) and the root of all entries against the signed one (RFC 9162 §2.1.1)."""
    if cp.size == trusted_at and tree.root() != trusted.root:
        return _bad(report, cp.size, _fork(trusted.size))
    if tree.root() != cp.root:
        report.problems.append(
            f"the {cp.size} entries hash to root {b64(tree.root())}, not the signed {b64(cp.root)}"
        )
    if progress:
        progress(report.size, cp.size)
    return None


def _verify_filtered(fp: BinaryIO, cp: checkpoint.Checkpoint, header: dict, trusted: checkpoint.Checkpoint | None,
                     report: BundleReport, progress: Progress | None) -> None:
    """Check a filtered bundle's growth proof, then each line; see the module docstring."""
    if trusted is not None and not _check_growth(header.get("consistency"), trusted, cp, report):
        return None
    match, last = Filter.parse(report.filter).value_matcher(), -1
    for line in iter(lambda: fp.readline(MAX_LINE + 1), b""):
        where = f"the line after entry {last}" if last >= 0 else "the first entry line"
        if not line.endswith(b"\n"):
            what = "is longer than 4 MiB" if len(line) > MAX_LINE else "is cut short (no newline)"
            report.problems.append(f"{where} {what}")
            return None
        try:
            index, data, proof = _filtered_line(line, where)
        except _LineError as exc:
            report.problems.append(str(exc))
            report.first_bad_index = exc.index
            return None
        if index <= last:
            return _bad(report, index, f"entry {index} after entry {last}: indexes must strictly increase "
                                       "(an entry is repeated or out of order)")
        if index >= cp.size:
            return _bad(report, index, f"entry {index} is beyond the log of size {cp.size}")
        try:
            value = parse_entry(data, index)
        except EntryError as exc:
            return _bad(report, index, str(exc))
        if not match(value):
            return _bad(report, index, f"entry {index} does not match the bundle's filter "
                                       f"{Filter.parse(report.filter).describe()}")
        try:
            merkle.verify_inclusion(index, cp.size, merkle.leaf_hash(data), proof, cp.root)
        except merkle.ProofError as exc:
            return _bad(report, index, f"entry {index} is not proven included in the log of size "
                                       f"{cp.size} (the entry or its proof was changed): {exc}")
        last, report.size = index, report.size + 1
        if progress and report.size % PROGRESS_EVERY == 0:
            progress(index + 1, cp.size)
    if progress:
        progress(cp.size, cp.size)
    return None


class _LineError(Exception):
    """A filtered line that is not an entry with its proof; ``index`` when known."""

    def __init__(self, message: str, index: int | None = None):
        super().__init__(message)
        self.index = index


def _filtered_line(line: bytes, where: str) -> tuple[int, bytes, list[bytes]]:
    """(index, entry bytes, proof) of one filtered line; _LineError otherwise."""
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise _LineError(f"{where} is not JSON") from None
    if not isinstance(obj, dict) or sorted(obj) != ["entry", "inclusion", "index"]:
        raise _LineError(f"{where} is not an entry with its inclusion proof (keys entry, inclusion, index)")
    index, entry, hashes = obj["index"], obj["entry"], obj["inclusion"]
    if type(index) is not int or index < 0:
        raise _LineError(f"{where} has no valid index")
    if not isinstance(entry, str) or not isinstance(hashes, list):
        raise _LineError(f"entry {index}: the line is not an entry (a string) with its inclusion proof (a list)",
                         index)
    proof = _hashes(hashes)
    if proof is None:
        raise _LineError(f"entry {index}: its inclusion proof is not a list of base64 SHA-256 hashes", index)
    try:
        return index, entry.encode("utf-8"), proof
    except UnicodeEncodeError:
        raise _LineError(f"entry {index} is not valid Unicode text", index) from None


def _hashes(items: list) -> list[bytes] | None:
    if not all(type(h) is str for h in items):
        return None
    try:
        out = [a2b_base64(h, strict_mode=True) for h in items]
    except ValueError:  # binascii.Error, or a non-ASCII str
        return None
    return out if all(len(h) == 32 for h in out) else None


def _check_growth(proof, trusted: checkpoint.Checkpoint, cp: checkpoint.Checkpoint, report: BundleReport) -> bool:
    """RFC 9162 §2.1.4.2: the trusted tree is a prefix of the bundle's (from the header's proof)."""
    if trusted.size in (0, cp.size):
        return True  # the empty tree is a prefix of every tree; equal sizes were compared already
    if not isinstance(proof, dict) or proof.get("from") != trusted.size:
        report.problems.append(
            f"a filtered bundle shows growth only by a consistency proof from the trusted size {trusted.size}, "
            "and this one has none for it (export it again with consistency_from set to that size)")
        return False
    hashes = _hashes(proof.get("hashes")) if isinstance(proof.get("hashes"), list) else None
    try:
        if hashes is None:
            raise merkle.ProofError("the hashes are not a list of base64 SHA-256 hashes")
        merkle.verify_consistency(trusted.size, cp.size, trusted.root, cp.root, hashes)
    except merkle.ProofError as exc:
        report.problems.append(f"the log at size {cp.size} is not proven to extend the trusted checkpoint at "
                               f"size {trusted.size}: the log was rewritten or forked ({exc})")
        return False
    return True


def _fork(size: int) -> str:
    return f"the first {size} entries do not match the trusted checkpoint: the log was rewritten or forked"


def _bad(report: BundleReport, index: int, problem: str) -> None:
    report.problems.append(problem)
    report.first_bad_index = index


# Parallel verification --------------------------------------------------------
#
# Parsing and re-encoding each entry is nearly all the work, and it needs no
# state but the entry itself, so worker processes take blocks of whole lines
# and return their leaf hashes. The main process keeps everything ordered: the
# chain link between blocks, the tree, the trusted root, the first problem.


def _check_block(start: int, block: bytes) -> tuple[tuple[int, str] | None, object, bytes]:
    """Check the entries in ``block`` (whole lines), the first being ``start``.

    Returns (the first problem as (index, message), or None; the first
    entry's ``prev`` value; the concatenated leaf hashes of the entries before
    the problem). The first ``prev`` is left to the caller, who knows the leaf
    before the block.
    """
    lines = block.split(b"\n")
    lines.pop()  # the block ends in a newline
    leaves, prev, first_prev = [], None, None
    sha = hashlib.sha256
    for j, data in enumerate(lines):
        index = start + j
        if len(data) > MAX_ENTRY:
            return (index, f"entry {index} is longer than 1 MiB"), first_prev, b"".join(leaves)
        try:
            value = parse_entry(data, index)
            if j:
                check_prev(value, index, prev)
        except EntryError as exc:
            return (index, str(exc)), first_prev, b"".join(leaves)
        if not j:
            first_prev = value.get("prev")
        prev = sha(b"\x00" + data).digest()
        leaves.append(prev)
    return None, first_prev, b"".join(leaves)


def _blocks(fp: BinaryIO, size: int) -> Iterator[tuple[int, bytes | None, str | None]]:
    """(start index, block of whole lines, None) for exactly ``size`` lines; where
    the lines do not add up, a last (index, None, problem) item instead."""
    seen, carry = 0, b""
    while seen < size:
        chunk = fp.read(BLOCK)
        data = carry + chunk
        cut = data.rfind(b"\n") + 1
        block, carry = data[:cut], data[cut:]
        count = block.count(b"\n")
        if seen + count > size:  # keep exactly ``size`` lines; the rest is trailing data
            at = -1
            for _ in range(size - seen):
                at = block.index(b"\n", at + 1)
            block, carry = block[: at + 1], block[at + 1 :] + carry
            count = size - seen
        if count:
            yield seen, block, None
            seen += count
        if seen < size and len(carry) > MAX_ENTRY:
            yield seen, None, f"entry {seen} is longer than 1 MiB"
            return
        if seen < size and not chunk:
            yield seen, None, f"entry {seen} is missing (the bundle ends early)"
            return
    if carry or fp.read(1):
        yield size, None, f"data after entry {size - 1}, the last one the checkpoint covers"


def _verify_parallel(fp: BinaryIO, cp: checkpoint.Checkpoint, trusted: checkpoint.Checkpoint | None,
                     report: BundleReport, progress: Progress | None, workers: int) -> None:
    tree = merkle.RootBuilder()
    trusted_at = trusted.size if trusted is not None else -1
    state = {"prev": None}

    def absorb(start: int, result) -> bool:
        """Fold one block's result in, in order; False once a problem is found."""
        problem, first_prev, leaves = result
        if problem is None or problem[0] > start:
            want = "" if state["prev"] is None else b64(state["prev"])
            if first_prev != want:
                _bad(report, start, f"entry {start}: prev {first_prev!r} is not the leaf hash of entry "
                     f"{start - 1} ({want!r}): the chain is broken (entry {start - 1} or this entry was changed)")
                return False
        for k in range(0, len(leaves), 32):
            if tree.size == trusted_at and tree.root() != trusted.root:
                _bad(report, tree.size, _fork(trusted.size))
                return False
            tree.append(leaves[k : k + 32])
        if problem is not None and tree.size == trusted_at and tree.root() != trusted.root:
            _bad(report, tree.size, _fork(trusted.size))  # as the one-process path sees it first
            return False
        if leaves:
            state["prev"] = leaves[-32:]
        report.size = tree.size
        if problem is not None:
            _bad(report, problem[0], problem[1])
            return False
        if progress:
            progress(tree.size, cp.size)
        return True

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers) as pool:
        pending: collections.deque = collections.deque()
        for start, block, problem in _blocks(fp, cp.size):
            if block is None:
                while pending:
                    s, r = pending.popleft()
                    if not absorb(s, r.get()):
                        return
                if tree.size == trusted_at and tree.root() != trusted.root:
                    return _bad(report, tree.size, _fork(trusted.size))
                if start < cp.size:
                    return _bad(report, start, problem)
                report.problems.append(problem)
                return None
            pending.append((start, pool.apply_async(_check_block, (start, block))))
            while len(pending) > 2 * workers:
                s, r = pending.popleft()
                if not absorb(s, r.get()):
                    return
        while pending:
            s, r = pending.popleft()
            if not absorb(s, r.get()):
                return
    return _check_root(tree, cp, trusted, trusted_at, report, progress)
