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

A caller that wants the entries as well (the audit report counts them) passes
``on_entry``: each entry whose own checks held is handed over as it is
verified, in index order, so the bundle is read once.

A filtered bundle cannot recompute a trusted root, so growth is shown there
by an RFC 9162 §2.1.4 consistency proof in the header (``"consistency":
{"from": T, "hashes": [...]}``), made for a T the verifier names at export
time (``consistency_from``). Readers must refuse headers whose ``format``
they do not know.

Modules: ``bundle_report`` (format names, limits, ``BundleReport``),
``bundle_write`` (export), ``bundle_complete`` (a complete bundle's entries,
in one or several processes), ``bundle_filtered`` (a filtered bundle's lines);
this one reads the header and the trusted checkpoint and dispatches.
"""

from __future__ import annotations

import json
import os
import threading
from typing import BinaryIO

from . import checkpoint, note
from .bundle_complete import verify_entries, verify_parallel
from .bundle_filtered import verify_filtered
from .bundle_report import FORMAT, MAX_ENTRY, MAX_HEADER, BundleError, BundleReport, EntrySink
from .bundle_write import write_bundle
from .filters import Filter, FilterError
from .verify import Progress

__all__ = ["FORMAT", "MAX_ENTRY", "BundleError", "BundleReport", "EntrySink", "verify_bundle", "write_bundle"]

PARALLEL_MIN = 100_000  # below this, starting worker processes costs more than it saves


def verify_bundle(fp: BinaryIO, vkey: str, trusted_checkpoint: bytes | None = None,
                  progress: Progress | None = None, *, workers: int | None = None,
                  on_entry: EntrySink | None = None) -> BundleReport:
    """Verify a bundle read from ``fp`` against the verifier key ``vkey``.

    Returns a BundleReport (``ok`` false names the first bad entry). Raises
    BundleError when ``vkey`` or ``trusted_checkpoint`` is unusable, or when
    ``fp`` cannot be read. ``workers`` forked processes check entries in
    parallel (default: one per CPU, up to 4, for bundles of PARALLEL_MIN
    entries or more; never from a multi-threaded process); the result is the
    same either way. ``on_entry(index, leaf_hash, entry)`` is called in this
    process for each entry that passed its own checks, in index order; what it
    was given counts only when the returned report is ``ok``.
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
            verify_filtered(fp, cp, header, trusted, report, progress, on_entry)
            return report
        if workers is None:
            workers = min(os.cpu_count() or 1, 4) if cp.size >= PARALLEL_MIN else 1
        # Workers are forked (nothing re-imported, no __main__ guard needed of
        # callers), which is only safe while this process runs a single thread.
        if workers > 1 and threading.active_count() == 1:
            verify_parallel(fp, cp, trusted, report, progress, workers, on_entry)
        else:
            verify_entries(fp, cp, trusted, report, progress, on_entry)
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
